//! Availability rules: a calendar's working hours and date overrides (JSON documents in the
//! calendar's zone; NULL hours = open around the clock), an event type's slot interval and
//! maximum advance, and the indexes behind "does this caller already have a booking?".

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Calendars {
    Table,
    WorkingHours,
    DateOverrides,
}

#[derive(DeriveIden)]
enum EventTypes {
    Table,
    SlotIntervalMinutes,
    MaxAdvanceDays,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrgId,
    CustomerPhone,
    CustomerEmail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        let columns = [
            (
                Calendars::Table.into_iden(),
                ColumnDef::new(Calendars::WorkingHours).text().null().take(),
            ),
            (
                Calendars::Table.into_iden(),
                ColumnDef::new(Calendars::DateOverrides)
                    .text()
                    .null()
                    .take(),
            ),
            (
                EventTypes::Table.into_iden(),
                ColumnDef::new(EventTypes::SlotIntervalMinutes)
                    .integer()
                    .null()
                    .take(),
            ),
            (
                EventTypes::Table.into_iden(),
                ColumnDef::new(EventTypes::MaxAdvanceDays)
                    .integer()
                    .null()
                    .take(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for (name, column) in [
            ("events_org_customer_phone", Events::CustomerPhone),
            ("events_org_customer_email", Events::CustomerEmail),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Events::Table)
                        .col(Events::OrgId)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["events_org_customer_phone", "events_org_customer_email"] {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).to_owned())
                .await?;
        }
        for (table, column) in [
            (
                Calendars::Table.into_iden(),
                Calendars::WorkingHours.into_iden(),
            ),
            (
                Calendars::Table.into_iden(),
                Calendars::DateOverrides.into_iden(),
            ),
            (
                EventTypes::Table.into_iden(),
                EventTypes::SlotIntervalMinutes.into_iden(),
            ),
            (
                EventTypes::Table.into_iden(),
                EventTypes::MaxAdvanceDays.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
