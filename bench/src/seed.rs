//! The organization every workload runs against, written straight through the library (no
//! HTTP): calendars with office hours, one event type, and a history of confirmed events
//! bulk-inserted in chunks. Also the scratch PostgreSQL database and the generator of free
//! slots that the create workloads and the raw-storage baseline book.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, TimeZone, Utc, Weekday};
use quando_api::admin;
use quando_api::auth::Scope;
use quando_api::domain::booking::Block;
use quando_api::domain::ids::{EventId, OrgId};
use quando_api::domain::schedule::WeeklyRangeDoc;
use quando_api::domain::team::{Assignment, Host};
use quando_api::domain::time::Zone;
use quando_api::repo;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::AnyError;

/// Office hours: weekdays 09:00-17:00 local, sixteen 30-minute slots a day.
pub const ZONE: &str = "Europe/Rome";
const DAY_START_MINUTES: i64 = 9 * 60;
const SLOT_MINUTES: i64 = 30;
const SLOTS_PER_DAY: u64 = 16;
/// Rows per INSERT (21 columns: 21,000 bind parameters, under both SQLite's 32,766 and
/// PostgreSQL's 65,535) and rows per transaction.
const ROWS_PER_INSERT: usize = 1_000;
const ROWS_PER_TRANSACTION: usize = 50_000;
/// Seeded events taken as targets of the create-taken workload (future ones only).
const TAKEN_SAMPLE: usize = 100_000;

/// What the workloads need to know about the seeded organization.
pub struct Seeded {
    pub org: OrgId,
    /// A key with both scopes and a per-minute limit of 1,000,000,000.
    pub key: String,
    pub calendars: Vec<Uuid>,
    pub event_type: Uuid,
    /// Every seeded event, for get-by-id.
    pub event_ids: Vec<Uuid>,
    /// (calendar, start, end) of seeded events in the future: booking them again is a conflict.
    pub taken: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>,
    /// The local dates the history covers, `[first, last]`.
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    /// Today (local): windows after it hold bookable future slots.
    pub today: NaiveDate,
    pub events_per_calendar: usize,
    /// The team of the team-availability workload, when it runs.
    pub team: Option<Team>,
    pub elapsed: Duration,
}

/// Weekday number `n` counted from the Monday `base` (five per week).
fn weekday_date(base: NaiveDate, n: u64) -> NaiveDate {
    base + Span::days(((n / 5) * 7 + n % 5) as i64)
}

/// The instant of slot `slot` (0..16) of a local date.
fn slot_start(zone: Zone, date: NaiveDate, slot: u64) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default()
        + Span::minutes(DAY_START_MINUTES + slot as i64 * SLOT_MINUTES);
    zone.0
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| zone.instant_lenient(naive))
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Span::days(date.weekday().num_days_from_monday().into())
}

fn working_hours() -> Vec<WeeklyRangeDoc> {
    ["monday", "tuesday", "wednesday", "thursday", "friday"]
        .iter()
        .map(|d| WeeklyRangeDoc {
            day: (*d).into(),
            start: "09:00".into(),
            end: "17:00".into(),
        })
        .collect()
}

/// Seeds one organization: `calendars` Rome calendars (weekdays 09:00-17:00), one 30-minute
/// event type for any calendar, and `events` confirmed 30-minute events spread evenly over the
/// calendars. Each calendar's events sit on distinct weekday office-hour slots, evenly spaced
/// over a history that ends a year from now and starts two years ago (earlier when a calendar
/// needs more room: at most one slot in two is booked), so every calendar has a past, a
/// present and a future.
pub async fn seed(
    db: &DatabaseConnection,
    events: usize,
    calendars: usize,
) -> Result<Seeded, AnyError> {
    let started = Instant::now();
    let created = admin::create_organization(db, "bench").await?;
    let org = OrgId(created.organization.id);
    let key = admin::create_key(db, org.0, &Scope::ALL, Some("bench"), Some(1_000_000_000)).await?;
    let zone = Zone::parse(ZONE)?;

    let txn = db.begin().await?;
    let mut calendar_ids = Vec::with_capacity(calendars);
    for i in 0..calendars {
        let calendar = repo::calendars::create(
            &txn,
            org,
            repo::calendars::NewCalendar {
                name: format!("Studio {i}"),
                timezone: zone,
                description: None,
                working_hours: Some(working_hours()),
                date_overrides: Vec::new(),
                owner_id: None,
                metadata: Default::default(),
                is_default: false,
            },
        )
        .await?;
        calendar_ids.push(calendar.id);
    }
    let event_type = repo::event_types::create(
        &txn,
        org,
        repo::event_types::NewEventType {
            calendar_id: None,
            name: "30 min".into(),
            duration_minutes: 30,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: None,
            slot_interval_minutes: None,
            max_advance_days: None,
            location: None,
            active: true,
            assignment: Assignment::Single,
            hosts: Vec::new(),
        },
    )
    .await?;
    txn.commit().await?;

    // The history's geometry: whole weeks, ending 52 weeks after this week's Monday.
    let now = Utc::now();
    let today = now.with_timezone(&zone.0).date_naive();
    let per_calendar_max = events.div_ceil(calendars.max(1));
    let min_weekdays = 3 * 52 * 5;
    let weekdays = (min_weekdays as u64).max((2 * per_calendar_max as u64).div_ceil(SLOTS_PER_DAY));
    let weeks = weekdays.div_ceil(5);
    let end_monday = monday_of(today) + Span::weeks(52);
    let first_monday = end_monday - Span::weeks(weeks as i64);
    let total_slots = weeks * 5 * SLOTS_PER_DAY;

    let count_of = |c: usize| events / calendars + usize::from(c < events % calendars);
    let mut event_ids = Vec::with_capacity(events);
    let mut taken = Vec::new();
    let mut rows = Vec::with_capacity(ROWS_PER_TRANSACTION);
    let soon = now + Span::days(1);
    // Walk k-th events of every calendar together, so inserts arrive roughly in time order.
    for k in 0..per_calendar_max {
        for (c, calendar) in calendar_ids.iter().enumerate() {
            let n = count_of(c);
            if k >= n {
                continue;
            }
            let stride = total_slots as f64 / n as f64;
            let phase = (c as u64 * 7_919) % (stride as u64).max(1);
            let slot = (k as f64 * stride) as u64 + phase;
            let date = weekday_date(first_monday, slot / SLOTS_PER_DAY);
            let start = slot_start(zone, date, slot % SLOTS_PER_DAY);
            let end = start + Span::minutes(SLOT_MINUTES);
            let id = Uuid::now_v7();
            let i = event_ids.len();
            event_ids.push(id);
            if start > soon && taken.len() < TAKEN_SAMPLE && i % 3 == 0 {
                taken.push((calendar.0, start, end));
            }
            rows.push(entity::events::ActiveModel {
                id: Set(EventId(id)),
                org_id: Set(org),
                calendar_id: Set(*calendar),
                event_type_id: Set(Some(event_type.id)),
                start_time: Set(start),
                end_time: Set(end),
                block_start: Set(start),
                block_end: Set(end),
                timezone: Set(ZONE.into()),
                customer_name: Set(Some(format!("Cliente {i}"))),
                customer_phone: Set(Some(format!("+3906{:08}", i % 100_000_000))),
                customer_email: Set(Some(format!("cliente{i}@example.com"))),
                notes: Set(None),
                title: Set(Some("Consulenza".into())),
                location: Set(None),
                status: Set(entity::events::EventStatus::Confirmed),
                booked_via: Set("api".into()),
                cancellation_reason: Set(None),
                cancelled_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                // The richer event's columns take their database defaults (opaque, not all-day).
                ..Default::default()
            });
            if rows.len() == ROWS_PER_TRANSACTION {
                insert_rows(db, std::mem::take(&mut rows)).await?;
                progress(event_ids.len(), events, started);
            }
        }
    }
    if !rows.is_empty() {
        insert_rows(db, rows).await?;
    }
    Ok(Seeded {
        org,
        key: key.key,
        calendars: calendar_ids.iter().map(|c| c.0).collect(),
        event_type: event_type.id.0,
        event_ids,
        taken,
        first_date: first_monday,
        last_date: end_monday - Span::days(3),
        today,
        events_per_calendar: per_calendar_max,
        team: None,
        elapsed: started.elapsed(),
    })
}

/// The team-availability workload's team: round-robin hosts with a year of bookings each.
pub const TEAM_HOSTS: usize = 50;
pub const TEAM_EVENTS_PER_HOST: usize = 1_000;

/// Working hours of the hosts, cycled over them: (zone, local ranges Monday to Friday, in
/// minutes after midnight). Sixteen 30-minute slots a day each; some shifted, some with a
/// lunch break.
const TEAM_HOURS: [(&str, &[(i64, i64)]); 8] = [
    ("Europe/Rome", &[(9 * 60, 17 * 60)]),
    ("Europe/London", &[(9 * 60, 17 * 60)]),
    ("America/New_York", &[(9 * 60, 17 * 60)]),
    ("Europe/Rome", &[(9 * 60, 13 * 60), (14 * 60, 18 * 60)]),
    ("Europe/London", &[(8 * 60, 16 * 60)]),
    ("America/New_York", &[(10 * 60, 18 * 60)]),
    ("Europe/Rome", &[(8 * 60 + 30, 16 * 60 + 30)]),
    ("America/New_York", &[(8 * 60, 12 * 60), (13 * 60, 17 * 60)]),
];

/// What the team-availability workload needs to know about its team.
pub struct Team {
    /// The round-robin event type (30 minutes, no buffers, no notice or advance limits).
    pub event_type: Uuid,
    pub calendars: Vec<Uuid>,
    pub events_per_host: usize,
    /// The local dates the bookings cover, `[first, last]` (the zones differ by hours only).
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub elapsed: Duration,
}

fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The local start (minutes after midnight) of slot `slot` (0..16) of a day with `ranges`.
fn team_slot_minutes(ranges: &[(i64, i64)], mut slot: i64) -> i64 {
    for (start, end) in ranges {
        let n = (end - start) / SLOT_MINUTES;
        if slot < n {
            return start + slot * SLOT_MINUTES;
        }
        slot -= n;
    }
    unreachable!("every TEAM_HOURS day has SLOTS_PER_DAY slots")
}

/// Seeds the team of the team-availability workload into the organization of `seeded`:
/// `TEAM_HOSTS` calendars with the working hours of `TEAM_HOURS` (cycled), one round-robin
/// 30-minute event type with them all as hosts (weight 1, priority 2), and
/// `TEAM_EVENTS_PER_HOST` confirmed 30-minute bookings of that type on each host: distinct
/// working-hour slots drawn at random (a fixed seed per host) from 52 weeks that start 12 weeks
/// before this week's Monday, about one slot in four. Each host's events carry the change
/// sequence numbers 1..=n in time order, and the calendar's counter is left at n, as if the
/// server had written them one by one.
pub async fn seed_team(db: &DatabaseConnection, seeded: &Seeded) -> Result<Team, AnyError> {
    let started = Instant::now();
    let org = seeded.org;

    let txn = db.begin().await?;
    let mut calendars = Vec::with_capacity(TEAM_HOSTS);
    let mut zones = Vec::with_capacity(TEAM_HOSTS);
    for i in 0..TEAM_HOSTS {
        let (zone_name, ranges) = TEAM_HOURS[i % TEAM_HOURS.len()];
        let zone = Zone::parse(zone_name)?;
        let hours = ["monday", "tuesday", "wednesday", "thursday", "friday"]
            .iter()
            .flat_map(|d| {
                ranges.iter().map(|(start, end)| WeeklyRangeDoc {
                    day: (*d).into(),
                    start: hhmm(*start),
                    end: hhmm(*end),
                })
            })
            .collect();
        let calendar = repo::calendars::create(
            &txn,
            org,
            repo::calendars::NewCalendar {
                name: format!("Host {i}"),
                timezone: zone,
                description: None,
                working_hours: Some(hours),
                date_overrides: Vec::new(),
                owner_id: None,
                metadata: Default::default(),
                is_default: false,
            },
        )
        .await?;
        calendars.push(calendar.id);
        zones.push((zone, zone_name, ranges));
    }
    let event_type = repo::event_types::create(
        &txn,
        org,
        repo::event_types::NewEventType {
            calendar_id: None,
            name: "Team demo".into(),
            duration_minutes: 30,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: None,
            slot_interval_minutes: None,
            max_advance_days: None,
            location: None,
            active: true,
            assignment: Assignment::RoundRobin,
            hosts: calendars
                .iter()
                .map(|c| Host {
                    calendar_id: c.0,
                    weight: 1,
                    priority: 2,
                })
                .collect(),
        },
    )
    .await?;
    txn.commit().await?;

    let weeks = 52u64;
    let first_monday = monday_of(seeded.today) - Span::weeks(12);
    let total_slots = weeks * 5 * SLOTS_PER_DAY;
    let n = TEAM_EVENTS_PER_HOST.min(total_slots as usize);
    // Each host's booked slots: a partial Fisher-Yates shuffle of all of them, then in time
    // order.
    let booked: Vec<Vec<u64>> = (0..TEAM_HOSTS)
        .map(|h| {
            let mut rng = crate::load::Rng::new(0x7ea_0000 + h as u64);
            let mut all: Vec<u64> = (0..total_slots).collect();
            for k in 0..n {
                let j = k + rng.below((all.len() - k) as u64) as usize;
                all.swap(k, j);
            }
            all.truncate(n);
            all.sort_unstable();
            all
        })
        .collect();

    let now = Utc::now();
    let mut rows = Vec::with_capacity(ROWS_PER_TRANSACTION);
    let mut written = 0usize;
    // The k-th bookings of every host together, so inserts arrive roughly in time order.
    for k in 0..n {
        for ((calendar, &(zone, zone_name, ranges)), slots) in
            calendars.iter().zip(&zones).zip(&booked)
        {
            let slot = slots[k];
            let date = weekday_date(first_monday, slot / SLOTS_PER_DAY);
            let minutes = team_slot_minutes(ranges, (slot % SLOTS_PER_DAY) as i64);
            let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default() + Span::minutes(minutes);
            let start = zone
                .0
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| zone.instant_lenient(naive));
            let end = start + Span::minutes(SLOT_MINUTES);
            let i = written;
            written += 1;
            rows.push(entity::events::ActiveModel {
                id: Set(EventId(Uuid::now_v7())),
                org_id: Set(org),
                calendar_id: Set(*calendar),
                event_type_id: Set(Some(event_type.id)),
                start_time: Set(start),
                end_time: Set(end),
                block_start: Set(start),
                block_end: Set(end),
                timezone: Set(zone_name.into()),
                customer_name: Set(Some(format!("Customer {i}"))),
                customer_phone: Set(Some(format!("+4420{:08}", i % 100_000_000))),
                customer_email: Set(Some(format!("customer{i}@example.com"))),
                notes: Set(None),
                title: Set(Some("Team demo".into())),
                location: Set(None),
                status: Set(entity::events::EventStatus::Confirmed),
                booked_via: Set("api".into()),
                cancellation_reason: Set(None),
                cancelled_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                change_seq: Set(k as i64 + 1),
                team_hosts: Set(None),
                // The other richer columns take their database defaults (opaque, not all-day).
                ..Default::default()
            });
            if rows.len() == ROWS_PER_TRANSACTION {
                insert_rows(db, std::mem::take(&mut rows)).await?;
            }
        }
    }
    if !rows.is_empty() {
        insert_rows(db, rows).await?;
    }
    // The calendars' counters, where the server would have left them.
    entity::calendars::Entity::update_many()
        .col_expr(
            entity::calendars::Column::ChangeSeq,
            sea_orm::sea_query::Expr::value(n as i64),
        )
        .filter(entity::calendars::Column::OrgId.eq(org.0))
        .filter(entity::calendars::Column::Id.is_in(calendars.iter().map(|c| c.0)))
        .exec(db)
        .await?;
    Ok(Team {
        event_type: event_type.id.0,
        calendars: calendars.iter().map(|c| c.0).collect(),
        events_per_host: n,
        first_date: first_monday,
        last_date: first_monday + Span::weeks(weeks as i64) - Span::days(3),
        elapsed: started.elapsed(),
    })
}

/// After seeding, on PostgreSQL: fresh statistics, as autovacuum would have them on a database
/// with this history.
pub async fn analyze(db: &DatabaseConnection) -> Result<(), AnyError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

/// The connection that seeds. On SQLite one connection with a 256 MiB page cache, so the
/// indexes led by calendar stay in memory while a million rows go in; durability as the
/// server's (WAL, synchronous FULL). On PostgreSQL the server's pool.
pub async fn seeding_connection(url: &str) -> Result<DatabaseConnection, AnyError> {
    if !quando_api::db::is_sqlite(url) {
        return Ok(quando_api::db::connect(url).await?);
    }
    let mut opts = sea_orm::ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .max_connections(1)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                .pragma("cache_size", "-262144")
        });
    Ok(sea_orm::Database::connect(opts).await?)
}

async fn insert_rows(
    db: &DatabaseConnection,
    mut rows: Vec<entity::events::ActiveModel>,
) -> Result<(), AnyError> {
    let txn = db.begin().await?;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(ROWS_PER_INSERT));
        entity::events::Entity::insert_many(std::mem::replace(&mut rows, rest))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

fn progress(done: usize, total: usize, started: Instant) {
    if done.is_multiple_of(200_000) {
        eprintln!(
            "  seeded {done}/{total} events ({:.0}s)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Distinct free slots for new bookings: weekday office hours from the first Monday of 2035
/// (nothing is seeded that far ahead), round-robin over the calendars. One counter serves the
/// raw-storage baseline and the HTTP create workloads of a backend, so no slot is booked twice.
pub struct FreshSlots {
    calendars: Vec<Uuid>,
    base: NaiveDate,
    zone: Zone,
    next: AtomicU64,
}

impl FreshSlots {
    pub fn new(calendars: Vec<Uuid>) -> Result<Self, AnyError> {
        let mut base = NaiveDate::from_ymd_opt(2035, 1, 1).ok_or("date")?;
        while base.weekday() != Weekday::Mon {
            base += Span::days(1);
        }
        Ok(FreshSlots {
            calendars,
            base,
            zone: Zone::parse(ZONE)?,
            next: AtomicU64::new(0),
        })
    }

    /// The next (calendar, start, end).
    pub fn next(&self) -> (Uuid, DateTime<Utc>, DateTime<Utc>) {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let c = self.calendars.len() as u64;
        let (calendar, n) = (self.calendars[(k % c) as usize], k / c);
        let date = weekday_date(self.base, n / SLOTS_PER_DAY);
        let start = slot_start(self.zone, date, n % SLOTS_PER_DAY);
        (calendar, start, start + Span::minutes(SLOT_MINUTES))
    }
}

/// The block a 30-minute event with no buffers occupies.
pub fn block(start: DateTime<Utc>, end: DateTime<Utc>) -> Block {
    Block::around(start, end, 0, 0)
}

/// A scratch database on the server of `url`; `drop_database` removes it.
pub struct ScratchPostgres {
    admin: DatabaseConnection,
    name: String,
    pub url: String,
}

impl ScratchPostgres {
    pub async fn create(url: &str) -> Result<Self, AnyError> {
        let name = format!("quando_bench_{}", Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
        let url = format!("{base}/{name}");
        Ok(ScratchPostgres { admin, name, url })
    }

    pub async fn drop_database(self) -> Result<(), AnyError> {
        self.admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        self.admin.close().await?;
        Ok(())
    }
}
