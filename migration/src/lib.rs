//! The one Migrator for SQLite and PostgreSQL. Steps that only PostgreSQL can express (the
//! exclusion constraint that forbids double booking) are guarded by the backend; everything else
//! is portable schema built with sea-query. Keys are shaped for Citus (every tenant table's
//! primary key, foreign keys and exclusion constraint include `org_id`; see m20261201_000006).

pub use sea_orm_migration::prelude::*;

mod m20261120_000001_create_core_tables;
mod m20261120_000002_create_idempotency_keys;
mod m20261121_000003_add_availability_rules;
mod m20261121_000004_list_index_serves_calendar_order;
mod m20261201_000005_idempotency_owner_and_probe;
mod m20261201_000006_citus_ready_keys_and_richer_events;
mod m20261215_000007_calendar_owner_metadata_and_members;
mod m20261216_000008_google_fields;
mod m20261217_000009_event_series;
mod m20261218_000010_partial_dialect_indexes;
mod m20261219_000011_webhooks_and_feeds;
mod m20261220_000012_holds_and_publishable_keys;
mod m20261221_000013_team_event_types;
mod m20261222_000014_overlap_index_covers_blocks;
mod m20261223_000015_event_counts;
mod m20261224_000016_org_event_counts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261120_000001_create_core_tables::Migration),
            Box::new(m20261120_000002_create_idempotency_keys::Migration),
            Box::new(m20261121_000003_add_availability_rules::Migration),
            Box::new(m20261121_000004_list_index_serves_calendar_order::Migration),
            Box::new(m20261201_000005_idempotency_owner_and_probe::Migration),
            Box::new(m20261201_000006_citus_ready_keys_and_richer_events::Migration),
            Box::new(m20261215_000007_calendar_owner_metadata_and_members::Migration),
            Box::new(m20261216_000008_google_fields::Migration),
            Box::new(m20261217_000009_event_series::Migration),
            Box::new(m20261218_000010_partial_dialect_indexes::Migration),
            Box::new(m20261219_000011_webhooks_and_feeds::Migration),
            Box::new(m20261220_000012_holds_and_publishable_keys::Migration),
            Box::new(m20261221_000013_team_event_types::Migration),
            Box::new(m20261222_000014_overlap_index_covers_blocks::Migration),
            Box::new(m20261223_000015_event_counts::Migration),
            Box::new(m20261224_000016_org_event_counts::Migration),
        ]
    }
}
