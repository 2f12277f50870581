//! Calendar feeds: the SHA-256 of each calendar's secret feed token (one per calendar; rotating
//! replaces it). The token itself is never stored.

use chrono::{DateTime, Utc};
use entity::calendar_feeds::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::scoped;
use crate::domain::ids::{CalendarId, OrgId};

/// The calendar's feed, if it has one.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
) -> Result<Option<Model>, DbErr> {
    scoped::<Entity>(org)
        .filter(Column::CalendarId.eq(calendar))
        .one(db)
        .await
}

/// Gives the calendar a feed with this token hash.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    calendar: CalendarId,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        org_id: Set(org),
        calendar_id: Set(calendar),
        token_hash: Set(token_hash),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

/// Replaces the feed's token hash (a rotation): the old token stops working at once.
pub async fn replace_token<C: ConnectionTrait>(
    db: &C,
    current: Model,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = current.into();
    active.token_hash = Set(token_hash);
    active.created_at = Set(now);
    active.update(db).await
}

/// The feed a token hash belongs to, in whichever organization. The one read here not scoped
/// to an organization: a feed request carries no API key, and its token is the credential that
/// names the organization (as `auth::authenticate` finds a key). Only an exact hash of a
/// well-formed token reaches it; the unique index `calendar_feeds_token_hash` answers it.
pub async fn by_token_hash<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}
