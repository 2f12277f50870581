use sea_orm::entity::prelude::*;

use crate::ids::{CalendarId, EventId, EventTypeId, OrgId, SeriesId};

/// Serializable so that a webhook message can keep the event as it was written (the outbox).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EventId,
    /// Part of the key: every update and delete the ORM issues filters on the tenant too (on
    /// Citus, one shard instead of all of them).
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub calendar_id: CalendarId,
    /// `None` for events made through a dialect without event types.
    pub event_type_id: Option<EventTypeId>,
    pub start_time: DateTimeUtc,
    pub end_time: DateTimeUtc,
    /// `start_time` minus the event type's buffer before: what the overlap rule compares.
    pub block_start: DateTimeUtc,
    /// `end_time` plus the event type's buffer after.
    pub block_end: DateTimeUtc,
    pub timezone: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    pub notes: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub status: EventStatus,
    pub booked_via: String,
    pub cancellation_reason: Option<String>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// A free tag (meeting, block, appointment), at most 64 characters.
    #[sea_orm(column_name = "type")]
    pub kind: Option<String>,
    /// JSON array of `{name, email, optional, responseStatus}`.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub attendees: Option<Json>,
    pub owner_id: Option<String>,
    /// `user` or `agent`.
    pub owner_type: Option<String>,
    pub created_by: Option<String>,
    /// JSON object, string -> string: integrators' own ids.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// Given as `start_date`/`end_date` (end exclusive), which block whole local days in
    /// `timezone`; `start_time`/`end_time` then hold those days' instants.
    pub all_day: bool,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// `opaque` (default) holds its time; `transparent` blocks nothing.
    pub transparency: String,
    /// A client-chosen Google Calendar id (base32hex, 5-1024 characters), unique per calendar;
    /// `None`: the Google id is the UUID in 32-hex form.
    pub gcal_id: Option<String>,
    /// iCalendar UID; `None`: `{google id}@quando`.
    pub ical_uid: Option<String>,
    /// Bumped when the times change (iCalendar SEQUENCE).
    pub sequence: i32,
    /// JSON object of Google-only fields (reminders, extended properties, colorId, ...).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extras: Option<Json>,
    /// The calendar's `change_seq` at this event's last change (incremental sync).
    pub change_seq: i64,
    /// The recurring event this is an instance of.
    pub series_id: Option<SeriesId>,
    /// Where the series' rule put this instance (its identity within the series).
    pub original_start: Option<DateTimeUtc>,
    /// Changed on its own: a change to the whole series leaves it as it is.
    pub series_exception: bool,
    /// A collective appointment's rows, one per host: JSON array of `{calendarId, eventId}`, the
    /// organizer's first. Every row of the group carries it; `None` for any other event.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub team_hosts: Option<Json>,
}

/// The state of an event, stored as its lower-case name. `Cancelled` events no longer hold
/// their time.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    #[sea_orm(string_value = "confirmed")]
    Confirmed,
    #[sea_orm(string_value = "tentative")]
    Tentative,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
