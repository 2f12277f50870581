//! The one error mapper of the Google Calendar v3 dialect. Every error on a `/calendar/v3` path,
//! whoever raised it (the key check, the rate limiter, an unknown route, a body that does not
//! parse, the booking core), leaves in Google's shape:
//!
//! ```json
//! {"error": {"code": 409, "message": "...", "status": "ABORTED",
//!            "errors": [{"domain": "calendar", "reason": "conflict", "message": "...",
//!                        "locationType": "parameter", "location": "timeMax"}]}}
//! ```
//!
//! The dialect's handlers raise `GError` (already in this shape). Errors raised before them, in
//! the native envelope (401 from the key check, 429, 404 of an unknown path, 405, 413, 415,
//! 503), are rewritten by `layer`, around the whole server like Talkover's: the same status,
//! Google's reason for the native code. Never the native envelope, never plain text.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::{Map, Value, json};

use crate::domain::violations::Invalid;
use crate::error::ApiError;
use crate::service::ServiceError;

/// Where the dialect lives.
pub const PREFIX: &str = "/calendar/v3";

/// Whether a request path belongs to the Google dialect.
pub fn is_google_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/calendar/v3/")
}

/// One entry of `error.errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub domain: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// The field or query parameter at fault (`timeMax`, `start.dateTime`, `attendees[0].email`).
    pub location: Option<String>,
}

/// A Google-shaped error.
#[derive(Clone, Debug)]
pub struct GError {
    pub status: StatusCode,
    pub message: String,
    pub problems: Vec<Problem>,
    /// Extra members of the `error` object (Quando's refusal reason and next slots on a 409).
    pub extra: Map<String, Value>,
    pub retry_after: Option<u64>,
}

impl GError {
    pub fn new(
        status: StatusCode,
        domain: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        GError {
            status,
            problems: vec![Problem {
                domain,
                reason,
                message: message.clone(),
                location: None,
            }],
            message,
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// 400 `invalid` at a field or parameter.
    pub fn invalid(location: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "invalid", message).at(location)
    }

    /// 400 `required` at a field or parameter.
    pub fn required(location: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "required", message).at(location)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "global", "notFound", message)
    }

    pub fn gone_full_sync(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "calendar", "fullSyncRequired", message)
    }

    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "global",
            "conditionNotMet",
            "Precondition Failed: If-Match does not match the event's current etag",
        )
        .at_header("If-Match")
    }

    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "global", "duplicate", message).at("id")
    }

    /// Names the field or parameter at fault.
    pub fn at(mut self, location: &str) -> Self {
        for p in &mut self.problems {
            p.location = Some(location.to_string());
        }
        self
    }

    fn at_header(self, name: &str) -> Self {
        self.at(name)
    }

    /// Every problem of a parse, each at its field.
    pub fn from_invalid(invalid: Invalid) -> Self {
        let problems: Vec<Problem> = invalid
            .0
            .into_iter()
            .map(|v| Problem {
                domain: "global",
                reason: if v.message == "is required" {
                    "required"
                } else {
                    "invalid"
                },
                message: format!("{}: {}", v.field, v.message),
                location: Some(v.field),
            })
            .collect();
        let message = match problems.as_slice() {
            [only] => only.message.clone(),
            _ => format!(
                "Invalid values: {}",
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        GError {
            status: StatusCode::BAD_REQUEST,
            message,
            problems,
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// The body, in Google's shape.
    pub fn body(&self) -> Value {
        let errors: Vec<Value> = self
            .problems
            .iter()
            .map(|p| {
                let mut e = json!({"domain": p.domain, "reason": p.reason, "message": p.message});
                if let Some(location) = &p.location {
                    e["locationType"] = json!(location_type(location));
                    e["location"] = json!(location);
                }
                e
            })
            .collect();
        let mut error = Map::new();
        error.insert("code".into(), json!(self.status.as_u16()));
        error.insert("message".into(), json!(self.message));
        error.insert("errors".into(), Value::Array(errors));
        error.insert(
            "status".into(),
            json!(status_name(
                self.status,
                self.problems.first().map(|p| p.reason)
            )),
        );
        for (k, v) in &self.extra {
            error.insert(k.clone(), v.clone());
        }
        json!({ "error": error })
    }
}

/// Body fields are `parameter`s in Google's answers too (it says so for both); headers are
/// `header`s.
fn location_type(location: &str) -> &'static str {
    match location {
        "If-Match" | "If-None-Match" | "Authorization" => "header",
        _ => "parameter",
    }
}

/// The canonical status name Google puts beside the code.
fn status_name(status: StatusCode, reason: Option<&str>) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 | 431 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 if reason == Some("duplicate") => "ALREADY_EXISTS",
        409 => "ABORTED",
        410 | 412 | 422 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

impl std::fmt::Display for GError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for GError {}

impl IntoResponse for GError {
    fn into_response(self) -> Response {
        let mut resp = Response::builder()
            .status(self.status)
            .content_type("application/json; charset=UTF-8")
            .body(self.body().to_string());
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl poem::error::ResponseError for GError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        self.clone().into_response()
    }
}

/// A native error (raised by shared code: the key check, storage) as Google writes it.
impl From<ApiError> for GError {
    fn from(err: ApiError) -> Self {
        let mut out = of_native(err.code.status(), &code_str(&err), &err.message);
        out.retry_after = err.retry_after;
        if let Some(fields) = err.details.as_ref().and_then(|d| d.fields.clone()) {
            out = GError::from_invalid(Invalid(
                fields
                    .into_iter()
                    .map(|f| crate::domain::violations::Violation {
                        field: f.field,
                        message: f.message,
                    })
                    .collect(),
            ));
        }
        out
    }
}

fn code_str(err: &ApiError) -> String {
    use poem_openapi::types::ToJSON;
    err.code
        .to_json()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Google's reason, domain and message for a native error code.
fn of_native(status: StatusCode, code: &str, message: &str) -> GError {
    let (domain, reason) = match code {
        "unauthorized" => ("global", "authError"),
        "forbidden" => ("global", "forbidden"),
        "insufficient_scope" => ("global", "insufficientPermissions"),
        "validation_error" | "bad_request" => ("global", "invalid"),
        "not_found" => ("global", "notFound"),
        "method_not_allowed" => ("global", "httpMethodNotAllowed"),
        "slot_unavailable" => ("calendar", "conflict"),
        "idempotency_in_progress" => ("global", "conflict"),
        "idempotency_conflict" => ("global", "conditionNotMet"),
        "rate_limit_exceeded" => ("usageLimits", "rateLimitExceeded"),
        "payload_too_large" => ("global", "uploadTooLarge"),
        "unsupported_media_type" => ("global", "badContent"),
        "headers_too_large" => ("global", "invalid"),
        _ => ("global", "backendError"),
    };
    let mut out = GError::new(status, domain, reason, message);
    if reason == "authError" {
        out = out.at_header("Authorization");
    }
    out
}

/// A field as Google's event resource names it, for a field the booking core names natively.
pub fn field_of(native: &str) -> &str {
    match native {
        "startTime" => "start.dateTime",
        "endTime" => "end.dateTime",
        "startDate" => "start.date",
        "endDate" => "end.date",
        "title" => "summary",
        "timezone" => "start.timeZone",
        other => other,
    }
}

/// A failure of the booking core. A refusal is 409 `conflict` whatever Quando's reason, and
/// carries that reason, the event in the way and the next free slots as extra members.
impl From<ServiceError> for GError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(resource) => GError::not_found(format!(
                "Not Found: no such {} in this organization",
                resource.name()
            )),
            ServiceError::Invalid(mut invalid) => {
                // The core names fields the native way; a Google client reads its own names.
                for v in &mut invalid.0 {
                    v.field = field_of(&v.field).to_string();
                }
                GError::from_invalid(invalid)
            }
            ServiceError::Refused(refusal) => {
                let native =
                    ApiError::slot_unavailable(refusal.reason, refusal.conflicting, Vec::new());
                let message = match refusal.instance {
                    Some(at) => format!(
                        "The instance of the recurring event at {} cannot be booked: {}",
                        crate::domain::time::format_utc(at),
                        native.message
                    ),
                    None => format!("The requested time cannot be booked: {}", native.message),
                };
                let mut out = GError::new(StatusCode::CONFLICT, "calendar", "conflict", message);
                if let Some(at) = refusal.instance {
                    out.extra.insert(
                        "instanceStart".into(),
                        json!(crate::domain::time::format_utc(at)),
                    );
                }
                let slots: Vec<Value> = refusal
                    .next_slots
                    .iter()
                    .map(|s| {
                        json!({"start": crate::domain::time::format_utc(s.start),
                               "end": crate::domain::time::format_utc(s.end)})
                    })
                    .collect();
                out.extra
                    .insert("quandoReason".into(), json!(refusal.reason.as_str()));
                out.extra.insert(
                    "conflictingEventId".into(),
                    refusal
                        .conflicting
                        .map(|id| json!(id.simple().to_string()))
                        .unwrap_or(Value::Null),
                );
                out.extra.insert("nextSlots".into(), Value::Array(slots));
                out
            }
            ServiceError::Stale => GError::condition_not_met(),
            other => GError::from(ApiError::from(other)),
        }
    }
}

impl From<Invalid> for GError {
    fn from(invalid: Invalid) -> Self {
        GError::from_invalid(invalid)
    }
}

impl From<sea_orm::DbErr> for GError {
    fn from(err: sea_orm::DbErr) -> Self {
        GError::from(ApiError::from(err))
    }
}

/// The Google shape of a native error body; `None` when the body is not one.
pub fn rewrite(status: StatusCode, native: &Value) -> Option<GError> {
    let error = native.get("error")?;
    let code = error.get("code")?.as_str()?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let fields = error
        .get("details")
        .and_then(|d| d.get("fields"))
        .and_then(Value::as_array);
    if let Some(fields) = fields.filter(|f| !f.is_empty()) {
        let mut out = GError::from_invalid(Invalid(
            fields
                .iter()
                .map(|f| crate::domain::violations::Violation {
                    field: f
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    message: f
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect(),
        ));
        out.status = status;
        return Some(out);
    }
    Some(of_native(status, code, message))
}

/// Around the whole server: an error answer to a `/calendar/v3` request that is still in the
/// native envelope goes out in Google's shape (headers such as `Retry-After` and the rate-limit
/// ones are kept).
pub async fn layer<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    crate::dialects::rewrite_errors(
        next,
        req,
        is_google_path,
        "application/json; charset=UTF-8",
        |status, bytes| {
            let parsed = serde_json::from_slice::<Value>(bytes).ok();
            // Already Google's shape (a handler's own error): `error.code` is a number.
            if parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(|e| e.get("code"))
                .is_some_and(Value::is_number)
            {
                return None;
            }
            let rewritten = parsed
                .as_ref()
                .and_then(|v| rewrite(status, v))
                .unwrap_or_else(|| GError::new(status, "global", "backendError", "Backend Error"));
            Some(rewritten.body().to_string())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_native_401_becomes_an_auth_error() {
        let native = json!({"error": {"code": "unauthorized", "message": "unknown API key", "details": null}, "requestId": "r"});
        let g = rewrite(StatusCode::UNAUTHORIZED, &native).unwrap().body();
        assert_eq!(g["error"]["code"], 401);
        assert_eq!(g["error"]["errors"][0]["reason"], "authError");
        assert_eq!(g["error"]["status"], "UNAUTHENTICATED");
    }

    #[test]
    fn field_errors_keep_their_location() {
        let g = GError::from_invalid(Invalid::one("start.dateTime", "is required")).body();
        assert_eq!(g["error"]["code"], 400);
        assert_eq!(g["error"]["errors"][0]["reason"], "required");
        assert_eq!(g["error"]["errors"][0]["location"], "start.dateTime");
        assert_eq!(g["error"]["errors"][0]["locationType"], "parameter");
        assert_eq!(g["error"]["status"], "INVALID_ARGUMENT");
    }

    #[test]
    fn a_rate_limit_is_resource_exhausted() {
        let native = json!({"error": {"code": "rate_limit_exceeded", "message": "slow down"}});
        let g = rewrite(StatusCode::TOO_MANY_REQUESTS, &native)
            .unwrap()
            .body();
        assert_eq!(g["error"]["errors"][0]["reason"], "rateLimitExceeded");
        assert_eq!(g["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(g["error"]["status"], "RESOURCE_EXHAUSTED");
    }
}
