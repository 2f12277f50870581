//! Calendar members: add, list and change who may do what on a calendar. Each write is one
//! transaction; a user is a member of a calendar once (a second add is a `user_id` problem,
//! whether the pre-check or the unique index catches it).

use entity::calendar_members::Model;
use sea_orm::{DbErr, SqlErr};

use super::events::MAX_LISTED;
use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{CalendarId, MemberId, OrgId};
use crate::domain::violations::Invalid;
use crate::repo::members::Role;
use crate::repo::{self, begin_write, idempotency};

/// A membership, parsed: the user's id (1 to 255 characters, trimmed) and the role: a member
/// added without one is a `Viewer`; a change without one keeps the member's.
#[derive(Clone, Debug)]
pub struct Membership {
    pub user_id: String,
    pub role: Option<Role>,
}

const DUPLICATE: &str = "is already a member of this calendar";

fn duplicate_or(err: DbErr) -> ServiceError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Invalid::one("user_id", DUPLICATE).into(),
        _ => err.into(),
    }
}

impl Service {
    /// Adds `who` to the calendar; `render` is the answer sealed for `Idempotency-Key` replays.
    pub async fn add_member(
        &self,
        org: OrgId,
        calendar: CalendarId,
        who: Membership,
        render: Render<'_, Model>,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        repo::calendars::get(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        if repo::members::by_user(&txn, org, calendar, &who.user_id)
            .await?
            .is_some()
        {
            return Err(Invalid::one("user_id", DUPLICATE).into());
        }
        let role = who.role.unwrap_or(Role::Viewer);
        let model = repo::members::create(&txn, org, calendar, who.user_id, role)
            .await
            .map_err(duplicate_or)?;
        idempotency::seal(&txn, &model, render).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// The calendar's members, the first added first, at most `MAX_LISTED`, and whether
    /// there were more.
    pub async fn members(
        &self,
        org: OrgId,
        calendar: CalendarId,
    ) -> Result<(Vec<Model>, bool), ServiceError> {
        self.calendar(org, calendar).await?;
        let mut models = repo::members::list(&self.db, org, calendar, MAX_LISTED + 1).await?;
        let more = models.len() as u64 > MAX_LISTED;
        models.truncate(MAX_LISTED as usize);
        Ok((models, more))
    }

    /// Sets a member's user and role; another user already on the calendar is refused.
    pub async fn update_member(
        &self,
        org: OrgId,
        calendar: CalendarId,
        id: MemberId,
        who: Membership,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        repo::calendars::get(&txn, org, calendar)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Calendar))?;
        let current = repo::members::get(&txn, org, calendar, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Member))?;
        if let Some(other) = repo::members::by_user(&txn, org, calendar, &who.user_id).await?
            && other.id != current.id
        {
            return Err(Invalid::one("user_id", DUPLICATE).into());
        }
        let role = who.role.unwrap_or(current.role);
        let model = repo::members::update(&txn, current, who.user_id, role)
            .await
            .map_err(duplicate_or)?;
        txn.commit().await?;
        Ok(model)
    }
}
