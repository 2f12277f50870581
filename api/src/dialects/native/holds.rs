//! `/v1/calendar/holds`: slot holds. A booking widget holds the slot a visitor picked while they
//! type their name; a voice agent holds one while the caller confirms. Mappers only: the rules
//! are `service::holds`.

use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::errors::{CREATE_EVENT, Fail, READ};
use super::{ApiTags, check_bound, for_caller, request_zone};
use crate::auth::WriteOrPublishable;
use crate::domain::ids::{CalendarId, EventTypeId, HoldId};
use crate::domain::time::{Zone, parse_instant};
use crate::error::Violations;
use crate::middleware::request_id;
use crate::payload::JsonBody;
use crate::schema::Timestamp;
use crate::service::holds::{HoldRequest, ttl_of};
use crate::state::AppState;

/// A slot to hold.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HoldIn {
    /// The calendar. For a round-robin or collective event type, leave it out: Quando holds the
    /// host a booking would get now (round-robin) or every host (collective), and the booking
    /// that names the hold goes there; for an event type bound to one calendar it defaults to
    /// that calendar; otherwise required.
    #[oai(nullable)]
    pub calendar_id: Option<Uuid>,
    /// The event type to book.
    pub event_type_id: Uuid,
    /// ISO 8601 start, with an offset or a local time read in `timezone` (like a booking's).
    #[oai(validator(max_length = 64))]
    pub start_time: String,
    /// ISO 8601 end; default: start plus the event type's duration.
    #[oai(nullable, validator(max_length = 64))]
    pub end_time: Option<String>,
    /// IANA zone in which local times are read and a refusal's `nextSlots` are written.
    #[oai(nullable, validator(max_length = 64))]
    pub timezone: Option<String>,
    /// How long the hold lasts: 1 to 3600 seconds, default 600.
    #[oai(nullable)]
    pub ttl_seconds: Option<i64>,
}

/// A held slot.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HoldOut {
    pub id: Uuid,
    pub calendar_id: Uuid,
    pub event_type_id: Uuid,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    /// From this instant the hold blocks nothing.
    pub expires_at: Timestamp,
}

/// One hold.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HoldEnvelope {
    pub data: HoldOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn envelope(m: &entity::holds::Model) -> Json<HoldEnvelope> {
    Json(HoldEnvelope {
        data: HoldOut {
            id: m.id.0,
            calendar_id: m.calendar_id.0,
            event_type_id: m.event_type_id.0,
            start_time: Timestamp(m.start_time),
            end_time: Timestamp(m.end_time),
            expires_at: Timestamp(m.expires_at),
        },
        request_id: request_id::current(),
    })
}

fn render_created(m: &entity::holds::Model) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    (201, envelope(m).0.to_json_string())
}

#[derive(ApiResponse)]
pub enum CreateHoldResponse {
    /// The slot is held until `expiresAt`: no one else can book or hold it until then.
    #[oai(status = 201)]
    Created(Json<HoldEnvelope>),
}

#[derive(ApiResponse)]
pub enum ReleaseHoldResponse {
    /// The hold is released: its time is free at once.
    #[oai(status = 204)]
    Released,
}

pub struct HoldsApi;

#[OpenApi(prefix_path = "/v1/calendar/holds", tag = "ApiTags::Availability")]
impl HoldsApi {
    /// Hold a slot
    ///
    /// Keeps a time for a booking about to be made: checked against every rule a booking is
    /// (working hours, date overrides, minimum notice, maximum advance, the overlap with
    /// bookings and other live holds), then blocks its time for everyone else (availability,
    /// bookings, holds) until `expiresAt`, with the same guarantee under races as a booking.
    /// From `expiresAt` on it blocks nothing, with no clean-up needed. Book it with
    /// `POST /v1/calendar/events` and `holdId` (the same key only); release it with `DELETE`.
    /// Holds are never events: no list, feed, sync or webhook shows them. Scope:
    /// `calendar:write`, or a publishable key bound to the event type.
    #[oai(path = "/", method = "post", operation_id = "createHold")]
    async fn create(
        &self,
        auth: WriteOrPublishable,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours (with
        /// `Idempotent-Replayed: true`) and nothing is held twice.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<HoldIn>,
    ) -> Result<CreateHoldResponse, Fail<CREATE_EVENT>> {
        let tenant = auth.tenant();
        let body = body.0;
        let mut v = Violations::default();
        let zone = request_zone(&mut v, body.timezone.as_deref());
        let start = v.check("startTime", parse_instant(&body.start_time, zone));
        let end = body
            .end_time
            .as_deref()
            .map(|e| v.check("endTime", parse_instant(e, zone)));
        let ttl = v.check("ttlSeconds", ttl_of(body.ttl_seconds));
        let request = v.finish(|| {
            Some(HoldRequest {
                calendar: body.calendar_id.map(CalendarId),
                event_type: EventTypeId(body.event_type_id),
                start: start?,
                end: match end {
                    Some(e) => Some(e?),
                    None => None,
                },
                zone: zone.unwrap_or(Zone::UTC),
                ttl: ttl?,
                key: tenant.key_id,
            })
        })?;
        check_bound(tenant, request.event_type)?;
        let hold = state
            .service
            .hold(tenant.org_id, request, &render_created)
            .await
            .map_err(|e| for_caller(tenant, e))?;
        Ok(CreateHoldResponse::Created(envelope(&hold)))
    }

    /// Release a hold
    ///
    /// Its time is free at once. A publishable key releases only its own holds; a secret key
    /// any of its organization's. A hold already released or booked is 404. Scope:
    /// `calendar:write`, or a publishable key.
    #[oai(path = "/:id", method = "delete", operation_id = "releaseHold")]
    async fn release(
        &self,
        auth: WriteOrPublishable,
        state: Data<&AppState>,
        /// Hold id.
        id: Path<Uuid>,
    ) -> Result<ReleaseHoldResponse, Fail<READ>> {
        let tenant = auth.tenant();
        let only_key = tenant.publishable.as_ref().map(|_| tenant.key_id);
        state
            .service
            .release_hold(tenant.org_id, HoldId(id.0), only_key)
            .await?;
        Ok(ReleaseHoldResponse::Released)
    }
}
