//! The calendar-filtered event list sorts by (start_time, id). With the old index on
//! (org_id, calendar_id, start_time) SQLite's planner preferred (org_id, start_time, id), which
//! gives the order but walks the whole organization's date range; an index that serves the filter
//! and the order both is the plain choice on every backend.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    CalendarId,
    StartTime,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("events_org_calendar_start_id")
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::CalendarId)
                    .col(Events::StartTime)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("events_org_calendar_start")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("events_org_calendar_start")
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::CalendarId)
                    .col(Events::StartTime)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("events_org_calendar_start_id")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await
    }
}
