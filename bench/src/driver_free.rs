//! The driver-free SQLite baseline (issue 17): the create transaction's storage part, the
//! overlap check and the insert on the seeded file's own schema, through SQLite's C API
//! (`rusqlite`) with no async driver, pool or ORM: one thread, one booking per `BEGIN IMMEDIATE`
//! transaction, `synchronous=FULL` (one fsync per booking, as a server that acknowledges each
//! booking on its own commit would need). It is what a single writer could do on this disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Timelike;
use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::AnyError;
use crate::load::{Measured, histogram, micros};
use crate::seed::{FreshSlots, Seeded, ZONE, block};

/// SQLite's text form of an instant as sqlx writes it (`2027-05-04T09:00:00+00:00`), so the
/// check compares like with like.
fn text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// Books distinct free slots for `warmup + measure` on the SQLite file at `path`; measures the
/// `measure` part.
pub fn run(
    path: &std::path::Path,
    seeded: &Seeded,
    slots: Arc<FreshSlots>,
    warmup: Duration,
    measure: Duration,
) -> Result<Measured, AnyError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let org = seeded.org.0.as_bytes().to_vec();
    let event_type = seeded.event_type.as_bytes().to_vec();
    let mut hist = histogram();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut requests, mut failures, mut failure_example) = (0u64, 0u64, None);
    let started = Instant::now();
    let mut measuring_since = None;
    loop {
        let now = Instant::now();
        if measuring_since.is_none() && now >= started + warmup {
            measuring_since = Some(now);
        }
        if measuring_since.is_some_and(|m| now >= m + measure) {
            break;
        }
        let (calendar, start, end) = slots.next();
        let b = block(start, end);
        let t0 = Instant::now();
        let outcome = book(
            &mut conn,
            &org,
            &event_type,
            calendar,
            start,
            end,
            b.start,
            b.end,
        );
        let took = t0.elapsed();
        if measuring_since.is_some() {
            requests += 1;
            let _ = hist.record(micros(took).max(1));
            match outcome {
                Ok(status) => *statuses.entry(status).or_default() += 1,
                Err(e) => {
                    failures += 1;
                    failure_example.get_or_insert(e.to_string());
                }
            }
        }
    }
    Ok(Measured {
        requests,
        elapsed: measuring_since.map_or(Duration::ZERO, |m| m.elapsed()),
        histogram: hist,
        statuses,
        failures,
        failure_example,
    })
}

#[allow(clippy::too_many_arguments)]
fn book(
    conn: &mut Connection,
    org: &[u8],
    event_type: &[u8],
    calendar: Uuid,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    block_start: chrono::DateTime<chrono::Utc>,
    block_end: chrono::DateTime<chrono::Utc>,
) -> Result<u16, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let calendar = calendar.as_bytes().to_vec();
    let taken = {
        let mut check = tx.prepare_cached(
            "SELECT 1 FROM events WHERE org_id = ?1 AND calendar_id = ?2 \
             AND status IN ('confirmed', 'tentative') AND block_end > ?3 AND block_start < ?4 \
             AND transparency = 'opaque' LIMIT 1",
        )?;
        check.exists(params![org, calendar, text(block_start), text(block_end)])?
    };
    if taken {
        return Ok(409);
    }
    let now = text(chrono::Utc::now().with_nanosecond(0).unwrap_or_default());
    tx.prepare_cached(
        "INSERT INTO events (id, org_id, calendar_id, event_type_id, start_time, end_time, \
         block_start, block_end, timezone, customer_name, customer_phone, customer_email, \
         title, status, booked_via, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'confirmed', 'api', \
         ?14, ?14)",
    )?
    .execute(params![
        Uuid::now_v7().as_bytes().to_vec(),
        org,
        calendar,
        event_type,
        text(start),
        text(end),
        text(block_start),
        text(block_end),
        ZONE,
        "Laura Bianchi",
        "+390612345678",
        "laura.bianchi@example.com",
        "Demo Prodotto",
        now,
    ])?;
    tx.commit()?;
    Ok(201)
}
