//! The Talkover dialect under `/api/v1`: Talkover's calendar API (paths, snake_case fields,
//! `{"success": true, "data": ...}` answers, upper-snake error codes) mapped onto Quando's one
//! store and one set of rules. An event made here is listed, read, moved and cancelled through
//! the native API and the other way round. Thin mappers over `crate::service`; the one error
//! mapper of the dialect is `errors::layer`.

pub mod availability;
pub mod calendars;
pub mod errors;
pub mod events;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use errors::TFail;

use crate::auth::{ReadAuth, WriteAuth};
use crate::dialects::native::errors::AUTHENTICATED;
use crate::dialects::native::errors::code::NOT_FOUND;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Tags)]
pub enum TalkoverTags {
    /// Talkover's calendar API under `/api/v1`, on the same store and rules as the native API.
    Talkover,
}

/// `GET /api/v1/health`.
#[derive(Object)]
#[oai(rename = "TalkoverHealthData")]
pub struct THealth {
    /// `ok` while the process is up.
    pub status: String,
}

/// The health answer.
#[derive(Object)]
#[oai(rename = "TalkoverHealth")]
pub struct THealthEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The status.
    pub data: THealth,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(Json<THealthEnvelope>),
}

/// The answer of an operation Quando does not offer: always the 501 error.
#[derive(ApiResponse)]
pub enum Unsupported {
    /// `NOT_SUPPORTED`: external calendar providers are not offered.
    #[oai(status = 501)]
    NotSupported(Json<errors::TErrorEnvelope>),
}

const PROVIDERS_UNSUPPORTED: &str = "external calendar providers (OAuth to Google or Microsoft) are \
not supported by Quando: it keeps the calendar itself; use the Google Calendar v3 dialect or the \
native API to sync";

pub struct TalkoverApi;

#[OpenApi(prefix_path = "/api/v1", tag = "TalkoverTags::Talkover")]
impl TalkoverApi {
    /// Health (Talkover)
    ///
    /// `{"success": true, "data": {"status": "ok"}}` while the process is up. No authentication.
    #[oai(path = "/health", method = "get", operation_id = "talkoverHealth")]
    async fn health(&self) -> HealthResponse {
        HealthResponse::Ok(Json(THealthEnvelope {
            success: true,
            data: THealth {
                status: "ok".into(),
            },
        }))
    }

    /// Connect an external calendar provider (Talkover; not supported)
    ///
    /// Talkover connects a calendar to Google or Microsoft through OAuth; Quando keeps the
    /// calendar itself and reaches no outside service, so this answers 501 `NOT_SUPPORTED` in
    /// the Talkover envelope (after the key and the calendar are checked). Scope:
    /// `calendar:write`.
    #[oai(
        path = "/calendars/:calendar_id/providers",
        method = "post",
        operation_id = "talkoverCreateProviderConnection"
    )]
    async fn create_provider(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
    ) -> Result<Unsupported, TFail<{ AUTHENTICATED | NOT_FOUND }>> {
        providers_unsupported(&state, auth.0.org_id, calendar_id.0).await
    }

    /// List external calendar provider connections (Talkover; not supported)
    ///
    /// Answers 501 `NOT_SUPPORTED`, like connecting one. Scope: `calendar:read`.
    #[oai(
        path = "/calendars/:calendar_id/providers",
        method = "get",
        operation_id = "talkoverListProviderConnections"
    )]
    async fn list_providers(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
    ) -> Result<Unsupported, TFail<{ AUTHENTICATED | NOT_FOUND }>> {
        providers_unsupported(&state, auth.0.org_id, calendar_id.0).await
    }
}

async fn providers_unsupported<const SET: u32>(
    state: &AppState,
    org: crate::domain::ids::OrgId,
    calendar: Uuid,
) -> Result<Unsupported, TFail<SET>> {
    // Another organization's calendar is not found, exactly like a missing one.
    state
        .service
        .calendar(org, crate::domain::ids::CalendarId(calendar))
        .await?;
    Err(ApiError::new(ErrorCode::NotSupported, PROVIDERS_UNSUPPORTED).into())
}
