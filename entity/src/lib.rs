//! SeaORM entities, one module per table. Generated style only: no behaviour lives here
//! (booking rules are in `quando_api::domain`, tenant-scoped queries in `quando_api::repo`).

pub mod api_keys;
pub mod calendar_members;
pub mod calendars;
pub mod event_series;
pub mod event_types;
pub mod events;
pub mod idempotency_keys;
pub mod ids;
pub mod organizations;
