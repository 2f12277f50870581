use sea_orm::entity::prelude::*;

use crate::ids::{EventId, MessageId, OrgId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MessageId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    /// The event changed; `None` for a `ping`.
    pub event_id: Option<EventId>,
    /// `appointment.created`, `appointment.rescheduled`, `appointment.updated`,
    /// `appointment.cancelled` or `ping`.
    pub kind: String,
    /// The event as written (an `events::Model`), or the ping's data.
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    /// The event before a reschedule.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub previous: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
