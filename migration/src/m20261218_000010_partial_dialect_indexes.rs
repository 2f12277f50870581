//! The Google-id, iCalendar-UID and series-instance indexes of `events` become partial: they
//! index only the rows that carry the column (`WHERE gcal_id IS NOT NULL`, ...). A booking made
//! without them (every native and Talkover booking, most Google ones) no longer writes three
//! index pages it never reads; on SQLite, where every page of a commit is written and synced
//! behind the one writer, those pages were a third of a booking's cost (measured with the
//! bench's raw-storage baseline: 490 -> 760 tx/s). Every query that uses them compares the
//! column (`gcal_id = ?`, `series_id = ?`), which implies `IS NOT NULL` to both planners, and a
//! unique index still refuses a second row with the same values (NULLs never collided).
//!
//! Dropped and created again in one transaction; no row changes. Citus propagates both.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    CalendarId,
    GcalId,
    IcalUid,
    SeriesId,
    OriginalStart,
}

const EVENTS_UNIQUE_GCAL_ID: &str = "events_org_calendar_gcal_id";
const EVENTS_ICAL_UID: &str = "events_org_calendar_ical_uid";
const INSTANCE_UNIQUE: &str = "events_org_series_original_start";

/// The three indexes; `partial` adds each one's `IS NOT NULL` condition.
fn indexes(partial: bool) -> Vec<IndexCreateStatement> {
    let mut gcal = Index::create()
        .name(EVENTS_UNIQUE_GCAL_ID)
        .table(Events::Table)
        .col(Events::OrgId)
        .col(Events::CalendarId)
        .col(Events::GcalId)
        .unique()
        .take();
    let mut ical = Index::create()
        .name(EVENTS_ICAL_UID)
        .table(Events::Table)
        .col(Events::OrgId)
        .col(Events::CalendarId)
        .col(Events::IcalUid)
        .take();
    let mut instance = Index::create()
        .name(INSTANCE_UNIQUE)
        .table(Events::Table)
        .col(Events::OrgId)
        .col(Events::SeriesId)
        .col(Events::OriginalStart)
        .unique()
        .take();
    if partial {
        gcal.and_where(Expr::col(Events::GcalId).is_not_null());
        ical.and_where(Expr::col(Events::IcalUid).is_not_null());
        instance.and_where(Expr::col(Events::SeriesId).is_not_null());
    }
    vec![gcal, ical, instance]
}

async fn replace(manager: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    for index in indexes(partial) {
        let name = index
            .get_index_spec()
            .get_name()
            .unwrap_or_default()
            .to_string();
        manager
            .drop_index(Index::drop().name(&name).table(Events::Table).to_owned())
            .await?;
        manager.create_index(index).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, false).await
    }
}
