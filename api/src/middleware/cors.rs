//! Browsers: CORS for booking widgets and dashboards.
//!
//! The rule, per request that carries an `Origin`:
//! - a publishable key is accepted from its own origins (`quando key create --publishable
//!   --origins ...`) and from this server's own origin (the booking page `/book/...`);
//! - a secret key only from the origins the server is configured with (`QUANDO_CORS_ORIGINS`,
//!   for dashboards) and from this server's own origin (the docs page): a secret key in a web
//!   page anywhere else has leaked, and is refused (403 `forbidden`);
//! - an accepted request's answer names that origin in `Access-Control-Allow-Origin` (never `*`,
//!   never with credentials: keys travel in `Authorization`, not in cookies) with `Vary: Origin`;
//!   a refused one carries no CORS header at all.
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) carries no key: it is answered
//! 204 for an origin some live publishable key or the configuration allows (`AppState::origins`),
//! with the methods and the request headers the API reads, and 403 without CORS headers for any
//! other origin. The request that follows is still held to its own key's origins.

use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{IntoResponse, Request, Response};

use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// What a cross-origin caller may send.
pub const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE";
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, X-Request-Id";
/// What a cross-origin caller may read beside the body.
pub const EXPOSE_HEADERS: &str = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Idempotent-Replayed";
/// How long a browser may keep a preflight's answer, in seconds.
pub const MAX_AGE: &str = "600";

/// The absolute address clients reach this server at: `QUANDO_PUBLIC_URL`, else the request's
/// `Host` with `X-Forwarded-Proto` (`http` without it).
pub fn public_base(config: &Config, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| p.eq_ignore_ascii_case("https"))
        .map_or("http", |_| "https");
    format!("{proto}://{host}")
}

/// The request's `Origin`, when it has a usable one (`null` and garbage are none).
pub fn origin_of(req: &Request) -> Option<String> {
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    crate::auth::parse_origin(origin).ok()
}

/// Whether `origin` is this server's own (a page it served calling it back).
pub fn is_own(config: &Config, headers: &HeaderMap, origin: &str) -> bool {
    crate::auth::parse_origin(&public_base(config, headers)).is_ok_and(|own| own == origin)
}

/// The answer headers of an accepted cross-origin request.
pub fn allow(resp: &mut Response, origin: &str) {
    let Ok(value) = HeaderValue::from_str(origin) else {
        return;
    };
    let headers = resp.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn forbidden_origin(origin: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "requests from the origin {origin} are not accepted: a publishable key allows its own origins, a secret key only the server's QUANDO_CORS_ORIGINS"
        ),
    )
}

/// Refuses a key used from an origin it does not allow (see the module's rule).
pub fn check_key_origin(
    state: &AppState,
    req: &Request,
    tenant: &crate::auth::Tenant,
) -> Result<Option<String>, ApiError> {
    let Some(origin) = origin_of(req) else {
        if req.headers().contains_key(header::ORIGIN) {
            return Err(forbidden_origin("given"));
        }
        return Ok(None);
    };
    let allowed = is_own(&state.config, req.headers(), &origin)
        || match tenant.binding() {
            Some(binding) => binding.origins.contains(&origin),
            None => state.config.cors_origins.contains(&origin),
        };
    if allowed {
        Ok(Some(origin))
    } else {
        Err(forbidden_origin(&origin))
    }
}

/// Whether `origin` is one the server answers at all: its own, a configured one, or one of a
/// live publishable key's.
pub async fn is_known(
    state: &AppState,
    headers: &HeaderMap,
    origin: &str,
) -> Result<bool, sea_orm::DbErr> {
    if is_own(&state.config, headers, origin)
        || state.config.cors_origins.iter().any(|o| o == origin)
    {
        return Ok(true);
    }
    state.origins.knows(&state.db, origin).await
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Answers a preflight (the tenant layer hands it over before anything else).
pub async fn preflight(state: &AppState, req: &Request) -> poem::Result<Response> {
    let Some(origin) = origin_of(req) else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a preflight needs an Origin of the form https://shop.example",
        )
        .into());
    };
    let known = is_known(state, req.headers(), &origin)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "could not read the origins of publishable keys");
            ApiError::from(err)
        })?;
    if !known {
        return Err(forbidden_origin(&origin).into());
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    allow(&mut resp, &origin);
    let headers = resp.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    Ok(resp)
}
