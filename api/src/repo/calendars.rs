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

/// Takes the row locks of the organization's calendars among `ids` on PostgreSQL (SQLite has
/// one writer: nothing to take), in id order, the one order every writer of several calendars
/// takes them in (a team booking, a collective change), so two of them never wait on each
/// other; a writer of one calendar takes one lock and never waits holding it. How many of the
/// ids are the organization's calendars.
pub async fn lock_all<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    ids: &[CalendarId],
) -> Result<usize, DbErr> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let found: Vec<uuid::Uuid> = scoped::<Entity>(org)
            .select_only()
            .column(Column::Id)
            .filter(Column::Id.is_in(ids.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        return Ok(found.len());
    }
    let found: Vec<uuid::Uuid> = scoped::<Entity>(org)
        .select_only()
        .column(Column::Id)
        .filter(Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(db)
        .await?;
    Ok(found.len())
}

/// The organization's calendars among `ids` (in no particular order; missing ones left out).
pub async fn get_many<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    ids: &[CalendarId],
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// The next number of the calendar's change counter, for an event the transaction is about to
/// create or change. Every write transaction that creates or changes an event of the calendar
/// takes one (through `repo::events::insert`, `apply` and `insert_copy`) before touching the
/// event, so the counter's order is the commit order of the calendar's writes, which makes
/// incremental sync exact:
/// - PostgreSQL: `UPDATE calendars SET change_seq = change_seq + 1 ... RETURNING change_seq`;
///   the row lock it takes is held to commit, so concurrent writers of one calendar take their
///   numbers in commit order.
/// - SQLite has one writer at a time, so the next number is the calendar's highest event
///   number plus one, read from `events_org_calendar_change_seq` inside the write transaction:
///   no calendar row (and no page of it) is written by a booking. Events are never deleted, so
///   the highest number never goes back. `calendars.change_seq` is not kept on SQLite; read
///   the counter with `last_change_seq`.
pub async fn next_change_seq<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<i64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let backend = db.get_database_backend();
    if backend == sea_orm::DbBackend::Sqlite {
        return Ok(highest_event_seq(db, org, calendar).await? + 1);
    }
    // Only the counter comes back (not the calendar's hours and overrides).
    let mut update = Query::update();
    update
        .table(Entity)
        .value(Column::ChangeSeq, Expr::col(Column::ChangeSeq).add(1))
        .and_where(Expr::col(Column::OrgId).eq(org.0))
        .and_where(Expr::col(Column::Id).eq(calendar.0))
        .returning_col(Column::ChangeSeq);
    let row = db
        .query_one_raw(backend.build(&update))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("calendar {calendar}")))?;
    row.try_get_by_index::<i64>(0)
}

/// The calendar's change counter as committed: the number of its latest change (0 before
/// any). Incremental sync lists what changed after a number up to this one.
pub async fn last_change_seq<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: &Model,
) -> Result<i64, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return Ok(calendar.change_seq);
    }
    highest_event_seq(db, org, calendar.id).await
}

/// `SELECT COALESCE(MAX(change_seq), 0) FROM events WHERE org_id = ? AND calendar_id = ?`
/// (SQLite: one step down `events_org_calendar_change_seq`).
async fn highest_event_seq<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<i64, DbErr> {
    use entity::events;
    use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
    let mut select = Query::select();
    select
        .expr(Func::coalesce([
            Expr::col(events::Column::ChangeSeq).max(),
            Expr::val(0i64),
        ]))
        .from(events::Entity)
        .and_where(Expr::col(events::Column::OrgId).eq(org.0))
        .and_where(Expr::col(events::Column::CalendarId).eq(calendar.0));
    let row = db
        .query_one_raw(db.get_database_backend().build(&select))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("calendar {calendar}")))?;
    row.try_get_by_index::<i64>(0)
}

/// A calendar with an event type of the same organization, in one query (a booking reads both
/// just before its write transaction; a reschedule inside it, where every round trip holds
/// SQLite's one writer): `None` without the calendar; the event type `None` when there is no
/// such type.
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
