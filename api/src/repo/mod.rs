//! Tenant-scoped storage access, one file per resource. Every function takes the organization
//! first and starts from `scoped`, which already filters on it: another organization's row is
//! indistinguishable from a missing one. Routes never call `Entity::find()` themselves.

pub mod calendars;
pub mod event_types;
pub mod events;
pub mod idempotency;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    Select,
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

impl OrgScoped for entity::events::Entity {
    fn org_column() -> Self::Column {
        entity::events::Column::OrgId
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
    if req.offset() >= total {
        return Ok((Vec::new(), total));
    }
    let items = query.offset(req.offset()).limit(req.limit).all(db).await?;
    Ok((items, total))
}
