//! Calendars of one organization.

use entity::calendars::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, Set,
};

use super::{page, scoped};
use crate::domain::ids::{CalendarId, OrgId};
use crate::domain::time::{self, Zone};
use crate::pagination::PageRequest;

pub struct NewCalendar {
    pub name: String,
    pub timezone: Zone,
    pub description: Option<String>,
}

/// Changes to apply; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Default)]
pub struct CalendarChanges {
    pub name: Option<String>,
    pub timezone: Option<Zone>,
    pub description: Option<Option<String>>,
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    req: PageRequest,
) -> Result<(Vec<Model>, u64), DbErr> {
    page(db, scoped::<Entity>(org).order_by_asc(Column::Id), req).await
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: CalendarId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id.0))
        .one(db)
        .await
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    new: NewCalendar,
) -> Result<Model, DbErr> {
    let now = time::now();
    ActiveModel {
        id: Set(CalendarId::generate().0),
        org_id: Set(org.0),
        name: Set(new.name),
        timezone: Set(new.timezone.name().to_string()),
        description: Set(new.description),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn update<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: CalendarId,
    changes: CalendarChanges,
) -> Result<Option<Model>, DbErr> {
    let Some(current) = get(db, org, id).await? else {
        return Ok(None);
    };
    let mut active: ActiveModel = current.into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(zone) = changes.timezone {
        active.timezone = Set(zone.name().to_string());
    }
    if let Some(description) = changes.description {
        active.description = Set(description);
    }
    active.updated_at = Set(time::now());
    active.update(db).await.map(Some)
}
