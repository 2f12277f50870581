//! Recurring events in Google's shape, over the core's series (`service::series`).
//!
//! - The recurring event ("master") has the series' id (the one the client chose, or the
//!   series' UUID in 32-hex form), `recurrence` as given, `start`/`end` of its first instance,
//!   and the fields every instance shares.
//! - An instance's id is `{master id}_{rule start}`, the rule start in UTC as
//!   `YYYYMMDDTHHMMSSZ` (`YYYYMMDD` for all-day series), as Google spells them; it carries
//!   `recurringEventId` and `originalStartTime`.
//! - Writing one instance detaches it from the series (an exception): later changes to the whole
//!   series leave it be. Writing the master rewrites every other instance, all or nothing.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::errors::GError;
use super::events::{View, etag, resource};
use crate::domain::ids::{EventId, OrgId, SeriesId};
use crate::domain::recurrence::{First, Recurrence};
use crate::domain::time::Zone;
use crate::repo;
use crate::service::events::BookingRequest;
use crate::service::series::{Series, SeriesRequest};
use crate::state::AppState;

type Event = entity::events::Model;
type Calendar = entity::calendars::Model;
pub type SeriesModel = entity::event_series::Model;

/// What a Google event id names on a calendar.
pub enum Found {
    /// An event that belongs to no series.
    Single(Event),
    /// A recurring event.
    Master(Box<Series>),
    /// One instance of a recurring event.
    Instance(Event, Box<SeriesModel>),
}

/// The id Google clients see for a series.
pub fn series_gid(s: &SeriesModel) -> String {
    repo::series::public_id_of(s)
}

fn suffix(original_start: DateTime<Utc>, all_day: bool) -> String {
    if all_day {
        original_start.format("%Y%m%d").to_string()
    } else {
        original_start.format("%Y%m%dT%H%M%SZ").to_string()
    }
}

/// The rule start an instance id's suffix names.
fn parse_suffix(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = s.strip_suffix('Z') {
        let local = NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S").ok()?;
        return Some(Utc.from_utc_datetime(&local));
    }
    let date = NaiveDate::parse_from_str(s, "%Y%m%d").ok()?;
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

/// An instance's Google id.
pub fn instance_gid(e: &Event, s: &SeriesModel) -> String {
    let at = e.original_start.unwrap_or(e.start_time);
    format!("{}_{}", series_gid(s), suffix(at, s.all_day))
}

/// A series' etag: changes with the series and with every instance written with it.
pub fn series_etag(series: &Series) -> String {
    let seq = series
        .instances
        .iter()
        .map(|e| e.change_seq)
        .max()
        .unwrap_or(0);
    format!(
        "\"s{}{:06}\"",
        series.series.updated_at.timestamp(),
        seq.rem_euclid(1_000_000)
    )
}

/// An instance as Google shows it.
pub fn instance_resource(e: &Event, s: &SeriesModel, view: &View<'_>) -> Value {
    let mut out = resource(e, view);
    let master = series_gid(s);
    let at = e.original_start.unwrap_or(e.start_time);
    out["id"] = json!(instance_gid(e, s));
    out["recurringEventId"] = json!(master);
    out["originalStartTime"] = if s.all_day {
        json!({"date": at.format("%Y-%m-%d").to_string()})
    } else {
        let zone = Zone::parse(&s.timezone).unwrap_or(Zone::UTC);
        json!({
            "dateTime": at.with_timezone(&zone.0).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "timeZone": s.timezone,
        })
    };
    if out.get("iCalUID").is_some() && e.ical_uid.is_none() {
        out["iCalUID"] = json!(format!("{master}@quando"));
    }
    out
}

/// A recurring event as Google shows it.
pub fn master_resource(series: &Series, view: &View<'_>) -> Value {
    let s = &series.series;
    let mut out = match series.template() {
        Some(e) => resource(e, view),
        None => json!({"kind": "calendar#event"}),
    };
    let gid = series_gid(s);
    let zone = Zone::parse(&s.timezone).unwrap_or(Zone::UTC);
    let time = |t: DateTime<Utc>, d: Option<NaiveDate>| match d {
        Some(d) => json!({"date": d.format("%Y-%m-%d").to_string()}),
        None => json!({
            "dateTime": t.with_timezone(&view.zone.unwrap_or(zone).0)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "timeZone": s.timezone,
        }),
    };
    out["id"] = json!(gid);
    out["etag"] = json!(series_etag(series));
    out["status"] = json!(if s.status == repo::series::CANCELLED {
        "cancelled"
    } else {
        "confirmed"
    });
    out["start"] = time(s.first_start, s.start_date.filter(|_| s.all_day));
    out["end"] = time(s.first_end, s.end_date.filter(|_| s.all_day));
    out["recurrence"] = json!(repo::series::lines_of(s));
    out["iCalUID"] = json!(repo::series::ical_uid_of(s));
    out["created"] = json!(super::google_time(s.created_at));
    out["updated"] = json!(super::google_time(s.updated_at));
    if let Some(o) = out.as_object_mut() {
        o.remove("recurringEventId");
        o.remove("originalStartTime");
    }
    out
}

/// A series of the calendar by its Google id (a chosen id, or its UUID).
async fn series_by_gid(
    state: &AppState,
    org: OrgId,
    calendar: &Calendar,
    gid: &str,
) -> Result<Option<SeriesModel>, GError> {
    if let Some(s) = repo::series::by_gcal_id(&state.db, org, calendar.id, gid).await? {
        return Ok(Some(s));
    }
    let Ok(id) = Uuid::try_parse(gid) else {
        return Ok(None);
    };
    Ok(repo::series::get(&state.db, org, SeriesId(id))
        .await?
        .filter(|s| s.calendar_id == calendar.id))
}

/// What `event_id` names on the calendar: a single event, a recurring event or one of its
/// instances. Another calendar's or organization's is not found.
pub async fn find(
    state: &AppState,
    org: OrgId,
    calendar: &Calendar,
    event_id: &str,
) -> Result<Found, GError> {
    let not_found =
        || GError::not_found(format!("Not Found: no event '{event_id}' on this calendar"));
    if let Some(m) = repo::events::by_gcal_id(&state.db, org, calendar.id, event_id).await? {
        return Ok(Found::Single(m));
    }
    if let Some(s) = series_by_gid(state, org, calendar, event_id).await? {
        return Ok(Found::Master(Box::new(
            state.service.series(org, s.id).await?,
        )));
    }
    if let Ok(id) = Uuid::try_parse(event_id)
        && let Some(m) = repo::events::get(&state.db, org, EventId(id)).await?
        && m.calendar_id == calendar.id
    {
        return match m.series_id {
            Some(sid) => match repo::series::get(&state.db, org, sid).await? {
                Some(s) => Ok(Found::Instance(m, Box::new(s))),
                None => Ok(Found::Single(m)),
            },
            None => Ok(Found::Single(m)),
        };
    }
    if let Some((master, at)) = event_id.rsplit_once('_')
        && let Some(at) = parse_suffix(at)
        && let Some(s) = series_by_gid(state, org, calendar, master).await?
        && let Some(m) = repo::events::instance_at(&state.db, org, s.id, at).await?
    {
        return Ok(Found::Instance(m, Box::new(s)));
    }
    Err(not_found())
}

/// Whether an id is taken on the calendar by an event, a recurring event or an instance.
pub async fn id_taken(
    state: &AppState,
    org: OrgId,
    calendar: &Calendar,
    id: &str,
) -> Result<bool, GError> {
    match find(state, org, calendar, id).await {
        Ok(_) => Ok(true),
        Err(e) if e.status == poem::http::StatusCode::NOT_FOUND => Ok(false),
        Err(e) => Err(e),
    }
}

/// A recurring event's request: `booking` is its first instance (already read in its zone),
/// `lines` its recurrence. Google expands a rule in `start.timeZone`; without one the
/// calendar's zone is used.
pub fn series_request(booking: BookingRequest, lines: &[String]) -> Result<SeriesRequest, GError> {
    let zone = booking.zone;
    let first = match booking.all_day {
        Some(days) => First::AllDay(days),
        None => First::Timed {
            start: booking.start.with_timezone(&zone.0).naive_local(),
            end: booking.end.with_timezone(&zone.0).naive_local(),
        },
    };
    let recurrence = Recurrence::parse(lines, zone, first, "recurrence")?;
    let gcal_id = booking.details.google.gcal_id.clone();
    let ical_uid = booking.details.google.ical_uid.clone();
    Ok(SeriesRequest {
        first: booking,
        recurrence,
        gcal_id,
        ical_uid,
    })
}

/// The body a write to a recurring event is read as: for a patch, the recurring event as shown
/// with the patch's members over it; for an update, the body itself. Members only the server
/// sets are left out.
pub fn merged_body(current: &Value, body: Map<String, Value>, replace: bool) -> Map<String, Value> {
    let mut out = if replace {
        Map::new()
    } else {
        current.as_object().cloned().unwrap_or_default()
    };
    for key in [
        "kind",
        "etag",
        "id",
        "htmlLink",
        "created",
        "updated",
        "creator",
        "organizer",
        "iCalUID",
        "sequence",
        "recurringEventId",
        "originalStartTime",
        "attendeesOmitted",
    ] {
        out.remove(key);
    }
    for (k, v) in body {
        out.insert(k, v);
    }
    out
}

/// The series of some events, each read once.
pub async fn series_of(
    state: &AppState,
    org: OrgId,
    events: &[Event],
) -> Result<HashMap<SeriesId, SeriesModel>, GError> {
    let mut out = HashMap::new();
    for sid in events.iter().filter_map(|e| e.series_id) {
        if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(sid)
            && let Some(s) = repo::series::get(&state.db, org, sid).await?
        {
            slot.insert(s);
        }
    }
    Ok(out)
}

/// An event of a list: an instance as an instance, anything else as itself.
pub fn item(e: &Event, series: &HashMap<SeriesId, SeriesModel>, view: &View<'_>) -> Value {
    match e.series_id.and_then(|sid| series.get(&sid)) {
        Some(s) => instance_resource(e, s, view),
        None => resource(e, view),
    }
}

/// Whether an event of a list without `singleEvents` shows as itself: single events and the
/// instances changed on their own do; the others show through their recurring event.
pub fn shown_unexpanded(e: &Event) -> bool {
    e.series_id.is_none() || e.series_exception
}

/// The etag a conditional request compares: the event's, or the series'.
pub fn found_etag(found: &Found) -> String {
    match found {
        Found::Single(e) | Found::Instance(e, _) => etag(e),
        Found::Master(s) => series_etag(s),
    }
}

/// `GET /calendars/{calendarId}/events/{eventId}/instances`: the instances of a recurring event
/// in rule order (cancelled ones with `showDeleted`), filtered by `timeMin`, `timeMax` and
/// `originalStart`, a page of `maxResults` (250 by default, at most 2500) at a time.
#[poem::handler]
pub async fn events_instances(
    req: &poem::Request,
    state: poem::web::Data<&AppState>,
    poem::web::Path((calendar_id, event_id)): poem::web::Path<(String, String)>,
) -> Result<poem::Response, GError> {
    use super::{Call, Round, calendar_of, google_time};
    use poem::http::StatusCode;
    let call = Call::new(req, crate::auth::Scope::CalendarRead)?;
    let p = &call.params;
    let max_results = p.int("maxResults", 1, 2500)?.unwrap_or(250) as usize;
    let max_attendees = p.int("maxAttendees", 1, i64::from(u32::MAX))?;
    let show_deleted = p.bool("showDeleted")?.unwrap_or(false);
    let zone = super::events::view_zone(&call)?;
    let time_min = p.time("timeMin", Round::Down)?;
    let time_max = p.time("timeMax", Round::Up)?;
    if let (Some(a), Some(b)) = (time_min, time_max)
        && b <= a
    {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty: timeMax must be after timeMin",
        )
        .at("timeMax"));
    }
    let original_start = p.time("originalStart", Round::Down)?;
    let offset = match p.get("pageToken") {
        None => 0,
        Some(t) => t
            .strip_prefix('i')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                GError::invalid(
                    "pageToken",
                    "Invalid pageToken: pass nextPageToken back unchanged",
                )
            })?,
    };
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let Found::Master(whole) = find(&state, call.org, &calendar, &event_id).await? else {
        return Err(GError::not_found(format!(
            "Not Found: '{event_id}' is not a recurring event on this calendar"
        )));
    };
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone,
        max_attendees: max_attendees.and_then(|n| usize::try_from(n).ok()),
    };
    let mut matching: Vec<&Event> = whole
        .instances
        .iter()
        .filter(|e| show_deleted || e.status != crate::service::events::Status::Cancelled)
        .filter(|e| time_min.is_none_or(|t| e.end_time > t))
        .filter(|e| time_max.is_none_or(|t| e.start_time < t))
        .filter(|e| original_start.is_none_or(|t| e.original_start == Some(t)))
        .collect();
    matching.sort_by_key(|e| (e.start_time, e.id));
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|e| instance_resource(e, &whole.series, &view))
        .collect();
    let mut out = json!({
        "kind": "calendar#events",
        "etag": series_etag(&whole),
        "summary": calendar.name,
        "updated": google_time(whole.series.updated_at),
        "timeZone": calendar.timezone,
        "accessRole": "owner",
        "defaultReminders": [],
        "items": page,
    });
    if offset + max_results < matching.len() {
        out["nextPageToken"] = json!(format!("i{}", offset + max_results));
    }
    Ok(call.respond(StatusCode::OK, out))
}
