use sea_orm::entity::prelude::*;

use crate::ids::{ApiKeyId, CalendarId, EventTypeId, HoldId, OrgId};

/// A slot kept for a booking about to be made. Live until `expires_at`; after it, it blocks
/// nothing (every check compares with its own time) and housekeeping deletes it a day later.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "holds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: HoldId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub calendar_id: CalendarId,
    pub event_type_id: EventTypeId,
    /// The key that made it: only that key turns it into a booking.
    pub key_id: ApiKeyId,
    pub start_time: DateTimeUtc,
    pub end_time: DateTimeUtc,
    /// The times widened by the event type's buffers, as a booking's block.
    pub block_start: DateTimeUtc,
    pub block_end: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// A collective hold is one row per host; the others name the first (whose id the caller
    /// holds).
    pub group_id: Option<HoldId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
