//! `/v1/calendar/calendars`: bookable resources of the caller's organization.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, maybe, optional_text};
use crate::auth::{Scope, TenantAuth};
use crate::domain::ids::CalendarId;
use crate::domain::time::Zone;
use crate::error::{ApiError, Violations};
use crate::middleware::request_id;
use crate::pagination::{PageRequest, Pagination};
use crate::payload::JsonBody;
use crate::repo::calendars::{self as repo, CalendarChanges, NewCalendar};
use crate::schema::Timestamp;
use crate::state::AppState;

/// A new calendar.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CalendarIn {
    /// Display name, e.g. "Dr. Rossi" or "Room 2".
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// IANA time zone of the resource (default `UTC`), e.g. `Europe/Rome`.
    #[oai(validator(max_length = 64))]
    pub timezone: Option<String>,
    /// Free text shown to staff.
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
}

impl Example for CalendarIn {
    fn example() -> Self {
        CalendarIn {
            name: "Studio Rossi".into(),
            timezone: Some("Europe/Rome".into()),
            description: Some("Consulenze in sede e su Zoom".into()),
        }
    }
}

/// Changes to a calendar; absent fields stay as they are, `description: null` clears it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CalendarPatch {
    #[oai(validator(min_length = 1, max_length = 200))]
    /// Display name.
    pub name: Option<String>,
    /// IANA time zone.
    #[oai(validator(max_length = 64))]
    pub timezone: Option<String>,
    #[oai(validator(max_length = 2000))]
    /// Free text; `null` clears it.
    pub description: MaybeUndefined<String>,
}

/// A calendar: a bookable resource.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CalendarOut {
    /// Calendar id (UUID v7).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// IANA time zone of the resource.
    pub timezone: String,
    /// Free text shown to staff.
    pub description: Option<String>,
    /// When it was created (UTC).
    pub created_at: Timestamp,
    /// When it last changed (UTC).
    pub updated_at: Timestamp,
}

impl From<entity::calendars::Model> for CalendarOut {
    fn from(m: entity::calendars::Model) -> Self {
        CalendarOut {
            id: m.id,
            name: m.name,
            timezone: m.timezone,
            description: m.description,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// One calendar.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CalendarEnvelope {
    /// The calendar.
    pub data: CalendarOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// A page of calendars.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CalendarList {
    /// This page of calendars.
    pub data: Vec<CalendarOut>,
    /// Where this page sits in the whole result.
    pub pagination: Pagination,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn envelope(m: entity::calendars::Model) -> Json<CalendarEnvelope> {
    Json(CalendarEnvelope {
        data: m.into(),
        request_id: request_id::current(),
    })
}

#[derive(ApiResponse)]
pub enum ListCalendarsResponse {
    /// A page of the organization's calendars, oldest first.
    #[oai(status = 200)]
    Ok(Json<CalendarList>),
}

#[derive(ApiResponse)]
pub enum CreateCalendarResponse {
    /// The calendar was created.
    #[oai(status = 201)]
    Created(Json<CalendarEnvelope>),
}

#[derive(ApiResponse)]
pub enum CalendarResponse {
    /// The calendar.
    #[oai(status = 200)]
    Ok(Json<CalendarEnvelope>),
}

fn zone(v: &mut Violations, value: Option<&str>) -> Option<Zone> {
    value.and_then(|z| v.check("timezone", Zone::parse(z)))
}

pub struct CalendarsApi;

#[OpenApi(prefix_path = "/v1/calendar/calendars", tag = "ApiTags::Calendars")]
impl CalendarsApi {
    /// List calendars
    ///
    /// A page of the organization's calendars, oldest first. Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "listCalendars")]
    async fn list(
        &self,
        auth: TenantAuth,
        state: Data<&AppState>,
        /// Page number, from 1.
        #[oai(
            default = "crate::pagination::default_page",
            validator(minimum(value = "1"))
        )]
        page: Query<u64>,
        /// Items per page, 1 to 100.
        #[oai(
            default = "crate::pagination::default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u64>,
    ) -> Result<ListCalendarsResponse, ApiError> {
        auth.0.require(Scope::CalendarRead)?;
        let req = PageRequest::new(Some(page.0), Some(limit.0));
        let (items, total) = repo::list(&state.db, auth.0.org_id, req).await?;
        Ok(ListCalendarsResponse::Ok(Json(CalendarList {
            data: items.into_iter().map(Into::into).collect(),
            pagination: Pagination::new(req, total),
            request_id: request_id::current(),
        })))
    }

    /// Create a calendar
    ///
    /// Scope: `calendar:write`.
    #[oai(path = "/", method = "post", operation_id = "createCalendar")]
    async fn create(
        &self,
        auth: TenantAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<CalendarIn>,
    ) -> Result<CreateCalendarResponse, ApiError> {
        auth.0.require(Scope::CalendarWrite)?;
        let body = body.0;
        let mut v = Violations::default();
        let name = body.name.trim().to_string();
        if name.is_empty() {
            v.add("name", "must not be blank");
        }
        let timezone = zone(&mut v, Some(body.timezone.as_deref().unwrap_or("UTC")));
        v.into_result()?;
        let new = NewCalendar {
            name,
            timezone: timezone.unwrap_or(Zone::UTC),
            description: optional_text(body.description),
        };
        let model = repo::create(&state.db, auth.0.org_id, new).await?;
        Ok(CreateCalendarResponse::Created(envelope(model)))
    }

    /// Get a calendar
    ///
    /// Scope: `calendar:read`.
    #[oai(path = "/:id", method = "get", operation_id = "getCalendar")]
    async fn get(
        &self,
        auth: TenantAuth,
        state: Data<&AppState>,
        /// Calendar id.
        id: Path<Uuid>,
    ) -> Result<CalendarResponse, ApiError> {
        auth.0.require(Scope::CalendarRead)?;
        let model = repo::get(&state.db, auth.0.org_id, CalendarId(id.0))
            .await?
            .ok_or_else(|| ApiError::not_found("calendar"))?;
        Ok(CalendarResponse::Ok(envelope(model)))
    }

    /// Update a calendar
    ///
    /// Changes only the fields present in the body. Scope: `calendar:write`.
    #[oai(path = "/:id", method = "patch", operation_id = "updateCalendar")]
    async fn update(
        &self,
        auth: TenantAuth,
        state: Data<&AppState>,
        /// Calendar id.
        id: Path<Uuid>,
        body: JsonBody<CalendarPatch>,
    ) -> Result<CalendarResponse, ApiError> {
        auth.0.require(Scope::CalendarWrite)?;
        let body = body.0;
        let mut v = Violations::default();
        let name = body.name.map(|n| n.trim().to_string());
        if name.as_deref() == Some("") {
            v.add("name", "must not be blank");
        }
        let timezone = zone(&mut v, body.timezone.as_deref());
        v.into_result()?;
        let changes = CalendarChanges {
            name,
            timezone,
            description: maybe(body.description).map(optional_text),
        };
        let model = repo::update(&state.db, auth.0.org_id, CalendarId(id.0), changes)
            .await?
            .ok_or_else(|| ApiError::not_found("calendar"))?;
        Ok(CalendarResponse::Ok(envelope(model)))
    }
}
