//! The one time parser. Instants arrive as RFC 3339 / ISO 8601 strings, with an offset, or as
//! local wall-clock times read in a named IANA zone. A local time that a DST change skips or
//! repeats is an error that says so; a local time with no zone to read it in is an error too
//! (never silently UTC: an agent that forgot the zone would book the wrong hour).

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SubsecRound,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// A validated IANA time zone, e.g. `Europe/Rome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// Parses an IANA zone name exactly as the tz database spells it.
    pub fn parse(name: &str) -> Result<Self, TimeError> {
        Tz::from_str(name.trim())
            .map(Zone)
            .map_err(|_| TimeError::UnknownZone(name.to_string()))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The instant of a local wall-clock time in this zone, refusing DST gaps and overlaps.
    pub fn instant(&self, local: NaiveDateTime) -> Result<DateTime<Utc>, TimeError> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::None => Err(TimeError::Nonexistent {
                local,
                zone: self.name(),
            }),
            LocalResult::Ambiguous(earlier, later) => Err(TimeError::Ambiguous {
                local,
                zone: self.name(),
                earlier: earlier.with_timezone(&Utc),
                later: later.with_timezone(&Utc),
            }),
        }
    }

    /// The instant of a local time for schedule boundaries: a nonexistent time maps to the
    /// instant the gap ends, an ambiguous one to the earlier instant.
    pub fn instant_lenient(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.instant(local) {
            Ok(t) => t,
            Err(TimeError::Ambiguous { earlier, .. }) => earlier,
            Err(_) => {
                // Walk forward minute by minute to the end of the gap (gaps are at most a few hours).
                let mut probe = local;
                loop {
                    probe += chrono::Duration::minutes(1);
                    match self.instant(probe) {
                        Ok(t) | Err(TimeError::Ambiguous { earlier: t, .. }) => return t,
                        Err(_) => continue,
                    }
                }
            }
        }
    }

    /// Midnight at the start of a local date (or the first instant of that date after a gap).
    pub fn start_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        self.instant_lenient(date.and_time(NaiveTime::MIN))
    }
}

/// `0001-01-01T00:00:00Z`, the first instant Quando stores.
pub const EARLIEST_SECS: i64 = -62_135_596_800;
/// `9999-12-31T23:59:59Z`, the last instant Quando stores. Both databases write later instants
/// with a five-digit year (`+10000-...`) that their own parsers refuse and that SQLite's text
/// comparison sorts before `9999-...`, so nothing past it may be stored or printed.
pub const LATEST_SECS: i64 = 253_402_300_799;

/// Whether an instant lies in years 0001 to 9999 (UTC): the range every time Quando stores,
/// compares or prints must keep to.
pub fn storable(t: DateTime<Utc>) -> bool {
    (EARLIEST_SECS..=LATEST_SECS).contains(&t.timestamp())
}

/// The first storable instant.
pub fn earliest() -> DateTime<Utc> {
    DateTime::from_timestamp(EARLIEST_SECS, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The last storable instant.
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(LATEST_SECS, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Why a time could not be read. Messages are written for the API caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    Malformed(String),
    MissingOffset(String),
    FractionalSeconds(String),
    LeapSecond(String),
    OutOfRange(String),
    UnknownZone(String),
    Nonexistent {
        local: NaiveDateTime,
        zone: &'static str,
    },
    Ambiguous {
        local: NaiveDateTime,
        zone: &'static str,
        earlier: DateTime<Utc>,
        later: DateTime<Utc>,
    },
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Malformed(s) => write!(
                f,
                "'{s}' is not an ISO 8601 date-time; use e.g. 2026-04-15T14:00:00Z or 2026-04-15T16:00:00+02:00"
            ),
            TimeError::MissingOffset(s) => write!(
                f,
                "'{s}' has no UTC offset; add one (e.g. Z or +02:00) or name a timezone to read it in"
            ),
            TimeError::FractionalSeconds(s) => {
                write!(f, "'{s}' has fractional seconds; times are whole seconds")
            }
            TimeError::LeapSecond(s) => write!(
                f,
                "'{s}' is a leap second (:60); leap seconds are not supported, use :59 or the next minute's :00"
            ),
            TimeError::OutOfRange(s) => write!(
                f,
                "'{s}' is outside the years 0001 to 9999 (in UTC), the times Quando can store"
            ),
            TimeError::UnknownZone(s) => write!(
                f,
                "'{s}' is not an IANA time zone; use a name such as Europe/Rome or America/New_York"
            ),
            TimeError::Nonexistent { local, zone } => write!(
                f,
                "{} does not exist in {zone}: the clocks skip it at a daylight-saving change; give an offset or another time",
                local.format("%Y-%m-%dT%H:%M:%S")
            ),
            TimeError::Ambiguous {
                local,
                zone,
                earlier,
                later,
            } => write!(
                f,
                "{} is ambiguous in {zone}: it happens twice at a daylight-saving change ({} and {}); give an offset",
                local.format("%Y-%m-%dT%H:%M:%S"),
                format_utc(*earlier),
                format_utc(*later)
            ),
        }
    }
}

impl std::error::Error for TimeError {}

/// Reads an instant. With an offset (`Z`, `+02:00`) the zone is not consulted; without one the
/// local time is read in `zone`, or refused when the request named no zone.
pub fn parse_instant(input: &str, zone: Option<Zone>) -> Result<DateTime<Utc>, TimeError> {
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_range(whole_seconds(t.with_timezone(&Utc), s)?, s);
    }
    // ISO 8601 allows the seconds to be left out: 2026-04-15T14:00Z, 2026-04-15T14:00+02:00.
    if let Some(t) = parse_offset_without_seconds(s) {
        return in_range(t, s);
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or_else(|| TimeError::Malformed(input.to_string()))?;
    if local.nanosecond() >= 1_000_000_000 {
        return Err(TimeError::LeapSecond(input.to_string()));
    }
    if local.nanosecond() != 0 {
        return Err(TimeError::FractionalSeconds(input.to_string()));
    }
    match zone {
        Some(zone) => in_range(zone.instant(local)?, s),
        None => Err(TimeError::MissingOffset(input.to_string())),
    }
}

fn in_range(t: DateTime<Utc>, input: &str) -> Result<DateTime<Utc>, TimeError> {
    if storable(t) {
        Ok(t)
    } else {
        Err(TimeError::OutOfRange(input.to_string()))
    }
}

fn parse_offset_without_seconds(s: &str) -> Option<DateTime<Utc>> {
    let (head, tail) = s.split_at_checked(16)?;
    if !matches!(tail.chars().next(), Some('Z' | 'z' | '+' | '-')) {
        return None;
    }
    let with_seconds = format!("{head}:00{tail}");
    DateTime::parse_from_rfc3339(&with_seconds)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn whole_seconds(t: DateTime<Utc>, input: &str) -> Result<DateTime<Utc>, TimeError> {
    // chrono reads `:60` as the 59th second with a nanosecond part of a second or more.
    if t.nanosecond() >= 1_000_000_000 {
        return Err(TimeError::LeapSecond(input.to_string()));
    }
    if t.timestamp_subsec_nanos() != 0 {
        return Err(TimeError::FractionalSeconds(input.to_string()));
    }
    Ok(t)
}

/// Reads a calendar date written exactly `YYYY-MM-DD` (years 0001 to 9999): no single-digit
/// months or days, no time, no trailing text, nothing that merely starts like a date.
pub fn parse_date(input: &str) -> Result<NaiveDate, String> {
    let bad = || format!("'{input}' is not a date; use YYYY-MM-DD, e.g. 2026-12-24");
    let b = input.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| input.get(range).and_then(|p| p.parse().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(bad());
    };
    let year = i32::try_from(year).map_err(|_| bad())?;
    if year < 1 {
        return Err(bad());
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        format!("'{input}' is not a date that exists; use YYYY-MM-DD, e.g. 2026-12-24")
    })
}

/// The one output format: UTC, seconds precision, `Z`.
pub fn format_utc(t: DateTime<Utc>) -> String {
    format_wall(t.naive_utc(), "Z").unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A local time with its offset, seconds precision (`2027-04-15T16:00:00+02:00`).
pub fn format_local<Z: TimeZone>(t: &DateTime<Z>) -> String
where
    Z::Offset: fmt::Display,
{
    let offset = t.offset().fix().local_minus_utc();
    let (sign, abs) = if offset < 0 {
        ('-', -offset)
    } else {
        ('+', offset)
    };
    // As chrono's `%:z`: whole minutes, a local mean time's seconds rounded.
    let minutes = (abs + 30) / 60;
    let suffix = format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60);
    format_wall(t.naive_local(), &suffix)
        .unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// `YYYY-MM-DDTHH:MM:SS` and `suffix`, written directly: chrono's `format` parses its pattern on
/// every call, which was a few percent of a list answer's CPU. `None` for what only the pattern
/// writes right (years outside 0000-9999, a leap second), left to chrono.
fn format_wall(t: NaiveDateTime, suffix: &str) -> Option<String> {
    use std::fmt::Write;
    if !(0..=9999).contains(&t.year()) || t.nanosecond() >= 1_000_000_000 {
        return None;
    }
    let mut s = String::with_capacity(19 + suffix.len());
    write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{suffix}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
    .ok()?;
    Some(s)
}

/// The current instant, truncated to whole seconds like every stored time.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_formatting_writes_what_chronos_pattern_writes() {
        let mut t = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let end = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let zones: [Tz; 4] = [
            chrono_tz::Europe::Rome,
            chrono_tz::America::St_Johns,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Pacific::Chatham,
        ];
        let mut n = 0u64;
        while t < end {
            assert_eq!(format_utc(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            for z in zones {
                let local = t.with_timezone(&z);
                assert_eq!(
                    format_local(&local),
                    local.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
                );
            }
            n += 1;
            // An uneven step, so every field takes many values.
            t += chrono::Duration::seconds(7_919_993 + (n % 86_400) as i64 * 37);
        }
        assert!(n > 30_000, "{n}");
        let early =
            DateTime::parse_from_rfc3339("-0001-06-01T00:00:00Z").map(|t| t.with_timezone(&Utc));
        if let Ok(early) = early {
            assert_eq!(
                format_utc(early),
                early.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
        }
    }

    fn rome() -> Option<Zone> {
        Some(Zone::parse("Europe/Rome").unwrap())
    }

    #[test]
    fn an_instant_with_z_or_an_offset_is_read_without_a_zone() {
        assert_eq!(
            format_utc(parse_instant("2026-04-15T14:00:00Z", None).unwrap()),
            "2026-04-15T14:00:00Z"
        );
        assert_eq!(
            format_utc(parse_instant("2026-04-15T16:00:00+02:00", None).unwrap()),
            "2026-04-15T14:00:00Z"
        );
        assert_eq!(
            format_utc(parse_instant("2026-04-15T16:00+02:00", None).unwrap()),
            "2026-04-15T14:00:00Z"
        );
    }

    #[test]
    fn an_offset_wins_over_the_named_zone() {
        let t = parse_instant("2026-04-15T14:00:00Z", rome()).unwrap();
        assert_eq!(format_utc(t), "2026-04-15T14:00:00Z");
    }

    #[test]
    fn a_local_time_is_read_in_the_named_zone_on_both_sides_of_dst() {
        assert_eq!(
            format_utc(parse_instant("2026-01-15T10:00:00", rome()).unwrap()),
            "2026-01-15T09:00:00Z"
        );
        assert_eq!(
            format_utc(parse_instant("2026-07-15T10:00", rome()).unwrap()),
            "2026-07-15T08:00:00Z"
        );
    }

    #[test]
    fn a_local_time_without_a_zone_is_refused_never_read_as_utc() {
        assert!(matches!(
            parse_instant("2026-04-15T14:00:00", None),
            Err(TimeError::MissingOffset(_))
        ));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_does_not_exist() {
        let err = parse_instant("2026-03-29T02:30:00", rome()).unwrap_err();
        assert!(matches!(err, TimeError::Nonexistent { .. }));
        assert!(err.to_string().contains("does not exist in Europe/Rome"));
    }

    #[test]
    fn a_local_time_in_the_autumn_overlap_is_ambiguous() {
        let err = parse_instant("2026-10-25T02:30:00", rome()).unwrap_err();
        assert!(err.to_string().contains("ambiguous in Europe/Rome"));
        assert!(err.to_string().contains("2026-10-25T00:30:00Z"));
        assert!(err.to_string().contains("2026-10-25T01:30:00Z"));
    }

    #[test]
    fn garbage_and_fractional_seconds_are_refused() {
        assert!(matches!(
            parse_instant("yesterday", None),
            Err(TimeError::Malformed(_))
        ));
        assert!(matches!(
            parse_instant("2026-02-30T10:00:00Z", None),
            Err(TimeError::Malformed(_))
        ));
        assert!(matches!(
            parse_instant("2026-04-15T14:00:00.250Z", None),
            Err(TimeError::FractionalSeconds(_))
        ));
        assert!(parse_instant("2026-04-15T14:00:00.000Z", None).is_ok());
    }

    #[test]
    fn a_leap_second_is_refused_with_a_message_that_says_so() {
        for input in ["2026-12-31T23:59:60Z", "2026-12-31T23:59:60+00:00"] {
            let err = parse_instant(input, None).unwrap_err();
            assert!(matches!(err, TimeError::LeapSecond(_)), "{input}: {err:?}");
            assert!(err.to_string().contains("leap seconds are not supported"));
        }
        let err = parse_instant("2026-12-31T23:59:60", Some(Zone::UTC)).unwrap_err();
        assert!(matches!(err, TimeError::LeapSecond(_)), "{err:?}");
    }

    #[test]
    fn an_instant_outside_years_0001_to_9999_in_utc_is_refused() {
        assert_eq!(
            format_utc(parse_instant("9999-12-31T23:59:59Z", None).unwrap()),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            format_utc(parse_instant("0001-01-01T00:00:00Z", None).unwrap()),
            "0001-01-01T00:00:00Z"
        );
        for input in [
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:30-01:00",
            "0001-01-01T00:30:00+01:00",
        ] {
            let err = parse_instant(input, None).unwrap_err();
            assert!(matches!(err, TimeError::OutOfRange(_)), "{input}: {err:?}");
        }
        let new_york = Zone::parse("America/New_York").ok();
        assert!(matches!(
            parse_instant("9999-12-31T20:00:00", new_york),
            Err(TimeError::OutOfRange(_))
        ));
        assert_eq!(format_utc(earliest()), "0001-01-01T00:00:00Z");
        assert_eq!(format_utc(latest()), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn dates_are_strictly_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2026-01-05").unwrap(),
            NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()
        );
        assert!(parse_date("0001-01-01").is_ok());
        assert!(parse_date("9999-12-31").is_ok());
        for bad in [
            "2026-1-5",
            "2026-01-5",
            "2026-01-05T00:00",
            "2026-01-05 ",
            " 2026-01-05",
            "2026-01-05x",
            "+2026-01-05",
            "2026/01/05",
            "2026-02-30",
            "0000-01-01",
            "20260105",
            "",
            "２０２６-01-05",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(
            Zone::parse("America/New_York").unwrap().name(),
            "America/New_York"
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("CEST").is_err());
        assert!(Zone::parse("").is_err());
    }

    #[test]
    fn schedule_boundaries_in_a_gap_move_to_the_end_of_the_gap() {
        let zone = Zone::parse("Europe/Rome").unwrap();
        let local =
            NaiveDateTime::parse_from_str("2026-03-29T02:30:00", "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            format_utc(zone.instant_lenient(local)),
            "2026-03-29T01:00:00Z"
        );
        let ambiguous =
            NaiveDateTime::parse_from_str("2026-10-25T02:30:00", "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            format_utc(zone.instant_lenient(ambiguous)),
            "2026-10-25T00:30:00Z"
        );
    }

    /// Every case of the independently computed DST vectors (testdata/README.md) (eleven zones, 2026-2028).
    #[test]
    fn the_parser_agrees_with_every_dst_vector() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/dst-vectors.json");
        let text =
            std::fs::read_to_string(path).expect("testdata/dst-vectors.json in the repository");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 700);
        for case in cases {
            let zone = Zone::parse(case["zone"].as_str().unwrap()).unwrap();
            let local = case["local"].as_str().unwrap();
            let got = parse_instant(local, Some(zone));
            match case["kind"].as_str().unwrap() {
                "unique" => assert_eq!(
                    got.as_ref().map(|t| format_utc(*t)).ok(),
                    case["utc"].as_str().map(str::to_string),
                    "{case}"
                ),
                "nonexistent" => assert!(
                    matches!(got, Err(TimeError::Nonexistent { .. })),
                    "{case}: {got:?}"
                ),
                "ambiguous" => match got {
                    Err(TimeError::Ambiguous { earlier, later, .. }) => {
                        assert_eq!(
                            format_utc(earlier),
                            case["earlier"].as_str().unwrap(),
                            "{case}"
                        );
                        assert_eq!(format_utc(later), case["later"].as_str().unwrap(), "{case}");
                    }
                    other => panic!("{case}: {other:?}"),
                },
                kind => panic!("unknown kind {kind}"),
            }
        }
    }
}
