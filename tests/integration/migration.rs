//! The migration to Citus-ready keys and the richer event (m20261201_000006), on a database that
//! already holds data: built by the migrations before it, filled with rows in every table, then
//! migrated. Every row must come through with its values, the new columns with their defaults,
//! and the new constraints must hold: composite foreign keys on both backends, the exclusion
//! constraint (now with `org_id` and transparency) on PostgreSQL.
//!
//! These are plain trials (no server): `sqlite::migration::*` always, `postgres::migration::*`
//! when `QUANDO_TEST_POSTGRES_URL` is set.

use std::future::Future;
use std::time::Duration;

use ::migration::{Migrator, MigratorTrait};
use chrono::{DateTime, TimeZone, Utc};
use libtest_mimic::{Failed, Trial};
use sea_orm::{
    ActiveValue::NotSet, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, QueryOrder, QueryTrait, SqlErr, Statement,
};
use serde_json::json;
use uuid::Uuid;

use entity::events::EventStatus;
use entity::ids::{ApiKeyId, CalendarId, EventId, EventTypeId, OrgId};
use entity::{api_keys, calendars, event_types, events, idempotency_keys, organizations};

/// Migrations applied before the one under test.
const BEFORE: u32 = 5;

type Check = fn(&Migrated) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + '_>>;

pub fn trials(postgres_url: Option<String>) -> Vec<Trial> {
    let checks: [(&str, Check, bool); 8] = [
        (
            "every_row_of_every_table_is_kept_with_its_values",
            |m| Box::pin(every_row_is_kept(m)),
            true,
        ),
        (
            "existing_events_get_the_new_columns_defaults_opaque_and_not_all_day",
            |m| Box::pin(new_columns_have_defaults(m)),
            true,
        ),
        (
            "the_composite_foreign_keys_refuse_a_calendar_or_event_type_of_another_organization",
            |m| Box::pin(composite_foreign_keys_hold(m)),
            true,
        ),
        (
            "every_index_is_there_after_the_rebuild_and_the_orm_updates_by_org_and_id",
            |m| Box::pin(indexes_and_keys(m)),
            true,
        ),
        (
            "the_google_id_ical_uid_and_series_indexes_cover_only_the_rows_that_carry_them",
            |m| Box::pin(dialect_indexes_are_partial(m)),
            true,
        ),
        (
            "the_exclusion_constraint_refuses_an_overlapping_opaque_event_and_allows_a_transparent_one",
            |m| Box::pin(exclusion_constraint_holds(m)),
            false,
        ),
        (
            "the_event_counters_start_equal_to_count_star_over_the_events_already_stored",
            |m| Box::pin(counters_start_equal_to_count_star(m)),
            true,
        ),
        (
            "every_entity_selects_its_columns_in_the_tables_own_order",
            |m| Box::pin(entities_select_in_table_order(m)),
            false,
        ),
    ];
    let mut trials = Vec::new();
    for (name, check, on_sqlite) in checks {
        if on_sqlite {
            trials.push(Trial::test(
                format!("sqlite::migration::{name}"),
                move || block_on(run(None, check)),
            ));
        }
        let url = postgres_url.clone();
        trials.push(
            Trial::test(format!("postgres::migration::{name}"), move || {
                block_on(run(url.clone(), check))
            })
            .with_ignored_flag(postgres_url.is_none()),
        );
    }
    trials
}

fn block_on(f: impl Future<Output = Result<(), String>>) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let out = rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), f).await });
    rt.shutdown_timeout(Duration::from_secs(2));
    match out {
        Ok(r) => r.map_err(Failed::from),
        Err(_) => Err(Failed::from("timed out after 120 s")),
    }
}

/// A database built by the migrations before the one under test, filled, then fully migrated.
pub struct Migrated {
    db: DatabaseConnection,
    rows: Rows,
}

/// What was stored before the migration, as the new entities read it back.
struct Rows {
    organizations: Vec<organizations::Model>,
    api_keys: Vec<api_keys::Model>,
    calendars: Vec<calendars::Model>,
    event_types: Vec<event_types::Model>,
    events: Vec<events::Model>,
    idempotency_keys: Vec<idempotency_keys::Model>,
}

async fn run(postgres_url: Option<String>, check: Check) -> Result<(), String> {
    let mut dir = None;
    let mut postgres = None;
    let url = match &postgres_url {
        None => {
            let d = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let url = format!("sqlite://{}/quando.db?mode=rwc", d.path().display());
            dir = Some(d);
            url
        }
        Some(admin_url) => {
            let name = format!("quando_m_{}", Uuid::now_v7().simple());
            let admin = Database::connect(admin_url.as_str())
                .await
                .map_err(|e| format!("connect to {admin_url}: {e}"))?;
            let created = admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await;
            postgres = Some((admin, name.clone()));
            created.map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
            let mut url = reqwest::Url::parse(admin_url).map_err(|e| e.to_string())?;
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
    };
    let result = async {
        // The server's own pool (on SQLite: WAL, foreign keys on), as `quando migrate` uses.
        let db = quando_api::db::connect(&url)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let migrated = migrate_with_rows(db).await;
        match migrated {
            Ok(m) => {
                let out = check(&m).await;
                let _ = m.db.close().await;
                out
            }
            Err(e) => Err(e),
        }
    }
    .await;
    if let Some((admin, name)) = postgres {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
    drop(dir);
    result
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0)
        .single()
        .unwrap_or_default()
}

async fn migrate_with_rows(db: DatabaseConnection) -> Result<Migrated, String> {
    Migrator::up(&db, Some(BEFORE))
        .await
        .map_err(|e| format!("the first {BEFORE} migrations: {e}"))?;
    let rows = fill(&db)
        .await
        .map_err(|e| format!("rows in the old schema: {e}"))?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| format!("the migration under test: {e}"))?;
    let pending = Migrator::get_pending_migrations(&db)
        .await
        .map_err(|e| e.to_string())?;
    if !pending.is_empty() {
        return Err(format!("{} migrations still pending", pending.len()));
    }
    Ok(Migrated { db, rows })
}

/// Rows in every table of the old schema. The old tables lack the richer event's columns, so
/// events are inserted with those left out (`NotSet`) and without RETURNING.
async fn fill(db: &DatabaseConnection) -> Result<Rows, DbErr> {
    let created = at(8, 0);
    let orgs: Vec<organizations::Model> = ["Studio Rossi", "Officina Bianchi"]
        .into_iter()
        .map(|name| organizations::Model {
            id: OrgId::generate(),
            name: name.into(),
            created_at: created,
        })
        .collect();
    let (a, b) = (orgs[0].id, orgs[1].id);
    let api_keys: Vec<api_keys::Model> = [(a, "lookup-a"), (b, "lookup-b")]
        .into_iter()
        .map(|(org, lookup)| api_keys::Model {
            id: ApiKeyId::generate(),
            org_id: org,
            name: Some(format!("key {lookup}")),
            lookup: lookup.into(),
            secret_hash: format!("hash-{lookup}"),
            scopes: "calendar:read,calendar:write".into(),
            rate_limit_per_minute: Some(120),
            expires_at: Some(at(23, 0)),
            revoked_at: None,
            last_used_at: Some(at(9, 15)),
            created_at: created,
            event_type_ids: None,
            origins: None,
        })
        .collect();
    let calendars: Vec<calendars::Model> = [(a, "Poltrona 1"), (a, "Poltrona 2"), (b, "Ponte")]
        .into_iter()
        .map(|(org, name)| calendars::Model {
            org_id: org,
            id: CalendarId::generate(),
            name: name.into(),
            timezone: "Europe/Rome".into(),
            description: Some(format!("{name}, piano terra")),
            working_hours: Some(r#"[{"day":"mon","start":"09:00","end":"18:00"}]"#.into()),
            date_overrides: None,
            created_at: created,
            updated_at: at(8, 30),
            owner_id: None,
            metadata: None,
            // What m20261216_000008 gives existing rows.
            is_default: false,
            change_seq: 0,
        })
        .collect();
    let event_types: Vec<event_types::Model> = [
        (a, Some(calendars[0].id), "Igiene"),
        (a, None, "Visita"),
        (b, Some(calendars[2].id), "Tagliando"),
    ]
    .into_iter()
    .map(|(org, calendar, name)| event_types::Model {
        org_id: org,
        id: EventTypeId::generate(),
        calendar_id: calendar,
        name: name.into(),
        duration_minutes: 30,
        buffer_before_minutes: 5,
        buffer_after_minutes: 10,
        minimum_notice_minutes: Some(60),
        slot_interval_minutes: Some(15),
        max_advance_days: None,
        location: Some("Via Roma 1".into()),
        active: true,
        created_at: created,
        updated_at: created,
        assignment: "single".into(),
        hosts: None,
    })
    .collect();
    let event = |org: OrgId,
                 calendar: CalendarId,
                 event_type: EventTypeId,
                 start: u32,
                 status: EventStatus| {
        let (s, e) = (at(start, 0), at(start, 30));
        events::Model {
            org_id: org,
            id: EventId::generate(),
            calendar_id: calendar,
            event_type_id: Some(event_type),
            start_time: s,
            end_time: e,
            block_start: s - chrono::Duration::minutes(5),
            block_end: e + chrono::Duration::minutes(10),
            timezone: "Europe/Rome".into(),
            customer_name: Some("Mario Rossi".into()),
            customer_phone: Some("+393331234567".into()),
            customer_email: Some("mario@example.com".into()),
            notes: Some("prima visita".into()),
            title: Some("Igiene".into()),
            location: None,
            status,
            booked_via: "api".into(),
            cancellation_reason: (status == EventStatus::Cancelled).then(|| "ill".into()),
            cancelled_at: (status == EventStatus::Cancelled).then(|| at(9, 0)),
            created_at: created,
            updated_at: at(8, 45),
            // What the migration gives existing rows.
            description: None,
            kind: None,
            attendees: None,
            owner_id: None,
            owner_type: None,
            created_by: None,
            metadata: None,
            all_day: false,
            start_date: None,
            end_date: None,
            transparency: "opaque".into(),
            gcal_id: None,
            ical_uid: None,
            sequence: 0,
            extras: None,
            change_seq: 0,
            series_id: None,
            original_start: None,
            series_exception: false,
            team_hosts: None,
        }
    };
    let events = vec![
        event(
            a,
            calendars[0].id,
            event_types[0].id,
            10,
            EventStatus::Confirmed,
        ),
        event(
            a,
            calendars[0].id,
            event_types[0].id,
            10,
            EventStatus::Cancelled,
        ),
        event(
            a,
            calendars[1].id,
            event_types[1].id,
            10,
            EventStatus::Tentative,
        ),
        event(
            b,
            calendars[2].id,
            event_types[2].id,
            11,
            EventStatus::Confirmed,
        ),
    ];
    let idempotency_keys: Vec<idempotency_keys::Model> =
        [(a, "retry-1", true), (b, "retry-2", false)]
            .into_iter()
            .map(|(org, key, done)| idempotency_keys::Model {
                org_id: org,
                key: key.into(),
                request_hash: format!("sha-{key}"),
                state: if done { "done" } else { "in_progress" }.into(),
                response_status: done.then_some(201),
                response_body: done.then(|| r#"{"data":{}}"#.into()),
                created_at: created,
                expires_at: at(23, 59),
                owner: (!done).then(Uuid::now_v7),
            })
            .collect();

    for m in &orgs {
        organizations::Entity::insert(m.clone().into_active_model())
            .exec_without_returning(db)
            .await?;
    }
    for m in &api_keys {
        // The old `api_keys` lacks a publishable key's bindings (m20261220_000012).
        let mut active = m.clone().into_active_model();
        active.event_type_ids = NotSet;
        active.origins = NotSet;
        api_keys::Entity::insert(active)
            .exec_without_returning(db)
            .await?;
    }
    for m in &calendars {
        // The old `calendars` lacks `owner_id` and `metadata` (m20261215_000007).
        let mut active = m.clone().into_active_model();
        active.owner_id = NotSet;
        active.metadata = NotSet;
        active.is_default = NotSet;
        active.change_seq = NotSet;
        calendars::Entity::insert(active)
            .exec_without_returning(db)
            .await?;
    }
    for m in &event_types {
        // The old `event_types` lacks a team's `assignment` and `hosts` (m20261221_000013).
        let mut active = m.clone().into_active_model();
        active.assignment = NotSet;
        active.hosts = NotSet;
        event_types::Entity::insert(active)
            .exec_without_returning(db)
            .await?;
    }
    for m in &events {
        let mut active = m.clone().into_active_model();
        active.team_hosts = NotSet;
        active.description = NotSet;
        active.kind = NotSet;
        active.attendees = NotSet;
        active.owner_id = NotSet;
        active.owner_type = NotSet;
        active.created_by = NotSet;
        active.metadata = NotSet;
        active.all_day = NotSet;
        active.start_date = NotSet;
        active.end_date = NotSet;
        active.transparency = NotSet;
        active.gcal_id = NotSet;
        active.ical_uid = NotSet;
        active.sequence = NotSet;
        active.extras = NotSet;
        active.change_seq = NotSet;
        // Nor the series columns (m20261217_000009).
        active.series_id = NotSet;
        active.original_start = NotSet;
        active.series_exception = NotSet;
        events::Entity::insert(active)
            .exec_without_returning(db)
            .await?;
    }
    for m in &idempotency_keys {
        idempotency_keys::Entity::insert(m.clone().into_active_model())
            .exec_without_returning(db)
            .await?;
    }
    let backend = db.get_database_backend();
    let probe = match backend {
        DbBackend::Postgres => "INSERT INTO service_probe (id, checked_at) VALUES (1, $1)",
        _ => "INSERT INTO service_probe (id, checked_at) VALUES (1, ?)",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        probe,
        [created.into()],
    ))
    .await?;
    Ok(Rows {
        organizations: orgs,
        api_keys,
        calendars,
        event_types,
        events,
        idempotency_keys,
    })
}

fn same<T: std::fmt::Debug + PartialEq>(what: &str, got: &[T], want: &[T]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} changed:\n got {got:#?}\nwant {want:#?}"))
    }
}

async fn every_row_is_kept(m: &Migrated) -> Result<(), String> {
    let db = &m.db;
    let e = |e: DbErr| e.to_string();
    let mut want = m.rows.organizations.clone();
    want.sort_by_key(|r| r.id);
    let got = organizations::Entity::find()
        .order_by_asc(organizations::Column::Id)
        .all(db)
        .await
        .map_err(e)?;
    same("organizations", &got, &want)?;
    let mut want = m.rows.api_keys.clone();
    want.sort_by_key(|r| r.id);
    let got = api_keys::Entity::find()
        .order_by_asc(api_keys::Column::Id)
        .all(db)
        .await
        .map_err(e)?;
    same("api_keys", &got, &want)?;
    let mut want = m.rows.calendars.clone();
    want.sort_by_key(|r| r.id);
    let got = calendars::Entity::find()
        .order_by_asc(calendars::Column::Id)
        .all(db)
        .await
        .map_err(e)?;
    same("calendars", &got, &want)?;
    let mut want = m.rows.event_types.clone();
    want.sort_by_key(|r| r.id);
    let got = event_types::Entity::find()
        .order_by_asc(event_types::Column::Id)
        .all(db)
        .await
        .map_err(e)?;
    same("event_types", &got, &want)?;
    let mut want = m.rows.events.clone();
    want.sort_by_key(|r| r.id);
    let got = events::Entity::find()
        .order_by_asc(events::Column::Id)
        .all(db)
        .await
        .map_err(e)?;
    same("events", &got, &want)?;
    if !got.iter().any(|r| r.status == EventStatus::Cancelled) {
        return Err("the cancelled event is gone".into());
    }
    let mut want = m.rows.idempotency_keys.clone();
    want.sort_by(|x, y| x.key.cmp(&y.key));
    let got = idempotency_keys::Entity::find()
        .order_by_asc(idempotency_keys::Column::Key)
        .all(db)
        .await
        .map_err(e)?;
    same("idempotency_keys", &got, &want)?;
    let probes = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM service_probe",
        ))
        .await
        .map_err(e)?;
    let ids: Vec<i32> = probes
        .iter()
        .map(|r| r.try_get::<i32>("", "id"))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    if ids != [1] {
        return Err(format!("service_probe holds {ids:?}, not the one row [1]"));
    }
    Ok(())
}

async fn new_columns_have_defaults(m: &Migrated) -> Result<(), String> {
    let rows = events::Entity::find()
        .all(&m.db)
        .await
        .map_err(|e| e.to_string())?;
    if rows.len() != m.rows.events.len() {
        return Err(format!(
            "{} events, want {}",
            rows.len(),
            m.rows.events.len()
        ));
    }
    for r in &rows {
        let defaults = r.transparency == "opaque"
            && !r.all_day
            && r.description.is_none()
            && r.kind.is_none()
            && r.attendees.is_none()
            && r.owner_id.is_none()
            && r.owner_type.is_none()
            && r.created_by.is_none()
            && r.metadata.is_none()
            && r.start_date.is_none()
            && r.end_date.is_none();
        if !defaults {
            return Err(format!("event {} lacks the defaults: {r:#?}", r.id));
        }
    }
    // And the new columns hold what they are given, JSON and dates included.
    let mut richer = m.rows.events[0].clone();
    richer.id = EventId::generate();
    richer.start_time = at(15, 0);
    richer.end_time = at(15, 30);
    richer.block_start = at(15, 0);
    richer.block_end = at(15, 30);
    richer.event_type_id = None;
    richer.description = Some("Controllo annuale".into());
    richer.kind = Some("appointment".into());
    richer.attendees = Some(json!([
        {"name": "Anna", "email": "anna@example.com", "optional": false, "responseStatus": "accepted"}
    ]));
    richer.owner_id = Some("agent-7".into());
    richer.owner_type = Some("agent".into());
    richer.created_by = Some("voice-bot".into());
    richer.metadata = Some(json!({"crmId": "C-42"}));
    richer.all_day = true;
    richer.start_date = chrono::NaiveDate::from_ymd_opt(2026, 11, 21);
    richer.end_date = chrono::NaiveDate::from_ymd_opt(2026, 11, 22);
    richer.transparency = "transparent".into();
    events::Entity::insert(richer.clone().into_active_model())
        .exec_without_returning(&m.db)
        .await
        .map_err(|e| format!("insert a richer event: {e}"))?;
    let back = events::Entity::find_by_id((richer.id, richer.org_id))
        .one(&m.db)
        .await
        .map_err(|e| e.to_string())?;
    if back.as_ref() != Some(&richer) {
        return Err(format!(
            "richer event read back as {back:#?}, want {richer:#?}"
        ));
    }
    Ok(())
}

fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

async fn composite_foreign_keys_hold(m: &Migrated) -> Result<(), String> {
    let rows = &m.rows;
    let (a, b) = (rows.organizations[0].id, rows.organizations[1].id);
    let a_event = rows.events[0].clone();
    let b_calendar = rows.calendars[2].id;
    let b_event_type = rows.event_types[2].id;
    let try_event = |calendar: CalendarId, event_type: Option<EventTypeId>, start: u32| {
        let mut e = a_event.clone();
        e.id = EventId::generate();
        e.org_id = a;
        e.calendar_id = calendar;
        e.event_type_id = event_type;
        e.start_time = at(start, 0);
        e.end_time = at(start, 30);
        e.block_start = at(start, 0);
        e.block_end = at(start, 30);
        events::Entity::insert(e.into_active_model()).exec_without_returning(&m.db)
    };
    match try_event(b_calendar, None, 16).await {
        Err(err) if is_foreign_key_violation(&err) => {}
        other => {
            return Err(format!(
                "an event of {a} on a calendar of {b} was not refused by the foreign key: {other:?}"
            ));
        }
    }
    match try_event(a_event.calendar_id, Some(b_event_type), 17).await {
        Err(err) if is_foreign_key_violation(&err) => {}
        other => {
            return Err(format!(
                "an event of {a} with an event type of {b} was not refused: {other:?}"
            ));
        }
    }
    let mut et = rows.event_types[1].clone();
    et.id = EventTypeId::generate();
    et.calendar_id = Some(b_calendar);
    match event_types::Entity::insert(et.into_active_model())
        .exec_without_returning(&m.db)
        .await
    {
        Err(err) if is_foreign_key_violation(&err) => {}
        other => {
            return Err(format!(
                "an event type of {a} on a calendar of {b} was not refused: {other:?}"
            ));
        }
    }
    // The same organization's calendar, and no event type at all: accepted.
    try_event(a_event.calendar_id, None, 18)
        .await
        .map_err(|e| format!("an event without an event type was refused: {e}"))?;
    Ok(())
}

/// Every index of the database by name, with its definition (`CREATE ... INDEX ...`; empty for
/// SQLite's automatic indexes, which have none).
async fn index_definitions(
    m: &Migrated,
) -> Result<std::collections::HashMap<String, String>, String> {
    let backend = m.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = 'public'"
        }
        _ => "SELECT name, COALESCE(sql, '') AS def FROM sqlite_master WHERE type = 'index'",
    };
    let rows =
        m.db.query_all_raw(Statement::from_string(backend, sql))
            .await
            .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "name")?, r.try_get("", "def")?)))
        .collect::<Result<_, DbErr>>()
        .map_err(|e| e.to_string())
}

async fn indexes_and_keys(m: &Migrated) -> Result<(), String> {
    let backend = m.db.get_database_backend();
    let names: Vec<String> = index_definitions(m).await?.into_keys().collect();
    for want in [
        "api_keys_org",
        "calendars_org_id",
        "event_types_org_id",
        "events_org_start",
        "events_org_calendar_start_id",
        "events_org_customer_phone",
        "events_org_customer_email",
        "events_org_calendar_status_block_end",
        "idempotency_keys_expires_at",
    ] {
        if !names.iter().any(|n| n == want) {
            return Err(format!("index {want} is missing; there are {names:?}"));
        }
    }
    if names
        .iter()
        .any(|n| n == "events_calendar_status_block_end")
    {
        return Err("the overlap index not led by org_id is still there".into());
    }
    // Every update and delete the ORM issues for a tenant row names the organization.
    let event = m.rows.events[0].clone();
    let e = |e: DbErr| e.to_string();
    let update = events::Entity::update(event.clone().into_active_model())
        .validate()
        .map_err(e)?
        .build(backend)
        .to_string();
    let delete = events::Entity::delete(event.into_active_model())
        .validate()
        .map_err(e)?
        .build(backend)
        .to_string();
    for sql in [update, delete] {
        let filter = sql.split(" WHERE ").nth(1).unwrap_or_default();
        if !(filter.contains("\"org_id\" =") && filter.contains("\"id\" =")) {
            return Err(format!("not filtered by org_id and id: {sql}"));
        }
    }
    Ok(())
}

/// m20261218_000010: a booking without a Google id, an iCalendar UID or a series writes none of
/// their index pages (a third of a SQLite booking's cost), and the unique ones still refuse.
async fn dialect_indexes_are_partial(m: &Migrated) -> Result<(), String> {
    let defs = index_definitions(m).await?;
    for (name, column, unique) in [
        ("events_org_calendar_gcal_id", "gcal_id", true),
        ("events_org_calendar_ical_uid", "ical_uid", false),
        ("events_org_series_original_start", "series_id", true),
    ] {
        let def = defs
            .get(name)
            .ok_or_else(|| format!("index {name} is missing"))?;
        let condition = def.split(" WHERE ").nth(1).unwrap_or_default();
        if !(condition.contains(column) && condition.to_uppercase().contains("IS NOT NULL")) {
            return Err(format!("{name} is not partial on {column}: {def}"));
        }
        if unique != def.to_uppercase().contains("UNIQUE") {
            return Err(format!("{name} unique should be {unique}: {def}"));
        }
    }
    Ok(())
}

async fn exclusion_constraint_holds(m: &Migrated) -> Result<(), String> {
    let live = m
        .rows
        .events
        .iter()
        .find(|e| e.status == EventStatus::Confirmed)
        .cloned()
        .ok_or("no confirmed event")?;
    let overlapping = |transparency: &str| {
        let mut e = live.clone();
        e.id = EventId::generate();
        e.start_time = live.start_time + chrono::Duration::minutes(10);
        e.end_time = live.end_time + chrono::Duration::minutes(10);
        e.block_start = e.start_time;
        e.block_end = e.end_time;
        e.transparency = transparency.into();
        events::Entity::insert(e.into_active_model()).exec_without_returning(&m.db)
    };
    match overlapping("opaque").await {
        Err(err) if quando_api::db::is_exclusion_violation(&err) => {}
        other => {
            return Err(format!(
                "an overlapping live opaque event was not refused with 23P01: {other:?}"
            ));
        }
    }
    overlapping("transparent")
        .await
        .map_err(|e| format!("an overlapping transparent event was refused: {e}"))?;
    Ok(())
}

/// The columns an entity selects, in its field order.
/// The counters migration counts what is already stored, by organization, calendar and status
/// (the counts suite checks that the triggers keep them equal afterwards).
async fn counters_start_equal_to_count_star(m: &Migrated) -> Result<(), String> {
    use std::collections::BTreeMap;
    let want = |events: &[events::Model]| {
        let mut by: BTreeMap<(Uuid, Uuid, String), i64> = BTreeMap::new();
        for e in events {
            let status = serde_json::to_value(e.status).unwrap_or_default();
            let key = (
                e.org_id.0,
                e.calendar_id.0,
                status.as_str().unwrap_or_default().to_string(),
            );
            *by.entry(key).or_default() += 1;
        }
        by
    };
    let kept = || async {
        let rows = entity::event_counts::Entity::find()
            .all(&m.db)
            .await
            .map_err(|e| format!("event_counts: {e}"))?;
        Ok::<_, String>(
            rows.into_iter()
                .filter(|r| r.n != 0)
                .map(|r| {
                    let status = serde_json::to_value(r.status).unwrap_or_default();
                    (
                        (
                            r.org_id.0,
                            r.calendar_id.0,
                            status.as_str().unwrap_or_default().to_string(),
                        ),
                        r.n,
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        )
    };
    if m.rows.events.is_empty() {
        return Err("the fill wrote no events".into());
    }
    let got = kept().await?;
    if got != want(&m.rows.events) {
        return Err(format!("counters {got:?} against the stored rows"));
    }
    let stored = events::Entity::find()
        .all(&m.db)
        .await
        .map_err(|e| format!("events: {e}"))?;
    if got != want(&stored) {
        return Err(format!("counters {got:?} against count(*)"));
    }
    // The organization's counters (m20261224_000016) start as the same counts by status.
    let mut by_org: BTreeMap<(Uuid, String), i64> = BTreeMap::new();
    for ((org, _, status), n) in &got {
        *by_org.entry((*org, status.clone())).or_default() += n;
    }
    let mut org_kept: BTreeMap<(Uuid, String), i64> = BTreeMap::new();
    for r in entity::event_org_counts::Entity::find()
        .all(&m.db)
        .await
        .map_err(|e| format!("event_org_counts: {e}"))?
    {
        let status = serde_json::to_value(r.status).unwrap_or_default();
        let status = status.as_str().unwrap_or_default().to_string();
        *org_kept.entry((r.org_id.0, status)).or_default() += r.n;
    }
    org_kept.retain(|_, n| *n != 0);
    if org_kept != by_org {
        return Err(format!(
            "organization counters {org_kept:?} against count(*) {by_org:?}"
        ));
    }
    Ok(())
}

fn selected<E: EntityTrait>() -> Vec<String> {
    use sea_orm::{IdenStatic, Iterable};
    E::Column::iter().map(|c| c.as_str().to_string()).collect()
}

/// PostgreSQL returns a scan's rows without a projection step when the select list is the
/// table's columns in their stored order; with 41 columns per event that step cost about a
/// sixth of a `GET /v1/calendar/events/{id}` in the database. Migrations add columns at the end
/// and the entities must follow (`entity/src/lib.rs`).
async fn entities_select_in_table_order(m: &Migrated) -> Result<(), String> {
    let tables = [
        ("organizations", selected::<organizations::Entity>()),
        ("api_keys", selected::<api_keys::Entity>()),
        ("calendars", selected::<calendars::Entity>()),
        ("event_types", selected::<event_types::Entity>()),
        ("events", selected::<events::Entity>()),
        ("idempotency_keys", selected::<idempotency_keys::Entity>()),
        ("event_series", selected::<entity::event_series::Entity>()),
        ("holds", selected::<entity::holds::Entity>()),
        ("event_counts", selected::<entity::event_counts::Entity>()),
        (
            "event_org_counts",
            selected::<entity::event_org_counts::Entity>(),
        ),
        (
            "calendar_members",
            selected::<entity::calendar_members::Entity>(),
        ),
        (
            "webhook_endpoints",
            selected::<entity::webhook_endpoints::Entity>(),
        ),
        (
            "webhook_messages",
            selected::<entity::webhook_messages::Entity>(),
        ),
        (
            "webhook_deliveries",
            selected::<entity::webhook_deliveries::Entity>(),
        ),
        (
            "calendar_feeds",
            selected::<entity::calendar_feeds::Entity>(),
        ),
    ];
    for (table, columns) in tables {
        let rows =
            m.db.query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass \
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [table.into()],
            ))
            .await
            .map_err(|e| format!("columns of {table}: {e}"))?;
        let stored: Vec<String> = rows
            .iter()
            .map(|r| r.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        if stored != columns {
            return Err(format!(
                "{table}: the entity selects {columns:?}, the table stores {stored:?}"
            ));
        }
    }
    Ok(())
}
