//! The slot engine: a pure function of (schedule, event-type rules, existing blocks, now, window).
//! Availability lists what it returns, and every write is held to the same rules through
//! `check_booking`, so a slot that is listed can be booked and a booking the listing would not
//! offer is refused with the same reason.

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};

use super::booking::Block;
use super::schedule::Schedule;

/// The rules an event type imposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRules {
    pub duration: Duration,
    /// Step between candidate starts (the duration when the event type sets none).
    pub interval: Duration,
    pub buffer_before: Duration,
    pub buffer_after: Duration,
    /// Minimum notice; `None` = no rule, which still means "not in the past".
    pub notice: Option<Duration>,
    pub max_advance: Option<Duration>,
}

impl SlotRules {
    fn notice_or_zero(&self) -> Duration {
        self.notice.unwrap_or_else(Duration::zero)
    }

    /// The block a booking starting at `start` for `duration` would occupy.
    pub fn block_at(&self, start: DateTime<Utc>) -> Block {
        Block {
            start: start - self.buffer_before,
            end: start + self.duration + self.buffer_after,
        }
    }
}

/// Why there is no slot, or why a write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Conflict,
    OutsideWorkingHours,
    ClosedOverride,
    BeforeMinimumNotice,
    BeyondMaxAdvance,
    FullyBooked,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Conflict => "conflict",
            Reason::OutsideWorkingHours => "outside_working_hours",
            Reason::ClosedOverride => "closed_override",
            Reason::BeforeMinimumNotice => "before_minimum_notice",
            Reason::BeyondMaxAdvance => "beyond_max_advance",
            Reason::FullyBooked => "fully_booked",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    pub slots: Vec<Slot>,
    /// Set exactly when `slots` is empty.
    pub reason: Option<Reason>,
}

/// Blocks sorted by start with a running maximum of their ends: "does anything overlap
/// `[s, e)`?" is one binary search, whatever the number of blocks.
pub struct BlockIndex {
    starts: Vec<DateTime<Utc>>,
    max_end: Vec<DateTime<Utc>>,
}

impl BlockIndex {
    pub fn new(mut blocks: Vec<Block>) -> Self {
        blocks.sort_by_key(|b| b.start);
        let mut max_end = Vec::with_capacity(blocks.len());
        let mut running: Option<DateTime<Utc>> = None;
        for b in &blocks {
            let m = running.map_or(b.end, |r| r.max(b.end));
            running = Some(m);
            max_end.push(m);
        }
        BlockIndex {
            starts: blocks.iter().map(|b| b.start).collect(),
            max_end,
        }
    }

    /// Whether a live block overlaps the half-open `candidate`.
    pub fn overlaps(&self, candidate: Block) -> bool {
        let n = self.starts.partition_point(|s| *s < candidate.end);
        n > 0 && self.max_end[n - 1] > candidate.start
    }
}

/// Every candidate start of the schedule with `from <= c < to`, sorted and de-duplicated.
pub fn candidates(
    schedule: &Schedule,
    rules: &SlotRules,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    if rules.duration <= Duration::zero() || rules.interval <= Duration::zero() || from >= to {
        return out;
    }
    let first = schedule.local_date(from - Duration::days(1));
    let last = schedule.local_date(to + Duration::days(1));
    let mut date = first;
    while date <= last {
        for (start, end) in schedule.intervals_on(date) {
            let mut c = start;
            while c + rules.duration <= end {
                if c >= to {
                    break;
                }
                // A slot whose block leaves years 0001-9999 could be neither stored nor printed.
                if c >= from && rules.block_at(c).check_storable().is_ok() {
                    out.push(c);
                }
                c += rules.interval;
            }
        }
        match date.checked_add_days(Days::new(1)) {
            Some(next) => date = next,
            None => break,
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Free slots in `[from, to)` and, when there are none, why.
pub fn availability(
    schedule: &Schedule,
    rules: &SlotRules,
    blocks: &BlockIndex,
    now: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Availability {
    let empty = |reason| Availability {
        slots: Vec::new(),
        reason: Some(reason),
    };
    let earliest = now + rules.notice_or_zero();
    let limit = rules.max_advance.map(|a| now + a);
    if limit.is_some_and(|l| from >= l) {
        return empty(Reason::BeyondMaxAdvance);
    }
    if to <= earliest {
        return empty(Reason::BeforeMinimumNotice);
    }
    let all = candidates(schedule, rules, from, to);
    if all.is_empty() {
        return empty(if closed_throughout(schedule, from, to) {
            Reason::ClosedOverride
        } else {
            Reason::OutsideWorkingHours
        });
    }
    let timely: Vec<DateTime<Utc>> = all
        .iter()
        .copied()
        .filter(|c| *c >= earliest && limit.is_none_or(|l| *c < l))
        .collect();
    if timely.is_empty() {
        return empty(if all[0] < earliest {
            Reason::BeforeMinimumNotice
        } else {
            Reason::BeyondMaxAdvance
        });
    }
    let slots: Vec<Slot> = timely
        .into_iter()
        .filter(|c| !blocks.overlaps(rules.block_at(*c)))
        .map(|c| Slot {
            start: c,
            end: c + rules.duration,
        })
        .collect();
    if slots.is_empty() {
        return empty(Reason::FullyBooked);
    }
    Availability {
        slots,
        reason: None,
    }
}

/// Whether every local date touched by `[from, to)` is closed by an override.
pub(crate) fn closed_throughout(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> bool {
    let last = schedule.local_date(to - Duration::seconds(1));
    let mut date = schedule.local_date(from);
    while date <= last {
        if !schedule.closed_by_override(date) {
            return false;
        }
        match date.checked_add_days(Days::new(1)) {
            Some(next) => date = next,
            None => break,
        }
    }
    true
}

/// The working time of the local dates `first..=last` as disjoint stretches, sorted, ranges
/// that touch or overlap merged into one (an overnight shift written as two ranges is one
/// stretch). What a write is checked against, and what team availability tests candidates in.
pub(crate) fn working_time(
    schedule: &Schedule,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut intervals = Vec::new();
    let mut d = first;
    while d <= last {
        intervals.extend(schedule.intervals_on(d));
        match d.checked_add_days(Days::new(1)) {
            Some(next) => d = next,
            None => break,
        }
    }
    intervals.sort_unstable();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The rules a write must obey besides the overlap rule, which the database enforces:
/// `start >= now + notice` (notice 0 when unset: nothing new starts in the past),
/// `start < now + maxAdvance`, and `[start, end)` inside working time (it need not sit on the
/// slot grid). Ranges that touch across midnight (`22:00-24:00` then `00:00-06:00`, an
/// overnight shift written as two ranges; or a calendar open around the clock) are one stretch
/// of working time for a write, so a booking may run through midnight where work does.
pub fn check_booking(
    schedule: &Schedule,
    rules: &SlotRules,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), Reason> {
    if start < now + rules.notice_or_zero() {
        return Err(Reason::BeforeMinimumNotice);
    }
    if rules.max_advance.is_some_and(|a| start >= now + a) {
        return Err(Reason::BeyondMaxAdvance);
    }
    let date = schedule.local_date(start);
    if schedule.closed_by_override(date) {
        return Err(Reason::ClosedOverride);
    }
    let merged = working_time(schedule, date, schedule.local_date(end));
    if merged.iter().any(|(s, e)| *s <= start && end <= *e) {
        Ok(())
    } else {
        Err(Reason::OutsideWorkingHours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::{OverrideDoc, RangeDoc, WeeklyRangeDoc};
    use crate::domain::time::{Zone, format_utc, parse_instant};
    use serde_json::Value;

    fn t(s: &str) -> DateTime<Utc> {
        parse_instant(s, None).unwrap()
    }

    fn minutes(v: &Value) -> Option<Duration> {
        v.as_i64().map(Duration::minutes)
    }

    fn local_iso(t: DateTime<Utc>, zone: Zone) -> String {
        t.with_timezone(&zone.0)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Every scenario of the slot vectors (testdata/README.md), computed by an independent reference engine:
    /// DST in Rome, New York, Sydney and Chatham, Kolkata, overrides, buffers, notice,
    /// advance, request zones.
    #[test]
    fn the_engine_agrees_with_every_slot_vector() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/slot-vectors.json");
        let text =
            std::fs::read_to_string(path).expect("testdata/slot-vectors.json in the repository");
        let doc: Value = serde_json::from_str(&text).unwrap();
        let scenarios = doc["scenarios"].as_array().unwrap();
        assert_eq!(scenarios.len(), 70);
        let mut failures = Vec::new();
        for sc in scenarios {
            let name = sc["name"].as_str().unwrap();
            let cal = &sc["calendar"];
            let zone = Zone::parse(cal["timezone"].as_str().unwrap()).unwrap();
            let weekly: Option<Vec<WeeklyRangeDoc>> =
                serde_json::from_value(cal["workingHours"].clone()).unwrap();
            let overrides: Vec<OverrideDoc> = cal
                .get("dateOverrides")
                .filter(|v| !v.is_null())
                .map(|v| serde_json::from_value(v.clone()).unwrap())
                .unwrap_or_default();
            let schedule = Schedule::from_docs(zone, weekly.as_deref(), &overrides).unwrap();
            let et = &sc["eventType"];
            let duration = minutes(&et["durationMinutes"]).unwrap();
            let rules = SlotRules {
                duration,
                interval: minutes(&et["slotIntervalMinutes"]).unwrap_or(duration),
                buffer_before: minutes(&et["bufferBeforeMinutes"]).unwrap_or_else(Duration::zero),
                buffer_after: minutes(&et["bufferAfterMinutes"]).unwrap_or_else(Duration::zero),
                notice: minutes(&et["minimumNoticeMinutes"]),
                max_advance: et["maxAdvanceDays"].as_i64().map(Duration::days),
            };
            let blocks = sc["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["status"] != "cancelled")
                .map(|e| {
                    Block::around(
                        t(e["start"].as_str().unwrap()),
                        t(e["end"].as_str().unwrap()),
                        e["bufferBeforeMinutes"].as_i64().unwrap_or(0) as i32,
                        e["bufferAfterMinutes"].as_i64().unwrap_or(0) as i32,
                    )
                })
                .collect();
            let request_zone = sc["requestTimezone"]
                .as_str()
                .map(|z| Zone::parse(z).unwrap())
                .unwrap_or(zone);
            let got = availability(
                &schedule,
                &rules,
                &BlockIndex::new(blocks),
                t(sc["now"].as_str().unwrap()),
                t(sc["dateFrom"].as_str().unwrap()),
                t(sc["dateTo"].as_str().unwrap()),
            );
            let got_slots: Vec<Value> = got
                .slots
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "startTime": format_utc(s.start),
                        "endTime": format_utc(s.end),
                        "localStartTime": local_iso(s.start, request_zone),
                    })
                })
                .collect();
            let expected = &sc["expected"];
            let got_reason = got
                .reason
                .map(|r| Value::String(r.as_str().into()))
                .unwrap_or(Value::Null);
            if got_slots != *expected["slots"].as_array().unwrap()
                || got_reason != expected["reason"]
            {
                failures.push(format!(
                    "{name}: expected {} slots / {}, got {} / {}",
                    expected["slots"].as_array().unwrap().len(),
                    expected["reason"],
                    got_slots.len(),
                    got_reason
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} scenarios differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn rome_weekdays() -> Schedule {
        let weekly = ["monday", "tuesday", "wednesday", "thursday", "friday"]
            .iter()
            .map(|d| WeeklyRangeDoc {
                day: (*d).into(),
                start: "09:00".into(),
                end: "17:00".into(),
            })
            .collect::<Vec<_>>();
        let overrides = vec![
            OverrideDoc {
                date: "2027-12-24".into(),
                ranges: vec![],
            },
            OverrideDoc {
                date: "2027-12-27".into(),
                ranges: vec![RangeDoc {
                    start: "10:00".into(),
                    end: "12:00".into(),
                }],
            },
        ];
        Schedule::from_docs(
            Zone::parse("Europe/Rome").unwrap(),
            Some(&weekly),
            &overrides,
        )
        .unwrap()
    }

    fn half_hour(notice: Option<i64>, advance: Option<i64>) -> SlotRules {
        SlotRules {
            duration: Duration::minutes(30),
            interval: Duration::minutes(30),
            buffer_before: Duration::zero(),
            buffer_after: Duration::zero(),
            notice: notice.map(Duration::minutes),
            max_advance: advance.map(Duration::days),
        }
    }

    #[test]
    fn a_write_inside_hours_off_the_grid_is_accepted() {
        let now = t("2027-01-01T00:00:00Z");
        let r = check_booking(
            &rome_weekdays(),
            &half_hour(None, None),
            now,
            t("2027-06-16T07:10:00Z"),
            t("2027-06-16T07:55:00Z"),
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn writes_outside_hours_on_closed_days_in_the_past_or_too_far_ahead_are_refused_with_their_reason()
     {
        let s = rome_weekdays();
        let now = t("2027-01-01T00:00:00Z");
        let r = half_hour(Some(120), Some(30));
        // 18:00 local on a Wednesday.
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2027-06-16T16:00:00Z"),
                t("2027-06-16T16:30:00Z")
            ),
            Err(Reason::OutsideWorkingHours)
        );
        // Ending after 17:00.
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2027-06-16T14:45:00Z"),
                t("2027-06-16T15:15:00Z")
            ),
            Err(Reason::OutsideWorkingHours)
        );
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2027-12-24T09:00:00Z"),
                t("2027-12-24T09:30:00Z")
            ),
            Err(Reason::ClosedOverride)
        );
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2026-12-31T09:00:00Z"),
                t("2026-12-31T09:30:00Z")
            ),
            Err(Reason::BeforeMinimumNotice)
        );
        assert_eq!(
            check_booking(
                &s,
                &r,
                t("2027-01-04T08:00:00Z"),
                t("2027-01-04T09:00:00Z"),
                t("2027-01-04T09:30:00Z")
            ),
            Err(Reason::BeforeMinimumNotice)
        );
        assert_eq!(
            check_booking(
                &s,
                &r,
                now,
                t("2027-03-01T09:00:00Z"),
                t("2027-03-01T09:30:00Z")
            ),
            Err(Reason::BeyondMaxAdvance)
        );
    }

    #[test]
    fn a_booking_runs_through_midnight_where_work_does() {
        let now = t("2027-01-01T00:00:00Z");
        let night = vec![
            WeeklyRangeDoc {
                day: "friday".into(),
                start: "22:00".into(),
                end: "24:00".into(),
            },
            WeeklyRangeDoc {
                day: "saturday".into(),
                start: "00:00".into(),
                end: "06:00".into(),
            },
        ];
        let s = Schedule::from_docs(Zone::UTC, Some(&night), &[]).unwrap();
        let r = half_hour(None, None);
        assert_eq!(
            check_booking(
                &s,
                &r,
                now,
                t("2027-06-18T23:00:00Z"),
                t("2027-06-19T01:00:00Z")
            ),
            Ok(())
        );
        assert_eq!(
            check_booking(
                &s,
                &r,
                now,
                t("2027-06-18T23:00:00Z"),
                t("2027-06-19T07:00:00Z")
            ),
            Err(Reason::OutsideWorkingHours)
        );
        let open = Schedule::always_open(Zone::parse("Europe/Rome").unwrap());
        assert_eq!(
            check_booking(
                &open,
                &r,
                now,
                t("2027-03-25T10:00:00Z"),
                t("2027-04-01T10:00:00Z")
            ),
            Ok(())
        );
    }

    /// Working hours keep their local time across both 2026 changes in Rome and New York.
    #[test]
    fn nine_to_five_stays_local_across_the_2026_changes_in_rome_and_new_york() {
        let cases = [
            (
                "Europe/Rome",
                "2026-03-26T00:00:00Z",
                ["2026-03-26T08:00:00Z", "2026-03-30T07:00:00Z"],
            ),
            (
                "Europe/Rome",
                "2026-10-22T00:00:00Z",
                ["2026-10-22T07:00:00Z", "2026-10-26T08:00:00Z"],
            ),
            (
                "America/New_York",
                "2026-03-05T00:00:00Z",
                ["2026-03-05T14:00:00Z", "2026-03-09T13:00:00Z"],
            ),
            (
                "America/New_York",
                "2026-10-29T00:00:00Z",
                ["2026-10-29T13:00:00Z", "2026-11-02T14:00:00Z"],
            ),
        ];
        for (zone, from, [first, after_change]) in cases {
            let weekly = ["monday", "tuesday", "wednesday", "thursday", "friday"]
                .iter()
                .map(|d| WeeklyRangeDoc {
                    day: (*d).into(),
                    start: "09:00".into(),
                    end: "17:00".into(),
                })
                .collect::<Vec<_>>();
            let zone = Zone::parse(zone).unwrap();
            let s = Schedule::from_docs(zone, Some(&weekly), &[]).unwrap();
            let from = t(from);
            let now = t("2026-01-01T00:00:00Z");
            let found = availability(
                &s,
                &half_hour(None, None),
                &BlockIndex::new(vec![]),
                now,
                from,
                from + Duration::days(7),
            );
            let starts: Vec<String> = found.slots.iter().map(|x| format_utc(x.start)).collect();
            assert_eq!(starts[0], first, "{}", zone.name());
            assert!(
                starts.contains(&after_change.to_string()),
                "{}: {after_change}",
                zone.name()
            );
            // Five working days of sixteen half-hour slots, whatever the offset.
            assert_eq!(starts.len(), 5 * 16, "{}", zone.name());
        }
    }

    #[test]
    fn an_override_opens_its_own_hours() {
        let now = t("2027-01-01T00:00:00Z");
        let s = rome_weekdays();
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2027-12-27T09:00:00Z"),
                t("2027-12-27T09:30:00Z")
            ),
            Ok(())
        );
        assert_eq!(
            check_booking(
                &s,
                &half_hour(None, None),
                now,
                t("2027-12-27T08:30:00Z"),
                t("2027-12-27T09:00:00Z")
            ),
            Err(Reason::OutsideWorkingHours)
        );
    }

    #[test]
    fn the_block_index_finds_overlaps_among_unsorted_blocks_of_any_length() {
        let b = |s: &str, e: &str| Block {
            start: t(s),
            end: t(e),
        };
        let index = BlockIndex::new(vec![
            b("2027-01-01T12:00:00Z", "2027-01-01T13:00:00Z"),
            b("2027-01-01T08:00:00Z", "2027-01-01T20:00:00Z"),
            b("2027-01-02T08:00:00Z", "2027-01-02T09:00:00Z"),
        ]);
        assert!(index.overlaps(b("2027-01-01T19:30:00Z", "2027-01-01T20:30:00Z")));
        assert!(!index.overlaps(b("2027-01-01T20:00:00Z", "2027-01-02T08:00:00Z")));
        assert!(index.overlaps(b("2027-01-02T07:59:00Z", "2027-01-02T08:01:00Z")));
        assert!(
            !BlockIndex::new(vec![]).overlaps(b("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"))
        );
    }
}
