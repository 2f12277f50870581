//! Webhooks and calendar feeds (issue 13).
//!
//! - `webhook_endpoints`: where an organization wants to hear about booking changes, with its
//!   signing secret (and the previous one during a rotation) and why it was disabled.
//! - `webhook_messages`: the transactional outbox. A change to an event writes its message in the
//!   same transaction as the change (the event as it was written, and before, on reschedule), so
//!   a rolled-back booking sends nothing and a committed one is never lost.
//! - `webhook_deliveries`: one row per message and endpoint: the delivery worker's queue and the
//!   delivery log. `next_attempt_at` orders the queue; a lease (`leased_until`, `lease_owner`)
//!   keeps one instance at a time on a row and gives it back when that instance dies. `seq` (the
//!   event's change number) keeps the order of one event's messages per endpoint.
//! - `calendar_feeds`: the SHA-256 of each calendar's secret feed token (never the token).
//!
//! Keys are Citus-ready like every tenant table's: primary key `(org_id, id)`, foreign keys with
//! `org_id`. Two reads cross organizations (on Citus, every shard): the worker's look for
//! organizations with deliveries due (each claim then stays in one), and a feed token's lookup.

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
enum WebhookEndpoints {
    Table,
    Id,
    OrgId,
    Url,
    Events,
    Description,
    Disabled,
    DisabledReason,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    OrgId,
    EventId,
    Kind,
    Data,
    Previous,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    OrgId,
    EndpointId,
    MessageId,
    EventId,
    Seq,
    Status,
    Attempts,
    NextAttemptAt,
    LeasedUntil,
    LeaseOwner,
    ResponseStatus,
    LatencyMs,
    LastError,
    CreatedAt,
    UpdatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum CalendarFeeds {
    Table,
    OrgId,
    CalendarId,
    TokenHash,
    CreatedAt,
}

fn ts<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

fn ts_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WebhookEndpoints as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(ColumnDef::new(E::Id).uuid().not_null())
                    .col(ColumnDef::new(E::OrgId).uuid().not_null())
                    .col(ColumnDef::new(E::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(E::Events).json_binary().not_null())
                    .col(ColumnDef::new(E::Description).string_len(500).null())
                    .col(ColumnDef::new(E::Disabled).boolean().not_null())
                    .col(ColumnDef::new(E::DisabledReason).string_len(500).null())
                    .col(ColumnDef::new(E::Secret).string_len(128).not_null())
                    .col(ColumnDef::new(E::PreviousSecret).string_len(128).null())
                    .col(ts_null(E::PreviousSecretUntil))
                    .col(ts_null(E::FailingSince))
                    .col(ts(E::CreatedAt))
                    .col(ts(E::UpdatedAt))
                    .primary_key(Index::create().col(E::OrgId).col(E::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(E::Table, E::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .take(),
            )
            .await?;

        use WebhookMessages as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(ColumnDef::new(M::Id).uuid().not_null())
                    .col(ColumnDef::new(M::OrgId).uuid().not_null())
                    .col(ColumnDef::new(M::EventId).uuid().null())
                    .col(ColumnDef::new(M::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(M::Data).json_binary().not_null())
                    .col(ColumnDef::new(M::Previous).json_binary().null())
                    .col(ts(M::CreatedAt))
                    .primary_key(Index::create().col(M::OrgId).col(M::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(M::Table, M::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .take(),
            )
            .await?;

        use WebhookDeliveries as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(ColumnDef::new(D::Id).uuid().not_null())
                    .col(ColumnDef::new(D::OrgId).uuid().not_null())
                    .col(ColumnDef::new(D::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(D::MessageId).uuid().not_null())
                    .col(ColumnDef::new(D::EventId).uuid().null())
                    .col(ColumnDef::new(D::Seq).big_integer().not_null())
                    .col(ColumnDef::new(D::Status).string_len(16).not_null())
                    .col(ColumnDef::new(D::Attempts).integer().not_null())
                    .col(ts(D::NextAttemptAt))
                    .col(ts_null(D::LeasedUntil))
                    .col(ColumnDef::new(D::LeaseOwner).uuid().null())
                    .col(ColumnDef::new(D::ResponseStatus).integer().null())
                    .col(ColumnDef::new(D::LatencyMs).integer().null())
                    .col(ColumnDef::new(D::LastError).string_len(500).null())
                    .col(ts(D::CreatedAt))
                    .col(ts(D::UpdatedAt))
                    .col(ts_null(D::DeliveredAt))
                    .primary_key(Index::create().col(D::OrgId).col(D::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(D::Table, (D::OrgId, D::EndpointId))
                            .to(E::Table, (E::OrgId, E::Id))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(D::Table, (D::OrgId, D::MessageId))
                            .to(M::Table, (M::OrgId, M::Id)),
                    )
                    .take(),
            )
            .await?;
        // The worker's queue: pending rows by when they are due.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table(D::Table)
                    .col(D::Status)
                    .col(D::NextAttemptAt)
                    .take(),
            )
            .await?;
        // The delivery log of one endpoint, newest first, and the order of one event's messages.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_endpoint_log")
                    .table(D::Table)
                    .col(D::OrgId)
                    .col(D::EndpointId)
                    .col(D::Id)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_event_order")
                    .table(D::Table)
                    .col(D::OrgId)
                    .col(D::EndpointId)
                    .col(D::EventId)
                    .col(D::Seq)
                    .take(),
            )
            .await?;

        use CalendarFeeds as F;
        manager
            .create_table(
                Table::create()
                    .table(F::Table)
                    .col(ColumnDef::new(F::OrgId).uuid().not_null())
                    .col(ColumnDef::new(F::CalendarId).uuid().not_null())
                    .col(ColumnDef::new(F::TokenHash).string_len(64).not_null())
                    .col(ts(F::CreatedAt))
                    .primary_key(Index::create().col(F::OrgId).col(F::CalendarId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(F::Table, (F::OrgId, F::CalendarId))
                            .to(Calendars::Table, (Calendars::OrgId, Calendars::Id)),
                    )
                    .take(),
            )
            .await?;
        // The feed URL's token is looked up by its hash alone. Not unique: Citus allows a unique
        // index only with the distribution column, and two 256-bit random tokens never collide.
        manager
            .create_index(
                Index::create()
                    .name("calendar_feeds_token_hash")
                    .table(F::Table)
                    .col(F::TokenHash)
                    .take(),
            )
            .await
    }
}
