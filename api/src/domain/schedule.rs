//! A calendar's working time: weekly ranges in the calendar's IANA zone plus per-date overrides.
//! `None` weekly hours means open around the clock, so calendars without hours keep working as
//! they always did. Ranges are local wall-clock times; their ends become instants in the zone
//! (a time skipped by DST maps to the end of the gap, a repeated one to its earlier instant), so
//! 09:00 stays 09:00 local on both sides of a change.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::time::{Zone, parse_date};

/// Minutes after local midnight, 0..=1440 (`24:00` only as the end of a range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(1440);

    /// `HH:MM`, 00:00 to 24:00.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a time of day; use HH:MM from 00:00 to 24:00");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A range within one local day, `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl DayRange {
    pub const ALL_DAY: DayRange = DayRange {
        start: TimeOfDay::MIDNIGHT,
        end: TimeOfDay::END_OF_DAY,
    };

    pub fn parse(start: &str, end: &str) -> Result<Self, String> {
        Self::parse_at(start, end, "").map_err(|(_, e)| e)
    }

    /// Like `parse`, naming the failing part under `path` (`path.start`, `path.end`, `path`).
    pub fn parse_at(start: &str, end: &str, path: &str) -> Result<Self, (String, String)> {
        let start = TimeOfDay::parse(start).map_err(|e| (format!("{path}.start"), e))?;
        let end = TimeOfDay::parse(end).map_err(|e| (format!("{path}.end"), e))?;
        if start == TimeOfDay::END_OF_DAY {
            return Err((
                format!("{path}.start"),
                "a range cannot start at 24:00".into(),
            ));
        }
        if start >= end {
            return Err((
                format!("{path}.end"),
                format!(
                    "the range {start}-{end} is empty: end must be after start (an overnight shift is two ranges)"
                ),
            ));
        }
        Ok(DayRange { start, end })
    }

    /// Whether two ranges share a minute; ranges that only touch (`09:00-12:00`,
    /// `12:00-17:00`) do not.
    pub fn overlaps(&self, other: &DayRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for DayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// The first range (by index) that overlaps an earlier one of the same key, with that earlier
/// one's index.
fn first_overlap<K: PartialEq>(ranges: &[(K, DayRange)]) -> Option<(usize, usize)> {
    ranges.iter().enumerate().find_map(|(i, (key, range))| {
        ranges[..i]
            .iter()
            .position(|(k, r)| k == key && r.overlaps(range))
            .map(|j| (i, j))
    })
}

/// The stored and transported form of weekly hours and overrides (the API's JSON shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyRangeDoc {
    pub day: String,
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDoc {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideDoc {
    pub date: String,
    pub ranges: Vec<RangeDoc>,
}

pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    Ok(match s {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return Err(format!("'{s}' is not a day; use monday to sunday")),
    })
}

/// When a calendar can be booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub zone: Zone,
    /// `None`: open around the clock. `Some(vec![])`: never open (but for overrides).
    pub weekly: Option<Vec<(Weekday, DayRange)>>,
    pub overrides: BTreeMap<NaiveDate, Vec<DayRange>>,
}

impl Schedule {
    pub fn always_open(zone: Zone) -> Self {
        Schedule {
            zone,
            weekly: None,
            overrides: BTreeMap::new(),
        }
    }

    /// Builds a schedule from its documents, naming the first problem with its path
    /// (`workingHours[2].end`, `dateOverrides[0].date`).
    pub fn from_docs(
        zone: Zone,
        weekly: Option<&[WeeklyRangeDoc]>,
        overrides: &[OverrideDoc],
    ) -> Result<Self, (String, String)> {
        let weekly = match weekly {
            None => None,
            Some(docs) => {
                let mut out = Vec::with_capacity(docs.len());
                for (i, d) in docs.iter().enumerate() {
                    let day =
                        parse_weekday(&d.day).map_err(|e| (format!("workingHours[{i}].day"), e))?;
                    let range =
                        DayRange::parse_at(&d.start, &d.end, &format!("workingHours[{i}]"))?;
                    out.push((day, range));
                }
                Some(out)
            }
        };
        let mut map = BTreeMap::new();
        for (i, o) in overrides.iter().enumerate() {
            let date = parse_date(&o.date).map_err(|e| (format!("dateOverrides[{i}].date"), e))?;
            let mut ranges = Vec::with_capacity(o.ranges.len());
            for (j, r) in o.ranges.iter().enumerate() {
                ranges.push(DayRange::parse_at(
                    &r.start,
                    &r.end,
                    &format!("dateOverrides[{i}].ranges[{j}]"),
                )?);
            }
            if map.insert(date, ranges).is_some() {
                return Err((
                    format!("dateOverrides[{i}].date"),
                    format!("{date} has more than one override"),
                ));
            }
        }
        Ok(Schedule {
            zone,
            weekly,
            overrides: map,
        })
    }

    /// Like `from_docs`, for hours a client sends: also refuses two ranges of one weekday, or
    /// of one override, that overlap or repeat each other (naming the later one,
    /// `workingHours[3]`, `dateOverrides[0].ranges[1]`). Each range starts a slot grid of its
    /// own, so overlapping ones would offer overlapping, off-grid slots. Stored calendars are
    /// read with `from_docs`, which keeps accepting them (their candidates are de-duplicated).
    pub fn from_new_docs(
        zone: Zone,
        weekly: Option<&[WeeklyRangeDoc]>,
        overrides: &[OverrideDoc],
    ) -> Result<Self, (String, String)> {
        let schedule = Self::from_docs(zone, weekly, overrides)?;
        if let Some(docs) = weekly {
            let ranges: Vec<(&str, DayRange)> = docs
                .iter()
                .filter_map(|d| Some((d.day.as_str(), DayRange::parse(&d.start, &d.end).ok()?)))
                .collect();
            if let Some((i, j)) = first_overlap(&ranges) {
                let ((day, later), (_, earlier)) = (ranges[i], ranges[j]);
                return Err((
                    format!("workingHours[{i}]"),
                    format!(
                        "{day} {later} overlaps workingHours[{j}] ({earlier}); the ranges of one day must not overlap (join them into one)"
                    ),
                ));
            }
        }
        for (k, o) in overrides.iter().enumerate() {
            let ranges: Vec<((), DayRange)> = o
                .ranges
                .iter()
                .filter_map(|r| Some(((), DayRange::parse(&r.start, &r.end).ok()?)))
                .collect();
            if let Some((i, j)) = first_overlap(&ranges) {
                return Err((
                    format!("dateOverrides[{k}].ranges[{i}]"),
                    format!(
                        "{} overlaps ranges[{j}] ({}) of {}; the ranges of one day must not overlap (join them into one)",
                        ranges[i].1, ranges[j].1, o.date
                    ),
                ));
            }
        }
        Ok(schedule)
    }

    /// The local ranges of a date: its override if it has one, else its weekday's ranges.
    pub fn ranges_on(&self, date: NaiveDate) -> Vec<DayRange> {
        if let Some(ranges) = self.overrides.get(&date) {
            return ranges.clone();
        }
        match &self.weekly {
            None => vec![DayRange::ALL_DAY],
            Some(weekly) => weekly
                .iter()
                .filter(|(day, _)| *day == date.weekday())
                .map(|(_, r)| *r)
                .collect(),
        }
    }

    /// Whether an override closes this date entirely.
    pub fn closed_by_override(&self, date: NaiveDate) -> bool {
        self.overrides.get(&date).is_some_and(Vec::is_empty)
    }

    /// The instant of a local time of day on a date (`24:00` is midnight of the next date).
    pub fn instant(&self, date: NaiveDate, t: TimeOfDay) -> DateTime<Utc> {
        let (date, minutes) = if t == TimeOfDay::END_OF_DAY {
            (date.checked_add_days(Days::new(1)).unwrap_or(date), 0)
        } else {
            (date, t.minutes())
        };
        let time = NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)
            .unwrap_or(NaiveTime::MIN);
        self.zone.instant_lenient(date.and_time(time))
    }

    /// The working intervals of a local date as instants; ranges that vanish in a DST gap are dropped.
    pub fn intervals_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.ranges_on(date)
            .into_iter()
            .map(|r| (self.instant(date, r.start), self.instant(date, r.end)))
            .filter(|(s, e)| s < e)
            .collect()
    }

    /// The local date of an instant in the calendar's zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.zone.0).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_hh_mm_up_to_24_00() {
        assert_eq!(TimeOfDay::parse("09:30").unwrap().minutes(), 570);
        assert_eq!(TimeOfDay::parse("24:00").unwrap(), TimeOfDay::END_OF_DAY);
        for bad in ["9:00", "24:01", "25:00", "09:60", "0900", "", "ab:cd"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_must_not_be_empty_or_start_at_24() {
        assert!(DayRange::parse("09:00", "17:00").is_ok());
        assert!(DayRange::parse("20:00", "24:00").is_ok());
        assert!(DayRange::parse("17:00", "09:00").is_err());
        assert!(DayRange::parse("09:00", "09:00").is_err());
        assert!(DayRange::parse("24:00", "24:00").is_err());
    }

    #[test]
    fn nine_stays_nine_local_across_the_rome_spring_change() {
        let zone = Zone::parse("Europe/Rome").unwrap();
        let docs = vec![
            WeeklyRangeDoc {
                day: "friday".into(),
                start: "09:00".into(),
                end: "17:00".into(),
            },
            WeeklyRangeDoc {
                day: "monday".into(),
                start: "09:00".into(),
                end: "17:00".into(),
            },
        ];
        let s = Schedule::from_docs(zone, Some(&docs), &[]).unwrap();
        let before = s.intervals_on(NaiveDate::from_ymd_opt(2026, 3, 27).unwrap());
        let after = s.intervals_on(NaiveDate::from_ymd_opt(2026, 3, 30).unwrap());
        assert_eq!(
            super::super::time::format_utc(before[0].0),
            "2026-03-27T08:00:00Z"
        );
        assert_eq!(
            super::super::time::format_utc(after[0].0),
            "2026-03-30T07:00:00Z"
        );
    }

    #[test]
    fn an_override_replaces_the_weekday_and_an_empty_one_closes_the_date() {
        let zone = Zone::UTC;
        let weekly = vec![WeeklyRangeDoc {
            day: "thursday".into(),
            start: "09:00".into(),
            end: "17:00".into(),
        }];
        let overrides = vec![
            OverrideDoc {
                date: "2026-12-24".into(),
                ranges: vec![],
            },
            OverrideDoc {
                date: "2026-12-26".into(),
                ranges: vec![RangeDoc {
                    start: "10:00".into(),
                    end: "12:00".into(),
                }],
            },
        ];
        let s = Schedule::from_docs(zone, Some(&weekly), &overrides).unwrap();
        let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        assert!(s.intervals_on(d(24)).is_empty());
        assert!(s.closed_by_override(d(24)));
        assert_eq!(s.intervals_on(d(26)).len(), 1);
        assert_eq!(s.intervals_on(d(31)).len(), 1);
        assert!(s.intervals_on(d(30)).is_empty());
        assert!(!s.closed_by_override(d(30)));
    }

    fn weekly(ranges: &[(&str, &str, &str)]) -> Vec<WeeklyRangeDoc> {
        ranges
            .iter()
            .map(|(day, start, end)| WeeklyRangeDoc {
                day: (*day).into(),
                start: (*start).into(),
                end: (*end).into(),
            })
            .collect()
    }

    #[test]
    fn overlapping_or_duplicate_ranges_of_one_weekday_are_refused_naming_the_later_one() {
        for (ranges, field) in [
            (
                vec![("monday", "09:00", "12:00"), ("monday", "11:00", "13:00")],
                "workingHours[1]",
            ),
            (
                vec![
                    ("monday", "09:00", "17:00"),
                    ("tuesday", "09:00", "17:00"),
                    ("monday", "09:00", "17:00"),
                ],
                "workingHours[2]",
            ),
            (
                vec![("friday", "08:00", "20:00"), ("friday", "10:00", "11:00")],
                "workingHours[1]",
            ),
        ] {
            let err = Schedule::from_new_docs(Zone::UTC, Some(&weekly(&ranges)), &[]).unwrap_err();
            // Stored calendars that already hold such ranges still read.
            assert!(Schedule::from_docs(Zone::UTC, Some(&weekly(&ranges)), &[]).is_ok());
            assert_eq!(err.0, field, "{ranges:?}");
            assert!(err.1.contains("overlap"), "{}", err.1);
        }
        // Touching ranges and the same hours on different days are fine.
        let ok = weekly(&[
            ("monday", "09:00", "12:00"),
            ("monday", "12:00", "17:00"),
            ("tuesday", "09:00", "12:00"),
        ]);
        assert!(Schedule::from_new_docs(Zone::UTC, Some(&ok), &[]).is_ok());
    }

    #[test]
    fn overlapping_ranges_of_one_override_are_refused_naming_the_range() {
        let range = |start: &str, end: &str| RangeDoc {
            start: start.into(),
            end: end.into(),
        };
        let overrides = vec![
            OverrideDoc {
                date: "2026-12-24".into(),
                ranges: vec![range("09:00", "10:00")],
            },
            OverrideDoc {
                date: "2026-12-31".into(),
                ranges: vec![range("09:00", "12:00"), range("09:00", "12:00")],
            },
        ];
        let err = Schedule::from_new_docs(Zone::UTC, None, &overrides).unwrap_err();
        assert_eq!(err.0, "dateOverrides[1].ranges[1]");
    }

    #[test]
    fn override_dates_are_strict_yyyy_mm_dd() {
        for bad in ["2026-1-5", "2026-01-05T00:00", "2026-01-05 and more"] {
            let overrides = vec![OverrideDoc {
                date: bad.into(),
                ranges: vec![],
            }];
            let err = Schedule::from_docs(Zone::UTC, None, &overrides).unwrap_err();
            assert_eq!(err.0, "dateOverrides[0].date", "{bad}");
        }
    }

    #[test]
    fn bad_documents_name_the_field() {
        let weekly = vec![WeeklyRangeDoc {
            day: "funday".into(),
            start: "09:00".into(),
            end: "17:00".into(),
        }];
        let err = Schedule::from_docs(Zone::UTC, Some(&weekly), &[]).unwrap_err();
        assert_eq!(err.0, "workingHours[0].day");
        let dup = vec![
            OverrideDoc {
                date: "2026-12-24".into(),
                ranges: vec![],
            },
            OverrideDoc {
                date: "2026-12-24".into(),
                ranges: vec![],
            },
        ];
        assert_eq!(
            Schedule::from_docs(Zone::UTC, None, &dup).unwrap_err().0,
            "dateOverrides[1].date"
        );
    }
}
