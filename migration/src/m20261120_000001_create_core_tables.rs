//! Organizations, API keys, calendars, event types and events, with the indexes every request
//! path relies on, and on PostgreSQL the exclusion constraint that makes double booking impossible.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrgId,
    Name,
    Lookup,
    SecretHash,
    Scopes,
    RateLimitPerMinute,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Calendars {
    Table,
    Id,
    OrgId,
    Name,
    Timezone,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EventTypes {
    Table,
    Id,
    OrgId,
    CalendarId,
    Name,
    DurationMinutes,
    BufferBeforeMinutes,
    BufferAfterMinutes,
    MinimumNoticeMinutes,
    Location,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    OrgId,
    CalendarId,
    EventTypeId,
    StartTime,
    EndTime,
    BlockStart,
    BlockEnd,
    Timezone,
    CustomerName,
    CustomerPhone,
    CustomerEmail,
    Notes,
    Title,
    Location,
    Status,
    BookedVia,
    CancellationReason,
    CancelledAt,
    CreatedAt,
    UpdatedAt,
}

fn uuid_pk<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().primary_key().take()
}

fn instant<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

fn optional_instant<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().null().take()
}

fn optional_text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().null().take()
}

fn text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().not_null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(uuid_pk(Organizations::Id))
                    .col(text(Organizations::Name))
                    .col(instant(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid_pk(ApiKeys::Id))
                    .col(ColumnDef::new(ApiKeys::OrgId).uuid().not_null())
                    .col(optional_text(ApiKeys::Name))
                    .col(text(ApiKeys::Lookup).unique_key().take())
                    .col(text(ApiKeys::SecretHash))
                    .col(text(ApiKeys::Scopes))
                    .col(ColumnDef::new(ApiKeys::RateLimitPerMinute).integer().null())
                    .col(optional_instant(ApiKeys::ExpiresAt))
                    .col(optional_instant(ApiKeys::RevokedAt))
                    .col(optional_instant(ApiKeys::LastUsedAt))
                    .col(instant(ApiKeys::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_keys_org")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::OrgId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Calendars::Table)
                    .col(uuid_pk(Calendars::Id))
                    .col(ColumnDef::new(Calendars::OrgId).uuid().not_null())
                    .col(text(Calendars::Name))
                    .col(text(Calendars::Timezone))
                    .col(optional_text(Calendars::Description))
                    .col(instant(Calendars::CreatedAt))
                    .col(instant(Calendars::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Calendars::Table, Calendars::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("calendars_org_id")
                    .table(Calendars::Table)
                    .col(Calendars::OrgId)
                    .col(Calendars::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventTypes::Table)
                    .col(uuid_pk(EventTypes::Id))
                    .col(ColumnDef::new(EventTypes::OrgId).uuid().not_null())
                    .col(ColumnDef::new(EventTypes::CalendarId).uuid().null())
                    .col(text(EventTypes::Name))
                    .col(
                        ColumnDef::new(EventTypes::DurationMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventTypes::BufferBeforeMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventTypes::BufferAfterMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventTypes::MinimumNoticeMinutes)
                            .integer()
                            .null(),
                    )
                    .col(optional_text(EventTypes::Location))
                    .col(ColumnDef::new(EventTypes::Active).boolean().not_null())
                    .col(instant(EventTypes::CreatedAt))
                    .col(instant(EventTypes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventTypes::Table, EventTypes::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventTypes::Table, EventTypes::CalendarId)
                            .to(Calendars::Table, Calendars::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("event_types_org_id")
                    .table(EventTypes::Table)
                    .col(EventTypes::OrgId)
                    .col(EventTypes::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(uuid_pk(Events::Id))
                    .col(ColumnDef::new(Events::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Events::CalendarId).uuid().not_null())
                    .col(ColumnDef::new(Events::EventTypeId).uuid().not_null())
                    .col(instant(Events::StartTime))
                    .col(instant(Events::EndTime))
                    .col(instant(Events::BlockStart))
                    .col(instant(Events::BlockEnd))
                    .col(text(Events::Timezone))
                    .col(optional_text(Events::CustomerName))
                    .col(optional_text(Events::CustomerPhone))
                    .col(optional_text(Events::CustomerEmail))
                    .col(ColumnDef::new(Events::Notes).text().null())
                    .col(optional_text(Events::Title))
                    .col(optional_text(Events::Location))
                    .col(text(Events::Status))
                    .col(text(Events::BookedVia))
                    .col(ColumnDef::new(Events::CancellationReason).text().null())
                    .col(optional_instant(Events::CancelledAt))
                    .col(instant(Events::CreatedAt))
                    .col(instant(Events::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::CalendarId)
                            .to(Calendars::Table, Calendars::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::EventTypeId)
                            .to(EventTypes::Table, EventTypes::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing: org first, then the sort order (startTime, id).
        manager
            .create_index(
                Index::create()
                    .name("events_org_start")
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::StartTime)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
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
        // The overlap check: only live bookings whose block ends after the candidate starts, so
        // it never walks a calendar's past.
        manager
            .create_index(
                Index::create()
                    .name("events_calendar_status_block_end")
                    .table(Events::Table)
                    .col(Events::CalendarId)
                    .col(Events::Status)
                    .col(Events::BlockEnd)
                    .to_owned(),
            )
            .await?;

        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist")
                .await?;
            db.execute_unprepared(
                "ALTER TABLE events ADD CONSTRAINT events_no_overlap EXCLUDE USING gist \
                 (calendar_id WITH =, tstzrange(block_start, block_end, '[)') WITH &&) \
                 WHERE (status <> 'cancelled')",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            EventTypes::Table.into_iden(),
            Calendars::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
