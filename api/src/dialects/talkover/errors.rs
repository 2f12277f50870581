//! The one error mapper of the Talkover dialect. Every error on a `/api/v1` path, whoever raised
//! it (the key check, the rate limiter, the idempotency layer, a body that does not parse, the
//! booking core, an unknown route), leaves in Talkover's envelope:
//! `{"success": false, "error": {"code", "message", "details"}, "requestId"}` with Talkover's
//! upper-snake codes, never the native envelope and never plain text.
//!
//! Errors are raised once, as `ApiError` (the native mapper renders them); this layer, around
//! the whole server, turns the native envelope of a `/api/v1` answer into Talkover's: the same
//! status, code for code, field names in snake_case, next slots as `{start_at, end_at}`.
//! `TFail<SET>` declares an operation's errors in the spec with this envelope.

use std::sync::Arc;

use poem::{Endpoint, Request, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde_json::{Map, Value, json};

use crate::dialects::native::errors::statuses;
use crate::error::ApiError;

/// Where the dialect lives.
pub const PREFIX: &str = "/api/v1";

/// Whether a request path belongs to the Talkover dialect.
pub fn is_talkover_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/api/v1/")
}

/// Talkover's code for a native one.
pub fn code_of(native: &str) -> &'static str {
    match native {
        "unauthorized" => "INVALID_API_KEY",
        "forbidden" => "FORBIDDEN",
        "insufficient_scope" => "INSUFFICIENT_SCOPE",
        "validation_error" | "bad_request" => "VALIDATION_ERROR",
        "not_found" => "NOT_FOUND",
        "method_not_allowed" => "METHOD_NOT_ALLOWED",
        "slot_unavailable" => "SLOT_UNAVAILABLE",
        "idempotency_conflict" => "IDEMPOTENCY_CONFLICT",
        "idempotency_in_progress" => "IDEMPOTENCY_IN_PROGRESS",
        "rate_limit_exceeded" => "RATE_LIMIT_EXCEEDED",
        "payload_too_large" => "PAYLOAD_TOO_LARGE",
        "unsupported_media_type" => "UNSUPPORTED_MEDIA_TYPE",
        "headers_too_large" => "HEADERS_TOO_LARGE",
        "service_unavailable" | "request_timeout" => "SERVICE_UNAVAILABLE",
        "not_supported" => "NOT_SUPPORTED",
        _ => "INTERNAL_ERROR",
    }
}

/// A field name as a Talkover client spells it. The booking core names fields the native way
/// (`startTime`); Talkover's bodies are snake_case and name its times `start_at`/`end_at`.
pub fn field_of(native: &str) -> String {
    match native {
        "startTime" => return "start_at".into(),
        "endTime" => return "end_at".into(),
        "dateFrom" => return "from".into(),
        "dateTo" => return "to".into(),
        _ => {}
    }
    let mut out = String::with_capacity(native.len() + 4);
    for c in native.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Talkover envelope of a native error body; `None` when the body is not one.
pub fn envelope_of(native: &Value) -> Option<Value> {
    let error = native.get("error")?;
    let code = error.get("code")?.as_str()?;
    let mut details = Map::new();
    if let Some(d) = error.get("details").and_then(Value::as_object) {
        if let Some(fields) = d.get("fields").and_then(Value::as_array) {
            let fields: Vec<Value> = fields
                .iter()
                .map(|f| {
                    json!({
                        "field": f.get("field").and_then(Value::as_str).map(field_of),
                        "message": f.get("message"),
                    })
                })
                .collect();
            details.insert("fields".into(), Value::Array(fields));
        }
        if let Some(reason) = d.get("reason").filter(|r| !r.is_null()) {
            details.insert("reason".into(), reason.clone());
        }
        if let Some(id) = d.get("conflictingEventId").filter(|r| !r.is_null()) {
            details.insert("conflicting_event_id".into(), id.clone());
        }
        if let Some(next) = d.get("nextSlots").and_then(Value::as_array) {
            let next: Vec<Value> = next
                .iter()
                .map(|s| json!({"start_at": s.get("startTime"), "end_at": s.get("endTime")}))
                .collect();
            details.insert("next_slots".into(), Value::Array(next));
        }
    }
    let message = error.get("message").cloned().unwrap_or(Value::Null);
    let message = match message {
        Value::String(m) => Value::String(rename_fields_in(&m)),
        other => other,
    };
    Some(json!({
        "success": false,
        "error": {
            "code": code_of(code),
            "message": message,
            "details": if details.is_empty() { Value::Null } else { Value::Object(details) },
        },
        "requestId": native.get("requestId").cloned().unwrap_or(Value::Null),
    }))
}

/// A message that starts with a native field name (`startTime: ...`) names it Talkover's way.
fn rename_fields_in(message: &str) -> String {
    match message.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => format!("{}: {rest}", field_of(field)),
        _ => message.to_string(),
    }
}

/// Around the whole server, outside even the request-id layer (whose own refusals, an
/// oversized body or a request timeout, are errors too): the answer to a `/api/v1` request that
/// is an error in the native envelope goes out in Talkover's.
pub async fn layer<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    crate::dialects::rewrite_errors(
        next,
        req,
        is_talkover_path,
        "application/json; charset=utf-8",
        |_, bytes| {
            serde_json::from_slice::<Value>(bytes)
                .ok()
                .and_then(|native| envelope_of(&native))
                .map(|envelope| envelope.to_string())
        },
    )
    .await
}

/// The error itself, as Talkover writes it.
#[derive(Object)]
#[oai(rename = "TalkoverErrorBody")]
pub struct TErrorBody {
    /// Upper-snake code: `INVALID_API_KEY`, `FORBIDDEN`, `INSUFFICIENT_SCOPE`, `VALIDATION_ERROR`
    /// (`details.fields` names each bad field), `NOT_FOUND`, `SLOT_UNAVAILABLE` (`details.reason`,
    /// `details.conflicting_event_id`, `details.next_slots`), `IDEMPOTENCY_CONFLICT`,
    /// `IDEMPOTENCY_IN_PROGRESS`, `RATE_LIMIT_EXCEEDED`, `PAYLOAD_TOO_LARGE`,
    /// `UNSUPPORTED_MEDIA_TYPE`, `SERVICE_UNAVAILABLE`, `NOT_SUPPORTED`, `INTERNAL_ERROR`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Field errors or refusal details; `null` when there are none.
    #[oai(nullable)]
    pub details: Option<serde_json::Value>,
}

/// Every error on a Talkover path.
#[derive(Object)]
#[oai(rename = "TalkoverError", rename_all = "camelCase")]
pub struct TErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: TErrorBody,
    /// The request id, also in the `X-Request-Id` header.
    pub request_id: String,
}

/// An operation's errors, declared with Talkover's envelope (the sets are the native ones:
/// `crate::dialects::native::errors`).
#[derive(Debug)]
pub struct TFail<const SET: u32>(pub ApiError);

impl<const SET: u32, E: Into<ApiError>> From<E> for TFail<SET> {
    fn from(err: E) -> Self {
        TFail(err.into())
    }
}

impl<const SET: u32> From<TFail<SET>> for poem::Error {
    fn from(fail: TFail<SET>) -> Self {
        fail.0.into()
    }
}

impl<const SET: u32> ApiResponse for TFail<SET> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: statuses(SET)
                .into_iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: TErrorEnvelope::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        TErrorEnvelope::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_reason_and_offers_slots_in_snake_case() {
        let native = json!({"error": {"code": "slot_unavailable", "message": "taken",
            "details": {"reason": "conflict", "conflictingEventId": "e1",
                "nextSlots": [{"startTime": "2027-01-01T10:00:00Z", "endTime": "2027-01-01T10:30:00Z",
                               "localStartTime": "x"}]}}, "requestId": "r1"});
        let t = envelope_of(&native).unwrap();
        assert_eq!(t["success"], false);
        assert_eq!(t["error"]["code"], "SLOT_UNAVAILABLE");
        assert_eq!(t["error"]["details"]["reason"], "conflict");
        assert_eq!(t["error"]["details"]["conflicting_event_id"], "e1");
        assert_eq!(
            t["error"]["details"]["next_slots"][0],
            json!({"start_at": "2027-01-01T10:00:00Z", "end_at": "2027-01-01T10:30:00Z"})
        );
        assert_eq!(t["requestId"], "r1");
    }

    #[test]
    fn field_names_are_written_the_talkover_way() {
        assert_eq!(field_of("endTime"), "end_at");
        assert_eq!(field_of("ownerType"), "owner_type");
        assert_eq!(field_of("attendees[0].email"), "attendees[0].email");
        let native = json!({"error": {"code": "validation_error", "message": "endTime: must be after startTime",
            "details": {"fields": [{"field": "endTime", "message": "must be after startTime"}]}}, "requestId": "r"});
        let t = envelope_of(&native).unwrap();
        assert_eq!(t["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(t["error"]["details"]["fields"][0]["field"], "end_at");
        assert_eq!(t["error"]["message"], "end_at: must be after startTime");
    }

    #[test]
    fn every_native_code_has_a_talkover_one() {
        for (native, talkover) in [
            ("unauthorized", "INVALID_API_KEY"),
            ("insufficient_scope", "INSUFFICIENT_SCOPE"),
            ("idempotency_conflict", "IDEMPOTENCY_CONFLICT"),
            ("rate_limit_exceeded", "RATE_LIMIT_EXCEEDED"),
            ("payload_too_large", "PAYLOAD_TOO_LARGE"),
            ("internal_error", "INTERNAL_ERROR"),
        ] {
            assert_eq!(code_of(native), talkover);
        }
    }
}
