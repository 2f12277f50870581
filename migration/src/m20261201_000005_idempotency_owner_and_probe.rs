//! Two things issue 9 needs from storage.
//! - `idempotency_keys.owner`: the instance (server process) that holds an `in_progress` claim, so
//!   a retry after a crash can tell a claim whose owner died (taken over at once) from one still
//!   running elsewhere (waited for). Rows from before have no owner and keep the old 60 s rule.
//! - `service_probe`: one row that `/readyz` rewrites on SQLite to prove the file takes writes
//!   (a full disk or a read-only file fails there, not on the next booking).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Owner,
}

#[derive(DeriveIden)]
enum ServiceProbe {
    Table,
    Id,
    CheckedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(ColumnDef::new(IdempotencyKeys::Owner).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceProbe::Table)
                    .col(
                        ColumnDef::new(ServiceProbe::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ServiceProbe::CheckedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServiceProbe::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .drop_column(IdempotencyKeys::Owner)
                    .to_owned(),
            )
            .await
    }
}
