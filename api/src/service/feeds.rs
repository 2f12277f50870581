//! Calendar feeds: a secret URL per calendar that calendar apps subscribe to, serving the
//! calendar's events as iCalendar (RFC 5545) through `domain::ical`'s writers.
//!
//! - The token is the feed's only credential: created once (shown once), stored only as its
//!   SHA-256, replaced by a rotation (the old URL is gone at once).
//! - The feed holds every event whose time meets the window (`domain::feeds::Window`: 90 days
//!   back to 365 days ahead of today), cancelled ones included and marked, and each recurring
//!   series with an instance there once, as its rule (`RRULE`, `RDATE`, `EXDATE`) with the
//!   instances changed on their own as `RECURRENCE-ID` components.
//! - What the rule is written as is expanded here with the same expander the series uses, from
//!   the same first occurrence, and compared with the instances Quando holds, so a client that
//!   expands the feed gets exactly Quando's instances.
//! - Every stamp comes from the rows (`updated_at`), never from the clock: an unchanged calendar
//!   gives the same bytes, so its ETag matches.
//!
//! Never imports poem or a dialect.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::calendar_feeds::Model as FeedModel;
use entity::events::Model as Event;
use sha2::{Digest, Sha256};

use super::events::Status;
use super::series::{Series, stored_first, stored_recurrence};
use super::{Resource, Service, ServiceError};
use crate::domain::details::Transparency;
use crate::domain::feeds::{FeedToken, Window};
use crate::domain::ical::{self, FeedEvent, FeedStatus, When};
use crate::domain::ids::{CalendarId, OrgId, SeriesId};
use crate::domain::recurrence::{MAX_INSTANCES, Recurrence};
use crate::domain::time::{self, Zone};
use crate::repo::{self, begin_write};

/// The most events one feed holds; a calendar with more in its window gets the earliest ones
/// (and a warning in the log).
pub const MAX_FEED_EVENTS: u64 = 10_000;

/// A calendar's feed as its owner sees it: the token only when it was just made.
#[derive(Debug)]
pub struct FeedGrant {
    pub feed: FeedModel,
    /// The new token: shown once, never again (Quando keeps only its hash).
    pub token: Option<FeedToken>,
}

/// A feed's body and its strong ETag.
#[derive(Debug)]
pub struct FeedDocument {
    pub ics: String,
    /// `"<32 hex>"`: the first 128 bits of the body's SHA-256, quoted.
    pub etag: String,
}

impl Service {
    /// The calendar's feed; made (with a new token) when the calendar has none.
    pub async fn calendar_feed(
        &self,
        org: OrgId,
        calendar: CalendarId,
    ) -> Result<FeedGrant, ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        repo::calendars::get(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        if let Some(feed) = repo::feeds::get(&txn, org, calendar).await? {
            return Ok(FeedGrant { feed, token: None });
        }
        let token = FeedToken::generate();
        match repo::feeds::insert(&txn, org, calendar, token.hash(), time::now()).await {
            Ok(feed) => {
                txn.commit().await?;
                drop(queued);
                Ok(FeedGrant {
                    feed,
                    token: Some(token),
                })
            }
            Err(err)
                if matches!(
                    err.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                // Another request made the feed meanwhile (PostgreSQL does not serialise the
                // check and the insert): that feed stands, and its token was shown there.
                drop((txn, queued));
                let feed = repo::feeds::get(&self.db, org, calendar)
                    .await?
                    .ok_or(ServiceError::NotFound(Resource::Calendar))?;
                Ok(FeedGrant { feed, token: None })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Gives the calendar's feed a new token (making the feed when it has none); the old token
    /// stops working with the commit.
    pub async fn rotate_calendar_feed(
        &self,
        org: OrgId,
        calendar: CalendarId,
    ) -> Result<FeedGrant, ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        repo::calendars::get(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        let token = FeedToken::generate();
        let now = time::now();
        let feed = match repo::feeds::get(&txn, org, calendar).await? {
            Some(current) => repo::feeds::replace_token(&txn, current, token.hash(), now).await?,
            None => repo::feeds::insert(&txn, org, calendar, token.hash(), now).await?,
        };
        txn.commit().await?;
        drop(queued);
        Ok(FeedGrant {
            feed,
            token: Some(token),
        })
    }

    /// The feed a token opens. A malformed, unknown or rotated token is `NotFound(Feed)`, the
    /// same answer for each.
    pub async fn feed_document(&self, token: &str) -> Result<FeedDocument, ServiceError> {
        let not_found = || ServiceError::NotFound(Resource::Feed);
        let token = FeedToken::parse(token).ok_or_else(not_found)?;
        let feed = repo::feeds::by_token_hash(&self.db, &token.hash())
            .await?
            .ok_or_else(not_found)?;
        let org = feed.org_id;
        let calendar = repo::calendars::get(&self.db, org, feed.calendar_id)
            .await?
            .ok_or_else(not_found)?;
        let window = Window::around(time::now());
        let (events, more) = repo::events::of_calendar_meeting(
            &self.db,
            org,
            calendar.id,
            window.from,
            window.to,
            MAX_FEED_EVENTS,
        )
        .await?;
        if more {
            tracing::warn!(%org, calendar = %calendar.id, limit = MAX_FEED_EVENTS,
                "a calendar feed holds more events than it may serve; the latest are left out");
        }
        let mut singles = Vec::new();
        let mut by_series: BTreeMap<SeriesId, Vec<Event>> = BTreeMap::new();
        for e in events {
            match e.series_id {
                Some(sid) => by_series.entry(sid).or_default().push(e),
                None => singles.push(e),
            }
        }
        let mut series = Vec::new();
        for (sid, in_window) in by_series {
            match repo::series::get(&self.db, org, sid).await? {
                Some(s) => series.push(Series {
                    series: s,
                    instances: repo::events::of_series(&self.db, org, sid).await?,
                }),
                // An instance whose series is gone is shown as the event it is.
                None => singles.extend(in_window),
            }
        }
        let ics = write_feed(&calendar.name, window, &singles, &series);
        let etag = format!(
            "\"{}\"",
            Sha256::digest(ics.as_bytes())
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(FeedDocument { ics, etag })
    }
}

/// The whole feed: the calendar, a `VTIMEZONE` per zone its times are written in (covering the
/// window and every instant written), then the events and series.
pub fn write_feed(name: &str, window: Window, singles: &[Event], series: &[Series]) -> String {
    let mut events: Vec<FeedEvent> = singles
        .iter()
        .map(|e| feed_event(e, repo::events::ical_uid_of(e)))
        .collect();
    for s in series {
        events.extend(series_events(s, window));
    }
    // The span of instants written in each zone (UTC times and dates need no VTIMEZONE).
    let mut spans: BTreeMap<&'static str, (Zone, DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for e in &events {
        let When::Timed { start, end } = e.when else {
            continue;
        };
        if e.zone == Zone::UTC {
            continue;
        }
        let instants = [start, end]
            .into_iter()
            .chain(e.exdates.iter().copied())
            .chain(e.rdates.iter().copied())
            .chain(e.recurrence_id);
        let span = spans
            .entry(e.zone.name())
            .or_insert((e.zone, window.from, window.to));
        for t in instants {
            span.1 = span.1.min(t);
            span.2 = span.2.max(t);
        }
    }
    let mut out = String::new();
    ical::push_calendar_start(&mut out, name);
    for (zone, from, to) in spans.into_values() {
        ical::push_vtimezone(
            &mut out,
            zone,
            from - Duration::days(1),
            to + Duration::days(1),
        );
    }
    for e in &events {
        ical::push_vevent(&mut out, e);
    }
    ical::push_calendar_end(&mut out);
    out
}

fn feed_status(status: Status) -> FeedStatus {
    match status {
        Status::Confirmed => FeedStatus::Confirmed,
        Status::Tentative => FeedStatus::Tentative,
        Status::Cancelled => FeedStatus::Cancelled,
    }
}

fn zone_of(name: &str) -> Zone {
    Zone::parse(name).unwrap_or(Zone::UTC)
}

/// One event as its own `VEVENT` (a single event, or an instance with `uid` its series').
fn feed_event(e: &Event, uid: String) -> FeedEvent {
    let when = match (e.all_day, e.start_date, e.end_date) {
        (true, Some(start), Some(end)) => When::AllDay { start, end },
        _ => When::Timed {
            start: e.start_time,
            end: e.end_time,
        },
    };
    FeedEvent {
        uid,
        sequence: e.sequence,
        stamp: e.updated_at,
        created: e.created_at,
        last_modified: e.updated_at,
        zone: zone_of(&e.timezone),
        when,
        // A booking made without a title shows its customer, as staff would name it.
        summary: e.title.clone().or_else(|| e.customer_name.clone()),
        description: e.description.clone().or_else(|| e.notes.clone()),
        location: e.location.clone(),
        attendees: repo::events::attendees_of(e),
        status: feed_status(e.status),
        transparent: Transparency::from_stored(&e.transparency) == Transparency::Transparent,
        rule: None,
        rdates: Vec::new(),
        exdates: Vec::new(),
        recurrence_id: None,
    }
}

/// The `RRULE` value among a series' lines (the first, when a client gave several).
fn rule_of(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|line| {
        let (head, value) = line.split_once(':')?;
        head.trim()
            .eq_ignore_ascii_case("RRULE")
            .then(|| value.trim().to_ascii_uppercase())
    })
}

/// A rule start as the feed writes it: the instant itself, or for an all-day series (whose
/// rule runs on UTC midnights) the start of that date in `zone`, so the written date is right.
fn rule_instant(all_day: bool, zone: Zone, t: DateTime<Utc>) -> DateTime<Utc> {
    if all_day {
        zone.start_of_day(t.date_naive())
    } else {
        t
    }
}

/// A recurring series: its master (rule, extra dates, dates it no longer has) and one
/// `RECURRENCE-ID` component per instance that differs from what the rule makes.
fn series_events(whole: &Series, window: Window) -> Vec<FeedEvent> {
    let s = &whole.series;
    let Some(template) = whole.template() else {
        return Vec::new();
    };
    let uid = repo::series::ical_uid_of(s);
    let zone = zone_of(&s.timezone);
    let first = stored_first(s, zone);
    let rule = rule_of(&repo::series::lines_of(s));
    let cancelled = s.status == repo::series::CANCELLED;
    let mut master = feed_event(template, uid.clone());
    master.zone = zone;
    master.when = match (s.all_day, s.start_date, s.end_date) {
        (true, Some(start), Some(end)) => When::AllDay { start, end },
        _ => When::Timed {
            start: s.first_start,
            end: s.first_end,
        },
    };
    master.created = s.created_at;
    // Any change to the series or an instance is a change to the master's set.
    let latest = whole
        .instances
        .iter()
        .map(|e| e.updated_at)
        .fold(s.updated_at, DateTime::max);
    master.stamp = latest;
    master.last_modified = latest;
    master.sequence = whole
        .instances
        .iter()
        .map(|e| e.sequence)
        .fold(template.sequence, i32::max);
    master.rule = rule.clone();
    if cancelled {
        master.status = FeedStatus::Cancelled;
        return vec![master];
    }

    // What a client makes of the rule written, up to where Quando has written instances (past
    // that, the rule's instances are the ones Quando will write).
    let until = s.expanded_until.min(window.to);
    let made: Option<Recurrence> = rule
        .as_ref()
        .and_then(|r| Recurrence::parse(&[format!("RRULE:{r}")], zone, first, "recurrence").ok());
    let rule_starts: Vec<DateTime<Utc>> = match &made {
        Some(r) => r
            .between(s.first_start, until, MAX_INSTANCES * 10)
            .0
            .into_iter()
            .map(|o| o.original_start)
            .collect(),
        // Without a rule the first occurrence (DTSTART) is the one instance it makes.
        None => vec![s.first_start],
    };
    // Where the series puts an instance by its rule start (its length, in its zone).
    let shape = stored_recurrence(s).ok();
    let made_set: HashSet<DateTime<Utc>> = rule_starts.iter().copied().collect();
    let rows: HashMap<DateTime<Utc>, &Event> = whole
        .instances
        .iter()
        .filter_map(|e| e.original_start.map(|t| (t, e)))
        .collect();
    let live = |e: &&Event| e.status != Status::Cancelled;

    master.exdates = rule_starts
        .iter()
        .filter(|t| !rows.get(t).is_some_and(live))
        .map(|t| rule_instant(s.all_day, zone, *t))
        .collect();
    let mut extra: Vec<DateTime<Utc>> = rows
        .iter()
        .filter(|(t, e)| live(e) && !made_set.contains(t) && **t < until)
        .map(|(t, _)| *t)
        .collect();
    extra.sort();
    master.rdates = extra
        .iter()
        .map(|t| rule_instant(s.all_day, zone, *t))
        .collect();

    let mut out = vec![master];
    let mut overrides: Vec<&Event> = whole
        .instances
        .iter()
        .filter(|e| e.status != Status::Cancelled)
        .filter(|e| {
            let Some(original) = e.original_start else {
                return false;
            };
            let in_set = made_set.contains(&original) || extra.contains(&original);
            let shown = in_set || window.meets(e.start_time, e.end_time);
            let as_made = shape.as_ref().map(|r| r.occurrence_at(original));
            let differs = e.series_exception
                || as_made.is_none_or(|o| (o.start, o.end) != (e.start_time, e.end_time));
            shown && differs
        })
        .collect();
    overrides.sort_by_key(|e| (e.original_start, e.id));
    for e in overrides {
        let mut one = feed_event(e, uid.clone());
        one.recurrence_id = e
            .original_start
            .map(|t| rule_instant(s.all_day, one.zone, t));
        out.push(one);
    }
    // Instances without a rule start (none are written so) still show, as themselves.
    out.extend(
        whole
            .instances
            .iter()
            .filter(|e| e.original_start.is_none() && window.meets(e.start_time, e.end_time))
            .map(|e| feed_event(e, repo::events::ical_uid_of(e))),
    );
    out
}
