//! `/v1/calendar/calendars`: bookable resources of the caller's organization.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::errors::{CREATE, Fail, LIST, READ, UPDATE};
use super::{ApiTags, maybe, optional_text, request_zone};
use crate::auth::{ReadAuth, WriteAuth};
use crate::domain::details::parse_metadata;
use crate::domain::ids::CalendarId;
use crate::domain::schedule::{OverrideDoc, RangeDoc, Schedule, WeeklyRangeDoc};
use crate::domain::time::Zone;
use crate::error::Violations;
use crate::middleware::request_id;
use crate::pagination::{PageRequest, Pagination};
use crate::payload::JsonBody;
use crate::repo::calendars::{self as repo, CalendarChanges, NewCalendar};
use crate::schema::{LocalDate, Timestamp};
use crate::state::AppState;

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// A weekly working range in the calendar's zone. An overnight shift is two ranges.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
pub struct WorkingRange {
    /// Day of the week.
    pub day: DayOfWeek,
    /// Local start, `HH:MM`.
    #[oai(validator(min_length = 5, max_length = 5))]
    pub start: String,
    /// Local end, `HH:MM`, after `start`; `24:00` is the end of the day.
    #[oai(validator(min_length = 5, max_length = 5))]
    pub end: String,
}

/// A local time range within one day.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
pub struct TimeRange {
    /// Local start, `HH:MM`.
    #[oai(validator(min_length = 5, max_length = 5))]
    pub start: String,
    /// Local end, `HH:MM`, after `start`; `24:00` is the end of the day.
    #[oai(validator(min_length = 5, max_length = 5))]
    pub end: String,
}

/// The working time of one date, replacing its weekday's hours; no ranges = closed that day.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
pub struct DateOverride {
    /// The local date, `YYYY-MM-DD`.
    pub date: LocalDate,
    /// Its working ranges; empty = closed.
    #[oai(validator(max_items = 12))]
    pub ranges: Vec<TimeRange>,
}

fn day_name(d: DayOfWeek) -> &'static str {
    match d {
        DayOfWeek::Monday => "monday",
        DayOfWeek::Tuesday => "tuesday",
        DayOfWeek::Wednesday => "wednesday",
        DayOfWeek::Thursday => "thursday",
        DayOfWeek::Friday => "friday",
        DayOfWeek::Saturday => "saturday",
        DayOfWeek::Sunday => "sunday",
    }
}

fn weekly_docs(ranges: &[WorkingRange]) -> Vec<WeeklyRangeDoc> {
    ranges
        .iter()
        .map(|r| WeeklyRangeDoc {
            day: day_name(r.day).to_string(),
            start: r.start.clone(),
            end: r.end.clone(),
        })
        .collect()
}

fn override_docs(overrides: &[DateOverride]) -> Vec<OverrideDoc> {
    overrides
        .iter()
        .map(|o| OverrideDoc {
            date: o.date.0.format("%Y-%m-%d").to_string(),
            ranges: o
                .ranges
                .iter()
                .map(|r| RangeDoc {
                    start: r.start.clone(),
                    end: r.end.clone(),
                })
                .collect(),
        })
        .collect()
}

fn working_ranges(docs: Vec<WeeklyRangeDoc>) -> Vec<WorkingRange> {
    docs.into_iter()
        .filter_map(|d| {
            let day = match d.day.as_str() {
                "monday" => DayOfWeek::Monday,
                "tuesday" => DayOfWeek::Tuesday,
                "wednesday" => DayOfWeek::Wednesday,
                "thursday" => DayOfWeek::Thursday,
                "friday" => DayOfWeek::Friday,
                "saturday" => DayOfWeek::Saturday,
                "sunday" => DayOfWeek::Sunday,
                _ => return None,
            };
            Some(WorkingRange {
                day,
                start: d.start,
                end: d.end,
            })
        })
        .collect()
}

fn date_overrides(docs: Vec<OverrideDoc>) -> Vec<DateOverride> {
    docs.into_iter()
        .filter_map(|o| {
            Some(DateOverride {
                date: LocalDate(chrono::NaiveDate::parse_from_str(&o.date, "%Y-%m-%d").ok()?),
                ranges: o
                    .ranges
                    .into_iter()
                    .map(|r| TimeRange {
                        start: r.start,
                        end: r.end,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Checks hours and overrides together in the calendar's zone; problems name their field.
fn check_schedule(
    v: &mut Violations,
    zone: Zone,
    weekly: Option<&[WeeklyRangeDoc]>,
    overrides: &[OverrideDoc],
) {
    if let Err((field, message)) = Schedule::from_new_docs(zone, weekly, overrides) {
        v.add(&field, message);
    }
}

/// A new calendar.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CalendarIn {
    /// Display name, e.g. "Dr. Rossi" or "Room 2".
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// IANA time zone of the resource (default `UTC`), e.g. `Europe/Rome`.
    #[oai(nullable, validator(max_length = 64))]
    pub timezone: Option<String>,
    /// Free text shown to staff.
    #[oai(nullable, validator(max_length = 2000))]
    pub description: Option<String>,
    /// Weekly working ranges in the calendar's zone; `null` or absent = open around the clock.
    #[oai(nullable, validator(max_items = 100))]
    pub working_hours: Option<Vec<WorkingRange>>,
    /// Dates whose working time differs from their weekday's (holidays, special openings).
    #[oai(nullable, validator(max_items = 400))]
    pub date_overrides: Option<Vec<DateOverride>>,
    /// Id of the calendar's owner (a user of yours), at most 255 characters.
    #[oai(nullable, validator(max_length = 255))]
    pub owner_id: Option<String>,
    /// Your own keys and values, string to string (at most 50 keys).
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Makes it the organization's default calendar (Google Calendar's `primary`); at most one
    /// calendar is the default, so setting it here clears it on the others. Default `false`.
    #[oai(nullable)]
    pub is_default: Option<bool>,
}

impl Example for CalendarIn {
    fn example() -> Self {
        CalendarIn {
            name: "Studio Rossi".into(),
            timezone: Some("Europe/Rome".into()),
            description: Some("Consulenze in sede e su Zoom".into()),
            working_hours: Some(
                [
                    DayOfWeek::Monday,
                    DayOfWeek::Tuesday,
                    DayOfWeek::Wednesday,
                    DayOfWeek::Thursday,
                    DayOfWeek::Friday,
                ]
                .into_iter()
                .map(|day| WorkingRange {
                    day,
                    start: "09:00".into(),
                    end: "17:00".into(),
                })
                .collect(),
            ),
            date_overrides: Some(vec![DateOverride {
                date: LocalDate(chrono::NaiveDate::from_ymd_opt(2026, 12, 24).unwrap_or_default()),
                ranges: vec![],
            }]),
            owner_id: None,
            metadata: None,
            is_default: None,
        }
    }
}

/// Changes to a calendar; absent fields stay as they are, `description: null` clears it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CalendarPatch {
    #[oai(nullable, validator(min_length = 1, max_length = 200))]
    /// Display name.
    pub name: Option<String>,
    /// IANA time zone.
    #[oai(nullable, validator(max_length = 64))]
    pub timezone: Option<String>,
    #[oai(nullable, validator(max_length = 2000))]
    /// Free text; `null` clears it.
    pub description: MaybeUndefined<String>,
    /// Weekly working ranges; `null` = open around the clock.
    #[oai(nullable, validator(max_items = 100))]
    pub working_hours: MaybeUndefined<Vec<WorkingRange>>,
    /// Replaces all date overrides; `null` or `[]` removes them.
    #[oai(nullable, validator(max_items = 400))]
    pub date_overrides: MaybeUndefined<Vec<DateOverride>>,
    /// `true` makes it the organization's default calendar (Google Calendar's `primary`) and
    /// clears the flag on the others; `false` leaves the organization without a default when it
    /// was this one.
    #[oai(nullable)]
    pub is_default: Option<bool>,
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
    #[oai(nullable)]
    pub description: Option<String>,
    /// Weekly working ranges in the calendar's zone; `null` = open around the clock.
    #[oai(nullable)]
    pub working_hours: Option<Vec<WorkingRange>>,
    /// Dates whose working time differs from their weekday's.
    pub date_overrides: Vec<DateOverride>,
    /// Id of the calendar's owner; `null` when it has none.
    #[oai(nullable)]
    pub owner_id: Option<String>,
    /// Your own keys and values; `null` when there are none.
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Whether it is the organization's default calendar (Google Calendar's `primary`).
    pub is_default: bool,
    /// When it was created (UTC).
    pub created_at: Timestamp,
    /// When it last changed (UTC).
    pub updated_at: Timestamp,
}

impl From<entity::calendars::Model> for CalendarOut {
    fn from(m: entity::calendars::Model) -> Self {
        let (weekly, overrides) = repo::hours_of(&m);
        let metadata = repo::metadata_of(&m);
        CalendarOut {
            owner_id: m.owner_id.clone(),
            metadata: (!metadata.is_empty()).then_some(metadata),
            is_default: m.is_default,
            working_hours: weekly.map(working_ranges),
            date_overrides: date_overrides(overrides),
            id: m.id.0,
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

/// The answer a create stores with itself for `Idempotency-Key` replays.
fn render_created(m: &entity::calendars::Model) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    (201, envelope(m.clone()).0.to_json_string())
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

pub struct CalendarsApi;

#[OpenApi(prefix_path = "/v1/calendar/calendars", tag = "ApiTags::Calendars")]
impl CalendarsApi {
    /// List calendars
    ///
    /// A page of the organization's calendars, oldest first. Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "listCalendars")]
    async fn list(
        &self,
        auth: ReadAuth,
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
    ) -> Result<ListCalendarsResponse, Fail<LIST>> {
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
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<CalendarIn>,
    ) -> Result<CreateCalendarResponse, Fail<CREATE>> {
        let body = body.0;
        let mut v = Violations::default();
        let name = body.name.trim().to_string();
        if name.is_empty() {
            v.add("name", "must not be blank");
        }
        let timezone = request_zone(&mut v, Some(body.timezone.as_deref().unwrap_or("UTC")));
        let weekly = body.working_hours.as_deref().map(weekly_docs);
        let overrides = body
            .date_overrides
            .as_deref()
            .map(override_docs)
            .unwrap_or_default();
        check_schedule(
            &mut v,
            timezone.unwrap_or(Zone::UTC),
            weekly.as_deref(),
            &overrides,
        );
        let metadata = body
            .metadata
            .map(|m| parse_metadata(&mut v, "metadata", m))
            .unwrap_or_default();
        v.into_result()?;
        let new = NewCalendar {
            name,
            timezone: timezone.unwrap_or(Zone::UTC),
            description: optional_text(body.description),
            working_hours: weekly,
            date_overrides: overrides,
            owner_id: optional_text(body.owner_id),
            metadata,
            is_default: body.is_default.unwrap_or(false),
        };
        let model = state
            .service
            .create_calendar(auth.0.org_id, new, &render_created)
            .await?;
        Ok(CreateCalendarResponse::Created(envelope(model)))
    }

    /// Get a calendar
    ///
    /// Scope: `calendar:read`.
    #[oai(path = "/:id", method = "get", operation_id = "getCalendar")]
    async fn get(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// Calendar id.
        id: Path<Uuid>,
    ) -> Result<CalendarResponse, Fail<READ>> {
        let model = state
            .service
            .calendar(auth.0.org_id, CalendarId(id.0))
            .await?;
        Ok(CalendarResponse::Ok(envelope(model)))
    }

    /// Update a calendar
    ///
    /// Changes only the fields present in the body. Scope: `calendar:write`.
    #[oai(path = "/:id", method = "patch", operation_id = "updateCalendar")]
    async fn update(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Calendar id.
        id: Path<Uuid>,
        body: JsonBody<CalendarPatch>,
    ) -> Result<CalendarResponse, Fail<UPDATE>> {
        let body = body.0;
        let mut v = Violations::default();
        let name = body.name.map(|n| n.trim().to_string());
        if name.as_deref() == Some("") {
            v.add("name", "must not be blank");
        }
        let timezone = request_zone(&mut v, body.timezone.as_deref());
        let working_hours = maybe(body.working_hours).map(|w| w.as_deref().map(weekly_docs));
        let date_overrides =
            maybe(body.date_overrides).map(|o| o.as_deref().map(override_docs).unwrap_or_default());
        check_schedule(
            &mut v,
            timezone.unwrap_or(Zone::UTC),
            working_hours.as_ref().and_then(|w| w.as_deref()),
            date_overrides.as_deref().unwrap_or_default(),
        );
        v.into_result()?;
        let changes = CalendarChanges {
            name,
            timezone,
            description: maybe(body.description).map(optional_text),
            working_hours,
            date_overrides,
            is_default: body.is_default,
        };
        let model = state
            .service
            .update_calendar(auth.0.org_id, CalendarId(id.0), changes)
            .await?;
        Ok(CalendarResponse::Ok(envelope(model)))
    }
}
