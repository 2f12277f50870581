use sea_orm::entity::prelude::*;

use crate::ids::{CalendarId, MemberId, OrgId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MemberId,
    /// Part of the key, like every tenant table's (on Citus, one shard per organization).
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub calendar_id: CalendarId,
    /// The integrator's own user id; one membership per user and calendar.
    pub user_id: String,
    pub role: MemberRole,
    pub added_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// What a member may do on the calendar, stored as its lower-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum MemberRole {
    #[sea_orm(string_value = "owner")]
    Owner,
    #[sea_orm(string_value = "editor")]
    Editor,
    #[sea_orm(string_value = "viewer")]
    Viewer,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
