//! Team event types: one event type booked against several calendars, its hosts. `single` is the
//! event type of one calendar as it always was; `roundRobin` offers a slot when at least one host
//! is free and gives the booking to one of them; `collective` offers a slot only when every host
//! is free and the booking holds them all.
//!
//! The same promise as the slot engine's: a listed slot can be booked. Availability and the write
//! path ask the same question of each host (the host's schedule admits the booking under
//! `slots::check_booking`, and none of the host's blocks overlaps it), so `free_hosts` accepts
//! every host that `availability` lists as free. Pure: no I/O, no clock, nothing async; the caller
//! loads each host's schedule and blocks and passes `now`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::booking::Block;
use super::schedule::Schedule;
use super::slots::{self, BlockIndex, Reason, SlotRules};
use super::violations::{Invalid, Violations};

/// More hosts than this and one availability request would read too many calendars.
pub const MAX_HOSTS: usize = 100;
pub const MAX_WEIGHT: u32 = 1000;
/// Priorities run from 0 (lowest) to 4 (highest).
pub const MAX_PRIORITY: u8 = 4;
pub const DEFAULT_WEIGHT: u32 = 1;
/// The middle priority, so a host can be ranked above or below the others later.
pub const DEFAULT_PRIORITY: u8 = 2;

/// How an event type's bookings are given to its hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Assignment {
    Single,
    RoundRobin,
    Collective,
}

impl Assignment {
    /// The spelling the native API uses, exactly (`roundRobin`, not `round_robin`).
    pub fn parse(s: &str) -> Option<Assignment> {
        match s {
            "single" => Some(Assignment::Single),
            "roundRobin" => Some(Assignment::RoundRobin),
            "collective" => Some(Assignment::Collective),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Assignment::Single => "single",
            Assignment::RoundRobin => "roundRobin",
            Assignment::Collective => "collective",
        }
    }

    /// Whether bookings go to hosts rather than to the event type's own calendar.
    pub fn is_team(self) -> bool {
        self != Assignment::Single
    }
}

/// A host of a team event type, stored as JSON on the event type (camelCase keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub calendar_id: Uuid,
    /// A round-robin host with twice the weight gets twice the bookings.
    pub weight: u32,
    /// 0 (lowest) to 4 (highest): a free host of higher priority is always offered first.
    pub priority: u8,
}

/// Every problem with an event type's assignment and hosts at once (field names as the native API
/// spells them): a team assignment needs 1..=MAX_HOSTS hosts ("hosts"); `single` has none ("hosts");
/// a calendar listed twice ("hosts[3].calendarId"); weight 1..=MAX_WEIGHT ("hosts[1].weight");
/// priority 0..=MAX_PRIORITY ("hosts[0].priority").
pub fn check_hosts(assignment: Assignment, hosts: &[Host]) -> Result<(), Invalid> {
    let mut v = Violations::default();
    if !assignment.is_team() && !hosts.is_empty() {
        v.add(
            "hosts",
            "a single event type has no hosts; use roundRobin or collective to book a team",
        );
    } else if assignment.is_team() && hosts.is_empty() {
        v.add(
            "hosts",
            format!(
                "a {} event type needs at least one host",
                assignment.as_str()
            ),
        );
    } else if hosts.len() > MAX_HOSTS {
        v.add(
            "hosts",
            format!("at most {MAX_HOSTS} hosts, {} given", hosts.len()),
        );
    }
    let mut seen: HashMap<Uuid, usize> = HashMap::with_capacity(hosts.len());
    for (i, host) in hosts.iter().enumerate() {
        match seen.entry(host.calendar_id) {
            Entry::Occupied(first) => v.add(
                &format!("hosts[{i}].calendarId"),
                format!(
                    "calendar {} is already hosts[{}]; list each calendar once",
                    host.calendar_id,
                    first.get()
                ),
            ),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        if !(1..=MAX_WEIGHT).contains(&host.weight) {
            v.add(
                &format!("hosts[{i}].weight"),
                format!("must be 1 to {MAX_WEIGHT}, got {}", host.weight),
            );
        }
        if host.priority > MAX_PRIORITY {
            v.add(
                &format!("hosts[{i}].priority"),
                format!(
                    "must be 0 (lowest) to {MAX_PRIORITY} (highest), got {}",
                    host.priority
                ),
            );
        }
    }
    v.into_result()
}

/// What one host's time looks like to the engine.
#[derive(Clone, Copy)]
pub struct HostTimes<'a> {
    pub schedule: &'a Schedule,
    pub blocks: &'a BlockIndex,
}

/// How many hosts must be free for a slot to be offered: `Any` for round robin, `All` for
/// collective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Any,
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamSlot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// indices into hosts, ascending
    pub free: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamAvailability {
    pub slots: Vec<TeamSlot>,
    /// set exactly when slots is empty
    pub reason: Option<Reason>,
}

/// Free team slots in [from, to).
///
/// The candidates are every host's own slot grid (each in its own zone) merged, so a team of
/// Rome and New York hosts offers both grids. A candidate `c` is offered when enough hosts are
/// free for `[c, c + duration)`: free means `slots::check_booking` passes on the host's schedule
/// and the host's blocks do not overlap `rules.block_at(c)`, the very test `free_hosts` makes
/// on a write. When there is no slot, the reason follows `slots::availability`: window beyond
/// the maximum advance, window before the minimum notice, no candidate at all (closed by
/// override when every host's override closes the whole window, else outside working hours),
/// no timely candidate, and else fully booked. With one host and `Need::Any` the result is
/// exactly `slots::availability`'s.
pub fn availability(
    hosts: &[HostTimes<'_>],
    rules: &SlotRules,
    need: Need,
    now: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> TeamAvailability {
    let empty = |reason| TeamAvailability {
        slots: Vec::new(),
        reason: Some(reason),
    };
    let earliest = now + rules.notice.unwrap_or_else(Duration::zero);
    let limit = rules.max_advance.map(|a| now + a);
    if limit.is_some_and(|l| from >= l) {
        return empty(Reason::BeyondMaxAdvance);
    }
    if to <= earliest {
        return empty(Reason::BeforeMinimumNotice);
    }
    // Hosts often share one schedule (a team in one office): the candidates and working
    // stretches of each distinct schedule are computed once.
    let mut distinct: Vec<&Schedule> = Vec::new();
    let shared: Vec<usize> = hosts
        .iter()
        .map(|h| {
            match distinct
                .iter()
                .position(|s| std::ptr::eq(*s, h.schedule) || *s == h.schedule)
            {
                Some(k) => k,
                None => {
                    distinct.push(h.schedule);
                    distinct.len() - 1
                }
            }
        })
        .collect();
    let all = union(
        distinct
            .iter()
            .map(|s| slots::candidates(s, rules, from, to))
            .collect(),
    );
    if all.is_empty() {
        // No hosts at all is "outside working hours": nothing is closed, nothing is open.
        let closed = !distinct.is_empty()
            && distinct
                .iter()
                .all(|s| slots::closed_throughout(s, from, to));
        return empty(if closed {
            Reason::ClosedOverride
        } else {
            Reason::OutsideWorkingHours
        });
    }
    // `all` is sorted, so the timely candidates are one run of it.
    let first = all.partition_point(|c| *c < earliest);
    let past_limit = limit.map_or(all.len(), |l| all.partition_point(|c| *c < l));
    if first >= past_limit {
        return empty(if all[0] < earliest {
            Reason::BeforeMinimumNotice
        } else {
            Reason::BeyondMaxAdvance
        });
    }
    let timely = &all[first..past_limit];
    let n = timely.len();
    let ends: Vec<DateTime<Utc>> = timely.iter().map(|c| *c + rules.duration).collect();
    let blocks: Vec<Block> = timely.iter().map(|c| rules.block_at(*c)).collect();
    let stretches: Vec<Vec<(DateTime<Utc>, DateTime<Utc>)>> = distinct
        .iter()
        .map(|s| working_stretches(s, rules.duration, from, to))
        .collect();
    // One bit a host for each candidate: candidate j's hosts are the words
    // `free[j * words..(j + 1) * words]`, bit `i % 64` of word `i / 64` for host i.
    let words = hosts.len().div_ceil(64);
    let mut free = vec![0u64; n * words];
    let mut free_count = vec![0usize; n];
    for (i, (host, k)) in hosts.iter().zip(&shared).enumerate() {
        let mut from_here = 0;
        for (s, e) in &stretches[*k] {
            // Starts and ends both ascend, so the candidates that fit in a stretch are one run,
            // found by two binary searches; only they are looked up among the blocks.
            let first = from_here + timely[from_here..].partition_point(|c| c < s);
            let past = first + ends[first..].partition_point(|end| end <= e);
            from_here = past;
            mark_unblocked(host.blocks, &blocks, first, past, &mut |j| {
                free[j * words + i / 64] |= 1 << (i % 64);
                free_count[j] += 1;
            });
        }
    }
    let mut slots = Vec::new();
    for (j, c) in timely.iter().enumerate() {
        let offered = match need {
            Need::Any => free_count[j] > 0,
            Need::All => free_count[j] == hosts.len(),
        };
        if offered {
            let mut hosts_free = Vec::with_capacity(free_count[j]);
            for (w, word) in free[j * words..(j + 1) * words].iter().enumerate() {
                let mut bits = *word;
                while bits != 0 {
                    hosts_free.push(w * 64 + bits.trailing_zeros() as usize);
                    bits &= bits - 1;
                }
            }
            slots.push(TeamSlot {
                start: *c,
                end: ends[j],
                free: hosts_free,
            });
        }
    }
    if slots.is_empty() {
        return empty(Reason::FullyBooked);
    }
    TeamAvailability {
        slots,
        reason: None,
    }
}

/// Sorted lists merged into one, sorted and without repeats: pairwise, so that the lists of a
/// team that mostly shares hours shrink as they merge (cheaper than sorting them all together).
fn union(mut lists: Vec<Vec<DateTime<Utc>>>) -> Vec<DateTime<Utc>> {
    while lists.len() > 1 {
        let mut merged = Vec::with_capacity(lists.len().div_ceil(2));
        let mut rest = lists.into_iter();
        while let Some(a) = rest.next() {
            merged.push(match rest.next() {
                Some(b) => merge(&a, &b),
                None => a,
            });
        }
        lists = merged;
    }
    let mut all = lists.pop().unwrap_or_default();
    all.dedup();
    all
}

fn merge(a: &[DateTime<Utc>], b: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Calls `mark(j)` for each `j` in `first..past` whose block `blocks` does not overlap. The blocks
/// of ascending candidates ascend at both ends, so `[blocks[first].start, blocks[past - 1].end)`
/// holds them all: when nothing overlaps that span, the whole run is free after one look-up;
/// else each half is asked the same way. A free day costs one look-up instead of one a slot.
fn mark_unblocked(
    index: &BlockIndex,
    blocks: &[Block],
    first: usize,
    past: usize,
    mark: &mut impl FnMut(usize),
) {
    if first >= past {
        return;
    }
    let span = Block {
        start: blocks[first].start,
        end: blocks[past - 1].end,
    };
    if !index.overlaps(span) {
        (first..past).for_each(&mut *mark);
    } else if past - first > 1 {
        let middle = first + (past - first) / 2;
        mark_unblocked(index, blocks, first, middle, mark);
        mark_unblocked(index, blocks, middle, past, mark);
    }
}

/// A host's working time around the window as disjoint stretches, sorted, with ranges that touch
/// or overlap merged (as `check_booking` merges them): the intervals of every local date from
/// `local_date(from - 1 day)` to `local_date(to + duration + 1 day)`.
///
/// Why "`[c, c + duration)` lies inside one stretch" is exactly `check_booking`'s verdict for a
/// timely candidate `c` (notice and advance are already met), given that a zone's local date
/// never goes backwards (it would only if a DST change turned the clock back across midnight;
/// `check_booking` assumes the same when it walks the dates from the start's to the end's). Write `M(d)` for the first instant of local date `d` (`Schedule::instant(d, 00:00)`,
/// the end of a gap when midnight is skipped). Every interval of date `d` lies in
/// `[M(d), M(d + 1)]`, since `instant` is monotone in the time of day and 24:00 is `M(d + 1)`.
/// Let `d0` and `d1` be the local dates of `c` and of `e = c + duration`, so
/// `M(d0) <= c` and `e < M(d1 + 1)`; `check_booking` merges the intervals of dates `d0..=d1`.
/// - An interval of a date before `d0` ends by `M(d0) <= c`, one of a date after `d1` starts
///   at `M(d1 + 1) > e`: neither shares a point with `[c, e)`. So every point of `[c, e)` that a
///   stretch here covers is covered by an interval of `d0..=d1`; those intervals cover the
///   connected `[c, e)` and merge into one of `check_booking`'s stretches. Conversely, our dates
///   include `d0..=d1` (`c` is in `[from, to)`), so each of its stretches lies in one of ours.
/// - A date closed by an override has no interval; if it is `d0`, nothing covers `c` (it is an
///   interval of `d0` or nothing), so the candidate is not free here either, as `check_booking`
///   says with `ClosedOverride`.
///
/// The brute-force test compares the two over random schedules in four zones across DST changes.
fn working_stretches(
    schedule: &Schedule,
    duration: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let reach = duration + Duration::days(1);
    let first = schedule.local_date(from - Duration::days(1));
    let last = schedule.local_date(to.checked_add_signed(reach).unwrap_or(to));
    slots::working_time(schedule, first, last)
}

/// For a write of [start, end): the hosts (indices, ascending) that can take it: `check_booking`
/// passes on the host's schedule and the host's blocks do not overlap the write's block,
/// `start - buffer_before .. end + buffer_after` (the write's own end, which need not be
/// `start + duration`). Err(reason) when none can: `Reason::Conflict` when some host passes the
/// rules but is blocked, else the first host's rule reason (`OutsideWorkingHours` when there are
/// no hosts).
pub fn free_hosts(
    hosts: &[HostTimes<'_>],
    rules: &SlotRules,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<usize>, Reason> {
    let block = Block {
        start: start - rules.buffer_before,
        end: end + rules.buffer_after,
    };
    let mut free = Vec::new();
    let mut blocked = false;
    let mut first_reason = None;
    for (i, host) in hosts.iter().enumerate() {
        match slots::check_booking(host.schedule, rules, now, start, end) {
            Ok(()) if host.blocks.overlaps(block) => blocked = true,
            Ok(()) => free.push(i),
            Err(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    if !free.is_empty() {
        Ok(free)
    } else if blocked {
        Err(Reason::Conflict)
    } else {
        Err(first_reason.unwrap_or(Reason::OutsideWorkingHours))
    }
}

/// The order in which to offer a round-robin booking to hosts: highest priority first, then the
/// fewest bookings adjusted by weight (count/weight ascending, compared exactly by
/// cross-multiplication in u128, no floats), then the higher weight, then the lower index
/// (deterministic). `counts[i]` is host i's bookings of this event type in the rolling window
/// (a missing count is 0). The caller takes the first ranked host that is free, so a host with
/// twice the weight ends up with twice the bookings.
pub fn ranking(hosts: &[Host], counts: &[u64]) -> Vec<usize> {
    let count = |i: usize| counts.get(i).copied().unwrap_or(0);
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    order.sort_by(|&a, &b| {
        let (ha, hb) = (&hosts[a], &hosts[b]);
        hb.priority
            .cmp(&ha.priority)
            .then_with(|| load_cmp(count(a), ha.weight, count(b), hb.weight))
            .then_with(|| hb.weight.cmp(&ha.weight))
            .then_with(|| a.cmp(&b))
    });
    order
}

/// `ca / wa` against `cb / wb`, exactly: u64 counts times u32 weights cannot overflow u128. A
/// weight of 0 (which `check_hosts` refuses) is an infinite load, so such a host comes last
/// within its priority instead of dividing by zero.
fn load_cmp(ca: u64, wa: u32, cb: u64, wb: u32) -> Ordering {
    match (wa, wb) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (u128::from(ca) * u128::from(wb)).cmp(&(u128::from(cb) * u128::from(wa))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{Days, NaiveDate};

    use super::*;
    use crate::domain::schedule::{OverrideDoc, RangeDoc, WeeklyRangeDoc};
    use crate::domain::time::{Zone, parse_instant};

    fn t(s: &str) -> DateTime<Utc> {
        parse_instant(s, None).unwrap()
    }

    /// xorshift64*: a fixed seed gives the same cases on every machine and every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn one_in(&mut self, n: u64) -> bool {
            self.below(n) == 0
        }
    }

    const ZONES: [&str; 4] = [
        "UTC",
        "Europe/Rome",
        "America/New_York",
        "Australia/Lord_Howe",
    ];
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    /// The 2026 DST changes of New York, Rome and Lord Howe (spring and autumn).
    const CHANGES: [&str; 6] = [
        "2026-03-08",
        "2026-03-29",
        "2026-04-05",
        "2026-10-04",
        "2026-10-25",
        "2026-11-01",
    ];

    fn hhmm(quarters: u64) -> String {
        format!("{:02}:{:02}", quarters / 4, quarters % 4 * 15)
    }

    /// A range on 15-minute boundaries, `00:00` to `24:00`.
    fn random_range(rng: &mut Rng) -> (String, String) {
        let start = rng.below(96);
        let end = start + 1 + rng.below(96 - start);
        (hhmm(start), hhmm(end))
    }

    fn weekly(day: &str, start: &str, end: &str) -> WeeklyRangeDoc {
        WeeklyRangeDoc {
            day: day.into(),
            start: start.into(),
            end: end.into(),
        }
    }

    /// `closed`: every date the window could touch is closed by an override. `never`: no weekly
    /// hours at all (only overrides open it). `office`: weekdays 09:00-17:00 besides the random
    /// ranges, so that collective teams often share some hours.
    fn random_schedule(
        rng: &mut Rng,
        first: NaiveDate,
        days: u64,
        (closed, never, office): (bool, bool, bool),
    ) -> Schedule {
        let zone = Zone::parse(ZONES[rng.below(4) as usize]).unwrap();
        let hours = if never {
            Some(vec![])
        } else if rng.one_in(6) {
            None
        } else {
            let mut docs = Vec::new();
            if office {
                docs.extend(DAYS[..5].iter().map(|d| weekly(d, "09:00", "17:00")));
            }
            for day in DAYS {
                for _ in 0..rng.below(4) {
                    let (start, end) = random_range(rng);
                    docs.push(weekly(day, &start, &end));
                }
            }
            if rng.one_in(3) {
                // An overnight shift written as two ranges that touch at midnight.
                let d = rng.below(7) as usize;
                docs.push(weekly(DAYS[d], "22:00", "24:00"));
                docs.push(weekly(DAYS[(d + 1) % 7], "00:00", "06:00"));
            }
            Some(docs)
        };
        let mut overrides: Vec<OverrideDoc> = Vec::new();
        let mut taken = BTreeSet::new();
        if closed {
            // Every date the window could touch in any zone, closed.
            for k in 0..days + 3 {
                let date = first + Days::new(k);
                taken.insert(date);
                overrides.push(OverrideDoc {
                    date: date.format("%Y-%m-%d").to_string(),
                    ranges: vec![],
                });
            }
        }
        for _ in 0..rng.below(5) {
            let date = first + Days::new(rng.below(days + 3));
            if !taken.insert(date) {
                continue;
            }
            let ranges = if rng.one_in(2) {
                vec![]
            } else {
                (0..1 + rng.below(2))
                    .map(|_| {
                        let (start, end) = random_range(rng);
                        RangeDoc { start, end }
                    })
                    .collect()
            };
            overrides.push(OverrideDoc {
                date: date.format("%Y-%m-%d").to_string(),
                ranges,
            });
        }
        Schedule::from_docs(zone, hours.as_deref(), &overrides).unwrap()
    }

    struct Case {
        schedules: Vec<Schedule>,
        blocks: Vec<BlockIndex>,
        rules: SlotRules,
        now: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    }

    impl Case {
        fn hosts(&self) -> Vec<HostTimes<'_>> {
            self.schedules
                .iter()
                .zip(&self.blocks)
                .map(|(schedule, blocks)| HostTimes { schedule, blocks })
                .collect()
        }
    }

    fn random_case(rng: &mut Rng) -> Case {
        let change = NaiveDate::parse_from_str(CHANGES[rng.below(6) as usize], "%Y-%m-%d").unwrap();
        let days = 1 + rng.below(10);
        let midnight = change.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let mut from = midnight - Duration::days(rng.below(days) as i64)
            + Duration::minutes(15 * rng.below(96) as i64);
        if rng.one_in(4) {
            from += Duration::minutes(rng.below(15) as i64);
        }
        let to = if rng.one_in(5) {
            from + Duration::minutes(15 + rng.below(24 * 60) as i64)
        } else {
            from + Duration::days(days as i64)
        };
        let now = if rng.one_in(2) {
            from - Duration::minutes(rng.below(3 * 24 * 60) as i64)
        } else {
            from + Duration::minutes(rng.below((to - from).num_minutes() as u64) as i64)
        };
        let first = from.date_naive() - Days::new(1);
        // Now and then a team whose hosts are all closed or never open, to reach the
        // closed-override and outside-working-hours reasons (only all closed is the former).
        let shut = rng.one_in(8);
        // Sometimes every host is away for the whole window, so that round robin too can be
        // fully booked; sometimes just one host is.
        let away = rng.one_in(8);
        let office = rng.one_in(3);
        let count = 1 + rng.below(6) as usize;
        let schedules: Vec<Schedule> = (0..count)
            .map(|_| {
                let closed = shut && !rng.one_in(3);
                let never = shut && !closed;
                random_schedule(rng, first, days, (closed, never, office))
            })
            .collect();
        let blocks = (0..count)
            .map(|_| {
                let mut list: Vec<Block> = (0..rng.below(7))
                    .map(|_| {
                        let start = from - Duration::hours(12)
                            + Duration::minutes(15 * rng.below(96 * (days + 1)) as i64);
                        Block {
                            start,
                            end: start + Duration::minutes(15 + rng.below(226) as i64),
                        }
                    })
                    .collect();
                if away || rng.one_in(16) {
                    list.push(Block {
                        start: from - Duration::days(1),
                        end: to + Duration::days(1),
                    });
                }
                BlockIndex::new(list)
            })
            .collect();
        let duration = Duration::minutes(5 * (3 + rng.below(22)) as i64);
        let rules = SlotRules {
            duration,
            interval: if rng.one_in(2) {
                duration
            } else {
                Duration::minutes(5 * (2 + rng.below(23)) as i64)
            },
            buffer_before: Duration::minutes(rng.below(31) as i64),
            buffer_after: Duration::minutes(rng.below(31) as i64),
            notice: (!rng.one_in(3)).then(|| Duration::minutes(rng.below(2 * 24 * 60 + 1) as i64)),
            max_advance: rng
                .one_in(2)
                .then(|| Duration::minutes(60 + rng.below(5 * 24 * 60) as i64)),
        };
        Case {
            schedules,
            blocks,
            rules,
            now,
            from,
            to,
        }
    }

    /// 400 cases from one seed: the same ones in every test that uses them.
    fn random_cases() -> Vec<Case> {
        let mut rng = Rng(0x5EED_7EA3_2026_0001);
        (0..400).map(|_| random_case(&mut rng)).collect()
    }

    /// Whether every local date that `[from, to)` touches is closed, found by walking the window
    /// in quarter hours rather than by date arithmetic.
    fn closed_everywhere(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        let mut dates = BTreeSet::from([schedule.local_date(to - Duration::seconds(1))]);
        let mut probe = from;
        while probe < to {
            dates.insert(schedule.local_date(probe));
            probe += Duration::minutes(15);
        }
        dates.iter().all(|d| schedule.closed_by_override(*d))
    }

    /// The definition, spelled out with the slot engine's own `candidates` and `check_booking`
    /// for every (candidate, host) pair.
    fn reference(case: &Case, need: Need) -> TeamAvailability {
        let rules = &case.rules;
        let empty = |reason| TeamAvailability {
            slots: vec![],
            reason: Some(reason),
        };
        let earliest = case.now + rules.notice.unwrap_or_else(Duration::zero);
        let limit = rules.max_advance.map(|a| case.now + a);
        if limit.is_some_and(|l| case.from >= l) {
            return empty(Reason::BeyondMaxAdvance);
        }
        if case.to <= earliest {
            return empty(Reason::BeforeMinimumNotice);
        }
        let all: BTreeSet<DateTime<Utc>> = case
            .schedules
            .iter()
            .flat_map(|s| slots::candidates(s, rules, case.from, case.to))
            .collect();
        if all.is_empty() {
            let closed = case
                .schedules
                .iter()
                .all(|s| closed_everywhere(s, case.from, case.to));
            return empty(if closed {
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
            let first = *all.first().unwrap();
            return empty(if first < earliest {
                Reason::BeforeMinimumNotice
            } else {
                Reason::BeyondMaxAdvance
            });
        }
        let mut out = Vec::new();
        for c in timely {
            let end = c + rules.duration;
            let free: Vec<usize> = (0..case.schedules.len())
                .filter(|&i| {
                    slots::check_booking(&case.schedules[i], rules, case.now, c, end).is_ok()
                        && !case.blocks[i].overlaps(rules.block_at(c))
                })
                .collect();
            let offered = match need {
                Need::Any => !free.is_empty(),
                Need::All => free.len() == case.schedules.len(),
            };
            if offered {
                out.push(TeamSlot {
                    start: c,
                    end,
                    free,
                });
            }
        }
        if out.is_empty() {
            return empty(Reason::FullyBooked);
        }
        TeamAvailability {
            slots: out,
            reason: None,
        }
    }

    fn describe(case: &Case) -> String {
        format!(
            "from {} to {} now {} rules {:?} zones {:?}",
            case.from,
            case.to,
            case.now,
            case.rules,
            case.schedules
                .iter()
                .map(|s| s.zone.name())
                .collect::<Vec<_>>()
        )
    }

    fn compare_with_reference(need: Need) {
        let cases = random_cases();
        let mut reasons = BTreeMap::new();
        let mut slots_seen = 0;
        for (k, case) in cases.iter().enumerate() {
            let got = availability(
                &case.hosts(),
                &case.rules,
                need,
                case.now,
                case.from,
                case.to,
            );
            let want = reference(case, need);
            assert_eq!(got, want, "case {k}: {}", describe(case));
            *reasons.entry(got.reason.map(Reason::as_str)).or_insert(0) += 1;
            slots_seen += got.slots.len();
        }
        // The cases reach every outcome, or the comparison would prove less than it claims.
        for reason in [
            None,
            Some("outside_working_hours"),
            Some("closed_override"),
            Some("before_minimum_notice"),
            Some("beyond_max_advance"),
            Some("fully_booked"),
        ] {
            assert!(
                reasons.contains_key(&reason),
                "{need:?}: no case gave {reason:?}: {reasons:?}"
            );
        }
        println!("{need:?}: {slots_seen} slots, outcomes {reasons:?}");
        assert!(slots_seen > 1000, "{need:?}: only {slots_seen} slots");
    }

    #[test]
    fn round_robin_availability_equals_a_brute_force_reference_over_random_schedules() {
        compare_with_reference(Need::Any);
    }

    #[test]
    fn collective_availability_equals_a_brute_force_reference_over_random_schedules() {
        compare_with_reference(Need::All);
    }

    #[test]
    fn one_host_needing_any_is_exactly_the_slot_engine() {
        for (k, case) in random_cases().iter().enumerate() {
            let host = case.hosts()[0];
            let team = availability(
                &[host],
                &case.rules,
                Need::Any,
                case.now,
                case.from,
                case.to,
            );
            let single = slots::availability(
                host.schedule,
                &case.rules,
                host.blocks,
                case.now,
                case.from,
                case.to,
            );
            let team_slots: Vec<(DateTime<Utc>, DateTime<Utc>)> =
                team.slots.iter().map(|s| (s.start, s.end)).collect();
            let single_slots: Vec<(DateTime<Utc>, DateTime<Utc>)> =
                single.slots.iter().map(|s| (s.start, s.end)).collect();
            assert_eq!(team_slots, single_slots, "case {k}: {}", describe(case));
            assert_eq!(team.reason, single.reason, "case {k}: {}", describe(case));
            assert!(team.slots.iter().all(|s| s.free == [0]));
        }
    }

    #[test]
    fn every_listed_slot_can_be_written_to_exactly_its_free_hosts() {
        let mut checked = 0;
        for case in random_cases() {
            let hosts = case.hosts();
            for need in [Need::Any, Need::All] {
                let listed = availability(&hosts, &case.rules, need, case.now, case.from, case.to);
                for slot in &listed.slots {
                    let written = free_hosts(&hosts, &case.rules, case.now, slot.start, slot.end);
                    assert_eq!(written, Ok(slot.free.clone()), "{}", describe(&case));
                    checked += 1;
                }
            }
            // A timely candidate that round robin does not list is refused on write too.
            let listed: BTreeSet<DateTime<Utc>> =
                availability(&hosts, &case.rules, Need::Any, case.now, case.from, case.to)
                    .slots
                    .iter()
                    .map(|s| s.start)
                    .collect();
            let earliest = case.now + case.rules.notice.unwrap_or_else(Duration::zero);
            let limit = case.rules.max_advance.map(|a| case.now + a);
            for c in case
                .schedules
                .iter()
                .flat_map(|s| slots::candidates(s, &case.rules, case.from, case.to))
                .filter(|c| *c >= earliest && limit.is_none_or(|l| *c < l))
                .filter(|c| !listed.contains(c))
            {
                let written = free_hosts(&hosts, &case.rules, case.now, c, c + case.rules.duration);
                assert!(written.is_err(), "{c}: {}", describe(&case));
            }
        }
        assert!(checked > 1000, "only {checked} slots checked");
    }

    fn nine_to_five() -> Schedule {
        let hours: Vec<WeeklyRangeDoc> = DAYS[..5]
            .iter()
            .map(|d| weekly(d, "09:00", "17:00"))
            .collect();
        let overrides = vec![OverrideDoc {
            date: "2027-06-18".into(),
            ranges: vec![],
        }];
        Schedule::from_docs(Zone::UTC, Some(&hours), &overrides).unwrap()
    }

    fn afternoons() -> Schedule {
        let hours: Vec<WeeklyRangeDoc> = DAYS[..5]
            .iter()
            .map(|d| weekly(d, "13:00", "17:00"))
            .collect();
        Schedule::from_docs(Zone::UTC, Some(&hours), &[]).unwrap()
    }

    fn half_hour(buffer_before: i64, notice: Option<i64>) -> SlotRules {
        SlotRules {
            duration: Duration::minutes(30),
            interval: Duration::minutes(30),
            buffer_before: Duration::minutes(buffer_before),
            buffer_after: Duration::zero(),
            notice: notice.map(Duration::minutes),
            max_advance: None,
        }
    }

    fn blocks(list: &[(&str, &str)]) -> BlockIndex {
        BlockIndex::new(
            list.iter()
                .map(|(s, e)| Block {
                    start: t(s),
                    end: t(e),
                })
                .collect(),
        )
    }

    #[test]
    fn a_write_goes_to_the_free_hosts_and_is_a_conflict_when_every_host_in_hours_is_blocked() {
        let now = t("2027-01-01T00:00:00Z");
        let (morning, afternoon) = (nine_to_five(), afternoons());
        let busy = blocks(&[("2027-06-16T10:00:00Z", "2027-06-16T11:00:00Z")]);
        let idle = blocks(&[]);
        let rules = half_hour(0, None);
        let (start, end) = (t("2027-06-16T10:00:00Z"), t("2027-06-16T10:30:00Z"));
        let both_in_hours = [
            HostTimes {
                schedule: &morning,
                blocks: &busy,
            },
            HostTimes {
                schedule: &morning,
                blocks: &idle,
            },
        ];
        assert_eq!(
            free_hosts(&both_in_hours, &rules, now, start, end),
            Ok(vec![1])
        );
        // The first host is out of hours, the second in hours but blocked: a conflict, since
        // freeing the second host's time would make the write possible.
        let blocked_in_hours = [
            HostTimes {
                schedule: &afternoon,
                blocks: &idle,
            },
            HostTimes {
                schedule: &morning,
                blocks: &busy,
            },
        ];
        assert_eq!(
            free_hosts(&blocked_in_hours, &rules, now, start, end),
            Err(Reason::Conflict)
        );
    }

    #[test]
    fn a_write_no_host_could_take_is_refused_with_the_first_hosts_rule_reason() {
        let now = t("2027-06-16T09:00:00Z");
        let (morning, afternoon) = (nine_to_five(), afternoons());
        let idle = blocks(&[]);
        let host = |schedule| HostTimes {
            schedule,
            blocks: &idle,
        };
        let rules = half_hour(0, None);
        let at = |s: &str, e: &str| (t(s), t(e));
        let cases = [
            // Closed by override for the first host, outside the second host's hours.
            (
                [host(&morning), host(&afternoon)],
                at("2027-06-18T10:00:00Z", "2027-06-18T10:30:00Z"),
                Reason::ClosedOverride,
            ),
            (
                [host(&afternoon), host(&morning)],
                at("2027-06-18T10:00:00Z", "2027-06-18T10:30:00Z"),
                Reason::OutsideWorkingHours,
            ),
            (
                [host(&morning), host(&afternoon)],
                at("2027-06-16T08:00:00Z", "2027-06-16T08:30:00Z"),
                Reason::BeforeMinimumNotice,
            ),
        ];
        for (hosts, (start, end), reason) in cases {
            assert_eq!(free_hosts(&hosts, &rules, now, start, end), Err(reason));
        }
        assert_eq!(
            free_hosts(
                &[],
                &rules,
                now,
                t("2027-06-16T10:00:00Z"),
                t("2027-06-16T10:30:00Z")
            ),
            Err(Reason::OutsideWorkingHours)
        );
    }

    #[test]
    fn a_write_is_blocked_by_its_own_end_and_buffers_not_by_the_event_types_duration() {
        let now = t("2027-01-01T00:00:00Z");
        let morning = nine_to_five();
        let busy = blocks(&[
            ("2027-06-16T09:00:00Z", "2027-06-16T10:00:00Z"),
            ("2027-06-16T11:30:00Z", "2027-06-16T12:00:00Z"),
        ]);
        let hosts = [HostTimes {
            schedule: &morning,
            blocks: &busy,
        }];
        // Two hours from 10:05 reach the 11:30 block though the event type lasts 30 minutes.
        assert_eq!(
            free_hosts(
                &hosts,
                &half_hour(0, None),
                now,
                t("2027-06-16T10:05:00Z"),
                t("2027-06-16T12:05:00Z")
            ),
            Err(Reason::Conflict)
        );
        // Ten minutes of buffer before 10:05 reach back into the 09:00-10:00 block.
        assert_eq!(
            free_hosts(
                &hosts,
                &half_hour(10, None),
                now,
                t("2027-06-16T10:05:00Z"),
                t("2027-06-16T10:35:00Z")
            ),
            Err(Reason::Conflict)
        );
        assert_eq!(
            free_hosts(
                &hosts,
                &half_hour(5, None),
                now,
                t("2027-06-16T10:05:00Z"),
                t("2027-06-16T10:35:00Z")
            ),
            Ok(vec![0])
        );
    }

    #[test]
    fn collective_slots_need_every_host_and_round_robin_slots_any() {
        let now = t("2027-01-01T00:00:00Z");
        let (morning, afternoon) = (nine_to_five(), afternoons());
        let idle = blocks(&[]);
        let busy = blocks(&[("2027-06-16T13:00:00Z", "2027-06-16T14:00:00Z")]);
        let hosts = [
            HostTimes {
                schedule: &morning,
                blocks: &idle,
            },
            HostTimes {
                schedule: &afternoon,
                blocks: &busy,
            },
        ];
        let rules = half_hour(0, None);
        let (from, to) = (t("2027-06-16T00:00:00Z"), t("2027-06-17T00:00:00Z"));
        let any = availability(&hosts, &rules, Need::Any, now, from, to);
        assert_eq!(any.slots.len(), 16);
        assert_eq!(any.slots[0].free, [0]);
        // 13:00 and 13:30 are blocked for the afternoon host; 14:00 is its first free slot.
        assert_eq!(any.slots[8].free, [0]);
        assert_eq!(any.slots[10].start, t("2027-06-16T14:00:00Z"));
        assert_eq!(any.slots[10].free, [0, 1]);
        let all = availability(&hosts, &rules, Need::All, now, from, to);
        let starts: Vec<DateTime<Utc>> = all.slots.iter().map(|s| s.start).collect();
        assert_eq!(starts.first(), Some(&t("2027-06-16T14:00:00Z")));
        assert_eq!(starts.len(), 6);
        assert!(all.slots.iter().all(|s| s.free == [0, 1]));
        // The whole afternoon blocked for the second host: collective is fully booked.
        let full = blocks(&[("2027-06-16T13:00:00Z", "2027-06-16T17:00:00Z")]);
        let hosts = [
            hosts[0],
            HostTimes {
                schedule: &afternoon,
                blocks: &full,
            },
        ];
        let none = availability(&hosts, &rules, Need::All, now, from, to);
        assert_eq!(none.slots, vec![]);
        assert_eq!(none.reason, Some(Reason::FullyBooked));
    }

    #[test]
    fn a_team_of_a_hundred_lists_each_free_host_past_the_sixty_fourth() {
        let now = t("2027-01-01T00:00:00Z");
        let morning = nine_to_five();
        let idle = blocks(&[]);
        let busy = blocks(&[("2027-06-16T09:00:00Z", "2027-06-16T10:00:00Z")]);
        let hosts: Vec<HostTimes<'_>> = (0..MAX_HOSTS)
            .map(|i| HostTimes {
                schedule: &morning,
                blocks: if i == 0 || i == 64 || i == 99 {
                    &busy
                } else {
                    &idle
                },
            })
            .collect();
        let rules = half_hour(0, None);
        let (from, to) = (t("2027-06-16T09:00:00Z"), t("2027-06-16T11:00:00Z"));
        let any = availability(&hosts, &rules, Need::Any, now, from, to);
        let busy_hour: Vec<usize> = (1..99).filter(|i| *i != 64).collect();
        assert_eq!(any.slots[0].free, busy_hour);
        assert_eq!(any.slots[2].free, (0..MAX_HOSTS).collect::<Vec<_>>());
        let all = availability(&hosts, &rules, Need::All, now, from, to);
        assert_eq!(all.slots.len(), 2);
        assert_eq!(all.slots[0].start, t("2027-06-16T10:00:00Z"));
        assert_eq!(
            free_hosts(&hosts, &rules, now, from, from + rules.duration),
            Ok(busy_hour)
        );
    }

    fn host(weight: u32, priority: u8) -> Host {
        Host {
            calendar_id: Uuid::now_v7(),
            weight,
            priority,
        }
    }

    #[test]
    fn a_thousand_round_robin_picks_follow_the_weights_within_five_percent() {
        let hosts = [host(1, 2), host(1, 2), host(2, 2), host(4, 2)];
        let mut counts = [0u64; 4];
        for _ in 0..1000 {
            counts[ranking(&hosts, &counts)[0]] += 1;
        }
        for (count, expected) in counts.iter().zip([125.0, 125.0, 250.0, 500.0]) {
            let off = (*count as f64 - expected).abs() / expected;
            assert!(off <= 0.05, "{counts:?}");
        }
    }

    #[test]
    fn a_higher_priority_host_is_picked_first_while_free_and_the_next_one_when_not() {
        let hosts = [host(1, 2), host(1, 4), host(1, 2)];
        let mut counts = [0u64; 3];
        for _ in 0..50 {
            let pick = ranking(&hosts, &counts)[0];
            assert_eq!(pick, 1);
            counts[pick] += 1;
        }
        // With the favourite busy, the caller takes the first ranked host that is free: the
        // other two share the bookings, the one with fewer first, the lower index on a tie.
        let free = [0, 2];
        let mut picks = Vec::new();
        for _ in 0..6 {
            let pick = ranking(&hosts, &counts)
                .into_iter()
                .find(|i| free.contains(i))
                .unwrap();
            picks.push(pick);
            counts[pick] += 1;
        }
        assert_eq!(picks, [0, 2, 0, 2, 0, 2]);
        assert_eq!(ranking(&hosts, &counts)[0], 1);
    }

    #[test]
    fn ranking_compares_loads_exactly_then_by_weight_then_by_index() {
        // Loads of k + 1/999 against k, and k against k + 1/1000, for k = 10^16: as f64 each
        // pair is equal and the heavier host would win both times.
        let k: u64 = 10_u64.pow(16);
        let hosts = [host(999, 2), host(1000, 2)];
        assert_eq!(ranking(&hosts, &[999 * k + 1, 1000 * k]), [1, 0]);
        assert_eq!(ranking(&hosts, &[999 * k, 1000 * k + 1]), [0, 1]);
        assert_eq!(ranking(&hosts, &[u64::MAX, u64::MAX]), [1, 0]);
        // Equal loads (2/1 and 4/2): the heavier host first; equal hosts by index.
        let hosts = [host(1, 2), host(2, 2), host(2, 2)];
        assert_eq!(ranking(&hosts, &[2, 4, 4]), [1, 2, 0]);
        assert_eq!(ranking(&hosts, &[2, 4]), [2, 1, 0]);
        // A weight of zero never wins within its priority.
        let hosts = [host(0, 2), host(1, 2), host(1, 1)];
        assert_eq!(ranking(&hosts, &[0, 5, 0]), [1, 0, 2]);
    }

    fn fields(result: Result<(), Invalid>) -> Vec<String> {
        result.unwrap_err().0.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn host_lists_fit_their_assignment() {
        let two = [host(1, 2), host(MAX_WEIGHT, MAX_PRIORITY)];
        assert!(check_hosts(Assignment::Single, &[]).is_ok());
        assert!(check_hosts(Assignment::RoundRobin, &two).is_ok());
        assert!(check_hosts(Assignment::Collective, &two[..1]).is_ok());
        assert_eq!(fields(check_hosts(Assignment::Single, &two)), ["hosts"]);
        assert_eq!(fields(check_hosts(Assignment::RoundRobin, &[])), ["hosts"]);
        assert_eq!(fields(check_hosts(Assignment::Collective, &[])), ["hosts"]);
        let many: Vec<Host> = (0..=MAX_HOSTS).map(|_| host(1, 2)).collect();
        assert!(check_hosts(Assignment::Collective, &many[..MAX_HOSTS]).is_ok());
        assert_eq!(
            fields(check_hosts(Assignment::Collective, &many)),
            ["hosts"]
        );
    }

    #[test]
    fn every_bad_host_field_is_named_at_once() {
        let twice = host(1, 2);
        let hosts = [
            host(0, 2),
            host(MAX_WEIGHT + 1, MAX_PRIORITY + 1),
            twice,
            host(1, 0),
            Host { weight: 7, ..twice },
        ];
        let err = check_hosts(Assignment::RoundRobin, &hosts).unwrap_err();
        let named: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            named,
            [
                "hosts[0].weight",
                "hosts[1].weight",
                "hosts[1].priority",
                "hosts[4].calendarId"
            ]
        );
        assert!(
            err.0[3].message.contains("hosts[2]"),
            "{}",
            err.0[3].message
        );
        // A single event type with hosts hears about the list and about each bad host.
        assert_eq!(
            fields(check_hosts(Assignment::Single, &hosts[..2])),
            [
                "hosts",
                "hosts[0].weight",
                "hosts[1].weight",
                "hosts[1].priority"
            ]
        );
    }

    #[test]
    fn assignments_are_spelled_as_the_api_spells_them() {
        for a in [
            Assignment::Single,
            Assignment::RoundRobin,
            Assignment::Collective,
        ] {
            assert_eq!(Assignment::parse(a.as_str()), Some(a));
        }
        for bad in ["", "round_robin", "RoundRobin", "Single", " collective"] {
            assert_eq!(Assignment::parse(bad), None, "{bad}");
        }
        assert!(!Assignment::Single.is_team());
        assert!(Assignment::RoundRobin.is_team() && Assignment::Collective.is_team());
    }

    #[test]
    fn hosts_are_stored_with_camel_case_keys() {
        let h = host(3, 1);
        let json = serde_json::to_value(h).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "calendarId": h.calendar_id.to_string(),
                "weight": 3,
                "priority": 1,
            })
        );
        assert_eq!(serde_json::from_value::<Host>(json).unwrap(), h);
    }

    /// 50 hosts, 31 days, half-hour slots in 09:00-17:00-like hours, 60 bookings each: one office
    /// (every host on the same schedule) and fifty different calendars (four zones, shifted hours,
    /// a day off each). Run with
    /// `cargo test --release -p quando-api --lib domain::team -- --ignored --nocapture`; a debug
    /// build is an order of magnitude slower and proves nothing about speed.
    #[test]
    #[ignore]
    fn fifty_hosts_over_a_month_take_well_under_five_milliseconds() {
        let mut rng = Rng(42);
        let from = t("2026-10-01T00:00:00Z");
        let office = |i: usize, distinct: bool| {
            let zone = Zone::parse(if distinct {
                ZONES[i % 4]
            } else {
                "Europe/Rome"
            })
            .unwrap();
            let start = if distinct { 32 + (i % 8) as u64 } else { 36 };
            let hours: Vec<WeeklyRangeDoc> = DAYS[..5]
                .iter()
                .map(|d| weekly(d, &hhmm(start), &hhmm(start + 32)))
                .collect();
            let day_off = OverrideDoc {
                date: (from.date_naive() + Days::new(i as u64 % 31))
                    .format("%Y-%m-%d")
                    .to_string(),
                ranges: vec![],
            };
            let overrides = if distinct { vec![day_off] } else { vec![] };
            Schedule::from_docs(zone, Some(&hours), &overrides).unwrap()
        };
        let indexes: Vec<BlockIndex> = (0..50)
            .map(|_| {
                BlockIndex::new(
                    (0..60)
                        .map(|_| {
                            let start = from + Duration::minutes(30 * rng.below(31 * 48) as i64);
                            Block {
                                start,
                                end: start + Duration::minutes(30),
                            }
                        })
                        .collect(),
                )
            })
            .collect();
        let rules = half_hour(0, None);
        let to = from + Duration::days(31);
        let now = from - Duration::days(1);
        for (team, distinct) in [("one office", false), ("fifty calendars", true)] {
            let schedules: Vec<Schedule> = (0..50).map(|i| office(i, distinct)).collect();
            let hosts: Vec<HostTimes<'_>> = schedules
                .iter()
                .zip(&indexes)
                .map(|(schedule, blocks)| HostTimes { schedule, blocks })
                .collect();
            for need in [Need::Any, Need::All] {
                let mut times: Vec<std::time::Duration> = (0..51)
                    .map(|_| {
                        let started = std::time::Instant::now();
                        let found = availability(&hosts, &rules, need, now, from, to);
                        std::hint::black_box(found);
                        started.elapsed()
                    })
                    .collect();
                times.sort();
                let listed = availability(&hosts, &rules, need, now, from, to)
                    .slots
                    .len();
                let median = times[times.len() / 2];
                println!(
                    "{team}, {need:?}: median {median:?}, fastest {:?}, slowest {:?}, {listed} slots",
                    times[0],
                    times[times.len() - 1]
                );
                if !cfg!(debug_assertions) {
                    assert!(median < std::time::Duration::from_millis(5), "{median:?}");
                }
            }
        }
    }
}
