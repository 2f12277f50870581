//! The tools a voice agent books a call with: `list_services`, `find_available_slots`,
//! `hold_slot`, `book_appointment`, `find_appointments`, `reschedule_appointment`,
//! `cancel_appointment`. Each takes camelCase arguments described by a JSON Schema, answers
//! `structuredContent` matching its `outputSchema` and a sentence the agent can read aloud
//! ("Tuesday 14 April at 09:30"), and maps the service's errors to tool errors the agent can act
//! on: a refusal with its reason and next free slots, bad arguments naming the field.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use http::request::Parts;
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Scope, Tenant};
use crate::domain::contact::{Email, Phone};
use crate::domain::details::EventDetails;
use crate::domain::ids::{CalendarId, EventId, EventTypeId, HoldId, OrgId};
use crate::domain::slots::{Reason, Slot};
use crate::domain::time::{self, Zone};
use crate::domain::violations::{Invalid, Violations};
use crate::pagination::PageRequest;
use crate::repo;
use crate::repo::events::EventFilter;
use crate::repo::idempotency::{self as store, Claim, Held};
use crate::service::events::{BookingRequest, EventUpdate, Status};
use crate::service::holds::{HoldClaim, HoldRequest, ttl_of};
use crate::service::rules::{AvailabilityQuery, MAX_WINDOW};
use crate::service::{Refusal, Resource, ServiceError};
use crate::state::AppState;

type Answer = Result<CallToolResult, ErrorData>;

/// The MCP server of one session: the app's state and the tool router.
#[derive(Clone)]
pub struct Quando {
    state: AppState,
    tool_router: ToolRouter<Self>,
}

/// A tool's early exit: the result to answer with (always a tool result, never a protocol
/// error, so the agent hears why).
struct Stop(CallToolResult);

impl From<Invalid> for Stop {
    fn from(invalid: Invalid) -> Self {
        let fields: Vec<Value> = invalid
            .0
            .iter()
            .map(|v| json!({"field": v.field, "message": v.message}))
            .collect();
        Stop(failure(
            "invalid_arguments",
            &invalid.to_string(),
            json!({"fields": fields}),
        ))
    }
}

fn failure(code: &str, say: &str, mut details: Value) -> CallToolResult {
    if let Some(map) = details.as_object_mut() {
        map.insert("error".into(), json!(code));
        map.insert("message".into(), json!(say));
    }
    let mut result = CallToolResult::structured_error(details);
    result.content = vec![ContentBlock::text(say)];
    result
}

fn success<T: Serialize>(say: String, out: &T) -> CallToolResult {
    let mut result = CallToolResult::structured(serde_json::to_value(out).unwrap_or(Value::Null));
    result.content = vec![ContentBlock::text(say)];
    result
}

/// A local time as an agent says it: "Tuesday 14 April at 09:30".
pub fn spoken(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.0)
        .format("%A %-d %B at %H:%M")
        .to_string()
}

/// A day as an agent says it: "Tuesday 14 April".
fn spoken_day(date: NaiveDate) -> String {
    date.format("%A %-d %B").to_string()
}

fn local(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.0)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// "a, b and c".
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn reason_said(reason: Reason) -> &'static str {
    match reason {
        Reason::Conflict => "it is already taken",
        Reason::OutsideWorkingHours => "it is outside working hours",
        Reason::ClosedOverride => "that day is closed",
        Reason::BeforeMinimumNotice => "it is too soon to book",
        Reason::BeyondMaxAdvance => "it is too far ahead to book",
        Reason::FullyBooked => "everything is booked",
    }
}

/// A free slot as the tools answer it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotOut {
    /// UTC, RFC 3339.
    pub start_time: String,
    pub end_time: String,
    /// The start in the caller's zone, with its offset.
    pub local_start_time: String,
    /// The start as an agent says it: "Tuesday 14 April at 09:30".
    pub spoken: String,
    /// The calendars free for it (a team event type's hosts).
    pub calendar_ids: Vec<Uuid>,
}

fn slot_out(slot: &Slot, zone: Zone, calendars: Vec<Uuid>) -> SlotOut {
    SlotOut {
        start_time: time::format_utc(slot.start),
        end_time: time::format_utc(slot.end),
        local_start_time: local(slot.start, zone),
        spoken: spoken(slot.start, zone),
        calendar_ids: calendars,
    }
}

/// The service's error as a tool result.
fn from_service(err: ServiceError) -> Stop {
    match err {
        ServiceError::Invalid(invalid) => invalid.into(),
        ServiceError::NotFound(resource) => {
            let what = resource.name();
            Stop(failure(
                "not_found",
                &format!("No such {what} in this organization."),
                json!({"resource": what}),
            ))
        }
        ServiceError::Refused(refusal) => Stop(refused(&refusal)),
        ServiceError::IdempotencyInProgress => Stop(failure(
            "in_progress",
            "The same request is still being processed; try again in a moment.",
            json!({"retry": true}),
        )),
        ServiceError::Stale => Stop(failure(
            "changed",
            "The appointment changed meanwhile; look it up again.",
            json!({}),
        )),
        ServiceError::Storage(err) => {
            tracing::error!(error = %err, "mcp tool: storage failed");
            Stop(failure(
                "unavailable",
                "The booking system is briefly unavailable; try again in a moment.",
                json!({"retry": true}),
            ))
        }
    }
}

fn refused(refusal: &Refusal) -> CallToolResult {
    let zone = refusal.zone;
    let next: Vec<SlotOut> = refusal
        .next_slots
        .iter()
        .map(|s| slot_out(s, zone, Vec::new()))
        .collect();
    let offers: Vec<String> = next.iter().map(|s| s.spoken.clone()).collect();
    let say = if offers.is_empty() {
        format!(
            "That time cannot be booked: {}. Nothing is free in the next weeks.",
            reason_said(refusal.reason)
        )
    } else {
        format!(
            "That time cannot be booked: {}. The next free times are {}.",
            reason_said(refusal.reason),
            listed(&offers)
        )
    };
    failure(
        "slot_unavailable",
        &say,
        json!({"reason": refusal.reason.as_str(), "nextSlots": next}),
    )
}

impl Quando {
    pub fn new(state: AppState) -> Self {
        Quando {
            state,
            tool_router: Self::tool_router(),
        }
    }

    /// The caller, authenticated by the tenant layer, holding `scope`.
    fn caller(parts: &Parts, scope: Scope) -> Result<Tenant, Stop> {
        let tenant = parts.extensions.get::<Tenant>().cloned().ok_or_else(|| {
            Stop(failure(
                "unauthorized",
                "This request carries no API key.",
                json!({}),
            ))
        })?;
        tenant.require(scope).map_err(|e| {
            Stop(failure(
                "insufficient_scope",
                &e.message,
                json!({"scope": scope.as_str()}),
            ))
        })?;
        Ok(tenant)
    }

    /// The zone a request's local times are read in: its `timezone`, else the calendar's (the
    /// event type's own, or its first host's).
    async fn zone_of(
        &self,
        org: OrgId,
        named: Option<&str>,
        event_type: EventTypeId,
        calendar: Option<CalendarId>,
    ) -> Result<Zone, Stop> {
        if let Some(name) = named {
            return Zone::parse(name).map_err(|e| Invalid::one("timezone", e.to_string()).into());
        }
        let calendar = match calendar {
            Some(c) => Some(c),
            None => {
                let t = self
                    .state
                    .service
                    .event_type(org, event_type)
                    .await
                    .map_err(from_service)?;
                let hosts = repo::event_types::team_of(&t)
                    .map_err(|e| from_service(e.into()))?
                    .1;
                t.calendar_id
                    .or_else(|| hosts.first().map(|h| CalendarId(h.calendar_id)))
            }
        };
        let Some(calendar) = calendar else {
            return Ok(Zone::UTC);
        };
        let found = repo::calendars::get(&self.state.db, org, calendar)
            .await
            .map_err(|e| from_service(e.into()))?
            .ok_or_else(|| from_service(ServiceError::NotFound(Resource::Calendar)))?;
        Ok(Zone::parse(&found.timezone).unwrap_or(Zone::UTC))
    }
}

fn id_arg<T: From<Uuid>>(v: &mut Violations, field: &str, text: &str) -> Option<T> {
    v.check(
        field,
        Uuid::parse_str(text.trim()).map_err(|_| "is not an id (a UUID)"),
    )
    .map(T::from)
}

/// The service and the optional calendar a tool names.
fn service_args(
    v: &mut Violations,
    event_type: &str,
    calendar: Option<&str>,
) -> (Option<EventTypeId>, Option<CalendarId>) {
    (
        id_arg(v, "eventTypeId", event_type),
        calendar.and_then(|c| id_arg(v, "calendarId", c)),
    )
}

fn flatten(result: Result<CallToolResult, Stop>) -> Answer {
    Ok(result.unwrap_or_else(|Stop(r)| r))
}

// ---- arguments and answers ----

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListServicesArgs {}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOut {
    pub event_type_id: Uuid,
    pub name: String,
    pub duration_minutes: i32,
    pub location: Option<String>,
    /// `single`, `roundRobin` (any free host) or `collective` (every host together).
    pub assignment: String,
    /// The calendars it is booked on (empty: any calendar of the organization, named when
    /// booking).
    pub calendars: Vec<CalendarOut>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarOut {
    pub calendar_id: Uuid,
    pub name: String,
    pub timezone: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesOut {
    pub services: Vec<ServiceOut>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindSlotsArgs {
    /// The service (`eventTypeId` from `list_services`).
    pub event_type_id: String,
    /// Only this calendar (a team service's host); default: the service's own.
    pub calendar_id: Option<String>,
    /// One day, `YYYY-MM-DD`, in `timezone`.
    pub date: Option<String>,
    /// First day of a range, `YYYY-MM-DD` (default today).
    pub from_date: Option<String>,
    /// Last day of a range, inclusive (default a week after `fromDate`; at most 62 days).
    pub to_date: Option<String>,
    /// IANA zone of the caller, e.g. `Europe/Rome` (default the calendar's).
    pub timezone: Option<String>,
    /// How many slots to answer, 1 to 20 (default 6).
    pub max_slots: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotsOut {
    pub timezone: String,
    pub slots: Vec<SlotOut>,
    /// Why there is nothing free (with no slots): `fully_booked`, `outside_working_hours`, ...
    pub reason: Option<String>,
    /// With no slots: the next days that have free slots, as dates and as said.
    pub next_available_days: Vec<DayOut>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayOut {
    pub date: String,
    pub spoken: String,
    pub first_slot: SlotOut,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldArgs {
    pub event_type_id: String,
    /// Start: RFC 3339, or a local time read in `timezone`.
    pub start_time: String,
    pub calendar_id: Option<String>,
    pub timezone: Option<String>,
    /// 1 to 3600 (default 600).
    pub ttl_seconds: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldOut {
    pub hold_id: Uuid,
    pub calendar_id: Uuid,
    pub start_time: String,
    pub end_time: String,
    pub expires_at: String,
    pub spoken: String,
}

#[derive(Deserialize, JsonSchema, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookArgs {
    pub event_type_id: String,
    /// Start: RFC 3339, or a local time read in `timezone`.
    pub start_time: String,
    /// End; default the service's duration after the start.
    pub end_time: Option<String>,
    pub calendar_id: Option<String>,
    /// A hold from `hold_slot` to turn into the appointment.
    pub hold_id: Option<String>,
    pub customer_name: String,
    /// Any common form: +39 06 1234 5678, 0039 06..., or as said ("plus three nine ...").
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    pub notes: Option<String>,
    pub timezone: Option<String>,
    /// The agent's id for this booking, sent again unchanged on a retry: a retry books once
    /// and answers what the first call did (1 to 200 characters).
    pub request_id: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentOut {
    pub appointment_id: Uuid,
    pub event_type_id: Option<Uuid>,
    pub calendar_id: Uuid,
    pub start_time: String,
    pub end_time: String,
    pub local_start_time: String,
    pub spoken: String,
    /// `confirmed`, `tentative` or `cancelled`.
    pub status: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
}

fn appointment_out(m: &entity::events::Model, zone: Zone) -> AppointmentOut {
    AppointmentOut {
        appointment_id: m.id.0,
        event_type_id: m.event_type_id.map(|t| t.0),
        calendar_id: m.calendar_id.0,
        start_time: time::format_utc(m.start_time),
        end_time: time::format_utc(m.end_time),
        local_start_time: local(m.start_time, zone),
        spoken: spoken(m.start_time, zone),
        status: match m.status {
            Status::Confirmed => "confirmed",
            Status::Tentative => "tentative",
            Status::Cancelled => "cancelled",
        }
        .into(),
        customer_name: m.customer_name.clone(),
        customer_phone: m.customer_phone.clone(),
        customer_email: m.customer_email.clone(),
    }
}

fn zone_of_event(m: &entity::events::Model, named: Option<Zone>) -> Zone {
    named
        .or_else(|| Zone::parse(&m.timezone).ok())
        .unwrap_or(Zone::UTC)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindAppointmentsArgs {
    /// The caller's phone, in any common form.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Part of the customer's name, any case.
    pub name: Option<String>,
    /// Include past and cancelled appointments (default: upcoming ones only).
    pub include_past: Option<bool>,
    pub timezone: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentsOut {
    pub appointments: Vec<AppointmentOut>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RescheduleArgs {
    pub appointment_id: String,
    /// New start: RFC 3339, or a local time read in `timezone`.
    pub start_time: String,
    /// New end; default: the appointment keeps its length.
    pub end_time: Option<String>,
    pub timezone: Option<String>,
    /// A round-robin booking whose host is busy then may go to another free host (a new
    /// appointment id).
    pub reassign: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelArgs {
    pub appointment_id: String,
    /// Why (kept with the appointment).
    pub reason: Option<String>,
}

/// The most appointments `find_appointments` answers.
const MAX_FOUND: u64 = 20;

#[tool_router]
impl Quando {
    /// The services (event types) that can be booked, with their durations and calendars.
    #[tool(
        description = "List the services that can be booked (event types), with their duration in minutes and the calendars (people or rooms) that take them. Call this first to get an eventTypeId.",
        output_schema = schema_for_output::<ServicesOut>(),
        annotations(read_only_hint = true)
    )]
    async fn list_services(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(_): Parameters<ListServicesArgs>,
    ) -> Answer {
        flatten(self.list_services_inner(&parts).await)
    }

    /// Free slots of a service on a day or in a range of days, in the caller's zone.
    #[tool(
        description = "Find free appointment slots for a service on one day (date) or over a range of days (fromDate..toDate, default the next 7 days), in the caller's time zone. Answers the first free slots with local times written for speech; with none, the reason and the next days that have free slots.",
        output_schema = schema_for_output::<SlotsOut>(),
        annotations(read_only_hint = true)
    )]
    async fn find_available_slots(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<FindSlotsArgs>,
    ) -> Answer {
        flatten(self.find_slots_inner(&parts, args).await)
    }

    /// Keeps a slot for a few minutes while the caller confirms.
    #[tool(
        description = "Hold a slot for a few minutes (default 10) while the caller confirms: nobody else can book it meanwhile. Book it with book_appointment and holdId.",
        output_schema = schema_for_output::<HoldOut>(),
        annotations(read_only_hint = false, destructive_hint = false)
    )]
    async fn hold_slot(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<HoldArgs>,
    ) -> Answer {
        flatten(self.hold_inner(&parts, args).await)
    }

    /// Books an appointment; a retry with the same `requestId` books once.
    #[tool(
        description = "Book an appointment for the caller. Send a requestId you keep: if the call times out, send the same arguments with the same requestId again and it books only once. A taken or unbookable time is an error result with the reason and the next free slots to offer.",
        output_schema = schema_for_output::<AppointmentOut>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    async fn book_appointment(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<BookArgs>,
    ) -> Answer {
        flatten(self.book_inner(&parts, args).await)
    }

    /// The caller's appointments by phone, email or name.
    #[tool(
        description = "Find a caller's appointments by phone number (any common form), email or part of the name. Upcoming, not cancelled ones by default.",
        output_schema = schema_for_output::<AppointmentsOut>(),
        annotations(read_only_hint = true)
    )]
    async fn find_appointments(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<FindAppointmentsArgs>,
    ) -> Answer {
        flatten(self.find_appointments_inner(&parts, args).await)
    }

    /// Moves an appointment to a new time, held to every booking rule.
    #[tool(
        description = "Move an appointment to a new start time (it keeps its length unless endTime is given). A taken time is an error result with the reason and the next free slots.",
        output_schema = schema_for_output::<AppointmentOut>(),
        annotations(read_only_hint = false, destructive_hint = false)
    )]
    async fn reschedule_appointment(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<RescheduleArgs>,
    ) -> Answer {
        flatten(self.reschedule_inner(&parts, args).await)
    }

    /// Cancels an appointment; its time is free again at once.
    #[tool(
        description = "Cancel an appointment, with the caller's reason. Its time is free again at once.",
        output_schema = schema_for_output::<AppointmentOut>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true)
    )]
    async fn cancel_appointment(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CancelArgs>,
    ) -> Answer {
        flatten(self.cancel_inner(&parts, args).await)
    }
}

impl Quando {
    async fn list_services_inner(&self, parts: &Parts) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarRead)?;
        let org = tenant.org_id;
        let db = &self.state.db;
        let storage = |e: sea_orm::DbErr| from_service(e.into());
        let (types, _) =
            repo::event_types::list(db, org, None, PageRequest::new(Some(1), Some(100)))
                .await
                .map_err(storage)?;
        let types: Vec<_> = types.into_iter().filter(|t| t.active).collect();
        let mut wanted: Vec<CalendarId> = Vec::new();
        let mut teams = Vec::with_capacity(types.len());
        for t in &types {
            let (assignment, hosts) = repo::event_types::team_of(t).map_err(storage)?;
            let calendars: Vec<CalendarId> = match t.calendar_id {
                Some(c) => vec![c],
                None => hosts.iter().map(|h| CalendarId(h.calendar_id)).collect(),
            };
            wanted.extend(calendars.iter().copied());
            teams.push((assignment, calendars));
        }
        wanted.sort();
        wanted.dedup();
        let calendars = repo::calendars::get_many(db, org, &wanted)
            .await
            .map_err(storage)?;
        let services: Vec<ServiceOut> = types
            .into_iter()
            .zip(teams)
            .map(|(t, (assignment, ids))| ServiceOut {
                event_type_id: t.id.0,
                name: t.name,
                duration_minutes: t.duration_minutes,
                location: t.location,
                assignment: assignment.as_str().into(),
                calendars: ids
                    .iter()
                    .filter_map(|id| calendars.iter().find(|c| c.id == *id))
                    .map(|c| CalendarOut {
                        calendar_id: c.id.0,
                        name: c.name.clone(),
                        timezone: c.timezone.clone(),
                    })
                    .collect(),
            })
            .collect();
        let names: Vec<String> = services
            .iter()
            .map(|s| format!("{} ({} minutes)", s.name, s.duration_minutes))
            .collect();
        let say = match names.len() {
            0 => "No service can be booked at the moment.".to_string(),
            1 => format!("One service can be booked: {}.", names[0]),
            n => format!("{n} services can be booked: {}.", listed(&names)),
        };
        Ok(success(say, &ServicesOut { services }))
    }

    async fn find_slots_inner(
        &self,
        parts: &Parts,
        args: FindSlotsArgs,
    ) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarRead)?;
        let org = tenant.org_id;
        let mut v = Violations::default();
        let (event_type, calendar) =
            service_args(&mut v, &args.event_type_id, args.calendar_id.as_deref());
        let date = |v: &mut Violations, field: &str, text: &Option<String>| {
            text.as_deref()
                .and_then(|t| v.check(field, time::parse_date(t)))
        };
        let one_day = date(&mut v, "date", &args.date);
        let from_date = date(&mut v, "fromDate", &args.from_date);
        let to_date = date(&mut v, "toDate", &args.to_date);
        let max = args.max_slots.unwrap_or(6);
        if !(1..=20).contains(&max) {
            v.add("maxSlots", "must be 1 to 20");
        }
        v.into_result()?;
        let event_type = event_type.expect("checked");
        let zone = self
            .zone_of(org, args.timezone.as_deref(), event_type, calendar)
            .await?;
        let today = time::now().with_timezone(&zone.0).date_naive();
        let (first, last) = match (one_day, from_date, to_date) {
            (Some(day), _, _) => (day, day),
            (None, from, to) => {
                let from = from.unwrap_or(today);
                (from, to.unwrap_or(from + Duration::days(6)))
            }
        };
        if last < first {
            return Err(Invalid::one("toDate", "must not be before fromDate").into());
        }
        let from = zone.start_of_day(first);
        let to = zone.start_of_day(last + Duration::days(1));
        if to - from > MAX_WINDOW {
            return Err(Invalid::one("toDate", "a range is at most 62 days").into());
        }
        let service = &self.state.service;
        let query = |from, to| AvailabilityQuery {
            calendar,
            event_type,
            from,
            to,
        };
        let found = service
            .availability(org, query(from, to))
            .await
            .map_err(from_service)?;
        let slots: Vec<SlotOut> = found
            .slots
            .iter()
            .zip(&found.hosts)
            .take(max as usize)
            .map(|(s, hosts)| slot_out(s, zone, hosts.iter().map(|c| c.0).collect()))
            .collect();
        let what = match one_day {
            Some(day) => format!("on {}", spoken_day(day)),
            None => format!("from {} to {}", spoken_day(first), spoken_day(last)),
        };
        if !slots.is_empty() {
            // One day: its times ("09:00, 09:30 and 10:00"); a range: each slot in full.
            let said: Vec<String> = match one_day {
                Some(_) => found
                    .slots
                    .iter()
                    .take(slots.len())
                    .map(|s| s.start.with_timezone(&zone.0).format("%H:%M").to_string())
                    .collect(),
                None => slots.iter().map(|s| s.spoken.clone()).collect(),
            };
            let say = format!("Free {what}: {}.", listed(&said));
            return Ok(success(
                say,
                &SlotsOut {
                    timezone: zone.name().into(),
                    slots,
                    reason: None,
                    next_available_days: Vec::new(),
                },
            ));
        }
        // Nothing free: the next days that have something, up to a month further.
        let mut next_days: Vec<DayOut> = Vec::new();
        let mut at = to;
        let horizon = to + Duration::days(31);
        while next_days.len() < 3 && at < horizon {
            let until = (at + Duration::days(7)).min(horizon);
            let page = service
                .availability(org, query(at, until))
                .await
                .map_err(from_service)?;
            for (slot, hosts) in page.slots.iter().zip(&page.hosts) {
                let day = slot.start.with_timezone(&zone.0).date_naive();
                if next_days.len() < 3 && !next_days.iter().any(|d| d.date == day.to_string()) {
                    next_days.push(DayOut {
                        date: day.to_string(),
                        spoken: spoken_day(day),
                        first_slot: slot_out(slot, zone, hosts.iter().map(|c| c.0).collect()),
                    });
                }
            }
            at = until;
        }
        let reason = found.reason.unwrap_or(Reason::FullyBooked);
        let days: Vec<String> = next_days.iter().map(|d| d.spoken.clone()).collect();
        let say = if days.is_empty() {
            format!(
                "Nothing is free {what}: {}. Nothing is free in the month after either.",
                reason_said(reason)
            )
        } else {
            format!(
                "Nothing is free {what}: {}. The next days with free times are {}.",
                reason_said(reason),
                listed(&days)
            )
        };
        Ok(success(
            say,
            &SlotsOut {
                timezone: zone.name().into(),
                slots,
                reason: Some(reason.as_str().into()),
                next_available_days: next_days,
            },
        ))
    }

    async fn hold_inner(&self, parts: &Parts, args: HoldArgs) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarWrite)?;
        let org = tenant.org_id;
        let mut v = Violations::default();
        let (event_type, calendar) =
            service_args(&mut v, &args.event_type_id, args.calendar_id.as_deref());
        let ttl = v.check("ttlSeconds", ttl_of(args.ttl_seconds));
        v.into_result()?;
        let event_type = event_type.expect("checked");
        let zone = self
            .zone_of(org, args.timezone.as_deref(), event_type, calendar)
            .await?;
        let start = time::parse_instant(&args.start_time, Some(zone))
            .map_err(|e| Invalid::one("startTime", e.to_string()))?;
        let request = HoldRequest {
            calendar,
            event_type,
            start,
            end: None,
            zone,
            ttl: ttl.expect("checked"),
            key: tenant.key_id,
        };
        let hold = self
            .state
            .service
            .hold(org, request, &|_| (201, String::new()))
            .await
            .map_err(from_service)?;
        let out = HoldOut {
            hold_id: hold.id.0,
            calendar_id: hold.calendar_id.0,
            start_time: time::format_utc(hold.start_time),
            end_time: time::format_utc(hold.end_time),
            expires_at: time::format_utc(hold.expires_at),
            spoken: spoken(hold.start_time, zone),
        };
        let minutes = (hold.expires_at - time::now()).num_minutes().max(1);
        let say = format!("{} is held for the next {minutes} minutes.", out.spoken);
        Ok(success(say, &out))
    }

    async fn book_inner(&self, parts: &Parts, args: BookArgs) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarWrite)?;
        let org = tenant.org_id;
        let request_id = args.request_id.trim().to_string();
        if !(1..=200).contains(&request_id.len()) || !store_key_ok(&request_id) {
            return Err(Invalid::one(
                "requestId",
                "must be 1 to 200 visible characters, the same on every retry",
            )
            .into());
        }
        // The agent's requestId is an Idempotency-Key of its own: the booking and its answer
        // commit together, a retry replays the answer, the same id with other arguments is
        // refused.
        let hash = crate::middleware::idempotency::request_hash(
            &http::Method::POST,
            "mcp:book_appointment",
            &serde_json::to_vec(&args).unwrap_or_default(),
        );
        let key = format!("mcp:book_appointment:{request_id}");
        let storage = |e: sea_orm::DbErr| from_service(e.into());
        let writer = self.state.service.writer();
        let instance = self.state.instance().await.map_err(storage)?;
        match store::claim_waiting(
            writer,
            instance,
            org,
            &key,
            &hash,
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(storage)?
        {
            Claim::Fresh => {}
            Claim::Replay { body, .. } => {
                let out: AppointmentOut = serde_json::from_str(&body)
                    .map_err(|e| storage(sea_orm::DbErr::Custom(e.to_string())))?;
                let say = format!("Booked for {} (already done).", out.spoken);
                return Ok(success(say, &out));
            }
            Claim::Mismatch => {
                return Err(Invalid::one(
                    "requestId",
                    "was already used for a booking with other arguments; use a new requestId for a new booking",
                )
                .into());
            }
            Claim::InProgress => return Err(from_service(ServiceError::IdempotencyInProgress)),
        }
        let held = Held::new(org, key, instance.id);
        let outcome = store::holding(held.clone(), self.book_claimed(&tenant, args)).await;
        if !held.sealed() {
            // Nothing was written: the next retry runs again.
            store::release(writer, &held).await.map_err(storage)?;
        }
        outcome
    }

    async fn book_claimed(&self, tenant: &Tenant, args: BookArgs) -> Result<CallToolResult, Stop> {
        let org = tenant.org_id;
        let mut v = Violations::default();
        let (event_type, calendar) =
            service_args(&mut v, &args.event_type_id, args.calendar_id.as_deref());
        let hold: Option<HoldId> = match args.hold_id.as_deref() {
            Some(h) => id_arg(&mut v, "holdId", h),
            None => None,
        };
        let name = args.customer_name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            v.add("customerName", "must be 1 to 200 characters");
        }
        let phone = args
            .customer_phone
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .and_then(|p| v.check("customerPhone", Phone::parse_spoken(p)));
        let email = args
            .customer_email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .and_then(|e| v.check("customerEmail", Email::parse(e)));
        let notes = args
            .notes
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if notes.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            v.add("notes", "must be at most 2000 characters");
        }
        v.into_result()?;
        let event_type = event_type.expect("checked");
        let zone = self
            .zone_of(org, args.timezone.as_deref(), event_type, calendar)
            .await?;
        let start = time::parse_instant(&args.start_time, Some(zone))
            .map_err(|e| Invalid::one("startTime", e.to_string()))?;
        let end = match args.end_time.as_deref() {
            Some(end) => time::parse_instant(end, Some(zone))
                .map_err(|e| Invalid::one("endTime", e.to_string()))?,
            None => {
                let t = self
                    .state
                    .service
                    .event_type(org, event_type)
                    .await
                    .map_err(from_service)?;
                start + Duration::minutes(t.duration_minutes.into())
            }
        };
        let request = BookingRequest {
            calendar,
            event_type: Some(event_type),
            start,
            end,
            zone,
            customer_name: Some(name),
            customer_phone: phone.map(|p| p.as_str().to_string()),
            customer_email: email.map(|e| e.as_str().to_string()),
            title: None,
            location: None,
            notes,
            status: Status::Confirmed,
            force: false,
            all_day: None,
            details: EventDetails::default(),
            booked_via: "mcp",
            hold: hold.map(|id| HoldClaim {
                id,
                key: tenant.key_id,
            }),
        };
        let render = move |m: &entity::events::Model| {
            let out = appointment_out(m, zone);
            (200, serde_json::to_string(&out).unwrap_or_default())
        };
        let model = self
            .state
            .service
            .book(org, request, &render)
            .await
            .map_err(from_service)?;
        let out = appointment_out(&model, zone);
        let say = format!("Booked for {}.", out.spoken);
        Ok(success(say, &out))
    }

    async fn find_appointments_inner(
        &self,
        parts: &Parts,
        args: FindAppointmentsArgs,
    ) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarRead)?;
        let org = tenant.org_id;
        let mut v = Violations::default();
        let phone = args
            .phone
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .and_then(|p| v.check("phone", Phone::parse_spoken(p)));
        let email = args
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .and_then(|e| v.check("email", Email::parse(e)));
        let name = args
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if name.as_ref().is_some_and(|n| n.chars().count() < 2) {
            v.add("name", "give at least 2 letters of the name");
        }
        let zone = match args.timezone.as_deref() {
            Some(z) => v.check("timezone", Zone::parse(z)),
            None => None,
        };
        v.into_result()?;
        if phone.is_none() && email.is_none() && name.is_none() {
            return Err(Invalid::one(
                "phone",
                "give a phone number, an email or a name to look for",
            )
            .into());
        }
        let upcoming = args.include_past != Some(true);
        let filter = EventFilter {
            customer_phone: phone.map(|p| p.as_str().to_string()),
            customer_email: email.map(|e| e.as_str().to_string()),
            customer_name_part: name,
            date_from: upcoming.then(time::now),
            ..EventFilter::default()
        };
        let (found, _) = repo::events::list(
            &self.state.db,
            org,
            filter,
            PageRequest::new(Some(1), Some(MAX_FOUND)),
        )
        .await
        .map_err(|e| from_service(e.into()))?;
        let appointments: Vec<AppointmentOut> = found
            .iter()
            .filter(|m| !upcoming || m.status != Status::Cancelled)
            // A collective appointment is one appointment: its organizer's row.
            .filter(|m| {
                crate::service::team::group_of(m)
                    .ok()
                    .flatten()
                    .is_none_or(|g| g.first().is_some_and(|o| o.event_id == m.id))
            })
            .map(|m| appointment_out(m, zone_of_event(m, zone)))
            .collect();
        let said: Vec<String> = appointments.iter().map(|a| a.spoken.clone()).collect();
        let say = match said.len() {
            0 => "No appointment found.".to_string(),
            1 => format!("One appointment: {}.", said[0]),
            n => format!("{n} appointments: {}.", listed(&said)),
        };
        Ok(success(say, &AppointmentsOut { appointments }))
    }

    async fn reschedule_inner(
        &self,
        parts: &Parts,
        args: RescheduleArgs,
    ) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarWrite)?;
        let org = tenant.org_id;
        let mut v = Violations::default();
        let id: Option<EventId> = id_arg(&mut v, "appointmentId", &args.appointment_id);
        let named = match args.timezone.as_deref() {
            Some(z) => v.check("timezone", Zone::parse(z)),
            None => None,
        };
        v.into_result()?;
        let id = id.expect("checked");
        let current = self
            .state
            .service
            .event(org, id)
            .await
            .map_err(from_service)?;
        let zone = zone_of_event(&current, named);
        let start = time::parse_instant(&args.start_time, Some(zone))
            .map_err(|e| Invalid::one("startTime", e.to_string()))?;
        let end = match args.end_time.as_deref() {
            Some(end) => Some(
                time::parse_instant(end, Some(zone))
                    .map_err(|e| Invalid::one("endTime", e.to_string()))?,
            ),
            None => Some(start + (current.end_time - current.start_time)),
        };
        let update = EventUpdate {
            start: Some(start),
            end,
            zone: named,
            reassign: args.reassign == Some(true),
            ..EventUpdate::default()
        };
        let model = self
            .state
            .service
            .update(org, id, update, &|_| (200, String::new()))
            .await
            .map_err(from_service)?;
        let out = appointment_out(&model, zone);
        let say = format!("Moved to {}.", out.spoken);
        Ok(success(say, &out))
    }

    async fn cancel_inner(&self, parts: &Parts, args: CancelArgs) -> Result<CallToolResult, Stop> {
        let tenant = Self::caller(parts, Scope::CalendarWrite)?;
        let org = tenant.org_id;
        let mut v = Violations::default();
        let id: Option<EventId> = id_arg(&mut v, "appointmentId", &args.appointment_id);
        let reason = args
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            v.add("reason", "must be at most 500 characters");
        }
        v.into_result()?;
        let model = self
            .state
            .service
            .cancel(org, id.expect("checked"), reason, &|_| (200, String::new()))
            .await
            .map_err(from_service)?;
        let out = appointment_out(&model, zone_of_event(&model, None));
        let say = format!("The appointment of {} is cancelled.", out.spoken);
        Ok(success(say, &out))
    }
}

fn store_key_ok(key: &str) -> bool {
    key.chars().all(|c| !c.is_control())
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Quando {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("quando", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Quando books appointments. A call usually goes: list_services (once), \
                 find_available_slots for the day the caller wants, optionally hold_slot while \
                 they confirm, book_appointment with a requestId you resend unchanged on retries; \
                 find_appointments by phone to find an existing booking, then \
                 reschedule_appointment or cancel_appointment. Read the text of each result to \
                 the caller; error results say why and offer other times.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_said_with_the_weekday_day_month_and_local_clock() {
        let zone = Zone::parse("Europe/Rome").unwrap();
        let t = DateTime::parse_from_rfc3339("2027-04-13T07:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(spoken(t, zone), "Tuesday 13 April at 09:30");
        assert_eq!(listed(&["a".into(), "b".into(), "c".into()]), "a, b and c");
        assert_eq!(listed(&["a".into()]), "a");
    }
}
