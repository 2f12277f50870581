//! Google's events resource over Quando's events: insert, import, get, list (with page and
//! sync tokens), patch, update and delete. This file parses Google's bodies and parameters into
//! the service's requests and maps events back; every booking rule is the service's (working
//! hours of the calendar, no overlap), and a refusal is Google's 409 `conflict` carrying
//! Quando's reason and next free slots.
//!
//! Field mapping: `summary` = title, `description`, `location`, `start`/`end` (`dateTime`
//! with an offset, or without one and with `timeZone`; `date` = an all-day event, end
//! exclusive), `status`, `transparency`, `attendees` (email, displayName, optional,
//! responseStatus; comment and additionalGuests kept beside them). Google-only fields
//! (visibility, reminders, extendedProperties, colorId, source, the guest permissions,
//! endTimeUnspecified, attachments, an imported organizer) are stored as given in
//! `events.extras`; the id a client chose in `gcal_id`; `iCalUID` in `ical_uid`.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::errors::GError;
use super::series::{self, Found};
use super::tokens::{PageToken, SyncToken};
use super::{Call, Round, calendar_of, google_time, no_content, strip_zero_fraction};
use crate::auth::Scope;
use crate::domain::details::{
    AllDay, Attendee, AttendeeInput, EventDetails, GoogleFields, Transparency, all_day_span,
    parse_attendees,
};
use crate::domain::ids::OrgId;
use crate::domain::time::{self, Zone, parse_date, parse_instant};
use crate::domain::violations::{Invalid, Violations};
use crate::pagination::Cursor;
use crate::repo::events::{GoogleFilter, GoogleOrder};
use crate::service::events::{BookingRequest, EventUpdate, Status};
use crate::service::series::Series;
use crate::state::AppState;
use crate::{payload, repo};

type Event = entity::events::Model;
type Calendar = entity::calendars::Model;

/// Google's page size: 250 by default, at most 2500.
const DEFAULT_MAX_RESULTS: i64 = 250;
const MAX_RESULTS: i64 = 2500;
/// Limits of the text fields (the native API's).
const MAX_SUMMARY: usize = 500;
const MAX_LOCATION: usize = 500;
const MAX_DESCRIPTION: usize = 8000;
const MAX_REMINDERS: usize = 5;
const MAX_REMINDER_MINUTES: i64 = 40320;

// ----- reading a body -----

/// The JSON object of a request body (an empty body is an empty object). A body that is not
/// JSON is Google's 400 `parseError`; one over 64 KiB is 413; another content type is 415.
pub async fn read_json(req: &Request, body: Body) -> Result<Map<String, Value>, GError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = body
        .into_bytes_limit(payload::MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            GError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "global",
                "uploadTooLarge",
                format!(
                    "The request body is over {} KiB",
                    payload::MAX_BODY_BYTES / 1024
                ),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.is_empty() && !media.eq_ignore_ascii_case("application/json") {
        return Err(GError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "global",
            "badContent",
            format!("Media type '{media}' is not supported: send application/json"),
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GError::invalid(
            "body",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(GError::new(
            StatusCode::BAD_REQUEST,
            "global",
            "parseError",
            format!("Parse Error: the body is not valid JSON ({e})"),
        )
        .at("body")),
    }
}

/// An IANA zone in a body member.
pub fn zone_param(body: &Map<String, Value>, name: &str) -> Result<Option<Zone>, GError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Zone::parse(s)
            .map(Some)
            .map_err(|e| GError::invalid(name, format!("Invalid time zone: {e}"))),
        Some(_) => Err(GError::invalid(name, format!("{name} must be a string"))),
    }
}

/// Typed reads of body members; each problem is recorded at the member's path.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Reader<'a> {
    fn new(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Reader {
            map,
            prefix: prefix.to_string(),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn present(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// `None`: absent; `Some(None)`: null or blank; `Some(Some(s))`: the trimmed text.
    fn string(&self, v: &mut Violations, key: &str, max: usize) -> Option<Option<String>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::String(s) => {
                if s.chars().count() > max {
                    v.add(&self.path(key), format!("must be at most {max} characters"));
                    return None;
                }
                let t = s.trim();
                Some((!t.is_empty()).then(|| t.to_string()))
            }
            _ => {
                v.add(&self.path(key), "must be a string");
                None
            }
        }
    }

    fn bool(&self, v: &mut Violations, key: &str) -> Option<Option<bool>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::Bool(b) => Some(Some(*b)),
            _ => {
                v.add(&self.path(key), "must be true or false");
                None
            }
        }
    }

    fn int(&self, v: &mut Violations, key: &str, min: i64, max: i64) -> Option<Option<i64>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::Number(n) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Some(Some(i)),
                _ => {
                    v.add(
                        &self.path(key),
                        format!("must be an integer from {min} to {max}"),
                    );
                    None
                }
            },
            _ => {
                v.add(&self.path(key), "must be an integer");
                None
            }
        }
    }

    /// One of `allowed`.
    fn choice(&self, v: &mut Violations, key: &str, allowed: &[&str]) -> Option<Option<String>> {
        let s = self.string(v, key, 64)?;
        match s {
            Some(s) if !allowed.contains(&s.as_str()) => {
                v.add(
                    &self.path(key),
                    format!("'{s}' is not one of {}", allowed.join(", ")),
                );
                None
            }
            other => Some(other),
        }
    }

    fn object(&self, v: &mut Violations, key: &str) -> Option<Option<&'a Map<String, Value>>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::Object(m) => Some(Some(m)),
            _ => {
                v.add(&self.path(key), "must be an object");
                None
            }
        }
    }

    fn array(&self, v: &mut Violations, key: &str) -> Option<Option<&'a Vec<Value>>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::Array(a) => Some(Some(a)),
            _ => {
                v.add(&self.path(key), "must be an array");
                None
            }
        }
    }
}

// ----- the parsed body -----

/// A `start` or `end` as given.
#[derive(Clone, Debug)]
struct GTime {
    /// `start` or `end`.
    which: &'static str,
    kind: TimeKind,
    zone: Option<Zone>,
}

#[derive(Clone, Debug)]
enum TimeKind {
    DateTime(String),
    Date(NaiveDate),
}

/// What a body says, member by member (`None`: the member was absent).
#[derive(Default)]
struct GEventIn {
    id: Option<String>,
    status: Option<Status>,
    summary: Option<Option<String>>,
    description: Option<Option<String>>,
    location: Option<Option<String>>,
    start: Option<GTime>,
    end: Option<GTime>,
    transparency: Option<Transparency>,
    ical_uid: Option<String>,
    attendees: Option<Vec<Attendee>>,
    /// Per attendee email: `{comment, additionalGuests}` as given.
    attendee_extras: Option<Map<String, Value>>,
    /// Google-only members present in the body: the value to store, or `Null` to drop it.
    extras: Map<String, Value>,
    /// `recurrence` lines as given (`Some(empty)`: given empty or null).
    recurrence: Option<Vec<String>>,
}

/// How a body is read: what is required, and what is allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Insert,
    Import,
    Update,
    Patch,
}

fn parse_time(v: &mut Violations, body: &Map<String, Value>, which: &'static str) -> Option<GTime> {
    let r = Reader::new(body, "");
    let obj = r.object(v, which)??;
    let r = Reader::new(obj, which);
    let zone = match r.string(v, "timeZone", 64) {
        Some(Some(z)) => match Zone::parse(&z) {
            Ok(z) => Some(z),
            Err(e) => {
                v.add(&format!("{which}.timeZone"), e.to_string());
                return None;
            }
        },
        _ => None,
    };
    let date = r.string(v, "date", 10).flatten();
    let date_time = r.string(v, "dateTime", 64).flatten();
    match (date, date_time) {
        (Some(_), Some(_)) => {
            v.add(which, "give either date (all-day) or dateTime, not both");
            None
        }
        (Some(d), None) => match parse_date(&d) {
            Ok(d) => Some(GTime {
                which,
                kind: TimeKind::Date(d),
                zone,
            }),
            Err(e) => {
                v.add(&format!("{which}.date"), e);
                None
            }
        },
        (None, Some(dt)) => Some(GTime {
            which,
            kind: TimeKind::DateTime(dt),
            zone,
        }),
        (None, None) => {
            v.add(
                &format!("{which}.dateTime"),
                "is required (or date for an all-day event)",
            );
            None
        }
    }
}

/// `[a-v0-9]{5,1024}`: Google's base32hex event ids.
fn valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

fn http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")) && s.len() > 8
}

/// `recurrence`: RFC 5545 lines (`RRULE`, `EXRULE`, `RDATE`, `EXDATE`), checked here as
/// strings; the series (`google::series`) reads them in the event's zone.
fn recurrence(v: &mut Violations, r: &Reader<'_>) -> Option<Vec<String>> {
    let list = r.array(v, "recurrence")?;
    let mut out = Vec::new();
    for (i, line) in list
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match line {
            Value::String(l) if !l.trim().is_empty() && l.len() <= 2000 => out.push(l.clone()),
            Value::String(_) => v.add(
                &format!("recurrence[{i}]"),
                "must be an RFC 5545 line of at most 2000 characters, such as RRULE:FREQ=WEEKLY",
            ),
            _ => v.add(&format!("recurrence[{i}]"), "must be a string"),
        }
    }
    Some(out)
}

fn parse_extended_properties(v: &mut Violations, obj: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (scope, value) in obj {
        let at = format!("extendedProperties.{scope}");
        if scope != "private" && scope != "shared" {
            v.add(&at, "only private and shared properties exist");
            continue;
        }
        match value {
            Value::Null => {}
            Value::Object(props) => {
                if props.len() > 300 {
                    v.add(&at, "at most 300 properties");
                    continue;
                }
                for (k, val) in props {
                    if k.is_empty() || k.chars().count() > 44 {
                        v.add(&format!("{at}.{k}"), "keys are 1 to 44 characters");
                    }
                    match val {
                        Value::String(s) if s.chars().count() <= 1024 => {}
                        Value::String(_) => {
                            v.add(&format!("{at}.{k}"), "values are at most 1024 characters")
                        }
                        _ => v.add(&format!("{at}.{k}"), "values must be strings"),
                    }
                }
                out.insert(scope.clone(), value.clone());
            }
            _ => v.add(&at, "must be an object of string values"),
        }
    }
    Value::Object(out)
}

fn parse_reminders(v: &mut Violations, obj: &Map<String, Value>) -> Value {
    let r = Reader::new(obj, "reminders");
    let use_default = r.bool(v, "useDefault").flatten().unwrap_or(false);
    let mut overrides = Vec::new();
    if let Some(Some(list)) = r.array(v, "overrides") {
        if list.len() > MAX_REMINDERS {
            v.add(
                "reminders.overrides",
                format!("at most {MAX_REMINDERS} reminders"),
            );
        }
        for (i, item) in list.iter().enumerate() {
            let at = format!("reminders.overrides[{i}]");
            let Value::Object(o) = item else {
                v.add(&at, "must be an object");
                continue;
            };
            let ri = Reader::new(o, &at);
            let method = ri.choice(v, "method", &["email", "popup"]).flatten();
            let minutes = ri.int(v, "minutes", 0, MAX_REMINDER_MINUTES).flatten();
            match (method, minutes) {
                (Some(m), Some(n)) => overrides.push(json!({"method": m, "minutes": n})),
                (None, _) if !ri.present("method") => v.add(&format!("{at}.method"), "is required"),
                (_, None) if !ri.present("minutes") => {
                    v.add(&format!("{at}.minutes"), "is required")
                }
                _ => {}
            }
        }
    }
    if use_default && !overrides.is_empty() {
        v.add(
            "reminders.useDefault",
            "Cannot specify both default reminders and overrides at the same time",
        );
    }
    let mut out = json!({"useDefault": use_default});
    if !overrides.is_empty() {
        out["overrides"] = Value::Array(overrides);
    }
    out
}

fn parse_source(v: &mut Violations, obj: &Map<String, Value>) -> Value {
    let r = Reader::new(obj, "source");
    let title = r.string(v, "title", 500).flatten();
    let url = r.string(v, "url", 2000).flatten();
    match &url {
        Some(u) if !http_url(u) => v.add("source.url", "must be an http or https URL"),
        None => v.add("source.url", "is required"),
        _ => {}
    }
    json!({"title": title, "url": url})
}

fn parse_attachments(v: &mut Violations, list: &[Value]) -> Value {
    if list.len() > 25 {
        v.add("attachments", "at most 25 attachments");
    }
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("attachments[{i}]");
        let Value::Object(o) = item else {
            v.add(&at, "must be an object");
            continue;
        };
        let r = Reader::new(o, &at);
        let url = r.string(v, "fileUrl", 2000).flatten();
        if url.is_none() {
            v.add(&format!("{at}.fileUrl"), "is required");
        }
        let mut a = json!({"fileUrl": url});
        for key in ["title", "mimeType", "iconLink", "fileId"] {
            if let Some(Some(s)) = r.string(v, key, 2000) {
                a[key] = json!(s);
            }
        }
        out.push(a);
    }
    Value::Array(out)
}

/// Reads a Google event body. Every problem is collected, each at its member's path.
fn parse_event(
    body: &Map<String, Value>,
    mode: Mode,
    supports_attachments: bool,
) -> Result<GEventIn, Invalid> {
    let mut v = Violations::default();
    let r = Reader::new(body, "");
    let mut out = GEventIn::default();
    if matches!(mode, Mode::Insert | Mode::Import)
        && let Some(id) = r.string(&mut v, "id", 1024).flatten()
    {
        if valid_event_id(&id) {
            out.id = Some(id);
        } else {
            v.add(
                "id",
                "must be 5 to 1024 characters of base32hex: lowercase a-v and digits 0-9",
            );
        }
    }
    out.status = match r.choice(&mut v, "status", &["confirmed", "tentative", "cancelled"]) {
        Some(Some(s)) => Some(match s.as_str() {
            "tentative" => Status::Tentative,
            "cancelled" => Status::Cancelled,
            _ => Status::Confirmed,
        }),
        _ => None,
    };
    out.summary = r.string(&mut v, "summary", MAX_SUMMARY);
    out.description = r.string(&mut v, "description", MAX_DESCRIPTION);
    out.location = r.string(&mut v, "location", MAX_LOCATION);
    out.start = parse_time(&mut v, body, "start");
    out.end = parse_time(&mut v, body, "end");
    if mode != Mode::Patch {
        for which in ["start", "end"] {
            if matches!(body.get(which), None | Some(Value::Null)) {
                v.add(&format!("{which}.dateTime"), "is required");
            }
        }
    }
    out.transparency = match r.choice(&mut v, "transparency", &["opaque", "transparent"]) {
        Some(Some(t)) => Transparency::parse(&t).ok(),
        Some(None) => Some(Transparency::Opaque),
        None => None,
    };
    match r.string(&mut v, "iCalUID", 1024) {
        Some(Some(uid)) if mode != Mode::Patch && mode != Mode::Update => out.ical_uid = Some(uid),
        _ => {}
    }
    if mode == Mode::Import && out.ical_uid.is_none() {
        v.add("iCalUID", "is required");
    }
    match body.get("eventType") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "default" => {}
        Some(Value::String(t)) => v.add(
            "eventType",
            format!("'{t}' events are not supported: only default events exist in Quando"),
        ),
        Some(_) => v.add("eventType", "must be a string"),
    }
    if body.get("conferenceData").is_some_and(|c| !c.is_null()) {
        v.add(
            "conferenceData",
            "conference data is not supported: Quando creates no video conferences; leave conferenceData out",
        );
    }
    out.recurrence = recurrence(&mut v, &r);
    // Attendees.
    if let Some(list) = r.array(&mut v, "attendees") {
        let list = list.map(Vec::as_slice).unwrap_or_default();
        let mut inputs = Vec::with_capacity(list.len());
        let mut extras = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            let at = format!("attendees[{i}]");
            let Value::Object(o) = a else {
                v.add(&at, "must be an object");
                continue;
            };
            let ra = Reader::new(o, &at);
            let email = match o.get("email") {
                Some(Value::String(s)) => Some(s.as_str()),
                None | Some(Value::Null) => None,
                Some(_) => {
                    v.add(&format!("{at}.email"), "must be a string");
                    Some("")
                }
            };
            let name = match o.get("displayName") {
                Some(Value::String(s)) => Some(s.as_str()),
                None | Some(Value::Null) => None,
                Some(_) => {
                    v.add(&format!("{at}.displayName"), "must be a string");
                    None
                }
            };
            let optional = ra.bool(&mut v, "optional").flatten();
            let response_status = match o.get("responseStatus") {
                Some(Value::String(s)) => Some(s.as_str()),
                None | Some(Value::Null) => None,
                Some(_) => {
                    v.add(&format!("{at}.responseStatus"), "must be a string");
                    None
                }
            };
            let comment = ra.string(&mut v, "comment", 2000).flatten();
            let guests = ra.int(&mut v, "additionalGuests", 0, 100).flatten();
            ra.bool(&mut v, "resource");
            inputs.push(AttendeeInput {
                name,
                email,
                optional,
                response_status,
            });
            extras.push((comment, guests));
        }
        let mut sub = Violations::default();
        let parsed = parse_attendees(&mut sub, "attendees", inputs);
        if let Err(invalid) = sub.into_result() {
            for p in invalid.0 {
                v.add(&p.field.replace(".name", ".displayName"), p.message);
            }
        }
        let mut attendee_extras = Map::new();
        for (a, (comment, guests)) in parsed.iter().zip(extras) {
            let mut e = Map::new();
            if let Some(c) = comment {
                e.insert("comment".into(), json!(c));
            }
            if let Some(g) = guests {
                e.insert("additionalGuests".into(), json!(g));
            }
            if !e.is_empty() {
                attendee_extras.insert(a.email.clone(), Value::Object(e));
            }
        }
        out.attendees = Some(parsed);
        out.attendee_extras = Some(attendee_extras);
    }
    // Google-only members, kept as given (validated).
    let mut extras = Map::new();
    if let Some(vis) = r.choice(
        &mut v,
        "visibility",
        &["default", "public", "private", "confidential"],
    ) {
        extras.insert(
            "visibility".into(),
            vis.map(Value::String).unwrap_or(Value::Null),
        );
    }
    for key in [
        "endTimeUnspecified",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
        "anyoneCanAddSelf",
    ] {
        if let Some(b) = r.bool(&mut v, key) {
            extras.insert(key.into(), b.map(Value::Bool).unwrap_or(Value::Null));
        }
    }
    if let Some(color) = r.string(&mut v, "colorId", 8) {
        match color {
            Some(c) if !c.parse::<u8>().is_ok_and(|n| (1..=11).contains(&n)) => {
                v.add("colorId", "must be an event color id from 1 to 11")
            }
            c => {
                extras.insert(
                    "colorId".into(),
                    c.map(Value::String).unwrap_or(Value::Null),
                );
            }
        }
    }
    if let Some(obj) = r.object(&mut v, "extendedProperties") {
        extras.insert(
            "extendedProperties".into(),
            obj.map(|o| parse_extended_properties(&mut v, o))
                .unwrap_or(Value::Null),
        );
    }
    if let Some(obj) = r.object(&mut v, "reminders") {
        extras.insert(
            "reminders".into(),
            obj.map(|o| parse_reminders(&mut v, o))
                .unwrap_or(Value::Null),
        );
    }
    if let Some(obj) = r.object(&mut v, "source") {
        extras.insert(
            "source".into(),
            obj.map(|o| parse_source(&mut v, o)).unwrap_or(Value::Null),
        );
    }
    if supports_attachments && let Some(list) = r.array(&mut v, "attachments") {
        extras.insert(
            "attachments".into(),
            list.map(|l| parse_attachments(&mut v, l))
                .unwrap_or(Value::Null),
        );
    }
    if mode == Mode::Import
        && let Some(Some(org)) = r.object(&mut v, "organizer")
    {
        let ro = Reader::new(org, "organizer");
        let email = ro.string(&mut v, "email", 254).flatten();
        let name = ro.string(&mut v, "displayName", 200).flatten();
        extras.insert(
            "organizer".into(),
            json!({"email": email, "displayName": name}),
        );
    }
    out.extras = extras;
    v.into_result()?;
    Ok(out)
}

/// Start, end, the event's zone, and the dates of an all-day event.
type Times = (DateTime<Utc>, DateTime<Utc>, Zone, Option<AllDay>);

/// The instants, zone and all-day dates of a `start`/`end` pair; `cal_zone` reads all-day dates
/// that name no zone. Problems are recorded at `start...`/`end...`.
fn resolve_times(v: &mut Violations, start: &GTime, end: &GTime, cal_zone: Zone) -> Option<Times> {
    match (&start.kind, &end.kind) {
        (TimeKind::Date(s), TimeKind::Date(e)) => {
            let zone = start.zone.or(end.zone).unwrap_or(cal_zone);
            match all_day_span(*s, *e, zone) {
                Ok((a, b)) => Some((a, b, zone, Some(AllDay { start: *s, end: *e }))),
                Err((field, message)) => {
                    let at = if field == "startDate" {
                        "start.date"
                    } else {
                        "end.date"
                    };
                    v.add(
                        at,
                        message
                            .replace("startDate", "start.date")
                            .replace("endDate", "end.date"),
                    );
                    None
                }
            }
        }
        (TimeKind::DateTime(s), TimeKind::DateTime(e)) => {
            let read = |v: &mut Violations, t: &GTime, value: &str| match parse_instant(
                &strip_zero_fraction(value),
                t.zone,
            ) {
                Ok(i) => Some(i),
                Err(err) => {
                    let message = match err {
                        time::TimeError::MissingOffset(_) => format!(
                            "Missing time zone definition for {} time: give an offset or {}.timeZone",
                            t.which, t.which
                        ),
                        other => other.to_string(),
                    };
                    v.add(&format!("{}.dateTime", t.which), message);
                    None
                }
            };
            let a = read(v, start, s);
            let b = read(v, end, e);
            let (a, b) = (a?, b?);
            if b < a {
                v.add(
                    "end.dateTime",
                    "The specified time range is empty: end is before start",
                );
                return None;
            }
            if b == a {
                v.add("end.dateTime", "must be after start.dateTime");
                return None;
            }
            let zone = start.zone.or(end.zone).unwrap_or(cal_zone);
            Some((a, b, zone, None))
        }
        _ => {
            v.add(
                "end",
                "start and end must both be dates (all-day) or both dateTimes",
            );
            None
        }
    }
}

/// The stored extras with `changes` applied (`Null` drops a member).
fn merged_extras(
    current: Option<&Value>,
    changes: &Map<String, Value>,
    attendees: Option<&Map<String, Value>>,
) -> Option<Value> {
    let mut map = current
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, val) in changes {
        if val.is_null() {
            map.remove(k);
        } else {
            map.insert(k.clone(), val.clone());
        }
    }
    if let Some(a) = attendees {
        if a.is_empty() {
            map.remove("attendeeExtras");
        } else {
            map.insert("attendeeExtras".into(), Value::Object(a.clone()));
        }
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

// ----- the event as Google shows it -----

/// The id Google clients see: the chosen one, or the UUID in 32-hex form.
pub fn google_id(m: &Event) -> String {
    repo::events::public_id_of(m)
}

/// Changes on every write (`change_seq` is bumped by each).
pub fn etag(m: &Event) -> String {
    format!(
        "\"{}{:06}\"",
        m.updated_at.timestamp(),
        m.change_seq.rem_euclid(1_000_000)
    )
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Confirmed => "confirmed",
        Status::Tentative => "tentative",
        Status::Cancelled => "cancelled",
    }
}

fn time_out(
    t: DateTime<Utc>,
    date: Option<NaiveDate>,
    event_zone: &str,
    view_zone: Option<Zone>,
) -> Value {
    if let Some(d) = date {
        return json!({"date": d.format("%Y-%m-%d").to_string()});
    }
    let zone = view_zone
        .or_else(|| Zone::parse(event_zone).ok())
        .unwrap_or(Zone::UTC);
    json!({
        "dateTime": t.with_timezone(&zone.0).to_rfc3339_opts(SecondsFormat::Secs, true),
        "timeZone": event_zone,
    })
}

/// How an event is shown: to whom (`htmlLink` base), in which zone, with how many attendees.
pub struct View<'a> {
    pub calendar: &'a Calendar,
    pub base: &'a str,
    pub zone: Option<Zone>,
    pub max_attendees: Option<usize>,
}

pub fn resource(m: &Event, view: &View<'_>) -> Value {
    let extras = m
        .extras
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let get = |k: &str| extras.get(k).cloned();
    let gid = google_id(m);
    let calendar_email = format!("{}@quando", view.calendar.id.0.simple());
    let attendee_extras = extras
        .get("attendeeExtras")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut attendees: Vec<Value> = repo::events::attendees_of(m)
        .into_iter()
        .map(|a| {
            let mut out = json!({
                "email": a.email,
                "responseStatus": serde_json::to_value(a.response_status).unwrap_or(Value::Null),
            });
            if let Some(n) = &a.name {
                out["displayName"] = json!(n);
            }
            if a.optional {
                out["optional"] = json!(true);
            }
            if let Some(Value::Object(e)) = attendee_extras.get(&a.email) {
                for (k, val) in e {
                    out[k.as_str()] = val.clone();
                }
            }
            out
        })
        .collect();
    let mut omitted = false;
    if let Some(max) = view.max_attendees
        && attendees.len() > max
    {
        attendees.truncate(max);
        omitted = true;
    }
    let organizer = get("organizer")
        .filter(|o| o.get("email").is_some_and(|e| !e.is_null()))
        .map(|mut o| {
            o["self"] = json!(false);
            o
        })
        .unwrap_or_else(
            || json!({"email": calendar_email, "displayName": view.calendar.name, "self": true}),
        );
    let mut out = json!({
        "kind": "calendar#event",
        "etag": etag(m),
        "id": gid,
        "status": status_name(m.status),
        "htmlLink": format!("{}/v1/calendar/events/{}", view.base, m.id.0),
        "created": google_time(m.created_at),
        "updated": google_time(m.updated_at),
        "creator": {"email": calendar_email, "displayName": view.calendar.name, "self": true},
        "organizer": organizer,
        "start": time_out(m.start_time, m.start_date, &m.timezone, view.zone),
        "end": time_out(m.end_time, m.end_date, &m.timezone, view.zone),
        "transparency": m.transparency,
        "visibility": get("visibility").unwrap_or(json!("default")),
        "iCalUID": repo::events::ical_uid_of(m),
        "sequence": m.sequence,
        "reminders": get("reminders").unwrap_or(json!({"useDefault": true})),
        "eventType": "default",
        "guestsCanInviteOthers": get("guestsCanInviteOthers").unwrap_or(json!(true)),
        "guestsCanModify": get("guestsCanModify").unwrap_or(json!(false)),
        "guestsCanSeeOtherGuests": get("guestsCanSeeOtherGuests").unwrap_or(json!(true)),
        "anyoneCanAddSelf": get("anyoneCanAddSelf").unwrap_or(json!(false)),
    });
    let obj = out.as_object_mut();
    if let Some(obj) = obj {
        for (key, val) in [
            ("summary", m.title.clone().map(Value::String)),
            ("description", m.description.clone().map(Value::String)),
            ("location", m.location.clone().map(Value::String)),
            ("endTimeUnspecified", get("endTimeUnspecified")),
            ("colorId", get("colorId")),
            ("extendedProperties", get("extendedProperties")),
            ("source", get("source")),
            ("attachments", get("attachments")),
        ] {
            if let Some(val) = val {
                obj.insert(key.into(), val);
            }
        }
        if !attendees.is_empty() {
            obj.insert("attendees".into(), Value::Array(attendees));
        }
        if omitted {
            obj.insert("attendeesOmitted".into(), json!(true));
        }
    }
    out
}

// ----- parameters -----

/// Google's write parameters, checked: `sendUpdates`, `sendNotifications`,
/// `conferenceDataVersion` (0..1), `maxAttendees`, `supportsAttachments`. Quando sends no
/// e-mail, so the first two change nothing; the others shape the answer.
struct WriteParams {
    max_attendees: Option<usize>,
    supports_attachments: bool,
}

fn write_params(call: &Call) -> Result<WriteParams, GError> {
    if let Some(s) = call.params.get("sendUpdates")
        && !["all", "externalOnly", "none"].contains(&s)
    {
        return Err(GError::invalid(
            "sendUpdates",
            format!("Invalid value for sendUpdates: '{s}' (all, externalOnly or none)"),
        ));
    }
    call.params.bool("sendNotifications")?;
    call.params.int("conferenceDataVersion", 0, 1)?;
    let max_attendees = call.params.int("maxAttendees", 1, i64::from(u32::MAX))?;
    let supports_attachments = call.params.bool("supportsAttachments")?.unwrap_or(false);
    Ok(WriteParams {
        max_attendees: max_attendees.and_then(|n| usize::try_from(n).ok()),
        supports_attachments,
    })
}

pub(super) fn view_zone(call: &Call) -> Result<Option<Zone>, GError> {
    call.params
        .get("timeZone")
        .map(|z| {
            Zone::parse(z)
                .map_err(|e| GError::invalid("timeZone", format!("Invalid time zone: {e}")))
        })
        .transpose()
}

// ----- finding an event -----

/// 412 unless `If-Match` (when sent) names the current etag or `*`.
fn check_if_match(req: &Request, current: &Event) -> Result<(), GError> {
    check_if_match_tag(req, &etag(current))
}

/// 412 unless `If-Match` (when sent) names `tag` or `*`.
fn check_if_match_tag(req: &Request, tag: &str) -> Result<(), GError> {
    let Some(value) = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let matches = value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.trim_start_matches("W/") == tag);
    if matches {
        Ok(())
    } else {
        Err(GError::condition_not_met())
    }
}

/// A client-chosen id already taken on this calendar (as a chosen id or as an event's UUID).
async fn check_id_free(
    state: &AppState,
    org: OrgId,
    calendar: &Calendar,
    id: &str,
) -> Result<(), GError> {
    if series::id_taken(state, org, calendar, id).await? {
        return Err(GError::duplicate(format!(
            "The requested identifier already exists: an event '{id}' is on this calendar"
        )));
    }
    Ok(())
}

/// A storage failure that is the unique `(org, calendar, gcal_id)` index refusing a second event
/// with the same chosen id (a race between two inserts).
fn duplicate_or(err: crate::service::ServiceError) -> GError {
    if let crate::service::ServiceError::Storage(db) = &err
        && matches!(
            db.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        )
    {
        return GError::duplicate("The requested identifier already exists on this calendar");
    }
    err.into()
}

// ----- building service requests -----

fn booking(calendar: &Calendar, input: GEventIn, force: bool) -> Result<BookingRequest, GError> {
    let mut v = Violations::default();
    let cal_zone = Zone::parse(&calendar.timezone).unwrap_or(Zone::UTC);
    let times = match (&input.start, &input.end) {
        (Some(s), Some(e)) => resolve_times(&mut v, s, e, cal_zone),
        _ => None,
    };
    v.into_result()?;
    let Some((start, end, zone, all_day)) = times else {
        return Err(GError::required(
            "start.dateTime",
            "start and end are required",
        ));
    };
    let gcal_id = input.id.clone();
    let ical_uid = input
        .ical_uid
        .clone()
        .or_else(|| gcal_id.as_ref().map(|id| format!("{id}@quando")));
    let extras = merged_extras(None, &input.extras, input.attendee_extras.as_ref());
    Ok(BookingRequest {
        calendar: Some(calendar.id),
        event_type: None,
        start,
        end,
        zone,
        customer_name: None,
        customer_phone: None,
        customer_email: None,
        title: input.summary.flatten(),
        location: input.location.flatten(),
        notes: None,
        status: input.status.unwrap_or(Status::Confirmed),
        force,
        all_day,
        details: EventDetails {
            description: input.description.flatten(),
            attendees: input.attendees.unwrap_or_default(),
            transparency: input.transparency.unwrap_or_default(),
            google: GoogleFields {
                gcal_id,
                ical_uid,
                extras,
            },
            ..EventDetails::default()
        },
        booked_via: "gcal",
        hold: None,
    })
}

/// The changes of a PUT (`replace`: every member not given is cleared) or a PATCH.
fn changes(
    current: &Event,
    calendar: &Calendar,
    input: GEventIn,
    replace: bool,
    force: bool,
) -> Result<EventUpdate, GError> {
    let mut v = Violations::default();
    let cal_zone = Zone::parse(&calendar.timezone).unwrap_or(Zone::UTC);
    let current_zone = Zone::parse(&current.timezone).unwrap_or(cal_zone);
    // A patch may move one end only: the other is the event's own, in the same form.
    let current_time =
        |which: &'static str, date: Option<NaiveDate>, t: DateTime<Utc>, like: &GTime| GTime {
            which,
            kind: match (&like.kind, date) {
                (TimeKind::Date(_), Some(d)) => TimeKind::Date(d),
                _ => TimeKind::DateTime(time::format_utc(t)),
            },
            zone: Some(current_zone),
        };
    let times = match (&input.start, &input.end) {
        (Some(s), Some(e)) => resolve_times(&mut v, s, e, cal_zone),
        (Some(s), None) => {
            let e = current_time("end", current.end_date, current.end_time, s);
            resolve_times(&mut v, s, &e, cal_zone)
        }
        (None, Some(e)) => {
            let s = current_time("start", current.start_date, current.start_time, e);
            resolve_times(&mut v, &s, e, cal_zone)
        }
        (None, None) => None,
    };
    v.into_result()?;
    let text = |given: Option<Option<String>>| {
        if replace {
            Some(given.flatten())
        } else {
            given
        }
    };
    let base_extras = if replace {
        None
    } else {
        current.extras.as_ref()
    };
    let attendee_extras = if replace {
        Some(input.attendee_extras.clone().unwrap_or_default())
    } else {
        input.attendee_extras.clone()
    };
    let extras = merged_extras(base_extras, &input.extras, attendee_extras.as_ref());
    let mut update = EventUpdate {
        title: text(input.summary),
        description: text(input.description),
        location: text(input.location),
        status: input.status,
        transparency: if replace {
            Some(input.transparency.unwrap_or_default())
        } else {
            input.transparency
        },
        attendees: if replace {
            Some(input.attendees.unwrap_or_default())
        } else {
            input.attendees
        },
        extras: Some(extras),
        force,
        ..EventUpdate::default()
    };
    if let Some(uid) = input.ical_uid {
        update.ical_uid = Some(Some(uid));
    }
    if let Some((start, end, zone, all_day)) = times {
        update.start = Some(start);
        update.end = Some(end);
        update.zone = Some(zone);
        update.all_day = Some(all_day);
    }
    Ok(update)
}

// ----- handlers -----

/// `POST /calendars/{calendarId}/events`: books an event on the calendar under its rules.
#[handler]
pub async fn events_insert(
    req: &Request,
    state: Data<&AppState>,
    Path(calendar_id): Path<String>,
    body: Body,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarWrite)?;
    let params = write_params(&call)?;
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let body = read_json(req, body).await?;
    let input = parse_event(&body, Mode::Insert, params.supports_attachments)?;
    if let Some(id) = &input.id {
        check_id_free(&state, call.org, &calendar, id).await?;
    }
    let lines = input.recurrence.clone().unwrap_or_default();
    let request = booking(&calendar, input, false)?;
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone: None,
        max_attendees: params.max_attendees,
    };
    if !lines.is_empty() {
        let request = series::series_request(request, &lines)?;
        let render = |s: &Series| (200, series::master_resource(s, &view).to_string());
        let booked = state
            .service
            .book_series(call.org, request, &render)
            .await
            .map_err(duplicate_or)?;
        return Ok(call.respond(StatusCode::OK, series::master_resource(&booked, &view)));
    }
    let render = |m: &Event| (200, resource(m, &view).to_string());
    let model = state
        .service
        .book(call.org, request, &render)
        .await
        .map_err(duplicate_or)?;
    Ok(call.respond(StatusCode::OK, resource(&model, &view)))
}

/// `POST /calendars/{calendarId}/events/import`: an insert keyed by `iCalUID`; importing the
/// same UID again updates that event instead of adding one. Imports are back-office entries:
/// working hours, notice and advance do not apply (the overlap rule does).
#[handler]
pub async fn events_import(
    req: &Request,
    state: Data<&AppState>,
    Path(calendar_id): Path<String>,
    body: Body,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarWrite)?;
    let params = write_params(&call)?;
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let body = read_json(req, body).await?;
    let input = parse_event(&body, Mode::Import, params.supports_attachments)?;
    let uid = input.ical_uid.clone().unwrap_or_default();
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone: None,
        max_attendees: params.max_attendees,
    };
    let lines = input.recurrence.clone().unwrap_or_default();
    if !lines.is_empty() {
        // A recurring import: keyed by iCalUID like any import; a second import of the same
        // UID gives the series the imported rule and fields.
        let existing = repo::series::by_ical_uid(&state.db, call.org, calendar.id, &uid).await?;
        if existing.is_none()
            && let Some(id) = &input.id
        {
            check_id_free(&state, call.org, &calendar, id).await?;
        }
        let request = series::series_request(booking(&calendar, input, true)?, &lines)?;
        let render = |s: &Series| (200, series::master_resource(s, &view).to_string());
        let written = match existing {
            Some(current) => {
                state
                    .service
                    .move_series(
                        call.org,
                        current.id,
                        request.first,
                        request.recurrence,
                        &render,
                    )
                    .await?
            }
            None => state
                .service
                .book_series(call.org, request, &render)
                .await
                .map_err(duplicate_or)?,
        };
        return Ok(call.respond(StatusCode::OK, series::master_resource(&written, &view)));
    }
    let render = |m: &Event| (200, resource(m, &view).to_string());
    let existing = repo::events::by_ical_uid(&state.db, call.org, calendar.id, &uid).await?;
    let model = match existing {
        Some(current) => {
            let id = current.id;
            let update = changes(&current, &calendar, input, true, true)?;
            state.service.update(call.org, id, update, &render).await?
        }
        None => {
            if let Some(id) = &input.id {
                check_id_free(&state, call.org, &calendar, id).await?;
            }
            let request = booking(&calendar, input, true)?;
            state
                .service
                .book(call.org, request, &render)
                .await
                .map_err(duplicate_or)?
        }
    };
    Ok(call.respond(StatusCode::OK, resource(&model, &view)))
}

/// `GET /calendars/{calendarId}/events/{eventId}`: cancelled events too (status `cancelled`);
/// 304 when `If-None-Match` names the current etag.
#[handler]
pub async fn events_get(
    req: &Request,
    state: Data<&AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarRead)?;
    let max_attendees = call.params.int("maxAttendees", 1, i64::from(u32::MAX))?;
    let zone = view_zone(&call)?;
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let found = series::find(&state, call.org, &calendar, &event_id).await?;
    let tag = series::found_etag(&found);
    if let Some(none_match) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && none_match
            .split(',')
            .map(str::trim)
            .any(|t| t == tag || t == "*")
    {
        let mut resp = no_content(StatusCode::NOT_MODIFIED);
        if let Ok(v) = tag.parse() {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone,
        max_attendees: max_attendees.and_then(|n| usize::try_from(n).ok()),
    };
    let shown = match &found {
        Found::Single(m) => resource(m, &view),
        Found::Instance(m, s) => series::instance_resource(m, s, &view),
        Found::Master(x) => series::master_resource(x, &view),
    };
    let mut resp = call.respond(StatusCode::OK, shown);
    if let Ok(v) = tag.parse() {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

async fn write_existing(
    req: &Request,
    state: &AppState,
    calendar_id: &str,
    event_id: &str,
    body: Body,
    replace: bool,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarWrite)?;
    let params = write_params(&call)?;
    let calendar = calendar_of(state, call.org, calendar_id).await?;
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone: None,
        max_attendees: params.max_attendees,
    };
    let (current, instance_of) = match series::find(state, call.org, &calendar, event_id).await? {
        Found::Single(e) => (e, None),
        Found::Instance(e, s) => (e, Some(s)),
        Found::Master(current) => {
            check_if_match_tag(req, &series::series_etag(&current))?;
            let body = read_json(req, body).await?;
            let shown = series::master_resource(
                &current,
                &View {
                    max_attendees: None,
                    ..view
                },
            );
            let merged = series::merged_body(&shown, body, replace);
            let input = parse_event(&merged, Mode::Update, params.supports_attachments)?;
            // An update without `recurrence` keeps the rule.
            let lines = input
                .recurrence
                .clone()
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| repo::series::lines_of(&current.series));
            let request = series::series_request(booking(&calendar, input, false)?, &lines)?;
            let render = |s: &Series| (200, series::master_resource(s, &view).to_string());
            let moved = state
                .service
                .move_series(
                    call.org,
                    current.series.id,
                    request.first,
                    request.recurrence,
                    &render,
                )
                .await?;
            return Ok(call.respond(StatusCode::OK, series::master_resource(&moved, &view)));
        }
    };
    check_if_match(req, &current)?;
    let body = read_json(req, body).await?;
    let mode = if replace { Mode::Update } else { Mode::Patch };
    let input = parse_event(&body, mode, params.supports_attachments)?;
    if instance_of.is_some() && input.recurrence.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(GError::invalid(
            "recurrence",
            "an instance of a recurring event has no recurrence of its own: change the recurring event",
        ));
    }
    let id = current.id;
    let mut update = changes(&current, &calendar, input, replace, false)?;
    // An instance written on its own is an exception: changes to the series leave it be.
    update.detach_from_series = instance_of.is_some();
    // The write happens only on the version checked above: a change in between is 412 too.
    if req.headers().contains_key(header::IF_MATCH) {
        update.expected_seq = Some(current.change_seq);
    }
    let show = |m: &Event| match &instance_of {
        Some(s) => series::instance_resource(m, s, &view),
        None => resource(m, &view),
    };
    let render = |m: &Event| (200, show(m).to_string());
    let model = state.service.update(call.org, id, update, &render).await?;
    Ok(call.respond(StatusCode::OK, show(&model)))
}

/// `PATCH /calendars/{calendarId}/events/{eventId}`: the members given change, the others stay.
#[handler]
pub async fn events_patch(
    req: &Request,
    state: Data<&AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, GError> {
    write_existing(req, &state, &calendar_id, &event_id, body, false).await
}

/// `PUT /calendars/{calendarId}/events/{eventId}`: the body replaces the event (members left out
/// are cleared; `start` and `end` are required).
#[handler]
pub async fn events_update(
    req: &Request,
    state: Data<&AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, GError> {
    write_existing(req, &state, &calendar_id, &event_id, body, true).await
}

/// `DELETE /calendars/{calendarId}/events/{eventId}`: the event is cancelled and frees its
/// time (it stays visible with status `cancelled` to sync and `showDeleted`); 204. Deleting it
/// again is Google's 410 `deleted`.
#[handler]
pub async fn events_delete(
    req: &Request,
    state: Data<&AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarWrite)?;
    write_params(&call)?;
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let gone = || {
        GError::new(
            StatusCode::GONE,
            "global",
            "deleted",
            "Resource has been deleted",
        )
    };
    let (current, instance) = match series::find(&state, call.org, &calendar, &event_id).await? {
        Found::Single(e) => (e, false),
        Found::Instance(e, _) => (e, true),
        Found::Master(x) => {
            check_if_match_tag(req, &series::series_etag(&x))?;
            if x.series.status == repo::series::CANCELLED {
                return Err(gone());
            }
            state
                .service
                .cancel_series(call.org, x.series.id, None)
                .await?;
            return Ok(no_content(StatusCode::NO_CONTENT));
        }
    };
    check_if_match(req, &current)?;
    if instance {
        // One instance deleted: cancelled, and an exception, so the series never brings it back.
        if current.status == Status::Cancelled {
            return Err(gone());
        }
        let update = EventUpdate {
            status: Some(Status::Cancelled),
            detach_from_series: true,
            expected_seq: req
                .headers()
                .contains_key(header::IF_MATCH)
                .then_some(current.change_seq),
            ..EventUpdate::default()
        };
        let render = |_: &Event| (204, String::new());
        state
            .service
            .update(call.org, current.id, update, &render)
            .await?;
        return Ok(no_content(StatusCode::NO_CONTENT));
    }
    if current.status == Status::Cancelled {
        return Err(GError::new(
            StatusCode::GONE,
            "global",
            "deleted",
            "Resource has been deleted",
        ));
    }
    let render = |_: &Event| (204, String::new());
    let expected = req
        .headers()
        .contains_key(header::IF_MATCH)
        .then_some(current.change_seq);
    state
        .service
        .cancel_expecting(call.org, current.id, None, expected, &render)
        .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// `key=value` of `privateExtendedProperty` / `sharedExtendedProperty`.
fn property_filters(call: &Call, name: &str) -> Result<Vec<(String, String)>, GError> {
    call.params
        .all(name)
        .into_iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    GError::invalid(
                        name,
                        format!("Invalid value for {name}: '{p}' (use key=value)"),
                    )
                })
        })
        .collect()
}

fn has_properties(m: &Event, scope: &str, wanted: &[(String, String)]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let props = m
        .extras
        .as_ref()
        .and_then(|e| e.get("extendedProperties"))
        .and_then(|p| p.get(scope));
    wanted
        .iter()
        .all(|(k, v)| props.and_then(|p| p.get(k)).and_then(Value::as_str) == Some(v.as_str()))
}

/// The parameters a `syncToken` may not be combined with (as Google refuses them).
const NOT_WITH_SYNC: [&str; 8] = [
    "timeMin",
    "timeMax",
    "q",
    "iCalUID",
    "updatedMin",
    "orderBy",
    "privateExtendedProperty",
    "sharedExtendedProperty",
];

/// `GET /calendars/{calendarId}/events`: a page of the calendar's events; with `syncToken`,
/// what changed since that token (cancelled events included), whichever API changed it.
#[handler]
pub async fn events_list(
    req: &Request,
    state: Data<&AppState>,
    Path(calendar_id): Path<String>,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarRead)?;
    let p = &call.params;
    let max_results = p
        .int("maxResults", 1, MAX_RESULTS)?
        .unwrap_or(DEFAULT_MAX_RESULTS) as u64;
    let max_attendees = p.int("maxAttendees", 1, i64::from(u32::MAX))?;
    let zone = view_zone(&call)?;
    let show_deleted = p.bool("showDeleted")?.unwrap_or(false);
    // With singleEvents, instances of recurring events are listed one by one; without, a
    // recurring event is listed once (on the first page) and only its exceptions beside it.
    let single_events = p.bool("singleEvents")?.unwrap_or(false);
    p.bool("showHiddenInvitations")?;
    p.bool("alwaysIncludeEmail")?;
    for t in p.all("eventTypes") {
        if t != "default" {
            return Err(GError::invalid(
                "eventTypes",
                format!("Invalid value for eventTypes: '{t}' (only default events exist)"),
            ));
        }
    }
    let order = match p.get("orderBy") {
        None => GoogleOrder::Start,
        Some("startTime") if single_events => GoogleOrder::Start,
        Some("startTime") => {
            return Err(GError::invalid(
                "orderBy",
                "The requested ordering is not available for the particular query: orderBy=startTime needs singleEvents=true",
            ));
        }
        Some("updated") => GoogleOrder::Updated,
        Some(other) => {
            return Err(GError::invalid(
                "orderBy",
                format!("Invalid value for orderBy: '{other}' (startTime or updated)"),
            ));
        }
    };
    // Events end after timeMin, start before timeMax and changed at or after updatedMin, all
    // in whole seconds: a fraction moves each bound to the whole second that selects the same.
    let time_min = p.time("timeMin", Round::Down)?;
    let time_max = p.time("timeMax", Round::Up)?;
    let updated_min = p.time("updatedMin", Round::Up)?;
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
    let private = property_filters(&call, "privateExtendedProperty")?;
    let shared = property_filters(&call, "sharedExtendedProperty")?;
    let sync_token = p.get("syncToken").map(str::to_string);
    if sync_token.is_some()
        && let Some(bad) = NOT_WITH_SYNC.iter().find(|n| p.has(n))
    {
        return Err(GError::invalid(
            bad,
            format!(
                "syncToken cannot be combined with {bad}: an incremental list returns every change"
            ),
        ));
    }
    let page_token = match p.get("pageToken") {
        None => None,
        Some(t) => Some(PageToken::decode(t).ok_or_else(|| {
            GError::invalid(
                "pageToken",
                "Invalid pageToken: pass nextPageToken back unchanged",
            )
        })?),
    };
    let calendar = calendar_of(&state, call.org, &calendar_id).await?;
    let view = View {
        calendar: &calendar,
        base: &call.base,
        zone,
        max_attendees: max_attendees.and_then(|n| usize::try_from(n).ok()),
    };
    let mut items: Vec<Event> = Vec::new();
    let mut next_page = None;
    let snapshot;
    let last_change = repo::calendars::last_change_seq(&state.db, call.org, &calendar).await?;
    if let Some(token) = sync_token {
        let full_sync = || {
            GError::gone_full_sync("Sync token is no longer valid, a full sync is required.")
                .at("syncToken")
        };
        let sync = SyncToken::decode(&token).ok_or_else(full_sync)?;
        let ttl = chrono::Duration::from_std(state.config.sync_token_ttl)
            .unwrap_or(chrono::Duration::MAX);
        if sync.calendar != calendar.id
            || sync.seq > last_change
            || time::now().signed_duration_since(sync.issued) > ttl
        {
            return Err(full_sync());
        }
        let (since, after) = match page_token {
            None => {
                snapshot = last_change;
                (sync.seq, None)
            }
            Some(PageToken::Changes {
                snapshot: s,
                since,
                after,
            }) if since == sync.seq => {
                snapshot = s;
                (since, Some(after))
            }
            Some(_) => {
                return Err(GError::invalid(
                    "pageToken",
                    "Invalid pageToken for this syncToken",
                ));
            }
        };
        let (rows, more) = repo::events::changed_between(
            &state.db,
            call.org,
            calendar.id,
            since,
            snapshot,
            after,
            max_results,
        )
        .await?;
        if more && let Some(last) = rows.last() {
            next_page = Some(PageToken::Changes {
                snapshot,
                since,
                after: (last.change_seq, last.id.0),
            });
        }
        items = rows;
    } else {
        let after = match page_token {
            None => {
                snapshot = last_change;
                None
            }
            Some(PageToken::Full {
                snapshot: s,
                by_updated,
                after,
            }) if by_updated == (order == GoogleOrder::Updated) => {
                snapshot = s;
                Some((after.time, after.id))
            }
            Some(_) => {
                return Err(GError::invalid(
                    "pageToken",
                    "Invalid pageToken for this query",
                ));
            }
        };
        let filter = GoogleFilter {
            time_min,
            time_max,
            updated_min,
            ical_uid: p.get("iCalUID").map(str::to_string),
            q: p.get("q").map(str::to_string),
            show_deleted,
        };
        // The extended-property filters read the stored JSON: pages are filled batch by batch.
        let mut position = after;
        loop {
            let (rows, more) = repo::events::google_page(
                &state.db,
                call.org,
                calendar.id,
                &filter,
                order,
                position,
                max_results + 1,
            )
            .await?;
            position = rows.last().map(|m| position_of(m, order));
            items.extend(rows.into_iter().filter(|m| {
                (single_events || series::shown_unexpanded(m))
                    && has_properties(m, "private", &private)
                    && has_properties(m, "shared", &shared)
            }));
            if items.len() as u64 > max_results || !more {
                break;
            }
        }
        if items.len() as u64 > max_results {
            items.truncate(max_results as usize);
            if let Some(last) = items.last() {
                let (time, id) = position_of(last, order);
                next_page = Some(PageToken::Full {
                    snapshot,
                    by_updated: order == GoogleOrder::Updated,
                    after: Cursor { time, id },
                });
            }
        }
    }
    // Recurring events: the series of the instances listed, and (without singleEvents) the
    // recurring events themselves.
    let mut shown: Vec<Value> = Vec::with_capacity(items.len());
    let known = series::series_of(&state, call.org, &items).await?;
    let mut masters_shown = std::collections::HashSet::new();
    if !single_events && p.get("syncToken").is_none() && p.get("pageToken").is_none() {
        for s in repo::series::of_calendar(&state.db, call.org, calendar.id).await? {
            if s.status == repo::series::CANCELLED && !show_deleted {
                continue;
            }
            let whole = state.service.series(call.org, s.id).await?;
            let last_end = whole.instances.iter().map(|e| e.end_time).max();
            if time_max.is_some_and(|t| s.first_start >= t)
                || time_min.is_some_and(|t| last_end.is_none_or(|e| e <= t))
                || updated_min.is_some_and(|t| s.updated_at < t)
            {
                continue;
            }
            let value = series::master_resource(&whole, &view);
            if let Some(uid) = p.get("iCalUID")
                && value["iCalUID"].as_str() != Some(uid)
            {
                continue;
            }
            if let Some(q) = p.get("q") {
                let q = q.to_lowercase();
                let text = ["summary", "description", "location"]
                    .iter()
                    .filter_map(|k| value[*k].as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                if !text.contains(&q) {
                    continue;
                }
            }
            let template = whole.instances.iter().find(|e| !e.series_exception);
            if template.is_some_and(|t| {
                !has_properties(t, "private", &private) || !has_properties(t, "shared", &shared)
            }) {
                continue;
            }
            shown.push(value);
        }
    }
    for m in &items {
        match m.series_id.and_then(|sid| known.get(&sid)) {
            // An incremental list without singleEvents reports a changed instance through its
            // recurring event, once.
            Some(s) if !single_events && !m.series_exception => {
                if masters_shown.insert(s.id) {
                    let whole = state.service.series(call.org, s.id).await?;
                    shown.push(series::master_resource(&whole, &view));
                }
            }
            _ => shown.push(series::item(m, &known, &view)),
        }
    }
    let updated = items
        .iter()
        .map(|m| m.updated_at)
        .max()
        .unwrap_or(calendar.updated_at)
        .max(calendar.updated_at);
    let mut out = json!({
        "kind": "calendar#events",
        "etag": format!("\"{snapshot}\""),
        "summary": calendar.name,
        "description": calendar.description,
        "updated": google_time(updated),
        "timeZone": calendar.timezone,
        "accessRole": "owner",
        "defaultReminders": [],
        "items": shown,
    });
    match next_page {
        Some(token) => out["nextPageToken"] = json!(token.encode()),
        None => {
            out["nextSyncToken"] = json!(
                SyncToken {
                    calendar: calendar.id,
                    seq: snapshot,
                    issued: time::now(),
                }
                .encode()
            )
        }
    }
    Ok(call.respond(StatusCode::OK, out))
}

fn position_of(m: &Event, order: GoogleOrder) -> (DateTime<Utc>, Uuid) {
    match order {
        GoogleOrder::Start => (m.start_time, m.id.0),
        GoogleOrder::Updated => (m.updated_at, m.id.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32hex_ids_are_5_to_1024_of_a_to_v_and_digits() {
        assert!(valid_event_id("abcde"));
        assert!(valid_event_id("0123456789abcdefghijklmnopqrstuv"));
        assert!(!valid_event_id("abcd"));
        assert!(!valid_event_id("abcdw"));
        assert!(!valid_event_id("ABCDE"));
        assert!(valid_event_id(&Uuid::now_v7().simple().to_string()));
    }

    #[test]
    fn a_body_names_every_bad_member() {
        let body = json!({
            "start": {"dateTime": "tomorrow"},
            "summary": 42,
            "reminders": {"useDefault": false, "overrides": [{"method": "sms", "minutes": 99999}]},
            "eventType": "focusTime",
            "conferenceData": {"createRequest": {}},
            "recurrence": [42],
            "source": {"url": "ftp://x"},
        });
        let err = parse_event(body.as_object().unwrap(), Mode::Insert, false)
            .err()
            .unwrap();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "summary",
            "end.dateTime",
            "eventType",
            "conferenceData",
            "recurrence[0]",
            "reminders.overrides[0].method",
            "reminders.overrides[0].minutes",
            "source.url",
        ] {
            assert!(fields.contains(&f), "{f} not in {fields:?}");
        }
    }
}
