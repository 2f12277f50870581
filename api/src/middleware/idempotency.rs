//! `Idempotency-Key` on POST. The first response to `(organization, key)` is stored for 24 hours;
//! a repeat of the same request (method, path, query and body) gets it again with
//! `Idempotent-Replayed: true` and runs nothing; the same key with another request is 422
//! `idempotency_conflict`; a repeat that arrives while the first is running waits for its answer
//! (409 `idempotency_in_progress` after 10 s). Voice agents retry on timeouts: a retried booking
//! never creates a second appointment.
//!
//! Requests are compared as parsed JSON (keys reordered or re-indented are the same request). A
//! write stores its answer in its own transaction (`repo::idempotency::seal`), so a booking and
//! the answer describing it commit together; a claim whose owner process died is taken over at
//! once by the retry (`crate::instance`), never waited on.
//!
//! Runs inside the request-id layer and after `AppState` is attached. Requests that cannot be
//! attributed to an organization (no or bad key) pass through, so the handler answers 401/403.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

use crate::auth;
use crate::error::{ApiError, ErrorCode};
use crate::payload::read_limited;
use crate::repo::idempotency::{self as store, Claim, Held};
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_WAIT: Duration = Duration::from_secs(10);

/// At most 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn layer<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return call(&next, req).await;
    }
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| valid_key(k))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?;
    let (Some(state), Some(org)) = (
        req.data::<AppState>().cloned(),
        req.data::<auth::Tenant>().map(|t| t.org_id),
    ) else {
        return call(&next, req).await;
    };

    let body = read_limited(req.take_body()).await?;
    let hash = request_hash(
        req.method(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        &body,
    );
    req.set_body(Body::from_vec(body));

    let instance = state.instance().await.map_err(ApiError::from)?;
    match store::claim_waiting(&state.service.writer, instance, org, &key, &hash, MAX_WAIT)
        .await
        .map_err(ApiError::from)?
    {
        Claim::Fresh => {}
        Claim::Replay { status, body } => return Ok(replay(status, &body)),
        Claim::Mismatch => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was already used with a different request",
            )
            .into());
        }
        Claim::InProgress => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into());
        }
    }

    let held = Held::new(org, key, instance.id);
    let resp = store::holding(held.clone(), call(&next, req))
        .await
        .unwrap_or_else(crate::dialects::native::errors::error_response);
    let status = resp.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        // Worth retrying: do not pin the failure to the key (a sealed answer stays).
        store::release(&state.service.writer, &held)
            .await
            .map_err(ApiError::from)?;
        return Ok(resp);
    }
    if held.sealed() {
        // The write stored this answer in its own transaction.
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.map_err(ApiError::internal)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    store::complete(&state.service.writer, &held, status.as_u16(), text)
        .await
        .map_err(ApiError::from)?;
    Ok(Response::from_parts(parts, Body::from_bytes(bytes)))
}

async fn call<E: Endpoint>(next: &Arc<E>, req: Request) -> poem::Result<Response> {
    next.call(req).await.map(IntoResponse::into_response)
}

/// SHA-256 of method, path and query, and the body as parsed JSON in canonical form (object keys
/// sorted, no insignificant whitespace): the same request re-serialised with keys reordered or
/// re-indented is the same request (as at Stripe); a different value is not. A body that is not
/// JSON is hashed as its bytes.
pub fn request_hash(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path_and_query.as_bytes());
    hasher.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            hasher.update([1]);
            let mut canonical = String::with_capacity(body.len());
            write_canonical(&value, &mut canonical);
            hasher.update(canonical.as_bytes());
        }
        Err(_) => {
            hasher.update([2]);
            hasher.update(body);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON with object keys in sorted order and no whitespace, whatever order the parser kept.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The stored answer, its `requestId` set to this request's id so header and body still agree.
fn replay(status: u16, body: &str) -> Response {
    let body = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            if map.contains_key("requestId") {
                map.insert("requestId".into(), crate::context::request_id().into());
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => body.to_string(),
    };
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("application/json; charset=utf-8")
        .body(body);
    resp.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(valid_key("booking-7f3a"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("café"));
    }

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let a = request_hash(&Method::POST, "/v1/calendar/events", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/v1/calendar/events", b"{}"));
        assert_ne!(
            a,
            request_hash(&Method::POST, "/v1/calendar/calendars", b"{}")
        );
        assert_ne!(
            a,
            request_hash(&Method::POST, "/v1/calendar/events", b"{\"a\":1}")
        );
    }

    #[test]
    fn the_same_json_reordered_or_reindented_hashes_alike_and_a_new_value_does_not() {
        let path = "/v1/calendar/events";
        let a = request_hash(
            &Method::POST,
            path,
            br#"{"b":{"y":2,"x":[1,{"q":1,"p":2}]},"a":"z"}"#,
        );
        let reordered = br#"{ "a" : "z",
            "b": { "x": [1, {"p": 2, "q": 1}], "y": 2 } }"#;
        assert_eq!(a, request_hash(&Method::POST, path, reordered));
        let changed = br#"{"a":"z","b":{"x":[1,{"p":2,"q":1}],"y":3}}"#;
        assert_ne!(a, request_hash(&Method::POST, path, changed));
        let array_order = br#"{"a":"z","b":{"x":[{"p":2,"q":1},1],"y":2}}"#;
        assert_ne!(a, request_hash(&Method::POST, path, array_order));
    }

    #[test]
    fn a_body_that_is_not_json_is_hashed_as_bytes() {
        let path = "/v1/calendar/events";
        assert_ne!(
            request_hash(&Method::POST, path, b"{not json"),
            request_hash(&Method::POST, path, b"{not  json")
        );
    }
}
