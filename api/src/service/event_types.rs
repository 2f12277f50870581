//! Event-type writes: each one transaction; a calendar an event type names must be the
//! organization's, checked in the same transaction as the write.

use entity::event_types::Model;
use sea_orm::ConnectionTrait;

use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{CalendarId, EventTypeId, OrgId};
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
        let model = repo::event_types::create(&txn, org, new).await?;
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        Ok(model)
    }

    pub async fn update_event_type(
        &self,
        org: OrgId,
        id: EventTypeId,
        changes: EventTypeChanges,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        if repo::event_types::get(&txn, org, id).await?.is_none() {
            return Err(ServiceError::NotFound(Resource::EventType));
        }
        if let Some(Some(calendar)) = changes.calendar_id {
            own_calendar(&txn, org, calendar).await?;
        }
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
