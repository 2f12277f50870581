//! `quando-bench`: measures Quando over HTTP against a server started in this process on
//! 127.0.0.1:0, on a fresh SQLite file or a fresh PostgreSQL database. Numbers are for
//! comparing runs on one machine, not absolute claims; the README records the last run.
//!
//! `cargo run --release -p quando-bench -- availability` seeds one calendar with 10,000
//! events (weekday office hours over three years, the window in the middle of them) and asks
//! for 31 days of availability, sequentially, reporting latency percentiles.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, TimeZone, Utc, Weekday};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use quando_api::admin;
use quando_api::config::Config;
use quando_api::domain::booking::Block;
use quando_api::domain::ids::{CalendarId, EventTypeId, OrgId};
use quando_api::domain::schedule::WeeklyRangeDoc;
use quando_api::domain::time::Zone;
use quando_api::repo;
use quando_api::state::AppState;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait};

#[derive(Parser)]
#[command(name = "quando-bench", about = "Benchmarks of Quando over HTTP")]
struct Cli {
    /// Also run on PostgreSQL: a server URL whose user may create databases
    /// (e.g. postgres://postgres@127.0.0.1:5432/test). A scratch database is created and dropped.
    #[arg(long, env = "QUANDO_BENCH_POSTGRES_URL", global = true)]
    postgres_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Availability for 31 days on a calendar with many existing events.
    Availability {
        /// Existing events on the calendar.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Measured requests (after 20 warm-up requests).
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Command::Availability { events, requests } => {
            let dir = tempfile::tempdir()?;
            let sqlite = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
            availability("sqlite", &sqlite, events, requests).await?;
            if let Some(url) = cli.postgres_url {
                let (db_url, cleanup) = scratch_postgres(&url).await?;
                let result = availability("postgres", &db_url, events, requests).await;
                cleanup.await?;
                result?;
            }
        }
    }
    Ok(())
}

/// Creates a scratch database on the server of `url`; the returned future drops it.
async fn scratch_postgres(
    url: &str,
) -> Result<
    (
        String,
        impl std::future::Future<Output = Result<(), sea_orm::DbErr>>,
    ),
    Box<dyn std::error::Error>,
> {
    let name = format!("quando_bench_{}", uuid::Uuid::now_v7().simple());
    let admin_db = sea_orm::Database::connect(url).await?;
    admin_db
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    let db_url = format!("{base}/{name}");
    let cleanup = async move {
        admin_db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .map(|_| ())
    };
    Ok((db_url, cleanup))
}

struct Fixture {
    key: String,
    calendar: CalendarId,
    event_type: EventTypeId,
    window_from: DateTime<Utc>,
}

/// An organization with one Rome calendar (weekdays 09:00-17:00), a 30-minute event type and
/// `count` confirmed 30-minute events on weekday slots, centred on the measured window.
async fn seed(
    db: &DatabaseConnection,
    count: usize,
) -> Result<Fixture, Box<dyn std::error::Error>> {
    let created = admin::create_organization(db, "bench").await?;
    let org = OrgId(created.organization.id);
    let zone = Zone::parse("Europe/Rome")?;
    let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    let calendar = repo::calendars::create(
        db,
        org,
        repo::calendars::NewCalendar {
            name: "Bench".into(),
            timezone: zone,
            description: None,
            working_hours: Some(
                weekdays
                    .iter()
                    .map(|d| WeeklyRangeDoc {
                        day: (*d).into(),
                        start: "09:00".into(),
                        end: "17:00".into(),
                    })
                    .collect(),
            ),
            date_overrides: Vec::new(),
        },
    )
    .await?;
    let event_type = repo::event_types::create(
        db,
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
        },
    )
    .await?;

    // Every third weekday slot, walking out from the window's start in both directions, so
    // the window holds a realistic third of its slots booked and the rest is history/future.
    let window_from = Utc::now() + Span::days(60);
    let window_date = window_from.with_timezone(&zone.0).date_naive();
    let mut starts = Vec::with_capacity(count);
    let mut offset = 0i64;
    while starts.len() < count {
        for date in [
            window_date + Span::days(offset),
            window_date - Span::days(offset + 1),
        ] {
            if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                continue;
            }
            for slot in (0..16).step_by(3) {
                if starts.len() < count {
                    starts.push(local(zone, date, 9 * 60 + slot * 30));
                }
            }
        }
        offset += 1;
    }
    let now = Utc::now();
    let txn = db.begin().await?;
    for chunk in starts.chunks(500) {
        let rows = chunk.iter().map(|start| {
            let end = *start + Span::minutes(30);
            let block = Block { start: *start, end };
            entity::events::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                org_id: Set(org.0),
                calendar_id: Set(calendar.id),
                event_type_id: Set(event_type.id),
                start_time: Set(*start),
                end_time: Set(end),
                block_start: Set(block.start),
                block_end: Set(block.end),
                timezone: Set("Europe/Rome".into()),
                customer_name: Set(Some("Bench".into())),
                customer_phone: Set(None),
                customer_email: Set(None),
                notes: Set(None),
                title: Set(None),
                location: Set(None),
                status: Set("confirmed".into()),
                booked_via: Set("api".into()),
                cancellation_reason: Set(None),
                cancelled_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
        });
        entity::events::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(Fixture {
        key: created.api_key.key,
        calendar: CalendarId(calendar.id),
        event_type: EventTypeId(event_type.id),
        window_from,
    })
}

fn local(zone: Zone, date: NaiveDate, minutes: i64) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default() + Span::minutes(minutes);
    zone.0
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| zone.instant_lenient(naive))
}

/// Starts the real server on 127.0.0.1:0 and returns its base URL.
async fn serve(db: DatabaseConnection, url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let state = AppState::new(
        db,
        Config {
            database_url: url.to_string(),
            ..Config::default()
        },
    );
    let acceptor =
        poem::listener::Listener::into_acceptor(poem::listener::TcpListener::bind("127.0.0.1:0"))
            .await?;
    let addr = poem::listener::Acceptor::local_addr(&acceptor)
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or("no local address")?;
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(quando_api::app(state)));
    Ok(format!("http://{addr}"))
}

async fn availability(
    backend: &str,
    url: &str,
    events: usize,
    requests: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let db = quando_api::db::connect(url).await?;
    quando_api::db::migrate(&db).await?;
    let started = Instant::now();
    let fx = seed(&db, events).await?;
    let seeded = started.elapsed();
    let base = serve(db, url).await?;
    let client = reqwest::Client::new();
    let from = fx.window_from;
    let to = from + Span::days(31);
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let target = format!(
        "{base}/v1/calendar/availability?calendarId={}&eventTypeId={}&dateFrom={}&dateTo={}",
        fx.calendar.0,
        fx.event_type.0,
        fmt(from),
        fmt(to)
    );
    let mut slots = 0;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..(requests + 20) {
        let t0 = Instant::now();
        let resp = client.get(&target).bearer_auth(&fx.key).send().await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        let elapsed = t0.elapsed();
        if !status.is_success() {
            return Err(format!("availability answered {status}: {body}").into());
        }
        slots = body["data"]["slots"].as_array().map_or(0, Vec::len);
        if i >= 20 {
            histogram.record(micros(elapsed))?;
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "availability {backend}: {events} events on the calendar, 31-day window with {slots} free slots, {requests} sequential requests (seeded in {:.1}s)",
        seeded.as_secs_f64()
    );
    println!(
        "  median {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}
