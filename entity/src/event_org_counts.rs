use sea_orm::entity::prelude::*;

use crate::events::EventStatus;
use crate::ids::OrgId;

/// A share of how many events one organization has in one status: the organization's count is
/// the sum of its stripes. Kept by the triggers on `events` in the same transaction as every
/// write of an event (migration m20261224_000016: on PostgreSQL each connection writes its own
/// stripe, on SQLite stripe 0), read to answer organization-wide list totals in a few rows.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_org_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub stripe: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: EventStatus,
    pub n: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
