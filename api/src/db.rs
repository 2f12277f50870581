//! Connecting and migrating. SQLite gets WAL, foreign keys, synchronous FULL and a busy timeout
//! on every pooled connection (sea-orm's default pool for SQLite is one connection with none of
//! these); PostgreSQL gets a pool sized for a small machine.
//!
//! Every pooled SQLite connection is checked as it goes back to the pool: one that still holds
//! a transaction is closed, never reused (see `release_only_clean`). Without that, one failed
//! write could leave a transaction open on a pooled connection, and every later "transaction" on
//! it would be a savepoint inside one that never commits: 201s for bookings that are then lost.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sea_orm::sqlx::pool::PoolConnectionMetadata;
use sea_orm::sqlx::sqlite::{
    SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Connection};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};

/// SQLite's page cache of the writer connection (`writer_for`), in KiB when negative
/// (`PRAGMA cache_size`): 8,000 KiB, against SQLite's default of 2,000. A booking walks eight
/// B-trees (the table and seven indexes, each led by `org_id`); at a million events their upper
/// pages no longer fit in 2,000 KiB, and every booking read them again through the OS. Measured
/// with the bench's create workload at 1,000,000 events (`quando-bench suite --workloads
/// create`, two runs each, when every pooled connection wrote): 270 / 359 req/s at 2,000 KiB,
/// 516 / 512 at 8,000, 425 / 526 at 16,000; server RSS under that load 38.7, 44.2 and 52.5 MB.
const SQLITE_WRITER_CACHE_SIZE: &str = "-8000";

/// The readers' page cache, SQLite's default of 2,000 KiB, set explicitly. A reader's cache is
/// thrown away whenever the writer commits, so a larger one buys little under writes and holds
/// memory (four readers at 8,000 KiB took the server past 50 MB under the create load).
const SQLITE_READER_CACHE_SIZE: &str = "-2000";

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if is_sqlite(url) {
        // Writers serialise on SQLite's lock anyway; a few connections serve concurrent reads.
        opts.max_connections(4)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    .pragma("cache_size", SQLITE_READER_CACHE_SIZE)
            })
            .map_sqlx_sqlite_pool_opts(with_connection_checks);
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
}

/// The checks every pooled SQLite connection gets, reader or writer: the planner setting when
/// it opens, a release only when clean, and no reuse of a connection open during a failure.
fn with_connection_checks(p: SqlitePoolOptions) -> SqlitePoolOptions {
    p.after_connect(|conn, _meta| Box::pin(plan_once(conn)))
        .after_release(|conn, meta| Box::pin(release_only_clean(conn, meta)))
        .before_acquire(|_conn, meta| {
            let fresh = opened_after_trouble(&meta);
            Box::pin(async move { Ok(fresh) })
        })
}

/// The connection write transactions run on (`repo::begin_write`). On SQLite it is a pool of its
/// own with one connection, on the same file with the same settings and checks: SQLite has one
/// writer anyway, and a connection in WAL mode throws its whole page cache away whenever it
/// finds that another connection wrote since its last transaction. When every booking wrote
/// through whichever of the four pooled connections was free, each found the others' writes and
/// read the upper pages of the events table and its seven indexes again through the OS; the
/// one writer sees only its own writes, so its 8,000 KiB cache stays warm. (Readers still start
/// cold after a write, as before.) The pool opens its connection on first use and, like the
/// readers' pool, replaces it after a failure. On PostgreSQL it is the same pool.
pub fn writer_for(db: &DatabaseConnection) -> DatabaseConnection {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return db.clone();
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let pool = with_connection_checks(
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10)),
    )
    .connect_lazy_with(
        (*options)
            .clone()
            .pragma("cache_size", SQLITE_WRITER_CACHE_SIZE),
    );
    sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
}

/// Whether a connection may go back to the pool: only when sqlx thinks no transaction is open and
/// the connection was opened after storage last failed. After a failed statement, COMMIT or
/// ROLLBACK (SQLITE_FULL, SQLITE_IOERR, a read-only file) sqlx's depth counter and SQLite's own
/// state can disagree either way; a connection that lived through such a failure is closed,
/// which rolls back whatever it held, and the pool opens a fresh one. While storage is healthy
/// this costs nothing: no round trip to the connection's worker thread on each release.
/// Turns on SQLite's query planner stability guarantee on a new connection: a statement keeps
/// the plan it was prepared with, whatever values are bound to it. Without it, SQLite 3.51
/// compiles a statement again every time a value is bound to its `LIMIT ?` (every `.one()`
/// sea-orm runs: an event by id, the calendar of a booking, the overlap check) or, with the
/// sample statistics (STAT4) the bundled library keeps, to a column it compares: measured, a
/// quarter of the server's CPU on `GET /v1/calendar/events/{id}`, and a parse of each statement
/// of a booking while SQLite's one writer is held. Our queries are planned by their shape (the
/// indexes lead with `org_id`), so no plan depends on a value.
async fn plan_once(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle();
    // SAFETY: the handle is an open connection, locked for us for the duration of the call;
    // SQLITE_DBCONFIG_ENABLE_QPSG takes an int (1: on) and an int* for the new state (may be
    // null), as documented for sqlite3_db_config.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            raw.as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("SQLite refused the query planner stability guarantee (code {rc})").into(),
        ));
    }
    Ok(())
}

/// Whether a connection has the query planner stability guarantee on (the test reads it).
#[cfg(test)]
async fn plans_once(conn: &mut SqliteConnection) -> bool {
    let mut handle = conn.lock_handle().await.unwrap();
    let raw = handle.as_raw_handle();
    let mut on: std::ffi::c_int = -1;
    // SAFETY: as in `plan_once`; -1 asks for the state without changing it.
    unsafe {
        libsqlite3_sys::sqlite3_db_config(
            raw.as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            -1 as std::ffi::c_int,
            &mut on as *mut std::ffi::c_int,
        );
    }
    on == 1
}

async fn release_only_clean(
    conn: &mut SqliteConnection,
    meta: PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if conn.is_in_transaction() {
        // A transaction dropped without commit queued its ROLLBACK on the connection's worker
        // (every refused booking does this); `lock_handle` waits behind it. Only a transaction
        // still open after that is a reason to close the connection.
        drop(conn.lock_handle().await?);
        if conn.is_in_transaction() {
            tracing::warn!("closing a pooled SQLite connection that still holds a transaction");
            return Ok(false);
        }
    }
    let last = LAST_FAILURE_MS.load(Ordering::Acquire);
    if last != 0 && opened_at_ms(&meta) <= last {
        tracing::info!("closing a pooled SQLite connection that was open when a statement failed");
        return Ok(false);
    }
    Ok(true)
}

/// When a statement last failed for a reason other than a refused constraint, in milliseconds
/// since `EPOCH` (0: never).
static LAST_FAILURE_MS: AtomicU64 = AtomicU64::new(0);

/// Records a failed statement for `release_only_clean`: every storage error but a constraint the
/// database refused (a unique key, a foreign key, the exclusion constraint), which undoes only
/// its own statement, and errors raised before anything reached the database.
pub fn note_failure(err: &DbErr) {
    let failed_in_database = match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Database(d) => {
                    !matches!(
                        d.kind(),
                        sqlx::error::ErrorKind::UniqueViolation
                            | sqlx::error::ErrorKind::ForeignKeyViolation
                            | sqlx::error::ErrorKind::NotNullViolation
                            | sqlx::error::ErrorKind::CheckViolation
                    ) && d.code().as_deref() != Some("23P01")
                }
                sqlx::Error::RowNotFound
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::TypeNotFound { .. } => false,
                _ => true,
            }
        }
        DbErr::Query(_) | DbErr::Exec(_) => true,
        _ => false,
    };
    if failed_in_database {
        LAST_FAILURE_MS.fetch_max(millis_since_epoch(Instant::now()) + 1, Ordering::AcqRel);
    }
}

fn opened_at_ms(meta: &PoolConnectionMetadata) -> u64 {
    let now = Instant::now();
    millis_since_epoch(now.checked_sub(meta.age).unwrap_or(now))
}

/// When storage last failed with passing trouble, in milliseconds since `EPOCH` (0: never).
static LAST_TROUBLE_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn millis_since_epoch(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

/// Records that storage just failed with passing trouble (see `is_transient`).
pub fn note_trouble() {
    LAST_FAILURE_MS.fetch_max(millis_since_epoch(Instant::now()) + 1, Ordering::AcqRel);
    LAST_TROUBLE_MS.fetch_max(millis_since_epoch(Instant::now()) + 1, Ordering::AcqRel);
}

/// A SQLite connection opened while its file could not be written (made immutable, a read-only
/// mount, a full disk) keeps failing after the file is writable again: SQLite opened the file or
/// its WAL read-only and stays so, and `sqlite3_db_readonly` does not see it. So connections
/// opened before the last storage trouble (and up to a second after it) are not handed out again:
/// the pool closes them and opens fresh ones. Costs nothing while storage is healthy.
fn opened_after_trouble(meta: &PoolConnectionMetadata) -> bool {
    let last = LAST_TROUBLE_MS.load(Ordering::Acquire);
    if last == 0 {
        return true;
    }
    opened_at_ms(meta) > last + 1000
}

/// Whether a storage error is trouble that passes, worth a retry by the client (503), rather than
/// a bug (500): the database locked past the busy timeout, out of space, read-only, an I/O error;
/// a pool that could not hand out a connection in time; a PostgreSQL connection lost, refused or
/// terminated, a server shutting down or out of resources, a serialization failure or deadlock.
pub fn is_transient(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Query(r) | DbErr::Exec(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else {
        return false;
    };
    match e.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let postgres = d
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
            d.code().is_some_and(|code| {
                if postgres {
                    transient_sqlstate(&code)
                } else {
                    transient_sqlite_code(&code)
                }
            })
        }
        _ => false,
    }
}

/// SQLite result codes (the primary code is the low byte of an extended one) that name passing
/// trouble: SQLITE_BUSY 5, SQLITE_LOCKED 6, SQLITE_NOMEM 7, SQLITE_READONLY 8, SQLITE_IOERR 10,
/// SQLITE_FULL 13, SQLITE_CANTOPEN 14, SQLITE_PROTOCOL 15.
fn transient_sqlite_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15))
}

/// PostgreSQL SQLSTATEs that name passing trouble.
fn transient_sqlstate(code: &str) -> bool {
    // 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
    // connections), 57P01-57P03 admin/crash shutdown and cannot connect now, 40001 serialization
    // failure, 40P01 deadlock, 58030 I/O error.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "58030"
        )
}

/// Whether a database error is PostgreSQL refusing an overlapping booking through the
/// exclusion constraint (SQLSTATE 23P01). `DbErr::sql_err()` does not recognise it.
pub fn is_exclusion_violation(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    // A live slot hold in the way (`repo::holds`): refused the same way, on both backends.
    if crate::repo::holds::is_held(err) {
        return true;
    }
    let runtime = match err {
        DbErr::Query(r) | DbErr::Exec(r) => r,
        _ => return false,
    };
    match runtime {
        RuntimeErr::SqlxError(e) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(d) => d.code().as_deref() == Some("23P01"),
            _ => false,
        },
        _ => false,
    }
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Gives SQLite's query planner statistics (bounded sampling, milliseconds even on millions of
/// rows). Without them it may walk an organization's whole date range through the wrong index
/// for a calendar-filtered list. PostgreSQL's autovacuum analyzes on its own.
pub async fn analyze(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA analysis_limit = 1000; ANALYZE;")
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_busy_full_ioerr_and_readonly_are_transient_codes() {
        for code in ["5", "517", "6", "8", "1032", "10", "778", "13", "14"] {
            assert!(transient_sqlite_code(code), "{code}");
        }
        for code in ["19", "2067", "1", "787"] {
            assert!(!transient_sqlite_code(code), "{code}");
        }
    }

    #[tokio::test]
    async fn every_pooled_sqlite_connection_keeps_its_plans_and_the_writer_an_8_mib_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&format!("sqlite://{}/q.db?mode=rwc", dir.path().display()))
            .await
            .unwrap();
        let pool = db.get_sqlite_connection_pool();
        // Hold all four at once, so each is a connection of its own.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            assert!(plans_once(conn).await);
            let (kib,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(
                kib, -2000,
                "each reader keeps SQLite's default 2 MiB of pages"
            );
        }
        let writer = writer_for(&db);
        let mut conn = writer.get_sqlite_connection_pool().acquire().await.unwrap();
        assert!(plans_once(&mut conn).await);
        let (kib,): (i64,) = sqlx::query_as("PRAGMA cache_size")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(kib, -8000, "the writer keeps about 8 MiB of pages");
    }

    /// `PRAGMA data_version` changes on a connection exactly when another connection committed
    /// since it last looked, which is also when SQLite drops that connection's page cache.
    async fn data_version(db: &DatabaseConnection) -> i64 {
        let mut conn = db.get_sqlite_connection_pool().acquire().await.unwrap();
        let (version,): (i64,) = sqlx::query_as("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        version
    }

    /// POSTs `body` to `path`, expects 201 and returns the new resource's id.
    async fn created_id<E: poem::Endpoint>(
        client: &poem::test::TestClient<E>,
        auth: &str,
        path: &str,
        body: serde_json::Value,
    ) -> String {
        let resp = client
            .post(path)
            .header("Authorization", auth)
            .body_json(&body)
            .send()
            .await;
        resp.assert_status(poem::http::StatusCode::CREATED);
        resp.json()
            .await
            .value()
            .object()
            .get("data")
            .object()
            .get("id")
            .string()
            .to_string()
    }

    #[tokio::test]
    async fn sqlite_bookings_commit_on_one_writer_connection_whose_page_cache_no_other_write_resets()
     {
        use poem::EndpointExt;
        let (state, key, _dir) = crate::test_support::state(crate::config::Config::default()).await;
        let writer = state.service.writer.clone();
        assert_eq!(
            writer
                .get_sqlite_connection_pool()
                .options()
                .get_max_connections(),
            1
        );
        let client = poem::test::TestClient::new(crate::app(state).boxed());
        let auth = format!("Bearer {key}");
        let calendar = created_id(
            &client,
            &auth,
            "/v1/calendar/calendars",
            serde_json::json!({"name": "Chair 1", "timezone": "Europe/Rome"}),
        )
        .await;
        let event_type = created_id(
            &client,
            &auth,
            "/v1/calendar/event-types",
            serde_json::json!({"name": "Cut", "durationMinutes": 30}),
        )
        .await;
        let before = data_version(&writer).await;
        for (hour, idempotency) in [(9, None), (10, Some("retry-safe-1")), (11, None)] {
            let mut req = client
                .post("/v1/calendar/events")
                .header("Authorization", &auth)
                .body_json(&serde_json::json!({
                    "calendarId": calendar,
                    "eventTypeId": event_type,
                    "startTime": format!("2031-05-06T{hour:02}:00:00Z"),
                    "endTime": format!("2031-05-06T{hour:02}:30:00Z"),
                    "force": true,
                }));
            if let Some(k) = idempotency {
                req = req.header("Idempotency-Key", k);
            }
            let resp = req.send().await;
            let status = resp.0.status();
            let body = resp.0.into_body().into_string().await.unwrap();
            assert_eq!(status, poem::http::StatusCode::CREATED, "{body}");
        }
        assert_eq!(
            data_version(&writer).await,
            before,
            "no other connection wrote: the writer's cache is still valid"
        );
        let resp = client
            .get("/v1/calendar/events?limit=10")
            .header("Authorization", &auth)
            .send()
            .await;
        resp.assert_status_is_ok();
        resp.json()
            .await
            .value()
            .object()
            .get("data")
            .array()
            .assert_len(3);
    }

    #[test]
    fn postgres_connection_shutdown_and_resource_states_are_transient_codes() {
        for code in ["08006", "08003", "57P01", "53100", "40001", "40P01"] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "23P01", "22001", "42P01"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
    }
}
