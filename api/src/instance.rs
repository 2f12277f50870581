//! This server process as other processes on the same database see it: an id, and a lock held for
//! as long as the process lives, which the operating system or PostgreSQL releases the moment the
//! process dies (kill -9 included). An `Idempotency-Key` claim carries its owner's id, so a retry
//! that finds a claim `in_progress` can ask whether the owner still lives: a dead owner's claim is
//! taken over at once instead of blocking the key.
//!
//! - SQLite: an exclusive `flock` on `<database>-instances/<id>.lock` beside the database file
//!   (every process of one SQLite file shares its machine). An in-memory database has no other
//!   process, so any other owner is dead.
//! - PostgreSQL: a session advisory lock on the id, held on a connection of its own (outside the
//!   pool, re-taken if that connection is lost). Asking about another instance tries its lock
//!   and lets go at once in one statement.
//!
//! A wrong "dead" answer (a lock lost with its connection) cannot double a write: taking over a
//! claim and storing a response are both conditional on the owner (see `repo::idempotency`), so
//! the slower of two runs of one key fails without writing anything.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::{self, Connection, postgres::PgConnection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use uuid::Uuid;

/// This process, for the lifetime of the server.
#[derive(Clone)]
pub struct Instance {
    pub id: Uuid,
    liveness: Arc<Liveness>,
}

enum Liveness {
    /// Lock files in this directory; ours stays open and locked while we live.
    Files { dir: PathBuf, _own: File },
    /// An in-memory or otherwise private database: we are its only process.
    Alone,
    /// Advisory locks; the task holding ours is aborted with the instance.
    Postgres { holder: tokio::task::JoinHandle<()> },
}

impl Drop for Liveness {
    fn drop(&mut self) {
        if let Liveness::Postgres { holder } = self {
            holder.abort();
        }
    }
}

/// The advisory-lock key of an instance: the first 8 bytes of its id.
fn lock_key(id: Uuid) -> i64 {
    let b = id.as_bytes();
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The SQLite file behind a URL such as `sqlite://path/quando.db?mode=rwc`; `None` in memory.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Instance {
    /// Registers this process: takes its lock, and clears lock files that dead processes left.
    pub async fn start(db: &DatabaseConnection, database_url: &str) -> Result<Instance, DbErr> {
        let id = Uuid::now_v7();
        let liveness = match db.get_database_backend() {
            DbBackend::Postgres => {
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
                let holder = tokio::spawn(hold_advisory_lock(
                    database_url.to_string(),
                    lock_key(id),
                    ready_tx,
                ));
                // The first lock must be held before this instance claims anything.
                match ready_rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(DbErr::Custom(format!("instance lock: {e}"))),
                    Err(_) => return Err(DbErr::Custom("instance lock task ended".into())),
                }
                Liveness::Postgres { holder }
            }
            _ => match sqlite_path(database_url) {
                None => Liveness::Alone,
                Some(db_path) => {
                    let mut dir = db_path.into_os_string();
                    dir.push("-instances");
                    let dir = PathBuf::from(dir);
                    let own = take_file_lock(&dir, id)
                        .map_err(|e| DbErr::Custom(format!("instance lock in {dir:?}: {e}")))?;
                    sweep_dead_files(&dir);
                    Liveness::Files { dir, _own: own }
                }
            },
        };
        Ok(Instance {
            id,
            liveness: Arc::new(liveness),
        })
    }

    /// Whether the instance `owner` still runs. Errors count as alive: waiting is safe, taking
    /// over on a guess is merely slower to be refused.
    pub async fn is_alive(&self, db: &DatabaseConnection, owner: Uuid) -> bool {
        if owner == self.id {
            return true;
        }
        match self.liveness.as_ref() {
            Liveness::Alone => false,
            Liveness::Files { dir, .. } => {
                let path = dir.join(format!("{owner}.lock"));
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                    Err(_) => return true,
                };
                match file.try_lock() {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&path);
                        false
                    }
                    Err(_) => true,
                }
            }
            Liveness::Postgres { .. } => {
                // One statement, so the try and the release run on the same session.
                let sql = "SELECT CASE WHEN pg_try_advisory_lock($1) \
                           THEN NOT pg_advisory_unlock($1) ELSE true END AS alive";
                let stmt = Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [lock_key(owner).into()],
                );
                match db.query_one_raw(stmt).await {
                    Ok(Some(row)) => row.try_get::<bool>("", "alive").unwrap_or(true),
                    _ => true,
                }
            }
        }
    }
}

fn take_file_lock(dir: &PathBuf, id: Uuid) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let file = File::create(dir.join(format!("{id}.lock")))?;
    file.lock()?;
    Ok(file)
}

/// Removes the lock files of processes that are gone (their lock is free).
fn sweep_dead_files(dir: &PathBuf) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(file) = File::open(&path)
            && file.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Holds `pg_advisory_lock(key)` on a connection of its own for as long as the task lives, and
/// takes it again on a new connection if the old one is lost (a restart, `pg_terminate_backend`).
async fn hold_advisory_lock(
    url: String,
    key: i64,
    ready: tokio::sync::oneshot::Sender<Result<(), sqlx::Error>>,
) {
    let mut ready = Some(ready);
    loop {
        let held = async {
            let mut conn = PgConnection::connect(&url).await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(key)
                .execute(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(conn)
        }
        .await;
        match held {
            Ok(mut conn) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Ok(()));
                }
                // Watch the session; when it dies, the lock died with it.
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if conn.ping().await.is_err() {
                        tracing::warn!("instance lock connection lost; taking the lock again");
                        break;
                    }
                }
            }
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "instance lock: cannot reconnect yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_file_is_read_from_the_url() {
        assert_eq!(
            sqlite_path("sqlite://data/quando.db?mode=rwc"),
            Some(PathBuf::from("data/quando.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/quando.db"),
            Some(PathBuf::from("/tmp/x/quando.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn a_lock_file_is_held_while_its_file_is_open_and_free_after() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("db-instances");
        let id = Uuid::now_v7();
        let own = take_file_lock(&dir, id).unwrap();
        let other = File::open(dir.join(format!("{id}.lock"))).unwrap();
        assert!(other.try_lock().is_err(), "held while the owner lives");
        drop(own);
        assert!(other.try_lock().is_ok(), "free once the owner is gone");
    }
}
