//! iCalendar (RFC 5545) text for calendar feeds: content lines (escaped, folded at 75 octets,
//! CRLF) and a `VTIMEZONE` for a zone over a window, written from the zone's actual offset
//! changes in the tz database, so a client that does not know the zone name still places every
//! local time right. Pure functions; the feed builds on them.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName};

use super::details::{Attendee, ResponseStatus};
use super::time::Zone;

/// RFC 5545 3.1: lines longer than 75 octets (excluding the line break) are folded.
const MAX_LINE_OCTETS: usize = 75;

/// Writes one content line `name` + `:` + `value` (the value already escaped where it is
/// TEXT), folded at 75 octets without splitting a UTF-8 character, ending in CRLF.
pub fn push_line(out: &mut String, name: &str, value: &str) {
    let line = format!("{name}:{value}");
    let mut width = 0;
    for ch in line.chars() {
        let len = ch.len_utf8();
        if width + len > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            // The continuation's leading space counts toward its 75 octets.
            width = 1;
        }
        out.push(ch);
        width += len;
    }
    out.push_str("\r\n");
}

/// A TEXT value escaped (RFC 5545 3.3.11): backslash, semicolon and comma get a backslash,
/// line breaks become `\n`, other control characters are dropped.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (`CN=...`): quoted, since names carry commas, colons and semicolons; a
/// double quote cannot appear inside one (RFC 5545 3.2) and is replaced by a single quote.
pub fn quote_param(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    format!("\"{clean}\"")
}

/// `19970714T173000Z`
pub fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `19970714T133000`, a local time for `DTSTART;TZID=...`.
pub fn local_stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

/// One change of a zone's offset from UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub from: FixedOffset,
    pub to: FixedOffset,
    /// The abbreviation in force after it (`CEST`), when the tz database has one.
    pub name: Option<String>,
    /// Whether daylight saving time is in force after it.
    pub daylight: bool,
}

/// The zone's offset changes in `[from, to)`, found by comparing the offset a day apart and
/// narrowing each change down to the second (the tz database's resolution).
pub fn transitions(zone: Zone, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
    let offset_at = |t: DateTime<Utc>| zone.0.offset_from_utc_datetime(&t.naive_utc()).fix();
    let mut found = Vec::new();
    let mut probe = from;
    while probe < to {
        let next = (probe + Duration::days(1)).min(to);
        let (before, after) = (offset_at(probe), offset_at(next));
        if before != after {
            // The first whole second at which the offset is `after`'s is in (probe, next].
            let (mut low, mut high) = (probe.timestamp(), next.timestamp());
            while high - low > 1 {
                let mid = low + (high - low) / 2;
                let at = DateTime::from_timestamp(mid, 0).unwrap_or(probe);
                if offset_at(at) == before {
                    low = mid;
                } else {
                    high = mid;
                }
            }
            let high = DateTime::from_timestamp(high, 0).unwrap_or(next);
            found.push(change_at(zone, high, before));
        }
        probe = next;
    }
    found
}

/// The zone's offset as it is from `at` on, reached from `from`.
fn change_at(zone: Zone, at: DateTime<Utc>, from: FixedOffset) -> Transition {
    let offset = zone.0.offset_from_utc_datetime(&at.naive_utc());
    Transition {
        at,
        from,
        to: offset.fix(),
        name: offset.abbreviation().map(str::to_string),
        daylight: !offset.dst_offset().is_zero(),
    }
}

/// `+0200`, `-0330` (RFC 5545 3.3.14; seconds when the offset has them).
pub fn offset_text(offset: FixedOffset) -> String {
    let total = offset.local_minus_utc();
    let sign = if total < 0 { '-' } else { '+' };
    let abs = total.unsigned_abs();
    let (hours, minutes, seconds) = (abs / 3600, abs / 60 % 60, abs % 60);
    if seconds == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{seconds:02}")
    }
}

/// A `VTIMEZONE` for `zone` valid over `[from, to)`: the offset in force at `from`, then one
/// `STANDARD` or `DAYLIGHT` component per change in the window, each starting at the local
/// time (in the offset before it) at which it happens, as RFC 5545 3.6.5 has them.
pub fn push_vtimezone(out: &mut String, zone: Zone, from: DateTime<Utc>, to: DateTime<Utc>) {
    push_line(out, "BEGIN", "VTIMEZONE");
    push_line(out, "TZID", zone.name());
    let initial = zone.0.offset_from_utc_datetime(&from.naive_utc()).fix();
    let mut components = vec![change_at(zone, from, initial)];
    components.extend(transitions(zone, from, to));
    for change in components {
        let kind = if change.daylight {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        push_line(out, "BEGIN", kind);
        let local =
            change.at.naive_utc() + Duration::seconds(i64::from(change.from.local_minus_utc()));
        push_line(out, "DTSTART", &local_stamp(local));
        push_line(out, "TZOFFSETFROM", &offset_text(change.from));
        push_line(out, "TZOFFSETTO", &offset_text(change.to));
        if let Some(name) = change.name.as_deref().filter(|n| !n.is_empty()) {
            push_line(out, "TZNAME", &escape_text(name));
        }
        push_line(out, "END", kind);
    }
    push_line(out, "END", "VTIMEZONE");
}

/// The start of a feed: `BEGIN:VCALENDAR` and the calendar's properties.
pub fn push_calendar_start(out: &mut String, name: &str) {
    push_line(out, "BEGIN", "VCALENDAR");
    push_line(out, "VERSION", "2.0");
    push_line(out, "PRODID", "-//Quando//Quando calendar feed//EN");
    push_line(out, "CALSCALE", "GREGORIAN");
    push_line(out, "METHOD", "PUBLISH");
    push_line(out, "X-WR-CALNAME", &escape_text(name));
}

pub fn push_calendar_end(out: &mut String) {
    push_line(out, "END", "VCALENDAR");
}

/// When an event happens, as a feed writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// Instants, written as local times in the event's zone (`DTSTART;TZID=...`).
    Timed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Whole days, the end exclusive (`DTSTART;VALUE=DATE`).
    AllDay {
        start: chrono::NaiveDate,
        end: chrono::NaiveDate,
    },
}

/// An event's feed status (`STATUS`): a cancelled event stays in the feed, marked, so a
/// subscribed calendar removes it rather than keeping a stale copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

/// One `VEVENT`: a single event, a recurring series' master (with `rule` and `exdates`), or an
/// instance that differs from its series (with `recurrence_id`, its original start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub uid: String,
    pub sequence: i32,
    pub stamp: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub zone: Zone,
    pub when: When,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub attendees: Vec<Attendee>,
    pub status: FeedStatus,
    pub transparent: bool,
    /// The `RRULE` value (`FREQ=WEEKLY;BYDAY=TU`), for a series' master.
    pub rule: Option<String>,
    /// Starts of the series' instances that its rule does not make (`RDATE`).
    pub rdates: Vec<DateTime<Utc>>,
    /// Starts of the series' instances that do not happen.
    pub exdates: Vec<DateTime<Utc>>,
    pub recurrence_id: Option<DateTime<Utc>>,
}

/// `19970714`
fn date_stamp(d: chrono::NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// One property holding instants of `event`, written as its start is: local dates for an
/// all-day event, UTC for a UTC event, else local times with the event's `TZID`.
fn push_instants(out: &mut String, name: &str, event: &FeedEvent, instants: &[DateTime<Utc>]) {
    let zone = event.zone;
    let (param, values): (String, Vec<String>) = match event.when {
        When::AllDay { .. } => (
            ";VALUE=DATE".into(),
            instants
                .iter()
                .map(|t| date_stamp(t.with_timezone(&zone.0).date_naive()))
                .collect(),
        ),
        When::Timed { .. } if zone == Zone::UTC => (
            String::new(),
            instants.iter().map(|t| utc_stamp(*t)).collect(),
        ),
        When::Timed { .. } => (
            format!(";TZID={}", zone.name()),
            instants
                .iter()
                .map(|t| local_stamp(t.with_timezone(&zone.0).naive_local()))
                .collect(),
        ),
    };
    push_line(out, &format!("{name}{param}"), &values.join(","));
}

fn partstat(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::NeedsAction => "NEEDS-ACTION",
        ResponseStatus::Accepted => "ACCEPTED",
        ResponseStatus::Declined => "DECLINED",
        ResponseStatus::Tentative => "TENTATIVE",
    }
}

/// Writes one `VEVENT`. Times are local times in the event's own zone (its `VTIMEZONE` must be
/// in the feed), or UTC for a UTC event; whole days are dates.
pub fn push_vevent(out: &mut String, event: &FeedEvent) {
    push_line(out, "BEGIN", "VEVENT");
    push_line(out, "UID", &escape_text(&event.uid));
    push_line(out, "SEQUENCE", &event.sequence.max(0).to_string());
    push_line(out, "DTSTAMP", &utc_stamp(event.stamp));
    push_line(out, "CREATED", &utc_stamp(event.created));
    push_line(out, "LAST-MODIFIED", &utc_stamp(event.last_modified));
    match &event.when {
        When::Timed { start, end } => {
            push_instants(out, "DTSTART", event, &[*start]);
            push_instants(out, "DTEND", event, &[*end]);
        }
        When::AllDay { start, end } => {
            push_line(out, "DTSTART;VALUE=DATE", &date_stamp(*start));
            push_line(out, "DTEND;VALUE=DATE", &date_stamp(*end));
        }
    }
    if let Some(original) = event.recurrence_id {
        push_instants(out, "RECURRENCE-ID", event, &[original]);
    }
    if let Some(rule) = &event.rule {
        push_line(out, "RRULE", rule);
    }
    if !event.rdates.is_empty() {
        push_instants(out, "RDATE", event, &event.rdates);
    }
    if (event.rule.is_some() || !event.rdates.is_empty()) && !event.exdates.is_empty() {
        push_instants(out, "EXDATE", event, &event.exdates);
    }
    if let Some(summary) = &event.summary {
        push_line(out, "SUMMARY", &escape_text(summary));
    }
    if let Some(description) = &event.description {
        push_line(out, "DESCRIPTION", &escape_text(description));
    }
    if let Some(location) = &event.location {
        push_line(out, "LOCATION", &escape_text(location));
    }
    for attendee in &event.attendees {
        let mut name = String::from("ATTENDEE");
        if let Some(cn) = attendee.name.as_deref().filter(|n| !n.trim().is_empty()) {
            name.push_str(&format!(";CN={}", quote_param(cn)));
        }
        name.push_str(&format!(
            ";ROLE={};PARTSTAT={}",
            if attendee.optional {
                "OPT-PARTICIPANT"
            } else {
                "REQ-PARTICIPANT"
            },
            partstat(attendee.response_status)
        ));
        push_line(out, &name, &format!("mailto:{}", attendee.email));
    }
    push_line(
        out,
        "STATUS",
        match event.status {
            FeedStatus::Confirmed => "CONFIRMED",
            FeedStatus::Tentative => "TENTATIVE",
            FeedStatus::Cancelled => "CANCELLED",
        },
    );
    push_line(
        out,
        "TRANSP",
        if event.transparent {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        },
    );
    push_line(out, "END", "VEVENT");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The zone's changes during 2027.
    fn changes_in_2027(zone: &str) -> Vec<Transition> {
        let zone = Zone::parse(zone).unwrap();
        transitions(
            zone,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        )
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let mut out = String::new();
        let value = "è".repeat(100);
        push_line(&mut out, "SUMMARY", &value);
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        for line in &lines[1..] {
            assert!(line.starts_with(' '));
        }
        let unfolded: String = out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{value}"));
    }

    #[test]
    fn short_lines_are_written_whole_with_crlf() {
        let mut out = String::new();
        push_line(&mut out, "VERSION", "2.0");
        assert_eq!(out, "VERSION:2.0\r\n");
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_line_breaks() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg\u{7}h"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ngh"
        );
    }

    #[test]
    fn parameter_values_are_quoted_and_lose_double_quotes() {
        assert_eq!(
            quote_param("Rossi, Mario: \"Super\""),
            "\"Rossi, Mario: 'Super'\""
        );
    }

    #[test]
    fn offsets_are_written_with_sign_hours_and_minutes() {
        assert_eq!(offset_text(FixedOffset::east_opt(7200).unwrap()), "+0200");
        assert_eq!(offset_text(FixedOffset::west_opt(12600).unwrap()), "-0330");
        assert_eq!(offset_text(FixedOffset::east_opt(0).unwrap()), "+0000");
        assert_eq!(
            offset_text(FixedOffset::east_opt(3600 + 5).unwrap()),
            "+010005"
        );
    }

    #[test]
    fn rome_changes_twice_in_2027_at_the_exact_seconds() {
        let found = changes_in_2027("Europe/Rome");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].at, utc("2027-03-28T01:00:00Z"));
        assert_eq!(offset_text(found[0].from), "+0100");
        assert_eq!(offset_text(found[0].to), "+0200");
        assert!(found[0].daylight);
        assert_eq!(found[0].name.as_deref(), Some("CEST"));
        assert_eq!(found[1].at, utc("2027-10-31T01:00:00Z"));
        assert!(!found[1].daylight);
        assert_eq!(found[1].name.as_deref(), Some("CET"));
    }

    #[test]
    fn a_zone_without_daylight_saving_has_no_changes() {
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        assert!(
            transitions(
                tokyo,
                utc("2027-01-01T00:00:00Z"),
                utc("2029-01-01T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn the_vtimezone_starts_each_change_at_its_local_time_in_the_old_offset() {
        let mut out = String::new();
        let rome = Zone::parse("Europe/Rome").unwrap();
        push_vtimezone(
            &mut out,
            rome,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        let expected = [
            "BEGIN:VTIMEZONE",
            "TZID:Europe/Rome",
            "BEGIN:STANDARD",
            "DTSTART:20270101T010000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0100",
            "TZNAME:CET",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:20270328T020000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "TZNAME:CEST",
            "END:DAYLIGHT",
            "BEGIN:STANDARD",
            "DTSTART:20271031T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "TZNAME:CET",
            "END:STANDARD",
            "END:VTIMEZONE",
        ];
        assert_eq!(out, expected.join("\r\n") + "\r\n");
    }

    #[test]
    fn a_southern_zone_with_a_half_hour_offset_gets_its_changes() {
        let found = changes_in_2027("Australia/Adelaide");
        assert_eq!(found.len(), 2);
        assert_eq!(offset_text(found[0].from), "+1030");
        assert_eq!(offset_text(found[0].to), "+0930");
        assert!(!found[0].daylight);
        assert!(found[1].daylight);
    }

    fn rome_event() -> FeedEvent {
        FeedEvent {
            uid: "0196a1b2@quando".into(),
            sequence: 2,
            stamp: utc("2027-04-01T08:00:00Z"),
            created: utc("2027-03-01T08:00:00Z"),
            last_modified: utc("2027-03-02T08:00:00Z"),
            zone: Zone::parse("Europe/Rome").unwrap(),
            when: When::Timed {
                start: utc("2027-04-15T12:00:00Z"),
                end: utc("2027-04-15T12:30:00Z"),
            },
            summary: Some("Taglio, shampoo".into()),
            description: Some("Line one\nline two".into()),
            location: None,
            attendees: vec![Attendee {
                id: None,
                name: Some("Bianchi, Laura".into()),
                email: "laura@example.com".into(),
                optional: true,
                response_status: ResponseStatus::Accepted,
            }],
            status: FeedStatus::Confirmed,
            transparent: false,
            rule: None,
            rdates: vec![],
            exdates: vec![],
            recurrence_id: None,
        }
    }

    fn lines(out: &str) -> Vec<String> {
        out.replace("\r\n ", "")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_timed_event_is_written_in_its_own_zone_with_attendees_and_status() {
        let mut out = String::new();
        push_vevent(&mut out, &rome_event());
        assert_eq!(
            lines(&out),
            [
                "BEGIN:VEVENT",
                "UID:0196a1b2@quando",
                "SEQUENCE:2",
                "DTSTAMP:20270401T080000Z",
                "CREATED:20270301T080000Z",
                "LAST-MODIFIED:20270302T080000Z",
                "DTSTART;TZID=Europe/Rome:20270415T140000",
                "DTEND;TZID=Europe/Rome:20270415T143000",
                "SUMMARY:Taglio\\, shampoo",
                "DESCRIPTION:Line one\\nline two",
                "ATTENDEE;CN=\"Bianchi, Laura\";ROLE=OPT-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:laura@example.com",
                "STATUS:CONFIRMED",
                "TRANSP:OPAQUE",
                "END:VEVENT",
            ]
        );
    }

    #[test]
    fn a_cancelled_all_day_event_stays_in_the_feed_as_dates_marked_cancelled() {
        let mut event = rome_event();
        event.when = When::AllDay {
            start: chrono::NaiveDate::from_ymd_opt(2027, 3, 28).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2027, 3, 29).unwrap(),
        };
        event.status = FeedStatus::Cancelled;
        event.transparent = true;
        let mut out = String::new();
        push_vevent(&mut out, &event);
        let got = lines(&out);
        assert!(got.contains(&"DTSTART;VALUE=DATE:20270328".to_string()));
        assert!(got.contains(&"DTEND;VALUE=DATE:20270329".to_string()));
        assert!(got.contains(&"STATUS:CANCELLED".to_string()));
        assert!(got.contains(&"TRANSP:TRANSPARENT".to_string()));
    }

    #[test]
    fn a_series_master_carries_its_rule_and_local_exdates_and_an_override_its_recurrence_id() {
        let mut master = rome_event();
        master.rule = Some("FREQ=WEEKLY;BYDAY=TH;COUNT=10".into());
        // 14:00 in Rome on 1 April (CEST) and on 25 March (CET): the same local time.
        master.exdates = vec![utc("2027-03-25T13:00:00Z"), utc("2027-04-01T12:00:00Z")];
        let mut out = String::new();
        push_vevent(&mut out, &master);
        let got = lines(&out);
        assert!(got.contains(&"RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=10".to_string()));
        assert!(
            got.contains(&"EXDATE;TZID=Europe/Rome:20270325T140000,20270401T140000".to_string())
        );

        let mut dated = rome_event();
        dated.rdates = vec![utc("2027-05-01T12:00:00Z")];
        dated.exdates = vec![utc("2027-04-15T12:00:00Z")];
        let mut out = String::new();
        push_vevent(&mut out, &dated);
        let got = lines(&out);
        assert!(got.contains(&"RDATE;TZID=Europe/Rome:20270501T140000".to_string()));
        assert!(got.contains(&"EXDATE;TZID=Europe/Rome:20270415T140000".to_string()));
        assert!(!got.iter().any(|l| l.starts_with("RRULE")));

        let mut moved = rome_event();
        moved.recurrence_id = Some(utc("2027-04-08T12:00:00Z"));
        let mut out = String::new();
        push_vevent(&mut out, &moved);
        assert!(
            lines(&out).contains(&"RECURRENCE-ID;TZID=Europe/Rome:20270408T140000".to_string())
        );
    }

    #[test]
    fn a_utc_event_is_written_in_utc_without_a_zone() {
        let mut event = rome_event();
        event.zone = Zone::UTC;
        let mut out = String::new();
        push_vevent(&mut out, &event);
        assert!(lines(&out).contains(&"DTSTART:20270415T120000Z".to_string()));
    }

    #[test]
    fn a_feed_opens_and_closes_as_a_published_calendar() {
        let mut out = String::new();
        push_calendar_start(&mut out, "Chair 1; Rome");
        push_calendar_end(&mut out);
        assert_eq!(
            lines(&out),
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//Quando//Quando calendar feed//EN",
                "CALSCALE:GREGORIAN",
                "METHOD:PUBLISH",
                "X-WR-CALNAME:Chair 1\\; Rome",
                "END:VCALENDAR",
            ]
        );
    }
}
