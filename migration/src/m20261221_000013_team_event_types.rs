//! Teams (issue 15): round-robin and collective event types.
//!
//! - `event_types.assignment` (`single`, `roundRobin`, `collective`) and `event_types.hosts`
//!   (JSON array of `{calendarId, weight, priority}`): who can take a booking of the type.
//!   Hosts live on the type's row, so loading a type loads its team (one row, one shard on
//!   Citus); calendars are never deleted, so a host cannot dangle.
//! - `events.team_hosts` (JSON array of `{calendarId, eventId}`): a collective appointment is
//!   one row on every host's calendar, written in one transaction, each under the calendar's
//!   exclusion constraint; every row carries the whole group, so any of them shows its hosts
//!   and a change to one reaches all. `NULL` for every other event.
//! - `holds.group_id`: a collective hold is one row per host; the others name the first.
//! - `events_org_type_created`: round-robin fairness counts a type's recent bookings per host.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventTypes {
    Table,
    Assignment,
    Hosts,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    EventTypeId,
    CreatedAt,
    TeamHosts,
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    OrgId,
    GroupId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(EventTypes::Table)
                    .add_column(
                        ColumnDef::new(EventTypes::Assignment)
                            .text()
                            .not_null()
                            .default("single"),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(EventTypes::Table)
                    .add_column(ColumnDef::new(EventTypes::Hosts).json_binary().null())
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::TeamHosts).json_binary().null())
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Holds::Table)
                    .add_column(ColumnDef::new(Holds::GroupId).uuid().null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("holds_org_group")
                    .table(Holds::Table)
                    .col(Holds::OrgId)
                    .col(Holds::GroupId)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_org_type_created")
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::EventTypeId)
                    .col(Events::CreatedAt)
                    .take(),
            )
            .await
    }
}
