//! What a calendar and an event type allow, and the answers built from it: free slots in a
//! window, the next free slots after a refused time, and the refusal itself. Every write and
//! every availability answer goes through here, so they can never disagree.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::team::{Team, team_of};
use super::{Refusal, Resource, Service, ServiceError};
use crate::domain::booking::Block;
use crate::domain::ids::{CalendarId, EventId, EventTypeId, OrgId};
use crate::domain::schedule::Schedule;
use crate::domain::slots::{self, Availability, BlockIndex, Reason, Slot, SlotRules};
use crate::domain::time::{self, Zone};
use crate::domain::violations::Invalid;
use crate::repo;

/// The longest window one availability request may cover.
pub const MAX_WINDOW: Duration = Duration::days(62);
/// How many free slots a refusal offers.
pub const NEXT_SLOTS: usize = 3;
/// The most slots one availability answer lists; the rest are one request away
/// (`next_from`). 62 days of 5-minute slots around the clock would be almost 18,000.
pub const MAX_SLOTS: usize = 1000;

/// The calendar and event type of a booking of one calendar, both the organization's, the event
/// type active, bookable on that calendar, and not a team's (a team type is booked through
/// `target_of`).
pub(crate) async fn bookable<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    event_type: EventTypeId,
) -> Result<(entity::calendars::Model, entity::event_types::Model), ServiceError> {
    let (calendar_model, event_type) =
        repo::calendars::with_event_type(db, org, calendar, event_type)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
    let event_type = event_type.ok_or(ServiceError::NotFound(Resource::EventType))?;
    check_active(&event_type)?;
    if repo::event_types::team_of(&event_type)?.0.is_team() {
        return Err(Invalid::one(
            "eventTypeId",
            "is a team event type: it books single appointments only, never a recurring event",
        )
        .into());
    }
    check_calendar(&event_type, calendar)?;
    Ok((calendar_model, event_type))
}

fn check_active(event_type: &entity::event_types::Model) -> Result<(), Invalid> {
    if event_type.active {
        Ok(())
    } else {
        Err(Invalid::one("eventTypeId", "this event type is not active"))
    }
}

fn check_calendar(
    event_type: &entity::event_types::Model,
    calendar: CalendarId,
) -> Result<(), Invalid> {
    if event_type.calendar_id.is_some_and(|c| c != calendar) {
        Err(Invalid::one(
            "eventTypeId",
            "this event type belongs to another calendar",
        ))
    } else {
        Ok(())
    }
}

/// What a booking, a hold or a lookup is held to: one calendar's rules, or a team's hosts
/// (with the hosts the request allows: one when it named a host's calendar, else all).
pub(crate) enum Target {
    One(Rules),
    Team(Box<Team>, Vec<usize>),
}

/// The target of a request naming a calendar and/or an event type. A team type needs no
/// calendar (naming one picks that host); a type bound to a calendar books there when the
/// request names none; anything else needs `calendarId`. Without an event type (dialects that
/// have none) the calendar's hours apply with `rules_without_event_type(length)`.
pub(crate) async fn target_of<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: Option<CalendarId>,
    event_type: Option<EventTypeId>,
    length: Duration,
) -> Result<Target, ServiceError> {
    let required = || Invalid::one("calendarId", "is required");
    let Some(event_type) = event_type else {
        let calendar = calendar_of(db, org, calendar.ok_or_else(required)?).await?;
        return Ok(Target::One(Rules::with(
            &calendar,
            rules_without_event_type(length),
        )?));
    };
    let (calendar_model, event_type) = match calendar {
        Some(calendar) => {
            let (calendar, event_type) =
                repo::calendars::with_event_type(db, org, calendar, event_type)
                    .await?
                    .ok_or(ServiceError::NotFound(Resource::Calendar))?;
            (
                Some(calendar),
                event_type.ok_or(ServiceError::NotFound(Resource::EventType))?,
            )
        }
        None => (
            None,
            repo::event_types::get(db, org, event_type)
                .await?
                .ok_or(ServiceError::NotFound(Resource::EventType))?,
        ),
    };
    check_active(&event_type)?;
    if let Some(team) = team_of(db, org, &event_type).await? {
        let which = team.hosts_named(calendar, "calendarId")?;
        return Ok(Target::Team(Box::new(team), which));
    }
    let calendar_model = match (calendar_model, event_type.calendar_id) {
        (Some(calendar), _) => calendar,
        (None, Some(bound)) => calendar_of(db, org, bound).await?,
        (None, None) => {
            return Err(Invalid::one(
                "calendarId",
                "is required: this event type can be booked on any calendar of the organization",
            )
            .into());
        }
    };
    check_calendar(&event_type, calendar_model.id)?;
    Ok(Target::One(Rules::of(&calendar_model, &event_type)?))
}

/// A calendar of the organization.
pub(crate) async fn calendar_of<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<entity::calendars::Model, ServiceError> {
    repo::calendars::get(db, org, calendar)
        .await?
        .ok_or(ServiceError::NotFound(Resource::Calendar))
}

/// The slot rules of a booking without an event type (a dialect that has none): the booking's
/// own length, no buffers, not in the past, no advance limit.
pub(crate) fn rules_without_event_type(length: Duration) -> SlotRules {
    SlotRules {
        duration: length,
        interval: length,
        buffer_before: Duration::zero(),
        buffer_after: Duration::zero(),
        notice: None,
        max_advance: None,
    }
}

/// What a calendar and event type allow.
pub(crate) struct Rules {
    pub calendar: CalendarId,
    pub schedule: Schedule,
    pub slot: SlotRules,
}

impl Rules {
    pub fn of(
        calendar: &entity::calendars::Model,
        event_type: &entity::event_types::Model,
    ) -> Result<Self, ServiceError> {
        Self::with(calendar, repo::event_types::rules_of(event_type))
    }

    /// A calendar's schedule with the given slot rules.
    pub fn with(
        calendar: &entity::calendars::Model,
        slot: SlotRules,
    ) -> Result<Self, ServiceError> {
        Ok(Rules {
            calendar: calendar.id,
            schedule: repo::calendars::schedule_of(calendar).map_err(|e| {
                ServiceError::Storage(DbErr::Custom(format!(
                    "stored working hours unreadable: {e}"
                )))
            })?,
            slot,
        })
    }

    /// The block a booking of `[start, end)` holds: widened by the event type's buffers.
    pub fn block(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Block {
        Block {
            start: start - self.slot.buffer_before,
            end: end + self.slot.buffer_after,
        }
    }

    /// Refuses a booking whose block would leave years 0001-9999: it could be neither stored
    /// nor printed.
    pub fn check_storable(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), Invalid> {
        self.block(start, end)
            .check_storable()
            .map_err(|(field, message)| Invalid::one(field, message))
    }

    /// Free slots in `[from, to)`, ignoring one event's own block (a reschedule frees it).
    pub async fn availability<C: ConnectionTrait>(
        &self,
        db: &C,
        org: OrgId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: Option<EventId>,
    ) -> Result<Availability, DbErr> {
        // Existing blocks that can touch a candidate's block, kept inside the storable years:
        // SQLite compares times as text, where `+10000-...` sorts before `9999-...`.
        let reach_from = (from - self.slot.buffer_before).max(time::earliest());
        let reach_to = (to + self.slot.duration + self.slot.buffer_after).min(time::latest());
        let calendars = [self.calendar];
        let mut blocks: Vec<Block> = repo::events::blocks_between(
            db,
            org,
            &calendars,
            reach_from,
            reach_to,
            except.as_slice(),
        )
        .await?
        .into_iter()
        .map(|(_, block)| block)
        .collect();
        // Live slot holds keep their time from everyone (an expired one from no one).
        blocks.extend(
            repo::holds::live_blocks_between(
                db,
                org,
                &calendars,
                reach_from,
                reach_to,
                time::now(),
            )
            .await?
            .into_iter()
            .map(|(_, block)| block),
        );
        Ok(slots::availability(
            &self.schedule,
            &self.slot,
            &BlockIndex::new(blocks),
            time::now(),
            from,
            to,
        ))
    }

    /// The first free slots at or after `after` (and not before now), looking up to 62 days ahead.
    pub async fn next_slots<C: ConnectionTrait>(
        &self,
        db: &C,
        org: OrgId,
        after: DateTime<Utc>,
        except: Option<EventId>,
    ) -> Result<Vec<Slot>, DbErr> {
        let mut from = after.max(time::now());
        let horizon = (from + MAX_WINDOW).min(time::latest());
        let mut found = Vec::new();
        while found.len() < NEXT_SLOTS && from < horizon {
            let to = (from + Duration::days(7)).min(horizon);
            let page = self.availability(db, org, from, to, except).await?;
            found.extend(page.slots.into_iter().take(NEXT_SLOTS - found.len()));
            from = to;
        }
        Ok(found)
    }
}

/// A write the rules refuse, before its next slots are looked up.
pub(crate) struct Refused {
    pub reason: Reason,
    /// The event in the way, for `conflict`.
    pub conflicting: Option<Uuid>,
    pub requested_start: DateTime<Utc>,
    /// The event being rescheduled: its own block does not count.
    pub except: Option<EventId>,
    /// The zone of the caller's local times.
    pub zone: Zone,
}

impl Service {
    /// The refusal for a write the rules refuse, with the next free slots: after the requested
    /// start, or from now when the request was too far ahead (the slots before the limit). Run
    /// after the write's transaction has ended.
    pub(crate) async fn refuse(&self, org: OrgId, rules: &Rules, refused: Refused) -> ServiceError {
        self.metrics.booking_refused(refused.reason.as_str());
        let after = match refused.reason {
            Reason::BeyondMaxAdvance => time::now(),
            _ => refused.requested_start,
        };
        match rules.next_slots(&self.db, org, after, refused.except).await {
            Ok(next_slots) => ServiceError::Refused(Box::new(Refusal {
                reason: refused.reason,
                conflicting: refused.conflicting,
                next_slots,
                zone: refused.zone,
                instance: None,
            })),
            Err(err) => err.into(),
        }
    }

    /// Free slots of an event type on a calendar in `[from, to)` (at most 62 days), at most
    /// `MAX_SLOTS` of them, with where to continue when there were more.
    pub async fn availability(
        &self,
        org: OrgId,
        query: AvailabilityQuery,
    ) -> Result<AvailabilityAnswer, ServiceError> {
        if query.to <= query.from {
            return Err(Invalid::one("dateTo", "must be after dateFrom").into());
        }
        if query.to - query.from > MAX_WINDOW {
            return Err(Invalid::one("dateTo", "the window is at most 62 days").into());
        }
        let target = target_of(
            &self.db,
            org,
            query.calendar,
            Some(query.event_type),
            Duration::zero(),
        )
        .await?;
        match target {
            Target::One(rules) => {
                self.capped_availability(org, &rules, query.from, query.to)
                    .await
            }
            Target::Team(team, which) => {
                let found = team
                    .availability(&self.db, org, &which, query.from, query.to)
                    .await?;
                let mut slots = found.slots;
                let next_from = slots.get(MAX_SLOTS).map(|s| s.start);
                slots.truncate(MAX_SLOTS);
                Ok(AvailabilityAnswer {
                    calendar_zone: team.schedules[which[0]].zone,
                    hosts: slots
                        .iter()
                        .map(|s| s.free.iter().map(|i| team.calendars[*i]).collect())
                        .collect(),
                    slots: slots
                        .into_iter()
                        .map(|s| Slot {
                            start: s.start,
                            end: s.end,
                        })
                        .collect(),
                    reason: found.reason,
                    next_from,
                })
            }
        }
    }

    /// Free slots of `duration` on a calendar in `[from, to)`, for a dialect without event
    /// types: the calendar's schedule with `rules_without_event_type`, the same window limit
    /// and cap as `availability` (errors name `from` and `to`).
    pub async fn calendar_availability(
        &self,
        org: OrgId,
        calendar: CalendarId,
        duration: Duration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AvailabilityAnswer, ServiceError> {
        if to <= from {
            return Err(Invalid::one("to", "must be after from").into());
        }
        if to - from > MAX_WINDOW {
            return Err(Invalid::one("to", "the window is at most 62 days").into());
        }
        let calendar = calendar_of(&self.db, org, calendar).await?;
        let rules = Rules::with(&calendar, rules_without_event_type(duration))?;
        self.capped_availability(org, &rules, from, to).await
    }

    /// At most `MAX_SLOTS` free slots, with where to continue when there were more.
    async fn capped_availability(
        &self,
        org: OrgId,
        rules: &Rules,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AvailabilityAnswer, ServiceError> {
        let found = rules.availability(&self.db, org, from, to, None).await?;
        let mut slots = found.slots;
        let next_from = slots.get(MAX_SLOTS).map(|s| s.start);
        slots.truncate(MAX_SLOTS);
        Ok(AvailabilityAnswer {
            calendar_zone: rules.schedule.zone,
            hosts: vec![vec![rules.calendar]; slots.len()],
            slots,
            reason: found.reason,
            next_from,
        })
    }
}

/// A window of free slots to look up.
pub struct AvailabilityQuery {
    /// Required unless the event type is a team's (then it narrows to that host) or bound to
    /// one calendar.
    pub calendar: Option<CalendarId>,
    pub event_type: EventTypeId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Free slots, and why there are none.
pub struct AvailabilityAnswer {
    /// The calendar's zone (a team's: the first host's asked about), for callers that name none.
    pub calendar_zone: Zone,
    pub slots: Vec<Slot>,
    /// The calendars free for each slot: for a round-robin type the hosts free, for a
    /// collective one every host, else the one calendar.
    pub hosts: Vec<Vec<CalendarId>>,
    pub reason: Option<Reason>,
    /// Set when more than `MAX_SLOTS` were free: the start of the first one left out.
    pub next_from: Option<DateTime<Utc>>,
}
