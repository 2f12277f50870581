//! Availability rules (Talkover's `recurring` and `exception` rules) are a view of a calendar's
//! working hours and date overrides, not a store of their own: reading them groups the stored
//! hours into rules, adding or deleting one rewrites the stored hours, so the native calendar,
//! native availability and every booking see the change at once.
//!
//! The mapping: a recurring rule is the weekly ranges that share one start and end, with their
//! days; an exception rule is one range of a date override, or the date closed when the override
//! has none. A rule's id is derived from its content (calendar, kind, days or date, times), so it
//! is the same on every read and a rule shown for hours set natively can be deleted by its id.
//! Rules with the same hours are one rule: adding Saturday 09:00-17:00 beside a Monday-Friday
//! 09:00-17:00 rule leaves one Monday-Saturday rule, with the id of that content.
//!
//! Never imports poem or a dialect: the mapping is pure and unit-tested here, the writes are
//! one transaction each, with the idempotency answer sealed inside.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use sea_orm::DbErr;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{CalendarId, OrgId};
use crate::domain::schedule::{DayRange, OverrideDoc, RangeDoc, Schedule, WeeklyRangeDoc};
use crate::domain::time::Zone;
use crate::domain::violations::Invalid;
use crate::repo::calendars::CalendarChanges;
use crate::repo::{self, begin_write, idempotency};

/// The most weekly ranges and override dates a calendar holds (the native API's limits).
pub const MAX_WEEKLY_RANGES: usize = 100;
pub const MAX_OVERRIDE_DATES: usize = 400;

/// What a rule says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Open `range` on each of `days` (Monday first, no repeats), every week.
    Recurring { days: Vec<Weekday>, range: DayRange },
    /// On `date`, open `range` instead of the weekday's hours; `None` closes the date.
    Exception {
        date: NaiveDate,
        range: Option<DayRange>,
    },
}

/// A rule of a calendar, with its content-derived id and the zone its times are read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: Uuid,
    pub kind: RuleKind,
    pub zone: Zone,
}

/// A rule to add, parsed. `zone` is the zone the caller named for a recurring rule; it must be
/// the calendar's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRule {
    pub kind: RuleKind,
    pub zone: Option<Zone>,
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// A day of the week from Talkover's number, 1 = Monday .. 7 = Sunday.
pub fn weekday_of(number: u8) -> Option<Weekday> {
    Some(match number {
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        6 => Weekday::Sat,
        7 => Weekday::Sun,
        _ => return None,
    })
}

/// The id of a rule's content on a calendar: a UUID (version 8) from SHA-256 of both.
pub fn rule_id(calendar: CalendarId, kind: &RuleKind) -> Uuid {
    let content = match kind {
        RuleKind::Recurring { days, range } => {
            let days: Vec<String> = days
                .iter()
                .map(|d| d.number_from_monday().to_string())
                .collect();
            format!("recurring|{}|{range}", days.join(","))
        }
        RuleKind::Exception { date, range } => match range {
            Some(range) => format!("exception|{date}|{range}"),
            None => format!("exception|{date}|closed"),
        },
    };
    let digest = Sha256::digest(format!("{}|{content}", calendar.0).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The rules a schedule reads as: recurring ones by start and end, then exceptions by date.
/// A calendar open around the clock (no weekly hours) has no recurring rules.
pub fn rules_of(calendar: CalendarId, schedule: &Schedule) -> Vec<Rule> {
    let mut groups: BTreeMap<(DayRangeKey, DayRangeKey), (DayRange, Vec<Weekday>)> =
        BTreeMap::new();
    for (day, range) in schedule.weekly.iter().flatten() {
        let (_, days) = groups
            .entry((range.start.minutes(), range.end.minutes()))
            .or_insert((*range, Vec::new()));
        if !days.contains(day) {
            days.push(*day);
        }
    }
    let mut kinds: Vec<RuleKind> = groups
        .into_values()
        .map(|(range, mut days)| {
            days.sort_by_key(Weekday::number_from_monday);
            RuleKind::Recurring { days, range }
        })
        .collect();
    for (date, ranges) in &schedule.overrides {
        if ranges.is_empty() {
            kinds.push(RuleKind::Exception {
                date: *date,
                range: None,
            });
        }
        let mut sorted = ranges.clone();
        sorted.sort_by_key(|r| (r.start, r.end));
        sorted.dedup();
        kinds.extend(sorted.into_iter().map(|r| RuleKind::Exception {
            date: *date,
            range: Some(r),
        }));
    }
    kinds
        .into_iter()
        .map(|kind| Rule {
            id: rule_id(calendar, &kind),
            kind,
            zone: schedule.zone,
        })
        .collect()
}

type DayRangeKey = u16;

/// The schedule with `new` added, or every reason it cannot be: a range that overlaps one the
/// calendar already has on that day (ranges that only touch are fine), or a date closed and
/// opened at once.
pub fn with_rule(schedule: &Schedule, new: &RuleKind) -> Result<Schedule, Invalid> {
    let mut out = schedule.clone();
    match new {
        RuleKind::Recurring { days, range } => {
            let weekly = out.weekly.get_or_insert_with(Vec::new);
            for day in days {
                if let Some((_, existing)) =
                    weekly.iter().find(|(d, r)| d == day && r.overlaps(range))
                {
                    return Err(Invalid::one(
                        "start_time",
                        format!(
                            "{} {range} overlaps the calendar's hours {} {existing}; the ranges \
                             of one day must not overlap (delete that rule first, or use \
                             touching ranges)",
                            day_name(*day),
                            day_name(*day),
                        ),
                    ));
                }
            }
            weekly.extend(days.iter().map(|d| (*d, *range)));
            if weekly.len() > MAX_WEEKLY_RANGES {
                return Err(Invalid::one(
                    "days_of_week",
                    format!("a calendar holds at most {MAX_WEEKLY_RANGES} weekly ranges"),
                ));
            }
        }
        RuleKind::Exception { date, range } => {
            let existing = out.overrides.get(date).cloned();
            match (existing, range) {
                (None, range) => {
                    out.overrides.insert(*date, range.iter().copied().collect());
                }
                (Some(ranges), None) if ranges.is_empty() => {
                    return Err(Invalid::one("date", format!("{date} is already closed")));
                }
                (Some(_), None) => {
                    return Err(Invalid::one(
                        "date",
                        format!(
                            "{date} has exception rules opening hours; delete them before \
                             closing the day"
                        ),
                    ));
                }
                (Some(ranges), Some(_)) if ranges.is_empty() => {
                    return Err(Invalid::one(
                        "date",
                        format!(
                            "{date} is closed by an exception rule; delete it before opening hours"
                        ),
                    ));
                }
                (Some(mut ranges), Some(range)) => {
                    if let Some(existing) = ranges.iter().find(|r| r.overlaps(range)) {
                        return Err(Invalid::one(
                            "start_time",
                            format!(
                                "{range} overlaps the hours {existing} already open on {date}; \
                                 the ranges of one day must not overlap"
                            ),
                        ));
                    }
                    ranges.push(*range);
                    out.overrides.insert(*date, ranges);
                }
            }
            if out.overrides.len() > MAX_OVERRIDE_DATES {
                return Err(Invalid::one(
                    "date",
                    format!("a calendar holds at most {MAX_OVERRIDE_DATES} exception dates"),
                ));
            }
        }
    }
    Ok(out)
}

/// The schedule without the rule `id`, or `None` when the calendar has no such rule. Deleting
/// the last recurring rule leaves the calendar with no weekly hours (open only on exception
/// dates), never open around the clock.
pub fn without_rule(calendar: CalendarId, schedule: &Schedule, id: Uuid) -> Option<Schedule> {
    let rule = rules_of(calendar, schedule)
        .into_iter()
        .find(|r| r.id == id)?;
    let mut out = schedule.clone();
    match rule.kind {
        RuleKind::Recurring { range, .. } => {
            if let Some(weekly) = out.weekly.as_mut() {
                weekly.retain(|(_, r)| *r != range);
            }
        }
        RuleKind::Exception { date, range: None } => {
            out.overrides.remove(&date);
        }
        RuleKind::Exception {
            date,
            range: Some(range),
        } => {
            let left: Vec<DayRange> = out
                .overrides
                .get(&date)
                .into_iter()
                .flatten()
                .filter(|r| **r != range)
                .copied()
                .collect();
            // A date whose last opening is deleted goes back to its weekday's hours.
            if left.is_empty() {
                out.overrides.remove(&date);
            } else {
                out.overrides.insert(date, left);
            }
        }
    }
    Some(out)
}

/// The stored documents of a schedule (the native `workingHours` and `dateOverrides`).
pub fn docs_of(schedule: &Schedule) -> (Option<Vec<WeeklyRangeDoc>>, Vec<OverrideDoc>) {
    let weekly = schedule.weekly.as_ref().map(|w| {
        w.iter()
            .map(|(day, range)| WeeklyRangeDoc {
                day: day_name(*day).to_string(),
                start: range.start.to_string(),
                end: range.end.to_string(),
            })
            .collect()
    });
    let overrides = schedule
        .overrides
        .iter()
        .map(|(date, ranges)| OverrideDoc {
            date: date.format("%Y-%m-%d").to_string(),
            ranges: ranges
                .iter()
                .map(|r| RangeDoc {
                    start: r.start.to_string(),
                    end: r.end.to_string(),
                })
                .collect(),
        })
        .collect();
    (weekly, overrides)
}

fn unreadable(err: String) -> ServiceError {
    ServiceError::Storage(DbErr::Custom(format!(
        "stored working hours unreadable: {err}"
    )))
}

impl Service {
    /// A calendar's rules.
    pub async fn availability_rules(
        &self,
        org: OrgId,
        calendar: CalendarId,
    ) -> Result<Vec<Rule>, ServiceError> {
        let model = super::rules::calendar_of(&self.db, org, calendar).await?;
        let schedule = repo::calendars::schedule_of(&model).map_err(unreadable)?;
        Ok(rules_of(calendar, &schedule))
    }

    /// Adds a rule to a calendar's hours in one transaction, sealing the idempotency answer
    /// with it. Answers the rule as it then reads (merged with rules of the same hours).
    pub async fn add_availability_rule(
        &self,
        org: OrgId,
        calendar: CalendarId,
        new: NewRule,
        render: Render<'_, Rule>,
    ) -> Result<Rule, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let model = repo::calendars::get_for_update(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        let schedule = repo::calendars::schedule_of(&model).map_err(unreadable)?;
        if let Some(zone) = new.zone
            && zone != schedule.zone
        {
            return Err(Invalid::one(
                "timezone",
                format!(
                    "{} is not the calendar's time zone ({}): recurring rules are read in the \
                     calendar's zone; omit timezone or send the calendar's",
                    zone.name(),
                    schedule.zone.name()
                ),
            )
            .into());
        }
        let changed = with_rule(&schedule, &new.kind)?;
        store(&txn, org, calendar, &changed).await?;
        let rule = added_rule(calendar, &changed, &new.kind).ok_or_else(|| {
            ServiceError::Storage(DbErr::Custom("the added rule does not read back".into()))
        })?;
        idempotency::seal(&txn, &rule, render).await?;
        txn.commit().await?;
        Ok(rule)
    }

    /// Deletes a rule from a calendar's hours in one transaction; another calendar's or
    /// organization's rule is not found.
    pub async fn delete_availability_rule(
        &self,
        org: OrgId,
        calendar: CalendarId,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let model = repo::calendars::get_for_update(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        let schedule = repo::calendars::schedule_of(&model).map_err(unreadable)?;
        let changed = without_rule(calendar, &schedule, id)
            .ok_or(ServiceError::NotFound(Resource::AvailabilityRule))?;
        store(&txn, org, calendar, &changed).await?;
        txn.commit().await?;
        Ok(())
    }
}

async fn store(
    txn: &sea_orm::DatabaseTransaction,
    org: OrgId,
    calendar: CalendarId,
    schedule: &Schedule,
) -> Result<(), ServiceError> {
    let (weekly, overrides) = docs_of(schedule);
    // The native check, as a guard: what is stored always reads back as the rules shown.
    Schedule::from_new_docs(schedule.zone, weekly.as_deref(), &overrides)
        .map_err(|(field, message)| Invalid::one(field, message))?;
    let changes = CalendarChanges {
        working_hours: Some(weekly),
        date_overrides: Some(overrides),
        ..CalendarChanges::default()
    };
    repo::calendars::update(txn, org, calendar, changes)
        .await?
        .ok_or(ServiceError::NotFound(Resource::Calendar))?;
    Ok(())
}

/// The rule that now holds what was added: the recurring rule with these hours (its days may
/// include days added before), or the exception itself.
fn added_rule(calendar: CalendarId, schedule: &Schedule, added: &RuleKind) -> Option<Rule> {
    rules_of(calendar, schedule)
        .into_iter()
        .find(|rule| match (&rule.kind, added) {
            (RuleKind::Recurring { range: a, .. }, RuleKind::Recurring { range: b, .. }) => a == b,
            (a, b) => a == b,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::TimeOfDay;

    fn cal() -> CalendarId {
        CalendarId(Uuid::from_u128(0xc1))
    }

    fn range(start: &str, end: &str) -> DayRange {
        DayRange::parse(start, end).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn weekdays_nine_to_five() -> Schedule {
        let weekly = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ]
        .into_iter()
        .map(|d| (d, range("09:00", "17:00")))
        .collect();
        Schedule {
            zone: Zone::parse("Europe/Rome").unwrap(),
            weekly: Some(weekly),
            overrides: BTreeMap::new(),
        }
    }

    #[test]
    fn weekly_ranges_with_the_same_hours_read_as_one_recurring_rule() {
        let mut s = weekdays_nine_to_five();
        s.weekly
            .as_mut()
            .unwrap()
            .push((Weekday::Sat, range("10:00", "12:00")));
        let rules = rules_of(cal(), &s);
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].kind,
            RuleKind::Recurring {
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri
                ],
                range: range("09:00", "17:00"),
            }
        );
        assert_eq!(rules[0].zone.name(), "Europe/Rome");
        // The same content gives the same id on every read, another calendar another id.
        assert_eq!(rules[0].id, rules_of(cal(), &s)[0].id);
        assert_ne!(
            rules[0].id,
            rules_of(CalendarId(Uuid::from_u128(0xc2)), &s)[0].id
        );
        assert_ne!(rules[0].id, rules[1].id);
    }

    #[test]
    fn a_calendar_open_around_the_clock_has_no_recurring_rules() {
        let s = Schedule::always_open(Zone::UTC);
        assert!(rules_of(cal(), &s).is_empty());
        // Its first rule sets its hours.
        let added = with_rule(
            &s,
            &RuleKind::Recurring {
                days: vec![Weekday::Mon],
                range: range("09:00", "12:00"),
            },
        )
        .unwrap();
        assert_eq!(
            added.weekly,
            Some(vec![(Weekday::Mon, range("09:00", "12:00"))])
        );
    }

    #[test]
    fn overrides_read_as_exception_rules_closed_or_open() {
        let mut s = weekdays_nine_to_five();
        s.overrides.insert(date("2027-12-24"), vec![]);
        s.overrides.insert(
            date("2027-12-27"),
            vec![range("14:00", "16:00"), range("08:00", "10:00")],
        );
        let rules = rules_of(cal(), &s);
        let exceptions: Vec<&RuleKind> = rules.iter().skip(1).map(|r| &r.kind).collect();
        assert_eq!(
            exceptions,
            vec![
                &RuleKind::Exception {
                    date: date("2027-12-24"),
                    range: None
                },
                &RuleKind::Exception {
                    date: date("2027-12-27"),
                    range: Some(range("08:00", "10:00"))
                },
                &RuleKind::Exception {
                    date: date("2027-12-27"),
                    range: Some(range("14:00", "16:00"))
                },
            ]
        );
    }

    #[test]
    fn an_overlapping_recurring_rule_is_refused_and_a_touching_one_joins_its_hours() {
        let s = weekdays_nine_to_five();
        let err = with_rule(
            &s,
            &RuleKind::Recurring {
                days: vec![Weekday::Sat, Weekday::Fri],
                range: range("16:00", "18:00"),
            },
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "start_time");
        assert!(err.0[0].message.contains("friday"), "{}", err.0[0].message);
        let touching = RuleKind::Recurring {
            days: vec![Weekday::Sat, Weekday::Fri],
            range: range("17:00", "24:00"),
        };
        let added = with_rule(&s, &touching).unwrap();
        let rule = added_rule(cal(), &added, &touching).unwrap();
        assert_eq!(
            rule.kind,
            RuleKind::Recurring {
                days: vec![Weekday::Fri, Weekday::Sat],
                range: DayRange {
                    start: TimeOfDay::parse("17:00").unwrap(),
                    end: TimeOfDay::END_OF_DAY
                },
            }
        );
    }

    #[test]
    fn exceptions_close_a_day_or_open_hours_but_not_both() {
        let s = weekdays_nine_to_five();
        let closed = RuleKind::Exception {
            date: date("2027-12-24"),
            range: None,
        };
        let open = RuleKind::Exception {
            date: date("2027-12-24"),
            range: Some(range("10:00", "12:00")),
        };
        let c = with_rule(&s, &closed).unwrap();
        assert!(c.closed_by_override(date("2027-12-24")));
        assert_eq!(with_rule(&c, &open).unwrap_err().0[0].field, "date");
        assert_eq!(with_rule(&c, &closed).unwrap_err().0[0].field, "date");
        let o = with_rule(&s, &open).unwrap();
        assert_eq!(with_rule(&o, &closed).unwrap_err().0[0].field, "date");
        let overlapping = RuleKind::Exception {
            date: date("2027-12-24"),
            range: Some(range("11:00", "13:00")),
        };
        assert_eq!(
            with_rule(&o, &overlapping).unwrap_err().0[0].field,
            "start_time"
        );
        let more = RuleKind::Exception {
            date: date("2027-12-24"),
            range: Some(range("12:00", "13:00")),
        };
        assert_eq!(
            with_rule(&o, &more)
                .unwrap()
                .ranges_on(date("2027-12-24"))
                .len(),
            2
        );
    }

    #[test]
    fn deleting_a_rule_by_its_id_removes_exactly_its_hours() {
        let mut s = weekdays_nine_to_five();
        s.overrides.insert(date("2027-12-24"), vec![]);
        s.overrides.insert(
            date("2027-12-27"),
            vec![range("08:00", "10:00"), range("14:00", "16:00")],
        );
        let rules = rules_of(cal(), &s);
        let recurring = without_rule(cal(), &s, rules[0].id).unwrap();
        assert_eq!(recurring.weekly, Some(vec![]));
        let closed = without_rule(cal(), &s, rules[1].id).unwrap();
        assert!(!closed.overrides.contains_key(&date("2027-12-24")));
        let one = without_rule(cal(), &s, rules[2].id).unwrap();
        assert_eq!(
            one.overrides[&date("2027-12-27")],
            vec![range("14:00", "16:00")]
        );
        let both = without_rule(cal(), &one, rules[3].id).unwrap();
        assert!(!both.overrides.contains_key(&date("2027-12-27")));
        assert!(without_rule(cal(), &s, Uuid::from_u128(1)).is_none());
    }

    #[test]
    fn documents_round_trip_through_the_native_shape() {
        let mut s = weekdays_nine_to_five();
        s.overrides
            .insert(date("2027-12-27"), vec![range("08:00", "24:00")]);
        let (weekly, overrides) = docs_of(&s);
        assert_eq!(weekly.as_ref().unwrap()[0].day, "monday");
        assert_eq!(overrides[0].ranges[0].end, "24:00");
        let back = Schedule::from_new_docs(s.zone, weekly.as_deref(), &overrides).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn talkover_day_numbers_start_on_monday() {
        assert_eq!(weekday_of(1), Some(Weekday::Mon));
        assert_eq!(weekday_of(7), Some(Weekday::Sun));
        assert_eq!(weekday_of(0), None);
        assert_eq!(weekday_of(8), None);
    }
}
