//! `/v1/calendar/event-types`: what can be booked, and the rules a booking of it follows.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::errors::{CREATE_REFERRING, Fail, LIST, READ, UPDATE};
use super::{ApiTags, check_bound, maybe, optional_text};
use crate::auth::{ReadAuth, ReadOrPublishable, WriteAuth};
use crate::domain::ids::{CalendarId, EventTypeId};
use crate::domain::team::{self, Assignment, Host};
use crate::error::Violations;
use crate::middleware::request_id;
use crate::pagination::{PageRequest, Pagination};
use crate::payload::JsonBody;
use crate::repo;
use crate::repo::event_types::{EventTypeChanges, NewEventType};
use crate::schema::Timestamp;
use crate::state::AppState;

/// A new event type.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct EventTypeIn {
    /// The only calendar it can be booked on; `null` or absent = any calendar of the organization.
    #[oai(nullable)]
    pub calendar_id: Option<Uuid>,
    /// Display name, e.g. "30-min demo".
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Length of the slots availability offers, in minutes (1 to 10080).
    #[oai(validator(minimum(value = "1"), maximum(value = "10080")))]
    pub duration_minutes: i32,
    /// Time kept free before each booking, in minutes (0 to 1440, default 0).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1440")))]
    pub buffer_before_minutes: Option<i32>,
    /// Time kept free after each booking, in minutes (0 to 1440, default 0).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1440")))]
    pub buffer_after_minutes: Option<i32>,
    /// How long before its start a booking must be made, in minutes (0 to 525600); `null` = no rule.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "525600")))]
    pub minimum_notice_minutes: Option<i32>,
    /// Step between offered slot starts, in minutes (1 to 1440); `null` = the duration.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1440")))]
    pub slot_interval_minutes: Option<i32>,
    /// How many days ahead it can be booked (1 to 3650); `null` = no limit.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub max_advance_days: Option<i32>,
    /// Where it happens: an address or a meeting link.
    #[oai(nullable, validator(max_length = 500))]
    pub location: Option<String>,
    /// Whether it can be booked (default true).
    #[oai(nullable)]
    pub active: Option<bool>,
    /// Who takes a booking (default `single`): `single` books one calendar (`calendarId` of the
    /// booking, or the type's own); `roundRobin` gives each booking to one free host, by
    /// priority, then fewest recent bookings for its weight; `collective` books every host at
    /// once. A team type (`roundRobin`, `collective`) has `hosts` and no `calendarId`.
    #[oai(nullable)]
    pub assignment: Option<AssignmentDoc>,
    /// A team type's hosts, 1 to 100 calendars of the organization, each once.
    #[oai(nullable)]
    pub hosts: Option<Vec<HostIn>>,
}

/// Who takes a booking of an event type.
#[derive(poem_openapi::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub enum AssignmentDoc {
    Single,
    RoundRobin,
    Collective,
}

impl From<AssignmentDoc> for Assignment {
    fn from(a: AssignmentDoc) -> Self {
        match a {
            AssignmentDoc::Single => Assignment::Single,
            AssignmentDoc::RoundRobin => Assignment::RoundRobin,
            AssignmentDoc::Collective => Assignment::Collective,
        }
    }
}

impl From<Assignment> for AssignmentDoc {
    fn from(a: Assignment) -> Self {
        match a {
            Assignment::Single => AssignmentDoc::Single,
            Assignment::RoundRobin => AssignmentDoc::RoundRobin,
            Assignment::Collective => AssignmentDoc::Collective,
        }
    }
}

/// A host of a team event type.
#[derive(Object, Clone, Debug)]
#[oai(rename_all = "camelCase")]
pub struct HostIn {
    /// The host's calendar.
    pub calendar_id: Uuid,
    /// Round-robin share: a host of weight 2 gets twice the bookings of one of weight 1
    /// (1 to 1000, default 1).
    #[oai(nullable)]
    pub weight: Option<i64>,
    /// 0 (lowest) to 4 (highest), default 2: a free host of higher priority always gets the
    /// booking first.
    #[oai(nullable)]
    pub priority: Option<i64>,
}

/// A host of a team event type.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HostOut {
    /// The host's calendar.
    pub calendar_id: Uuid,
    /// Round-robin share.
    pub weight: u32,
    /// 0 (lowest) to 4 (highest).
    pub priority: u8,
}

/// The hosts of a request, each weight and priority in range, each calendar once (every
/// problem of the list named at once; whether the assignment wants hosts, and whether they
/// are the organization's calendars, is the service's to say).
fn parse_hosts(v: &mut Violations, hosts: Vec<HostIn>) -> Vec<Host> {
    let parsed = parse_host_fields(v, hosts);
    if !parsed.is_empty()
        && let Err(invalid) = team::check_hosts(Assignment::RoundRobin, &parsed)
    {
        for problem in invalid.0 {
            v.add(&problem.field, problem.message);
        }
    }
    parsed
}

fn parse_host_fields(v: &mut Violations, hosts: Vec<HostIn>) -> Vec<Host> {
    hosts
        .into_iter()
        .enumerate()
        .map(|(i, h)| Host {
            calendar_id: h.calendar_id,
            weight: match h.weight {
                None => team::DEFAULT_WEIGHT,
                Some(w) => u32::try_from(w)
                    .ok()
                    .filter(|w| (1..=team::MAX_WEIGHT).contains(w))
                    .unwrap_or_else(|| {
                        v.add(
                            &format!("hosts[{i}].weight"),
                            format!("must be 1 to {}, got {w}", team::MAX_WEIGHT),
                        );
                        team::DEFAULT_WEIGHT
                    }),
            },
            priority: match h.priority {
                None => team::DEFAULT_PRIORITY,
                Some(p) => u8::try_from(p)
                    .ok()
                    .filter(|p| *p <= team::MAX_PRIORITY)
                    .unwrap_or_else(|| {
                        v.add(
                            &format!("hosts[{i}].priority"),
                            format!(
                                "must be 0 (lowest) to {} (highest), got {p}",
                                team::MAX_PRIORITY
                            ),
                        );
                        team::DEFAULT_PRIORITY
                    }),
            },
        })
        .collect()
}

impl Example for EventTypeIn {
    fn example() -> Self {
        EventTypeIn {
            calendar_id: None,
            name: "Demo Prodotto".into(),
            duration_minutes: 30,
            buffer_before_minutes: Some(0),
            buffer_after_minutes: Some(10),
            minimum_notice_minutes: Some(60),
            slot_interval_minutes: Some(30),
            max_advance_days: Some(60),
            location: Some("Zoom".into()),
            active: Some(true),
            assignment: None,
            hosts: None,
        }
    }
}

/// Changes to an event type; absent fields stay as they are, `null` clears an optional one.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventTypePatch {
    /// The only calendar it can be booked on; `null` = any calendar.
    #[oai(nullable)]
    pub calendar_id: MaybeUndefined<Uuid>,
    #[oai(nullable, validator(min_length = 1, max_length = 200))]
    /// Display name.
    pub name: Option<String>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10080")))]
    /// Slot length in minutes (1 to 10080).
    pub duration_minutes: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1440")))]
    /// Minutes kept free before each booking (0 to 1440).
    pub buffer_before_minutes: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1440")))]
    /// Minutes kept free after each booking (0 to 1440).
    pub buffer_after_minutes: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "525600")))]
    /// Minutes of notice a booking needs (0 to 525600); `null` = no rule.
    pub minimum_notice_minutes: MaybeUndefined<i32>,
    /// Step between offered slot starts (1 to 1440); `null` = the duration.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1440")))]
    pub slot_interval_minutes: MaybeUndefined<i32>,
    /// Days ahead it can be booked (1 to 3650); `null` = no limit.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub max_advance_days: MaybeUndefined<i32>,
    #[oai(nullable, validator(max_length = 500))]
    /// Where it happens; `null` clears it.
    pub location: MaybeUndefined<String>,
    /// Whether it can be booked.
    #[oai(nullable)]
    pub active: Option<bool>,
    /// Who takes a booking; changing it to a team assignment needs `hosts` (and no
    /// `calendarId`), back to `single` drops them. Existing bookings stay where they are.
    #[oai(nullable)]
    pub assignment: Option<AssignmentDoc>,
    /// A team type's hosts, replaced whole.
    #[oai(nullable)]
    pub hosts: Option<Vec<HostIn>>,
}

/// An event type.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventTypeOut {
    /// Event type id (UUID v7).
    pub id: Uuid,
    /// The only calendar it can be booked on; `null` = any calendar of the organization.
    #[oai(nullable)]
    pub calendar_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// Length of the slots availability offers, in minutes.
    pub duration_minutes: i32,
    /// Time kept free before each booking, in minutes.
    pub buffer_before_minutes: i32,
    /// Time kept free after each booking, in minutes.
    pub buffer_after_minutes: i32,
    /// `null` = no rule.
    #[oai(nullable)]
    pub minimum_notice_minutes: Option<i32>,
    /// Step between offered slot starts in minutes; `null` = the duration.
    #[oai(nullable)]
    pub slot_interval_minutes: Option<i32>,
    /// How many days ahead it can be booked; `null` = no limit.
    #[oai(nullable)]
    pub max_advance_days: Option<i32>,
    /// Where it happens.
    #[oai(nullable)]
    pub location: Option<String>,
    /// Whether it can be booked.
    pub active: bool,
    /// Who takes a booking: `single`, `roundRobin` or `collective`.
    pub assignment: AssignmentDoc,
    /// A team type's hosts (empty for `single`).
    pub hosts: Vec<HostOut>,
    /// When it was created (UTC).
    pub created_at: Timestamp,
    /// When it last changed (UTC).
    pub updated_at: Timestamp,
}

impl From<entity::event_types::Model> for EventTypeOut {
    fn from(m: entity::event_types::Model) -> Self {
        // Stored by this code, checked on the way in; unreadable reads as single, no hosts
        // (bookings of such a type fail loudly in the service instead).
        let (assignment, hosts) =
            repo::event_types::team_of(&m).unwrap_or((Assignment::Single, Vec::new()));
        EventTypeOut {
            assignment: assignment.into(),
            hosts: hosts
                .into_iter()
                .map(|h| HostOut {
                    calendar_id: h.calendar_id,
                    weight: h.weight,
                    priority: h.priority,
                })
                .collect(),
            id: m.id.0,
            calendar_id: m.calendar_id.map(|c| c.0),
            name: m.name,
            duration_minutes: m.duration_minutes,
            buffer_before_minutes: m.buffer_before_minutes,
            buffer_after_minutes: m.buffer_after_minutes,
            minimum_notice_minutes: m.minimum_notice_minutes,
            slot_interval_minutes: m.slot_interval_minutes,
            max_advance_days: m.max_advance_days,
            location: m.location,
            active: m.active,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// One event type.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventTypeEnvelope {
    /// The event type.
    pub data: EventTypeOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// A page of event types.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventTypeList {
    /// This page of event types.
    pub data: Vec<EventTypeOut>,
    /// Where this page sits in the whole result.
    pub pagination: Pagination,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn envelope(m: entity::event_types::Model) -> Json<EventTypeEnvelope> {
    Json(EventTypeEnvelope {
        data: m.into(),
        request_id: request_id::current(),
    })
}

/// The answer a create stores with itself for `Idempotency-Key` replays.
fn render_created(m: &entity::event_types::Model) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    (201, envelope(m.clone()).0.to_json_string())
}

#[derive(ApiResponse)]
pub enum ListEventTypesResponse {
    /// A page of the organization's event types, oldest first.
    #[oai(status = 200)]
    Ok(Json<EventTypeList>),
}

#[derive(ApiResponse)]
pub enum CreateEventTypeResponse {
    /// The event type was created.
    #[oai(status = 201)]
    Created(Json<EventTypeEnvelope>),
}

#[derive(ApiResponse)]
pub enum EventTypeResponse {
    /// The event type.
    #[oai(status = 200)]
    Ok(Json<EventTypeEnvelope>),
}

fn blank_name(v: &mut Violations, name: Option<&str>) {
    if name.is_some_and(|n| n.trim().is_empty()) {
        v.add("name", "must not be blank");
    }
}

pub struct EventTypesApi;

#[OpenApi(prefix_path = "/v1/calendar/event-types", tag = "ApiTags::EventTypes")]
impl EventTypesApi {
    /// List event types
    ///
    /// A page of the organization's event types, oldest first, optionally only those of one
    /// calendar. Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "listEventTypes")]
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
        /// Only event types bound to this calendar.
        #[oai(name = "calendarId")]
        calendar_id: Query<Option<Uuid>>,
    ) -> Result<ListEventTypesResponse, Fail<LIST>> {
        let req = PageRequest::new(Some(page.0), Some(limit.0));
        let (items, total) =
            repo::event_types::list(&state.db, auth.0.org_id, calendar_id.0.map(CalendarId), req)
                .await?;
        Ok(ListEventTypesResponse::Ok(Json(EventTypeList {
            data: items.into_iter().map(Into::into).collect(),
            pagination: Pagination::new(req, total),
            request_id: request_id::current(),
        })))
    }

    /// Create an event type
    ///
    /// Scope: `calendar:write`.
    #[oai(path = "/", method = "post", operation_id = "createEventType")]
    async fn create(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<EventTypeIn>,
    ) -> Result<CreateEventTypeResponse, Fail<CREATE_REFERRING>> {
        let org = auth.0.org_id;
        let body = body.0;
        let mut v = Violations::default();
        blank_name(&mut v, Some(&body.name));
        let hosts = parse_hosts(&mut v, body.hosts.unwrap_or_default());
        v.into_result()?;
        let calendar_id = body.calendar_id.map(CalendarId);
        let new = NewEventType {
            calendar_id,
            name: body.name.trim().to_string(),
            duration_minutes: body.duration_minutes,
            buffer_before_minutes: body.buffer_before_minutes.unwrap_or(0),
            buffer_after_minutes: body.buffer_after_minutes.unwrap_or(0),
            minimum_notice_minutes: body.minimum_notice_minutes,
            slot_interval_minutes: body.slot_interval_minutes,
            max_advance_days: body.max_advance_days,
            location: optional_text(body.location),
            active: body.active.unwrap_or(true),
            assignment: body.assignment.map_or(Assignment::Single, Into::into),
            hosts,
        };
        let model = state
            .service
            .create_event_type(org, new, &render_created)
            .await?;
        Ok(CreateEventTypeResponse::Created(envelope(model)))
    }

    /// Get an event type
    ///
    /// Scope: `calendar:read`, or a publishable key bound to it (a booking widget shows its
    /// name, duration and location).
    #[oai(path = "/:id", method = "get", operation_id = "getEventType")]
    async fn get(
        &self,
        auth: ReadOrPublishable,
        state: Data<&AppState>,
        /// Event type id.
        id: Path<Uuid>,
    ) -> Result<EventTypeResponse, Fail<READ>> {
        let tenant = auth.tenant();
        check_bound(tenant, EventTypeId(id.0))?;
        let model = state
            .service
            .event_type(tenant.org_id, EventTypeId(id.0))
            .await?;
        Ok(EventTypeResponse::Ok(envelope(model)))
    }

    /// Update an event type
    ///
    /// Changes only the fields present in the body. Existing bookings keep their times and
    /// blocks. Scope: `calendar:write`.
    #[oai(path = "/:id", method = "patch", operation_id = "updateEventType")]
    async fn update(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Event type id.
        id: Path<Uuid>,
        body: JsonBody<EventTypePatch>,
    ) -> Result<EventTypeResponse, Fail<UPDATE>> {
        let org = auth.0.org_id;
        let body = body.0;
        let mut v = Violations::default();
        blank_name(&mut v, body.name.as_deref());
        let hosts = body.hosts.map(|h| parse_hosts(&mut v, h));
        v.into_result()?;
        let calendar_id = maybe(body.calendar_id).map(|c| c.map(CalendarId));
        let changes = EventTypeChanges {
            calendar_id,
            name: body.name.map(|n| n.trim().to_string()),
            duration_minutes: body.duration_minutes,
            buffer_before_minutes: body.buffer_before_minutes,
            buffer_after_minutes: body.buffer_after_minutes,
            minimum_notice_minutes: maybe(body.minimum_notice_minutes),
            slot_interval_minutes: maybe(body.slot_interval_minutes),
            max_advance_days: maybe(body.max_advance_days),
            location: maybe(body.location).map(optional_text),
            active: body.active,
            assignment: body.assignment.map(Into::into),
            hosts,
        };
        let model = state
            .service
            .update_event_type(org, EventTypeId(id.0), changes)
            .await?;
        Ok(EventTypeResponse::Ok(envelope(model)))
    }
}
