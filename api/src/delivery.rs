//! The webhook delivery worker, one per server process. It takes due deliveries from the
//! outbox's queue (`repo::webhooks::claim`: a lease per row, `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several instances on one database each send a message at a time and one that
//! dies gives its rows back when the lease runs out), renders each message as the native API
//! shows an event, signs it as Standard Webhooks has it, sends it (`outbound::Sender`, 10 s),
//! and records the attempt: 2xx is delivered, anything else is tried again after 5 s, 30 s,
//! 2 min, 10 min, 30 min, 2 h and 6 h (with jitter), then failed. Delivery is at least once: an
//! instance killed between a receiver's answer and its record sends that message again (with the
//! same `webhook-id`, which receivers deduplicate on).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use entity::webhook_deliveries::Model as Delivery;
use entity::webhook_messages::Model as Message;
use poem_openapi::types::ToJSON;
use rand::Rng;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::dialects::native::events::EventOut;
use crate::domain::ids::MessageId;
use crate::domain::time;
use crate::domain::webhooks::{SigningSecret, retry_delay};
use crate::outbound::Sender;
use crate::repo::webhooks::{self as repo, Outcome};

/// The time limit of one attempt, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row stays this instance's: well past one attempt's time limit.
const LEASE: Duration = Duration::from_secs(30);
/// How often the queue is looked at when nothing woke the worker sooner.
const POLL: Duration = Duration::from_millis(250);
/// Attempts in flight at once in one instance.
const BATCH: u64 = 32;
/// Rows one claim takes at most: with several instances on one database, an instance that was
/// woken first does not take a whole burst of messages before the others look.
const CLAIM_AT_ONCE: u64 = 8;
/// The pause after a full claim before the next, in which other instances may claim.
const BETWEEN_FULL_CLAIMS: Duration = Duration::from_millis(2);
/// The least time between two looks at the queue that writes of events woke: under a booking
/// load (a wake after every commit) the worker reads the queue at most this often.
pub const WAKE_GAP: Duration = Duration::from_millis(20);

/// The `webhook-id` of a message (and its body's `id`).
pub fn message_id(id: MessageId) -> String {
    format!("msg_{}", id.0.simple())
}

/// The body of a message: `{"id", "event", "timestamp", "data"}`, where `data` is the event as
/// the native API shows it, with `previous` (the event before) on a reschedule.
pub fn render(message: &Message) -> Result<Vec<u8>, String> {
    let data = if message.event_id.is_some() {
        let event = |value: &Value| -> Result<Value, String> {
            let model: entity::events::Model = serde_json::from_value(value.clone())
                .map_err(|e| format!("the stored event cannot be read: {e}"))?;
            Ok(EventOut::from(model).to_json().unwrap_or(Value::Null))
        };
        let mut data = event(&message.data)?;
        if let (Some(previous), Value::Object(map)) = (&message.previous, &mut data) {
            map.insert("previous".into(), event(previous)?);
        }
        data
    } else {
        message.data.clone()
    };
    let body = json!({
        "id": message_id(message.id),
        "event": message.kind,
        "timestamp": time::format_utc(message.created_at),
        "data": data,
    });
    serde_json::to_vec(&body).map_err(|e| format!("the message cannot be written: {e}"))
}

/// The worker: the writer connection its claims and records go through, the HTTP client, and
/// its identity as a lease owner.
pub struct Worker {
    db: DatabaseConnection,
    /// Made at the first attempt: a server whose organizations have no endpoints never loads
    /// the HTTP client and its TLS roots.
    sender: tokio::sync::OnceCell<Sender>,
    allow_private: bool,
    owner: Uuid,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(db: DatabaseConnection, allow_private: bool, wake: Arc<Notify>) -> Worker {
        Worker {
            db,
            sender: tokio::sync::OnceCell::new(),
            allow_private,
            owner: Uuid::now_v7(),
            wake,
        }
    }

    /// Delivers until the process ends. Never returns. Up to `BATCH` attempts run at once; as
    /// soon as one ends (or `POLL` passes, or this instance committed a write of events, at
    /// most once per `WAKE_GAP`) more due rows are claimed, so a receiver that takes its whole
    /// 10 s holds up no other delivery, and a booking's messages leave within moments.
    pub async fn run(self) {
        let worker = Arc::new(self);
        let mut sending = tokio::task::JoinSet::new();
        loop {
            let looked = tokio::time::Instant::now();
            let room = BATCH.saturating_sub(sending.len() as u64);
            let claimed = if room == 0 {
                Vec::new()
            } else {
                match worker.claim(room.min(CLAIM_AT_ONCE)).await {
                    Ok(claimed) => claimed,
                    Err(err) => {
                        tracing::warn!(error = %err, "webhook queue unreadable; trying again");
                        Vec::new()
                    }
                }
            };
            if !claimed.is_empty() {
                let full = claimed.len() as u64 >= CLAIM_AT_ONCE;
                for delivery in claimed {
                    let worker = Arc::clone(&worker);
                    sending.spawn(async move { worker.deliver(delivery).await });
                }
                // More may be due: look again at once, or after a moment for the other
                // instances when this claim took all it may.
                if full {
                    tokio::time::sleep(BETWEEN_FULL_CLAIMS).await;
                }
                continue;
            }
            tokio::select! {
                Some(_) = sending.join_next(), if !sending.is_empty() => {}
                () = tokio::time::sleep(POLL) => {}
                () = worker.wake.notified() => {
                    tokio::time::sleep_until(looked + WAKE_GAP).await;
                }
            }
        }
    }

    /// Claims due rows. The lease is written in the bookings' group commit
    /// (`repo::begin_booking`), as Idempotency-Key claims are: on SQLite it shares their one
    /// fsync instead of taking the writer for an fsync of its own between two groups; a plain
    /// transaction on PostgreSQL. Nothing is opened when nothing is due. On an error the write
    /// is dropped unfinished, which rolls it back.
    async fn claim(&self, limit: u64) -> Result<Vec<Delivery>, sea_orm::DbErr> {
        let now = time::now();
        if !repo::any_due(&self.db, now).await? {
            return Ok(Vec::new());
        }
        let (group, txn) = crate::repo::begin_booking(&self.db).await?;
        let claimed = repo::claim(&txn, self.owner, now, now + LEASE, limit).await?;
        group.commit(txn).await?;
        Ok(claimed)
    }

    async fn deliver(&self, delivery: Delivery) {
        let outcome = self.attempt(&delivery).await;
        if let Err(err) = self.record(&delivery, outcome).await {
            // The lease runs out and the delivery is taken again.
            tracing::warn!(error = %err, delivery = %delivery.id, "could not record a webhook attempt");
        }
    }

    /// Records an attempt (the delivery and its endpoint's failing streak, together) in the
    /// bookings' group commit, like a claim.
    async fn record(&self, delivery: &Delivery, outcome: Outcome) -> Result<(), sea_orm::DbErr> {
        let (group, txn) = crate::repo::begin_booking(&self.db).await?;
        repo::finish(&txn, self.owner, delivery, outcome).await?;
        group.commit(txn).await
    }

    async fn attempt(&self, delivery: &Delivery) -> Outcome {
        let gave_up = |why: &str| Outcome {
            delivered: false,
            response_status: None,
            latency_ms: 0,
            error: Some(why.to_string()),
            retry_at: None,
            attempted: false,
        };
        // Storage trouble is not the receiver's: the delivery waits a little, no attempt counted.
        let later = |err: sea_orm::DbErr| Outcome {
            delivered: false,
            response_status: None,
            latency_ms: 0,
            error: Some(format!("not sent: storage unavailable ({err})")),
            retry_at: Some(time::now() + chrono::Duration::seconds(5)),
            attempted: false,
        };
        let endpoint = match repo::endpoint_of(&self.db, delivery).await {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => return gave_up("the endpoint was deleted"),
            Err(err) => return later(err),
        };
        let is_ping = delivery.event_id.is_none();
        if endpoint.disabled && !is_ping {
            return gave_up("the endpoint is disabled");
        }
        let message = match repo::message(&self.db, delivery.org_id, delivery.message_id).await {
            Ok(Some(message)) => message,
            Ok(None) => return gave_up("the message is gone"),
            Err(err) => return later(err),
        };
        let body = match render(&message) {
            Ok(body) => body,
            Err(why) => return gave_up(&why),
        };
        let now = time::now();
        let secrets: Vec<SigningSecret> = repo::signing_secrets(&endpoint, now)
            .iter()
            .filter_map(|s| SigningSecret::parse(s).ok())
            .collect();
        let sender = match self
            .sender
            .get_or_try_init(|| async { Sender::new(self.allow_private, ATTEMPT_TIMEOUT) })
            .await
        {
            Ok(sender) => sender,
            Err(why) => {
                tracing::error!(error = %why, "webhook deliveries cannot be sent");
                return Outcome {
                    delivered: false,
                    response_status: None,
                    latency_ms: 0,
                    error: Some(why),
                    retry_at: Some(time::now() + chrono::Duration::seconds(30)),
                    attempted: false,
                };
            }
        };
        let sent = sender
            .send(
                &endpoint.url,
                &message_id(message.id),
                Utc::now().timestamp(),
                &secrets,
                body,
            )
            .await;
        let latency_ms = u32::try_from(sent.latency.as_millis()).unwrap_or(u32::MAX);
        if sent.delivered() {
            tracing::debug!(delivery = %delivery.id, kind = %message.kind, "webhook delivered");
            return Outcome {
                delivered: true,
                response_status: sent.status,
                latency_ms,
                error: None,
                retry_at: None,
                attempted: true,
            };
        }
        let why = sent
            .error
            .unwrap_or_else(|| format!("answered {}", sent.status.unwrap_or_default()));
        self.failed(delivery, sent.status, latency_ms, why)
    }

    /// A failed attempt: the next one on the schedule, or failed when it is spent.
    fn failed(
        &self,
        delivery: &Delivery,
        status: Option<u16>,
        latency_ms: u32,
        why: String,
    ) -> Outcome {
        let failed = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let jitter: f64 = rand::rng().random();
        let retry_at = retry_delay(failed, jitter)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| time::now() + d);
        tracing::info!(
            delivery = %delivery.id,
            attempts = failed,
            error = %why,
            retry = retry_at.is_some(),
            "webhook attempt failed"
        );
        Outcome {
            delivered: false,
            response_status: status,
            latency_ms,
            error: Some(why),
            retry_at,
            attempted: true,
        }
    }
}
