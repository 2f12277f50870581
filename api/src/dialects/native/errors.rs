//! The errors of the native dialect as the spec declares them, per operation.
//!
//! Each operation returns `Result<XResponse, Fail<SET>>`: `Fail` is an `ApiError` whose type
//! names the set of errors the operation can produce, and its `ApiResponse::meta()` declares only
//! those statuses (with the envelope schema), so a `GET /v1/calendar/calendars/{id}` does not
//! advertise 409 `slot_unavailable` or 415. Handlers keep using `?`: anything that becomes an
//! `ApiError` becomes a `Fail` of any set. The sets are built from what really arises:
//!
//! - every authenticated operation: 401 (no or unknown key), 403 (revoked key, missing scope),
//!   429 (the key's budget), 500, 503 (`service_unavailable`, `request_timeout`);
//! - query or path parameters that do not parse: 400 `validation_error`;
//! - a JSON body: 400, 413, 415;
//! - a POST with `Idempotency-Key`: 409 `idempotency_in_progress`, 422 `idempotency_conflict`;
//! - a resource named by id (in the path or the body): 404;
//! - a booking write: 409 `slot_unavailable`.
//!
//! 405 and 431 are answered before any operation is chosen (a method a path does not take,
//! oversized headers) and are described in the API's description instead. The health endpoints
//! declare none of these.
//!
//! It is also the one place where a `poem::Error` (an unknown route, a wrong method, a parameter
//! or body poem-openapi could not parse, a missing credential, or an `ApiError` a handler or a
//! layer raised) becomes the native envelope: `error_response`, used by the request-id, tenant
//! and idempotency layers. Another dialect maps the same errors to its own shape in its own
//! folder.
//!
//! This module never decides the status of an `ApiError`: `ErrorCode::status` does.

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, OperationId};

use crate::error::{ApiError, ErrorCode, ErrorEnvelope};

/// One bit per family of error codes an operation can declare.
pub mod code {
    /// 400 `bad_request` / `validation_error`.
    pub const BAD_REQUEST: u32 = 1 << 0;
    /// 401 `unauthorized`.
    pub const UNAUTHORIZED: u32 = 1 << 1;
    /// 403 `forbidden` / `insufficient_scope`.
    pub const FORBIDDEN: u32 = 1 << 2;
    /// 404 `not_found`.
    pub const NOT_FOUND: u32 = 1 << 3;
    /// 409 `slot_unavailable`.
    pub const SLOT_UNAVAILABLE: u32 = 1 << 4;
    /// 409 `idempotency_in_progress`.
    pub const IDEMPOTENCY_IN_PROGRESS: u32 = 1 << 5;
    /// 413 `payload_too_large`.
    pub const PAYLOAD_TOO_LARGE: u32 = 1 << 6;
    /// 415 `unsupported_media_type`.
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 1 << 7;
    /// 422 `idempotency_conflict`.
    pub const IDEMPOTENCY_CONFLICT: u32 = 1 << 8;
    /// 429 `rate_limit_exceeded`.
    pub const RATE_LIMITED: u32 = 1 << 9;
    /// 500 `internal_error`.
    pub const INTERNAL: u32 = 1 << 10;
    /// 503 `service_unavailable` / `request_timeout`.
    pub const UNAVAILABLE: u32 = 1 << 11;
}

use code::*;

/// What any operation behind the API key can answer.
pub const AUTHENTICATED: u32 = UNAUTHORIZED | FORBIDDEN | RATE_LIMITED | INTERNAL | UNAVAILABLE;
/// Query or path parameters that may not parse.
pub const PARAMETERS: u32 = BAD_REQUEST;
/// A JSON request body.
pub const JSON_BODY: u32 = BAD_REQUEST | PAYLOAD_TOO_LARGE | UNSUPPORTED_MEDIA_TYPE;
/// A POST that takes `Idempotency-Key`.
pub const IDEMPOTENT: u32 = IDEMPOTENCY_IN_PROGRESS | IDEMPOTENCY_CONFLICT;

/// `GET` of a list.
pub const LIST: u32 = AUTHENTICATED | PARAMETERS;
/// `GET` of one resource by id.
pub const READ: u32 = AUTHENTICATED | PARAMETERS | NOT_FOUND;
/// `GET /availability`: names a calendar and an event type.
pub const AVAILABILITY: u32 = AUTHENTICATED | PARAMETERS | NOT_FOUND;
/// `POST` of a calendar.
pub const CREATE: u32 = AUTHENTICATED | JSON_BODY | IDEMPOTENT;
/// `POST` of a resource that names another one (an event type's calendar).
pub const CREATE_REFERRING: u32 = CREATE | NOT_FOUND;
/// `PATCH` of a calendar or an event type.
pub const UPDATE: u32 = AUTHENTICATED | JSON_BODY | NOT_FOUND;
/// `POST /events`: a booking.
pub const CREATE_EVENT: u32 = CREATE | NOT_FOUND | SLOT_UNAVAILABLE;
/// `PATCH /events/{id}`: new times are held to every booking rule.
pub const UPDATE_EVENT: u32 = UPDATE | SLOT_UNAVAILABLE;
/// A `POST` without a body on a resource named in the path (rotate a secret, ping, retry).
pub const ACTION: u32 = AUTHENTICATED | PARAMETERS | NOT_FOUND | IDEMPOTENT;
/// `POST /events/{id}/cancel`.
pub const CANCEL_EVENT: u32 = CREATE | NOT_FOUND;

/// An `ApiError` of an operation that declares the errors in `SET` (bits of [`code`]).
#[derive(Debug)]
pub struct Fail<const SET: u32>(pub ApiError);

/// `?` on anything that becomes an `ApiError`. (`Fail` itself never becomes an `ApiError`
/// implicitly, which is what lets this blanket impl exist.)
impl<const SET: u32, E: Into<ApiError>> From<E> for Fail<SET> {
    fn from(err: E) -> Self {
        Fail(err.into())
    }
}

/// The response is the `ApiError`'s own: the error mapper finds it by `downcast_ref::<ApiError>()`.
impl<const SET: u32> From<Fail<SET>> for poem::Error {
    fn from(fail: Fail<SET>) -> Self {
        fail.0.into()
    }
}

impl<const SET: u32> ApiResponse for Fail<SET> {
    fn meta() -> MetaResponses {
        declared(SET)
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}

const SLOT_409: &str = "`slot_unavailable`: the time cannot be booked; `details.reason` says why (`conflict` with `details.conflictingEventId`, `outside_working_hours`, `closed_override`, `before_minimum_notice`, `beyond_max_advance`) and `details.nextSlots` offers the next free slots.";
const IN_PROGRESS_409: &str = "`idempotency_in_progress`: the first request with this Idempotency-Key is still running after 10 s.";
const BOTH_409: &str = "`slot_unavailable`: the time cannot be booked; `details.reason` says why (`conflict` with `details.conflictingEventId`, `outside_working_hours`, `closed_override`, `before_minimum_notice`, `beyond_max_advance`) and `details.nextSlots` offers the next free slots; or `idempotency_in_progress`: the first request with this Idempotency-Key is still running after 10 s.";

/// The statuses of `set`, each with what it means, in status order.
pub fn statuses(set: u32) -> Vec<(u16, &'static str)> {
    let has = |bit: u32| set & bit != 0;
    let conflict = match (has(SLOT_UNAVAILABLE), has(IDEMPOTENCY_IN_PROGRESS)) {
        (true, true) => Some(BOTH_409),
        (true, false) => Some(SLOT_409),
        (false, true) => Some(IN_PROGRESS_409),
        (false, false) => None,
    };
    let body_400 = if has(PAYLOAD_TOO_LARGE) {
        "`bad_request` (malformed JSON or query string) or `validation_error` (`details.fields` names each invalid field)."
    } else {
        "`validation_error`: a query or path parameter is invalid; `details.fields` names each one."
    };
    [
        (400, has(BAD_REQUEST).then_some(body_400)),
        (
            401,
            has(UNAUTHORIZED).then_some("`unauthorized`: missing, malformed or unknown API key."),
        ),
        (
            403,
            has(FORBIDDEN).then_some("`forbidden` (key revoked or expired) or `insufficient_scope` (the message names the missing scope)."),
        ),
        (
            404,
            has(NOT_FOUND).then_some("`not_found`: no such resource in your organization."),
        ),
        (409, conflict),
        (
            413,
            has(PAYLOAD_TOO_LARGE).then_some("`payload_too_large`: the body is over 64 KiB."),
        ),
        (
            415,
            has(UNSUPPORTED_MEDIA_TYPE)
                .then_some("`unsupported_media_type`: the body is not `application/json`."),
        ),
        (
            422,
            has(IDEMPOTENCY_CONFLICT).then_some(
                "`idempotency_conflict`: this Idempotency-Key was used with a different request.",
            ),
        ),
        (
            429,
            has(RATE_LIMITED).then_some(
                "`rate_limit_exceeded`: too many requests for this key; see `Retry-After`.",
            ),
        ),
        (
            500,
            has(INTERNAL).then_some(
                "`internal_error`: logged with the request id; nothing else is revealed.",
            ),
        ),
        (
            503,
            has(UNAVAILABLE).then_some("`service_unavailable`: the database is briefly unable to serve (locked past the busy timeout, a lost connection, a full disk); retry after `Retry-After` seconds, with the same `Idempotency-Key` so that a write whose answer was lost is never applied twice. Or `request_timeout`: the request ran longer than the server's limit (30 s by default) and was abandoned."),
        ),
    ]
    .into_iter()
    .filter_map(|(status, description)| description.map(|d| (status, d)))
    .collect()
}

fn declared(set: u32) -> MetaResponses {
    MetaResponses {
        responses: statuses(set)
            .into_iter()
            .map(|(status, description)| MetaResponse {
                description,
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: ErrorEnvelope::schema_ref(),
                }],
                headers: vec![],
            })
            .collect(),
    }
}

/// Every error poem or poem-openapi can raise, in the envelope. The operation the error came
/// from stays attached, so metrics and logs keep its route.
pub fn error_response(err: poem::Error) -> Response {
    let operation = err.data::<OperationId>().copied();
    let mut resp = envelope_of(err);
    if let Some(op) = operation {
        resp.set_data(op);
    }
    resp
}

fn envelope_of(err: poem::Error) -> Response {
    let api = if let Some(api) = err.downcast_ref::<ApiError>() {
        api.clone()
    } else if err.is::<NotFoundError>() || err.is::<ParsePathError>() {
        // A malformed id in the path names nothing that could exist.
        ApiError::new(ErrorCode::NotFound, "no such resource or route")
    } else if err.is::<MethodNotAllowedError>() {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method",
        )
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::field(e.name, param_message(&e.reason))
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::bad_request(format!("the request body could not be read: {}", e.reason))
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("{e}; send Content-Type: application/json"),
        )
    } else if err.is::<AuthorizationError>() {
        ApiError::unauthorized(
            "missing or malformed API key; send Authorization: Bearer qnd_live_...",
        )
    } else {
        match err.status() {
            StatusCode::BAD_REQUEST => ApiError::bad_request(err.to_string()),
            StatusCode::UNAUTHORIZED => ApiError::unauthorized(err.to_string()),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is over 64 KiB",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::new(ErrorCode::UnsupportedMediaType, err.to_string())
            }
            StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "not found"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::new(ErrorCode::MethodNotAllowed, err.to_string())
            }
            _ => ApiError::internal(err),
        }
    };
    api.into_response()
}

/// poem-openapi's parameter reasons, made to read as advice.
fn param_message(reason: &str) -> String {
    let reason = reason
        .split(" (occurred while parsing")
        .next()
        .unwrap_or(reason);
    if let Some(rest) = reason.strip_prefix("verification failed. ") {
        for (prefix, word) in [("maximum(", "at most"), ("minimum(", "at least")] {
            if let Some(bound) = rest.strip_prefix(prefix) {
                let n = bound.split(',').next().unwrap_or(bound);
                return format!("must be {word} {n}");
            }
        }
    }
    if let Some(rest) = reason.strip_prefix("failed to parse \"") {
        let (ty, detail) = rest.split_once("\": ").unwrap_or((rest, ""));
        return match ty {
            "string_uuid" => "must be a UUID".to_string(),
            "string_date-time" => detail.to_string(),
            t if t.starts_with("integer") => "must be a whole number".to_string(),
            "EventStatus" => "must be one of: confirmed, tentative, cancelled".to_string(),
            _ => format!("is not a valid value: {detail}"),
        };
    }
    crate::payload::in_our_words(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared_statuses(set: u32) -> Vec<u16> {
        statuses(set).into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn a_read_by_id_declares_no_conflict_and_no_body_errors() {
        assert_eq!(declared_statuses(READ), [400, 401, 403, 404, 429, 500, 503]);
    }

    #[test]
    fn a_booking_declares_conflicts_body_errors_and_idempotency() {
        assert_eq!(
            declared_statuses(CREATE_EVENT),
            [400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503]
        );
        assert!(statuses(CREATE_EVENT).contains(&(409, BOTH_409)));
        assert!(statuses(UPDATE_EVENT).contains(&(409, SLOT_409)));
        assert!(statuses(CREATE).contains(&(409, IN_PROGRESS_409)));
    }

    #[test]
    fn a_fail_keeps_the_status_of_its_api_error() {
        let fail: Fail<READ> = ApiError::not_found("calendar").into();
        let err: poem::Error = fail.into();
        assert_eq!(err.status(), ErrorCode::NotFound.status());
        assert!(err.downcast_ref::<ApiError>().is_some());
    }

    #[test]
    fn parameter_reasons_read_as_advice() {
        assert_eq!(
            param_message("verification failed. maximum(100, exclusive: false)"),
            "must be at most 100"
        );
        assert_eq!(
            param_message(
                "failed to parse \"string_uuid\": invalid character (occurred while parsing \"optional_string_uuid\")"
            ),
            "must be a UUID"
        );
        assert_eq!(
            param_message("failed to parse \"integer(uint64)\": invalid digit"),
            "must be a whole number"
        );
    }
}
