//! iCalendar (RFC 5545) text for calendar feeds: content lines (escaped, folded at 75 octets,
//! CRLF) and a `VTIMEZONE` for a zone over a window, written from the zone's actual offset
//! changes in the tz database, so a client that does not know the zone name still places every
//! local time right. Pure functions; the feed builds on them.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName};

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
            let tz_offset = zone.0.offset_from_utc_datetime(&high.naive_utc());
            found.push(Transition {
                at: high,
                from: before,
                to: tz_offset.fix(),
                name: tz_offset.abbreviation().map(str::to_string),
                daylight: !tz_offset.dst_offset().is_zero(),
            });
        }
        probe = next;
    }
    found
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
    let initial = zone.0.offset_from_utc_datetime(&from.naive_utc());
    let mut components = vec![Transition {
        at: from,
        from: initial.fix(),
        to: initial.fix(),
        name: initial.abbreviation().map(str::to_string),
        daylight: !initial.dst_offset().is_zero(),
    }];
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

/// The UTC offset of `zone` at `t` (for writing local times).
pub fn offset_at(zone: Zone, t: DateTime<Utc>) -> FixedOffset {
    zone.0.offset_from_utc_datetime(&t.naive_utc()).fix()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
        let rome = Zone::parse("Europe/Rome").unwrap();
        let found = transitions(
            rome,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
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
        let adelaide = Zone::parse("Australia/Adelaide").unwrap();
        let found = transitions(
            adelaide,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        assert_eq!(found.len(), 2);
        assert_eq!(offset_text(found[0].from), "+1030");
        assert_eq!(offset_text(found[0].to), "+0930");
        assert!(!found[0].daylight);
        assert!(found[1].daylight);
    }
}
