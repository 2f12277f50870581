//! The members of an organization's calendars: who may do what on each one.

use entity::calendar_members::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use super::scoped;
use crate::domain::ids::{CalendarId, MemberId, OrgId};
use crate::domain::time;

pub use entity::calendar_members::MemberRole as Role;

/// A calendar's members, the first added first; at most `limit` of them.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar.0))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The member `id` of `calendar` (one of another calendar is not found).
pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    id: MemberId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar.0))
        .filter(Column::Id.eq(id.0))
        .one(db)
        .await
}

/// The membership of `user_id` on `calendar`, if any.
pub async fn by_user<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    user_id: &str,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar.0))
        .filter(Column::UserId.eq(user_id))
        .one(db)
        .await
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    user_id: String,
    role: Role,
) -> Result<Model, DbErr> {
    let now = time::now();
    ActiveModel {
        org_id: Set(org),
        id: Set(MemberId::generate()),
        calendar_id: Set(calendar),
        user_id: Set(user_id),
        role: Set(role),
        added_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Sets the user and the role of a member.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    current: Model,
    user_id: String,
    role: Role,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = current.into();
    active.user_id = Set(user_id);
    active.role = Set(role);
    active.updated_at = Set(time::now());
    active.update(db).await
}
