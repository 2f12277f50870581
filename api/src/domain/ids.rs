//! One newtype per id, so a calendar id cannot be passed where an event id is meant. Defined
//! with the entities (`entity::ids`) so they reach the columns; re-exported here for the domain.

pub use entity::ids::{
    ApiKeyId, CalendarId, DeliveryId, EventId, EventTypeId, HoldId, MemberId, MessageId, OrgId,
    SeriesId, WebhookId,
};
