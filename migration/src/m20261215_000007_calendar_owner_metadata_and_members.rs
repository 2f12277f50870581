//! Talkover's calendars (issue 11): a calendar gains `owner_id` and `metadata` (a JSON object,
//! the same column type as `events.metadata`), and a new tenant table `calendar_members` keeps
//! who may do what on a calendar (`owner`, `editor`, `viewer`).
//!
//! `calendar_members` is shaped like every tenant table for Citus: primary key `(org_id, id)`,
//! the calendar referenced through `(org_id, calendar_id)`, the one-membership-per-user rule a
//! unique index led by `org_id`. Both backends add the columns with one `ALTER TABLE` each (Citus
//! refuses several subcommands in one; SQLite accepts only one). Existing calendars get NULL in
//! both new columns. There is no `down`: the members and metadata would be lost.

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
    OwnerId,
    Metadata,
}

#[derive(DeriveIden)]
enum CalendarMembers {
    Table,
    Id,
    OrgId,
    CalendarId,
    UserId,
    Role,
    AddedAt,
    UpdatedAt,
}

/// The names both backends use (PostgreSQL reports them in errors).
const MEMBERS_CALENDAR_FK: &str = "calendar_members_org_calendar_fkey";
const MEMBERS_UNIQUE_USER: &str = "calendar_members_org_calendar_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Calendars::OwnerId)
                .string_len(255)
                .null()
                .take(),
            ColumnDef::new(Calendars::Metadata)
                .json_binary()
                .null()
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
        manager
            .create_table(
                Table::create()
                    .table(CalendarMembers::Table)
                    .col(ColumnDef::new(CalendarMembers::Id).uuid().not_null())
                    .col(ColumnDef::new(CalendarMembers::OrgId).uuid().not_null())
                    .col(
                        ColumnDef::new(CalendarMembers::CalendarId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CalendarMembers::UserId)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CalendarMembers::Role)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CalendarMembers::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CalendarMembers::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(CalendarMembers::OrgId)
                            .col(CalendarMembers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CalendarMembers::Table, CalendarMembers::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name(MEMBERS_CALENDAR_FK)
                            .from(
                                CalendarMembers::Table,
                                (CalendarMembers::OrgId, CalendarMembers::CalendarId),
                            )
                            .to(Calendars::Table, (Calendars::OrgId, Calendars::Id)),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(MEMBERS_UNIQUE_USER)
                    .table(CalendarMembers::Table)
                    .col(CalendarMembers::OrgId)
                    .col(CalendarMembers::CalendarId)
                    .col(CalendarMembers::UserId)
                    .unique()
                    .take(),
            )
            .await
    }
}
