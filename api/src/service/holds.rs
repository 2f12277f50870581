//! Slot holds: a time kept for a few minutes while a website visitor types their name or a
//! caller on the phone confirms. A hold is made under every booking rule (working hours,
//! overrides, notice, advance, the overlap with bookings and live holds), blocks its time for
//! everyone else while live, and blocks nothing from the instant it expires (no sweeper
//! involved: see `repo::holds`). A booking that names it (`BookingRequest::hold`) turns it into
//! the appointment, with the key that made it only.

use chrono::{DateTime, Duration, Utc};
use entity::holds::Model;

use super::rules::{Refused, Target, target_of};
use super::team::Team;
use super::{Render, Resource, Service, ServiceError};
use crate::domain::booking;
use crate::domain::ids::{ApiKeyId, CalendarId, EventTypeId, HoldId, OrgId};
use crate::domain::slots::{self, Reason};
use crate::domain::time::{self, Zone};
use crate::domain::violations::{Invalid, Violations};
use crate::repo::holds::NewHold;
use crate::repo::{self, begin_write, idempotency};

/// How long a hold lasts when the request does not say.
pub const DEFAULT_TTL: Duration = Duration::minutes(10);
/// The longest a hold may last.
pub const MAX_TTL: Duration = Duration::hours(1);
/// A hold's time to live from the seconds a caller asked for (`None`: the default): 1 s to
/// `MAX_TTL`. The one rule every dialect parses `ttlSeconds` with.
pub fn ttl_of(seconds: Option<i64>) -> Result<Duration, &'static str> {
    match seconds {
        None => Ok(DEFAULT_TTL),
        Some(n) => Duration::try_seconds(n)
            .filter(|ttl| *ttl >= Duration::seconds(1) && *ttl <= MAX_TTL)
            .ok_or("must be 1 to 3600 seconds"),
    }
}

/// A hold to make, parsed.
#[derive(Clone, Debug)]
pub struct HoldRequest {
    /// As for a booking: optional for a team event type (then Quando chooses the host, or
    /// holds every host of a collective type) or a type bound to one calendar.
    pub calendar: Option<CalendarId>,
    pub event_type: EventTypeId,
    pub start: DateTime<Utc>,
    /// `None`: the event type's duration.
    pub end: Option<DateTime<Utc>>,
    /// The zone of the caller's local times (for a refusal's next slots).
    pub zone: Zone,
    /// 1 s to `MAX_TTL` (`ttl_of`).
    pub ttl: Duration,
    /// The key making it: only that key books it.
    pub key: ApiKeyId,
}

/// A booking's claim on a hold: the hold, and the key that books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldClaim {
    pub id: HoldId,
    pub key: ApiKeyId,
}

/// A hold as the booking that claims it finds it.
pub(super) enum Claimed {
    /// Live: its time is the booking's, kept under the rules it was made under.
    Live,
    /// Expired: the booking goes ahead only if the time is still free and bookable now.
    Expired,
}

impl Service {
    /// Holds a slot unless a rule refuses it (409 with the reason and the next free slots).
    pub async fn hold(
        &self,
        org: OrgId,
        req: HoldRequest,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let rules = match target_of(
            &self.db,
            org,
            req.calendar,
            Some(req.event_type),
            Duration::zero(),
        )
        .await?
        {
            Target::One(rules) => rules,
            Target::Team(team, which) => {
                return self.hold_team(org, *team, which, req, render).await;
            }
        };
        let calendar = rules.calendar;
        let end = req.end.unwrap_or(req.start + rules.slot.duration);
        booking::check_length(req.start, end).map_err(|e| Invalid::one("endTime", e))?;
        rules.check_storable(req.start, end)?;
        let block = rules.block(req.start, end);
        let refused = |reason, conflicting| Refused {
            reason,
            conflicting,
            requested_start: req.start,
            except: None,
            zone: req.zone,
        };
        let (queued, txn) = begin_write(&self.writer).await?;
        // The calendar's lock first: every look below then sees every committed hold and
        // booking of this calendar, and none can commit before this hold does.
        if !repo::holds::lock_calendar(&txn, org, calendar).await? {
            return Err(ServiceError::NotFound(Resource::Calendar));
        }
        let now = time::now();
        let obstacle = match slots::check_booking(&rules.schedule, &rules.slot, now, req.start, end)
        {
            Err(reason) => Some((reason, None)),
            Ok(()) => match repo::events::find_conflict(&txn, org, calendar, block, None).await? {
                Some(event) => Some((Reason::Conflict, Some(event))),
                None => repo::holds::live_conflict(&txn, org, calendar, block, now)
                    .await?
                    .map(|_| (Reason::Conflict, None)),
            },
        };
        if let Some((reason, conflicting)) = obstacle {
            drop((txn, queued));
            return Err(self.refuse(org, &rules, refused(reason, conflicting)).await);
        }
        let hold = repo::holds::insert(
            &txn,
            org,
            NewHold {
                calendar,
                event_type: req.event_type,
                key: req.key,
                start: req.start,
                end,
                block,
                expires_at: now + req.ttl,
                group: None,
            },
        )
        .await?;
        idempotency::seal(&txn, &hold, render).await?;
        txn.commit().await?;
        drop(queued);
        Ok(hold)
    }

    /// Holds a team event type's time: on the host a round-robin booking would get now, or on
    /// every host of a collective type (one row each, the others naming the first, whose id
    /// the caller gets). Under the team's locks, like a team booking (`service::team`).
    async fn hold_team(
        &self,
        org: OrgId,
        team: Team,
        which: Vec<usize>,
        req: HoldRequest,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let end = req.end.unwrap_or(req.start + team.slot.duration);
        booking::check_length(req.start, end).map_err(|e| Invalid::one("endTime", e))?;
        let block = team.block(req.start, end);
        block
            .check_storable()
            .map_err(|(field, message)| Invalid::one(field, message))?;
        let (queued, txn) = begin_write(&self.writer).await?;
        let calendars: Vec<CalendarId> = which.iter().map(|i| team.calendars[*i]).collect();
        repo::calendars::lock_all(&txn, org, &calendars).await?;
        let hosts = match team
            .assign(&txn, org, &which, false, req.start, end, &[])
            .await?
        {
            Ok(hosts) => hosts,
            Err(reason) => {
                drop((txn, queued));
                let refused = Refused {
                    reason,
                    conflicting: None,
                    requested_start: req.start,
                    except: None,
                    zone: req.zone,
                };
                return Err(self.refuse_team(org, &team, &which, refused).await);
            }
        };
        let expires_at = time::now() + req.ttl;
        let mut first: Option<Model> = None;
        for i in hosts {
            let hold = repo::holds::insert(
                &txn,
                org,
                NewHold {
                    calendar: team.calendars[i],
                    event_type: req.event_type,
                    key: req.key,
                    start: req.start,
                    end,
                    block,
                    expires_at,
                    group: first.as_ref().map(|h| h.id),
                },
            )
            .await?;
            first.get_or_insert(hold);
        }
        let hold = first.expect("a team has a host");
        idempotency::seal(&txn, &hold, render).await?;
        txn.commit().await?;
        drop(queued);
        Ok(hold)
    }

    /// Releases a hold: its time is free at once. Only the organization's; with `only_key`
    /// (a publishable key) only that key's own. Releasing an expired hold is fine; one already
    /// released or booked is not found.
    pub async fn release_hold(
        &self,
        org: OrgId,
        id: HoldId,
        only_key: Option<ApiKeyId>,
    ) -> Result<(), ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        let hold = repo::holds::get(&txn, org, id)
            .await?
            .filter(|h| only_key.is_none_or(|k| h.key_id == k))
            // A collective hold is released by the id its maker got, all of it.
            .filter(|h| h.group_id.is_none())
            .ok_or(ServiceError::NotFound(Resource::Hold))?;
        repo::holds::delete(&txn, org, hold.id).await?;
        txn.commit().await?;
        drop(queued);
        Ok(())
    }
}

/// Inside a booking's write transaction: finds the hold it claims (the same key's, for the same
/// calendar, event type and times), and uses it up. Another key's hold, or one released,
/// booked or purged, is not found.
pub(super) async fn claim<C: sea_orm::ConnectionTrait>(
    txn: &C,
    org: OrgId,
    claim: HoldClaim,
    calendar: CalendarId,
    event_type: Option<EventTypeId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Claimed, ServiceError> {
    let hold = claimed_hold(txn, org, claim, Some(calendar), event_type, start, end).await?;
    repo::holds::delete(txn, org, hold.id).await?;
    Ok(if hold.expires_at > time::now() {
        Claimed::Live
    } else {
        Claimed::Expired
    })
}

/// The hold a booking claims: the same key's, named by the id its maker got (not another
/// host's row of a collective hold), for the booking's calendar (when it names one), event type
/// and times; every mismatch named at once. Another key's, or one released, booked or purged,
/// is not found.
async fn claimed_hold<C: sea_orm::ConnectionTrait>(
    txn: &C,
    org: OrgId,
    claim: HoldClaim,
    calendar: Option<CalendarId>,
    event_type: Option<EventTypeId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Model, ServiceError> {
    let hold = repo::holds::get(txn, org, claim.id)
        .await?
        .filter(|h| h.key_id == claim.key && h.group_id.is_none())
        .ok_or(ServiceError::NotFound(Resource::Hold))?;
    let mut wrong = Violations::default();
    if calendar.is_some_and(|c| c != hold.calendar_id) {
        wrong.add("calendarId", "is not the calendar of the hold");
    }
    if Some(hold.event_type_id) != event_type {
        wrong.add("eventTypeId", "is not the event type of the hold");
    }
    if hold.start_time != start {
        wrong.add("startTime", "must equal the hold's startTime");
    }
    if hold.end_time != end {
        wrong.add("endTime", "must equal the hold's endTime");
    }
    wrong.into_result()?;
    Ok(hold)
}

/// A team booking's hold, used up: the hosts it held and whether it was still live.
pub(super) struct TeamClaim {
    pub hosts: Vec<usize>,
    pub live: bool,
}

/// `claim` for a team event type: the hold (and, for a collective one, its rows on the other
/// hosts) decides the hosts; a calendar the booking names must be the hold's. A live hold whose
/// hosts are no longer all the type's leaves the booking to every rule on every host.
pub(super) async fn claim_team<C: sea_orm::ConnectionTrait>(
    txn: &C,
    org: OrgId,
    claim: HoldClaim,
    team: &Team,
    calendar: Option<CalendarId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<TeamClaim, ServiceError> {
    let hold = claimed_hold(
        txn,
        org,
        claim,
        calendar,
        Some(team.event_type.id),
        start,
        end,
    )
    .await?;
    let mut calendars = vec![hold.calendar_id];
    calendars.extend(repo::holds::group_calendars(txn, org, hold.id).await?);
    repo::holds::delete(txn, org, hold.id).await?;
    let mut hosts: Vec<usize> = calendars
        .iter()
        .filter_map(|c| team.calendars.iter().position(|h| h == c))
        .collect();
    hosts.sort_unstable();
    let whole = match team.assignment {
        crate::domain::team::Assignment::Collective => hosts.len() == team.hosts.len(),
        _ => hosts.len() == 1,
    };
    if !whole {
        return Ok(TeamClaim {
            hosts: (0..team.hosts.len()).collect(),
            live: false,
        });
    }
    Ok(TeamClaim {
        hosts,
        live: hold.expires_at > time::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holds_time_to_live_is_one_second_to_an_hour_ten_minutes_unless_asked() {
        assert_eq!(ttl_of(None), Ok(DEFAULT_TTL));
        assert_eq!(ttl_of(Some(1)), Ok(Duration::seconds(1)));
        assert_eq!(ttl_of(Some(3600)), Ok(MAX_TTL));
        for bad in [0, -5, 3601, i64::MAX, i64::MIN] {
            assert!(ttl_of(Some(bad)).is_err(), "{bad} seconds was taken");
        }
    }
}
