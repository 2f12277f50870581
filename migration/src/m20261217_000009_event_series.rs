//! Recurring events (issue 12): a series row keeps the recurrence and where its expansion has
//! reached; each instance is an ordinary event row that names its series and the start its rule
//! gave it (`original_start`), so instances hold their time under the same no-overlap guarantee
//! (the exclusion constraint on PostgreSQL) and show in every list and in availability.
//!
//! Keys are Citus-ready like every tenant table's: primary key `(org_id, id)`, the calendar
//! referenced through `(org_id, calendar_id)`, one instance per rule start a unique index led by
//! `org_id`. The event columns are added with one `ALTER TABLE` each (Citus and SQLite both need
//! that); existing events are no series' instances. There is no `down`: series would be lost.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Calendars {
    Table,
    Id,
    OrgId,
}

#[derive(DeriveIden)]
enum EventSeries {
    Table,
    Id,
    OrgId,
    CalendarId,
    Recurrence,
    Timezone,
    FirstStart,
    FirstEnd,
    AllDay,
    StartDate,
    EndDate,
    ExpandedUntil,
    Ended,
    Status,
    GcalId,
    IcalUid,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    SeriesId,
    OriginalStart,
    SeriesException,
}

const SERIES_CALENDAR_FK: &str = "event_series_org_calendar_fkey";
const INSTANCE_UNIQUE: &str = "events_org_series_original_start";
const SERIES_HORIZON: &str = "event_series_expanded_until";
const SERIES_GCAL_ID: &str = "event_series_org_calendar_gcal_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventSeries::Table)
                    .col(ColumnDef::new(EventSeries::Id).uuid().not_null())
                    .col(ColumnDef::new(EventSeries::OrgId).uuid().not_null())
                    .col(ColumnDef::new(EventSeries::CalendarId).uuid().not_null())
                    .col(
                        ColumnDef::new(EventSeries::Recurrence)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventSeries::Timezone)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventSeries::FirstStart)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventSeries::FirstEnd)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventSeries::AllDay).boolean().not_null())
                    .col(ColumnDef::new(EventSeries::StartDate).date().null())
                    .col(ColumnDef::new(EventSeries::EndDate).date().null())
                    .col(
                        ColumnDef::new(EventSeries::ExpandedUntil)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventSeries::Ended).boolean().not_null())
                    .col(
                        ColumnDef::new(EventSeries::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventSeries::GcalId).string_len(1024).null())
                    .col(ColumnDef::new(EventSeries::IcalUid).string_len(1024).null())
                    .col(
                        ColumnDef::new(EventSeries::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventSeries::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(EventSeries::OrgId).col(EventSeries::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventSeries::Table, EventSeries::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name(SERIES_CALENDAR_FK)
                            .from(
                                EventSeries::Table,
                                (EventSeries::OrgId, EventSeries::CalendarId),
                            )
                            .to(Calendars::Table, (Calendars::OrgId, Calendars::Id)),
                    )
                    .take(),
            )
            .await?;
        // The housekeeping pass finds series whose instances must reach further ahead.
        manager
            .create_index(
                Index::create()
                    .name(SERIES_HORIZON)
                    .table(EventSeries::Table)
                    .col(EventSeries::Ended)
                    .col(EventSeries::ExpandedUntil)
                    .take(),
            )
            .await?;
        // A Google Calendar client may choose a recurring event's id: unique per calendar.
        manager
            .create_index(
                Index::create()
                    .name(SERIES_GCAL_ID)
                    .table(EventSeries::Table)
                    .col(EventSeries::OrgId)
                    .col(EventSeries::CalendarId)
                    .col(EventSeries::GcalId)
                    .unique()
                    .take(),
            )
            .await?;
        for column in [
            ColumnDef::new(Events::SeriesId).uuid().null().take(),
            ColumnDef::new(Events::OriginalStart)
                .timestamp_with_time_zone()
                .null()
                .take(),
            ColumnDef::new(Events::SeriesException)
                .boolean()
                .not_null()
                .default(false)
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
        manager
            .create_index(
                Index::create()
                    .name(INSTANCE_UNIQUE)
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::SeriesId)
                    .col(Events::OriginalStart)
                    .unique()
                    .take(),
            )
            .await
    }
}
