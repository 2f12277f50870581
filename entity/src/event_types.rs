use sea_orm::entity::prelude::*;

use crate::ids::{CalendarId, EventTypeId, OrgId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EventTypeId,
    /// Part of the key: every update and delete the ORM issues filters on the tenant too (on
    /// Citus, one shard instead of all of them).
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub calendar_id: Option<CalendarId>,
    pub name: String,
    pub duration_minutes: i32,
    pub buffer_before_minutes: i32,
    pub buffer_after_minutes: i32,
    pub minimum_notice_minutes: Option<i32>,
    pub location: Option<String>,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub slot_interval_minutes: Option<i32>,
    pub max_advance_days: Option<i32>,
    /// `single` (one calendar takes the booking), `roundRobin` (one free host takes it) or
    /// `collective` (every host takes it together).
    pub assignment: String,
    /// JSON array of `{calendarId, weight, priority}`: a team type's hosts; `None` for `single`.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub hosts: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
