//! SeaORM entities, one module per table. Generated style only: no behaviour lives here
//! (booking rules are in `quando_api::domain`, tenant-scoped queries in `quando_api::repo`).
//!
//! Each model lists its fields in the order PostgreSQL stores the table's columns (migrations
//! add columns at the end; a new field goes last). A select in that order comes back from a scan
//! without a projection step, which for the 41 columns of an event was about a sixth of a get by
//! id in the database. The migration test `every_entity_selects_its_columns_in_the_tables_own_order`
//! checks it.

pub mod api_keys;
pub mod calendar_feeds;
pub mod calendar_members;
pub mod calendars;
pub mod event_counts;
pub mod event_org_counts;
pub mod event_series;
pub mod event_types;
pub mod events;
pub mod holds;
pub mod idempotency_keys;
pub mod ids;
pub mod organizations;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod webhook_messages;
