use sea_orm::entity::prelude::*;

use crate::events::EventStatus;
use crate::ids::{CalendarId, OrgId};

/// How many events one calendar has in one status. Kept by triggers on `events` in the same
/// transaction as every write of an event (migration m20261223_000015), read to answer list
/// totals without counting rows.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub calendar_id: CalendarId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: EventStatus,
    pub n: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
