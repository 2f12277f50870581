//! The outermost layer. It gives every request an id (a well-formed incoming `X-Request-Id` is
//! kept, otherwise a UUID v7 is generated), makes that id available to the code that builds
//! response bodies, bounds the request's time (503 `request_timeout` past the configured limit),
//! turns any error that escaped the handlers into the JSON envelope (through the one mapper,
//! `dialects::native::errors::error_response`), sets the `X-Request-Id`
//! header on every response, records the request's metrics, and writes one log line per request
//! (request id, org id, method, route template, status, latency). Secrets never reach it: the
//! Authorization header is not logged. The method and route it records come from fixed sets
//! (`metrics::method_label`, `metrics::route_of_path`): an invented method or path never
//! becomes a label or a log field of its own. A `Content-Length` over the body limit is
//! answered 413 here, before anything waits for the body.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::context::{self, ServedOrg};
use crate::dialects::native::errors::error_response;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::{method_label, route_of_path, route_template};
use crate::state::AppState;

pub const HEADER: &str = "x-request-id";
/// Header limits answered in the envelope (hyper's own, higher, limits close the connection).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A declared body over the limit: refused before a byte of it is read, so a client that
/// announces 10 MB and sends nothing is answered at once instead of holding a task.
fn declared_body_too_large(req: &Request) -> bool {
    req.headers()
        .get_all(poem::http::header::CONTENT_LENGTH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .any(|n| n > crate::payload::MAX_BODY_BYTES as u64)
}

fn headers_too_large(req: &Request) -> bool {
    let headers = req.headers();
    headers.len() > MAX_HEADERS
        || headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum::<usize>()
            > MAX_HEADER_BYTES
}

/// The id of the request being served: the context's value, named where handlers look for it.
pub use crate::context::request_id as current;

/// 1 to 128 visible characters from a conservative set, so ids can be logged and echoed safely.
fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn layer<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let started = Instant::now();
    let method = method_label(req.method());
    let path_route = route_of_path(req.uri().path());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        org_id = tracing::field::Empty,
        method,
    );
    let state = req.data::<AppState>().cloned();
    let timeout = state
        .as_ref()
        .map_or(std::time::Duration::from_secs(30), |s| {
            s.config.request_timeout
        });
    let (mut resp, route) = context::with_request_id(
        id.clone(),
        async move {
            let outcome = if headers_too_large(&req) {
                Err(ApiError::new(
                    ErrorCode::HeadersTooLarge,
                    format!(
                        "at most {MAX_HEADERS} headers and {} KiB of them",
                        MAX_HEADER_BYTES / 1024
                    ),
                )
                .into())
            } else if declared_body_too_large(&req) {
                Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "the request body is over {} KiB",
                        crate::payload::MAX_BODY_BYTES / 1024
                    ),
                )
                .into())
            } else {
                match tokio::time::timeout(timeout, next.call(req)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(ApiError::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "the request took longer than {} s and was abandoned",
                            timeout.as_secs()
                        ),
                    )
                    .into()),
                }
            };
            match outcome {
                Ok(resp) => {
                    let resp = resp.into_response();
                    let route = resp.data::<OperationId>().map(|o| o.0);
                    (resp, route)
                }
                Err(err) => {
                    let resp = error_response(err);
                    let route = resp.data::<OperationId>().map(|o| o.0);
                    (resp, route)
                }
            }
        }
        .instrument(span.clone()),
    )
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, value);
    }
    let status = resp.status().as_u16();
    if status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() {
        // The body was never read: the connection cannot carry another request.
        resp.headers_mut().insert(
            poem::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    let route = match route {
        Some(_) => route_template(route),
        None => path_route,
    };
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(state) = &state {
        state.metrics.record_request(route, method, status, elapsed);
    }
    let org_id = resp.data::<ServedOrg>().map(|o| o.0.to_string());
    tracing::info!(
        parent: &span,
        request_id = %id,
        org_id = org_id.as_deref().unwrap_or(""),
        method,
        route,
        status,
        latency_ms = elapsed * 1000.0,
        "request"
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_ordinary_shapes_are_kept_and_odd_ones_replaced() {
        assert!(well_formed("req-abc123"));
        assert!(well_formed("0196f6d2-8c1e-7a3b-9f00-123456789abc"));
        assert!(!well_formed(""));
        assert!(!well_formed("has space"));
        assert!(!well_formed(&"x".repeat(129)));
        assert!(!well_formed("<script>"));
    }

    #[tokio::test]
    async fn too_many_headers_are_431_in_the_envelope() {
        let server = crate::test_support::server(crate::config::Config::default()).await;
        let mut req = server.client.get("/healthz");
        for i in 0..70 {
            req = req.header(format!("x-extra-{i}"), "1");
        }
        let resp = req.send().await;
        resp.assert_status(poem::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let body = resp.json().await;
        body.value()
            .object()
            .get("error")
            .object()
            .get("code")
            .assert_string("headers_too_large");
        let big = "v".repeat(17 * 1024);
        let resp = server
            .client
            .get("/healthz")
            .header("x-big", big)
            .send()
            .await;
        resp.assert_status(poem::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    /// The layer itself around an endpoint that outlives the limit: deterministic, unlike racing
    /// a real query against a tiny limit.
    #[tokio::test]
    async fn a_request_over_the_time_limit_is_503_request_timeout_in_the_envelope() {
        use poem::EndpointExt;
        let config = crate::config::Config {
            request_timeout: std::time::Duration::from_millis(20),
            ..crate::config::Config::default()
        };
        let (state, _key, _dir) = crate::test_support::state(config).await;
        let slow = poem::endpoint::make(|_| async {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            "too late"
        });
        let endpoint = poem::Route::new()
            .at("/slow", slow)
            .around(layer)
            .data(state);
        let resp = poem::test::TestClient::new(endpoint)
            .get("/slow")
            .send()
            .await;
        resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = resp.json().await;
        body.value()
            .object()
            .get("error")
            .object()
            .get("code")
            .assert_string("request_timeout");
    }
}
