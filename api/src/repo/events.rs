//! Events (bookings) of one organization: reads, and the insert and update the service runs
//! inside its write transaction (`service::events` checks the rules and the overlap there; on
//! PostgreSQL the exclusion constraint `events_no_overlap` refuses whatever a race lets through).

use chrono::{DateTime, Utc};
use entity::events::{ActiveModel, Column, Entity, EventStatus, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use uuid::Uuid;

use super::{page, page_of, scoped};
use crate::domain::booking::{Block, reach_end};
use crate::domain::details::{AllDay, Attendee, EventDetails, Metadata, OwnerType, Transparency};
use crate::domain::ids::{CalendarId, EventId, EventTypeId, OrgId, SeriesId};
use crate::domain::time;
use crate::domain::webhooks::EventKind;
use crate::pagination::PageRequest;

/// Statuses that hold time on a calendar.
pub const BLOCKING_STATUSES: [EventStatus; 2] = [EventStatus::Confirmed, EventStatus::Tentative];
/// Only opaque events hold time; transparent ones never make a slot busy.
pub const OPAQUE: &str = "opaque";

#[derive(Default)]
pub struct EventFilter {
    pub calendar_id: Option<CalendarId>,
    pub event_type_id: Option<EventTypeId>,
    pub status: Option<EventStatus>,
    /// startTime >= date_from
    pub date_from: Option<DateTime<Utc>>,
    /// startTime < date_to
    pub date_to: Option<DateTime<Utc>>,
    /// E.164
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    /// Part of the customer's name, any case (a caller saying who they are).
    pub customer_name_part: Option<String>,
}

pub struct NewEvent {
    /// The row's id: chosen before the insert when other rows name it (a collective group).
    pub id: EventId,
    pub calendar_id: CalendarId,
    /// `None` for events made through a dialect without event types.
    pub event_type_id: Option<EventTypeId>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub block: Block,
    pub timezone: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    pub notes: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub status: EventStatus,
    /// The channel it came through (`api`, `talkover`, `gcal`, `widget`).
    pub booked_via: &'static str,
    pub details: EventDetails,
    /// Set for an all-day event (its instants are those days' bounds in `timezone`).
    pub all_day: Option<AllDay>,
    /// For an instance of a recurring event: the series and where its rule put this instance.
    pub series: Option<(SeriesId, DateTime<Utc>)>,
    /// A collective appointment's rows, `{calendarId, eventId}` each (see the entity).
    pub team_hosts: Option<serde_json::Value>,
}

/// Changes to an event. `None` leaves a field as it is; `Some(None)` clears an optional one.
#[derive(Clone, Default)]
pub struct EventChanges {
    /// New start and end with the block they occupy, already validated.
    pub times: Option<(DateTime<Utc>, DateTime<Utc>, Block)>,
    pub timezone: Option<String>,
    pub customer_name: Option<Option<String>>,
    pub customer_phone: Option<Option<String>>,
    pub customer_email: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub status: Option<EventStatus>,
    pub cancellation_reason: Option<Option<String>>,
    /// With `times`: the all-day dates, or `Some(None)` for a timed event.
    pub all_day: Option<Option<AllDay>>,
    pub description: Option<Option<String>>,
    pub kind: Option<Option<String>>,
    pub attendees: Option<Vec<Attendee>>,
    pub created_by: Option<Option<String>>,
    pub owner_id: Option<Option<String>>,
    pub owner_type: Option<Option<OwnerType>>,
    pub metadata: Option<Metadata>,
    pub transparency: Option<Transparency>,
    /// The iCalendar UID (Google dialect).
    pub ical_uid: Option<Option<String>>,
    /// Google-only fields, replaced whole (Google dialect).
    pub extras: Option<Option<serde_json::Value>>,
    /// Marks an instance of a series as changed on its own.
    pub series_exception: Option<bool>,
}

/// Attendees as stored (a JSON array); `None` for none.
fn attendees_json(attendees: &[Attendee]) -> Option<serde_json::Value> {
    (!attendees.is_empty()).then(|| serde_json::to_value(attendees).unwrap_or_default())
}

/// Metadata as stored (a JSON object); `None` for none.
fn metadata_json(metadata: &Metadata) -> Option<serde_json::Value> {
    (!metadata.is_empty()).then(|| serde_json::to_value(metadata).unwrap_or_default())
}

/// The attendees of a stored event.
pub fn attendees_of(m: &Model) -> Vec<Attendee> {
    m.attendees
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The id an event is known by outside Quando's UUIDs: the one a Google client chose, else the
/// UUID in 32-hex form.
pub fn public_id_of(m: &Model) -> String {
    m.gcal_id
        .clone()
        .unwrap_or_else(|| m.id.0.simple().to_string())
}

/// The iCalendar UID of a stored event: the one a client gave, else its public id `@quando`.
/// Every dialect and the feed show this one.
pub fn ical_uid_of(m: &Model) -> String {
    m.ical_uid
        .clone()
        .unwrap_or_else(|| format!("{}@quando", public_id_of(m)))
}

/// The metadata of a stored event.
pub fn metadata_of(m: &Model) -> Metadata {
    m.metadata
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The organization's events matching a filter, in list order (startTime, then id).
fn filtered(org: OrgId, filter: EventFilter) -> sea_orm::Select<Entity> {
    let mut query = scoped::<Entity>(org);
    if let Some(c) = filter.calendar_id {
        query = query.filter(Column::CalendarId.eq(c));
    }
    if let Some(t) = filter.event_type_id {
        query = query.filter(Column::EventTypeId.eq(t));
    }
    if let Some(s) = filter.status {
        query = query.filter(Column::Status.eq(s));
    }
    if let Some(from) = filter.date_from {
        query = query.filter(Column::StartTime.gte(from));
    }
    if let Some(to) = filter.date_to {
        query = query.filter(Column::StartTime.lt(to));
    }
    if let Some(phone) = filter.customer_phone {
        query = query.filter(Column::CustomerPhone.eq(phone));
    }
    if let Some(email) = filter.customer_email {
        query = query.filter(Column::CustomerEmail.eq(email));
    }
    if let Some(part) = filter.customer_name_part {
        use sea_orm::sea_query::{Expr, ExprTrait, Func};
        let escaped = part
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(
            Func::lower(Expr::col(Column::CustomerName))
                .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    query
        .order_by_asc(Column::StartTime)
        .order_by_asc(Column::Id)
}

/// A page by number, with the total over all pages.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    filter: EventFilter,
    req: PageRequest,
) -> Result<(Vec<Model>, u64), DbErr> {
    match counted_total(db, org, &filter).await? {
        Some(total) => page_of(db, filtered(org, filter), req, total).await,
        None => page(db, filtered(org, filter), req).await,
    }
}

/// The number of events a filter of calendar and status alone selects, from the counters the
/// database keeps beside the events: for a calendar, a sum of at most three rows of
/// `event_counts`; for the whole organization, of its stripes in `event_org_counts` (a few per
/// status, however many calendars it has). Instead of a scan. `None` when the filter has
/// anything else (a date range is counted over the index range it selects).
async fn counted_total<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    filter: &EventFilter,
) -> Result<Option<u64>, DbErr> {
    use entity::{event_counts as counts, event_org_counts as org_counts};
    use sea_orm::sea_query::{Alias, Expr, ExprTrait};
    let EventFilter {
        calendar_id,
        event_type_id: None,
        status,
        date_from: None,
        date_to: None,
        customer_phone: None,
        customer_email: None,
        customer_name_part: None,
    } = filter
    else {
        return Ok(None);
    };
    // PostgreSQL sums bigints as numeric; the cast keeps it an integer on both backends.
    let sum = |n: Expr| n.sum().cast_as(Alias::new("BIGINT"));
    let n: Option<Option<i64>> = if let Some(c) = calendar_id {
        let mut query = scoped::<counts::Entity>(org)
            .select_only()
            .column_as(sum(Expr::col(counts::Column::N)), "n")
            .filter(counts::Column::CalendarId.eq(*c));
        if let Some(s) = status {
            query = query.filter(counts::Column::Status.eq(*s));
        }
        query.into_tuple().one(db).await?
    } else {
        let mut query = scoped::<org_counts::Entity>(org)
            .select_only()
            .column_as(sum(Expr::col(org_counts::Column::N)), "n");
        if let Some(s) = status {
            query = query.filter(org_counts::Column::Status.eq(*s));
        }
        query.into_tuple().one(db).await?
    };
    Ok(Some(u64::try_from(n.flatten().unwrap_or(0)).unwrap_or(0)))
}

/// The organizations whose event counts have stripes besides stripe 0 (PostgreSQL: one per
/// connection that wrote events), for housekeeping to fold.
pub async fn striped_orgs<C: ConnectionTrait>(db: &C) -> Result<Vec<OrgId>, DbErr> {
    use entity::event_org_counts::{Column, Entity};
    <Entity as sea_orm::EntityTrait>::find()
        .select_only()
        .column(Column::OrgId)
        .filter(Column::Stripe.ne(0))
        .distinct()
        .into_tuple()
        .all(db)
        .await
}

/// Folds an organization's count stripes into stripe 0, which no connection writes, so the
/// stripes of closed connections do not pile up: each stripe row no open transaction holds is
/// deleted and its count added to stripe 0, in one statement, so no total ever changes. A row a
/// booking holds is skipped (`SKIP LOCKED`: a booking never waits for a fold), and stripe 0's
/// rows are written in status order, so two instances folding at once wait for each other
/// rather than deadlock. Answers how many of stripe 0's rows it wrote. PostgreSQL only (on
/// SQLite every count is on stripe 0).
pub async fn fold_org_counts<C: ConnectionTrait>(db: &C, org: OrgId) -> Result<u64, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(0);
    }
    let sql = "WITH moved AS (DELETE FROM event_org_counts d WHERE d.org_id = $1 \
           AND (d.org_id, d.stripe, d.status) IN (SELECT c.org_id, c.stripe, c.status \
             FROM event_org_counts c WHERE c.org_id = $1 AND c.stripe <> 0 FOR UPDATE SKIP LOCKED) \
           RETURNING d.status, d.n) \
         INSERT INTO event_org_counts AS t (org_id, stripe, status, n) \
           SELECT $1, 0, status, SUM(n)::bigint FROM moved GROUP BY status ORDER BY status \
         ON CONFLICT (org_id, stripe, status) DO UPDATE SET n = t.n + excluded.n";
    let done = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            sql,
            [org.0.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// A page after a position (keyset): no count and no offset, so the thousandth page costs what
/// the first does. Returns the events and whether more follow.
pub async fn list_after<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    filter: EventFilter,
    after: (DateTime<Utc>, Uuid),
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef};
    let position = Expr::tuple([
        Expr::col(Column::StartTime.into_column_ref()),
        Expr::col(Column::Id.into_column_ref()),
    ])
    .gt(Expr::tuple([Expr::value(after.0), Expr::value(after.1)]));
    let mut rows = filtered(org, filter)
        .filter(position)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: EventId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.eq(id))
        .one(db)
        .await
}

/// Events of some of the organization's calendars, sorted by start then id: those starting at or
/// after `from`, ending at or before `to`, of `status`; at most `limit`, and whether more follow.
pub async fn of_calendars<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendars: &[CalendarId],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    status: Option<EventStatus>,
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    let mut query =
        scoped::<Entity>(org).filter(Column::CalendarId.is_in(calendars.iter().copied()));
    if let Some(from) = from {
        query = query.filter(Column::StartTime.gte(from));
    }
    if let Some(to) = to {
        query = query.filter(Column::EndTime.lte(to));
    }
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status));
    }
    let mut rows = query
        .order_by_asc(Column::StartTime)
        .order_by_asc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// Every event of a calendar, whatever its status, whose time meets `[from, to)`, sorted by
/// start then id; at most `limit`, and whether more follow (a calendar feed's window).
pub async fn of_calendar_meeting<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    let mut rows = scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::StartTime.lt(to))
        .filter(Column::EndTime.gt(from))
        .order_by_asc(Column::StartTime)
        .order_by_asc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// The first live event on the calendar whose block overlaps `block` (half-open), if any.
pub async fn find_conflict<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    block: Block,
    except: Option<EventId>,
) -> Result<Option<Uuid>, DbErr> {
    let mut query = scoped::<Entity>(org)
        .select_only()
        .column(Column::Id)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::Status.is_in(BLOCKING_STATUSES))
        .filter(Column::Transparency.eq(OPAQUE))
        .filter(Column::BlockEnd.gt(block.start))
        // With the lower bound, keeps the index range short: nothing ending after
        // block.end + MAX_BLOCK_SPAN can start before block.end.
        .filter(Column::BlockEnd.lte(reach_end(block.end)))
        .filter(Column::BlockStart.lt(block.end));
    if let Some(except) = except {
        query = query.filter(Column::Id.ne(except));
    }
    query
        .order_by_asc(Column::BlockStart)
        .into_tuple::<Uuid>()
        .one(db)
        .await
}

/// The blocks of the calendars' confirmed and tentative opaque events that overlap
/// `[from, to)`, each with its calendar (availability of one calendar or of a team's hosts:
/// one query either way), leaving out the events `except` (a reschedule frees its own blocks).
pub async fn blocks_between<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendars: &[CalendarId],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: &[EventId],
) -> Result<Vec<(CalendarId, Block)>, DbErr> {
    if calendars.len() > 1 && db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        return blocks_grouped(db, org, calendars, from, to, except).await;
    }
    let mut query = scoped::<Entity>(org)
        .select_only()
        .column(Column::CalendarId)
        .column(Column::BlockStart)
        .column(Column::BlockEnd)
        .filter(Column::CalendarId.is_in(calendars.iter().copied()))
        .filter(Column::Status.is_in(BLOCKING_STATUSES))
        .filter(Column::Transparency.eq(OPAQUE))
        .filter(Column::BlockEnd.gt(from))
        .filter(Column::BlockEnd.lte(reach_end(to)))
        .filter(Column::BlockStart.lt(to));
    if !except.is_empty() {
        query = query.filter(Column::Id.is_not_in(except.iter().copied()));
    }
    let rows: Vec<(CalendarId, DateTime<Utc>, DateTime<Utc>)> = query.into_tuple().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(calendar, start, end)| (calendar, Block { start, end }))
        .collect())
}

/// `blocks_between` for several calendars on SQLite: one row per calendar with its blocks
/// concatenated, parsed back here. sqlx hands SQLite rows from its worker thread one at a
/// time; for a team of 50 hosts over a month (some 4,000 blocks) that hand-over was most of
/// the request (`quando-bench` team-availability). The stored instants are sqlx's RFC 3339
/// text, read back exactly.
async fn blocks_grouped<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendars: &[CalendarId],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: &[EventId],
) -> Result<Vec<(CalendarId, Block)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let mut select = Query::select();
    select
        .column(Column::CalendarId)
        .expr(Expr::cust(
            "group_concat(\"block_start\" || '|' || \"block_end\", ',')",
        ))
        .from(Entity)
        .and_where(Expr::col(Column::OrgId).eq(org.0))
        .and_where(Expr::col(Column::CalendarId).is_in(calendars.iter().map(|c| c.0)))
        .and_where(
            Expr::col(Column::Status)
                .is_in(BLOCKING_STATUSES.iter().map(sea_orm::ActiveEnum::to_value)),
        )
        .and_where(Expr::col(Column::Transparency).eq(OPAQUE))
        .and_where(Expr::col(Column::BlockEnd).gt(from))
        .and_where(Expr::col(Column::BlockEnd).lte(reach_end(to)))
        .and_where(Expr::col(Column::BlockStart).lt(to))
        .group_by_col(Column::CalendarId);
    if !except.is_empty() {
        select.and_where(Expr::col(Column::Id).is_not_in(except.iter().map(|e| e.0)));
    }
    let rows = db
        .query_all_raw(db.get_database_backend().build(&select))
        .await?;
    let instant = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| DbErr::Custom(format!("stored block instant {text:?}: {e}")))
    };
    let mut out = Vec::new();
    for row in rows {
        let calendar = CalendarId(row.try_get_by_index::<Uuid>(0)?);
        let joined: String = row.try_get_by_index(1)?;
        for pair in joined.split(',') {
            let (start, end) = pair
                .split_once('|')
                .ok_or_else(|| DbErr::Custom(format!("stored block {pair:?}")))?;
            out.push((
                calendar,
                Block {
                    start: instant(start)?,
                    end: instant(end)?,
                },
            ));
        }
    }
    Ok(out)
}

/// How many bookings of an event type each calendar got since `since` (by when they were
/// made; cancelled ones do not count): round-robin fairness.
pub async fn type_counts_since<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    event_type: EventTypeId,
    since: DateTime<Utc>,
) -> Result<Vec<(CalendarId, i64)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    scoped::<Entity>(org)
        .select_only()
        .column(Column::CalendarId)
        .column_as(Expr::col(Column::Id).count(), "n")
        .filter(Column::EventTypeId.eq(event_type))
        .filter(Column::CreatedAt.gte(since))
        .filter(Column::Status.is_in(BLOCKING_STATUSES))
        .group_by(Column::CalendarId)
        .into_tuple()
        .all(db)
        .await
}

/// The rows of a collective appointment, by id (each row lists the group), in calendar order:
/// the order their calendars are locked in.
pub async fn group_rows<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    ids: &[EventId],
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(Column::CalendarId)
        .all(db)
        .await
}

/// Refuses (`holds::held_error`) a row about to block `block` when a live slot hold keeps any
/// of it. Called after the calendar's row lock (`next_change_seq`), like every hold's own check
/// (`repo::holds`), so a hold and a booking never both miss each other.
async fn refuse_over_holds<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    block: Block,
    blocks: bool,
) -> Result<(), DbErr> {
    if blocks
        && super::holds::live_conflict(db, org, calendar, block, time::now())
            .await?
            .is_some()
    {
        return Err(super::holds::held_error());
    }
    Ok(())
}

/// Inserts a booking. The caller (the service) owns the transaction and has checked the rules
/// and the overlap inside it; on PostgreSQL the exclusion constraint still refuses whatever a
/// race lets through (see `db::is_exclusion_violation`).
pub async fn insert<C: ConnectionTrait>(db: &C, org: OrgId, new: NewEvent) -> Result<Model, DbErr> {
    let now = time::now();
    // First, so every writer of a calendar takes its row lock before anything else.
    let change_seq = super::calendars::next_change_seq(db, org, new.calendar_id).await?;
    let blocks =
        BLOCKING_STATUSES.contains(&new.status) && new.details.transparency == Transparency::Opaque;
    refuse_over_holds(db, org, new.calendar_id, new.block, blocks).await?;
    let made = ActiveModel {
        id: Set(new.id),
        org_id: Set(org),
        calendar_id: Set(new.calendar_id),
        event_type_id: Set(new.event_type_id),
        start_time: Set(new.start),
        end_time: Set(new.end),
        block_start: Set(new.block.start),
        block_end: Set(new.block.end),
        timezone: Set(new.timezone),
        customer_name: Set(new.customer_name),
        customer_phone: Set(new.customer_phone),
        customer_email: Set(new.customer_email),
        notes: Set(new.notes),
        title: Set(new.title),
        location: Set(new.location),
        status: Set(new.status),
        booked_via: Set(new.booked_via.to_string()),
        cancellation_reason: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        description: Set(new.details.description),
        kind: Set(new.details.kind),
        attendees: Set(attendees_json(&new.details.attendees)),
        owner_id: Set(new.details.owner_id),
        owner_type: Set(new.details.owner_type.map(|o| o.as_str().to_string())),
        created_by: Set(new.details.created_by),
        metadata: Set(metadata_json(&new.details.metadata)),
        all_day: Set(new.all_day.is_some()),
        start_date: Set(new.all_day.map(|d| d.start)),
        end_date: Set(new.all_day.map(|d| d.end)),
        transparency: Set(new.details.transparency.as_str().to_string()),
        gcal_id: Set(new.details.google.gcal_id),
        ical_uid: Set(new.details.google.ical_uid),
        sequence: Set(0),
        extras: Set(new.details.google.extras),
        change_seq: Set(change_seq),
        series_id: Set(new.series.map(|(id, _)| id)),
        original_start: Set(new.series.map(|(_, at)| at)),
        series_exception: Set(false),
        team_hosts: Set(new.team_hosts),
    }
    .insert(db)
    .await?;
    super::webhooks::record(db, EventKind::Created, &made, None).await?;
    Ok(made)
}

/// Applies changes to an event read in the same transaction. Checks nothing: the service has.
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    current: Model,
    changes: EventChanges,
) -> Result<Model, DbErr> {
    let now = time::now();
    // First, so every writer of a calendar takes its row lock before anything else.
    let change_seq =
        super::calendars::next_change_seq(db, current.org_id, current.calendar_id).await?;
    let status = changes.status.unwrap_or(current.status);
    let opaque = |t: &str| Transparency::from_stored(t) == Transparency::Opaque;
    let was_blocking = BLOCKING_STATUSES.contains(&current.status) && opaque(&current.transparency);
    let blocks = BLOCKING_STATUSES.contains(&status)
        && changes
            .transparency
            .map_or(opaque(&current.transparency), |t| t == Transparency::Opaque);
    let block = changes.times.map_or(
        Block {
            start: current.block_start,
            end: current.block_end,
        },
        |(_, _, block)| block,
    );
    let block_moved = (block.start, block.end) != (current.block_start, current.block_end);
    refuse_over_holds(
        db,
        current.org_id,
        current.calendar_id,
        block,
        blocks && (block_moved || !was_blocking),
    )
    .await?;
    let mut active: ActiveModel = current.clone().into();
    active.change_seq = Set(change_seq);
    if let Some((start, end, block)) = changes.times {
        if (start, end) != (current.start_time, current.end_time) {
            active.sequence = Set(current.sequence.saturating_add(1));
        }
        active.start_time = Set(start);
        active.end_time = Set(end);
        active.block_start = Set(block.start);
        active.block_end = Set(block.end);
    }
    if let Some(v) = changes.timezone {
        active.timezone = Set(v);
    }
    if let Some(v) = changes.customer_name {
        active.customer_name = Set(v);
    }
    if let Some(v) = changes.customer_phone {
        active.customer_phone = Set(v);
    }
    if let Some(v) = changes.customer_email {
        active.customer_email = Set(v);
    }
    if let Some(v) = changes.notes {
        active.notes = Set(v);
    }
    if let Some(v) = changes.title {
        active.title = Set(v);
    }
    if let Some(v) = changes.location {
        active.location = Set(v);
    }
    if status != current.status {
        active.status = Set(status);
        if status == EventStatus::Cancelled {
            active.cancelled_at = Set(Some(now));
        } else if current.status == EventStatus::Cancelled {
            active.cancelled_at = Set(None);
            active.cancellation_reason = Set(None);
        }
    }
    if let Some(reason) = changes.cancellation_reason {
        active.cancellation_reason = Set(reason);
    }
    if let Some(all_day) = changes.all_day {
        active.all_day = Set(all_day.is_some());
        active.start_date = Set(all_day.map(|d| d.start));
        active.end_date = Set(all_day.map(|d| d.end));
    }
    if let Some(v) = changes.description {
        active.description = Set(v);
    }
    if let Some(v) = changes.kind {
        active.kind = Set(v);
    }
    if let Some(v) = changes.attendees {
        active.attendees = Set(attendees_json(&v));
    }
    if let Some(v) = changes.owner_id {
        active.owner_id = Set(v);
    }
    if let Some(v) = changes.created_by {
        active.created_by = Set(v);
    }
    if let Some(v) = changes.owner_type {
        active.owner_type = Set(v.map(|o| o.as_str().to_string()));
    }
    if let Some(v) = changes.metadata {
        active.metadata = Set(metadata_json(&v));
    }
    if let Some(v) = changes.transparency {
        active.transparency = Set(v.as_str().to_string());
    }
    if let Some(v) = changes.ical_uid {
        active.ical_uid = Set(v);
    }
    if let Some(v) = changes.extras {
        active.extras = Set(v);
    }
    if let Some(v) = changes.series_exception {
        active.series_exception = Set(v);
    }
    active.updated_at = Set(now);
    let changed = active.update(db).await?;
    let kind = EventKind::of_change(
        current.status != EventStatus::Cancelled,
        changed.status != EventStatus::Cancelled,
        (current.start_time, current.end_time) != (changed.start_time, changed.end_time),
    );
    let previous = (kind == EventKind::Rescheduled).then_some(&current);
    super::webhooks::record(db, kind, &changed, previous).await?;
    Ok(changed)
}

/// The Google dialect's list filters over one calendar.
#[derive(Clone, Debug, Default)]
pub struct GoogleFilter {
    /// Only events ending after this instant.
    pub time_min: Option<DateTime<Utc>>,
    /// Only events starting before this instant.
    pub time_max: Option<DateTime<Utc>>,
    /// Only events changed at or after this instant.
    pub updated_min: Option<DateTime<Utc>>,
    /// Only the event with this iCalendar UID: a stored one, or `{32-hex id}@quando` of an event
    /// that has none stored.
    pub ical_uid: Option<String>,
    /// Free text, case-insensitive, over title, description, location and attendees.
    pub q: Option<String>,
    /// Whether cancelled events are listed.
    pub show_deleted: bool,
}

/// The order of a Google list: by start, or by last change; then by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoogleOrder {
    Start,
    Updated,
}

/// `%`, `_` and the escape itself, escaped for a LIKE pattern with `\` as the escape.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A page of a calendar's events for the Google dialect, keyset-paged after `after` (the
/// order's time and the id): the events and whether more follow.
pub async fn google_page<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    filter: &GoogleFilter,
    order: GoogleOrder,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, IntoColumnRef, LikeExpr};
    let mut query = scoped::<Entity>(org).filter(Column::CalendarId.eq(calendar));
    if let Some(t) = filter.time_min {
        query = query.filter(Column::EndTime.gt(t));
    }
    if let Some(t) = filter.time_max {
        query = query.filter(Column::StartTime.lt(t));
    }
    if let Some(t) = filter.updated_min {
        query = query.filter(Column::UpdatedAt.gte(t));
    }
    if !filter.show_deleted {
        query = query.filter(Column::Status.ne(EventStatus::Cancelled));
    }
    if let Some(uid) = &filter.ical_uid {
        let mut any = Condition::any().add(Column::IcalUid.eq(uid.clone()));
        if let Some(id) = uid
            .strip_suffix("@quando")
            .and_then(|id| Uuid::try_parse(id).ok())
        {
            any = any.add(
                Condition::all()
                    .add(Column::IcalUid.is_null())
                    .add(Column::Id.eq(id)),
            );
        }
        query = query.filter(any);
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = like_pattern(q);
        let like = |col: Column| {
            Expr::expr(Func::lower(
                Expr::col(col.into_column_ref()).cast_as("text"),
            ))
            .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        query = query.filter(
            Condition::any()
                .add(like(Column::Title))
                .add(like(Column::Description))
                .add(like(Column::Location))
                .add(like(Column::Attendees)),
        );
    }
    let time_col = match order {
        GoogleOrder::Start => Column::StartTime,
        GoogleOrder::Updated => Column::UpdatedAt,
    };
    if let Some((time, id)) = after {
        let position = Expr::tuple([
            Expr::col(time_col.into_column_ref()),
            Expr::col(Column::Id.into_column_ref()),
        ])
        .gt(Expr::tuple([Expr::value(time), Expr::value(id)]));
        query = query.filter(position);
    }
    let mut rows = query
        .order_by_asc(time_col)
        .order_by_asc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// The calendar's events changed after position `since` and at or before `upto` of its change
/// counter (cancelled ones included), in change order, keyset-paged after `after`
/// (`(change_seq, id)`): incremental sync.
pub async fn changed_between<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    since: i64,
    upto: i64,
    after: Option<(i64, Uuid)>,
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef};
    let mut query = scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::ChangeSeq.gt(since))
        .filter(Column::ChangeSeq.lte(upto));
    if let Some((seq, id)) = after {
        let position = Expr::tuple([
            Expr::col(Column::ChangeSeq.into_column_ref()),
            Expr::col(Column::Id.into_column_ref()),
        ])
        .gt(Expr::tuple([Expr::value(seq), Expr::value(id)]));
        query = query.filter(position);
    }
    let mut rows = query
        .order_by_asc(Column::ChangeSeq)
        .order_by_asc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// The calendar's event with this client-chosen Google id.
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

/// The calendar's event with this stored iCalendar UID (the oldest, should there be several).
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

/// The times of the calendar's time-holding events (confirmed or tentative, opaque) that
/// overlap `[from, to)`, by start.
pub async fn busy_between<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    scoped::<Entity>(org)
        .select_only()
        .column(Column::StartTime)
        .column(Column::EndTime)
        .filter(Column::CalendarId.eq(calendar))
        .filter(Column::Status.is_in(BLOCKING_STATUSES))
        .filter(Column::Transparency.eq(OPAQUE))
        .filter(Column::BlockEnd.gt(from))
        .filter(Column::BlockStart.lt(to))
        .filter(Column::EndTime.gt(from))
        .filter(Column::StartTime.lt(to))
        .order_by_asc(Column::StartTime)
        .into_tuple()
        .all(db)
        .await
}

/// The instances of a series, in rule order.
pub async fn of_series<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    series: SeriesId,
) -> Result<Vec<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::SeriesId.eq(series))
        .order_by_asc(Column::OriginalStart)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// A new instance of a series: a copy of `template` (another instance) at the occurrence `o`.
pub async fn insert_copy<C: ConnectionTrait>(
    db: &C,
    template: &Model,
    o: &crate::domain::recurrence::Occurrence,
    block: Block,
    series: SeriesId,
) -> Result<Model, DbErr> {
    insert_fresh(
        db,
        Model {
            start_time: o.start,
            end_time: o.end,
            all_day: o.all_day.is_some(),
            start_date: o.all_day.map(|d| d.start),
            end_date: o.all_day.map(|d| d.end),
            series_id: Some(series),
            original_start: Some(o.original_start),
            series_exception: false,
            ..template.clone()
        },
        block,
    )
    .await
}

/// A round-robin booking given to another host: a fresh row (new id) with the template's
/// fields on `calendar` at `[start, end)`.
pub async fn insert_reassigned<C: ConnectionTrait>(
    db: &C,
    template: &Model,
    calendar: CalendarId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    block: Block,
) -> Result<Model, DbErr> {
    insert_fresh(
        db,
        Model {
            calendar_id: calendar,
            start_time: start,
            end_time: end,
            status: if BLOCKING_STATUSES.contains(&template.status) {
                template.status
            } else {
                EventStatus::Confirmed
            },
            // Identity is the row's own: Google's id and UID come from the new id.
            ical_uid: None,
            ..template.clone()
        },
        block,
    )
    .await
}

/// Inserts `row` as a new event: a new id, the calendar's next change number (its lock first),
/// the block, fresh timestamps, no cancellation, no Google id; refused over a live hold.
async fn insert_fresh<C: ConnectionTrait>(
    db: &C,
    row: Model,
    block: Block,
) -> Result<Model, DbErr> {
    let now = time::now();
    let change_seq = super::calendars::next_change_seq(db, row.org_id, row.calendar_id).await?;
    let blocks = BLOCKING_STATUSES.contains(&row.status)
        && Transparency::from_stored(&row.transparency) == Transparency::Opaque;
    refuse_over_holds(db, row.org_id, row.calendar_id, block, blocks).await?;
    let active: ActiveModel = Model {
        id: EventId::generate(),
        // An instance's Google id is its series' id and its start; a reassigned booking's is
        // its new UUID: neither has one of its own.
        gcal_id: None,
        sequence: 0,
        change_seq,
        block_start: block.start,
        block_end: block.end,
        cancellation_reason: None,
        cancelled_at: None,
        created_at: now,
        updated_at: now,
        ..row
    }
    .into();
    // Every column is written: a fresh row.
    let made = active.reset_all().insert(db).await?;
    super::webhooks::record(db, EventKind::Created, &made, None).await?;
    Ok(made)
}

/// The instance of a series that its rule put at `original_start`.
pub async fn instance_at<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    series: SeriesId,
    original_start: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::SeriesId.eq(series))
        .filter(Column::OriginalStart.eq(original_start))
        .one(db)
        .await
}
