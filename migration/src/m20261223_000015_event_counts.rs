//! Exact list totals without counting: `event_counts` keeps, per (organization, calendar,
//! status), how many events there are, and triggers on `events` keep it in the same transaction
//! as every insert, status or calendar change and delete of an event. A rolled-back write rolls
//! its counts back with it; a refused booking on PostgreSQL (inserted, then stopped by the
//! exclusion constraint) never counts. Counters are per calendar, so bookings on different
//! calendars never queue behind one row; bookings on one calendar already queue behind its lock.
//!
//! Why triggers and not the application: every path that writes an event (each dialect, team
//! groups, series instances, the bench's bulk seed, an operator's SQL) is counted by the
//! database itself, so the count cannot drift from `count(*)`. On PostgreSQL an update that moves
//! an event between two counters touches them in key order, so two such updates never wait on
//! each other in a cycle. On Citus the trigger writes a colocated row of the same organization
//! (`citus.enable_unsafe_triggers`, see `scripts/citus.sql`).
//!
//! A migration that rebuilds `events` on SQLite (rename, copy) must create the triggers again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventCounts {
    Table,
    OrgId,
    CalendarId,
    Status,
    N,
}

/// The counts of the events already stored.
const BACKFILL: &str = "INSERT INTO event_counts (org_id, calendar_id, status, n) \
     SELECT org_id, calendar_id, status, COUNT(*) FROM events GROUP BY org_id, calendar_id, status";

const POSTGRES: &[&str] = &[
    r#"CREATE FUNCTION quando_event_count(o uuid, c uuid, s varchar, d bigint) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO event_counts AS t (org_id, calendar_id, status, n) VALUES (o, c, s, d)
  ON CONFLICT (org_id, calendar_id, status) DO UPDATE SET n = t.n + excluded.n
$$"#,
    r#"CREATE FUNCTION quando_event_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
  ELSIF (OLD.org_id, OLD.calendar_id, OLD.status) < (NEW.org_id, NEW.calendar_id, NEW.status) THEN
    PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
    PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
  ELSE
    PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
    PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
  END IF;
  RETURN NULL;
END
$$"#,
    "CREATE TRIGGER events_count_rows AFTER INSERT OR DELETE ON events \
     FOR EACH ROW EXECUTE FUNCTION quando_event_counts()",
    "CREATE TRIGGER events_count_moves AFTER UPDATE OF org_id, calendar_id, status ON events \
     FOR EACH ROW WHEN ((OLD.org_id, OLD.calendar_id, OLD.status) IS DISTINCT FROM \
     (NEW.org_id, NEW.calendar_id, NEW.status)) EXECUTE FUNCTION quando_event_counts()",
];

const SQLITE: &[&str] = &[
    "CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN \
       INSERT INTO event_counts (org_id, calendar_id, status, n) \
         VALUES (NEW.org_id, NEW.calendar_id, NEW.status, 1) \
         ON CONFLICT (org_id, calendar_id, status) DO UPDATE SET n = n + 1; \
     END",
    "CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN \
       UPDATE event_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND calendar_id = OLD.calendar_id AND status = OLD.status; \
     END",
    "CREATE TRIGGER events_count_move AFTER UPDATE OF org_id, calendar_id, status ON events \
     WHEN OLD.org_id IS NOT NEW.org_id OR OLD.calendar_id IS NOT NEW.calendar_id \
       OR OLD.status IS NOT NEW.status BEGIN \
       UPDATE event_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND calendar_id = OLD.calendar_id AND status = OLD.status; \
       INSERT INTO event_counts (org_id, calendar_id, status, n) \
         VALUES (NEW.org_id, NEW.calendar_id, NEW.status, 1) \
         ON CONFLICT (org_id, calendar_id, status) DO UPDATE SET n = n + 1; \
     END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventCounts::Table)
                    .col(ColumnDef::new(EventCounts::OrgId).uuid().not_null())
                    .col(ColumnDef::new(EventCounts::CalendarId).uuid().not_null())
                    .col(ColumnDef::new(EventCounts::Status).string().not_null())
                    .col(
                        ColumnDef::new(EventCounts::N)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(
                        Index::create()
                            .col(EventCounts::OrgId)
                            .col(EventCounts::CalendarId)
                            .col(EventCounts::Status),
                    )
                    .take(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(BACKFILL).await?;
        let statements = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES,
            _ => SQLITE,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
