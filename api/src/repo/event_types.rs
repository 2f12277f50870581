//! Event types of one organization.

use entity::event_types::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, Set,
};

use super::{page, scoped};
use crate::domain::ids::{CalendarId, EventTypeId, OrgId};
use crate::domain::slots::SlotRules;
use crate::domain::team::{Assignment, Host};
use crate::domain::time;
use crate::pagination::PageRequest;

pub struct NewEventType {
    pub calendar_id: Option<CalendarId>,
    pub name: String,
    pub duration_minutes: i32,
    pub buffer_before_minutes: i32,
    pub buffer_after_minutes: i32,
    pub minimum_notice_minutes: Option<i32>,
    pub slot_interval_minutes: Option<i32>,
    pub max_advance_days: Option<i32>,
    pub location: Option<String>,
    pub active: bool,
    pub assignment: Assignment,
    /// Empty for `single`.
    pub hosts: Vec<Host>,
}

/// Changes to apply; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Default)]
pub struct EventTypeChanges {
    pub calendar_id: Option<Option<CalendarId>>,
    pub name: Option<String>,
    pub duration_minutes: Option<i32>,
    pub buffer_before_minutes: Option<i32>,
    pub buffer_after_minutes: Option<i32>,
    pub minimum_notice_minutes: Option<Option<i32>>,
    pub slot_interval_minutes: Option<Option<i32>>,
    pub max_advance_days: Option<Option<i32>>,
    pub location: Option<Option<String>>,
    pub active: Option<bool>,
    pub assignment: Option<Assignment>,
    /// Replaced whole.
    pub hosts: Option<Vec<Host>>,
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: Option<CalendarId>,
    req: PageRequest,
) -> Result<(Vec<Model>, u64), DbErr> {
    let mut query = scoped::<Entity>(org);
    if let Some(calendar) = calendar {
        query = query.filter(Column::CalendarId.eq(calendar.0));
    }
    page(db, query.order_by_asc(Column::Id), req).await
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: EventTypeId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id.0))
        .one(db)
        .await
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    new: NewEventType,
) -> Result<Model, DbErr> {
    let now = time::now();
    ActiveModel {
        id: Set(EventTypeId::generate()),
        org_id: Set(org),
        calendar_id: Set(new.calendar_id),
        name: Set(new.name),
        duration_minutes: Set(new.duration_minutes),
        buffer_before_minutes: Set(new.buffer_before_minutes),
        buffer_after_minutes: Set(new.buffer_after_minutes),
        minimum_notice_minutes: Set(new.minimum_notice_minutes),
        slot_interval_minutes: Set(new.slot_interval_minutes),
        max_advance_days: Set(new.max_advance_days),
        location: Set(new.location),
        active: Set(new.active),
        assignment: Set(new.assignment.as_str().to_string()),
        hosts: Set(hosts_json(&new.hosts)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn update<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: EventTypeId,
    changes: EventTypeChanges,
) -> Result<Option<Model>, DbErr> {
    let Some(current) = get(db, org, id).await? else {
        return Ok(None);
    };
    let mut active: ActiveModel = current.into();
    if let Some(calendar_id) = changes.calendar_id {
        active.calendar_id = Set(calendar_id);
    }
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(v) = changes.duration_minutes {
        active.duration_minutes = Set(v);
    }
    if let Some(v) = changes.buffer_before_minutes {
        active.buffer_before_minutes = Set(v);
    }
    if let Some(v) = changes.buffer_after_minutes {
        active.buffer_after_minutes = Set(v);
    }
    if let Some(v) = changes.minimum_notice_minutes {
        active.minimum_notice_minutes = Set(v);
    }
    if let Some(v) = changes.slot_interval_minutes {
        active.slot_interval_minutes = Set(v);
    }
    if let Some(v) = changes.max_advance_days {
        active.max_advance_days = Set(v);
    }
    if let Some(v) = changes.location {
        active.location = Set(v);
    }
    if let Some(v) = changes.active {
        active.active = Set(v);
    }
    if let Some(assignment) = changes.assignment {
        active.assignment = Set(assignment.as_str().to_string());
    }
    if let Some(hosts) = changes.hosts {
        active.hosts = Set(hosts_json(&hosts));
    }
    active.updated_at = Set(time::now());
    active.update(db).await.map(Some)
}

fn hosts_json(hosts: &[Host]) -> Option<serde_json::Value> {
    (!hosts.is_empty()).then(|| serde_json::to_value(hosts).expect("hosts serialise"))
}

/// An event type's assignment and hosts as stored. A value no version of Quando wrote reads
/// as an error, not as a different team.
pub fn team_of(model: &Model) -> Result<(Assignment, Vec<Host>), DbErr> {
    let assignment = Assignment::parse(&model.assignment).ok_or_else(|| {
        DbErr::Custom(format!(
            "event type {}: stored assignment {:?} unreadable",
            model.id.0, model.assignment
        ))
    })?;
    let hosts = match &model.hosts {
        None => Vec::new(),
        Some(json) => serde_json::from_value(json.clone()).map_err(|e| {
            DbErr::Custom(format!(
                "event type {}: stored hosts unreadable: {e}",
                model.id.0
            ))
        })?,
    };
    Ok((assignment, hosts))
}

/// The booking rules of an event type.
pub fn rules_of(model: &Model) -> SlotRules {
    let minutes = |m: i32| chrono::Duration::minutes(m.into());
    let duration = minutes(model.duration_minutes);
    SlotRules {
        duration,
        interval: model.slot_interval_minutes.map(minutes).unwrap_or(duration),
        buffer_before: minutes(model.buffer_before_minutes),
        buffer_after: minutes(model.buffer_after_minutes),
        notice: model.minimum_notice_minutes.map(minutes),
        max_advance: model
            .max_advance_days
            .map(|d| chrono::Duration::days(d.into())),
    }
}
