//! Recurring events. A series writes every instance up to the horizon in one write transaction,
//! each held to every rule a single booking is (the overlap rule against other events and
//! against the series' own instances); the first instance that cannot be held refuses the whole
//! series, naming where it falls. Instances are events: they show in every list, hold their time
//! in availability and, on PostgreSQL, under the exclusion constraint. The horizon moves forward
//! with time (`extend_due_series`, run by the server's housekeeping).

use chrono::{DateTime, Duration, Utc};
use entity::event_series::Model as SeriesModel;
use entity::events::Model;

use super::events::{Admission, BookingRequest, EventUpdate, holds_time, new_event, rules_for};
use super::rules::{Refused, Rules};
use super::{Render, Resource, Service, ServiceError};
use crate::db::is_exclusion_violation;
use crate::domain::booking::{self, Block};
use crate::domain::details::Transparency;
use crate::domain::ids::{OrgId, SeriesId};
use crate::domain::recurrence::{First, HORIZON_DAYS, MAX_INSTANCES, Occurrence, Recurrence};
use crate::domain::slots::Reason;
use crate::domain::time;
use crate::domain::violations::Invalid;
use crate::repo::events::EventChanges;
use crate::repo::series::{CANCELLED, NewSeries};
use crate::repo::{self, begin_write, idempotency};

/// A new recurring event, parsed.
#[derive(Clone, Debug)]
pub struct SeriesRequest {
    /// The first occurrence: its times and every field each instance gets.
    pub first: BookingRequest,
    pub recurrence: Recurrence,
    /// The id a Google Calendar client chose (unique per calendar).
    pub gcal_id: Option<String>,
    pub ical_uid: Option<String>,
}

/// A series and the instances it holds (in rule order).
#[derive(Clone, Debug)]
pub struct Series {
    pub series: SeriesModel,
    pub instances: Vec<Model>,
}

impl Series {
    /// The instance whose fields the recurring event as a whole shows: the first one changed
    /// only with the series and not cancelled (else the first changed only with the series,
    /// else the first).
    pub fn template(&self) -> Option<&Model> {
        self.instances
            .iter()
            .find(|e| !e.series_exception && e.status != super::events::Status::Cancelled)
            .or_else(|| self.instances.iter().find(|e| !e.series_exception))
            .or_else(|| self.instances.first())
    }
}

/// The recurrence of a stored series, read back in its zone from its first occurrence.
pub fn stored_recurrence(series: &SeriesModel) -> Result<Recurrence, Invalid> {
    let zone = time::Zone::parse(&series.timezone).unwrap_or(time::Zone::UTC);
    let lines = repo::series::lines_of(series);
    Recurrence::parse(&lines, zone, stored_first(series, zone), "recurrence")
}

/// The first occurrence of a stored series as its wall-clock times (or dates).
pub fn stored_first(series: &SeriesModel, zone: time::Zone) -> First {
    match (series.start_date, series.end_date) {
        (Some(start), Some(end)) if series.all_day => {
            First::AllDay(crate::domain::details::AllDay { start, end })
        }
        _ => First::Timed {
            start: series.first_start.with_timezone(&zone.0).naive_local(),
            end: series.first_end.with_timezone(&zone.0).naive_local(),
        },
    }
}

/// The furthest instant a series starting at `first` is written to now.
fn horizon(first: DateTime<Utc>) -> DateTime<Utc> {
    first.max(time::now()) + Duration::days(HORIZON_DAYS)
}

/// The occurrences of `recurrence` from `from` to `until`, refused when there are more than a
/// series may hold.
fn occurrences(
    recurrence: &Recurrence,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Vec<Occurrence>, bool), Invalid> {
    let (list, more) = recurrence.between(from, until, MAX_INSTANCES);
    if more {
        return Err(Invalid::one(
            "recurrence",
            format!(
                "puts more than {MAX_INSTANCES} instances within {HORIZON_DAYS} days; make the rule less frequent or give it an end (COUNT or UNTIL)"
            ),
        ));
    }
    // Whether the rule goes on past the horizon (one more start after it).
    let (after, _) = recurrence.between(until, until + Duration::days(366 * 50), 1);
    Ok((list, !after.is_empty()))
}

impl Service {
    /// Books a recurring event: every instance up to the horizon, all or nothing.
    pub async fn book_series(
        &self,
        org: OrgId,
        req: SeriesRequest,
        render: Render<'_, Series>,
    ) -> Result<Series, ServiceError> {
        let first = req.first;
        let calendar = first
            .calendar
            .ok_or_else(|| Invalid::one("calendarId", "is required"))?;
        booking::check_length(first.start, first.end).map_err(|e| Invalid::one("end", e))?;
        let until = horizon(first.start);
        let (list, goes_on) = occurrences(&req.recurrence, first.start, until)?;
        if list.is_empty() {
            return Err(Invalid::one(
                "recurrence",
                "puts no instance at or after the event's start",
            )
            .into());
        }
        let (queued, txn) = begin_write(&self.writer).await?;
        let rules = rules_for(
            &txn,
            org,
            calendar,
            first.event_type,
            first.end - first.start,
        )
        .await?;
        let rules = whole_days_if(rules, first.all_day.is_some());
        let series_id = SeriesId::generate();
        let opaque = first.details.transparency == Transparency::Opaque;
        let holds = holds_time(first.status);
        let mut previous: Option<(DateTime<Utc>, Block)> = None;
        for o in &list {
            rules.check_storable(o.start, o.end)?;
            let block = rules.block(o.start, o.end);
            // Two instances of the series itself may not overlap either.
            if opaque
                && holds
                && let Some((at, prior)) = previous
                && prior.end > block.start
            {
                drop((txn, queued));
                return Err(Invalid::one(
                    "recurrence",
                    format!(
                        "puts the instance at {} over the one at {}: instances of a series may not overlap",
                        time::format_utc(o.start),
                        time::format_utc(at)
                    ),
                )
                .into());
            }
            previous = Some((o.start, block));
            let admission = Admission {
                start: o.start,
                end: o.end,
                force: first.force,
                all_day: o.all_day.is_some(),
                holds,
                opaque,
                // Each instance is checked, so a refusal names the one in the way.
                look_for_overlap: true,
            };
            if let Some((reason, conflicting)) = admission.obstacle(&txn, org, &rules, None).await?
            {
                drop((txn, queued));
                return Err(self
                    .refuse_instance(org, &rules, &first, o, reason, conflicting)
                    .await);
            }
        }
        let series = repo::series::insert(
            &txn,
            org,
            NewSeries {
                id: series_id,
                calendar_id: calendar,
                recurrence: &req.recurrence,
                first_start: list[0].start,
                first_end: list[0].end,
                expanded_until: until,
                ended: !goes_on,
                gcal_id: req.gcal_id,
                ical_uid: req.ical_uid,
            },
        )
        .await?;
        let mut instances = Vec::with_capacity(list.len());
        for o in &list {
            let block = rules.block(o.start, o.end);
            let new = new_event(
                &first,
                rules.calendar,
                o.start,
                o.end,
                block,
                o.all_day,
                Some((series_id, o.original_start)),
            );
            match repo::events::insert(&txn, org, new).await {
                Ok(model) => instances.push(model),
                Err(err) if is_exclusion_violation(&err) => {
                    // A booking committed between our check and our insert (PostgreSQL checks
                    // are not serialised); the constraint refused this instance.
                    drop((txn, queued));
                    let winner =
                        repo::events::find_conflict(&self.db, org, rules.calendar, block, None)
                            .await?;
                    return Err(self
                        .refuse_instance(org, &rules, &first, o, Reason::Conflict, winner)
                        .await);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let booked = Series { series, instances };
        idempotency::seal(&txn, &booked, render).await?;
        txn.commit().await?;
        drop(queued);
        self.event_written();
        self.metrics.booking_created();
        Ok(booked)
    }

    /// The refusal of a series: why the instance at `o` cannot be held, with the next free
    /// slots after it; `instance` names that instance's start.
    async fn refuse_instance(
        &self,
        org: OrgId,
        rules: &Rules,
        first: &BookingRequest,
        o: &Occurrence,
        reason: Reason,
        conflicting: Option<uuid::Uuid>,
    ) -> ServiceError {
        let mut err = self
            .refuse(
                org,
                rules,
                Refused {
                    reason,
                    conflicting,
                    requested_start: o.start,
                    except: None,
                    zone: first.zone,
                },
            )
            .await;
        if let ServiceError::Refused(refusal) = &mut err {
            refusal.instance = Some(o.start);
        }
        err
    }

    /// A series of the organization with its instances, in rule order.
    pub async fn series(&self, org: OrgId, id: SeriesId) -> Result<Series, ServiceError> {
        let series = repo::series::get(&self.db, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        let instances = repo::events::of_series(&self.db, org, id).await?;
        Ok(Series { series, instances })
    }

    /// Changes every instance of a series that was not changed on its own (its exceptions keep
    /// their own fields). Times are not changed here: see `move_series`.
    pub async fn update_series(
        &self,
        org: OrgId,
        id: SeriesId,
        update: EventUpdate,
        render: Render<'_, Series>,
    ) -> Result<Series, ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        let series = repo::series::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        if series.status == CANCELLED {
            return Err(Invalid::one("status", "this recurring event is cancelled").into());
        }
        let mut instances = Vec::new();
        for current in repo::events::of_series(&txn, org, id).await? {
            if current.series_exception || !holds_time(current.status) {
                instances.push(current);
                continue;
            }
            let changes = field_changes(&update);
            let becomes_opaque = update.transparency == Some(Transparency::Opaque)
                && Transparency::from_stored(&current.transparency) != Transparency::Opaque;
            if becomes_opaque {
                let block = Block {
                    start: current.block_start,
                    end: current.block_end,
                };
                if let Some(other) = repo::events::find_conflict(
                    &txn,
                    org,
                    current.calendar_id,
                    block,
                    Some(current.id),
                )
                .await?
                {
                    drop((txn, queued));
                    let rules = rules_for(
                        &self.db,
                        org,
                        series.calendar_id,
                        current.event_type_id,
                        current.end_time - current.start_time,
                    )
                    .await?;
                    let mut err = self
                        .refuse(
                            org,
                            &rules,
                            Refused {
                                reason: Reason::Conflict,
                                conflicting: Some(other),
                                requested_start: current.start_time,
                                except: Some(current.id),
                                zone: time::Zone::parse(&current.timezone)
                                    .unwrap_or(time::Zone::UTC),
                            },
                        )
                        .await;
                    if let ServiceError::Refused(r) = &mut err {
                        r.instance = Some(current.start_time);
                    }
                    return Err(err);
                }
            }
            instances.push(repo::events::apply(&txn, current, changes).await?);
        }
        let series = repo::series::save(&txn, series.clone(), series).await?;
        let answer = Series { series, instances };
        idempotency::seal(&txn, &answer, render).await?;
        txn.commit().await?;
        drop(queued);
        self.event_written();
        Ok(answer)
    }

    /// Gives a series a new first occurrence and/or recurrence: the instances not changed on
    /// their own are replaced by the new rule's, all held to every rule, all or nothing.
    /// `template` (an instance's fields, with `update` applied) is what the new instances get.
    pub async fn move_series(
        &self,
        org: OrgId,
        id: SeriesId,
        first: BookingRequest,
        recurrence: Recurrence,
        render: Render<'_, Series>,
    ) -> Result<Series, ServiceError> {
        booking::check_length(first.start, first.end).map_err(|e| Invalid::one("end", e))?;
        let until = horizon(first.start);
        let (list, goes_on) = occurrences(&recurrence, first.start, until)?;
        if list.is_empty() {
            return Err(Invalid::one(
                "recurrence",
                "puts no instance at or after the event's start",
            )
            .into());
        }
        let (queued, txn) = begin_write(&self.writer).await?;
        let series = repo::series::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        let current = repo::events::of_series(&txn, org, id).await?;
        // The instances changed on their own stay. The rest first stop holding their time, so
        // the new rule's instances meet only other events; then each new instance takes over
        // the row of the same rule start (its Google id stays) or is a new row, and a row the
        // new rule no longer has stays cancelled. Every row written is a change sync reports.
        // Exceptions keep their own state while the new rule still has their rule start; one
        // whose rule start the new rule no longer has (the series moved to another time)
        // belonged to the old schedule: it is cancelled, and the new rule's instance of that
        // day is written like any other (as Google resets exceptions on such a change).
        let new_starts: std::collections::HashSet<DateTime<Utc>> =
            list.iter().map(|o| o.original_start).collect();
        let (kept, replaced): (Vec<Model>, Vec<Model>) = current.into_iter().partition(|e| {
            e.series_exception && e.original_start.is_some_and(|t| new_starts.contains(&t))
        });
        let kept_starts: Vec<DateTime<Utc>> =
            kept.iter().filter_map(|e| e.original_start).collect();
        let mut by_start = std::collections::HashMap::new();
        for row in replaced {
            let row = if holds_time(row.status) {
                let changes = EventChanges {
                    status: Some(super::events::Status::Cancelled),
                    cancellation_reason: Some(Some(
                        "the recurring event's rule no longer has this instance".into(),
                    )),
                    ..EventChanges::default()
                };
                repo::events::apply(&txn, row, changes).await?
            } else {
                row
            };
            if let Some(start) = row.original_start {
                by_start.insert(start, row);
            }
        }
        let rules = rules_for(
            &txn,
            org,
            series.calendar_id,
            first.event_type,
            first.end - first.start,
        )
        .await?;
        let rules = whole_days_if(rules, first.all_day.is_some());
        let opaque = first.details.transparency == Transparency::Opaque;
        let holds = holds_time(first.status);
        let mut instances = kept.clone();
        let mut previous: Option<Block> = None;
        for o in list
            .iter()
            .filter(|o| !kept_starts.contains(&o.original_start))
        {
            rules.check_storable(o.start, o.end)?;
            let block = rules.block(o.start, o.end);
            if opaque && holds && previous.is_some_and(|p| p.end > block.start) {
                return Err(Invalid::one(
                    "recurrence",
                    "puts instances of the series over each other",
                )
                .into());
            }
            previous = Some(block);
            let admission = Admission {
                start: o.start,
                end: o.end,
                force: first.force,
                all_day: o.all_day.is_some(),
                holds,
                opaque,
                // Each instance is checked, so a refusal names the one in the way.
                look_for_overlap: true,
            };
            if let Some((reason, conflicting)) = admission.obstacle(&txn, org, &rules, None).await?
            {
                drop((txn, queued));
                return Err(self
                    .refuse_instance(org, &rules, &first, o, reason, conflicting)
                    .await);
            }
            let written = match by_start.remove(&o.original_start) {
                Some(row) => {
                    let changes = instance_changes(&first, o, block);
                    repo::events::apply(&txn, row, changes).await
                }
                None => {
                    let new = new_event(
                        &first,
                        rules.calendar,
                        o.start,
                        o.end,
                        block,
                        o.all_day,
                        Some((id, o.original_start)),
                    );
                    repo::events::insert(&txn, org, new).await
                }
            };
            match written {
                Ok(model) => instances.push(model),
                Err(err) if is_exclusion_violation(&err) => {
                    drop((txn, queued));
                    let winner =
                        repo::events::find_conflict(&self.db, org, rules.calendar, block, None)
                            .await?;
                    return Err(self
                        .refuse_instance(org, &rules, &first, o, Reason::Conflict, winner)
                        .await);
                }
                Err(err) => return Err(err.into()),
            }
        }
        instances.extend(by_start.into_values());
        instances.sort_by_key(|e| (e.original_start, e.start_time));
        let (all_day, start_date, end_date) = match recurrence.first() {
            First::AllDay(d) => (true, Some(d.start), Some(d.end)),
            First::Timed { .. } => (false, None, None),
        };
        let changed = SeriesModel {
            recurrence: serde_json::json!(recurrence.lines()),
            timezone: recurrence.zone().name().to_string(),
            first_start: list[0].start,
            first_end: list[0].end,
            all_day,
            start_date,
            end_date,
            expanded_until: until,
            ended: !goes_on,
            ..series.clone()
        };
        let series = repo::series::save(&txn, series, changed).await?;
        let answer = Series { series, instances };
        idempotency::seal(&txn, &answer, render).await?;
        txn.commit().await?;
        drop(queued);
        self.event_written();
        Ok(answer)
    }

    /// Cancels a whole series: every instance stops holding its time.
    pub async fn cancel_series(
        &self,
        org: OrgId,
        id: SeriesId,
        reason: Option<String>,
    ) -> Result<Series, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let series = repo::series::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Event))?;
        let mut instances = Vec::new();
        for current in repo::events::of_series(&txn, org, id).await? {
            if !holds_time(current.status) {
                instances.push(current);
                continue;
            }
            let changes = EventChanges {
                status: Some(super::events::Status::Cancelled),
                cancellation_reason: Some(reason.clone()),
                ..EventChanges::default()
            };
            instances.push(repo::events::apply(&txn, current, changes).await?);
        }
        let changed = SeriesModel {
            status: CANCELLED.to_string(),
            ..series.clone()
        };
        let series = repo::series::save(&txn, series, changed).await?;
        txn.commit().await?;
        self.event_written();
        Ok(Series { series, instances })
    }

    /// Writes the instances of series whose horizon has fallen behind (the server's
    /// housekeeping runs this). An instance whose time another event took meanwhile is not
    /// written (it is logged); the series goes on. Returns the instances written.
    pub async fn extend_due_series(&self) -> Result<usize, ServiceError> {
        let due = time::now() + Duration::days(HORIZON_DAYS - 1);
        let mut written = 0;
        for (org, id) in repo::series::behind(&self.db, due, 100).await? {
            written += self.extend_series(org, id).await?;
        }
        Ok(written)
    }

    async fn extend_series(&self, org: OrgId, id: SeriesId) -> Result<usize, ServiceError> {
        let (queued, txn) = begin_write(&self.writer).await?;
        let Some(series) = repo::series::get(&txn, org, id).await? else {
            return Ok(0);
        };
        let recurrence = stored_recurrence(&series).map_err(|e| {
            ServiceError::Storage(sea_orm::DbErr::Custom(format!(
                "stored recurrence of series {id} unreadable: {e}"
            )))
        })?;
        let instances = repo::events::of_series(&txn, org, id).await?;
        // New instances copy the latest instance changed only with the series.
        let Some(template) = instances
            .iter()
            .rev()
            .find(|e| !e.series_exception)
            .or(instances.last())
            .cloned()
        else {
            return Ok(0);
        };
        let until = horizon(series.first_start);
        let (list, more) = recurrence.between(series.expanded_until, until, MAX_INSTANCES);
        let rules = rules_for(
            &txn,
            org,
            series.calendar_id,
            template.event_type_id,
            template.end_time - template.start_time,
        )
        .await?;
        let rules = whole_days_if(rules, series.all_day);
        let mut written = 0;
        let mut reached = until;
        // The calendar's lock first, so that the looks below see every hold and booking.
        repo::holds::lock_calendar(&txn, org, series.calendar_id).await?;
        let now = time::now();
        for o in &list {
            let block = rules.block(o.start, o.end);
            let blocking = holds_time(template.status)
                && Transparency::from_stored(&template.transparency) == Transparency::Opaque;
            if blocking
                && let Some(other) =
                    repo::events::find_conflict(&txn, org, rules.calendar, block, None).await?
            {
                tracing::warn!(%org, series = %id, at = %time::format_utc(o.start), conflicting = %other,
                    "an instance of a recurring event was not written: its time is taken");
                continue;
            }
            if blocking
                && repo::holds::live_conflict(&txn, org, rules.calendar, block, now)
                    .await?
                    .is_some()
            {
                tracing::warn!(%org, series = %id, at = %time::format_utc(o.start),
                    "an instance of a recurring event was not written: a slot hold keeps its time");
                continue;
            }
            repo::events::insert_copy(&txn, &template, o, block, id).await?;
            written += 1;
        }
        if more && let Some(last) = list.last() {
            reached = last.original_start + Duration::seconds(1);
        }
        let (after, _) = recurrence.between(reached, reached + Duration::days(366 * 50), 1);
        let changed = SeriesModel {
            expanded_until: reached,
            ended: after.is_empty(),
            ..series.clone()
        };
        repo::series::save(&txn, series, changed).await?;
        txn.commit().await?;
        drop(queued);
        self.event_written();
        Ok(written)
    }
}

/// The field changes of `update` (never times or status) for one instance.
fn field_changes(update: &EventUpdate) -> EventChanges {
    EventChanges {
        customer_name: update.customer_name.clone(),
        customer_phone: update.customer_phone.clone(),
        customer_email: update.customer_email.clone(),
        notes: update.notes.clone(),
        title: update.title.clone(),
        location: update.location.clone(),
        description: update.description.clone(),
        kind: update.kind.clone(),
        attendees: update.attendees.clone(),
        created_by: update.created_by.clone(),
        owner_id: update.owner_id.clone(),
        owner_type: update.owner_type,
        metadata: update.metadata.clone(),
        transparency: update.transparency,
        extras: update.extras.clone(),
        ..EventChanges::default()
    }
}

/// Every field of `req` for an existing instance row that now holds the occurrence `o`.
fn instance_changes(req: &BookingRequest, o: &Occurrence, block: Block) -> EventChanges {
    EventChanges {
        times: Some((o.start, o.end, block)),
        timezone: Some(req.zone.name().to_string()),
        customer_name: Some(req.customer_name.clone()),
        customer_phone: Some(req.customer_phone.clone()),
        customer_email: Some(req.customer_email.clone()),
        notes: Some(req.notes.clone()),
        title: Some(req.title.clone()),
        location: Some(req.location.clone()),
        status: Some(req.status),
        cancellation_reason: Some(None),
        all_day: Some(o.all_day),
        description: Some(req.details.description.clone()),
        kind: Some(req.details.kind.clone()),
        attendees: Some(req.details.attendees.clone()),
        created_by: Some(req.details.created_by.clone()),
        owner_id: Some(req.details.owner_id.clone()),
        owner_type: Some(req.details.owner_type),
        metadata: Some(req.details.metadata.clone()),
        transparency: Some(req.details.transparency),
        ical_uid: Some(req.details.google.ical_uid.clone()),
        extras: Some(req.details.google.extras.clone()),
        series_exception: None,
    }
}

/// All-day instances are whole days exactly: no buffers.
fn whole_days_if(mut rules: Rules, all_day: bool) -> Rules {
    if all_day {
        rules.slot.buffer_before = Duration::zero();
        rules.slot.buffer_after = Duration::zero();
    }
    rules
}
