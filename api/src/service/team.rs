//! Team event types: round-robin (one free host takes each booking) and collective (every host
//! takes it together), under the guarantee one calendar has.
//!
//! The guarantee: a team write first takes the row locks of every calendar it may write, in id
//! order (`repo::calendars::lock_all`), then reads their bookings and holds, then writes. Every
//! other writer of a calendar takes that calendar's lock before anything else (one lock, never
//! waiting while holding it), so what a team write read cannot change before it commits, and
//! two team writes never wait on each other in a cycle. On PostgreSQL each row still goes
//! through the calendar's exclusion constraint; SQLite has one writer. So concurrent bookings
//! of one slot with K free hosts give exactly min(N, K) bookings on distinct hosts.
//!
//! Round-robin picks, among the hosts free for the time, the highest priority, then the fewest
//! bookings of the type made in the last `FAIRNESS_WINDOW` relative to the host's weight, then
//! the higher weight, then the host listed first (`domain::team::ranking`).
//!
//! A collective appointment is one event row per host, all written in one transaction, each
//! listing the whole group (`team_hosts`): a change or cancellation of any of them is made to
//! all, all or nothing.

use chrono::{DateTime, Duration, Utc};
use entity::events::Model;
use serde::{Deserialize, Serialize};

use super::events::{BookingRequest, holds_time, new_event};
use super::rules::Refused;
use super::{Refusal, Render, Service, ServiceError};
use crate::db::is_exclusion_violation;
use crate::domain::booking::Block;
use crate::domain::ids::{CalendarId, EventId, OrgId};
use crate::domain::schedule::Schedule;
use crate::domain::slots::{BlockIndex, Reason, Slot, SlotRules};
use crate::domain::team::{self, Assignment, Host, HostTimes, Need};
use crate::domain::time;
use crate::domain::violations::Invalid;
use crate::repo::{self, idempotency};

/// How far back round-robin counts a host's bookings of the type (by when they were made).
pub const FAIRNESS_WINDOW: Duration = Duration::days(30);

/// A team event type with its hosts' calendars, read together.
pub(crate) struct Team {
    pub event_type: entity::event_types::Model,
    pub assignment: Assignment,
    pub hosts: Vec<Host>,
    /// The hosts' calendars, in the type's order.
    pub calendars: Vec<CalendarId>,
    pub schedules: Vec<Schedule>,
    pub slot: SlotRules,
}

/// One row of a collective appointment, as every row of the group lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    pub calendar_id: CalendarId,
    pub event_id: EventId,
}

/// The rows of a collective appointment an event belongs to (`None` for any other event).
pub fn group_of(event: &Model) -> Result<Option<Vec<GroupMember>>, sea_orm::DbErr> {
    event
        .team_hosts
        .as_ref()
        .map(|json| {
            serde_json::from_value(json.clone()).map_err(|e| {
                sea_orm::DbErr::Custom(format!(
                    "event {}: stored team hosts unreadable: {e}",
                    event.id.0
                ))
            })
        })
        .transpose()
}

/// An event type's team, or `None` for a `single` type.
pub(crate) async fn team_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    org: OrgId,
    event_type: &entity::event_types::Model,
) -> Result<Option<Team>, ServiceError> {
    let (assignment, hosts) = repo::event_types::team_of(event_type)?;
    if !assignment.is_team() {
        return Ok(None);
    }
    let calendars: Vec<CalendarId> = hosts.iter().map(|h| CalendarId(h.calendar_id)).collect();
    let found = repo::calendars::get_many(db, org, &calendars).await?;
    let mut schedules = Vec::with_capacity(calendars.len());
    for id in &calendars {
        // Calendars are never deleted, and hosts are checked to exist when set.
        let calendar = found.iter().find(|c| c.id == *id).ok_or_else(|| {
            ServiceError::Storage(sea_orm::DbErr::Custom(format!(
                "event type {}: host calendar {} is missing",
                event_type.id.0, id.0
            )))
        })?;
        schedules.push(repo::calendars::schedule_of(calendar).map_err(|e| {
            ServiceError::Storage(sea_orm::DbErr::Custom(format!(
                "stored working hours unreadable: {e}"
            )))
        })?);
    }
    Ok(Some(Team {
        slot: repo::event_types::rules_of(event_type),
        event_type: event_type.clone(),
        assignment,
        hosts,
        calendars,
        schedules,
    }))
}

impl Team {
    pub fn need(&self) -> Need {
        match self.assignment {
            Assignment::Collective => Need::All,
            _ => Need::Any,
        }
    }

    /// The host a request names by its calendar (field `field`), or every host.
    pub fn hosts_named(
        &self,
        calendar: Option<CalendarId>,
        field: &str,
    ) -> Result<Vec<usize>, Invalid> {
        match calendar {
            None => Ok((0..self.hosts.len()).collect()),
            Some(calendar) => match self.calendars.iter().position(|c| *c == calendar) {
                Some(i) => Ok(vec![i]),
                None => Err(Invalid::one(
                    field,
                    "is not a host of this event type (leave it out to let Quando choose)",
                )),
            },
        }
    }

    /// The block a booking of `[start, end)` holds on each host's calendar.
    pub fn block(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Block {
        Block {
            start: start - self.slot.buffer_before,
            end: end + self.slot.buffer_after,
        }
    }

    /// The busy blocks (opaque bookings and live holds) of the hosts `which` that overlap
    /// `[from, to)`, one index per host in `which`'s order, leaving out the events `except`.
    pub async fn busy<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        org: OrgId,
        which: &[usize],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: &[EventId],
    ) -> Result<Vec<BlockIndex>, sea_orm::DbErr> {
        let calendars: Vec<CalendarId> = which.iter().map(|i| self.calendars[*i]).collect();
        let mut per_host: Vec<Vec<Block>> = vec![Vec::new(); which.len()];
        let events = repo::events::blocks_between(db, org, &calendars, from, to, except).await?;
        let holds =
            repo::holds::live_blocks_between(db, org, &calendars, from, to, time::now()).await?;
        for (calendar, block) in events.into_iter().chain(holds) {
            if let Some(k) = calendars.iter().position(|c| *c == calendar) {
                per_host[k].push(block);
            }
        }
        Ok(per_host.into_iter().map(BlockIndex::new).collect())
    }

    /// The hosts `which` as the engine sees them: each one's schedule with its busy blocks.
    fn views<'a>(&'a self, which: &[usize], busy: &'a [BlockIndex]) -> Vec<HostTimes<'a>> {
        which
            .iter()
            .zip(busy)
            .map(|(i, blocks)| HostTimes {
                schedule: &self.schedules[*i],
                blocks,
            })
            .collect()
    }

    /// Free slots in `[from, to)` of the hosts `which` (one host: that host's own), with the
    /// hosts free for each.
    pub async fn availability<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        org: OrgId,
        which: &[usize],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<team::TeamAvailability, sea_orm::DbErr> {
        let reach_from = (from - self.slot.buffer_before).max(time::earliest());
        let reach_to = (to + self.slot.duration + self.slot.buffer_after).min(time::latest());
        let busy = self.busy(db, org, which, reach_from, reach_to, &[]).await?;
        let views = self.views(which, &busy);
        let mut found = team::availability(&views, &self.slot, self.need(), time::now(), from, to);
        // Back from positions in `which` to host indices.
        for slot in &mut found.slots {
            for k in &mut slot.free {
                *k = which[*k];
            }
        }
        Ok(found)
    }

    /// The hosts that take `[start, end)`, read inside the write transaction after the locks:
    /// for round-robin the best free one by `domain::team::ranking`; for collective all of
    /// `which`; or the reason they cannot. `lenient` (forced, or a live hold of the caller)
    /// checks the overlap rule only; `except`: events that do not count (a reschedule's own).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn assign<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        org: OrgId,
        which: &[usize],
        lenient: bool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: &[EventId],
    ) -> Result<Result<Vec<usize>, Reason>, sea_orm::DbErr> {
        // Which of `which` can take the time, read after the locks; `lenient` (forced, or a
        // live hold of the caller) checks the overlap rule only.
        let block = self.block(start, end);
        let busy = self
            .busy(txn, org, which, block.start, block.end, except)
            .await?;
        let free: Vec<usize> = if lenient {
            which
                .iter()
                .zip(&busy)
                .filter(|(_, blocks)| !blocks.overlaps(block))
                .map(|(i, _)| *i)
                .collect()
        } else {
            let views = self.views(which, &busy);
            match team::free_hosts(&views, &self.slot, time::now(), start, end) {
                Ok(free) => free.into_iter().map(|k| which[k]).collect(),
                Err(reason) => return Ok(Err(reason)),
            }
        };
        if free.is_empty() {
            return Ok(Err(Reason::Conflict));
        }
        if self.assignment == Assignment::Collective {
            return Ok(if free.len() == which.len() {
                Ok(which.to_vec())
            } else {
                Err(Reason::Conflict)
            });
        }
        let since = time::now() - FAIRNESS_WINDOW;
        let counted = repo::events::type_counts_since(txn, org, self.event_type.id, since).await?;
        let counts: Vec<u64> = self
            .calendars
            .iter()
            .map(|c| {
                counted
                    .iter()
                    .find(|(calendar, _)| calendar == c)
                    .map_or(0, |(_, n)| (*n).max(0) as u64)
            })
            .collect();
        Ok(team::ranking(&self.hosts, &counts)
            .into_iter()
            .find(|i| free.contains(i))
            .map(|i| vec![i])
            .ok_or(Reason::Conflict))
    }

    /// The first free slots at or after `after` (not before now), up to 62 days ahead.
    pub async fn next_slots<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        org: OrgId,
        which: &[usize],
        after: DateTime<Utc>,
    ) -> Result<Vec<Slot>, sea_orm::DbErr> {
        use super::rules::{MAX_WINDOW, NEXT_SLOTS};
        let mut from = after.max(time::now());
        let horizon = (from + MAX_WINDOW).min(time::latest());
        let mut found = Vec::new();
        while found.len() < NEXT_SLOTS && from < horizon {
            let to = (from + Duration::days(7)).min(horizon);
            let page = self.availability(db, org, which, from, to).await?;
            found.extend(
                page.slots
                    .into_iter()
                    .take(NEXT_SLOTS - found.len())
                    .map(|s| Slot {
                        start: s.start,
                        end: s.end,
                    }),
            );
            from = to;
        }
        Ok(found)
    }
}

impl Service {
    /// The refusal of a team write, with the team's next free slots (never another customer's
    /// booking: several calendars were looked at).
    pub(super) async fn refuse_team(
        &self,
        org: OrgId,
        team: &Team,
        which: &[usize],
        refused: Refused,
    ) -> ServiceError {
        self.metrics.booking_refused(refused.reason.as_str());
        let after = match refused.reason {
            Reason::BeyondMaxAdvance => time::now(),
            _ => refused.requested_start,
        };
        match team.next_slots(&self.db, org, which, after).await {
            Ok(next_slots) => ServiceError::Refused(Box::new(Refusal {
                reason: refused.reason,
                conflicting: None,
                next_slots,
                zone: refused.zone,
                instance: None,
            })),
            Err(err) => err.into(),
        }
    }

    /// Books a team event type: on the best free host (round-robin) or on every host at once
    /// (collective). `which`: the hosts the request allows (one when it named a calendar, or
    /// the calendar of its hold).
    pub(super) async fn book_team(
        &self,
        org: OrgId,
        team: Team,
        which: Vec<usize>,
        req: BookingRequest,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        if req.all_day.is_some() {
            return Err(Invalid::one(
                "allDay",
                "a team event type books timed appointments, not whole days",
            )
            .into());
        }
        let block = team.block(req.start, req.end);
        block
            .check_storable()
            .map_err(|(field, message)| Invalid::one(field, message))?;
        let refused = |reason| Refused {
            reason,
            conflicting: None,
            requested_start: req.start,
            except: None,
            zone: req.zone,
        };
        let (queued, txn) = repo::begin_booking(&self.writer).await?;
        let (which, held) = match req.hold {
            Some(claim) => {
                let claimed = super::holds::claim_team(
                    &txn,
                    org,
                    claim,
                    &team,
                    req.calendar,
                    req.start,
                    req.end,
                )
                .await?;
                (claimed.hosts, claimed.live)
            }
            None => (which, false),
        };
        let calendars: Vec<CalendarId> = which.iter().map(|i| team.calendars[*i]).collect();
        repo::calendars::lock_all(&txn, org, &calendars).await?;
        let lenient = req.force || held;
        let hosts = if holds_time(req.status) {
            match team
                .assign(&txn, org, &which, lenient, req.start, req.end, &[])
                .await?
            {
                Ok(hosts) => hosts,
                Err(reason) => {
                    queued.abandon(txn).await?;
                    return Err(self.refuse_team(org, &team, &which, refused(reason)).await);
                }
            }
        } else {
            // Created cancelled (history): holds no time, so no host is taken; the first one
            // the request allows keeps the record.
            which[..1].to_vec()
        };
        let members: Vec<GroupMember> = hosts
            .iter()
            .map(|i| GroupMember {
                calendar_id: team.calendars[*i],
                event_id: EventId::generate(),
            })
            .collect();
        let group = (team.assignment == Assignment::Collective)
            .then(|| serde_json::to_value(&members).expect("group serialises"));
        // In calendar order: the order the locks were taken in.
        let mut order: Vec<&GroupMember> = members.iter().collect();
        order.sort_by_key(|m| m.calendar_id);
        let mut first = None;
        for member in order {
            let mut row = new_event(
                &req,
                member.calendar_id,
                req.start,
                req.end,
                block,
                None,
                None,
            );
            row.id = member.event_id;
            row.team_hosts = group.clone();
            match repo::events::insert(&txn, org, row).await {
                Ok(model) => {
                    if model.id == members[0].event_id {
                        first = Some(model);
                    }
                }
                Err(err) if is_exclusion_violation(&err) => {
                    // Nothing should get here past the locks; if anything does, the
                    // constraint kept the calendars right and the caller hears a conflict.
                    queued.abandon(txn).await?;
                    return Err(self
                        .refuse_team(org, &team, &which, refused(Reason::Conflict))
                        .await);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let model = first.expect("the organizer's row was written");
        idempotency::seal(&txn, &model, render).await?;
        queued.commit(txn).await?;
        self.event_written();
        self.metrics.booking_created();
        Ok(model)
    }
}
