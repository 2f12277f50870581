//! Calendar feeds: `GET /v1/calendar/calendars/{id}/feed` (the feed's URL, made on first
//! request and shown that once), `POST /v1/calendar/calendars/{id}/feed/rotate` (a new URL; the
//! old one is 404 at once), and the feed itself at `GET /feeds/{token}.ics`, which takes no API
//! key: the token in its URL is the credential. The feed route is a plain poem route (iCalendar,
//! not a JSON operation), so it is not in the OpenAPI document; its errors are the native
//! envelope.

use poem::http::{HeaderMap, StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Response};
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::errors::{Fail, IDEMPOTENT, READ};
use crate::auth::{ReadAuth, WriteAuth};
use crate::domain::ids::CalendarId;
use crate::error::{ApiError, ErrorCode};
use crate::middleware::request_id;
use crate::schema::Timestamp;
use crate::service::feeds::FeedGrant;
use crate::state::AppState;

/// A calendar's iCalendar feed.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct FeedOut {
    /// The calendar the feed shows.
    pub calendar_id: Uuid,
    /// The feed's secret address (`https://.../feeds/qfeed_....ics`), for a calendar app's
    /// "subscribe by URL". Given only when the address is made (the first request, or a
    /// rotation): Quando keeps only a hash of its token and cannot show it again; `null`
    /// otherwise.
    #[oai(nullable)]
    pub url: Option<String>,
    /// When the current address was made.
    pub created_at: Timestamp,
}

/// One feed.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct FeedEnvelope {
    /// The feed.
    pub data: FeedOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

#[derive(ApiResponse)]
pub enum GetFeedResponse {
    /// The calendar already has a feed; its URL is not shown again (`url` is `null`): rotate
    /// to get a new one.
    #[oai(status = 200)]
    Ok(Json<FeedEnvelope>),
    /// The calendar had no feed: one was made, and `url` holds its address, shown this once.
    #[oai(status = 201)]
    Created(Json<FeedEnvelope>),
}

#[derive(ApiResponse)]
pub enum RotateFeedResponse {
    /// The feed has a new address in `url`, shown this once; the old address is 404 from now on.
    #[oai(status = 200)]
    Ok(Json<FeedEnvelope>),
}

fn envelope(grant: FeedGrant, base: &str) -> Json<FeedEnvelope> {
    Json(FeedEnvelope {
        data: FeedOut {
            calendar_id: grant.feed.calendar_id.0,
            url: grant
                .token
                .map(|t| format!("{base}/feeds/{}.ics", t.expose())),
            created_at: Timestamp(grant.feed.created_at),
        },
        request_id: request_id::current(),
    })
}

pub struct FeedsApi;

#[OpenApi(prefix_path = "/v1/calendar/calendars", tag = "ApiTags::Calendars")]
impl FeedsApi {
    /// Get a calendar's feed
    ///
    /// The calendar's iCalendar (RFC 5545) feed for calendar apps (Apple Calendar, Google
    /// Calendar, Outlook, Thunderbird: "subscribe by URL"). The first request makes the feed and
    /// answers 201 with its secret `url`, shown that once; later requests answer 200 with
    /// `url: null` (Quando keeps only a hash of the token). `POST .../feed/rotate` gives a new
    /// URL. The feed takes no API key: whoever has the URL can read the calendar, so treat it as
    /// a password. It holds every event whose time meets the window from 90 days before to 365
    /// days after the current UTC day, cancelled ones marked `STATUS:CANCELLED`, each recurring
    /// series with an instance in the window as `RRULE`/`RDATE`/`EXDATE` with its changed
    /// instances as `RECURRENCE-ID` components, and a `VTIMEZONE` per zone used. It answers
    /// `ETag`, and 304 to a matching `If-None-Match`. Scope: `calendar:read`.
    #[oai(path = "/:id/feed", method = "get", operation_id = "getCalendarFeed")]
    async fn get_feed(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        headers: &HeaderMap,
        /// Calendar id.
        id: Path<Uuid>,
    ) -> Result<GetFeedResponse, Fail<READ>> {
        let grant = state
            .service
            .calendar_feed(auth.0.org_id, CalendarId(id.0))
            .await?;
        let created = grant.token.is_some();
        let body = envelope(
            grant,
            &crate::middleware::cors::public_base(&state.config, headers),
        );
        Ok(if created {
            GetFeedResponse::Created(body)
        } else {
            GetFeedResponse::Ok(body)
        })
    }

    /// Rotate a calendar's feed URL
    ///
    /// Gives the calendar's feed a new secret URL (making the feed if it has none) and answers
    /// it in `url`, shown this once. The old URL is 404 from this moment: rotate when a URL has
    /// leaked or a subscriber should lose access. Scope: `calendar:write`.
    #[oai(
        path = "/:id/feed/rotate",
        method = "post",
        operation_id = "rotateCalendarFeed"
    )]
    async fn rotate_feed(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        headers: &HeaderMap,
        /// Calendar id.
        id: Path<Uuid>,
        /// Makes retries safe: the first response to this key (with its URL) is replayed for 24
        /// hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
    ) -> Result<RotateFeedResponse, Fail<{ READ | IDEMPOTENT }>> {
        let grant = state
            .service
            .rotate_calendar_feed(auth.0.org_id, CalendarId(id.0))
            .await?;
        Ok(RotateFeedResponse::Ok(envelope(
            grant,
            &crate::middleware::cors::public_base(&state.config, headers),
        )))
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`): weak comparison, as RFC 9110 has it for
/// this header.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// `GET /feeds/{token}.ics`: the calendar's feed, no API key. A malformed, unknown or rotated
/// token is 404 `not_found` (the same answer for each), and counts against the caller's budget
/// of failed authentications (429 past it), so tokens cannot be guessed at speed.
#[poem::handler]
pub async fn feed_ics(
    req: &poem::Request,
    state: Data<&AppState>,
    poem::web::Path(file): poem::web::Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no calendar feed at this address");
    let document = match file.strip_suffix(".ics") {
        Some(token) => state.service.feed_document(token).await,
        None => Err(crate::service::ServiceError::NotFound(
            crate::service::Resource::Feed,
        )),
    };
    let document = match document {
        Ok(d) => d,
        Err(crate::service::ServiceError::NotFound(_)) => {
            if let Some(ip) = req.remote_addr().as_socket_addr().map(|a| a.ip())
                && let Err(wait) = state.limits.check_auth_failure(ip)
            {
                state.metrics.rate_limited();
                return Err(ApiError {
                    retry_after: Some(wait),
                    ..ApiError::new(
                        ErrorCode::RateLimitExceeded,
                        "too many requests for unknown feeds from this address; retry later",
                    )
                });
            }
            return Err(not_found());
        }
        Err(err) => return Err(err.into()),
    };
    let cache = "private, max-age=300";
    if none_match(req.headers(), &document.etag) {
        return Ok(Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, document.etag)
            .header(header::CACHE_CONTROL, cache)
            .finish());
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .content_type("text/calendar; charset=utf-8")
        .header(header::ETAG, document.etag)
        .header(header::CACHE_CONTROL, cache)
        .header(
            header::CONTENT_DISPOSITION,
            "inline; filename=\"calendar.ics\"",
        )
        .body(document.ics)
        .into_response())
}
