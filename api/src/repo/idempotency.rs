//! Stored first responses for `Idempotency-Key`, per organization. The claim is an
//! insert-if-absent on the primary key `(org_id, key)`, so of any number of simultaneous
//! requests with one key exactly one runs; the others wait for its stored answer.

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_keys::{ActiveModel, Column, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::domain::ids::OrgId;

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::hours(24);
/// A claim still running after this long belongs to a request that died (crash, kill): it is
/// taken over rather than blocking the key for a day.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: run it, then `complete` or `release`.
    Fresh,
    /// A previous request with this key and the same content answered this.
    Replay { status: u16, body: String },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

fn one<'a>(
    org: OrgId,
    key: &'a str,
) -> impl Fn(sea_orm::Select<Entity>) -> sea_orm::Select<Entity> + 'a {
    move |q| {
        q.filter(Column::OrgId.eq(org.0))
            .filter(Column::Key.eq(key))
    }
}

pub async fn claim<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Claim, DbErr> {
    for _ in 0..3 {
        let inserted = Entity::insert(ActiveModel {
            org_id: Set(org.0),
            key: Set(key.to_string()),
            request_hash: Set(request_hash.to_string()),
            state: Set(IN_PROGRESS.to_string()),
            response_status: Set(None),
            response_body: Set(None),
            created_at: Set(now),
            expires_at: Set(now + RETENTION),
        })
        .on_conflict(
            OnConflict::columns([Column::OrgId, Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        if inserted == 1 {
            return Ok(Claim::Fresh);
        }
        let Some(row) = one(org, key)(Entity::find()).one(db).await? else {
            continue;
        };
        let stale = row.expires_at <= now
            || (row.state == IN_PROGRESS && row.created_at <= now - ABANDONED_AFTER);
        if stale {
            Entity::delete_many()
                .filter(Column::OrgId.eq(org.0))
                .filter(Column::Key.eq(key))
                .filter(Column::CreatedAt.eq(row.created_at))
                .exec(db)
                .await?;
            continue;
        }
        if row.request_hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        return Ok(
            match (row.state.as_str(), row.response_status, row.response_body) {
                (DONE, Some(status), Some(body)) => Claim::Replay {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                },
                _ => Claim::InProgress,
            },
        );
    }
    Ok(Claim::InProgress)
}

/// Stores the first response for replay.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    key: &str,
    status: u16,
    body: String,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::State, DONE.into())
        .col_expr(Column::ResponseStatus, i32::from(status).into())
        .col_expr(Column::ResponseBody, body.into())
        .filter(Column::OrgId.eq(org.0))
        .filter(Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets a claim whose request failed in a way worth retrying (5xx, 429).
pub async fn release<C: ConnectionTrait>(db: &C, org: OrgId, key: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::OrgId.eq(org.0))
        .filter(Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes every stored response older than the retention; returns how many. Crosses
/// organizations by design: it is housekeeping, not a request path.
pub async fn purge_expired<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
