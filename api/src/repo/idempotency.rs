//! Stored first responses for `Idempotency-Key`, per organization. The claim is an
//! insert-if-absent on the primary key `(org_id, key)`, so of any number of simultaneous
//! requests with one key exactly one runs; the others wait for its stored answer.
//!
//! A claim names its owner, the server instance running it (`crate::instance`). A retry that
//! finds a claim `in_progress` whose owner died (kill -9, a crash) takes it over at once; one
//! whose owner lives waits. Both the take-over and the stored answer are conditional on the
//! owner, so two runs of one key can never both write: the one that lost its claim fails whole.
//!
//! A write seals its answer in its own transaction (`seal`): the booking and the answer that
//! describes it commit together or not at all, so a retry after any crash either replays the
//! first outcome or runs once. Answers without a write (a refusal, a validation error) are
//! stored after the fact (`complete`); losing one of those to a crash only means running again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_keys::{ActiveModel, Column, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::domain::ids::OrgId;
use crate::instance::Instance;

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::hours(24);
/// A claim from before claims had owners, still running after this long, belongs to a request
/// that died: it is taken over rather than blocking the key for a day.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";
const CLAIM_LOST: &str = "idempotency claim taken over by a retry";

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: run it, then `complete` or `release`.
    Fresh,
    /// A previous request with this key and the same content answered this.
    Replay { status: u16, body: String },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running, in a live instance.
    InProgress,
}

/// The claim the running request holds, if it carries an `Idempotency-Key`.
pub struct Held {
    pub org: OrgId,
    pub key: String,
    pub owner: Uuid,
    sealed: AtomicBool,
}

impl Held {
    pub fn new(org: OrgId, key: String, owner: Uuid) -> Arc<Held> {
        Arc::new(Held {
            org,
            key,
            owner,
            sealed: AtomicBool::new(false),
        })
    }

    /// Whether a write stored this request's answer in its own transaction.
    pub fn sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }
}

tokio::task_local! {
    static HELD: Arc<Held>;
}

/// Runs `f` (the request) holding `held`, so the writes it makes can seal their answer.
pub async fn holding<F: std::future::Future>(held: Arc<Held>, f: F) -> F::Output {
    HELD.scope(held, f).await
}

/// How a write renders the answer it is about to give, for `seal`.
pub type Render<'a, M> = &'a (dyn Fn(&M) -> (u16, String) + Sync);

/// Inside a write's transaction, after the write: stores the answer (status and body) as this
/// key's first response, in that same transaction. Does nothing for a request without a key.
/// Fails with the claim-lost error (409 `idempotency_in_progress`) if a retry took the claim
/// over; the caller's transaction then rolls back and nothing of this run remains.
pub async fn seal<C: ConnectionTrait, M>(
    txn: &C,
    model: &M,
    render: Render<'_, M>,
) -> Result<(), DbErr> {
    let Ok(held) = HELD.try_with(Arc::clone) else {
        return Ok(());
    };
    let (status, body) = render(model);
    if store_answer(txn, &held, status, body).await? != 1 {
        return Err(DbErr::Custom(CLAIM_LOST.into()));
    }
    held.sealed.store(true, Ordering::Release);
    Ok(())
}

/// Whether an error is `seal` finding that a retry took this request's claim over.
pub fn is_claim_lost(err: &DbErr) -> bool {
    matches!(err, DbErr::Custom(m) if m == CLAIM_LOST)
}

fn one(org: OrgId, key: &str) -> sea_orm::Select<Entity> {
    Entity::find()
        .filter(Column::OrgId.eq(org.0))
        .filter(Column::Key.eq(key))
}

pub async fn claim(
    db: &DatabaseConnection,
    instance: &Instance,
    org: OrgId,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Claim, DbErr> {
    for _ in 0..5 {
        let claim = Entity::insert(ActiveModel {
            org_id: Set(org),
            key: Set(key.to_string()),
            request_hash: Set(request_hash.to_string()),
            state: Set(IN_PROGRESS.to_string()),
            response_status: Set(None),
            response_body: Set(None),
            created_at: Set(now),
            expires_at: Set(now + RETENTION),
            owner: Set(Some(instance.id)),
        })
        .on_conflict(
            OnConflict::columns([Column::OrgId, Column::Key])
                .do_nothing()
                .to_owned(),
        );
        // On SQLite the claim shares the bookings' group commit (`begin_booking`) instead of an
        // fsync of its own; either way it is committed before the request goes on.
        let inserted = if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            let (group, txn) = super::begin_booking(db).await?;
            let inserted = claim.exec_without_returning(&txn).await?;
            group.commit(txn).await?;
            inserted
        } else {
            claim.exec_without_returning(db).await?
        };
        if inserted == 1 {
            return Ok(Claim::Fresh);
        }
        let Some(row) = one(org, key).one(db).await? else {
            continue;
        };
        if row.expires_at <= now {
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
        if let (DONE, Some(status), Some(body)) =
            (row.state.as_str(), row.response_status, row.response_body)
        {
            return Ok(Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            });
        }
        let owner_dead = match row.owner {
            Some(owner) => !instance.is_alive(db, owner).await,
            None => row.created_at <= now - ABANDONED_AFTER,
        };
        if !owner_dead {
            return Ok(Claim::InProgress);
        }
        // Take the dead owner's claim, unless someone else just did.
        let mut takeover = Entity::update_many()
            .col_expr(Column::Owner, Some(instance.id).into())
            .col_expr(Column::CreatedAt, now.into())
            .filter(Column::OrgId.eq(org.0))
            .filter(Column::Key.eq(key))
            .filter(Column::State.eq(IN_PROGRESS));
        takeover = match row.owner {
            Some(owner) => takeover.filter(Column::Owner.eq(owner)),
            None => takeover.filter(Column::Owner.is_null()),
        };
        if takeover.exec(db).await?.rows_affected == 1 {
            tracing::info!(key, "idempotency claim of a dead instance taken over");
            return Ok(Claim::Fresh);
        }
    }
    Ok(Claim::InProgress)
}

/// `claim`, waiting (polling every 25 ms, up to `max_wait`) while the first request with the
/// key runs in a live instance; `InProgress` once `max_wait` has passed. Every caller of a key
/// (the HTTP layer, the MCP booking tool) waits the same way.
pub async fn claim_waiting(
    db: &DatabaseConnection,
    instance: &Instance,
    org: OrgId,
    key: &str,
    request_hash: &str,
    max_wait: std::time::Duration,
) -> Result<Claim, DbErr> {
    let started = std::time::Instant::now();
    loop {
        match claim(
            db,
            instance,
            org,
            key,
            request_hash,
            crate::domain::time::now(),
        )
        .await?
        {
            Claim::InProgress if started.elapsed() < max_wait => {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            outcome => return Ok(outcome),
        }
    }
}

/// Writes the answer of a claim this request still holds; how many rows it changed (0 when a
/// retry took the claim over).
async fn store_answer<C: ConnectionTrait>(
    db: &C,
    held: &Held,
    status: u16,
    body: String,
) -> Result<u64, DbErr> {
    let stored = Entity::update_many()
        .col_expr(Column::State, DONE.into())
        .col_expr(Column::ResponseStatus, i32::from(status).into())
        .col_expr(Column::ResponseBody, body.into())
        .filter(Column::OrgId.eq(held.org.0))
        .filter(Column::Key.eq(held.key.as_str()))
        .filter(Column::Owner.eq(held.owner))
        .filter(Column::State.eq(IN_PROGRESS))
        .exec(db)
        .await?;
    Ok(stored.rows_affected)
}

/// Stores the first response for replay (for answers that wrote nothing).
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    held: &Held,
    status: u16,
    body: String,
) -> Result<(), DbErr> {
    store_answer(db, held, status, body).await.map(|_| ())
}

/// Forgets a claim whose request failed in a way worth retrying (5xx, 429). A sealed answer
/// (state `done`) stays: its write committed.
pub async fn release<C: ConnectionTrait>(db: &C, held: &Held) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::OrgId.eq(held.org.0))
        .filter(Column::Key.eq(held.key.as_str()))
        .filter(Column::Owner.eq(held.owner))
        .filter(Column::State.eq(IN_PROGRESS))
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
