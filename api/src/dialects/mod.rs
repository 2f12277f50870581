//! The public APIs Quando speaks, one folder each: DTOs, parsing into domain requests, and the
//! mapping of results and errors into the dialect's own envelope. No booking rule lives here;
//! they are all in `crate::service`.

pub mod google;
pub mod native;
pub mod talkover;

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::dialects::native::errors::error_response;
use crate::error::ApiError;

/// The one way a dialect's error layer works, around the whole server: an error answer (4xx,
/// 5xx) to a request whose path `belongs` to the dialect gets the body `rewrite` makes of it
/// (`None` keeps the body as it is), as `content_type`; status and every other header are kept.
/// Errors raised before any handler (the key check, the rate limiter, an unknown route, the
/// request-id layer's own refusals) arrive here in the native envelope.
pub async fn rewrite_errors<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    belongs: fn(&str) -> bool,
    content_type: &'static str,
    rewrite: impl Fn(StatusCode, &[u8]) -> Option<String>,
) -> poem::Result<Response> {
    let ours = belongs(req.uri().path());
    let resp = next
        .call(req)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(error_response);
    let status = resp.status();
    if !ours || !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.map_err(ApiError::internal)?;
    match rewrite(status, &bytes) {
        Some(body) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok(Response::from_parts(parts, Body::from_string(body)))
        }
        None => Ok(Response::from_parts(parts, Body::from_bytes(bytes))),
    }
}
