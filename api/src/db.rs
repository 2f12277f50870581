//! Connecting and migrating. SQLite gets WAL, foreign keys, synchronous FULL and a busy timeout
//! on every pooled connection (sea-orm's default pool for SQLite is one connection with none of
//! these); PostgreSQL gets a pool sized for a small machine.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

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
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
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
