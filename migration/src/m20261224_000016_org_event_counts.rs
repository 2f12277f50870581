//! Organization-wide list totals in a few rows: `event_org_counts` keeps, per (organization,
//! stripe, status), a share of how many events there are; an organization's total of a status
//! is the sum of its stripes. `event_counts` (per calendar) answers a calendar's totals; summing
//! it for the whole organization read one row per calendar, 10,000 rows for an organization of
//! 10,000 calendars (the first page of `?status=confirmed` went from 4 to 19 ms at p50 between
//! 100,000 and 10,000,000 events in `quando-bench scale`).
//!
//! Triggers on `events` keep both, in the same transaction as the write. Which stripe a write
//! lands on:
//! - PostgreSQL: the writing connection's own (`pg_backend_pid()`). Two transactions at once
//!   are on two connections, so they never wait on each other's stripe row (a per-calendar
//!   stripe would make bookings on two calendars of one stripe queue, or deadlock when a team
//!   booking takes both calendars). A stripe is only a share: an event counted on one
//!   connection and cancelled on another leaves -1 on the second, and only the sum means
//!   anything. Connections come and go, so housekeeping folds the stripes of closed connections
//!   into stripe 0 (`repo::events::fold_org_counts`), which no connection writes.
//! - SQLite: stripe 0. One writer commits every write in turn, so there is nothing to spread.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventOrgCounts {
    Table,
    OrgId,
    Stripe,
    Status,
    N,
}

/// The counts of the events already stored, on stripe 0.
const BACKFILL: &str = "INSERT INTO event_org_counts (org_id, stripe, status, n) \
     SELECT org_id, 0, status, COUNT(*) FROM events GROUP BY org_id, status";

const POSTGRES: &[&str] = &[
    r#"CREATE FUNCTION quando_event_org_count(o uuid, s varchar, d bigint) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO event_org_counts AS t (org_id, stripe, status, n)
  VALUES (o, pg_backend_pid(), s, d)
  ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = t.n + excluded.n
$$"#,
    // Inserts and deletes are counted once per statement, from the rows it wrote: a bulk
    // insert (a seed, a series' instances) updates each stripe row once, not once per event
    // (each update of one row inside one transaction leaves a version behind that the next
    // update walks past, so per-row counting of 50,000 inserts took quadratic time).
    r#"CREATE FUNCTION quando_event_org_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_org_counts AS t (org_id, stripe, status, n)
    SELECT org_id, pg_backend_pid(), status, COUNT(*) FROM inserted_rows
    GROUP BY org_id, status ORDER BY org_id, status
  ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END
$$"#,
    r#"CREATE FUNCTION quando_event_org_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_org_counts AS t (org_id, stripe, status, n)
    SELECT org_id, pg_backend_pid(), status, -COUNT(*) FROM deleted_rows
    GROUP BY org_id, status ORDER BY org_id, status
  ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END
$$"#,
    "CREATE TRIGGER events_org_count_inserts AFTER INSERT ON events \
     REFERENCING NEW TABLE AS inserted_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION quando_event_org_counts_inserted()",
    "CREATE TRIGGER events_org_count_deletes AFTER DELETE ON events \
     REFERENCING OLD TABLE AS deleted_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION quando_event_org_counts_deleted()",
    // A change of status (or organization) moves one row at a time, in the row trigger that
    // moves the calendar's counters (PostgreSQL allows no transition tables on a trigger with a
    // column list, and an update of any event would otherwise pay for one): the calendar's
    // counters as before, then the organization's on this connection's stripe, in key order,
    // nothing when the status stays.
    r#"CREATE OR REPLACE FUNCTION quando_event_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
  ELSE
    IF (OLD.org_id, OLD.calendar_id, OLD.status) < (NEW.org_id, NEW.calendar_id, NEW.status) THEN
      PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
      PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
    ELSE
      PERFORM quando_event_count(NEW.org_id, NEW.calendar_id, NEW.status, 1);
      PERFORM quando_event_count(OLD.org_id, OLD.calendar_id, OLD.status, -1);
    END IF;
    IF (OLD.org_id, OLD.status) < (NEW.org_id, NEW.status) THEN
      PERFORM quando_event_org_count(OLD.org_id, OLD.status, -1);
      PERFORM quando_event_org_count(NEW.org_id, NEW.status, 1);
    ELSIF (OLD.org_id, OLD.status) > (NEW.org_id, NEW.status) THEN
      PERFORM quando_event_org_count(NEW.org_id, NEW.status, 1);
      PERFORM quando_event_org_count(OLD.org_id, OLD.status, -1);
    END IF;
  END IF;
  RETURN NULL;
END
$$"#,
];

/// SQLite cannot replace a trigger: the three of m20261223_000015 are dropped and made again
/// with the organization's counter beside the calendar's.
const SQLITE: &[&str] = &[
    "DROP TRIGGER events_count_insert",
    "DROP TRIGGER events_count_delete",
    "DROP TRIGGER events_count_move",
    "CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN \
       INSERT INTO event_counts (org_id, calendar_id, status, n) \
         VALUES (NEW.org_id, NEW.calendar_id, NEW.status, 1) \
         ON CONFLICT (org_id, calendar_id, status) DO UPDATE SET n = n + 1; \
       INSERT INTO event_org_counts (org_id, stripe, status, n) \
         VALUES (NEW.org_id, 0, NEW.status, 1) \
         ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = n + 1; \
     END",
    "CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN \
       UPDATE event_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND calendar_id = OLD.calendar_id AND status = OLD.status; \
       UPDATE event_org_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND stripe = 0 AND status = OLD.status; \
     END",
    "CREATE TRIGGER events_count_move AFTER UPDATE OF org_id, calendar_id, status ON events \
     WHEN OLD.org_id IS NOT NEW.org_id OR OLD.calendar_id IS NOT NEW.calendar_id \
       OR OLD.status IS NOT NEW.status BEGIN \
       UPDATE event_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND calendar_id = OLD.calendar_id AND status = OLD.status; \
       INSERT INTO event_counts (org_id, calendar_id, status, n) \
         VALUES (NEW.org_id, NEW.calendar_id, NEW.status, 1) \
         ON CONFLICT (org_id, calendar_id, status) DO UPDATE SET n = n + 1; \
       UPDATE event_org_counts SET n = n - 1 WHERE org_id = OLD.org_id \
         AND stripe = 0 AND status = OLD.status; \
       INSERT INTO event_org_counts (org_id, stripe, status, n) \
         VALUES (NEW.org_id, 0, NEW.status, 1) \
         ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = n + 1; \
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
                    .table(EventOrgCounts::Table)
                    .col(ColumnDef::new(EventOrgCounts::OrgId).uuid().not_null())
                    .col(ColumnDef::new(EventOrgCounts::Stripe).integer().not_null())
                    .col(ColumnDef::new(EventOrgCounts::Status).string().not_null())
                    .col(
                        ColumnDef::new(EventOrgCounts::N)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(
                        Index::create()
                            .col(EventOrgCounts::OrgId)
                            .col(EventOrgCounts::Stripe)
                            .col(EventOrgCounts::Status),
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
