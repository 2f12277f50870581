//! `ApiError`: the one error envelope and its stable codes. Every failure on every route, including
//! the ones poem and poem-openapi raise before a handler runs (unknown route, wrong method,
//! unparseable parameters, bad bodies, missing credentials), leaves through `ApiError` so that no
//! response body is ever plain text. A 500 returns only its code; the cause is logged with the
//! request id and never reaches the caller.
//!
//! What a `poem::Error` raised outside the handlers becomes is decided in one place,
//! `dialects::native::errors` (the native dialect's mapper); which errors each operation declares
//! in the spec is decided there too. This module imports only the request context, never a layer.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::types::ToJSON;
use poem_openapi::{Enum, Object};
use sea_orm::DbErr;
use uuid::Uuid;

use crate::context;

/// Stable, machine-readable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    ValidationError,
    Unauthorized,
    Forbidden,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    SlotUnavailable,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyInProgress,
    IdempotencyConflict,
    RateLimitExceeded,
    RequestTimeout,
    HeadersTooLarge,
    ServiceUnavailable,
    /// A capability of another API that Quando does not offer (a dialect's external providers).
    NotSupported,
    InternalError,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::SlotUnavailable | ErrorCode::IdempotencyInProgress => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::IdempotencyConflict => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RequestTimeout | ErrorCode::ServiceUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::NotSupported => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One invalid field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct FieldError {
    /// The field or query parameter, as the request spelled it (`startTime`, `limit`).
    pub field: String,
    /// What is wrong with it, in a sentence.
    pub message: String,
}

/// Machine-readable details of an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ErrorDetails {
    /// With `validation_error`: every invalid field.
    pub fields: Option<Vec<FieldError>>,
    /// With `slot_unavailable`: why the time cannot be booked: `conflict`, `outside_working_hours`,
    /// `closed_override`, `before_minimum_notice` or `beyond_max_advance`.
    #[oai(nullable)]
    pub reason: Option<String>,
    /// With `slot_unavailable` and reason `conflict`: the event already holding the time.
    #[oai(nullable)]
    pub conflicting_event_id: Option<Uuid>,
    /// With `slot_unavailable`: the next free slots after the requested time (up to 3).
    #[oai(nullable)]
    pub next_slots: Option<Vec<crate::schema::SlotOut>>,
}

/// The error itself.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable error code; branch on this, not on the message.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// Field errors or conflict details; `null` when there are none.
    #[oai(nullable)]
    pub details: Option<ErrorDetails>,
}

/// The envelope of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
    /// The request id, also in the `X-Request-Id` header; quote it when asking for support.
    pub request_id: String,
}

/// A failure on its way to becoming an error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Boxed: errors travel in every `Result` of the request path; keep them small.
    pub details: Option<Box<ErrorDetails>>,
    /// Seconds, for `Retry-After` on 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// A validation error naming each invalid field.
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = match fields.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => format!("invalid fields: {}", names.join(", ")),
        };
        ApiError {
            details: Some(Box::new(ErrorDetails {
                fields: Some(fields),
                ..ErrorDetails::default()
            })),
            ..Self::new(ErrorCode::ValidationError, message)
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A 409 `slot_unavailable`: why, which event is in the way (for `conflict`), and what is free next.
    pub fn slot_unavailable(
        reason: crate::domain::slots::Reason,
        conflicting: Option<Uuid>,
        next_slots: Vec<crate::schema::SlotOut>,
    ) -> Self {
        use crate::domain::slots::Reason;
        let message = match reason {
            Reason::Conflict => "the time overlaps another booking or a held slot on this calendar",
            Reason::OutsideWorkingHours => "the time is outside the calendar's working hours",
            Reason::ClosedOverride => "the calendar is closed on that date",
            Reason::BeforeMinimumNotice => {
                "the time is too soon: it is in the past or inside the event type's minimum notice"
            }
            Reason::BeyondMaxAdvance => {
                "the time is too far ahead for the event type's maximum advance"
            }
            Reason::FullyBooked => "no free time",
        };
        ApiError {
            details: Some(Box::new(ErrorDetails {
                reason: Some(reason.as_str().into()),
                conflicting_event_id: conflicting,
                next_slots: Some(next_slots),
                ..ErrorDetails::default()
            })),
            ..Self::new(ErrorCode::SlotUnavailable, message)
        }
    }

    /// A 500. The cause is logged here, with the request id, and never sent to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %context::request_id(), error = %cause, "internal error");
        Self::new(
            ErrorCode::InternalError,
            "internal error; quote the request id to support",
        )
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                details: self.details.as_deref().cloned(),
            },
            request_id: context::request_id(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

use crate::domain::violations::Invalid;
pub use crate::domain::violations::Violations;

/// Every problem of a request that could not be parsed: `validation_error` naming each field.
impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::fields(
            invalid
                .0
                .into_iter()
                .map(|v| FieldError {
                    field: v.field,
                    message: v.message,
                })
                .collect(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.envelope().to_json_string();
        let mut resp = Response::builder()
            .status(self.code.status())
            .content_type("application/json; charset=utf-8")
            .body(body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.code.status()
    }

    fn as_response(&self) -> Response {
        self.clone().into_response()
    }
}

/// Maps storage failures. Trouble that passes (a lock held past the busy timeout, a lost or
/// refused connection, a full disk, a read-only file) is 503 `service_unavailable` with
/// `Retry-After`, so a client can tell "retry" from "bug"; a write that lost its idempotency
/// claim to a retry is 409 `idempotency_in_progress`; anything else is a 500 whose cause is logged.
impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        crate::db::note_failure(&err);
        if crate::repo::idempotency::is_claim_lost(&err) {
            return ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a retry with this Idempotency-Key took over this request; nothing was stored by this one",
            );
        }
        if crate::db::is_transient(&err) {
            crate::db::note_trouble();
            tracing::warn!(request_id = %context::request_id(), error = %err, "storage unavailable");
            return ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "the database is briefly unavailable; retry shortly (with the same Idempotency-Key a retry never applies a write twice)",
                )
            };
        }
        ApiError::internal(err)
    }
}

/// Failures of the administrative functions behind the CLI (`quando org create`, ...).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
}
