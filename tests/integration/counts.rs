//! Exact list totals from counters (`event_counts`, kept by the database in the same transaction
//! as every write of an event): after any mix of writes, committed or refused, raced or
//! sequential, through the API or by hand, the counters equal `count(*)` over `events`, and the
//! list's `total` equals both.

use std::collections::BTreeMap;

use futures::future::join_all;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Statement,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        list_totals_and_counters_equal_count_star_after_a_random_mix_of_writes_refused_ones_included,
        thirty_two_simultaneous_bookings_cancels_and_status_changes_leave_counters_equal_to_count_star,
        a_rolled_back_change_leaves_the_counters_and_a_committed_sql_change_moves_them,
        another_organizations_events_never_reach_a_total,
        folding_the_organizations_stripes_keeps_every_total_and_never_waits_for_a_booking,
    ]
}

const EVENTS: &str = "/v1/calendar/events";
const DAY: &str = "2027-03-15";

/// `HH:MM` on the cases' day, UTC.
fn at(slot: u32) -> (String, String) {
    let minutes = 8 * 60 + slot * 30;
    let start = format!("{DAY}T{:02}:{:02}:00Z", minutes / 60, minutes % 60);
    let end_minutes = minutes + 30;
    let end = format!("{DAY}T{:02}:{:02}:00Z", end_minutes / 60, end_minutes % 60);
    (start, end)
}

/// A small deterministic generator (the mix is the same on every run and both backends).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// (calendar, status) -> events, from `count(*)` over the organization's events.
async fn counted(app: &TestApp, org: Uuid) -> BTreeMap<(Uuid, String), i64> {
    use entity::events::{Column, Entity};
    let rows: Vec<(Uuid, String, i64)> = Entity::find()
        .filter(Column::OrgId.eq(org))
        .select_only()
        .column(Column::CalendarId)
        .column(Column::Status)
        .column_as(
            sea_orm::sea_query::ExprTrait::count(sea_orm::sea_query::Expr::col(Column::Id)),
            "n",
        )
        .group_by(Column::CalendarId)
        .group_by(Column::Status)
        .into_tuple()
        .all(&app.db)
        .await
        .expect("count(*) by calendar and status");
    rows.into_iter().map(|(c, s, n)| ((c, s), n)).collect()
}

/// (calendar, status) -> events, as the counters keep it (rows at zero left out).
async fn kept(app: &TestApp, org: Uuid) -> BTreeMap<(Uuid, String), i64> {
    use entity::event_counts::{Column, Entity};
    let rows = Entity::find()
        .filter(Column::OrgId.eq(org))
        .all(&app.db)
        .await
        .expect("event_counts");
    rows.into_iter()
        .filter(|r| r.n != 0)
        .map(|r| {
            let status = serde_json::to_value(r.status).expect("status");
            let status = status.as_str().unwrap_or_default().to_string();
            ((r.calendar_id.0, status), r.n)
        })
        .collect()
}

/// status -> events, as the organization's stripes add up (statuses at zero left out), and the
/// stripes it is spread over.
async fn kept_org(app: &TestApp, org: Uuid) -> (BTreeMap<String, i64>, Vec<i32>) {
    use entity::event_org_counts::{Column, Entity};
    let rows = Entity::find()
        .filter(Column::OrgId.eq(org))
        .all(&app.db)
        .await
        .expect("event_org_counts");
    let mut by = BTreeMap::new();
    let mut stripes = Vec::new();
    for r in rows {
        let status = serde_json::to_value(r.status).expect("status");
        *by.entry(status.as_str().unwrap_or_default().to_string())
            .or_default() += r.n;
        stripes.push(r.stripe);
    }
    by.retain(|_, n| *n != 0);
    stripes.sort_unstable();
    stripes.dedup();
    (by, stripes)
}

/// The list's `total` for a filter.
async fn total(app: &TestApp, key: &str, query: &[(&str, &str)]) -> i64 {
    let mut query = query.to_vec();
    query.push(("limit", "1"));
    let resp = app.get_query_as(key, EVENTS, &query).await;
    let (_, pagination) = assert_list(&resp);
    pagination["total"].as_i64().expect("total")
}

/// The counters equal `count(*)`, and every total the counters answer (the organization, each
/// status, each calendar, each calendar and status) equals `count(*)` too.
async fn assert_agree(app: &TestApp, org: Uuid, key: &str, calendars: &[String]) {
    let counted = counted(app, org).await;
    assert_eq!(kept(app, org).await, counted, "counters against count(*)");
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for ((_, status), n) in &counted {
        *by_status.entry(status.clone()).or_default() += n;
    }
    let (org_kept, stripes) = kept_org(app, org).await;
    assert_eq!(org_kept, by_status, "organization stripes against count(*)");
    if app.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        assert!(
            stripes.iter().all(|s| *s == 0),
            "SQLite writes stripe 0 only: {stripes:?}"
        );
    }
    let sum = |calendar: Option<&str>, status: Option<&str>| -> i64 {
        counted
            .iter()
            .filter(|((c, s), _)| {
                calendar.is_none_or(|x| c.to_string() == x) && status.is_none_or(|x| s == x)
            })
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(total(app, key, &[]).await, sum(None, None), "organization");
    for status in ["confirmed", "tentative", "cancelled"] {
        assert_eq!(
            total(app, key, &[("status", status)]).await,
            sum(None, Some(status)),
            "status {status}"
        );
    }
    for calendar in calendars {
        assert_eq!(
            total(app, key, &[("calendarId", calendar)]).await,
            sum(Some(calendar), None),
            "calendar {calendar}"
        );
        for status in ["confirmed", "tentative", "cancelled"] {
            assert_eq!(
                total(app, key, &[("calendarId", calendar), ("status", status)]).await,
                sum(Some(calendar), Some(status)),
                "calendar {calendar}, status {status}"
            );
        }
    }
}

/// Three open UTC calendars, a plain 30-minute type and a collective type over the first two.
struct Setup {
    calendars: Vec<String>,
    plain: String,
    collective: String,
}

async fn setup(app: &TestApp, key: &str) -> Setup {
    let mut calendars = Vec::new();
    for name in ["Studio A", "Studio B", "Studio C"] {
        let body = json!({"name": name, "timezone": "UTC"});
        calendars.push(id_of(&app.create_calendar(key, Some(body)).await));
    }
    let plain = id_of(&app.create_event_type(key, None, 30).await);
    let hosts = json!([{"calendarId": calendars[0]}, {"calendarId": calendars[1]}]);
    let collective = id_of(
        &app.create_event_type_with(
            key,
            json!({"name": "Insieme", "durationMinutes": 30, "assignment": "collective", "hosts": hosts}),
        )
        .await,
    );
    Setup {
        calendars,
        plain,
        collective,
    }
}

async fn list_totals_and_counters_equal_count_star_after_a_random_mix_of_writes_refused_ones_included(
    app: TestApp,
) {
    let s = setup(&app, &app.key).await;
    let mut rng = Lcg(0x5eed);
    let mut made: Vec<String> = Vec::new();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    for _ in 0..160 {
        let (start, end) = at(rng.below(10) as u32);
        let resp = match rng.below(8) {
            // A booking on a random calendar: the ten slots fill up, so many are 409.
            0..=2 => {
                let calendar = &s.calendars[rng.below(3) as usize];
                let mut body = event_body(calendar, &s.plain, &start, &end);
                if rng.below(3) == 0 {
                    body = with(body, json!({"status": "tentative"}));
                }
                app.post(EVENTS, &body).await
            }
            // A collective booking: two rows, or none when either host is busy.
            3 => {
                let body = json!({"eventTypeId": s.collective, "startTime": start});
                app.post(EVENTS, &body).await
            }
            // Bad input: refused before any write.
            4 if rng.below(4) == 0 => {
                let body = json!({"calendarId": s.calendars[0], "eventTypeId": s.plain, "startTime": "soon"});
                app.post(EVENTS, &body).await
            }
            4 | 5 if !made.is_empty() => {
                let id = &made[rng.below(made.len() as u64) as usize];
                let body = json!({"startTime": start, "endTime": end});
                app.patch(&format!("{EVENTS}/{id}"), &body).await
            }
            6 if !made.is_empty() => {
                let id = &made[rng.below(made.len() as u64) as usize];
                let status = ["confirmed", "tentative"][rng.below(2) as usize];
                app.patch(&format!("{EVENTS}/{id}"), &json!({"status": status}))
                    .await
            }
            _ if !made.is_empty() => {
                let id = &made[rng.below(made.len() as u64) as usize];
                app.post(&format!("{EVENTS}/{id}/cancel"), &json!({})).await
            }
            _ => continue,
        };
        *statuses.entry(resp.status).or_default() += 1;
        assert!(resp.status < 500, "{}", resp.describe());
        if resp.status == 201 {
            made.push(id_of(&resp.body["data"]));
            for host in resp.body["data"]["hosts"].as_array().into_iter().flatten() {
                if let Some(id) = host["eventId"].as_str() {
                    made.push(id.to_string());
                }
            }
        }
    }
    // The mix really had every outcome.
    for code in [200, 201, 400, 409] {
        assert!(
            statuses.get(&code).is_some_and(|n| *n > 0),
            "{code}: {statuses:?}"
        );
    }
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
}

async fn thirty_two_simultaneous_bookings_cancels_and_status_changes_leave_counters_equal_to_count_star(
    app: TestApp,
) {
    let s = setup(&app, &app.key).await;
    // Sixteen events to cancel and change while bookings race for four slots.
    let mut existing = Vec::new();
    for i in 0..16u32 {
        let (start, end) = at(10 + i);
        let calendar = &s.calendars[(i % 3) as usize];
        existing.push(id_of(
            &app.create_event(&app.key, calendar, &s.plain, &start, &end)
                .await,
        ));
    }
    let requests = (0..32u32).map(|i| {
        let app = &app;
        let s = &s;
        let existing = &existing;
        async move {
            match i % 4 {
                0 => {
                    let (start, end) = at(i % 3);
                    let calendar = &s.calendars[(i % 2) as usize];
                    app.post(EVENTS, &event_body(calendar, &s.plain, &start, &end))
                        .await
                }
                1 => {
                    let (start, _) = at(i % 3);
                    app.post(
                        EVENTS,
                        &json!({"eventTypeId": s.collective, "startTime": start}),
                    )
                    .await
                }
                // Two requests on each of eight events: a cancel and a status change race.
                2 => {
                    let id = &existing[(i / 4) as usize];
                    app.post(&format!("{EVENTS}/{id}/cancel"), &json!({})).await
                }
                _ => {
                    let id = &existing[(i / 4) as usize];
                    app.patch(&format!("{EVENTS}/{id}"), &json!({"status": "tentative"}))
                        .await
                }
            }
        }
    });
    let answers = join_all(requests).await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    let refused = answers.iter().filter(|r| r.status == 409).count();
    for r in &answers {
        assert!(r.status < 500, "{}", r.describe());
    }
    assert!(
        created > 0 && refused > 0,
        "{created} created, {refused} refused"
    );
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
}

async fn a_rolled_back_change_leaves_the_counters_and_a_committed_sql_change_moves_them(
    app: TestApp,
) {
    let s = setup(&app, &app.key).await;
    let (start, end) = at(0);
    let event = app
        .create_event(&app.key, &s.calendars[0], &s.plain, &start, &end)
        .await;
    let id = Uuid::parse_str(&id_of(&event)).expect("uuid");
    let before = kept(&app, app.org_id).await;

    // An operator's change in a transaction that is rolled back: nothing moves.
    let update = |status: &str, calendar: &str| {
        let backend = app.db.get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                "UPDATE events SET status = $1, calendar_id = $2 WHERE org_id = $3 AND id = $4"
            }
            _ => "UPDATE events SET status = ?, calendar_id = ? WHERE org_id = ? AND id = ?",
        };
        let calendar = Uuid::parse_str(calendar).expect("uuid");
        Statement::from_sql_and_values(
            backend,
            sql,
            [status.into(), calendar.into(), app.org_id.into(), id.into()],
        )
    };
    let tx = app.db.begin().await.expect("begin");
    let changed = tx
        .execute_raw(update("cancelled", &s.calendars[2]))
        .await
        .expect("update");
    assert_eq!(changed.rows_affected(), 1);
    tx.rollback().await.expect("rollback");
    assert_eq!(kept(&app, app.org_id).await, before);
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;

    // The same change committed: the event leaves (A, confirmed) for (C, cancelled).
    app.db
        .execute_raw(update("cancelled", &s.calendars[2]))
        .await
        .expect("update");
    let after = kept(&app, app.org_id).await;
    let a = Uuid::parse_str(&s.calendars[0]).expect("uuid");
    let c = Uuid::parse_str(&s.calendars[2]).expect("uuid");
    assert_eq!(after.get(&(a, "confirmed".to_string())), None, "{after:?}");
    assert_eq!(
        after.get(&(c, "cancelled".to_string())),
        Some(&1),
        "{after:?}"
    );
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
}

async fn another_organizations_events_never_reach_a_total(app: TestApp) {
    let s = setup(&app, &app.key).await;
    let (other_org, other_key) = app.new_org("Altra").await;
    let other = setup(&app, &other_key).await;
    for slot in 0..3 {
        let (start, end) = at(slot);
        app.create_event(&other_key, &other.calendars[0], &other.plain, &start, &end)
            .await;
    }
    let (start, end) = at(0);
    app.create_event(&app.key, &s.calendars[0], &s.plain, &start, &end)
        .await;
    assert_eq!(total(&app, &app.key, &[]).await, 1);
    assert_eq!(total(&app, &other_key, &[]).await, 3);
    // Another organization's calendar id filters to nothing, not to its count.
    let foreign: &[(&str, &str)] = &[("calendarId", other.calendars[0].as_str())];
    let resp = app.get_query_as(&app.key, EVENTS, foreign).await;
    assert!(
        resp.status == 404 || assert_list(&resp).1["total"] == json!(0),
        "{}",
        resp.describe()
    );
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
    assert_agree(&app, other_org, &other_key, &other.calendars).await;
}

/// On PostgreSQL each connection counts on a stripe of its own; housekeeping folds them into
/// stripe 0. A fold keeps every total, skips the stripe of a transaction still open instead of
/// waiting for it, and that transaction's change counts once it commits.
async fn folding_the_organizations_stripes_keeps_every_total_and_never_waits_for_a_booking(
    app: TestApp,
) {
    let s = setup(&app, &app.key).await;
    let booked = join_all((0..8u32).map(|i| {
        let (start, end) = at(i);
        let calendar = s.calendars[(i % 3) as usize].clone();
        let app = &app;
        let plain = &s.plain;
        async move {
            app.create_event(&app.key, &calendar, plain, &start, &end)
                .await
        }
    }))
    .await;
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
    let postgres = app.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let (_, stripes) = kept_org(&app, app.org_id).await;
    if postgres {
        assert!(
            stripes.iter().any(|s| *s != 0),
            "connections count on their own stripes: {stripes:?}"
        );
    }

    // A transaction holds its stripe (a change not yet committed) while the organization folds.
    let id = Uuid::parse_str(&id_of(&booked[0])).expect("uuid");
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "UPDATE events SET status = 'cancelled' WHERE org_id = $1 AND id = $2"
        }
        _ => "UPDATE events SET status = 'cancelled' WHERE org_id = ? AND id = ?",
    };
    let open = if postgres {
        let tx = app.db.begin().await.expect("begin");
        let pid = tx
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT pg_backend_pid() AS pid",
            ))
            .await
            .expect("pid")
            .expect("a row")
            .try_get::<i32>("", "pid")
            .expect("pid");
        // The transaction's stripe rows exist, committed, before it changes them (with n = 0,
        // so no total moves): its update then locks rows the fold can see and must skip. Had
        // its connection booked nothing yet, it would insert them, and an uncommitted insert is
        // invisible to the fold rather than locked.
        app.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO event_org_counts (org_id, stripe, status, n) \
                 VALUES ($1, $2, 'confirmed', 0), ($1, $2, 'cancelled', 0) \
                 ON CONFLICT (org_id, stripe, status) DO NOTHING",
                [app.org_id.into(), pid.into()],
            ))
            .await
            .expect("stripe rows");
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [app.org_id.into(), id.into()],
        ))
        .await
        .expect("update");
        Some((tx, pid))
    } else {
        None
    };
    let org = quando_api::domain::ids::OrgId(app.org_id);
    // Would hang here if the fold waited for the open transaction's row.
    let fold = quando_api::repo::events::fold_org_counts(&app.db, org);
    tokio::time::timeout(std::time::Duration::from_secs(60), fold)
        .await
        .expect("the fold does not wait for an open transaction")
        .expect("fold");
    let (_, stripes) = kept_org(&app, app.org_id).await;
    if let Some((tx, pid)) = open {
        assert_eq!(stripes, vec![0, pid], "stripe 0 and the open transaction's");
        tx.commit().await.expect("commit");
    } else {
        app.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [app.org_id.into(), id.into()],
            ))
            .await
            .expect("update");
    }
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
    assert_eq!(total(&app, &app.key, &[("status", "cancelled")]).await, 1);

    // Folded again with nothing open: one stripe, the same totals.
    quando_api::repo::events::fold_org_counts(&app.db, org)
        .await
        .expect("fold");
    assert_eq!(kept_org(&app, app.org_id).await.1, vec![0]);
    assert_agree(&app, app.org_id, &app.key, &s.calendars).await;
}
