//! Tenant-scoped storage access, one file per resource. Every function takes the organization
//! first and starts from `scoped`, which already filters on it: another organization's row is
//! indistinguishable from a missing one. Routes never call `Entity::find()` themselves.

pub mod calendars;
pub mod event_types;
pub mod events;
pub mod feeds;
pub mod holds;
pub mod idempotency;
pub mod members;
pub mod series;
pub mod webhooks;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Select, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::domain::ids::OrgId;
use crate::pagination::PageRequest;

/// A table whose rows belong to one organization.
pub trait OrgScoped: EntityTrait {
    fn org_column() -> Self::Column;
}

impl OrgScoped for entity::calendars::Entity {
    fn org_column() -> Self::Column {
        entity::calendars::Column::OrgId
    }
}

impl OrgScoped for entity::event_types::Entity {
    fn org_column() -> Self::Column {
        entity::event_types::Column::OrgId
    }
}

impl OrgScoped for entity::event_series::Entity {
    fn org_column() -> Self::Column {
        entity::event_series::Column::OrgId
    }
}

impl OrgScoped for entity::event_counts::Entity {
    fn org_column() -> Self::Column {
        entity::event_counts::Column::OrgId
    }
}

impl OrgScoped for entity::events::Entity {
    fn org_column() -> Self::Column {
        entity::events::Column::OrgId
    }
}

impl OrgScoped for entity::calendar_feeds::Entity {
    fn org_column() -> Self::Column {
        entity::calendar_feeds::Column::OrgId
    }
}

impl OrgScoped for entity::calendar_members::Entity {
    fn org_column() -> Self::Column {
        entity::calendar_members::Column::OrgId
    }
}

/// The start of every tenant query.
pub fn scoped<E: OrgScoped>(org: OrgId) -> Select<E> {
    E::find().filter(E::org_column().eq(org.0))
}

/// One page of an already scoped, filtered and ordered query, with the total over all pages.
pub async fn page<E, C>(
    db: &C,
    query: Select<E>,
    req: PageRequest,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let total = query.clone().count(db).await?;
    page_of(db, query, req, total).await
}

/// One page of a query whose total over all pages is already known (kept by counters).
pub async fn page_of<E, C>(
    db: &C,
    query: Select<E>,
    req: PageRequest,
    total: u64,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    if req.offset() >= total {
        return Ok((Vec::new(), total));
    }
    let items = query.offset(req.offset()).limit(req.limit).all(db).await?;
    Ok((items, total))
}

/// SQLite admits one writer at a time, and a writer that finds the lock taken sleeps in SQLite's
/// busy handler (naps of up to 100 ms), which turns contention into long tails. Booking writes
/// queue here instead, first come first served, before they take the lock. (One queue for the
/// process: a server has one database; tests with many just queue a little more.)
static SQLITE_WRITERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (behind the writer queue), a plain one on
/// PostgreSQL, whose exclusion constraint settles races. Keep the guard until the commit. `db` is
/// the service's writer (`db::writer_for`), so SQLite's writes share one warm page cache.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<
    (
        Option<tokio::sync::MutexGuard<'static, ()>>,
        sea_orm::DatabaseTransaction,
    ),
    DbErr,
> {
    let queued = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => Some(SQLITE_WRITERS.lock().await),
        _ => None,
    };
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    Ok((queued, db.begin_with_options(options).await?))
}
