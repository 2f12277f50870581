//! Booking widgets (issue 14): slot holds and publishable keys.
//!
//! - `holds`: a slot kept for a few minutes while a visitor (or a caller on the phone) confirms.
//!   A live hold blocks its time like a booking; an expired one blocks nothing from the instant
//!   it expires, with no sweeper involved: every reader and writer compares `expires_at` with
//!   the time of its own statement. The guarantee against a hold and a booking (or two holds)
//!   taking one time is the calendar row lock every writer of a calendar takes first on
//!   PostgreSQL (`repo::calendars::lock`), with the check after it; SQLite has one writer. A
//!   hold is not an event: no list, feed, sync or webhook sees it.
//! - `api_keys.event_type_ids` and `api_keys.origins`: a publishable key (`qnd_pub_...`) is
//!   bound to event types and to the browser origins that may use it; both `NULL` for a secret
//!   key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Calendars {
    Table,
    Id,
    OrgId,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    EventTypeIds,
    Origins,
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
    OrgId,
    CalendarId,
    EventTypeId,
    KeyId,
    StartTime,
    EndTime,
    BlockStart,
    BlockEnd,
    ExpiresAt,
    CreatedAt,
}

fn ts<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .take()
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
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::EventTypeIds).text().null())
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::Origins).text().null())
                    .take(),
            )
            .await?;

        use Holds as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(ColumnDef::new(H::Id).uuid().not_null())
                    .col(ColumnDef::new(H::OrgId).uuid().not_null())
                    .col(ColumnDef::new(H::CalendarId).uuid().not_null())
                    .col(ColumnDef::new(H::EventTypeId).uuid().not_null())
                    .col(ColumnDef::new(H::KeyId).uuid().not_null())
                    .col(ts(H::StartTime))
                    .col(ts(H::EndTime))
                    .col(ts(H::BlockStart))
                    .col(ts(H::BlockEnd))
                    .col(ts(H::ExpiresAt))
                    .col(ts(H::CreatedAt))
                    .primary_key(Index::create().col(H::OrgId).col(H::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(H::Table, (H::OrgId, H::CalendarId))
                            .to(Calendars::Table, (Calendars::OrgId, Calendars::Id)),
                    )
                    .take(),
            )
            .await?;
        // The overlap check of every booking and hold, and availability: one calendar's holds
        // by the end of their block (expired ones are filtered by `expires_at`).
        manager
            .create_index(
                Index::create()
                    .name("holds_org_calendar_block_end")
                    .table(H::Table)
                    .col(H::OrgId)
                    .col(H::CalendarId)
                    .col(H::BlockEnd)
                    .take(),
            )
            .await?;
        // Housekeeping's purge of long-expired holds.
        manager
            .create_index(
                Index::create()
                    .name("holds_expires_at")
                    .table(H::Table)
                    .col(H::ExpiresAt)
                    .take(),
            )
            .await
    }
}
