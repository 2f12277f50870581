use sea_orm::entity::prelude::*;

use crate::ids::{CalendarId, OrgId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calendars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CalendarId,
    /// Part of the key: every update and delete the ORM issues filters on the tenant too (on
    /// Citus, one shard instead of all of them).
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub name: String,
    pub timezone: String,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON `[{"day","start","end"}]` in the calendar's zone; NULL = open around the clock.
    #[sea_orm(column_type = "Text", nullable)]
    pub working_hours: Option<String>,
    /// JSON `[{"date","ranges":[{"start","end"}]}]`; NULL = none.
    #[sea_orm(column_type = "Text", nullable)]
    pub date_overrides: Option<String>,
    /// Id of the calendar's owner (a user of the integrator's), as Talkover gives it.
    pub owner_id: Option<String>,
    /// JSON object, string -> string: integrators' own ids.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// The organization's default calendar (Google's `primary`); at most one per organization.
    pub is_default: bool,
    /// PostgreSQL: bumped by every write that creates or changes one of the calendar's events,
    /// the position incremental sync counts from. Not kept on SQLite, where the counter is the
    /// highest `events.change_seq` of the calendar (`repo::calendars::last_change_seq`).
    pub change_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
