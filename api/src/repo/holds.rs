//! Slot holds of one organization. A hold is live until its `expires_at` and blocks its time
//! like a booking while live; every check below compares `expires_at` with the time it is given
//! (the statement's now), so an expired hold stops blocking at that instant, whether or not
//! housekeeping has deleted it yet (`purge_expired`, a day later).
//!
//! The guarantee between holds and bookings, which live in two tables: every writer of a
//! calendar's time (a booking, a move, a hold) first takes the calendar's row lock on
//! PostgreSQL (`lock_calendar` here; `calendars::next_change_seq` for events) and only then
//! looks for what is in its way, so two writers of one calendar never both miss each other.
//! SQLite has one writer at a time. Events never see holds otherwise: no list, feed, sync or
//! webhook reads this table.

use chrono::{DateTime, Utc};
use entity::holds::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};

use super::scoped;
use crate::domain::booking::{Block, reach_end};
use crate::domain::ids::{ApiKeyId, CalendarId, EventTypeId, HoldId, OrgId};
use crate::domain::time;

impl super::OrgScoped for Entity {
    fn org_column() -> Self::Column {
        Column::OrgId
    }
}

/// How long an expired hold is kept (a booking that names it is then told it expired, rather
/// than that it never existed).
pub const KEEP_EXPIRED: chrono::Duration = chrono::Duration::hours(24);

/// What a write over a live hold fails with inside `repo::events` (after the calendar lock);
/// `db::is_exclusion_violation` recognises it like PostgreSQL's own overlap refusal, so every
/// writer's refusal path handles both.
const HELD: &str = "quando: the time is held";

pub fn held_error() -> DbErr {
    DbErr::Custom(HELD.to_string())
}

pub fn is_held(err: &DbErr) -> bool {
    matches!(err, DbErr::Custom(m) if m == HELD)
}

/// A hold about to be written.
pub struct NewHold {
    pub calendar: CalendarId,
    pub event_type: EventTypeId,
    pub key: ApiKeyId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub block: Block,
    pub expires_at: DateTime<Utc>,
    /// The first hold of a collective group (this row is another host's part of it).
    pub group: Option<HoldId>,
}

/// Takes the calendar's row lock for the rest of the transaction (PostgreSQL; SQLite's write
/// transaction has the whole database). `false` when there is no such calendar.
pub async fn lock_calendar<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<bool, DbErr> {
    Ok(super::calendars::lock_all(db, org, &[calendar]).await? == 1)
}

/// The first hold on the calendar live at `now` whose block overlaps `block` (half-open).
pub async fn live_conflict<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    block: Block,
    now: DateTime<Utc>,
) -> Result<Option<HoldId>, DbErr> {
    scoped::<Entity>(org)
        .select_only()
        .column(Column::Id)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::BlockEnd.gt(block.start))
        .filter(Column::BlockEnd.lte(reach_end(block.end)))
        .filter(Column::BlockStart.lt(block.end))
        .filter(Column::ExpiresAt.gt(now))
        .into_tuple::<HoldId>()
        .one(db)
        .await
}

/// The blocks of the calendars' live holds that overlap `[from, to)`, each with its calendar
/// (availability of one calendar or of a team's hosts).
pub async fn live_blocks_between<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendars: &[CalendarId],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(CalendarId, Block)>, DbErr> {
    let rows: Vec<(CalendarId, DateTime<Utc>, DateTime<Utc>)> = scoped::<Entity>(org)
        .select_only()
        .column(Column::CalendarId)
        .column(Column::BlockStart)
        .column(Column::BlockEnd)
        .filter(Column::CalendarId.is_in(calendars.iter().copied()))
        .filter(Column::BlockEnd.gt(from))
        .filter(Column::BlockEnd.lte(reach_end(to)))
        .filter(Column::BlockStart.lt(to))
        .filter(Column::ExpiresAt.gt(now))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(calendar, start, end)| (calendar, Block { start, end }))
        .collect())
}

/// The times (not the blocks) of the calendar's holds live at `now` that meet `[from, to)`:
/// what a free/busy answer shows as busy.
pub async fn live_times_between<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    scoped::<Entity>(org)
        .select_only()
        .column(Column::StartTime)
        .column(Column::EndTime)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::BlockEnd.gt(from))
        .filter(Column::BlockStart.lt(to))
        .filter(Column::EndTime.gt(from))
        .filter(Column::StartTime.lt(to))
        .filter(Column::ExpiresAt.gt(now))
        .into_tuple()
        .all(db)
        .await
}

pub async fn insert<C: ConnectionTrait>(db: &C, org: OrgId, new: NewHold) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(HoldId::generate()),
        org_id: Set(org),
        calendar_id: Set(new.calendar),
        event_type_id: Set(new.event_type),
        key_id: Set(new.key),
        start_time: Set(new.start),
        end_time: Set(new.end),
        block_start: Set(new.block.start),
        block_end: Set(new.block.end),
        expires_at: Set(new.expires_at),
        created_at: Set(time::now()),
        group_id: Set(new.group),
    }
    .insert(db)
    .await
}

/// A hold of the organization, live or expired (not yet purged).
pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: HoldId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id))
        .one(db)
        .await
}

/// The calendars of a collective hold's other rows.
pub async fn group_calendars<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: HoldId,
) -> Result<Vec<CalendarId>, DbErr> {
    scoped::<Entity>(org)
        .select_only()
        .column(Column::CalendarId)
        .filter(Column::GroupId.eq(id))
        .into_tuple()
        .all(db)
        .await
}

/// Deletes a hold, with its rows on other hosts for a collective one; whether there was one.
pub async fn delete<C: ConnectionTrait>(db: &C, org: OrgId, id: HoldId) -> Result<bool, DbErr> {
    use sea_orm::Condition;
    let done = Entity::delete_many()
        .filter(Column::OrgId.eq(org))
        .filter(
            Condition::any()
                .add(Column::Id.eq(id))
                .add(Column::GroupId.eq(id)),
        )
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Housekeeping: deletes holds that expired before `before`, in every organization; how many.
/// Nothing depends on it: an expired hold blocks nothing already.
pub async fn purge_expired<C: ConnectionTrait>(
    db: &C,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = Entity::delete_many()
        .filter(Column::ExpiresAt.lt(before))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}
