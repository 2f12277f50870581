//! Administrative operations behind the CLI (`quando org create`, `quando key create|revoke`)
//! and the test harness. Not exposed over HTTP.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Scope, format_scopes, generate_key};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::time;
use crate::error::AdminError;

#[derive(Clone, Debug, Serialize)]
pub struct OrganizationInfo {
    pub id: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CreatedKey {
    pub id: Uuid,
    /// The secret, shown once.
    pub key: String,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrganization {
    pub organization: OrganizationInfo,
    pub api_key: CreatedKey,
}

/// Creates an organization and its first key with both scopes.
pub async fn create_organization(
    db: &DatabaseConnection,
    name: &str,
) -> Result<CreatedOrganization, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::Invalid(
            "an organization name has 1 to 200 characters".into(),
        ));
    }
    let id = OrgId::generate();
    entity::organizations::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        created_at: Set(time::now()),
    }
    .insert(db)
    .await?;
    let api_key = create_key(db, id.0, &Scope::ALL, Some("default"), None).await?;
    Ok(CreatedOrganization {
        organization: OrganizationInfo {
            id: id.0,
            name: name.to_string(),
        },
        api_key,
    })
}

/// Creates a key for an existing organization.
pub async fn create_key(
    db: &DatabaseConnection,
    org_id: Uuid,
    scopes: &[Scope],
    name: Option<&str>,
    rate_limit_per_minute: Option<u32>,
) -> Result<CreatedKey, AdminError> {
    create_key_expiring(db, org_id, scopes, name, rate_limit_per_minute, None).await
}

/// Creates a key that stops working `expires_in_days` from now (never when `None`).
pub async fn create_key_expiring(
    db: &DatabaseConnection,
    org_id: Uuid,
    scopes: &[Scope],
    name: Option<&str>,
    rate_limit_per_minute: Option<u32>,
    expires_in_days: Option<u32>,
) -> Result<CreatedKey, AdminError> {
    if scopes.is_empty() {
        return Err(AdminError::Invalid("a key needs at least one scope".into()));
    }
    if entity::organizations::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .is_none()
    {
        return Err(AdminError::NotFound("organization"));
    }
    let limit = rate_limit_per_minute
        .map(|n| i32::try_from(n).ok().filter(|n| *n > 0))
        .map(|n| {
            n.ok_or_else(|| AdminError::Invalid("--rate-limit must be a positive number".into()))
        })
        .transpose()?;
    let id = ApiKeyId::generate();
    let key = generate_key(id);
    let now = time::now();
    let expires_at: Option<DateTime<Utc>> = expires_in_days.map(|d| now + Duration::days(d.into()));
    entity::api_keys::ActiveModel {
        id: Set(id),
        org_id: Set(OrgId(org_id)),
        name: Set(name.map(str::to_string)),
        lookup: Set(key.lookup),
        secret_hash: Set(key.hash),
        scopes: Set(format_scopes(scopes)),
        rate_limit_per_minute: Set(limit),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(CreatedKey {
        id: id.0,
        key: key.secret,
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
    })
}

/// Revokes a key; requests with it get 403 `forbidden` from then on. Revoking twice is fine.
pub async fn revoke_key(db: &DatabaseConnection, key_id: Uuid) -> Result<(), AdminError> {
    let row = entity::api_keys::Entity::find_by_id(key_id)
        .one(db)
        .await?
        .ok_or(AdminError::NotFound("API key"))?;
    if row.revoked_at.is_some() {
        return Ok(());
    }
    let mut active: entity::api_keys::ActiveModel = row.into();
    active.revoked_at = Set(Some(time::now()));
    active.update(db).await?;
    crate::auth::note_revocation();
    Ok(())
}

/// What `quando key list` shows of a key: never its secret or hash.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub id: Uuid,
    pub name: Option<String>,
    /// The public start of the key (`qnd_live_` and 12 characters), to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub rate_limit_per_minute: Option<i32>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// The keys of an organization, oldest first.
pub async fn list_keys(db: &DatabaseConnection, org_id: Uuid) -> Result<Vec<KeyInfo>, AdminError> {
    use entity::api_keys::{Column, Entity};
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    if entity::organizations::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .is_none()
    {
        return Err(AdminError::NotFound("organization"));
    }
    let rows = Entity::find()
        .filter(Column::OrgId.eq(org_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    let fmt = |t: DateTime<Utc>| time::format_utc(t);
    Ok(rows
        .into_iter()
        .map(|k| KeyInfo {
            id: k.id.0,
            name: k.name,
            prefix: k.lookup,
            scopes: k.scopes.split(',').map(str::to_string).collect(),
            rate_limit_per_minute: k.rate_limit_per_minute,
            created_at: fmt(k.created_at),
            expires_at: k.expires_at.map(fmt),
            revoked_at: k.revoked_at.map(fmt),
            last_used_at: k.last_used_at.map(fmt),
        })
        .collect())
}
