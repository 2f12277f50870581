//! The native (Replicer) dialect under `/v1`: one file per resource with its DTOs, its
//! per-operation response enums and its `#[OpenApi]` impl.

pub mod availability;
pub mod calendars;
pub mod errors;
pub mod event_types;
pub mod events;
pub mod feeds;
pub mod holds;
pub mod service;
pub mod webhooks;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Appointments: list, book, read.
    Events,
    /// Bookable resources: a person, a room, a phone agent.
    Calendars,
    /// What can be booked: duration, buffers, notice.
    #[oai(rename = "Event types")]
    EventTypes,
    /// Free slots to offer and book.
    Availability,
    /// Webhook endpoints and their delivery log.
    Webhooks,
    /// Health and readiness.
    Service,
}

/// Trims an optional free-text field; an empty string means "no value".
pub fn optional_text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A PATCH field: absent -> no change (`None`); `null` -> clear (`Some(None)`); a value -> set.
pub fn maybe<T>(value: poem_openapi::types::MaybeUndefined<T>) -> Option<Option<T>> {
    use poem_openapi::types::MaybeUndefined;
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// The `timezone` a request names, parsed; an invalid one is recorded as a field error. Local
/// times are read only in a zone the request names: without one they are refused, never read
/// as UTC.
pub fn request_zone(
    v: &mut crate::error::Violations,
    name: Option<&str>,
) -> Option<crate::domain::time::Zone> {
    name.and_then(|z| v.check("timezone", crate::domain::time::Zone::parse(z)))
}

/// Holds a publishable key to its binding: an event type it is not bound to is not found, as
/// another organization's would be. A secret key passes.
pub fn check_bound(
    tenant: &crate::auth::Tenant,
    event_type: crate::domain::ids::EventTypeId,
) -> Result<(), crate::service::ServiceError> {
    match tenant.binding() {
        Some(binding) if !binding.allows(event_type) => Err(
            crate::service::ServiceError::NotFound(crate::service::Resource::EventType),
        ),
        _ => Ok(()),
    }
}

/// A core error as a publishable key may see it: a refusal never names the booking in the way
/// (another customer's).
pub fn for_caller(
    tenant: &crate::auth::Tenant,
    err: crate::service::ServiceError,
) -> crate::service::ServiceError {
    match err {
        crate::service::ServiceError::Refused(mut refusal) if tenant.publishable.is_some() => {
            refusal.conflicting = None;
            crate::service::ServiceError::Refused(refusal)
        }
        err => err,
    }
}

/// The native envelope of every core error: 404 `not_found`, 400 `validation_error` naming each
/// field, 409 `slot_unavailable` with the reason, the event in the way and the next free slots,
/// 409 `idempotency_in_progress`, and storage trouble as 503 (or 500 for a bug).
impl From<crate::service::ServiceError> for crate::error::ApiError {
    fn from(err: crate::service::ServiceError) -> Self {
        use crate::error::ApiError;
        use crate::service::ServiceError;
        match err {
            ServiceError::NotFound(resource) => ApiError::not_found(resource.name()),
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::Refused(refusal) => {
                let next = refusal
                    .next_slots
                    .into_iter()
                    .filter_map(|s| crate::schema::SlotOut::new(s, refusal.zone))
                    .collect();
                ApiError::slot_unavailable(refusal.reason, refusal.conflicting, next)
            }
            ServiceError::IdempotencyInProgress => ApiError::new(
                crate::error::ErrorCode::IdempotencyInProgress,
                "a retry with this Idempotency-Key took over this request; nothing was stored by this one",
            ),
            // Only a conditional write (Google's If-Match) can be stale; the native API makes none.
            ServiceError::Stale => ApiError::field(
                "If-Match",
                "the event changed since the version this request named",
            ),
            ServiceError::Storage(err) => err.into(),
        }
    }
}
