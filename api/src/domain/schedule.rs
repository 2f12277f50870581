//! A calendar's working time: weekly ranges in the calendar's IANA zone plus per-date overrides.
//! `None` weekly hours means open around the clock, so calendars without hours keep working as
//! they always did. Ranges are local wall-clock times; their ends become instants in the zone
//! (a time skipped by DST maps to the end of the gap, a repeated one to its earlier instant), so
//! 09:00 stays 09:00 local on both sides of a change.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::time::Zone;

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
            let date = NaiveDate::parse_from_str(&o.date, "%Y-%m-%d").map_err(|_| {
                (
                    format!("dateOverrides[{i}].date"),
                    format!("'{}' is not a date; use YYYY-MM-DD", o.date),
                )
            })?;
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
