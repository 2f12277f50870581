//! `GET /v1/calendar/availability`: free slots computed by the same rules every write obeys,
//! and the refusal a write gets when it breaks them (409 with the reason and the next free slots).

use chrono::{DateTime, Duration, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, request_zone};
use crate::auth::{Scope, TenantAuth};
use crate::domain::ids::{CalendarId, EventId, EventTypeId, OrgId};
use crate::domain::slots::{self, BlockIndex, Reason, SlotRules};
use crate::domain::time::{self, Zone, parse_instant};
use crate::error::{ApiError, Violations};
use crate::middleware::request_id;
use crate::repo;
use crate::schema::{SlotOut, Timestamp};
use crate::state::AppState;

/// The longest window one availability request may cover.
pub const MAX_WINDOW: Duration = Duration::days(62);
/// How many free slots a refusal offers.
pub const NEXT_SLOTS: usize = 3;
/// The most slots one availability answer lists; the rest are one request away
/// (`nextDateFrom`). 62 days of 5-minute slots around the clock would be almost 18,000.
pub const MAX_SLOTS: usize = 1000;

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

/// The calendar and event type of a booking or a lookup, both the caller's, and the event type
/// bookable on that calendar.
pub(crate) async fn bookable(
    state: &AppState,
    org: OrgId,
    calendar: CalendarId,
    event_type: EventTypeId,
) -> Result<(entity::calendars::Model, entity::event_types::Model), ApiError> {
    let calendar_model = repo::calendars::get(&state.db, org, calendar)
        .await?
        .ok_or_else(|| ApiError::not_found("calendar"))?;
    let event_type = repo::event_types::get(&state.db, org, event_type)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))?;
    if !event_type.active {
        return Err(ApiError::field(
            "eventTypeId",
            "this event type is not active",
        ));
    }
    if event_type.calendar_id.is_some_and(|c| c != calendar.0) {
        return Err(ApiError::field(
            "eventTypeId",
            "this event type belongs to another calendar",
        ));
    }
    Ok((calendar_model, event_type))
}

/// What a calendar and event type allow.
pub(crate) struct Rules {
    pub calendar: CalendarId,
    pub schedule: crate::domain::schedule::Schedule,
    pub slot: SlotRules,
}

impl Rules {
    pub fn of(
        calendar: &entity::calendars::Model,
        event_type: &entity::event_types::Model,
    ) -> Result<Self, ApiError> {
        Ok(Rules {
            calendar: CalendarId(calendar.id),
            schedule: repo::calendars::schedule_of(calendar).map_err(ApiError::internal)?,
            slot: repo::event_types::rules_of(event_type),
        })
    }

    /// Refuses a booking whose block, widened by the event type's buffers, would leave years
    /// 0001-9999: it could be neither stored nor printed.
    pub fn check_storable(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), ApiError> {
        let block = crate::domain::booking::Block {
            start: start - self.slot.buffer_before,
            end: end + self.slot.buffer_after,
        };
        block
            .check_storable()
            .map_err(|(field, message)| ApiError::field(field, message))
    }

    /// Free slots in `[from, to)`, ignoring one event's own block (a reschedule frees it).
    pub async fn availability(
        &self,
        state: &AppState,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: Option<EventId>,
    ) -> Result<slots::Availability, ApiError> {
        // Existing blocks that can touch a candidate's block.
        // Kept inside the storable years: SQLite compares times as text, where `+10000-...`
        // sorts before `9999-...`.
        let reach_from = (from - self.slot.buffer_before).max(time::earliest());
        let reach_to = (to + self.slot.duration + self.slot.buffer_after).min(time::latest());
        let blocks = repo::events::blocks_between(
            &state.db,
            org,
            self.calendar,
            reach_from,
            reach_to,
            except,
        )
        .await?;
        Ok(slots::availability(
            &self.schedule,
            &self.slot,
            &BlockIndex::new(blocks),
            time::now(),
            from,
            to,
        ))
    }

    /// The first free slots at or after `after` (and not before now), looking up to 62 days ahead.
    pub async fn next_slots(
        &self,
        state: &AppState,
        org: OrgId,
        after: DateTime<Utc>,
        except: Option<EventId>,
        zone: Zone,
    ) -> Result<Vec<SlotOut>, ApiError> {
        let mut from = after.max(time::now());
        let horizon = (from + MAX_WINDOW).min(time::latest());
        let mut found = Vec::new();
        while found.len() < NEXT_SLOTS && from < horizon {
            let to = (from + Duration::days(7)).min(horizon);
            let page = self.availability(state, org, from, to, except).await?;
            found.extend(page.slots.into_iter().take(NEXT_SLOTS - found.len()));
            from = to;
        }
        Ok(found
            .into_iter()
            .filter_map(|s| SlotOut::new(s, zone))
            .collect())
    }

    /// The 409 for a write the rules refuse, with the next free slots: after the requested
    /// start, or from now when the request was too far ahead (the slots before the limit).
    pub async fn refuse(&self, state: &AppState, org: OrgId, refusal: Refusal) -> ApiError {
        state.metrics.booking_refused(refusal.reason.as_str());
        let after = match refusal.reason {
            Reason::BeyondMaxAdvance => time::now(),
            _ => refusal.requested_start,
        };
        match self
            .next_slots(state, org, after, refusal.except, refusal.zone)
            .await
        {
            Ok(next) => ApiError::slot_unavailable(refusal.reason, refusal.conflicting, next),
            Err(err) => err,
        }
    }
}

/// A write the rules refuse.
pub(crate) struct Refusal {
    pub reason: Reason,
    /// The event in the way, for `conflict`.
    pub conflicting: Option<Uuid>,
    pub requested_start: DateTime<Utc>,
    /// The event being rescheduled: its own block does not count.
    pub except: Option<EventId>,
    /// The zone of `localStartTime` in the offered slots.
    pub zone: Zone,
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
    /// says why. An answer lists at most 1,000 slots: when the window holds more,
    /// `nextDateFrom` is the `dateFrom` that continues exactly where it stopped.
    /// Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "getAvailability")]
    #[allow(clippy::too_many_arguments)]
    async fn get(
        &self,
        auth: TenantAuth,
        state: Data<&AppState>,
        /// The calendar.
        #[oai(name = "calendarId")]
        calendar_id: Query<Uuid>,
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
    ) -> Result<AvailabilityResponse, ApiError> {
        auth.0.require(Scope::CalendarRead)?;
        let org = auth.0.org_id;
        let mut v = Violations::default();
        let named = request_zone(&mut v, timezone.0.as_deref());
        let from = v.check("dateFrom", parse_instant(&date_from.0, named));
        let to = v.check("dateTo", parse_instant(&date_to.0, named));
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                v.add("dateTo", "must be after dateFrom");
            } else if to - from > MAX_WINDOW {
                v.add("dateTo", "the window is at most 62 days");
            }
        }
        v.into_result()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ApiError::internal("validated window missing"));
        };
        let (calendar, event_type) = bookable(
            &state,
            org,
            CalendarId(calendar_id.0),
            EventTypeId(event_type_id.0),
        )
        .await?;
        let rules = Rules::of(&calendar, &event_type)?;
        let zone = named.unwrap_or(rules.schedule.zone);
        let found = rules.availability(&state, org, from, to, None).await?;
        let mut slots = found.slots;
        let next_date_from = slots.get(MAX_SLOTS).map(|s| Timestamp(s.start));
        slots.truncate(MAX_SLOTS);
        Ok(AvailabilityResponse::Ok(Json(AvailabilityEnvelope {
            data: AvailabilityOut {
                timezone: zone.name().to_string(),
                slots: slots
                    .into_iter()
                    .filter_map(|s| SlotOut::new(s, zone))
                    .collect(),
                reason: found.reason.map(Into::into),
            },
            next_date_from,
            request_id: request_id::current(),
        })))
    }
}
