//! Recurring events of one organization: the series rows and the lookups of their instances.
//! Instances are ordinary events (`repo::events`) that name their series.

use chrono::{DateTime, Utc};
use entity::event_series::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::scoped;
use crate::domain::ids::{CalendarId, OrgId, SeriesId};
use crate::domain::recurrence::{First, Recurrence};
use crate::domain::time;

pub const CONFIRMED: &str = "confirmed";
pub const CANCELLED: &str = "cancelled";

pub struct NewSeries<'a> {
    pub id: SeriesId,
    pub calendar_id: CalendarId,
    pub recurrence: &'a Recurrence,
    pub first_start: DateTime<Utc>,
    pub first_end: DateTime<Utc>,
    pub expanded_until: DateTime<Utc>,
    pub ended: bool,
    pub gcal_id: Option<String>,
    pub ical_uid: Option<String>,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    new: NewSeries<'_>,
) -> Result<Model, DbErr> {
    let now = time::now();
    let (all_day, start_date, end_date) = match new.recurrence.first() {
        First::AllDay(days) => (true, Some(days.start), Some(days.end)),
        First::Timed { .. } => (false, None, None),
    };
    ActiveModel {
        org_id: Set(org),
        id: Set(new.id),
        calendar_id: Set(new.calendar_id),
        recurrence: Set(serde_json::json!(new.recurrence.lines())),
        timezone: Set(new.recurrence.zone().name().to_string()),
        first_start: Set(new.first_start),
        first_end: Set(new.first_end),
        all_day: Set(all_day),
        start_date: Set(start_date),
        end_date: Set(end_date),
        expanded_until: Set(new.expanded_until),
        ended: Set(new.ended),
        status: Set(CONFIRMED.to_string()),
        gcal_id: Set(new.gcal_id),
        ical_uid: Set(new.ical_uid),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: SeriesId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id))
        .one(db)
        .await
}

/// Records a new recurrence, first occurrence or horizon of a series read in the same
/// transaction.
pub async fn save<C: ConnectionTrait>(
    db: &C,
    current: Model,
    changed: Model,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = current.into();
    active.recurrence = Set(changed.recurrence);
    active.timezone = Set(changed.timezone);
    active.first_start = Set(changed.first_start);
    active.first_end = Set(changed.first_end);
    active.all_day = Set(changed.all_day);
    active.start_date = Set(changed.start_date);
    active.end_date = Set(changed.end_date);
    active.expanded_until = Set(changed.expanded_until);
    active.ended = Set(changed.ended);
    active.status = Set(changed.status);
    active.ical_uid = Set(changed.ical_uid);
    active.updated_at = Set(time::now());
    active.update(db).await
}

/// The id a series is known by outside Quando's UUIDs: the one a Google client chose, else the
/// UUID in 32-hex form.
pub fn public_id_of(series: &Model) -> String {
    series
        .gcal_id
        .clone()
        .unwrap_or_else(|| series.id.0.simple().to_string())
}

/// The iCalendar UID of a series (of its recurring event and every instance): the one a client
/// gave, else its public id `@quando`.
pub fn ical_uid_of(series: &Model) -> String {
    series
        .ical_uid
        .clone()
        .unwrap_or_else(|| format!("{}@quando", public_id_of(series)))
}

/// The lines of a stored series.
pub fn lines_of(series: &Model) -> Vec<String> {
    serde_json::from_value(series.recurrence.clone()).unwrap_or_default()
}

/// Series of every organization whose instances must be written further ahead than they are:
/// (organization, series), oldest horizon first.
pub async fn behind(
    db: &sea_orm::DatabaseConnection,
    horizon: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(OrgId, SeriesId)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::OrgId)
        .column(Column::Id)
        .filter(Column::Ended.eq(false))
        .filter(Column::Status.eq(CONFIRMED))
        .filter(Column::ExpandedUntil.lt(horizon))
        .order_by_asc(Column::ExpandedUntil)
        .limit(limit)
        .into_tuple::<(OrgId, SeriesId)>()
        .all(db)
        .await
}

/// A series of a calendar by the id a Google Calendar client gave it.
pub async fn by_gcal_id<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    gcal_id: &str,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::GcalId.eq(gcal_id))
        .one(db)
        .await
}

/// The series of a calendar, oldest first.
pub async fn of_calendar<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .order_by_asc(Column::FirstStart)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// A series of a calendar by its iCalendar UID (an import keys on it).
pub async fn by_ical_uid<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    uid: &str,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::IcalUid.eq(uid))
        .order_by_asc(Column::Id)
        .one(db)
        .await
}
