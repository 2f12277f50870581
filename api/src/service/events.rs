//! Booking, rescheduling and cancelling: each one write transaction that applies every rule,
//! checks the overlap, writes, and seals the idempotency answer with the write (a booking reads
//! its calendar and event type just before it: see `book`). A refusal leaves the transaction
//! first, then looks up the next free slots.

use chrono::{DateTime, Utc};
use entity::events::Model;

use super::rules::{
    Refused, Rules, Target, bookable, calendar_of, rules_without_event_type, target_of,
};
use super::team::{Team, group_of, team_of};
use super::{Render, Resource, Service, ServiceError};
use crate::db::is_exclusion_violation;
use crate::domain::booking;
use crate::domain::details::{AllDay, Attendee, EventDetails, Metadata, OwnerType, Transparency};
use crate::domain::ids::{CalendarId, EventId, EventTypeId, OrgId, SeriesId};
use crate::domain::slots::{self, Reason};
use crate::domain::team::Assignment;
use crate::domain::time::{self, Zone};
use crate::domain::violations::Invalid;
use crate::repo::events::{BLOCKING_STATUSES, EventChanges, NewEvent};
use crate::repo::{self, begin_write, idempotency};

/// The state of an event, typed down to the column. `Cancelled` events no longer hold their time.
pub use entity::events::EventStatus as Status;

/// Whether an event in this state holds its time.
pub fn holds_time(status: Status) -> bool {
    status != Status::Cancelled
}

/// A new booking, parsed: every field valid, times in UTC.
#[derive(Clone, Debug)]
pub struct BookingRequest {
    /// Required unless the event type is a team's (then it names the host) or bound to one
    /// calendar (see `rules::target_of`).
    pub calendar: Option<CalendarId>,
    /// `None` in dialects without event types: the calendar's hours apply, no buffers.
    pub event_type: Option<EventTypeId>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The appointment's zone (stored; local times were read in it).
    pub zone: Zone,
    pub customer_name: Option<String>,
    /// E.164.
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub notes: Option<String>,
    /// `Confirmed` or `Tentative`.
    pub status: Status,
    /// Lifts working hours, overrides, notice and advance (never the overlap rule).
    pub force: bool,
    /// Set for an all-day event; `start`/`end` are then those days' bounds in `zone`. All-day
    /// events are calendar blocks (a holiday, a day off): held to the overlap rule when opaque,
    /// not to working hours, notice or advance, and never widened by buffers.
    pub all_day: Option<AllDay>,
    pub details: EventDetails,
    /// The channel (`api`, `widget`, `talkover`, `gcal`, ...).
    pub booked_via: &'static str,
    /// The slot hold this booking turns into the appointment.
    pub hold: Option<super::holds::HoldClaim>,
}

/// Changes to an event, parsed. `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct EventUpdate {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// The zone the request's local times were read in; becomes the event's zone.
    pub zone: Option<Zone>,
    pub customer_name: Option<Option<String>>,
    pub customer_phone: Option<Option<String>>,
    pub customer_email: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub status: Option<Status>,
    pub force: bool,
    /// New all-day dates (with `start`/`end` their bounds); `Some(None)`: the new times are a
    /// timed event's. `None` with new times: the event keeps its kind.
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
    /// A conditional write: only if the event's `change_seq` is still this (Google's
    /// `If-Match`); else `ServiceError::Stale` and nothing is written.
    pub expected_seq: Option<i64>,
    /// An instance of a recurring event changed on its own: later changes to the whole series
    /// leave it as it is.
    pub detach_from_series: bool,
    /// A round-robin booking whose host cannot take the new time may go to another free host
    /// (a new event; the old one is cancelled).
    pub reassign: bool,
}

/// The most events one list answer holds (dialects without paging); `more` says when there
/// were more.
pub const MAX_LISTED: u64 = 500;

/// The rows a change to `event` writes: the event alone, or for a collective appointment every
/// host's row, read again after every host's calendar is locked (in id order), in that order.
async fn members_of<C: sea_orm::ConnectionTrait>(
    txn: &C,
    org: OrgId,
    event: Model,
) -> Result<Vec<Model>, ServiceError> {
    Ok(match group_of(&event)? {
        Some(group) => {
            let calendars: Vec<CalendarId> = group.iter().map(|g| g.calendar_id).collect();
            repo::calendars::lock_all(txn, org, &calendars).await?;
            let ids: Vec<EventId> = group.iter().map(|g| g.event_id).collect();
            repo::events::group_rows(txn, org, &ids).await?
        }
        None => vec![event],
    })
}

/// The rules a booking is held to: its event type's, or the calendar's alone.
pub(super) async fn rules_for<C: sea_orm::ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    event_type: Option<EventTypeId>,
    length: chrono::Duration,
) -> Result<Rules, ServiceError> {
    match event_type {
        Some(event_type) => {
            let (calendar, event_type) = bookable(db, org, calendar, event_type).await?;
            Rules::of(&calendar, &event_type)
        }
        None => {
            let calendar = calendar_of(db, org, calendar).await?;
            Rules::with(&calendar, rules_without_event_type(length))
        }
    }
}

/// A time an event is about to hold, and how it may hold it.
pub(super) struct Admission {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Lifts working hours, overrides, notice and advance (never the overlap rule).
    pub force: bool,
    /// All-day events are calendar blocks: held to the overlap rule only.
    pub all_day: bool,
    /// Whether the event's status holds time (a cancelled one holds none: no rule applies).
    pub holds: bool,
    /// Transparent events block nothing.
    pub opaque: bool,
    /// Whether to look for an overlapping event before writing. Always on SQLite, which has no
    /// constraint for it; a new booking on PostgreSQL leaves it to the exclusion constraint,
    /// which refuses an overlapping insert by itself (the refusal then names the event in the
    /// way): one query fewer for every booking that succeeds, one more for one that does not.
    pub look_for_overlap: bool,
}

impl Admission {
    /// What stands in the way, checked inside the write transaction: a booking rule (unless
    /// forced) or another event's block on the calendar (`except` never counts).
    pub async fn obstacle<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        org: OrgId,
        rules: &Rules,
        except: Option<EventId>,
    ) -> Result<Option<(Reason, Option<uuid::Uuid>)>, ServiceError> {
        if !self.holds {
            return Ok(None);
        }
        if !self.force
            && !self.all_day
            && let Err(reason) = slots::check_booking(
                &rules.schedule,
                &rules.slot,
                time::now(),
                self.start,
                self.end,
            )
        {
            return Ok(Some((reason, None)));
        }
        if self.opaque && self.look_for_overlap {
            let block = rules.block(self.start, self.end);
            if let Some(conflict) =
                repo::events::find_conflict(txn, org, rules.calendar, block, except).await?
            {
                return Ok(Some((Reason::Conflict, Some(conflict))));
            }
        }
        Ok(None)
    }
}

/// The event row of a booking request at `[start, end)` (an instance of a series names it).
pub(super) fn new_event(
    req: &BookingRequest,
    calendar: CalendarId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    block: booking::Block,
    all_day: Option<AllDay>,
    series: Option<(SeriesId, DateTime<Utc>)>,
) -> NewEvent {
    NewEvent {
        id: EventId::generate(),
        calendar_id: calendar,
        event_type_id: req.event_type,
        start,
        end,
        block,
        timezone: req.zone.name().to_string(),
        customer_name: req.customer_name.clone(),
        customer_phone: req.customer_phone.clone(),
        customer_email: req.customer_email.clone(),
        notes: req.notes.clone(),
        title: req.title.clone(),
        location: req.location.clone(),
        status: req.status,
        booked_via: req.booked_via,
        details: match series {
            // An instance's Google id is its series' id and its start: none of its own.
            Some(_) => EventDetails {
                google: crate::domain::details::GoogleFields {
                    gcal_id: None,
                    ..req.details.google.clone()
                },
                ..req.details.clone()
            },
            None => req.details.clone(),
        },
        all_day,
        series,
        team_hosts: None,
    }
}

impl Service {
    /// Books an event unless a rule refuses it; `render` is the answer the caller will send,
    /// sealed with the booking when the request carries an `Idempotency-Key`.
    pub async fn book(
        &self,
        org: OrgId,
        req: BookingRequest,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        booking::check_length(req.start, req.end).map_err(|e| Invalid::one("endTime", e))?;
        // The rules are read just before the write transaction, not inside it: on SQLite that
        // keeps two statements out of the one writer's turn (create 460 -> ~580 req/s in the
        // small suite). Still serialisable: nothing that changes a calendar, its hours or an
        // event type reads events, so a booking checked against rules that change before it
        // commits is the booking made just before the change (calendars and event types are
        // never deleted). On PostgreSQL (read committed) each statement took its own snapshot
        // anyway.
        let target = target_of(
            &self.db,
            org,
            req.calendar,
            req.event_type,
            req.end - req.start,
        )
        .await?;
        let mut rules = match target {
            Target::One(rules) => rules,
            Target::Team(team, which) => {
                return self.book_team(org, *team, which, req, render).await;
            }
        };
        let (queued, txn) = repo::begin_booking(&self.writer).await?;
        // A live hold of this key keeps the time under the rules it was made under: only the
        // overlap rule is left to check (the hold itself is used up first, so it is not in the
        // way). An expired one leaves the booking to every rule.
        let held = match req.hold {
            Some(claim) => matches!(
                super::holds::claim(
                    &txn,
                    org,
                    claim,
                    rules.calendar,
                    req.event_type,
                    req.start,
                    req.end
                )
                .await?,
                super::holds::Claimed::Live
            ),
            None => false,
        };
        if req.all_day.is_some() {
            // Whole days exactly: no buffers.
            rules.slot.buffer_before = chrono::Duration::zero();
            rules.slot.buffer_after = chrono::Duration::zero();
        }
        rules.check_storable(req.start, req.end)?;
        let refused = |reason, conflicting| Refused {
            reason,
            conflicting,
            requested_start: req.start,
            except: None,
            zone: req.zone,
        };
        // An event created cancelled (an import of history) holds no time: no rule applies.
        let admission = Admission {
            start: req.start,
            end: req.end,
            force: req.force || held,
            all_day: req.all_day.is_some(),
            holds: holds_time(req.status),
            opaque: req.details.transparency == Transparency::Opaque,
            look_for_overlap: self.writer.get_database_backend() != sea_orm::DbBackend::Postgres,
        };
        let block = rules.block(req.start, req.end);
        if let Some((reason, conflicting)) = admission.obstacle(&txn, org, &rules, None).await? {
            queued.abandon(txn).await?;
            return Err(self.refuse(org, &rules, refused(reason, conflicting)).await);
        }
        let new = new_event(
            &req,
            rules.calendar,
            req.start,
            req.end,
            block,
            req.all_day,
            None,
        );
        match repo::events::insert(&txn, org, new).await {
            Ok(model) => {
                idempotency::seal(&txn, &model, render).await?;
                queued.commit(txn).await?;
                self.event_written();
                self.metrics.booking_created();
                Ok(model)
            }
            Err(err) if is_exclusion_violation(&err) => {
                // A concurrent booking committed between our check and our insert (PostgreSQL
                // checks are not serialised); the constraint refused ours. Name the winner.
                queued.abandon(txn).await?;
                let winner =
                    repo::events::find_conflict(&self.db, org, rules.calendar, block, None).await?;
                Err(self
                    .refuse(org, &rules, refused(Reason::Conflict, winner))
                    .await)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Reschedules or edits an event. New times, and leaving `cancelled`, are held to every rule
    /// a new booking is (all but overlap lifted by `force`); times that do not change are not
    /// re-checked, so editing notes keeps a booking whose hours changed since. An event never
    /// collides with itself. A collective appointment changes on every host's calendar or on
    /// none; a round-robin booking whose host cannot take the new time goes to another free
    /// host when `reassign` allows it (`reassign`).
    pub async fn update(
        &self,
        org: OrgId,
        id: EventId,
        update: EventUpdate,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        let found = repo::events::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        let members = members_of(&txn, org, found).await?;
        let current = members
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        if update
            .expected_seq
            .is_some_and(|seq| seq != current.change_seq)
        {
            return Err(ServiceError::Stale);
        }
        let (new_start, new_end) = booking::reschedule(
            (current.start_time, current.end_time),
            update.start,
            update.end,
        );
        // Times sent unchanged (a client echoing the whole event) are no move.
        let moved = (new_start, new_end) != (current.start_time, current.end_time);
        let was = current.status;
        let status = update.status.unwrap_or(was);
        // Leaving `cancelled` takes the time again: held to every rule a new booking is.
        let uncancelling = !holds_time(was) && holds_time(status);
        if moved {
            booking::check_length(new_start, new_end).map_err(|e| Invalid::one("endTime", e))?;
        }
        let event_type = match current.event_type_id {
            Some(id) => Some(
                repo::event_types::get(&txn, org, id)
                    .await?
                    .ok_or(ServiceError::NotFound(Resource::EventType))?,
            ),
            None => None,
        };
        if uncancelling && event_type.as_ref().is_some_and(|t| !t.active) {
            // As for a new booking (`bookable`), `force` does not lift this.
            return Err(Invalid::one(
                "status",
                "this event's event type is not active: the event cannot be booked again",
            )
            .into());
        }
        let team = match &event_type {
            Some(t) => team_of(&txn, org, t).await?,
            None => None,
        };
        let all_day = match update.all_day {
            Some(dates) => dates,
            None if moved => None,
            None => current
                .start_date
                .zip(current.end_date)
                .map(|(start, end)| AllDay { start, end }),
        };
        if all_day.is_some() && (members.len() > 1 || team.is_some()) {
            return Err(Invalid::one(
                "allDay",
                "a team event type books timed appointments, not whole days",
            )
            .into());
        }
        let reply_zone = update
            .zone
            .or_else(|| Zone::parse(&current.timezone).ok())
            .unwrap_or(Zone::UTC);
        let refused = |reason, conflicting| Refused {
            reason,
            conflicting,
            requested_start: new_start,
            except: Some(id),
            zone: reply_zone,
        };
        let transparency = update
            .transparency
            .unwrap_or_else(|| Transparency::from_stored(&current.transparency));
        // Every row's calendar is held to the rules (one row unless collective).
        let mut blocks = Vec::with_capacity(members.len());
        let mut own_rules = None;
        for member in &members {
            let calendar = calendar_of(&txn, org, member.calendar_id).await?;
            let mut rules = match &event_type {
                Some(t) => Rules::of(&calendar, t)?,
                None => Rules::with(&calendar, rules_without_event_type(new_end - new_start))?,
            };
            if all_day.is_some() {
                rules.slot.buffer_before = chrono::Duration::zero();
                rules.slot.buffer_after = chrono::Duration::zero();
            }
            if moved {
                rules.check_storable(new_start, new_end)?;
            }
            let block = if moved {
                rules.block(new_start, new_end)
            } else {
                booking::Block {
                    start: member.block_start,
                    end: member.block_end,
                }
            };
            let was_blocking = BLOCKING_STATUSES.contains(&member.status)
                && Transparency::from_stored(&member.transparency) == Transparency::Opaque;
            let mut obstacle = None;
            if (moved || uncancelling)
                && !update.force
                && all_day.is_none()
                && let Err(reason) = slots::check_booking(
                    &rules.schedule,
                    &rules.slot,
                    time::now(),
                    new_start,
                    new_end,
                )
            {
                obstacle = Some((reason, None));
            } else if holds_time(status)
                && transparency == Transparency::Opaque
                && (moved || !was_blocking)
                && let Some(other) = repo::events::find_conflict(
                    &txn,
                    org,
                    member.calendar_id,
                    block,
                    Some(member.id),
                )
                .await?
            {
                obstacle = Some((Reason::Conflict, Some(other)));
            }
            if let Some((reason, conflicting)) = obstacle {
                if let Some(team) = team
                    .as_ref()
                    .filter(|t| update.reassign && moved && t.assignment == Assignment::RoundRobin)
                {
                    drop(rules);
                    return self
                        .reassign(org, txn, queued, team, current, update, render, reply_zone)
                        .await;
                }
                drop((txn, queued));
                return Err(match &team {
                    // A collective appointment moves on every host or not at all: the team's
                    // next slots. A round-robin one stays on its host: that host's.
                    Some(team) if team.assignment == Assignment::Collective => {
                        let all: Vec<usize> = (0..team.hosts.len()).collect();
                        self.refuse_team(org, team, &all, refused(reason, None))
                            .await
                    }
                    _ => self.refuse(org, &rules, refused(reason, conflicting)).await,
                });
            }
            if member.id == id {
                own_rules = Some(rules);
            }
            blocks.push(block);
        }
        let rules = own_rules.expect("the event is one of its group's rows");
        let changes = EventChanges {
            times: None,
            timezone: update.zone.map(|z| z.name().to_string()),
            customer_name: update.customer_name,
            customer_phone: update.customer_phone,
            customer_email: update.customer_email,
            notes: update.notes,
            title: update.title,
            location: update.location,
            status: update.status,
            cancellation_reason: None,
            all_day: moved.then_some(all_day),
            description: update.description,
            kind: update.kind,
            attendees: update.attendees,
            created_by: update.created_by,
            owner_id: update.owner_id,
            owner_type: update.owner_type,
            metadata: update.metadata,
            transparency: update.transparency,
            ical_uid: update.ical_uid,
            extras: update.extras,
            series_exception: (update.detach_from_series && current.series_id.is_some())
                .then_some(true),
        };
        // Each row in calendar order (the order the locks were taken in).
        let mut answer = None;
        for (member, block) in members.into_iter().zip(blocks) {
            let row = member.id;
            let changes = EventChanges {
                times: moved.then_some((new_start, new_end, block)),
                ..changes.clone()
            };
            match repo::events::apply(&txn, member, changes).await {
                Ok(model) if row == id => answer = Some(model),
                Ok(_) => {}
                Err(err) if is_exclusion_violation(&err) => {
                    drop((txn, queued));
                    let winner = repo::events::find_conflict(
                        &self.db,
                        org,
                        rules.calendar,
                        rules.block(new_start, new_end),
                        Some(id),
                    )
                    .await?;
                    return Err(self
                        .refuse(org, &rules, refused(Reason::Conflict, winner))
                        .await);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let model = answer.expect("the event was written");
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        self.event_written();
        Ok(model)
    }

    /// A round-robin booking its host cannot move to the new time, given to another host free
    /// then: the old event is cancelled and a new one (a new id, the old one's fields with the
    /// update applied) takes the time on that host. Inside the update's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn reassign(
        &self,
        org: OrgId,
        txn: sea_orm::DatabaseTransaction,
        queued: repo::WriteGuard,
        team: &Team,
        current: Model,
        update: EventUpdate,
        render: Render<'_, Model>,
        zone: Zone,
    ) -> Result<Model, ServiceError> {
        let (start, end) = booking::reschedule(
            (current.start_time, current.end_time),
            update.start,
            update.end,
        );
        let all: Vec<usize> = (0..team.hosts.len()).collect();
        repo::calendars::lock_all(&txn, org, &team.calendars).await?;
        let host = match team
            .assign(&txn, org, &all, update.force, start, end, &[current.id])
            .await?
        {
            Ok(hosts) => hosts[0],
            Err(reason) => {
                drop((txn, queued));
                let refused = Refused {
                    reason,
                    conflicting: None,
                    requested_start: start,
                    except: Some(current.id),
                    zone,
                };
                return Err(self.refuse_team(org, team, &all, refused).await);
            }
        };
        let template = current.clone();
        let cancel = EventChanges {
            status: Some(Status::Cancelled),
            cancellation_reason: Some(Some("reassigned to another host".into())),
            ..EventChanges::default()
        };
        repo::events::apply(&txn, current, cancel).await?;
        let block = team.block(start, end);
        let moved = repo::events::insert_reassigned(
            &txn,
            &template,
            team.calendars[host],
            start,
            end,
            block,
        )
        .await?;
        let rest = EventChanges {
            timezone: update.zone.map(|z| z.name().to_string()),
            customer_name: update.customer_name,
            customer_phone: update.customer_phone,
            customer_email: update.customer_email,
            notes: update.notes,
            title: update.title,
            location: update.location,
            description: update.description,
            kind: update.kind,
            attendees: update.attendees,
            created_by: update.created_by,
            owner_id: update.owner_id,
            owner_type: update.owner_type,
            metadata: update.metadata,
            ical_uid: update.ical_uid,
            extras: update.extras,
            ..EventChanges::default()
        };
        let model = repo::events::apply(&txn, moved, rest).await?;
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        drop(queued);
        self.event_written();
        Ok(model)
    }

    /// Cancels an event: it stops holding its time. Cancelling a cancelled event changes nothing
    /// and returns it as it is.
    pub async fn cancel(
        &self,
        org: OrgId,
        id: EventId,
        reason: Option<String>,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        self.cancel_expecting(org, id, reason, None, render).await
    }

    /// `cancel`, only if the event's `change_seq` is still `expected_seq` when given (Google's
    /// `If-Match` on delete); else `ServiceError::Stale` and nothing is written.
    pub async fn cancel_expecting(
        &self,
        org: OrgId,
        id: EventId,
        reason: Option<String>,
        expected_seq: Option<i64>,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let current = repo::events::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        if expected_seq.is_some_and(|seq| seq != current.change_seq) {
            return Err(ServiceError::Stale);
        }
        if !holds_time(current.status) {
            return Ok(current);
        }
        // A collective appointment is cancelled on every host's calendar, in lock order.
        let members = members_of(&txn, org, current).await?;
        let mut answer = None;
        for member in members {
            if !holds_time(member.status) {
                continue;
            }
            let row = member.id;
            // A cancelled instance of a recurring event stays cancelled whatever later happens
            // to the series (an exception).
            let changes = EventChanges {
                status: Some(Status::Cancelled),
                cancellation_reason: Some(reason.clone()),
                series_exception: member.series_id.is_some().then_some(true),
                ..EventChanges::default()
            };
            let model = repo::events::apply(&txn, member, changes).await?;
            if row == id {
                answer = Some(model);
            }
        }
        let model = answer.ok_or(ServiceError::NotFound(Resource::Event))?;
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        self.event_written();
        Ok(model)
    }

    /// One event of the organization.
    pub async fn event(&self, org: OrgId, id: EventId) -> Result<Model, ServiceError> {
        repo::events::get(&self.db, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))
    }

    /// Events of some of the organization's calendars (each must exist: another organization's
    /// is not found), sorted by start; at most `MAX_LISTED`, and whether more were left out.
    pub async fn events_of_calendars(
        &self,
        org: OrgId,
        calendars: &[CalendarId],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        status: Option<Status>,
    ) -> Result<(Vec<Model>, bool), ServiceError> {
        for calendar in calendars {
            calendar_of(&self.db, org, *calendar).await?;
        }
        Ok(
            repo::events::of_calendars(&self.db, org, calendars, from, to, status, MAX_LISTED)
                .await?,
        )
    }

    /// Adds an attendee to an event; an address already invited is refused (field `email`).
    pub async fn add_attendee(
        &self,
        org: OrgId,
        id: EventId,
        attendee: Attendee,
        render: Render<'_, Attendee>,
    ) -> Result<Attendee, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let current = repo::events::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        let mut attendees = repo::events::attendees_of(&current);
        if attendees
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(&attendee.email))
        {
            return Err(Invalid::one("email", "is already an attendee of this event").into());
        }
        if attendees.len() >= crate::domain::details::MAX_ATTENDEES {
            return Err(Invalid::one("attendees", "an event has at most 100 attendees").into());
        }
        attendees.push(attendee.clone());
        let changes = EventChanges {
            attendees: Some(attendees),
            ..EventChanges::default()
        };
        repo::events::apply(&txn, current, changes).await?;
        idempotency::seal(&txn, &attendee, render).await?;
        txn.commit().await?;
        self.event_written();
        Ok(attendee)
    }
}
