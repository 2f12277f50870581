//! Talkover's calendar events: create, list (one calendar, or a batch of calendars), update with
//! PUT (a reschedule or a cancel under the same rules), and add an attendee. snake_case fields,
//! `{"success": true, "data": ...}`; no event types in this dialect, so the calendar's own rules
//! apply (hours, overrides, overlap; not in the past). Times need an offset (`Z`, `+02:00`).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::TalkoverTags;
use super::errors::TFail;
use crate::auth::{ReadAuth, WriteAuth};
use crate::dialects::native::errors::code::{NOT_FOUND, SLOT_UNAVAILABLE};
use crate::dialects::native::errors::{
    AUTHENTICATED, CREATE, CREATE_EVENT, JSON_BODY, LIST, PARAMETERS,
};
use crate::dialects::native::optional_text;
use crate::domain::details::{
    Attendee, AttendeeInput, EventDetails, OwnerType, ResponseStatus, parse_attendees,
};
use crate::domain::ids::{CalendarId, EventId, OrgId};
use crate::domain::time::{Zone, parse_instant};
use crate::domain::violations::{Invalid, Violations};
use crate::payload::JsonBody;
use crate::repo;
use crate::schema::Timestamp;
use crate::service::events::{BookingRequest, EventUpdate, Status};
use crate::service::{Resource, ServiceError};
use crate::state::AppState;

/// `confirmed` and `tentative` hold the time; `cancelled` frees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename = "TalkoverEventStatus", rename_all = "lowercase")]
pub enum TStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

impl From<TStatus> for Status {
    fn from(s: TStatus) -> Self {
        match s {
            TStatus::Confirmed => Status::Confirmed,
            TStatus::Tentative => Status::Tentative,
            TStatus::Cancelled => Status::Cancelled,
        }
    }
}

impl From<Status> for TStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Confirmed => TStatus::Confirmed,
            Status::Tentative => TStatus::Tentative,
            Status::Cancelled => TStatus::Cancelled,
        }
    }
}

/// Whose event it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename = "TalkoverOwnerType", rename_all = "lowercase")]
pub enum TOwnerType {
    User,
    Agent,
}

/// Someone invited.
#[derive(Object, Clone)]
#[oai(rename = "TalkoverAttendeeIn")]
pub struct TAttendeeIn {
    /// Display name.
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    /// A valid email address.
    #[oai(validator(max_length = 254))]
    pub email: String,
}

/// Someone invited, as stored.
#[derive(Object, Clone)]
#[oai(rename = "TalkoverAttendee", skip_serializing_if_is_none)]
pub struct TAttendee {
    /// The attendee's id (attendees added before ids existed have none).
    pub id: Option<Uuid>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: String,
}

impl From<Attendee> for TAttendee {
    fn from(a: Attendee) -> Self {
        TAttendee {
            id: a.id,
            name: a.name,
            email: a.email,
        }
    }
}

/// A new event (Talkover's create-event body).
#[derive(Object)]
#[oai(rename = "TalkoverEventIn", example)]
pub struct TEventIn {
    /// Title of the event.
    #[oai(validator(max_length = 500))]
    pub title: String,
    /// Optional description.
    #[oai(validator(max_length = 8000))]
    pub description: Option<String>,
    /// Start, ISO 8601 with an offset.
    #[oai(validator(max_length = 64))]
    pub start_at: String,
    /// End, ISO 8601 with an offset; after `start_at`.
    #[oai(validator(max_length = 64))]
    pub end_at: String,
    /// `confirmed` (default), `tentative` or `cancelled`.
    pub status: Option<TStatus>,
    /// A free tag (`meeting`, `block`, `appointment`), at most 64 characters.
    #[oai(rename = "type", validator(max_length = 64))]
    pub kind: Option<String>,
    /// Id of the user who created it.
    #[oai(validator(max_length = 255))]
    pub created_by: Option<String>,
    /// Id of the owner (a user or an agent).
    #[oai(validator(max_length = 255))]
    pub owner_id: Option<String>,
    /// `user` or `agent`.
    pub owner_type: Option<TOwnerType>,
    /// People invited: `{name, email}`, at most 100.
    pub attendees: Option<Vec<TAttendeeIn>>,
}

impl poem_openapi::types::Example for TEventIn {
    fn example() -> Self {
        TEventIn {
            title: "Demo with Acme".into(),
            description: None,
            start_at: "2024-01-20T15:00:00Z".into(),
            end_at: "2024-01-20T15:30:00Z".into(),
            status: None,
            kind: Some("meeting".into()),
            created_by: None,
            owner_id: None,
            owner_type: None,
            attendees: Some(vec![TAttendeeIn {
                name: Some("Jane Doe".into()),
                email: "jane@example.com".into(),
            }]),
        }
    }
}

/// Changes to an event (PUT): every create field, all optional. New times reschedule under the
/// same rules; `status: cancelled` cancels and frees the time.
#[derive(Object)]
#[oai(rename = "TalkoverEventUpdate")]
pub struct TEventUpdate {
    /// Title.
    #[oai(validator(max_length = 500))]
    pub title: Option<String>,
    /// Description.
    #[oai(validator(max_length = 8000))]
    pub description: Option<String>,
    /// New start, ISO 8601 with an offset (the length is kept when `end_at` is not given).
    #[oai(validator(max_length = 64))]
    pub start_at: Option<String>,
    /// New end, ISO 8601 with an offset.
    #[oai(validator(max_length = 64))]
    pub end_at: Option<String>,
    /// `confirmed`, `tentative` or `cancelled`.
    pub status: Option<TStatus>,
    /// A free tag.
    #[oai(rename = "type", validator(max_length = 64))]
    pub kind: Option<String>,
    /// Id of the user who created it.
    #[oai(validator(max_length = 255))]
    pub created_by: Option<String>,
    /// Id of the owner.
    #[oai(validator(max_length = 255))]
    pub owner_id: Option<String>,
    /// `user` or `agent`.
    pub owner_type: Option<TOwnerType>,
    /// Replaces the attendees.
    pub attendees: Option<Vec<TAttendeeIn>>,
}

/// An event as Talkover shows it (fields not set are left out).
#[derive(Object)]
#[oai(rename = "TalkoverEvent", skip_serializing_if_is_none, example)]
pub struct TEvent {
    /// Event id.
    pub id: Uuid,
    /// The calendar it is on.
    pub calendar_id: Uuid,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Start (UTC).
    pub start_at: Timestamp,
    /// End (UTC).
    pub end_at: Timestamp,
    /// `confirmed`, `tentative` or `cancelled`.
    pub status: TStatus,
    /// The free tag.
    #[oai(rename = "type")]
    pub kind: Option<String>,
    /// Id of the creator.
    pub created_by: Option<String>,
    /// Id of the owner.
    pub owner_id: Option<String>,
    /// `user` or `agent`.
    pub owner_type: Option<TOwnerType>,
    /// People invited.
    pub attendees: Option<Vec<TAttendee>>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl From<entity::events::Model> for TEvent {
    fn from(m: entity::events::Model) -> Self {
        let attendees: Vec<TAttendee> = repo::events::attendees_of(&m)
            .into_iter()
            .map(Into::into)
            .collect();
        TEvent {
            id: m.id.0,
            calendar_id: m.calendar_id.0,
            title: m.title,
            description: m.description,
            start_at: m.start_time.into(),
            end_at: m.end_time.into(),
            status: m.status.into(),
            kind: m.kind,
            created_by: m.created_by,
            owner_id: m.owner_id,
            owner_type: match m.owner_type.as_deref() {
                Some("agent") => Some(TOwnerType::Agent),
                Some("user") => Some(TOwnerType::User),
                _ => None,
            },
            attendees: (!attendees.is_empty()).then_some(attendees),
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

impl poem_openapi::types::Example for TEvent {
    fn example() -> Self {
        let t = |s: &str| Timestamp(parse_instant(s, None).unwrap_or_default());
        TEvent {
            id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-000000000e01").unwrap_or_default(),
            calendar_id: Uuid::parse_str("0196f6d2-8c1e-7a3b-9f00-0000000000c1")
                .unwrap_or_default(),
            title: Some("Demo with Acme".into()),
            description: None,
            start_at: t("2024-01-20T15:00:00Z"),
            end_at: t("2024-01-20T15:30:00Z"),
            status: TStatus::Confirmed,
            kind: Some("meeting".into()),
            created_by: None,
            owner_id: None,
            owner_type: None,
            attendees: None,
            created_at: t("2024-01-15T10:00:00Z"),
            updated_at: t("2024-01-15T10:00:00Z"),
        }
    }
}

/// One event.
#[derive(Object)]
#[oai(rename = "TalkoverEventEnvelope")]
pub struct TEventEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The event.
    pub data: TEvent,
}

/// Events, sorted by `start_at`.
#[derive(Object)]
#[oai(rename = "TalkoverEventList")]
pub struct TEventList {
    /// Always `true`.
    pub success: bool,
    /// At most 500 events, the earliest first.
    pub data: Vec<TEvent>,
    /// `true` when more than 500 events matched and only the first 500 are listed: narrow
    /// `from`/`to` to see the rest.
    pub has_more: bool,
}

/// An attendee added.
#[derive(Object)]
#[oai(rename = "TalkoverAttendeeEnvelope")]
pub struct TAttendeeEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The attendee, with its id.
    pub data: TAttendee,
}

#[derive(ApiResponse)]
pub enum CreatedEvent {
    /// The event was created.
    #[oai(status = 201)]
    Created(Json<TEventEnvelope>),
}

#[derive(ApiResponse)]
pub enum OneEvent {
    /// The event.
    #[oai(status = 200)]
    Ok(Json<TEventEnvelope>),
}

#[derive(ApiResponse)]
pub enum EventList {
    /// The events.
    #[oai(status = 200)]
    Ok(Json<TEventList>),
}

#[derive(ApiResponse)]
pub enum AddedAttendee {
    /// The attendee was added.
    #[oai(status = 201)]
    Created(Json<TAttendeeEnvelope>),
}

fn envelope(m: entity::events::Model) -> TEventEnvelope {
    TEventEnvelope {
        success: true,
        data: m.into(),
    }
}

fn render_created(m: &entity::events::Model) -> (u16, String) {
    (201, envelope(m.clone()).to_json_string())
}

fn render_ok(m: &entity::events::Model) -> (u16, String) {
    (200, envelope(m.clone()).to_json_string())
}

fn render_attendee(a: &Attendee) -> (u16, String) {
    let body = TAttendeeEnvelope {
        success: true,
        data: a.clone().into(),
    };
    (201, body.to_json_string())
}

fn attendee_inputs(list: &[TAttendeeIn]) -> Vec<AttendeeInput<'_>> {
    list.iter()
        .map(|a| AttendeeInput {
            name: a.name.as_deref(),
            email: Some(a.email.as_str()),
            optional: None,
            response_status: None,
        })
        .collect()
}

fn owner_type(o: TOwnerType) -> OwnerType {
    match o {
        TOwnerType::User => OwnerType::User,
        TOwnerType::Agent => OwnerType::Agent,
    }
}

/// A time field: an offset is required (Talkover has no time zone field).
fn instant(v: &mut Violations, field: &str, value: &str) -> Option<DateTime<Utc>> {
    v.check(field, parse_instant(value, None))
}

fn booking(calendar: CalendarId, body: TEventIn) -> Result<BookingRequest, Invalid> {
    let mut v = Violations::default();
    let start = instant(&mut v, "start_at", &body.start_at);
    let end = instant(&mut v, "end_at", &body.end_at);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.add("end_at", "must be after start_at");
    }
    if body.title.trim().is_empty() {
        v.add("title", "must not be blank");
    }
    let attendees = body
        .attendees
        .as_deref()
        .map(|a| parse_attendees(&mut v, "attendees", attendee_inputs(a)))
        .unwrap_or_default();
    v.finish(|| {
        Some(BookingRequest {
            calendar: Some(calendar),
            event_type: None,
            start: start?,
            end: end?,
            zone: Zone::UTC,
            customer_name: None,
            customer_phone: None,
            customer_email: None,
            title: optional_text(Some(body.title)),
            location: None,
            notes: None,
            status: body.status.map(Into::into).unwrap_or(Status::Confirmed),
            force: false,
            all_day: None,
            details: EventDetails {
                description: optional_text(body.description),
                kind: optional_text(body.kind),
                attendees,
                owner_id: optional_text(body.owner_id),
                owner_type: body.owner_type.map(owner_type),
                created_by: optional_text(body.created_by),
                ..EventDetails::default()
            },
            booked_via: "talkover",
            hold: None,
        })
    })
}

fn update(body: TEventUpdate) -> Result<EventUpdate, Invalid> {
    let mut v = Violations::default();
    let start = body
        .start_at
        .as_deref()
        .and_then(|s| instant(&mut v, "start_at", s));
    let end = body
        .end_at
        .as_deref()
        .and_then(|e| instant(&mut v, "end_at", e));
    if body.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        v.add("title", "must not be blank");
    }
    let attendees = body
        .attendees
        .as_deref()
        .map(|a| parse_attendees(&mut v, "attendees", attendee_inputs(a)));
    v.into_result()?;
    Ok(EventUpdate {
        start,
        end,
        title: body.title.map(|t| optional_text(Some(t))),
        description: body.description.map(|d| optional_text(Some(d))),
        kind: body.kind.map(|k| optional_text(Some(k))),
        created_by: body.created_by.map(|c| optional_text(Some(c))),
        owner_id: body.owner_id.map(|o| optional_text(Some(o))),
        owner_type: body.owner_type.map(|o| Some(owner_type(o))),
        attendees,
        status: body.status.map(Into::into),
        // An instance of a recurring event changed here is changed on its own.
        detach_from_series: true,
        ..EventUpdate::default()
    })
}

/// The event, when it is on `calendar` (an event of another calendar is not found here).
async fn event_on(
    state: &AppState,
    org: OrgId,
    calendar: CalendarId,
    event: EventId,
) -> Result<entity::events::Model, ServiceError> {
    let model = state.service.event(org, event).await?;
    if model.calendar_id != calendar {
        return Err(ServiceError::NotFound(Resource::Event));
    }
    Ok(model)
}

/// Optional lower and upper bounds.
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The `from`/`to` query bounds, each with an offset.
fn bounds(from: Option<&str>, to: Option<&str>) -> Result<Window, Invalid> {
    let mut v = Violations::default();
    let from = from.and_then(|f| instant(&mut v, "from", f));
    let to = to.and_then(|t| instant(&mut v, "to", t));
    v.into_result()?;
    Ok((from, to))
}

fn list(models: Vec<entity::events::Model>, more: bool) -> EventList {
    EventList::Ok(Json(TEventList {
        success: true,
        data: models.into_iter().map(Into::into).collect(),
        has_more: more,
    }))
}

pub struct TalkoverEventsApi;

#[OpenApi(prefix_path = "/api/v1/calendars", tag = "TalkoverTags::Talkover")]
impl TalkoverEventsApi {
    /// Create a calendar event (Talkover)
    ///
    /// Talkover's create-event: books on the calendar under its rules (working hours, date
    /// overrides, not in the past, no overlap with a confirmed or tentative event), answering
    /// `SLOT_UNAVAILABLE` with the reason and the next free slots when the time cannot be booked.
    /// Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/events",
        method = "post",
        operation_id = "talkoverCreateEvent"
    )]
    async fn create(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<TEventIn>,
    ) -> Result<CreatedEvent, TFail<CREATE_EVENT>> {
        let request = booking(CalendarId(calendar_id.0), body.0)?;
        let model = state
            .service
            .book(auth.0.org_id, request, &render_created)
            .await?;
        Ok(CreatedEvent::Created(Json(envelope(model))))
    }

    /// List a calendar's events (Talkover)
    ///
    /// Events starting at or after `from` and ending at or before `to`, optionally of one
    /// `status`, sorted by `start_at`; at most 500 (`has_more` says when there were more).
    /// Scope: `calendar:read`.
    #[oai(
        path = "/:calendar_id/events",
        method = "get",
        operation_id = "talkoverListEvents"
    )]
    async fn list(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// Lower bound of `start_at`, ISO 8601 with an offset.
        #[oai(validator(max_length = 64))]
        from: Query<Option<String>>,
        /// Upper bound of `end_at`, ISO 8601 with an offset.
        #[oai(validator(max_length = 64))]
        to: Query<Option<String>>,
        /// Only events of this status.
        status: Query<Option<TStatus>>,
    ) -> Result<EventList, TFail<{ LIST | NOT_FOUND }>> {
        let (from, to) = bounds(from.0.as_deref(), to.0.as_deref())?;
        let (models, more) = state
            .service
            .events_of_calendars(
                auth.0.org_id,
                &[CalendarId(calendar_id.0)],
                from,
                to,
                status.0.map(Into::into),
            )
            .await?;
        Ok(list(models, more))
    }

    /// List the events of several calendars (Talkover)
    ///
    /// `calendar_ids[]` (repeated, required): every calendar must be one of the organization's
    /// (another one is `NOT_FOUND`). Same bounds and cap as one calendar's list.
    /// Scope: `calendar:read`.
    #[oai(
        path = "/events",
        method = "get",
        operation_id = "talkoverListEventsBatch"
    )]
    async fn batch(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendars, repeated: `calendar_ids[]=a&calendar_ids[]=b`.
        #[oai(name = "calendar_ids[]", explode = true)]
        calendar_ids: Query<Vec<Uuid>>,
        /// Lower bound of `start_at`, ISO 8601 with an offset.
        #[oai(validator(max_length = 64))]
        from: Query<Option<String>>,
        /// Upper bound of `end_at`, ISO 8601 with an offset.
        #[oai(validator(max_length = 64))]
        to: Query<Option<String>>,
    ) -> Result<EventList, TFail<{ LIST | NOT_FOUND }>> {
        if calendar_ids.0.is_empty() {
            return Err(
                Invalid::one("calendar_ids[]", "is required: at least one calendar id").into(),
            );
        }
        if calendar_ids.0.len() > 100 {
            return Err(Invalid::one("calendar_ids[]", "at most 100 calendars at once").into());
        }
        let (from, to) = bounds(from.0.as_deref(), to.0.as_deref())?;
        let calendars: Vec<CalendarId> = calendar_ids.0.iter().copied().map(CalendarId).collect();
        let (models, more) = state
            .service
            .events_of_calendars(auth.0.org_id, &calendars, from, to, None)
            .await?;
        Ok(list(models, more))
    }

    /// Update a calendar event (Talkover)
    ///
    /// Every field optional. New times reschedule under the calendar's rules (the length is kept
    /// when only `start_at` is given); `status: cancelled` cancels and frees the time.
    /// Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/events/:event_id",
        method = "put",
        operation_id = "talkoverUpdateEvent"
    )]
    async fn update(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// The event.
        event_id: Path<Uuid>,
        body: JsonBody<TEventUpdate>,
    ) -> Result<OneEvent, TFail<{ AUTHENTICATED | JSON_BODY | NOT_FOUND | SLOT_UNAVAILABLE }>> {
        let org = auth.0.org_id;
        let change = update(body.0)?;
        let id = EventId(event_id.0);
        event_on(&state, org, CalendarId(calendar_id.0), id).await?;
        let model = state.service.update(org, id, change, &render_ok).await?;
        Ok(OneEvent::Ok(Json(envelope(model))))
    }

    /// Add an attendee (Talkover)
    ///
    /// `{name, email}`; an address already invited is refused (`VALIDATION_ERROR` on `email`).
    /// Answers the attendee with its `id`. Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/events/:event_id/attendees",
        method = "post",
        operation_id = "talkoverAddAttendee"
    )]
    async fn add_attendee(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// The event.
        event_id: Path<Uuid>,
        /// Makes retries safe.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<TAttendeeIn>,
    ) -> Result<AddedAttendee, TFail<{ CREATE | NOT_FOUND | PARAMETERS }>> {
        let org = auth.0.org_id;
        let id = EventId(event_id.0);
        event_on(&state, org, CalendarId(calendar_id.0), id).await?;
        let mut v = Violations::default();
        let body = body.0;
        let mut parsed = parse_attendees(&mut v, "attendees", attendee_inputs(&[body]));
        if let Err(mut invalid) = v.into_result() {
            for problem in &mut invalid.0 {
                problem.field = problem
                    .field
                    .trim_start_matches("attendees[0].")
                    .to_string();
            }
            return Err(invalid.into());
        }
        let Some(mut attendee) = parsed.pop() else {
            return Err(Invalid::one("email", "is required").into());
        };
        attendee.response_status = ResponseStatus::NeedsAction;
        let added = state
            .service
            .add_attendee(org, id, attendee, &render_attendee)
            .await?;
        Ok(AddedAttendee::Created(Json(TAttendeeEnvelope {
            success: true,
            data: added.into(),
        })))
    }
}
