//! Recurring events (RFC 5545): the `RRULE`, `EXRULE`, `RDATE` and `EXDATE` lines of a series,
//! expanded in the series' own zone by the `rrule` crate, so a weekly 09:00 Europe/Rome series
//! stays 09:00 local across both DST changes.
//!
//! Quando holds a series' time by materialising its instances as events, up to `HORIZON_DAYS`
//! ahead of now (extended as time passes) and at most `MAX_INSTANCES` at once: each instance is
//! then under the same no-overlap guarantee as any booking.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rrule::RRuleSet;

use super::details::AllDay;
use super::time::Zone;
use super::violations::Invalid;

/// How far ahead of now a series' instances hold their time.
pub const HORIZON_DAYS: i64 = 400;
/// The most instances a series may hold within the horizon (an hourly rule would otherwise
/// write ten thousand rows).
pub const MAX_INSTANCES: usize = 1000;
/// The most lines a `recurrence` may have.
pub const MAX_LINES: usize = 50;

/// The first occurrence of a series, as its wall-clock times in the series' zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum First {
    Timed {
        start: NaiveDateTime,
        end: NaiveDateTime,
    },
    AllDay(AllDay),
}

/// One instance of a series: where the rule put it (`original_start`, its identity within the
/// series) and the time it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub all_day: Option<AllDay>,
}

/// A parsed, validated recurrence: its lines as given (to store and return) and the set the
/// `rrule` crate expands.
#[derive(Clone, Debug)]
pub struct Recurrence {
    lines: Vec<String>,
    zone: Zone,
    first: First,
    set: RRuleSet,
}

impl Recurrence {
    /// Parses `lines` (`RRULE:...`, `EXRULE:...`, `RDATE...`, `EXDATE...`; no `DTSTART` or
    /// `DTEND`: the first occurrence gives them) for a series starting at `first` in `zone`.
    /// Problems are named `{field}[i]`.
    pub fn parse(lines: &[String], zone: Zone, first: First, field: &str) -> Result<Self, Invalid> {
        if lines.is_empty() {
            return Err(Invalid::one(
                field,
                "needs at least one RRULE or RDATE line",
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(Invalid::one(
                field,
                format!("has at most {MAX_LINES} lines"),
            ));
        }
        let mut normalised = Vec::with_capacity(lines.len());
        let mut adds = false;
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let line = line.trim();
            let (name, params, value) = split_line(line).ok_or_else(|| {
                Invalid::one(
                    &at,
                    "must be an RFC 5545 line such as RRULE:FREQ=WEEKLY;COUNT=10",
                )
            })?;
            match name.as_str() {
                "RRULE" | "EXRULE" => {
                    if !params.is_empty() {
                        return Err(Invalid::one(&at, format!("{name} takes no parameters")));
                    }
                    adds |= name == "RRULE";
                    normalised.push(format!("{name}:{value}"));
                }
                "RDATE" | "EXDATE" => {
                    adds |= name == "RDATE";
                    normalised.push(
                        date_line(&name, &params, value, zone, first)
                            .map_err(|m| Invalid::one(&at, m))?,
                    );
                }
                "DTSTART" | "DTEND" => {
                    return Err(Invalid::one(
                        &at,
                        format!("{name} is not allowed here: the event's start and end give it"),
                    ));
                }
                _ => {
                    return Err(Invalid::one(
                        &at,
                        format!(
                            "{name} is not a recurrence property (RRULE, EXRULE, RDATE or EXDATE)"
                        ),
                    ));
                }
            }
            // Each line on its own (beside a rule that makes one instance, for lines that only
            // add to or take from others), so a problem names its line.
            let line = normalised.last().expect("pushed").clone();
            let alone = if name == "RRULE" {
                vec![line]
            } else {
                vec!["RRULE:FREQ=YEARLY;COUNT=1".to_string(), line]
            };
            parse_set(zone, first, &alone).map_err(|m| Invalid::one(&at, m))?;
        }
        if !adds {
            return Err(Invalid::one(
                field,
                "needs at least one RRULE or RDATE line",
            ));
        }
        let set = parse_set(zone, first, &normalised).map_err(|m| Invalid::one(field, m))?;
        Ok(Recurrence {
            lines: lines.iter().map(|l| l.trim().to_string()).collect(),
            zone,
            first,
            set,
        })
    }

    /// The lines as the client gave them (trimmed).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    pub fn first(&self) -> First {
        self.first
    }

    /// The occurrences whose rule start lies in `[from, until)`, in order, at most `cap`; the
    /// flag says whether the rule has more before `until` than were returned.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        cap: usize,
    ) -> (Vec<Occurrence>, bool) {
        if until <= from {
            return (Vec::new(), false);
        }
        let tz = rrule::Tz::Tz(chrono_tz::Tz::UTC);
        // A little room either side: the crate's bounds are inclusive and we filter exactly.
        let set = self
            .set
            .clone()
            .after(from.with_timezone(&tz) - Duration::seconds(1))
            .before(until.with_timezone(&tz));
        let limit = u16::try_from(cap.saturating_add(2)).unwrap_or(u16::MAX);
        let result = set.all(limit);
        let mut out = Vec::new();
        let mut more = false;
        for at in result.dates {
            let at = at.with_timezone(&Utc);
            if at < from || at >= until {
                continue;
            }
            if out.len() == cap {
                more = true;
                break;
            }
            out.push(self.occurrence_at(at));
        }
        if result.limited && out.len() == cap {
            more = true;
        }
        (out, more)
    }

    /// The instance the rule puts at `original_start`.
    pub fn occurrence_at(&self, original_start: DateTime<Utc>) -> Occurrence {
        match self.first {
            First::Timed { start, end } => {
                let local = original_start.with_timezone(&self.zone.0).naive_local();
                let wall = end - start;
                let end_at = self.zone.instant_lenient(local + wall);
                let end_at = if end_at > original_start {
                    end_at
                } else {
                    original_start + wall.max(Duration::minutes(1))
                };
                Occurrence {
                    original_start,
                    start: original_start,
                    end: end_at,
                    all_day: None,
                }
            }
            First::AllDay(days) => {
                // All-day rules run on UTC midnights (see `dtstart`): the date is the UTC date.
                let date = original_start.date_naive();
                let span = days.end - days.start;
                let all_day = AllDay {
                    start: date,
                    end: date + span,
                };
                Occurrence {
                    original_start,
                    start: self.zone.start_of_day(all_day.start),
                    end: self.zone.start_of_day(all_day.end),
                    all_day: Some(all_day),
                }
            }
        }
    }

    /// The rule start of the instance given by its wall-clock start in the series' zone (a
    /// timed series) or its date (an all-day one), as Google's instance ids spell it.
    pub fn original_start_of_date(date: NaiveDate) -> DateTime<Utc> {
        Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
    }
}

/// A content line's parameters: (upper-case name, value).
type Params = Vec<(String, String)>;

/// `NAME;PARAMS:VALUE` -> (upper-case name, params, value).
fn split_line(line: &str) -> Option<(String, Params, &str)> {
    let (head, value) = line.split_once(':')?;
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    if name.is_empty() || value.trim().is_empty() {
        return None;
    }
    let mut params = Vec::new();
    for p in parts {
        let (k, v) = p.split_once('=')?;
        params.push((k.trim().to_ascii_uppercase(), v.trim().to_string()));
    }
    Some((name, params, value.trim()))
}

/// An `RDATE`/`EXDATE` line rewritten so that the crate reads every value as an instant in a
/// named zone: floating values are the series' zone, `VALUE=DATE` values of an all-day series
/// are UTC midnights (like its rule), `Z` values stay UTC.
fn date_line(
    name: &str,
    params: &[(String, String)],
    value: &str,
    zone: Zone,
    first: First,
) -> Result<String, String> {
    let mut tzid: Option<Zone> = None;
    let mut date_only = false;
    for (k, v) in params {
        match k.as_str() {
            "TZID" => {
                tzid = Some(Zone::parse(v).map_err(|e| e.to_string())?);
            }
            "VALUE" => match v.to_ascii_uppercase().as_str() {
                "DATE" => date_only = true,
                "DATE-TIME" => {}
                "PERIOD" => {
                    return Err(format!(
                        "{name} periods are not supported; give start times"
                    ));
                }
                other => return Err(format!("VALUE={other} is not DATE or DATE-TIME")),
            },
            other => return Err(format!("{name} does not take the parameter {other}")),
        }
    }
    let all_day = matches!(first, First::AllDay(_));
    let mut values = Vec::new();
    for raw in value.split(',') {
        let raw = raw.trim();
        if date_only || (all_day && raw.len() == 8) {
            let date = NaiveDate::parse_from_str(raw, "%Y%m%d")
                .map_err(|_| format!("{raw} is not a date like 20270112"))?;
            if !all_day {
                return Err(format!(
                    "{name} of a timed series needs date-times (like 20270112T090000), not the date {raw}"
                ));
            }
            values.push(format!("{}Z", date.format("%Y%m%dT000000")));
            continue;
        }
        let (text, utc) = match raw.strip_suffix('Z').or_else(|| raw.strip_suffix('z')) {
            Some(t) => (t, true),
            None => (raw, false),
        };
        let local = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
            .map_err(|_| format!("{raw} is not a date-time like 20270112T090000"))?;
        let instant = if utc {
            Utc.from_utc_datetime(&local)
        } else {
            tzid.unwrap_or(zone).instant_lenient(local)
        };
        values.push(instant.format("%Y%m%dT%H%M%SZ").to_string());
    }
    Ok(format!("{name}:{}", values.join(",")))
}

/// DTSTART for the crate: a timed series starts at its local time in its zone; an all-day one
/// on the UTC midnight of its first date (the crate's rules then run on whole days, and each
/// instance's date is read back in UTC).
fn dtstart(zone: Zone, first: First) -> String {
    match first {
        First::Timed { start, .. } => {
            format!(
                "DTSTART;TZID={}:{}",
                zone.name(),
                start.format("%Y%m%dT%H%M%S")
            )
        }
        First::AllDay(days) => format!("DTSTART:{}Z", days.start.format("%Y%m%dT000000")),
    }
}

fn parse_set(zone: Zone, first: First, lines: &[String]) -> Result<RRuleSet, String> {
    let text = format!("{}\n{}", dtstart(zone, first), lines.join("\n"));
    text.parse::<RRuleSet>().map_err(|e| {
        let message = e.to_string();
        message
            .strip_prefix("RRule parsing error: ")
            .or_else(|| message.strip_prefix("RRule validation error: "))
            .unwrap_or(&message)
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate, Timelike};

    fn rome() -> Zone {
        Zone::parse("Europe/Rome").unwrap()
    }

    fn timed(date: (i32, u32, u32), from: (u32, u32), to: (u32, u32)) -> First {
        let d = NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap();
        First::Timed {
            start: d.and_hms_opt(from.0, from.1, 0).unwrap(),
            end: d.and_hms_opt(to.0, to.1, 0).unwrap(),
        }
    }

    fn all(r: &Recurrence) -> Vec<Occurrence> {
        let from = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
        r.between(from, until, MAX_INSTANCES).0
    }

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_weekly_rome_series_stays_at_nine_local_across_both_dst_changes() {
        // 2027: Rome springs forward on 28 March and falls back on 31 October.
        let r = Recurrence::parse(
            &lines(&["RRULE:FREQ=WEEKLY;COUNT=40"]),
            rome(),
            timed((2027, 3, 1), (9, 0), (10, 0)),
            "recurrence",
        )
        .unwrap();
        let got = all(&r);
        assert_eq!(got.len(), 40);
        for o in &got {
            let local = o.start.with_timezone(&rome().0);
            assert_eq!((local.hour(), local.minute()), (9, 0), "{o:?}");
            let local_end = o.end.with_timezone(&rome().0);
            assert_eq!((local_end.hour(), local_end.minute()), (10, 0), "{o:?}");
        }
        // Before the change 09:00 is 08:00Z; after it 07:00Z; after the fall-back 08:00Z again.
        assert_eq!(
            got[0].start,
            Utc.with_ymd_and_hms(2027, 3, 1, 8, 0, 0).unwrap()
        );
        assert_eq!(
            got[4].start,
            Utc.with_ymd_and_hms(2027, 3, 29, 7, 0, 0).unwrap()
        );
        let november = got
            .iter()
            .find(|o| o.start.date_naive() == NaiveDate::from_ymd_opt(2027, 11, 1).unwrap())
            .unwrap();
        assert_eq!(november.start.hour(), 8);
    }

    #[test]
    fn a_new_york_series_follows_its_own_changes_not_europes() {
        // 2027: New York springs forward on 14 March, Europe on 28 March.
        let ny = Zone::parse("America/New_York").unwrap();
        let r = Recurrence::parse(
            &lines(&["RRULE:FREQ=DAILY;UNTIL=20270320T000000Z"]),
            ny,
            timed((2027, 3, 12), (9, 30), (10, 0)),
            "recurrence",
        )
        .unwrap();
        let got = all(&r);
        assert_eq!(got.len(), 8);
        assert_eq!(
            got[0].start,
            Utc.with_ymd_and_hms(2027, 3, 12, 14, 30, 0).unwrap()
        );
        assert_eq!(
            got[2].start,
            Utc.with_ymd_and_hms(2027, 3, 14, 13, 30, 0).unwrap()
        );
        for o in got {
            let local = o.start.with_timezone(&ny.0);
            assert_eq!((local.hour(), local.minute()), (9, 30));
        }
    }

    #[test]
    fn exdate_in_the_series_zone_or_in_utc_removes_that_instance() {
        let r = Recurrence::parse(
            &lines(&[
                "RRULE:FREQ=WEEKLY;COUNT=4",
                "EXDATE;TZID=Europe/Rome:20270308T090000",
                "EXDATE:20270315T080000Z",
            ]),
            rome(),
            timed((2027, 3, 1), (9, 0), (9, 30)),
            "recurrence",
        )
        .unwrap();
        let days: Vec<u32> = all(&r).iter().map(|o| o.start.day()).collect();
        assert_eq!(days, vec![1, 22]);
    }

    #[test]
    fn exrule_takes_out_every_instance_it_matches() {
        // Daily for two weeks, but never on a weekend.
        let r = Recurrence::parse(
            &lines(&[
                "RRULE:FREQ=DAILY;COUNT=14",
                "EXRULE:FREQ=WEEKLY;BYDAY=SA,SU",
            ]),
            rome(),
            timed((2027, 3, 1), (9, 0), (9, 30)),
            "recurrence",
        )
        .unwrap();
        let got = all(&r);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|o| {
            o.start
                .with_timezone(&rome().0)
                .weekday()
                .number_from_monday()
                <= 5
        }));
    }

    #[test]
    fn rdate_adds_an_instance_and_floating_values_are_read_in_the_series_zone() {
        let r = Recurrence::parse(
            &lines(&["RRULE:FREQ=DAILY;COUNT=2", "RDATE:20270310T150000"]),
            rome(),
            timed((2027, 3, 1), (9, 0), (10, 0)),
            "recurrence",
        )
        .unwrap();
        let got = all(&r);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2].start,
            Utc.with_ymd_and_hms(2027, 3, 10, 14, 0, 0).unwrap()
        );
        assert_eq!(
            got[2].end,
            Utc.with_ymd_and_hms(2027, 3, 10, 15, 0, 0).unwrap()
        );
    }

    #[test]
    fn an_all_day_series_covers_whole_local_days_including_a_23_hour_one() {
        let first = First::AllDay(AllDay {
            start: NaiveDate::from_ymd_opt(2027, 3, 21).unwrap(),
            end: NaiveDate::from_ymd_opt(2027, 3, 22).unwrap(),
        });
        let r = Recurrence::parse(
            &lines(&["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;VALUE=DATE:20270404"]),
            rome(),
            first,
            "recurrence",
        )
        .unwrap();
        let got = all(&r);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].all_day.unwrap().start,
            NaiveDate::from_ymd_opt(2027, 3, 28).unwrap()
        );
        // 28 March 2027 in Rome has 23 hours.
        assert_eq!(got[1].end - got[1].start, Duration::hours(23));
        assert_eq!(got[0].end - got[0].start, Duration::hours(24));
    }

    #[test]
    fn an_unbounded_rule_is_cut_at_the_cap_and_says_there_is_more() {
        let r = Recurrence::parse(
            &lines(&["RRULE:FREQ=HOURLY"]),
            Zone::UTC,
            timed((2027, 1, 1), (0, 0), (0, 30)),
            "recurrence",
        )
        .unwrap();
        let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let (got, more) = r.between(from, from + Duration::days(400), 50);
        assert_eq!(got.len(), 50);
        assert!(more);
        let (got, more) = r.between(from, from + Duration::hours(3), 50);
        assert_eq!(got.len(), 3);
        assert!(!more);
    }

    #[test]
    fn bad_lines_are_named_by_their_index() {
        let first = timed((2027, 3, 1), (9, 0), (10, 0));
        for (input, at) in [
            (vec!["RRULE:FREQ=SOMETIMES"], "recurrence[0]"),
            (
                vec!["RRULE:FREQ=DAILY", "DTSTART:20270101T000000Z"],
                "recurrence[1]",
            ),
            (vec!["RRULE:FREQ=DAILY", "X-FOO:bar"], "recurrence[1]"),
            (
                vec!["RRULE:FREQ=DAILY", "EXDATE:2027-03-02"],
                "recurrence[1]",
            ),
            (
                vec!["RRULE:FREQ=DAILY", "EXDATE;VALUE=DATE:20270302"],
                "recurrence[1]",
            ),
            (vec!["not a line"], "recurrence[0]"),
            (vec!["EXDATE:20270302T090000"], "recurrence"),
        ] {
            let err = Recurrence::parse(&lines(&input), rome(), first, "recurrence").unwrap_err();
            assert_eq!(err.0[0].field, at, "{input:?}: {err}");
        }
        let err = Recurrence::parse(&[], rome(), first, "recurrence").unwrap_err();
        assert_eq!(err.0[0].field, "recurrence");
    }
}
