//! The Google Calendar v3 dialect (issue 12): what Google's event and calendar resources carry
//! beyond Quando's own columns, and the change counters that make incremental sync exact.
//!
//! - `calendars.is_default`: the organization's `primary` calendar (at most one per org; the
//!   service clears the others in the same transaction). Existing calendars are not default.
//! - `calendars.change_seq`: a per-calendar counter bumped by every write transaction that
//!   creates or changes one of its events (`UPDATE ... SET change_seq = change_seq + 1 ...
//!   RETURNING`); its row lock, held to commit, orders the writes of one calendar.
//! - `events.change_seq`: the calendar's counter at the event's last change (0 for rows older
//!   than this migration, which every full sync lists anyway).
//! - `events.gcal_id`: a client-chosen Google id, unique per `(org_id, calendar_id, gcal_id)`
//!   (NULL for events that have none: their id is the UUID in 32-hex form).
//! - `events.ical_uid`, `events.sequence` (bumped when the times change), `events.extras` (a
//!   JSON object: reminders, extended properties, colorId, source, guest permissions, ...).
//!
//! Every index is led by `org_id` (Citus). One `ALTER TABLE` per column (Citus refuses several
//! subcommands in one statement; SQLite accepts only one). No `down`: the Google fields would
//! be lost.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Calendars {
    Table,
    IsDefault,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    CalendarId,
    GcalId,
    IcalUid,
    Sequence,
    Extras,
    ChangeSeq,
}

/// The names both backends use.
const EVENTS_UNIQUE_GCAL_ID: &str = "events_org_calendar_gcal_id";
const EVENTS_CHANGE_SEQ: &str = "events_org_calendar_change_seq";
const EVENTS_ICAL_UID: &str = "events_org_calendar_ical_uid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Calendars::IsDefault)
                .boolean()
                .not_null()
                .default(false)
                .take(),
            ColumnDef::new(Calendars::ChangeSeq)
                .big_integer()
                .not_null()
                .default(0)
                .take(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Calendars::Table)
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        for column in [
            ColumnDef::new(Events::GcalId)
                .string_len(1024)
                .null()
                .take(),
            ColumnDef::new(Events::IcalUid)
                .string_len(1024)
                .null()
                .take(),
            ColumnDef::new(Events::Sequence)
                .integer()
                .not_null()
                .default(0)
                .take(),
            ColumnDef::new(Events::Extras).json_binary().null().take(),
            ColumnDef::new(Events::ChangeSeq)
                .big_integer()
                .not_null()
                .default(0)
                .take(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        // NULLs are distinct in a unique index on both backends: events without a Google id
        // never collide.
        manager
            .create_index(
                Index::create()
                    .name(EVENTS_UNIQUE_GCAL_ID)
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::CalendarId)
                    .col(Events::GcalId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EVENTS_CHANGE_SEQ)
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::CalendarId)
                    .col(Events::ChangeSeq)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EVENTS_ICAL_UID)
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::CalendarId)
                    .col(Events::IcalUid)
                    .take(),
            )
            .await
    }
}
