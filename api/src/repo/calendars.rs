//! Calendars of one organization.

use entity::calendars::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::{page, scoped};
use crate::domain::details::Metadata;
use crate::domain::ids::{CalendarId, EventTypeId, OrgId};
use crate::domain::schedule::{OverrideDoc, Schedule, WeeklyRangeDoc};
use crate::domain::time::{self, Zone};
use crate::pagination::PageRequest;

pub struct NewCalendar {
    pub name: String,
    pub timezone: Zone,
    pub description: Option<String>,
    /// `None`: open around the clock.
    pub working_hours: Option<Vec<WeeklyRangeDoc>>,
    pub date_overrides: Vec<OverrideDoc>,
    /// The owner's id (Talkover's `owner_id`); `None` for calendars made without one.
    pub owner_id: Option<String>,
    /// Integrators' own keys and values; empty is stored as NULL.
    pub metadata: Metadata,
    /// The organization's default calendar (Google's `primary`): setting it clears the others.
    pub is_default: bool,
}

/// Changes to apply; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Default)]
pub struct CalendarChanges {
    pub name: Option<String>,
    pub timezone: Option<Zone>,
    pub description: Option<Option<String>>,
    pub working_hours: Option<Option<Vec<WeeklyRangeDoc>>>,
    pub date_overrides: Option<Vec<OverrideDoc>>,
    /// `Some(true)` makes it the organization's default (clearing the others), `Some(false)`
    /// stops it being the default.
    pub is_default: Option<bool>,
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn overrides_json(overrides: &[OverrideDoc]) -> Option<String> {
    (!overrides.is_empty()).then(|| to_json(&overrides))
}

/// The metadata of a stored calendar (empty when it has none).
pub fn metadata_of(model: &Model) -> Metadata {
    model
        .metadata
        .clone()
        .and_then(|j| serde_json::from_value(j).ok())
        .unwrap_or_default()
}

/// The stored working hours (`None` = open around the clock) and date overrides.
pub fn hours_of(model: &Model) -> (Option<Vec<WeeklyRangeDoc>>, Vec<OverrideDoc>) {
    let weekly = model
        .working_hours
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let overrides = model
        .date_overrides
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    (weekly, overrides)
}

/// The calendar's schedule. Stored documents were validated on write; a row that no longer
/// parses (hand-edited) is reported rather than read as "always open".
pub fn schedule_of(model: &Model) -> Result<Schedule, String> {
    let zone = Zone::parse(&model.timezone).map_err(|e| e.to_string())?;
    let (weekly, overrides) = hours_of(model);
    if model.working_hours.is_some() && weekly.is_none() {
        return Err(format!(
            "calendar {} has unreadable working hours",
            model.id
        ));
    }
    Schedule::from_docs(zone, weekly.as_deref(), &overrides)
        .map_err(|(f, e)| format!("calendar {}: {f}: {e}", model.id))
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    req: PageRequest,
) -> Result<(Vec<Model>, u64), DbErr> {
    page(db, scoped::<Entity>(org).order_by_asc(Column::Id), req).await
}

/// The organization's first `limit` calendars, oldest first (lists without pages).
pub async fn first<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
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

/// Like `get`, locking the row until the transaction ends (PostgreSQL; SQLite's write
/// transaction already holds the database), for a read-modify-write of its hours.
pub async fn get_for_update<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: CalendarId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id.0))
        .lock_exclusive()
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
        id: Set(CalendarId::generate()),
        org_id: Set(org),
        name: Set(new.name),
        timezone: Set(new.timezone.name().to_string()),
        description: Set(new.description),
        working_hours: Set(new.working_hours.as_ref().map(to_json)),
        date_overrides: Set(overrides_json(&new.date_overrides)),
        owner_id: Set(new.owner_id),
        metadata: Set((!new.metadata.is_empty())
            .then(|| serde_json::to_value(&new.metadata).unwrap_or_default())),
        created_at: Set(now),
        updated_at: Set(now),
        is_default: Set(new.is_default),
        change_seq: Set(0),
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
    if let Some(hours) = changes.working_hours {
        active.working_hours = Set(hours.as_ref().map(to_json));
    }
    if let Some(overrides) = changes.date_overrides {
        active.date_overrides = Set(overrides_json(&overrides));
    }
    if let Some(is_default) = changes.is_default {
        active.is_default = Set(is_default);
    }
    active.updated_at = Set(time::now());
    active.update(db).await.map(Some)
}

/// Makes `keep` the organization's only default calendar: clears the flag on every other one.
/// Run in the transaction that sets it on `keep`.
pub async fn clear_default_except<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    keep: CalendarId,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::IsDefault, sea_orm::sea_query::Expr::value(false))
        .filter(Column::OrgId.eq(org.0))
        .filter(Column::IsDefault.eq(true))
        .filter(Column::Id.ne(keep.0))
        .exec(db)
        .await
        .map(|_| ())
}

/// The organization's default calendar (Google's `primary`), if one is set.
pub async fn default_of<C: ConnectionTrait>(db: &C, org: OrgId) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::IsDefault.eq(true))
        .order_by_asc(Column::Id)
        .one(db)
        .await
}

/// Bumps the calendar's change counter and returns the new value: `UPDATE calendars SET
/// change_seq = change_seq + 1 WHERE org_id = ? AND id = ? RETURNING ...`. Every write
/// transaction that creates or changes an event of the calendar runs it (through
/// `repo::events::insert` and `repo::events::apply`) before touching the event; on PostgreSQL
/// the row lock it takes is held to commit, so the counter's order is the commit order of the
/// calendar's writes, which makes incremental sync exact.
pub async fn bump_change_seq<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<i64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    // Only the counter comes back (not the calendar's hours and overrides).
    let mut update = Query::update();
    update
        .table(Entity)
        .value(Column::ChangeSeq, Expr::col(Column::ChangeSeq).add(1))
        .and_where(Expr::col(Column::OrgId).eq(org.0))
        .and_where(Expr::col(Column::Id).eq(calendar.0))
        .returning_col(Column::ChangeSeq);
    let row = db
        .query_one_raw(db.get_database_backend().build(&update))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("calendar {calendar}")))?;
    row.try_get_by_index::<i64>(0)
}

/// A calendar with an event type of the same organization, in one query (a booking reads both
/// inside its write transaction, where every round trip to the database holds SQLite's one
/// writer): `None` without the calendar; the event type `None` when there is no such type.
pub async fn with_event_type<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: CalendarId,
    event_type: EventTypeId,
) -> Result<Option<(Model, Option<entity::event_types::Model>)>, DbErr> {
    use entity::event_types;
    use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
    use sea_orm::{EntityTrait, JoinType};
    let joined: sea_orm::RelationDef = Entity::belongs_to(event_types::Entity)
        .from(Column::OrgId)
        .to(event_types::Column::OrgId)
        .on_condition(move |_calendar, types| {
            Expr::col((types, event_types::Column::Id))
                .eq(event_type.0)
                .into_condition()
        })
        .into();
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id.0))
        .join(JoinType::LeftJoin, joined)
        .select_also(event_types::Entity)
        .one(db)
        .await
}
