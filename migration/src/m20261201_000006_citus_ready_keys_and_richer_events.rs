//! Two things issue 10 needs from storage, in one migration because both rebuild `events`.
//!
//! - **Keys ready for Citus.** Every tenant table (`calendars`, `event_types`, `events`) gets the
//!   primary key `(org_id, id)`; `event_types.calendar_id` and `events.calendar_id` /
//!   `events.event_type_id` reference their parents through `(org_id, ...)`; the exclusion
//!   constraint `events_no_overlap` compares `org_id WITH =` first (and leaves transparent events
//!   out). Citus can then distribute each tenant table by `org_id`, colocated, so an
//!   organization's request touches one shard (README, "Scale-out with Citus"). `organizations`
//!   and `api_keys` stay as they are: reference tables. `idempotency_keys` already has
//!   `(org_id, key)`.
//! - **The richer event**: `description`, `type`, `attendees` (JSON array), `owner_id`,
//!   `owner_type`, `created_by`, `metadata` (JSON object), `all_day` with `start_date`/`end_date`,
//!   `transparency` (`opaque` by default); `event_type_id` becomes NULLable (events made through
//!   dialects without event types), its composite foreign key applying whenever it is set.
//!
//! PostgreSQL changes the tables in place with one subcommand per `ALTER TABLE` (Citus refuses
//! `ADD CONSTRAINT` combined with anything else). SQLite cannot change a primary key or a
//! foreign key, so each table is rebuilt: the old tables are renamed aside (SQLite rewrites the
//! references between them), the new ones created under the real names and filled with every
//! row, the old ones dropped, the indexes recreated. The whole migration runs in one transaction
//! on both backends (`use_transaction`), so a failure leaves the database as it was. Foreign keys
//! stay on throughout (`PRAGMA foreign_keys` cannot change inside a transaction); any violation
//! would be reported at commit (`defer_foreign_keys`).
//!
//! The overlap index is now led by `org_id` (`events_org_calendar_status_block_end`, replacing
//! `events_calendar_status_block_end`), like every other index of a distributed table.
//!
//! There is no `down`: going back would mean refusing events without an event type and
//! dropping columns that hold data. Restore a backup instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Calendars {
    Table,
    Id,
    OrgId,
    Name,
    Timezone,
    Description,
    CreatedAt,
    UpdatedAt,
    WorkingHours,
    DateOverrides,
}

#[derive(DeriveIden, Clone, Copy)]
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
    SlotIntervalMinutes,
    MaxAdvanceDays,
}

#[derive(DeriveIden, Clone, Copy)]
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
    // New in this migration.
    Description,
    Type,
    Attendees,
    OwnerId,
    OwnerType,
    CreatedBy,
    Metadata,
    AllDay,
    StartDate,
    EndDate,
    Transparency,
}

/// The constraint names both backends use (PostgreSQL reports them in errors).
const EVENT_TYPES_CALENDAR_FK: &str = "event_types_org_calendar_fkey";
const EVENTS_CALENDAR_FK: &str = "events_org_calendar_fkey";
const EVENTS_EVENT_TYPE_FK: &str = "events_org_event_type_fkey";

/// The exclusion constraint; the code recognises its violation by SQLSTATE 23P01.
const NO_OVERLAP: &str = "ALTER TABLE events ADD CONSTRAINT events_no_overlap EXCLUDE USING gist \
     (org_id WITH =, calendar_id WITH =, tstzrange(block_start, block_end, '[)') WITH &&) \
     WHERE (status <> 'cancelled' AND transparency = 'opaque')";

fn uuid<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().take()
}

fn optional_uuid<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().null().take()
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

fn text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().not_null().take()
}

fn optional_text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().null().take()
}

fn long_text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).text().null().take()
}

fn integer<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().take()
}

fn optional_integer<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).integer().null().take()
}

/// The columns `events` gains, in the order both backends give them.
fn new_event_columns() -> Vec<ColumnDef> {
    vec![
        long_text(Events::Description),
        ColumnDef::new(Events::Type).string_len(64).null().take(),
        ColumnDef::new(Events::Attendees)
            .json_binary()
            .null()
            .take(),
        ColumnDef::new(Events::OwnerId)
            .string_len(255)
            .null()
            .take(),
        ColumnDef::new(Events::OwnerType)
            .string_len(16)
            .null()
            .take(),
        ColumnDef::new(Events::CreatedBy)
            .string_len(255)
            .null()
            .take(),
        ColumnDef::new(Events::Metadata).json_binary().null().take(),
        ColumnDef::new(Events::AllDay)
            .boolean()
            .not_null()
            .default(false)
            .take(),
        ColumnDef::new(Events::StartDate).date().null().take(),
        ColumnDef::new(Events::EndDate).date().null().take(),
        ColumnDef::new(Events::Transparency)
            .string_len(16)
            .not_null()
            .default("opaque")
            .take(),
    ]
}

fn org_fk<T: IntoIden>(table: T, org_id: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, org_id)
        .to(Organizations::Table, Organizations::Id)
        .take()
}

fn calendar_fk(
    name: &str,
    table: DynIden,
    org_id: DynIden,
    calendar_id: DynIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, (org_id, calendar_id))
        .to(Calendars::Table, (Calendars::OrgId, Calendars::Id))
        .take()
}

fn event_type_fk() -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(EVENTS_EVENT_TYPE_FK)
        .from(Events::Table, (Events::OrgId, Events::EventTypeId))
        .to(EventTypes::Table, (EventTypes::OrgId, EventTypes::Id))
        .take()
}

/// The final `calendars` (SQLite builds it whole; PostgreSQL reaches it by ALTERs).
fn calendars_table() -> TableCreateStatement {
    Table::create()
        .table(Calendars::Table)
        .col(uuid(Calendars::Id))
        .col(uuid(Calendars::OrgId))
        .col(text(Calendars::Name))
        .col(text(Calendars::Timezone))
        .col(optional_text(Calendars::Description))
        .col(instant(Calendars::CreatedAt))
        .col(instant(Calendars::UpdatedAt))
        .col(long_text(Calendars::WorkingHours))
        .col(long_text(Calendars::DateOverrides))
        .primary_key(Index::create().col(Calendars::OrgId).col(Calendars::Id))
        .foreign_key(&mut org_fk(Calendars::Table, Calendars::OrgId))
        .take()
}

fn event_types_table() -> TableCreateStatement {
    Table::create()
        .table(EventTypes::Table)
        .col(uuid(EventTypes::Id))
        .col(uuid(EventTypes::OrgId))
        .col(optional_uuid(EventTypes::CalendarId))
        .col(text(EventTypes::Name))
        .col(integer(EventTypes::DurationMinutes))
        .col(integer(EventTypes::BufferBeforeMinutes))
        .col(integer(EventTypes::BufferAfterMinutes))
        .col(optional_integer(EventTypes::MinimumNoticeMinutes))
        .col(optional_text(EventTypes::Location))
        .col(ColumnDef::new(EventTypes::Active).boolean().not_null())
        .col(instant(EventTypes::CreatedAt))
        .col(instant(EventTypes::UpdatedAt))
        .col(optional_integer(EventTypes::SlotIntervalMinutes))
        .col(optional_integer(EventTypes::MaxAdvanceDays))
        .primary_key(Index::create().col(EventTypes::OrgId).col(EventTypes::Id))
        .foreign_key(&mut org_fk(EventTypes::Table, EventTypes::OrgId))
        .foreign_key(&mut calendar_fk(
            EVENT_TYPES_CALENDAR_FK,
            EventTypes::Table.into_iden(),
            EventTypes::OrgId.into_iden(),
            EventTypes::CalendarId.into_iden(),
        ))
        .take()
}

fn events_table() -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(Events::Table)
        .col(uuid(Events::Id))
        .col(uuid(Events::OrgId))
        .col(uuid(Events::CalendarId))
        .col(optional_uuid(Events::EventTypeId))
        .col(instant(Events::StartTime))
        .col(instant(Events::EndTime))
        .col(instant(Events::BlockStart))
        .col(instant(Events::BlockEnd))
        .col(text(Events::Timezone))
        .col(optional_text(Events::CustomerName))
        .col(optional_text(Events::CustomerPhone))
        .col(optional_text(Events::CustomerEmail))
        .col(long_text(Events::Notes))
        .col(optional_text(Events::Title))
        .col(optional_text(Events::Location))
        .col(text(Events::Status))
        .col(text(Events::BookedVia))
        .col(long_text(Events::CancellationReason))
        .col(optional_instant(Events::CancelledAt))
        .col(instant(Events::CreatedAt))
        .col(instant(Events::UpdatedAt));
    for mut column in new_event_columns() {
        table.col(&mut column);
    }
    table
        .primary_key(Index::create().col(Events::OrgId).col(Events::Id))
        .foreign_key(&mut org_fk(Events::Table, Events::OrgId))
        .foreign_key(&mut calendar_fk(
            EVENTS_CALENDAR_FK,
            Events::Table.into_iden(),
            Events::OrgId.into_iden(),
            Events::CalendarId.into_iden(),
        ))
        .foreign_key(&mut event_type_fk())
        .take()
}

/// The indexes SQLite recreates after its rebuild (PostgreSQL keeps its own in place).
fn indexes() -> Vec<IndexCreateStatement> {
    let index = |name: &str, table: DynIden, cols: Vec<DynIden>| {
        let mut i = Index::create();
        i.name(name).table(table);
        for c in cols {
            i.col(c);
        }
        i.take()
    };
    vec![
        index(
            "calendars_org_id",
            Calendars::Table.into_iden(),
            vec![Calendars::OrgId.into_iden(), Calendars::Id.into_iden()],
        ),
        index(
            "event_types_org_id",
            EventTypes::Table.into_iden(),
            vec![EventTypes::OrgId.into_iden(), EventTypes::Id.into_iden()],
        ),
        // Listing: org first, then the sort order (startTime, id).
        index(
            "events_org_start",
            Events::Table.into_iden(),
            vec![
                Events::OrgId.into_iden(),
                Events::StartTime.into_iden(),
                Events::Id.into_iden(),
            ],
        ),
        // The calendar-filtered list (see m20261121_000004).
        index(
            "events_org_calendar_start_id",
            Events::Table.into_iden(),
            vec![
                Events::OrgId.into_iden(),
                Events::CalendarId.into_iden(),
                Events::StartTime.into_iden(),
                Events::Id.into_iden(),
            ],
        ),
        index(
            "events_org_customer_phone",
            Events::Table.into_iden(),
            vec![Events::OrgId.into_iden(), Events::CustomerPhone.into_iden()],
        ),
        index(
            "events_org_customer_email",
            Events::Table.into_iden(),
            vec![Events::OrgId.into_iden(), Events::CustomerEmail.into_iden()],
        ),
        overlap_index(),
    ]
}

/// The overlap check: only live bookings whose block ends after the candidate starts, so it
/// never walks a calendar's past; led by `org_id` like every index of a distributed table.
fn overlap_index() -> IndexCreateStatement {
    Index::create()
        .name("events_org_calendar_status_block_end")
        .table(Events::Table)
        .col(Events::OrgId)
        .col(Events::CalendarId)
        .col(Events::Status)
        .col(Events::BlockEnd)
        .take()
}

/// Every column an old row has, in a form for `INSERT INTO t (..) SELECT .. FROM t_old`.
fn column_list(cols: &[DynIden]) -> String {
    cols.iter()
        .map(|c| format!("\"{}\"", c))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on SQLite too: a rebuild half done must never be committed.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => postgres(manager).await,
            DbBackend::Sqlite => sqlite(manager).await,
            other => Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
    }
}

async fn postgres(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    // The old single-column references and the exclusion constraint go first: they hang on the
    // primary keys being replaced. Names are PostgreSQL's defaults from m20261120_000001.
    for sql in [
        "ALTER TABLE events DROP CONSTRAINT events_no_overlap",
        "ALTER TABLE events DROP CONSTRAINT events_event_type_id_fkey",
        "ALTER TABLE events DROP CONSTRAINT events_calendar_id_fkey",
        "ALTER TABLE event_types DROP CONSTRAINT event_types_calendar_id_fkey",
    ] {
        db.execute_unprepared(sql).await?;
    }
    for table in ["calendars", "event_types", "events"] {
        db.execute_unprepared(&format!("ALTER TABLE {table} DROP CONSTRAINT {table}_pkey"))
            .await?;
        db.execute_unprepared(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (org_id, id)"
        ))
        .await?;
    }
    db.execute_unprepared("ALTER TABLE events ALTER COLUMN event_type_id DROP NOT NULL")
        .await?;
    for mut column in new_event_columns() {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(&mut column)
                    .take(),
            )
            .await?;
    }
    for fk in [
        calendar_fk(
            EVENT_TYPES_CALENDAR_FK,
            EventTypes::Table.into_iden(),
            EventTypes::OrgId.into_iden(),
            EventTypes::CalendarId.into_iden(),
        ),
        calendar_fk(
            EVENTS_CALENDAR_FK,
            Events::Table.into_iden(),
            Events::OrgId.into_iden(),
            Events::CalendarId.into_iden(),
        ),
        event_type_fk(),
    ] {
        manager.create_foreign_key(fk).await?;
    }
    db.execute_unprepared(NO_OVERLAP).await?;
    manager
        .drop_index(
            Index::drop()
                .name("events_calendar_status_block_end")
                .table(Events::Table)
                .to_owned(),
        )
        .await?;
    manager.create_index(overlap_index()).await
}

async fn sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    // Checked at commit instead of per statement; reset by the commit itself.
    db.execute_unprepared("PRAGMA defer_foreign_keys = ON")
        .await?;
    // Children first, so each rename rewrites the references of the tables already aside
    // (SQLite >= 3.26 does that) and no reference ever points at a table that is gone.
    for table in ["events", "event_types", "calendars"] {
        db.execute_unprepared(&format!(
            "ALTER TABLE \"{table}\" RENAME TO \"{table}_old\""
        ))
        .await?;
    }
    let calendar_cols: Vec<DynIden> = vec![
        Calendars::Id.into_iden(),
        Calendars::OrgId.into_iden(),
        Calendars::Name.into_iden(),
        Calendars::Timezone.into_iden(),
        Calendars::Description.into_iden(),
        Calendars::CreatedAt.into_iden(),
        Calendars::UpdatedAt.into_iden(),
        Calendars::WorkingHours.into_iden(),
        Calendars::DateOverrides.into_iden(),
    ];
    let event_type_cols: Vec<DynIden> = vec![
        EventTypes::Id.into_iden(),
        EventTypes::OrgId.into_iden(),
        EventTypes::CalendarId.into_iden(),
        EventTypes::Name.into_iden(),
        EventTypes::DurationMinutes.into_iden(),
        EventTypes::BufferBeforeMinutes.into_iden(),
        EventTypes::BufferAfterMinutes.into_iden(),
        EventTypes::MinimumNoticeMinutes.into_iden(),
        EventTypes::Location.into_iden(),
        EventTypes::Active.into_iden(),
        EventTypes::CreatedAt.into_iden(),
        EventTypes::UpdatedAt.into_iden(),
        EventTypes::SlotIntervalMinutes.into_iden(),
        EventTypes::MaxAdvanceDays.into_iden(),
    ];
    let event_cols: Vec<DynIden> = vec![
        Events::Id.into_iden(),
        Events::OrgId.into_iden(),
        Events::CalendarId.into_iden(),
        Events::EventTypeId.into_iden(),
        Events::StartTime.into_iden(),
        Events::EndTime.into_iden(),
        Events::BlockStart.into_iden(),
        Events::BlockEnd.into_iden(),
        Events::Timezone.into_iden(),
        Events::CustomerName.into_iden(),
        Events::CustomerPhone.into_iden(),
        Events::CustomerEmail.into_iden(),
        Events::Notes.into_iden(),
        Events::Title.into_iden(),
        Events::Location.into_iden(),
        Events::Status.into_iden(),
        Events::BookedVia.into_iden(),
        Events::CancellationReason.into_iden(),
        Events::CancelledAt.into_iden(),
        Events::CreatedAt.into_iden(),
        Events::UpdatedAt.into_iden(),
    ];
    // Parents first, so every reference finds its row as it is inserted.
    for (table, create, cols) in [
        ("calendars", calendars_table(), calendar_cols),
        ("event_types", event_types_table(), event_type_cols),
        ("events", events_table(), event_cols),
    ] {
        manager.create_table(create).await?;
        let cols = column_list(&cols);
        db.execute_unprepared(&format!(
            "INSERT INTO \"{table}\" ({cols}) SELECT {cols} FROM \"{table}_old\""
        ))
        .await?;
    }
    // Dropping the old tables drops their indexes, whose names the new ones take.
    for table in ["events", "event_types", "calendars"] {
        db.execute_unprepared(&format!("DROP TABLE \"{table}_old\""))
            .await?;
    }
    for index in indexes() {
        manager.create_index(index).await?;
    }
    Ok(())
}
