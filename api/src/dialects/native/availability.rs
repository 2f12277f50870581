//! `GET /v1/calendar/availability`: free slots, computed by the service from the same rules every
//! write obeys (`service::rules`).

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::errors::{AVAILABILITY, Fail};
use super::{ApiTags, check_bound, request_zone};
use crate::auth::ReadOrPublishable;
use crate::domain::ids::{CalendarId, EventTypeId};
use crate::domain::slots::Reason;
use crate::domain::time::parse_instant;
use crate::error::Violations;
use crate::middleware::request_id;
use crate::schema::{SlotOut, Timestamp};
use crate::service::rules::AvailabilityQuery;
use crate::state::AppState;

/// Why there are no slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum NoSlotReason {
    /// No working time in the window.
    OutsideWorkingHours,
    /// Every date in the window is closed by an override.
    ClosedOverride,
    /// Every candidate is taken.
    FullyBooked,
    /// The window is in the past or inside the minimum notice.
    BeforeMinimumNotice,
    /// The window is beyond the event type's maximum advance.
    BeyondMaxAdvance,
}

impl From<Reason> for NoSlotReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::OutsideWorkingHours => NoSlotReason::OutsideWorkingHours,
            Reason::ClosedOverride => NoSlotReason::ClosedOverride,
            Reason::BeforeMinimumNotice => NoSlotReason::BeforeMinimumNotice,
            Reason::BeyondMaxAdvance => NoSlotReason::BeyondMaxAdvance,
            Reason::FullyBooked | Reason::Conflict => NoSlotReason::FullyBooked,
        }
    }
}

/// Free slots of one event type on one calendar.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AvailabilityOut {
    /// The zone of `localStartTime`: the request's `timezone`, else the calendar's.
    pub timezone: String,
    /// The calendar's own zone, in which its working hours are kept (a booking page notes it
    /// when the visitor's differs).
    pub calendar_timezone: String,
    /// Free slots, sorted by start.
    pub slots: Vec<SlotOut>,
    /// Why there are no slots; `null` when there are.
    #[oai(nullable)]
    pub reason: Option<NoSlotReason>,
}

/// Availability.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AvailabilityEnvelope {
    /// The slots and, when there are none, why.
    pub data: AvailabilityOut,
    /// Set when the window holds more than 1,000 free slots and only the first 1,000 are
    /// listed: the start of the first slot left out. Ask again with it as `dateFrom` (and the
    /// same `dateTo`) for the rest; no slot is lost or repeated. `null` when nothing was left out.
    #[oai(nullable)]
    pub next_date_from: Option<Timestamp>,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

#[derive(ApiResponse)]
pub enum AvailabilityResponse {
    /// Free slots in the window (possibly none, with a reason).
    #[oai(status = 200)]
    Ok(Json<AvailabilityEnvelope>),
}

pub struct AvailabilityApi;

#[OpenApi(
    prefix_path = "/v1/calendar/availability",
    tag = "ApiTags::Availability"
)]
impl AvailabilityApi {
    /// Free slots
    ///
    /// The slots of an event type that can be booked on a calendar in `[dateFrom, dateTo)`
    /// (at most 62 days), computed from the calendar's working hours and date overrides, the
    /// event type's duration, slot interval, buffers, minimum notice and maximum advance, and the
    /// calendar's confirmed and tentative events. Booking a listed slot succeeds unless someone
    /// takes it first; bookings are held to the same rules. When there are no slots, `reason`
    /// says why. Live slot holds take their time like bookings. An answer lists at most 1,000
    /// slots: when the window holds more, `nextDateFrom` is the `dateFrom` that continues
    /// exactly where it stopped. Scope: `calendar:read`, or a publishable key bound to the
    /// event type.
    #[oai(path = "/", method = "get", operation_id = "getAvailability")]
    #[allow(clippy::too_many_arguments)]
    async fn get(
        &self,
        auth: ReadOrPublishable,
        state: Data<&AppState>,
        /// The calendar. For a round-robin or collective event type, leave it out for the team's
        /// slots (or name a host's calendar for that host's own); for an event type bound to one
        /// calendar it defaults to that calendar; otherwise required.
        #[oai(name = "calendarId")]
        calendar_id: Query<Option<Uuid>>,
        /// The event type to book.
        #[oai(name = "eventTypeId")]
        event_type_id: Query<Uuid>,
        /// Window start (inclusive): ISO 8601 with an offset, or a local time read in `timezone`.
        #[oai(name = "dateFrom", validator(max_length = 64))]
        date_from: Query<String>,
        /// Window end (exclusive), read like `dateFrom`; at most 62 days after it.
        #[oai(name = "dateTo", validator(max_length = 64))]
        date_to: Query<String>,
        /// IANA zone in which `dateFrom` and `dateTo` are read when they have no UTC offset
        /// (without it such times are refused), and in which `localStartTime` is written
        /// (default: the calendar's zone). It changes neither the slots nor `startTime`:
        /// working hours are always the calendar's, in the calendar's zone.
        #[oai(validator(max_length = 64))]
        timezone: Query<Option<String>>,
        /// `true`: each slot lists the calendars free for it (`hosts`).
        hosts: Query<Option<bool>>,
    ) -> Result<AvailabilityResponse, Fail<AVAILABILITY>> {
        let mut v = Violations::default();
        let named = request_zone(&mut v, timezone.0.as_deref());
        let from = v.check("dateFrom", parse_instant(&date_from.0, named));
        let to = v.check("dateTo", parse_instant(&date_to.0, named));
        let query = v.finish(|| {
            Some(AvailabilityQuery {
                calendar: calendar_id.0.map(CalendarId),
                event_type: EventTypeId(event_type_id.0),
                from: from?,
                to: to?,
            })
        })?;
        let tenant = auth.tenant();
        check_bound(tenant, query.event_type)?;
        let found = state.service.availability(tenant.org_id, query).await?;
        let zone = named.unwrap_or(found.calendar_zone);
        let with_hosts = hosts.0 == Some(true);
        let slots = found.slots;
        let next_date_from = found.next_from.map(Timestamp);
        Ok(AvailabilityResponse::Ok(Json(AvailabilityEnvelope {
            data: AvailabilityOut {
                timezone: zone.name().to_string(),
                calendar_timezone: found.calendar_zone.name().to_string(),
                slots: slots
                    .into_iter()
                    .zip(found.hosts)
                    .filter_map(|(s, free)| {
                        let mut out = SlotOut::new(s, zone)?;
                        out.hosts = with_hosts.then(|| free.into_iter().map(|c| c.0).collect());
                        Some(out)
                    })
                    .collect(),
                reason: found.reason.map(Into::into),
            },
            next_date_from,
            request_id: request_id::current(),
        })))
    }
}
