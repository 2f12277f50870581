//! The richer event's fields, parsed once with their limits: attendees, owner, metadata,
//! transparency, and all-day dates. Every breach is a violation naming the field as the caller
//! spelled it (`attendees[3].email`, `metadata.crmId`). Pure; no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::contact::Email;
use super::time::Zone;
use super::violations::Violations;

/// At most this many attendees on one event.
pub const MAX_ATTENDEES: usize = 100;
/// At most this many metadata keys.
pub const MAX_METADATA_KEYS: usize = 50;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// The free `type` tag of an event (meeting, block, appointment, ...).
pub const MAX_KIND_CHARS: usize = 64;
/// An all-day event covers at most this many days.
pub const MAX_ALL_DAY_DAYS: i64 = 366;

/// An attendee's answer to the invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResponseStatus {
    NeedsAction,
    Accepted,
    Declined,
    Tentative,
}

impl ResponseStatus {
    pub fn parse(s: &str) -> Result<ResponseStatus, String> {
        match s {
            "needsAction" => Ok(ResponseStatus::NeedsAction),
            "accepted" => Ok(ResponseStatus::Accepted),
            "declined" => Ok(ResponseStatus::Declined),
            "tentative" => Ok(ResponseStatus::Tentative),
            _ => Err("must be needsAction, accepted, declined or tentative".into()),
        }
    }
}

/// Someone invited to an event. Stored as JSON beside the event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// Given when the attendee is added; older attendees may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    pub name: Option<String>,
    /// A valid address, lower-cased domain.
    pub email: String,
    #[serde(default)]
    pub optional: bool,
    pub response_status: ResponseStatus,
}

/// An attendee as a dialect received it, before parsing.
pub struct AttendeeInput<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub optional: Option<bool>,
    pub response_status: Option<&'a str>,
}

/// Parses attendees under `field` (`attendees`); records every problem in `v`.
pub fn parse_attendees(
    v: &mut Violations,
    field: &str,
    inputs: Vec<AttendeeInput<'_>>,
) -> Vec<Attendee> {
    if inputs.len() > MAX_ATTENDEES {
        v.add(field, format!("at most {MAX_ATTENDEES} attendees"));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(inputs.len());
    for (i, a) in inputs.into_iter().enumerate() {
        let at = |sub: &str| format!("{field}[{i}].{sub}");
        let email = match a.email.map(str::trim).filter(|e| !e.is_empty()) {
            None => {
                v.add(&at("email"), "is required");
                None
            }
            Some(e) => v.check(&at("email"), Email::parse(e)),
        };
        let response_status = match a.response_status {
            None => Some(ResponseStatus::NeedsAction),
            Some(s) => v.check(&at("responseStatus"), ResponseStatus::parse(s)),
        };
        let name = a.name.map(str::trim).filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.chars().count() > 200) {
            v.add(&at("name"), "must be at most 200 characters");
        }
        if let (Some(email), Some(response_status)) = (email, response_status) {
            out.push(Attendee {
                id: Some(uuid::Uuid::now_v7()),
                name: name.map(str::to_string),
                email: email.as_str().to_string(),
                optional: a.optional.unwrap_or(false),
                response_status,
            });
        }
    }
    out
}

/// Who an event belongs to: a person or an agent (a voice agent booking for a business).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerType {
    User,
    Agent,
}

impl OwnerType {
    pub fn parse(s: &str) -> Result<OwnerType, String> {
        match s {
            "user" => Ok(OwnerType::User),
            "agent" => Ok(OwnerType::Agent),
            _ => Err("must be user or agent".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::User => "user",
            OwnerType::Agent => "agent",
        }
    }
}

/// Integrators' own keys and values (CRM ids and the like), string to string.
pub type Metadata = BTreeMap<String, String>;

/// Checks metadata limits under `field` (`metadata`), naming each bad key (`metadata.crmId`).
pub fn parse_metadata(v: &mut Violations, field: &str, map: BTreeMap<String, String>) -> Metadata {
    if map.len() > MAX_METADATA_KEYS {
        v.add(field, format!("at most {MAX_METADATA_KEYS} keys"));
        return Metadata::new();
    }
    let mut ok = true;
    for (key, value) in &map {
        if key.is_empty() {
            v.add(field, "keys must not be empty");
            ok = false;
        } else if key.chars().count() > MAX_METADATA_KEY_CHARS {
            v.add(
                &format!("{field}.{key}"),
                format!("keys are at most {MAX_METADATA_KEY_CHARS} characters"),
            );
            ok = false;
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            v.add(
                &format!("{field}.{key}"),
                format!("values are at most {MAX_METADATA_VALUE_CHARS} characters"),
            );
            ok = false;
        }
    }
    if ok { map } else { Metadata::new() }
}

/// Whether an event holds its time. Transparent events block nothing and never make a slot busy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transparency {
    #[default]
    Opaque,
    Transparent,
}

impl Transparency {
    pub fn parse(s: &str) -> Result<Transparency, String> {
        match s {
            "opaque" => Ok(Transparency::Opaque),
            "transparent" => Ok(Transparency::Transparent),
            _ => Err("must be opaque or transparent".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transparency::Opaque => "opaque",
            Transparency::Transparent => "transparent",
        }
    }

    pub fn from_stored(s: &str) -> Transparency {
        if s == "transparent" {
            Transparency::Transparent
        } else {
            Transparency::Opaque
        }
    }
}

/// A problem with one field: its name and what is wrong.
pub type FieldProblem = (&'static str, String);

/// The instants an all-day event covers: from the start of `start` to the start of `end`
/// (exclusive) in `zone`. A day whose midnight a DST change skips starts when the gap ends;
/// so a day is 23 or 25 hours long around a change, exactly as the zone's clocks run.
pub fn all_day_span(
    start: NaiveDate,
    end: NaiveDate,
    zone: Zone,
) -> Result<(DateTime<Utc>, DateTime<Utc>), FieldProblem> {
    if end <= start {
        return Err((
            "endDate",
            "must be after startDate (the end date is exclusive)".into(),
        ));
    }
    if (end - start).num_days() > MAX_ALL_DAY_DAYS {
        return Err((
            "endDate",
            format!("an all-day event covers at most {MAX_ALL_DAY_DAYS} days"),
        ));
    }
    let (first, last) = (zone.start_of_day(start), zone.start_of_day(end));
    if !super::time::storable(first) {
        return Err(("startDate", "must lie in years 0001 to 9999".into()));
    }
    if !super::time::storable(last) {
        return Err(("endDate", "must lie in years 0001 to 9999".into()));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(email: Option<&'a str>, status: Option<&'a str>) -> AttendeeInput<'a> {
        AttendeeInput {
            name: Some("Ada"),
            email,
            optional: None,
            response_status: status,
        }
    }

    #[test]
    fn attendees_name_the_index_of_each_bad_field() {
        let mut v = Violations::default();
        let parsed = parse_attendees(
            &mut v,
            "attendees",
            vec![
                input(Some("ada@example.com"), None),
                input(None, None),
                input(Some("not-an-address"), Some("maybe")),
            ],
        );
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].response_status, ResponseStatus::NeedsAction);
        let err = v.into_result().unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "attendees[1].email",
                "attendees[2].email",
                "attendees[2].responseStatus"
            ]
        );
    }

    #[test]
    fn more_than_100_attendees_are_refused() {
        let mut v = Violations::default();
        let many = (0..101)
            .map(|_| input(Some("a@example.com"), None))
            .collect();
        parse_attendees(&mut v, "attendees", many);
        assert!(!v.is_empty());
    }

    #[test]
    fn metadata_limits_name_the_key() {
        let mut v = Violations::default();
        let mut map = BTreeMap::new();
        map.insert("crmId".to_string(), "x".repeat(501));
        map.insert("k".repeat(41), "v".into());
        parse_metadata(&mut v, "metadata", map);
        let err = v.into_result().unwrap_err();
        let fields: Vec<String> = err.0.iter().map(|e| e.field.clone()).collect();
        assert!(fields.contains(&"metadata.crmId".to_string()), "{fields:?}");
        assert!(
            fields.contains(&format!("metadata.{}", "k".repeat(41))),
            "{fields:?}"
        );
        let mut v = Violations::default();
        let many = (0..51)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        parse_metadata(&mut v, "metadata", many);
        assert!(!v.is_empty());
    }

    #[test]
    fn all_day_spans_are_23_and_25_hours_on_rome_dst_days() {
        let rome = Zone::parse("Europe/Rome").unwrap();
        let d = |s| super::super::time::parse_date(s).unwrap();
        let (a, b) = all_day_span(d("2026-03-29"), d("2026-03-30"), rome).unwrap();
        assert_eq!((b - a).num_hours(), 23);
        let (a, b) = all_day_span(d("2026-10-25"), d("2026-10-26"), rome).unwrap();
        assert_eq!((b - a).num_hours(), 25);
        let (a, _) = all_day_span(d("2026-07-01"), d("2026-07-02"), rome).unwrap();
        assert_eq!(a.to_rfc3339(), "2026-06-30T22:00:00+00:00");
    }

    #[test]
    fn the_end_date_is_after_the_start_date() {
        let rome = Zone::parse("Europe/Rome").unwrap();
        let d = |s| super::super::time::parse_date(s).unwrap();
        assert!(all_day_span(d("2026-05-02"), d("2026-05-02"), rome).is_err());
    }
}

/// The descriptive fields every dialect can set on an event, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventDetails {
    pub description: Option<String>,
    /// The free `type` tag (meeting, block, appointment), at most 64 characters.
    pub kind: Option<String>,
    pub attendees: Vec<Attendee>,
    pub owner_id: Option<String>,
    pub owner_type: Option<OwnerType>,
    pub created_by: Option<String>,
    pub metadata: Metadata,
    pub transparency: Transparency,
    /// What the Google Calendar dialect keeps beside the event (other dialects leave it empty).
    pub google: GoogleFields,
}

/// An event's Google Calendar fields, parsed by the Google dialect and stored as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoogleFields {
    /// A client-chosen Google id (base32hex, 5-1024 characters), unique per calendar.
    pub gcal_id: Option<String>,
    /// The iCalendar UID the client gave (else `{id}@quando` is shown).
    pub ical_uid: Option<String>,
    /// Google-only fields kept as a JSON object (reminders, extended properties, colorId, ...).
    pub extras: Option<serde_json::Value>,
}

/// The dates of an all-day event: whole local days from `start` to `end` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllDay {
    pub start: NaiveDate,
    pub end: NaiveDate,
}
