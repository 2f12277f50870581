//! The booking core under every dialect. It takes parsed domain requests and returns domain
//! values or one `ServiceError`; it owns every transaction: loading the calendar and event type,
//! working hours, overrides, notice, advance and `force`, the block, the overlap check, the
//! write, the idempotency answer sealed with it (`repo::idempotency::seal`), and a refusal with
//! the next free slots. A dialect is a folder of mappers: parse its body into a request here,
//! call the service, map the result and the error to its own envelope.
//!
//! Never imports poem, poem-openapi or a dialect: no HTTP type crosses this line.

pub mod availability_rules;
pub mod calendars;
pub mod event_types;
pub mod events;
pub mod feeds;
pub mod holds;
pub mod members;
pub mod rules;
pub mod series;
pub mod team;
pub mod webhooks;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::domain::slots::{Reason, Slot};
use crate::domain::time::Zone;
use crate::domain::violations::Invalid;
use crate::metrics::Metrics;

pub use crate::repo::idempotency::Render;

/// The core, cheap to clone: the database, the connection its write transactions run on
/// (`db::writer_for`), and the counters it keeps.
#[derive(Clone)]
pub struct Service {
    pub(crate) db: DatabaseConnection,
    pub(crate) writer: DatabaseConnection,
    pub(crate) metrics: Arc<Metrics>,
    /// Wakes the webhook delivery worker when a write queued something to send now.
    pub(crate) deliveries_due: Arc<tokio::sync::Notify>,
}

impl Service {
    pub fn new(db: DatabaseConnection, metrics: Arc<Metrics>) -> Service {
        let writer = crate::db::writer_for(&db);
        Service {
            db,
            writer,
            metrics,
            deliveries_due: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// What wakes the webhook delivery worker (the `delivery` module at the crate root).
    pub fn deliveries_due(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.deliveries_due)
    }

    /// The connection write transactions run on (the delivery worker's too).
    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }
}

/// What a request can be looked up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Event,
    Calendar,
    EventType,
    AvailabilityRule,
    Member,
    Webhook,
    Delivery,
    /// A calendar feed, named by its token.
    Feed,
    /// A slot hold.
    Hold,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Event => "event",
            Resource::Calendar => "calendar",
            Resource::EventType => "event type",
            Resource::AvailabilityRule => "availability rule",
            Resource::Member => "member",
            Resource::Webhook => "webhook",
            Resource::Delivery => "delivery",
            Resource::Feed => "feed",
            Resource::Hold => "hold",
        }
    }
}

/// A time the rules refuse: why, who is in the way (for `conflict`), and what is free next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub conflicting: Option<Uuid>,
    /// Up to three free slots after the requested time (from now when it was too far ahead).
    pub next_slots: Vec<Slot>,
    /// The zone the caller reads local times in (for the slots' local start).
    pub zone: Zone,
    /// For a recurring event: the start of the first instance that cannot be held.
    pub instance: Option<chrono::DateTime<chrono::Utc>>,
}

/// The one error of the core; each dialect maps it to its own envelope.
#[derive(Debug)]
pub enum ServiceError {
    /// No such resource in the organization (another organization's is the same).
    NotFound(Resource),
    /// The request breaks a rule about its fields; every problem named.
    Invalid(Invalid),
    /// The time cannot be booked.
    Refused(Box<Refusal>),
    /// A retry with the same `Idempotency-Key` took this request over; nothing was written.
    IdempotencyInProgress,
    /// A conditional write named a version of the event (its `change_seq`) that is no longer
    /// the current one: someone changed it since; nothing was written.
    Stale,
    /// Storage failed (transient trouble or a bug: the dialect's mapper tells them apart).
    Storage(DbErr),
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        crate::db::note_failure(&err);
        if crate::repo::holds::is_held(&err) {
            // A write over a live slot hold that no refusal path caught (a series edit): the
            // time is taken; there are no next slots to offer from here.
            ServiceError::Refused(Box::new(Refusal {
                reason: Reason::Conflict,
                conflicting: None,
                next_slots: Vec::new(),
                zone: Zone::UTC,
                instance: None,
            }))
        } else if crate::repo::idempotency::is_claim_lost(&err) {
            ServiceError::IdempotencyInProgress
        } else {
            ServiceError::Storage(err)
        }
    }
}

impl From<Invalid> for ServiceError {
    fn from(invalid: Invalid) -> Self {
        ServiceError::Invalid(invalid)
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NotFound(r) => write!(f, "{} not found", r.name()),
            ServiceError::Invalid(i) => write!(f, "invalid: {i}"),
            ServiceError::Refused(r) => write!(f, "refused: {}", r.reason.as_str()),
            ServiceError::IdempotencyInProgress => write!(f, "idempotency claim lost"),
            ServiceError::Stale => write!(f, "the event changed since the version named"),
            ServiceError::Storage(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {}
