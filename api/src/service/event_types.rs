//! Event-type writes: each one transaction; a calendar an event type names (its own, or a
//! team's hosts) must be the organization's, checked in the same transaction as the write.

use entity::event_types::Model;
use sea_orm::ConnectionTrait;

use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{CalendarId, EventTypeId, OrgId};
use crate::domain::team::{self, Assignment, Host};
use crate::domain::violations::{Invalid, Violations};
use crate::repo::event_types::{EventTypeChanges, NewEventType};
use crate::repo::{self, begin_write, idempotency};

async fn own_calendar<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: CalendarId,
) -> Result<(), ServiceError> {
    repo::calendars::get(db, org, id)
        .await?
        .map(|_| ())
        .ok_or(ServiceError::NotFound(Resource::Calendar))
}

/// A team type's rules beyond `domain::team::check_hosts`: no calendar of its own, and every
/// host a calendar of the organization (named by its place in `hosts`).
async fn check_team<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    assignment: Assignment,
    hosts: &[Host],
    calendar: Option<CalendarId>,
) -> Result<(), ServiceError> {
    team::check_hosts(assignment, hosts)?;
    if assignment.is_team() && calendar.is_some() {
        return Err(Invalid::one(
            "calendarId",
            format!(
                "a {} event type is booked on its hosts' calendars; leave calendarId out",
                assignment.as_str()
            ),
        )
        .into());
    }
    if hosts.is_empty() {
        return Ok(());
    }
    let ids: Vec<CalendarId> = hosts.iter().map(|h| CalendarId(h.calendar_id)).collect();
    let found = repo::calendars::get_many(db, org, &ids).await?;
    let mut v = Violations::default();
    for (i, id) in ids.iter().enumerate() {
        if !found.iter().any(|c| c.id == *id) {
            v.add(
                &format!("hosts[{i}].calendarId"),
                "is not a calendar of this organization",
            );
        }
    }
    Ok(v.into_result()?)
}

impl Service {
    pub async fn create_event_type(
        &self,
        org: OrgId,
        new: NewEventType,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        if let Some(calendar) = new.calendar_id {
            own_calendar(&txn, org, calendar).await?;
        }
        check_team(&txn, org, new.assignment, &new.hosts, new.calendar_id).await?;
        let model = repo::event_types::create(&txn, org, new).await?;
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        Ok(model)
    }

    pub async fn update_event_type(
        &self,
        org: OrgId,
        id: EventTypeId,
        mut changes: EventTypeChanges,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let current = repo::event_types::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::EventType))?;
        if let Some(Some(calendar)) = changes.calendar_id {
            own_calendar(&txn, org, calendar).await?;
        }
        // The team as it will be: back to `single` drops the hosts.
        let (was, had) = repo::event_types::team_of(&current)?;
        let assignment = changes.assignment.unwrap_or(was);
        if assignment == Assignment::Single && changes.hosts.is_none() {
            changes.hosts = Some(Vec::new());
        }
        let hosts = changes.hosts.as_deref().unwrap_or(&had);
        let calendar = changes.calendar_id.unwrap_or(current.calendar_id);
        check_team(&txn, org, assignment, hosts, calendar).await?;
        let model = repo::event_types::update(&txn, org, id, changes)
            .await?
            .ok_or(ServiceError::NotFound(Resource::EventType))?;
        txn.commit().await?;
        Ok(model)
    }

    pub async fn event_type(&self, org: OrgId, id: EventTypeId) -> Result<Model, ServiceError> {
        repo::event_types::get(&self.db, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::EventType))
    }
}
