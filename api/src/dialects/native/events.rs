//! `/v1/calendar/events`: appointments, in the Replicer dialect.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::errors::{CANCEL_EVENT, CREATE_EVENT, Fail, LIST, READ, UPDATE_EVENT};
use super::{ApiTags, check_bound, for_caller, maybe, optional_text, request_zone};
use crate::auth::{ReadAuth, WriteAuth, WriteOrPublishable};
use crate::domain::booking;
use crate::domain::contact::{Email, Phone};
use crate::domain::details::{
    AllDay, AttendeeInput, EventDetails, OwnerType, ResponseStatus, Transparency, all_day_span,
    parse_attendees, parse_metadata,
};
use crate::domain::ids::{CalendarId, EventId, EventTypeId, HoldId};

use crate::domain::time::{Zone, parse_instant};
use crate::domain::violations::Invalid;
use crate::error::{ApiError, Violations};
use crate::middleware::request_id;
use crate::pagination::{Cursor, PageRequest, Pagination};
use crate::payload::{JsonBody, OptionalJsonBody};
use crate::repo;
use crate::repo::events::EventFilter;
use crate::schema::{LocalDate, Timestamp};
use crate::service::events::{BookingRequest, EventUpdate, Status};
use crate::service::holds::HoldClaim;
use crate::service::team::group_of;
use crate::state::AppState;

/// The state of an event. `cancelled` events no longer hold their time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum EventStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Confirmed => "confirmed",
            EventStatus::Tentative => "tentative",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

/// The status a new booking may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum NewEventStatus {
    Confirmed,
    Tentative,
}

/// How the event was booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BookedVia {
    Api,
    Talkover,
    Gcal,
    Widget,
    Mcp,
}

impl BookedVia {
    fn from_stored(s: &str) -> Self {
        match s {
            "talkover" => BookedVia::Talkover,
            "gcal" => BookedVia::Gcal,
            "widget" => BookedVia::Widget,
            "mcp" => BookedVia::Mcp,
            _ => BookedVia::Api,
        }
    }
}

/// A new booking.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct EventIn {
    /// The calendar to book on. For a round-robin or collective event type, leave it out to let
    /// Quando choose the host (or name a host's calendar to book that host or get a 409); for an
    /// event type bound to one calendar it defaults to that calendar; otherwise required.
    #[oai(nullable)]
    pub calendar_id: Option<Uuid>,
    /// What is booked.
    pub event_type_id: Uuid,
    /// ISO 8601 start: with an offset (`2026-04-15T14:00:00Z`, `...T16:00:00+02:00`), or a local
    /// time without one (`2026-04-15T16:00:00`) read in `timezone`. A local time skipped or
    /// repeated by a daylight-saving change is refused. Required unless the event is all-day
    /// (`startDate` and `endDate` instead).
    #[oai(nullable, validator(max_length = 64))]
    pub start_time: Option<String>,
    /// ISO 8601 end, after `startTime`, read like it; at most 7 days after it. Required with
    /// `startTime`.
    #[oai(nullable, validator(max_length = 64))]
    pub end_time: Option<String>,
    /// An all-day event's first day (`YYYY-MM-DD`) in `timezone`, instead of `startTime`. It
    /// blocks whole local days (23 or 25 hours on daylight-saving days), is held to the overlap
    /// rule when opaque but not to working hours, notice or advance, and has no buffers.
    #[oai(nullable)]
    pub start_date: Option<LocalDate>,
    /// The day after an all-day event's last day (exclusive), with `startDate`; at most 366 days
    /// after it.
    #[oai(nullable)]
    pub end_date: Option<LocalDate>,
    /// IANA time zone of the appointment (default `UTC`); local times in the request are read in it.
    #[oai(nullable, validator(max_length = 64))]
    pub timezone: Option<String>,
    #[oai(nullable, validator(max_length = 200))]
    /// Name of the customer.
    pub customer_name: Option<String>,
    /// International number; spaces, dots, dashes and parentheses are allowed and stripped:
    /// stored and returned as E.164 (`+390612345678`).
    #[oai(nullable, validator(max_length = 40))]
    pub customer_phone: Option<String>,
    /// An email address.
    #[oai(nullable, validator(max_length = 254))]
    pub customer_email: Option<String>,
    #[oai(nullable, validator(max_length = 200))]
    /// Title shown on the calendar.
    pub title: Option<String>,
    /// An address or a meeting link.
    #[oai(nullable, validator(max_length = 500))]
    pub location: Option<String>,
    #[oai(nullable, validator(max_length = 5000))]
    /// Free-text notes.
    pub notes: Option<String>,
    /// `confirmed` (default) or `tentative`; both hold the time.
    #[oai(nullable)]
    pub status: Option<NewEventStatus>,
    /// Back-office entries and imports: lifts the working-hours, minimum-notice and
    /// maximum-advance rules. Nothing lifts the overlap rule. Not for publishable keys.
    #[oai(nullable)]
    pub force: Option<bool>,
    /// A slot hold (`POST /v1/calendar/holds`) made with the same key, which this booking turns
    /// into the appointment: `calendarId`, `eventTypeId`, `startTime` and `endTime` must be the
    /// hold's. A live hold's time is the booking's (held under the rules it was made under); an
    /// expired one is booked only if the time is still free and bookable. Another key's hold,
    /// or one released or already booked, is 404.
    #[oai(nullable)]
    pub hold_id: Option<Uuid>,
    /// Longer free text (an agenda); `notes` stays for short staff notes.
    #[oai(nullable, validator(max_length = 8000))]
    pub description: Option<String>,
    /// A free tag of at most 64 characters: `appointment`, `meeting`, `block`, ...
    #[oai(rename = "type", nullable, validator(max_length = 64))]
    pub kind: Option<String>,
    /// People invited, at most 100; each needs a valid `email`.
    #[oai(nullable)]
    pub attendees: Option<Vec<AttendeeIn>>,
    /// Who the event belongs to, in the integrator's own ids (with `ownerType`).
    #[oai(nullable, validator(max_length = 255))]
    pub owner_id: Option<String>,
    /// `user` or `agent` (a voice agent booking for the business).
    #[oai(nullable)]
    pub owner_type: Option<OwnerTypeDto>,
    /// Who made the booking, in the integrator's own words (a user id, an agent name).
    #[oai(nullable, validator(max_length = 255))]
    pub created_by: Option<String>,
    /// Integrators' own keys and values (CRM ids): at most 50 keys of at most 40 characters,
    /// values of at most 500.
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// `opaque` (default) holds the time; `transparent` blocks nothing and never makes a slot
    /// busy (a reminder, a tentative hold of no consequence).
    #[oai(nullable)]
    pub transparency: Option<TransparencyDto>,
}

/// Someone invited to an event.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
pub struct AttendeeIn {
    /// Display name.
    #[oai(nullable, validator(max_length = 200))]
    pub name: Option<String>,
    /// A valid email address (required).
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Whether attendance is optional (default false).
    #[oai(nullable)]
    pub optional: Option<bool>,
    /// `needsAction` (default), `accepted`, `declined` or `tentative`.
    #[oai(nullable)]
    pub response_status: Option<ResponseStatusDto>,
}

/// Someone invited to an event.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
pub struct AttendeeOut {
    /// Display name.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Email address.
    pub email: String,
    /// Whether attendance is optional.
    pub optional: bool,
    /// Their answer.
    pub response_status: ResponseStatusDto,
}

/// An attendee's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "camelCase")]
pub enum ResponseStatusDto {
    NeedsAction,
    Accepted,
    Declined,
    Tentative,
}

impl ResponseStatusDto {
    fn as_str(self) -> &'static str {
        match self {
            ResponseStatusDto::NeedsAction => "needsAction",
            ResponseStatusDto::Accepted => "accepted",
            ResponseStatusDto::Declined => "declined",
            ResponseStatusDto::Tentative => "tentative",
        }
    }
}

impl From<ResponseStatus> for ResponseStatusDto {
    fn from(r: ResponseStatus) -> Self {
        match r {
            ResponseStatus::NeedsAction => ResponseStatusDto::NeedsAction,
            ResponseStatus::Accepted => ResponseStatusDto::Accepted,
            ResponseStatus::Declined => ResponseStatusDto::Declined,
            ResponseStatus::Tentative => ResponseStatusDto::Tentative,
        }
    }
}

/// Whose event it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum OwnerTypeDto {
    User,
    Agent,
}

/// Whether an event holds its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TransparencyDto {
    Opaque,
    Transparent,
}

fn attendee_inputs(list: &[AttendeeIn]) -> Vec<AttendeeInput<'_>> {
    list.iter()
        .map(|a| AttendeeInput {
            name: a.name.as_deref(),
            email: Some(a.email.as_str()),
            optional: a.optional,
            response_status: a.response_status.map(ResponseStatusDto::as_str),
        })
        .collect()
}

fn owner_type(o: OwnerTypeDto) -> OwnerType {
    match o {
        OwnerTypeDto::User => OwnerType::User,
        OwnerTypeDto::Agent => OwnerType::Agent,
    }
}

fn transparency(t: TransparencyDto) -> Transparency {
    match t {
        TransparencyDto::Opaque => Transparency::Opaque,
        TransparencyDto::Transparent => Transparency::Transparent,
    }
}

/// The times of a new booking: `startTime`/`endTime`, or `startDate`/`endDate` for all day.
fn booking_times(
    v: &mut Violations,
    body: &EventIn,
    zone: Option<Zone>,
) -> Option<(DateTime<Utc>, DateTime<Utc>, Option<AllDay>)> {
    match (
        body.start_time.as_deref(),
        body.end_time.as_deref(),
        body.start_date,
        body.end_date,
    ) {
        (None, None, Some(start), Some(end)) => {
            let dates = AllDay {
                start: start.0,
                end: end.0,
            };
            match all_day_span(dates.start, dates.end, zone.unwrap_or(Zone::UTC)) {
                Ok((s, e)) => Some((s, e, Some(dates))),
                Err((field, message)) => {
                    v.add(field, message);
                    None
                }
            }
        }
        (start, end, None, None) => {
            let start = match start {
                Some(s) => v.check("startTime", parse_instant(s, zone)),
                None => {
                    v.add(
                        "startTime",
                        "is required (or startDate and endDate for an all-day event)",
                    );
                    None
                }
            };
            let end = match end {
                Some(e) => v.check("endTime", parse_instant(e, zone)),
                None => {
                    v.add("endTime", "is required with startTime");
                    None
                }
            };
            let (start, end) = (start?, end?);
            v.check("endTime", booking::check_length(start, end))?;
            Some((start, end, None))
        }
        (_, _, Some(_), None) => {
            v.add("endDate", "is required with startDate");
            None
        }
        (_, _, None, Some(_)) => {
            v.add("startDate", "is required with endDate");
            None
        }
        _ => {
            v.add(
                "startDate",
                "give startTime and endTime, or startDate and endDate for an all-day event, not both",
            );
            None
        }
    }
}

/// The descriptive fields of a new booking.
fn details(v: &mut Violations, body: &EventIn) -> EventDetails {
    EventDetails {
        description: optional_text(body.description.clone()),
        kind: optional_text(body.kind.clone()),
        attendees: body
            .attendees
            .as_deref()
            .map(|a| parse_attendees(v, "attendees", attendee_inputs(a)))
            .unwrap_or_default(),
        owner_id: optional_text(body.owner_id.clone()),
        owner_type: body.owner_type.map(owner_type),
        created_by: optional_text(body.created_by.clone()),
        metadata: body
            .metadata
            .clone()
            .map(|m| parse_metadata(v, "metadata", m))
            .unwrap_or_default(),
        transparency: body.transparency.map(transparency).unwrap_or_default(),
        google: Default::default(),
    }
}

impl Example for EventIn {
    fn example() -> Self {
        EventIn {
            calendar_id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-0000000000c1").ok(),
            event_type_id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-0000000000e1")
                .unwrap_or_default(),
            start_time: Some("2026-04-15T14:00:00Z".into()),
            end_time: Some("2026-04-15T14:30:00Z".into()),
            start_date: None,
            end_date: None,
            timezone: Some("Europe/Rome".into()),
            customer_name: Some("Laura Bianchi".into()),
            customer_phone: None,
            customer_email: Some("laura.bianchi@example.com".into()),
            title: Some("Demo Prodotto".into()),
            location: None,
            notes: None,
            status: None,
            force: None,
            hold_id: None,
            description: None,
            kind: Some("appointment".into()),
            attendees: None,
            owner_id: None,
            owner_type: None,
            created_by: Some("voice-agent-7".into()),
            metadata: Some(BTreeMap::from([(
                "crmId".to_string(),
                "L-1042".to_string(),
            )])),
            transparency: None,
        }
    }
}

/// An appointment.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct EventOut {
    /// Event id (UUID v7).
    pub id: Uuid,
    /// The calendar it is booked on.
    pub calendar_id: Uuid,
    /// What was booked; `null` for events made through a dialect without event types.
    #[oai(nullable)]
    pub event_type_id: Option<Uuid>,
    /// Start (UTC).
    pub start_time: Timestamp,
    /// End (UTC), after the start.
    pub end_time: Timestamp,
    /// IANA time zone of the appointment.
    pub timezone: String,
    /// Name of the customer.
    #[oai(nullable)]
    pub customer_name: Option<String>,
    /// E.164.
    #[oai(nullable)]
    pub customer_phone: Option<String>,
    /// Email address of the customer.
    #[oai(nullable)]
    pub customer_email: Option<String>,
    /// Free-text notes.
    #[oai(nullable)]
    pub notes: Option<String>,
    /// Title shown on the calendar.
    #[oai(nullable)]
    pub title: Option<String>,
    /// An address or a meeting link.
    #[oai(nullable)]
    pub location: Option<String>,
    /// `confirmed` and `tentative` hold the time; `cancelled` does not.
    pub status: EventStatus,
    /// Channel the booking came through.
    pub booked_via: BookedVia,
    /// Why it was cancelled, when it was and a reason was given.
    #[oai(nullable)]
    pub cancellation_reason: Option<String>,
    /// When it was cancelled; `null` while it is not.
    #[oai(nullable)]
    pub cancelled_at: Option<Timestamp>,
    /// When it was created (UTC).
    pub created_at: Timestamp,
    /// When it last changed (UTC).
    pub updated_at: Timestamp,
    /// Longer free text.
    #[oai(nullable)]
    pub description: Option<String>,
    /// The free tag (`appointment`, `meeting`, `block`, ...).
    #[oai(rename = "type", nullable)]
    pub kind: Option<String>,
    /// People invited.
    pub attendees: Vec<AttendeeOut>,
    /// Who the event belongs to.
    #[oai(nullable)]
    pub owner_id: Option<String>,
    /// `user` or `agent`.
    #[oai(nullable)]
    pub owner_type: Option<OwnerTypeDto>,
    /// Who made the booking.
    #[oai(nullable)]
    pub created_by: Option<String>,
    /// Integrators' own keys and values.
    pub metadata: BTreeMap<String, String>,
    /// Whether it is an all-day event (`startDate`/`endDate` set; `startTime`/`endTime` are
    /// those days' bounds in `timezone`).
    pub all_day: bool,
    /// An all-day event's first day.
    #[oai(nullable)]
    pub start_date: Option<LocalDate>,
    /// The day after an all-day event's last day (exclusive).
    #[oai(nullable)]
    pub end_date: Option<LocalDate>,
    /// `opaque` holds the time; `transparent` blocks nothing.
    pub transparency: TransparencyDto,
    /// A collective appointment's rows, one per host's calendar, the organizer's first: a
    /// change or cancellation of any of them is made to all. Absent for any other event.
    #[oai(skip_serializing_if_is_none)]
    pub hosts: Option<Vec<GroupMemberOut>>,
}

/// One host's row of a collective appointment.
#[derive(Object, Clone, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GroupMemberOut {
    /// The host's calendar.
    pub calendar_id: Uuid,
    /// The appointment's event on that calendar.
    pub event_id: Uuid,
}

impl From<entity::events::Model> for EventOut {
    fn from(m: entity::events::Model) -> Self {
        let attendees = repo::events::attendees_of(&m)
            .into_iter()
            .map(|a| AttendeeOut {
                name: a.name,
                email: a.email,
                optional: a.optional,
                response_status: a.response_status.into(),
            })
            .collect();
        let metadata = repo::events::metadata_of(&m);
        // Written by this code; an unreadable group shows none rather than failing the read.
        let hosts = group_of(&m).ok().flatten().map(|group| {
            group
                .into_iter()
                .map(|g| GroupMemberOut {
                    calendar_id: g.calendar_id.0,
                    event_id: g.event_id.0,
                })
                .collect()
        });
        EventOut {
            hosts,
            description: m.description,
            kind: m.kind,
            attendees,
            owner_id: m.owner_id,
            owner_type: match m.owner_type.as_deref() {
                Some("agent") => Some(OwnerTypeDto::Agent),
                Some("user") => Some(OwnerTypeDto::User),
                _ => None,
            },
            created_by: m.created_by,
            metadata,
            all_day: m.all_day,
            start_date: m.start_date.map(LocalDate),
            end_date: m.end_date.map(LocalDate),
            transparency: match Transparency::from_stored(&m.transparency) {
                Transparency::Opaque => TransparencyDto::Opaque,
                Transparency::Transparent => TransparencyDto::Transparent,
            },
            id: m.id.0,
            calendar_id: m.calendar_id.0,
            event_type_id: m.event_type_id.map(|t| t.0),
            start_time: m.start_time.into(),
            end_time: m.end_time.into(),
            timezone: m.timezone,
            customer_name: m.customer_name,
            customer_phone: m.customer_phone,
            customer_email: m.customer_email,
            notes: m.notes,
            title: m.title,
            location: m.location,
            status: m.status.into(),
            booked_via: BookedVia::from_stored(&m.booked_via),
            cancellation_reason: m.cancellation_reason,
            cancelled_at: m.cancelled_at.map(Into::into),
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

impl Example for EventOut {
    fn example() -> Self {
        let t = |s: &str| Timestamp(parse_instant(s, None).unwrap_or_default());
        EventOut {
            id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-000000000e01").unwrap_or_default(),
            calendar_id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-0000000000c1")
                .unwrap_or_default(),
            event_type_id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-0000000000e1").ok(),
            start_time: t("2026-04-10T09:00:00Z"),
            end_time: t("2026-04-10T09:30:00Z"),
            timezone: "Europe/Rome".into(),
            customer_name: Some("Mario Rossi".into()),
            customer_phone: Some("+1234567890".into()),
            customer_email: Some("mario.rossi@example.com".into()),
            notes: Some("Consulenza iniziale".into()),
            title: Some("Demo Prodotto".into()),
            location: Some("Zoom".into()),
            status: EventStatus::Confirmed,
            booked_via: BookedVia::Api,
            cancellation_reason: None,
            cancelled_at: None,
            created_at: t("2026-04-05T10:00:00Z"),
            updated_at: t("2026-04-05T10:00:00Z"),
            description: None,
            kind: Some("appointment".into()),
            attendees: Vec::new(),
            owner_id: None,
            owner_type: None,
            created_by: Some("voice-agent-7".into()),
            metadata: BTreeMap::from([("crmId".to_string(), "L-1042".to_string())]),
            all_day: false,
            start_date: None,
            end_date: None,
            transparency: TransparencyDto::Opaque,
            hosts: None,
        }
    }
}

/// Changes to an event; absent fields stay as they are, `null` clears an optional one. New times
/// are checked like a new booking. A new `startTime` alone keeps the booking's length.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventPatch {
    /// ISO 8601, read like `startTime` of a new booking.
    #[oai(nullable, validator(max_length = 64))]
    pub start_time: Option<String>,
    /// ISO 8601, read like `endTime` of a new booking.
    #[oai(nullable, validator(max_length = 64))]
    pub end_time: Option<String>,
    /// IANA time zone of the appointment; local times in this request are read in it.
    #[oai(nullable, validator(max_length = 64))]
    pub timezone: Option<String>,
    #[oai(nullable, validator(max_length = 200))]
    /// Name of the customer; `null` clears it.
    pub customer_name: MaybeUndefined<String>,
    /// International number, normalised to E.164.
    #[oai(nullable, validator(max_length = 40))]
    pub customer_phone: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 254))]
    /// An email address; `null` clears it.
    pub customer_email: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 200))]
    /// Title; `null` clears it.
    pub title: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 500))]
    /// An address or a meeting link; `null` clears it.
    pub location: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 5000))]
    /// Free-text notes; `null` clears it.
    pub notes: MaybeUndefined<String>,
    /// `confirmed`, `tentative`, or `cancelled` (like the cancel operation). Leaving `cancelled`
    /// re-checks the time like a new booking: overlap, working hours, date overrides, minimum
    /// notice, maximum advance (all but overlap lifted by `force`) and an active event type.
    #[oai(nullable)]
    pub status: Option<EventStatus>,
    /// Lifts the working-hours, minimum-notice and maximum-advance rules for new times and for
    /// leaving `cancelled`. Nothing lifts the overlap rule.
    #[oai(nullable)]
    pub force: Option<bool>,
    /// For a booking of a round-robin event type: when its host cannot take the new time, let
    /// another free host take it (the event is cancelled and the answer is a new event, with a
    /// new id, on that host's calendar). Default false: 409 instead.
    #[oai(nullable)]
    pub reassign: Option<bool>,
    /// New all-day first day, with `endDate` (makes the event all-day).
    #[oai(nullable)]
    pub start_date: Option<LocalDate>,
    /// New all-day end (exclusive), with `startDate`.
    #[oai(nullable)]
    pub end_date: Option<LocalDate>,
    /// Longer free text; `null` clears it.
    #[oai(nullable, validator(max_length = 8000))]
    pub description: MaybeUndefined<String>,
    /// The free tag; `null` clears it.
    #[oai(rename = "type", nullable, validator(max_length = 64))]
    pub kind: MaybeUndefined<String>,
    /// Replaces the attendees (`[]` or `null` removes them all).
    #[oai(nullable)]
    pub attendees: MaybeUndefined<Vec<AttendeeIn>>,
    /// Who the event belongs to; `null` clears it.
    #[oai(nullable, validator(max_length = 255))]
    pub owner_id: MaybeUndefined<String>,
    /// `user` or `agent`; `null` clears it.
    #[oai(nullable)]
    pub owner_type: MaybeUndefined<OwnerTypeDto>,
    /// Replaces the metadata (`{}` or `null` removes it).
    #[oai(nullable)]
    pub metadata: MaybeUndefined<BTreeMap<String, String>>,
    /// `opaque` or `transparent`; becoming opaque is checked for overlap.
    #[oai(nullable)]
    pub transparency: Option<TransparencyDto>,
}

/// Why an event is cancelled.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CancelIn {
    /// Free text, stored and returned as `cancellationReason`.
    #[oai(nullable, validator(max_length = 1000))]
    pub reason: Option<String>,
}

/// One event.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// The event.
    pub data: EventOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// A page of events.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventList {
    /// This page of events.
    pub data: Vec<EventOut>,
    /// Where this page sits in the whole result; `null` when the request used `cursor`
    /// (keyset paging counts nothing).
    #[oai(nullable)]
    pub pagination: Option<Pagination>,
    /// Pass as `cursor` to get the events after this page; `null` when there are none.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn envelope(m: entity::events::Model) -> Json<EventEnvelope> {
    Json(EventEnvelope {
        data: m.into(),
        request_id: request_id::current(),
    })
}

/// The answers a write stores with itself for `Idempotency-Key` replays (`idempotency::seal`).
fn render_created(m: &entity::events::Model) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    (201, envelope(m.clone()).0.to_json_string())
}

fn render_ok(m: &entity::events::Model) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    (200, envelope(m.clone()).0.to_json_string())
}

#[derive(ApiResponse)]
pub enum ListEventsResponse {
    /// A page of events, sorted by startTime then id.
    #[oai(status = 200)]
    Ok(Json<EventList>),
}

#[derive(ApiResponse)]
pub enum CreateEventResponse {
    /// The event was booked.
    #[oai(status = 201)]
    Created(Json<EventEnvelope>),
}

#[derive(ApiResponse)]
pub enum EventResponse {
    /// The event.
    #[oai(status = 200)]
    Ok(Json<EventEnvelope>),
}

#[derive(ApiResponse)]
pub enum CancelEventResponse {
    /// The event is cancelled (now, or it already was) and no longer holds its time.
    #[oai(status = 200)]
    Ok(Json<EventEnvelope>),
}

/// Parsed contact fields of a request; invalid ones are recorded in `v`.
struct Contact {
    phone: Option<String>,
    email: Option<String>,
}

fn parse_contact(v: &mut Violations, phone: Option<&str>, email: Option<&str>) -> Contact {
    let phone = phone.map(|p| parse_phone(v, p)).unwrap_or_default();
    let email = email.map(|e| parse_email(v, e)).unwrap_or_default();
    Contact { phone, email }
}

/// A phone field: blank means none; anything else must come to E.164.
fn parse_phone(v: &mut Violations, phone: &str) -> Option<String> {
    Some(phone)
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| v.check("customerPhone", Phone::parse(p)))
        .map(|p| p.as_str().to_string())
}

/// An email field: blank means none; anything else must be an address.
fn parse_email(v: &mut Violations, email: &str) -> Option<String> {
    Some(email)
        .filter(|e| !e.trim().is_empty())
        .and_then(|e| v.check("customerEmail", Email::parse(e)))
        .map(|e| e.as_str().to_string())
}

impl From<EventStatus> for Status {
    fn from(s: EventStatus) -> Self {
        match s {
            EventStatus::Confirmed => Status::Confirmed,
            EventStatus::Tentative => Status::Tentative,
            EventStatus::Cancelled => Status::Cancelled,
        }
    }
}

impl From<Status> for EventStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Confirmed => EventStatus::Confirmed,
            Status::Tentative => EventStatus::Tentative,
            Status::Cancelled => EventStatus::Cancelled,
        }
    }
}

/// A native POST body as a domain booking request, or every bad field at once.
impl TryFrom<EventIn> for BookingRequest {
    type Error = Invalid;

    fn try_from(body: EventIn) -> Result<Self, Invalid> {
        let mut v = Violations::default();
        let zone = request_zone(&mut v, body.timezone.as_deref());
        let times = booking_times(&mut v, &body, zone);
        let contact = parse_contact(
            &mut v,
            body.customer_phone.as_deref(),
            body.customer_email.as_deref(),
        );
        let details = details(&mut v, &body);
        v.finish(|| {
            let (start, end, all_day) = times?;
            Some(BookingRequest {
                calendar: body.calendar_id.map(CalendarId),
                event_type: Some(EventTypeId(body.event_type_id)),
                start,
                end,
                zone: zone.unwrap_or(Zone::UTC),
                customer_name: optional_text(body.customer_name),
                customer_phone: contact.phone,
                customer_email: contact.email,
                title: optional_text(body.title),
                location: optional_text(body.location),
                notes: optional_text(body.notes),
                status: match body.status {
                    Some(NewEventStatus::Tentative) => Status::Tentative,
                    _ => Status::Confirmed,
                },
                force: body.force == Some(true),
                all_day,
                details,
                booked_via: "api",
                // The key is the caller's: the handler sets it.
                hold: None,
            })
        })
    }
}

/// A native PATCH body as a domain update, or every bad field at once.
impl TryFrom<EventPatch> for EventUpdate {
    type Error = Invalid;

    fn try_from(body: EventPatch) -> Result<Self, Invalid> {
        let mut v = Violations::default();
        let zone = request_zone(&mut v, body.timezone.as_deref());
        let start = body
            .start_time
            .as_deref()
            .and_then(|s| v.check("startTime", parse_instant(s, zone)));
        let end = body
            .end_time
            .as_deref()
            .and_then(|e| v.check("endTime", parse_instant(e, zone)));
        let phone = maybe(body.customer_phone).map(|p| p.and_then(|p| parse_phone(&mut v, &p)));
        let email = maybe(body.customer_email).map(|e| e.and_then(|e| parse_email(&mut v, &e)));
        let mut start = start;
        let mut end = end;
        let all_day = match (body.start_date, body.end_date) {
            (None, None) => (start.is_some() || end.is_some()).then_some(None),
            (Some(s), Some(e)) if start.is_none() && end.is_none() && body.start_time.is_none() => {
                let dates = AllDay {
                    start: s.0,
                    end: e.0,
                };
                match all_day_span(dates.start, dates.end, zone.unwrap_or(Zone::UTC)) {
                    Ok((first, last)) => {
                        start = Some(first);
                        end = Some(last);
                        Some(Some(dates))
                    }
                    Err((field, message)) => {
                        v.add(field, message);
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                v.add("startDate", "give new times or new dates, not both");
                None
            }
            (Some(_), None) => {
                v.add("endDate", "is required with startDate");
                None
            }
            (None, Some(_)) => {
                v.add("startDate", "is required with endDate");
                None
            }
        };
        let attendees = maybe(body.attendees).map(|a| {
            a.map(|list| parse_attendees(&mut v, "attendees", attendee_inputs(&list)))
                .unwrap_or_default()
        });
        let metadata = maybe(body.metadata).map(|m| {
            m.map(|m| parse_metadata(&mut v, "metadata", m))
                .unwrap_or_default()
        });
        v.into_result()?;
        Ok(EventUpdate {
            start,
            end,
            zone,
            all_day,
            description: maybe(body.description).map(optional_text),
            kind: maybe(body.kind).map(optional_text),
            attendees,
            created_by: None,
            owner_id: maybe(body.owner_id).map(optional_text),
            owner_type: maybe(body.owner_type).map(|o| o.map(owner_type)),
            metadata,
            transparency: body.transparency.map(transparency),
            detach_from_series: true,
            customer_name: maybe(body.customer_name).map(optional_text),
            customer_phone: phone,
            customer_email: email,
            title: maybe(body.title).map(optional_text),
            location: maybe(body.location).map(optional_text),
            notes: maybe(body.notes).map(optional_text),
            status: body.status.map(Into::into),
            force: body.force == Some(true),
            ical_uid: None,
            extras: None,
            expected_seq: None,
            reassign: body.reassign == Some(true),
        })
    }
}

pub struct EventsApi;

#[OpenApi(prefix_path = "/v1/calendar/events", tag = "ApiTags::Events")]
impl EventsApi {
    /// List events
    ///
    /// A page of the organization's appointments, sorted by startTime then id, optionally
    /// filtered. Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "listEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// Page number, from 1.
        #[oai(
            default = "crate::pagination::default_page",
            validator(minimum(value = "1"))
        )]
        page: Query<u64>,
        /// Items per page, 1 to 100.
        #[oai(
            default = "crate::pagination::default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u64>,
        /// Only events on this calendar.
        #[oai(name = "calendarId")]
        calendar_id: Query<Option<Uuid>>,
        /// Only events of this event type.
        #[oai(name = "eventTypeId")]
        event_type_id: Query<Option<Uuid>>,
        /// Only events with this status.
        status: Query<Option<EventStatus>>,
        /// Only events starting at or after this instant (ISO 8601 with an offset).
        #[oai(name = "dateFrom")]
        date_from: Query<Option<Timestamp>>,
        /// Only events starting before this instant (ISO 8601 with an offset).
        #[oai(name = "dateTo")]
        date_to: Query<Option<Timestamp>>,
        /// Keyset paging: the `nextCursor` of a previous response. Returns the events after it
        /// at constant cost however deep (no count, no offset); `page` is then ignored.
        #[oai(validator(max_length = 100))]
        cursor: Query<Option<String>>,
        /// Only events of this customer phone (normalised to E.164 before comparing, so
        /// `+39 06 1234 5678` finds `+390612345678`; an unencoded `+` is understood).
        #[oai(name = "customerPhone", validator(max_length = 40))]
        customer_phone: Query<Option<String>>,
        /// Only events of this customer email (the domain compared case-insensitively).
        #[oai(name = "customerEmail", validator(max_length = 254))]
        customer_email: Query<Option<String>>,
    ) -> Result<ListEventsResponse, Fail<LIST>> {
        let mut v = Violations::default();
        let phone = customer_phone.0.as_deref().map(|p| {
            // In a query string an unencoded `+` arrives as a space.
            let p = if p.starts_with(' ') {
                format!("+{}", p.trim_start())
            } else {
                p.to_string()
            };
            v.check("customerPhone", Phone::parse(&p))
                .map(|p| p.as_str().to_string())
        });
        let email = customer_email.0.as_deref().map(|e| {
            v.check("customerEmail", Email::parse(e))
                .map(|e| e.as_str().to_string())
        });
        v.into_result()?;
        let position = cursor
            .0
            .as_deref()
            .map(|c| Cursor::decode(c).map_err(|e| ApiError::field("cursor", e)))
            .transpose()?;
        let req = PageRequest::new(Some(page.0), Some(limit.0));
        let filter = EventFilter {
            calendar_id: calendar_id.0.map(CalendarId),
            event_type_id: event_type_id.0.map(EventTypeId),
            status: status.0.map(Into::into),
            date_from: date_from.0.map(|t| t.0),
            date_to: date_to.0.map(|t| t.0),
            customer_phone: phone.flatten(),
            customer_email: email.flatten(),
            customer_name_part: None,
        };
        let org = auth.0.org_id;
        let (items, pagination, more) = match position {
            Some(after) => {
                let (items, more) = repo::events::list_after(
                    &state.db,
                    org,
                    filter,
                    (after.time, after.id),
                    req.limit,
                )
                .await?;
                (items, None, more)
            }
            None => {
                let (items, total) = repo::events::list(&state.db, org, filter, req).await?;
                let more = req.offset() + (items.len() as u64) < total;
                (items, Some(Pagination::new(req, total)), more)
            }
        };
        let next_cursor = items.last().filter(|_| more).map(|last| {
            Cursor {
                time: last.start_time,
                id: last.id.0,
            }
            .encode()
        });
        Ok(ListEventsResponse::Ok(Json(EventList {
            data: items.into_iter().map(Into::into).collect(),
            pagination,
            next_cursor,
            request_id: request_id::current(),
        })))
    }

    /// Book an event
    ///
    /// Books an appointment on a calendar. The time must not overlap a confirmed or tentative
    /// event or a live slot hold on that calendar (each widened by its event type's buffers); a
    /// race between simultaneous requests books exactly one. With `holdId`, turns that hold into
    /// the appointment. Scope: `calendar:write`, or a publishable key bound to the event type
    /// (the booking is then `bookedVia: "widget"`, `force` is refused, and a refusal never
    /// names the booking in the way).
    #[oai(path = "/", method = "post", operation_id = "createEvent")]
    async fn create(
        &self,
        auth: WriteOrPublishable,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours (with
        /// `Idempotent-Replayed: true`) and nothing is booked twice. At most 255 visible ASCII characters.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<EventIn>,
    ) -> Result<CreateEventResponse, Fail<CREATE_EVENT>> {
        let tenant = auth.tenant();
        let hold = body.0.hold_id;
        let mut request = BookingRequest::try_from(body.0)?;
        request.hold = hold.map(|id| HoldClaim {
            id: HoldId(id),
            key: tenant.key_id,
        });
        if tenant.publishable.is_some() {
            if request.force {
                return Err(
                    Invalid::one("force", "a publishable key cannot force a booking").into(),
                );
            }
            request.booked_via = "widget";
        }
        if let Some(event_type) = request.event_type {
            check_bound(tenant, event_type)?;
        }
        let model = state
            .service
            .book(tenant.org_id, request, &render_created)
            .await
            .map_err(|e| for_caller(tenant, e))?;
        Ok(CreateEventResponse::Created(envelope(model)))
    }

    /// Get an event
    ///
    /// Scope: `calendar:read`.
    #[oai(path = "/:id", method = "get", operation_id = "getEvent")]
    async fn get(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// Event id.
        id: Path<Uuid>,
    ) -> Result<EventResponse, Fail<READ>> {
        let model = state.service.event(auth.0.org_id, EventId(id.0)).await?;
        Ok(EventResponse::Ok(envelope(model)))
    }

    /// Update an event
    ///
    /// Reschedules or edits an appointment. New times, and leaving `cancelled`, are checked like
    /// a new booking (409 `slot_unavailable` with the reason); an event never collides with
    /// itself. Times that do not change are not re-checked, so editing notes keeps a booking
    /// whose hours have changed since. Local times need a `timezone` in the request.
    /// Scope: `calendar:write`.
    #[oai(path = "/:id", method = "patch", operation_id = "updateEvent")]
    async fn update(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Event id.
        id: Path<Uuid>,
        body: JsonBody<EventPatch>,
    ) -> Result<EventResponse, Fail<UPDATE_EVENT>> {
        let update = EventUpdate::try_from(body.0)?;
        let model = state
            .service
            .update(auth.0.org_id, EventId(id.0), update, &render_ok)
            .await?;
        Ok(EventResponse::Ok(envelope(model)))
    }

    /// Cancel an event
    ///
    /// The event stops holding its time; its slot can be booked again. The optional `reason` is
    /// kept as `cancellationReason`. Cancelling a cancelled event is not an error: it returns the
    /// event unchanged. Scope: `calendar:write`.
    #[oai(path = "/:id/cancel", method = "post", operation_id = "cancelEvent")]
    async fn cancel(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Event id.
        id: Path<Uuid>,
        /// Makes retries safe; see `createEvent`.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: OptionalJsonBody<CancelIn>,
    ) -> Result<CancelEventResponse, Fail<CANCEL_EVENT>> {
        let reason = body.0.and_then(|b| optional_text(b.reason));
        let model = state
            .service
            .cancel(auth.0.org_id, EventId(id.0), reason, &render_ok)
            .await?;
        Ok(CancelEventResponse::Ok(envelope(model)))
    }
}
