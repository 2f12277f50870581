//! Webhook endpoints, the outbox and the delivery queue.
//!
//! Endpoint and delivery-log functions are tenant-scoped like every other repo function. The
//! outbox is written by `record`, which `repo::events` calls inside the transaction of every
//! change to an event, so a message exists exactly when its change committed. The delivery
//! worker's functions (`claim`, `finish`) read across organizations: the queue is one for the
//! database; each row it touches is still named by `(org_id, id)`.

use chrono::{DateTime, Utc};
use entity::webhook_deliveries::{self as deliveries, DeliveryStatus};
use entity::webhook_endpoints::{self as endpoints};
use entity::webhook_messages::{self as messages};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement,
};
use uuid::Uuid;

use super::scoped;
use crate::domain::ids::{DeliveryId, MessageId, OrgId, WebhookId};
use crate::domain::time;
use crate::domain::webhooks::{DISABLE_AFTER, EventKind, ROTATION_OVERLAP, wants};
use crate::pagination::PageRequest;

impl super::OrgScoped for endpoints::Entity {
    fn org_column() -> Self::Column {
        endpoints::Column::OrgId
    }
}

impl super::OrgScoped for deliveries::Entity {
    fn org_column() -> Self::Column {
        deliveries::Column::OrgId
    }
}

impl super::OrgScoped for messages::Entity {
    fn org_column() -> Self::Column {
        messages::Column::OrgId
    }
}

/// The event kinds an endpoint asked for, as stored (empty: all).
pub fn events_of(endpoint: &endpoints::Model) -> Vec<String> {
    serde_json::from_value(endpoint.events.clone()).unwrap_or_default()
}

/// A new endpoint, its fields checked (`service::webhooks`).
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    /// `whsec_...`
    pub secret: String,
}

/// A PATCH: `None` leaves a field as it is.
#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// A page of the organization's endpoints, oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    req: PageRequest,
) -> Result<(Vec<endpoints::Model>, u64), DbErr> {
    let query = scoped::<endpoints::Entity>(org).order_by_asc(endpoints::Column::Id);
    super::page(db, query, req).await
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: WebhookId,
) -> Result<Option<endpoints::Model>, DbErr> {
    scoped::<endpoints::Entity>(org)
        .filter(endpoints::Column::Id.eq(id.0))
        .one(db)
        .await
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    new: NewEndpoint,
) -> Result<endpoints::Model, DbErr> {
    let now = time::now();
    endpoints::ActiveModel {
        id: Set(WebhookId::generate()),
        org_id: Set(org),
        url: Set(new.url),
        events: Set(serde_json::json!(new.events)),
        description: Set(new.description),
        disabled: Set(new.disabled),
        disabled_reason: Set(None),
        secret: Set(new.secret),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        failing_since: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Applies a PATCH. Enabling an endpoint again clears why it was disabled and its failing
/// streak, so the five days start over.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    current: endpoints::Model,
    changes: EndpointChanges,
) -> Result<endpoints::Model, DbErr> {
    let mut active: endpoints::ActiveModel = current.clone().into();
    if let Some(url) = changes.url {
        active.url = Set(url);
    }
    if let Some(events) = changes.events {
        active.events = Set(serde_json::json!(events));
    }
    if let Some(description) = changes.description {
        active.description = Set(description);
    }
    if let Some(disabled) = changes.disabled {
        active.disabled = Set(disabled);
        if !disabled {
            active.disabled_reason = Set(None);
            active.failing_since = Set(None);
        }
    }
    active.updated_at = Set(time::now());
    active.update(db).await
}

/// A new secret signs from now on; the one before keeps signing beside it for 24 hours.
pub async fn rotate<C: ConnectionTrait>(
    db: &C,
    current: endpoints::Model,
    secret: String,
) -> Result<endpoints::Model, DbErr> {
    let now = time::now();
    let mut active: endpoints::ActiveModel = current.clone().into();
    active.previous_secret = Set(Some(current.secret));
    active.previous_secret_until = Set(Some(now + ROTATION_OVERLAP));
    active.secret = Set(secret);
    active.updated_at = Set(now);
    active.update(db).await
}

/// Deletes an endpoint with its delivery log (its messages stay for other endpoints).
pub async fn delete<C: ConnectionTrait>(db: &C, org: OrgId, id: WebhookId) -> Result<bool, DbErr> {
    deliveries::Entity::delete_many()
        .filter(deliveries::Column::OrgId.eq(org.0))
        .filter(deliveries::Column::EndpointId.eq(id.0))
        .exec(db)
        .await?;
    let gone = endpoints::Entity::delete_many()
        .filter(endpoints::Column::OrgId.eq(org.0))
        .filter(endpoints::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(gone.rows_affected > 0)
}

/// The secrets that sign a delivery now: the endpoint's, and the one before a rotation for its
/// 24 hours.
pub fn signing_secrets(endpoint: &endpoints::Model, now: DateTime<Utc>) -> Vec<String> {
    let mut secrets = vec![endpoint.secret.clone()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous.clone());
    }
    secrets
}

/// Writes a message and one delivery per endpoint that wants it, in the caller's transaction.
/// Nothing is written when no enabled endpoint wants `kind`.
async fn enqueue<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    kind: EventKind,
    event: Option<(entity::ids::EventId, i64)>,
    data: serde_json::Value,
    previous: Option<serde_json::Value>,
    to: &[endpoints::Model],
) -> Result<Option<MessageId>, DbErr> {
    if to.is_empty() {
        return Ok(None);
    }
    let now = time::now();
    let message = MessageId::generate();
    messages::ActiveModel {
        id: Set(message),
        org_id: Set(org),
        event_id: Set(event.map(|(id, _)| id)),
        kind: Set(kind.as_str().to_string()),
        data: Set(data),
        previous: Set(previous),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    let rows = to.iter().map(|endpoint| deliveries::ActiveModel {
        id: Set(DeliveryId::generate()),
        org_id: Set(org),
        endpoint_id: Set(endpoint.id),
        message_id: Set(message),
        event_id: Set(event.map(|(id, _)| id)),
        seq: Set(event.map_or(0, |(_, seq)| seq)),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        leased_until: Set(None),
        lease_owner: Set(None),
        response_status: Set(None),
        latency_ms: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        delivered_at: Set(None),
    });
    deliveries::Entity::insert_many(rows).exec(db).await?;
    Ok(Some(message))
}

/// The outbox: records the change `kind` to `event` (as written; `previous` as it was before a
/// reschedule) for every enabled endpoint of the organization that wants it, inside the
/// transaction of the change.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    kind: EventKind,
    event: &entity::events::Model,
    previous: Option<&entity::events::Model>,
) -> Result<(), DbErr> {
    if is_other_hosts_row(event) {
        // One appointment, one message: a collective appointment is told by its organizer's
        // row, which lists every host.
        return Ok(());
    }
    let org = event.org_id;
    let enabled = scoped::<endpoints::Entity>(org)
        .filter(endpoints::Column::Disabled.eq(false))
        .all(db)
        .await?;
    let to: Vec<endpoints::Model> = enabled
        .into_iter()
        .filter(|e| wants(&events_of(e), kind))
        .collect();
    if to.is_empty() {
        return Ok(());
    }
    let snapshot = |m: &entity::events::Model| {
        serde_json::to_value(m).map_err(|e| DbErr::Custom(format!("event snapshot: {e}")))
    };
    let data = snapshot(event)?;
    let previous = previous.map(snapshot).transpose()?;
    enqueue(
        db,
        org,
        kind,
        Some((event.id, event.change_seq)),
        data,
        previous,
        &to,
    )
    .await?;
    Ok(())
}

/// Whether an event is a collective appointment's row on a host other than the organizer (the
/// first row of its group).
fn is_other_hosts_row(event: &entity::events::Model) -> bool {
    let first = event.team_hosts.as_ref().and_then(|group| {
        group
            .get(0)?
            .get("eventId")?
            .as_str()?
            .parse::<uuid::Uuid>()
            .ok()
    });
    first.is_some_and(|first| first != event.id.0)
}

/// A `ping` to one endpoint (enabled or not: testing one is how its owner checks it before
/// enabling it); answers its delivery.
pub async fn ping<C: ConnectionTrait>(
    db: &C,
    endpoint: &endpoints::Model,
) -> Result<deliveries::Model, DbErr> {
    let data = serde_json::json!({ "webhookId": endpoint.id.0 });
    let message = enqueue(
        db,
        endpoint.org_id,
        EventKind::Ping,
        None,
        data,
        None,
        std::slice::from_ref(endpoint),
    )
    .await?
    .ok_or_else(|| DbErr::Custom("a ping to one endpoint wrote no message".into()))?;
    scoped::<deliveries::Entity>(endpoint.org_id)
        .filter(deliveries::Column::MessageId.eq(message.0))
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the ping's delivery".into()))
}

/// A delivery with its message's kind, as the log shows it.
pub type Logged = (deliveries::Model, Option<messages::Model>);

/// A page of an endpoint's deliveries, newest first; `status` filters.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    endpoint: WebhookId,
    status: Option<DeliveryStatus>,
    req: PageRequest,
) -> Result<(Vec<Logged>, u64), DbErr> {
    let mut query = scoped::<deliveries::Entity>(org)
        .filter(deliveries::Column::EndpointId.eq(endpoint.0))
        .order_by_desc(deliveries::Column::Id);
    if let Some(status) = status {
        query = query.filter(deliveries::Column::Status.eq(status));
    }
    let (rows, total) = super::page(db, query, req).await?;
    let ids: Vec<Uuid> = rows.iter().map(|d| d.message_id.0).collect();
    let found = scoped::<messages::Entity>(org)
        .filter(messages::Column::Id.is_in(ids))
        .all(db)
        .await?;
    let logged = rows
        .into_iter()
        .map(|d| {
            let m = found.iter().find(|m| m.id == d.message_id).cloned();
            (d, m)
        })
        .collect();
    Ok((logged, total))
}

/// One delivery of an endpoint, with its message.
pub async fn delivery<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    endpoint: WebhookId,
    id: DeliveryId,
) -> Result<Option<Logged>, DbErr> {
    let Some(d) = scoped::<deliveries::Entity>(org)
        .filter(deliveries::Column::EndpointId.eq(endpoint.0))
        .filter(deliveries::Column::Id.eq(id.0))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let m = message(db, org, d.message_id).await?;
    Ok(Some((d, m)))
}

pub async fn message<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: MessageId,
) -> Result<Option<messages::Model>, DbErr> {
    scoped::<messages::Entity>(org)
        .filter(messages::Column::Id.eq(id.0))
        .one(db)
        .await
}

/// Sends a delivery again now (a failed one, or a pending one without waiting for its next
/// attempt): one more attempt, then the schedule's remaining retries if any.
pub async fn retry<C: ConnectionTrait>(
    db: &C,
    current: deliveries::Model,
) -> Result<deliveries::Model, DbErr> {
    let now = time::now();
    let mut active: deliveries::ActiveModel = current.into();
    active.status = Set(DeliveryStatus::Pending);
    active.next_attempt_at = Set(now);
    active.leased_until = Set(None);
    active.lease_owner = Set(None);
    active.updated_at = Set(now);
    active.update(db).await
}

/// Organizations with deliveries due now (at most `limit`): where `claim` looks. One read over
/// every organization (on Citus, every shard), then each claim stays inside one organization.
async fn due_orgs<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrgId>, DbErr> {
    use sea_orm::QuerySelect;
    let orgs: Vec<OrgId> = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::OrgId)
        .distinct()
        .filter(deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .filter(deliveries::Column::NextAttemptAt.lte(now))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(orgs)
}

/// Whether any delivery is due now: the worker's look before it opens a write for a claim.
pub async fn any_due<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<bool, DbErr> {
    Ok(!due_orgs(db, now, 1).await?.is_empty())
}

/// Takes up to `limit` due deliveries for `owner` until `until`: pending, due, not leased by a
/// live instance, and not behind an earlier pending message of the same event to the same
/// endpoint (so a cancel never overtakes its create). On PostgreSQL `FOR UPDATE SKIP LOCKED`
/// lets instances claim side by side without waiting or taking the same row. Each claim is one
/// statement inside one organization (on Citus, one shard).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    owner: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<deliveries::Model>, DbErr> {
    let mut claimed = Vec::new();
    for org in due_orgs(db, now, limit).await? {
        let room = limit.saturating_sub(claimed.len() as u64);
        if room == 0 {
            break;
        }
        claimed.extend(claim_in(db, org, owner, now, until, room).await?);
    }
    Ok(claimed)
}

async fn claim_in<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    owner: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<deliveries::Model>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    // PostgreSQL numbers its parameters (each used as often as needed); SQLite takes `?` in
    // order of appearance: until, owner, org, org, now, now, limit.
    let p = |n: usize| {
        if postgres {
            format!("${n}")
        } else {
            "?".into()
        }
    };
    let lock = if postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET leased_until = {until}, lease_owner = {owner} \
         WHERE org_id = {org} AND id IN (SELECT c.id FROM webhook_deliveries c \
           WHERE c.org_id = {org} AND c.status = 'pending' AND c.next_attempt_at <= {now} \
             AND (c.leased_until IS NULL OR c.leased_until < {now}) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
               WHERE e.org_id = c.org_id AND e.endpoint_id = c.endpoint_id \
                 AND e.event_id = c.event_id AND e.status = 'pending' AND e.seq < c.seq) \
           ORDER BY c.next_attempt_at, c.id LIMIT {limit}{lock}) \
         RETURNING id",
        until = p(2),
        owner = p(3),
        org = p(1),
        now = p(4),
        limit = p(5),
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let values: Vec<sea_orm::Value> = if postgres {
        vec![
            org.0.into(),
            until.into(),
            owner.into(),
            now.into(),
            limit.into(),
        ]
    } else {
        vec![
            until.into(),
            owner.into(),
            org.0.into(),
            org.0.into(),
            now.into(),
            now.into(),
            limit.into(),
        ]
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let ids = rows
        .iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    scoped::<deliveries::Entity>(org)
        .filter(deliveries::Column::Id.is_in(ids))
        .all(db)
        .await
}

/// What one attempt came to, as the log keeps it.
pub struct Outcome {
    pub delivered: bool,
    pub response_status: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
    /// When to try again after a failure; `None`: the schedule is spent (or the endpoint is
    /// gone), the delivery is failed.
    pub retry_at: Option<DateTime<Utc>>,
    /// Whether the attempt reached the endpoint at all (a delivery of a disabled or deleted
    /// endpoint is failed without counting an attempt or the endpoint's failing streak).
    pub attempted: bool,
}

/// Records an attempt on a delivery `owner` holds (a lease lost meanwhile changes nothing),
/// gives the lease back, and keeps the endpoint's failing streak: cleared by a success, begun
/// by a failure, and after `DISABLE_AFTER` of nothing but failures the endpoint is disabled
/// with the reason.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    owner: Uuid,
    delivery: &deliveries::Model,
    outcome: Outcome,
) -> Result<(), DbErr> {
    let now = time::now();
    let status = if outcome.delivered {
        DeliveryStatus::Succeeded
    } else if outcome.retry_at.is_some() {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Failed
    };
    let attempts = delivery.attempts + i32::from(outcome.attempted);
    let error = outcome
        .error
        .map(|e| e.chars().take(500).collect::<String>());
    let mut update = deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(status))
        .col_expr(deliveries::Column::Attempts, Expr::value(attempts))
        .col_expr(
            deliveries::Column::LeasedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            deliveries::Column::LeaseOwner,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(now))
        .col_expr(deliveries::Column::LastError, Expr::value(error.clone()));
    if outcome.attempted {
        update = update
            .col_expr(
                deliveries::Column::ResponseStatus,
                Expr::value(outcome.response_status.map(i32::from)),
            )
            .col_expr(
                deliveries::Column::LatencyMs,
                Expr::value(i32::try_from(outcome.latency_ms).unwrap_or(i32::MAX)),
            );
    }
    if outcome.delivered {
        update = update.col_expr(deliveries::Column::DeliveredAt, Expr::value(Some(now)));
    }
    if let Some(at) = outcome.retry_at {
        update = update.col_expr(deliveries::Column::NextAttemptAt, Expr::value(at));
    }
    let done = update
        .filter(deliveries::Column::OrgId.eq(delivery.org_id.0))
        .filter(deliveries::Column::Id.eq(delivery.id.0))
        .filter(deliveries::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    if done.rows_affected == 0 || !outcome.attempted {
        return Ok(());
    }
    let endpoint = endpoints::Entity::update_many()
        .filter(endpoints::Column::OrgId.eq(delivery.org_id.0))
        .filter(endpoints::Column::Id.eq(delivery.endpoint_id.0));
    if outcome.delivered {
        endpoint
            .col_expr(
                endpoints::Column::FailingSince,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(endpoints::Column::FailingSince.is_not_null())
            .exec(db)
            .await?;
        return Ok(());
    }
    endpoint
        .clone()
        .col_expr(endpoints::Column::FailingSince, Expr::value(Some(now)))
        .filter(endpoints::Column::FailingSince.is_null())
        .exec(db)
        .await?;
    let since = now - DISABLE_AFTER;
    let reason = format!(
        "disabled by Quando at {}: every delivery failed for 5 days (last: {})",
        crate::domain::time::format_utc(now),
        error.as_deref().unwrap_or("no answer")
    );
    endpoint
        .col_expr(endpoints::Column::Disabled, Expr::value(true))
        .col_expr(
            endpoints::Column::DisabledReason,
            Expr::value(Some(reason.chars().take(500).collect::<String>())),
        )
        .col_expr(endpoints::Column::UpdatedAt, Expr::value(now))
        .filter(endpoints::Column::Disabled.eq(false))
        .filter(endpoints::Column::FailingSince.lte(since))
        .exec(db)
        .await?;
    Ok(())
}

/// The endpoint of a claimed delivery (any organization: the worker's read).
pub async fn endpoint_of<C: ConnectionTrait>(
    db: &C,
    delivery: &deliveries::Model,
) -> Result<Option<endpoints::Model>, DbErr> {
    get(db, delivery.org_id, delivery.endpoint_id).await
}

/// How long the delivery log keeps a finished delivery (and its message, once no delivery of it
/// is left).
pub const LOG_RETENTION_DAYS: i64 = 30;

/// Deletes deliveries finished (succeeded or failed) before `cutoff`, then messages older than
/// it that no delivery names. Pending deliveries stay whatever their age. Across organizations:
/// the hourly housekeeping's. Answers (deliveries, messages) deleted.
pub async fn purge_finished<C: ConnectionTrait>(
    db: &C,
    cutoff: DateTime<Utc>,
) -> Result<(u64, u64), DbErr> {
    let deliveries = deliveries::Entity::delete_many()
        .filter(deliveries::Column::Status.ne(DeliveryStatus::Pending))
        .filter(deliveries::Column::UpdatedAt.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected;
    let backend = db.get_database_backend();
    let p = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let messages = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM webhook_messages WHERE created_at < {p} AND NOT EXISTS \
                 (SELECT 1 FROM webhook_deliveries d \
                  WHERE d.org_id = webhook_messages.org_id AND d.message_id = webhook_messages.id)"
            ),
            [cutoff.into()],
        ))
        .await?
        .rows_affected();
    Ok((deliveries, messages))
}
