//! Calendar writes: each one transaction, the idempotency answer sealed with a create.

use entity::calendars::Model;

use super::events::MAX_LISTED;
use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{CalendarId, OrgId};
use crate::repo::calendars::{CalendarChanges, NewCalendar};
use crate::repo::{self, begin_write, idempotency};

impl Service {
    pub async fn create_calendar(
        &self,
        org: OrgId,
        new: NewCalendar,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let model = repo::calendars::create(&txn, org, new).await?;
        if model.is_default {
            // At most one default per organization: this one takes over.
            repo::calendars::clear_default_except(&txn, org, model.id).await?;
        }
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        Ok(model)
    }

    pub async fn update_calendar(
        &self,
        org: OrgId,
        id: CalendarId,
        changes: CalendarChanges,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let makes_default = changes.is_default == Some(true);
        let model = repo::calendars::update(&txn, org, id, changes)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        if makes_default {
            // At most one default per organization: this one takes over.
            repo::calendars::clear_default_except(&txn, org, id).await?;
        }
        txn.commit().await?;
        Ok(model)
    }

    /// The organization's calendars, oldest first, at most `MAX_LISTED`, and whether there
    /// were more.
    pub async fn calendars_listed(&self, org: OrgId) -> Result<(Vec<Model>, bool), ServiceError> {
        let mut models = repo::calendars::first(&self.db, org, MAX_LISTED + 1).await?;
        let more = models.len() as u64 > MAX_LISTED;
        models.truncate(MAX_LISTED as usize);
        Ok((models, more))
    }

    /// The organization's default calendar (Google's `primary`), if one is set.
    pub async fn default_calendar(&self, org: OrgId) -> Result<Option<Model>, ServiceError> {
        Ok(repo::calendars::default_of(&self.db, org).await?)
    }

    pub async fn calendar(&self, org: OrgId, id: CalendarId) -> Result<Model, ServiceError> {
        repo::calendars::get(&self.db, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))
    }
}
