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
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    pub id: Uuid,
    /// The secret, shown once.
    pub key: String,
    pub scopes: Vec<String>,
    /// A publishable key's event types (absent for a secret key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<Uuid>>,
    /// A publishable key's allowed browser origins (absent for a secret key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrganization {
    pub organization: OrganizationInfo,
    pub api_key: CreatedKey,
}

/// Fails with `NotFound("organization")` unless the organization exists.
async fn require_organization(db: &DatabaseConnection, org_id: Uuid) -> Result<(), AdminError> {
    match entity::organizations::Entity::find_by_id(org_id)
        .one(db)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(AdminError::NotFound("organization")),
    }
}

/// A key's own `--rate-limit` as stored: positive, and fitting the column.
fn stored_rate_limit(per_minute: Option<u32>) -> Result<Option<i32>, AdminError> {
    per_minute
        .map(|n| {
            i32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AdminError::Invalid("--rate-limit must be a positive number".into()))
        })
        .transpose()
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
    require_organization(db, org_id).await?;
    let limit = stored_rate_limit(rate_limit_per_minute)?;
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
        event_type_ids: Set(None),
        origins: Set(None),
    }
    .insert(db)
    .await?;
    Ok(CreatedKey {
        id: id.0,
        key: key.secret,
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
        event_types: None,
        origins: None,
    })
}

/// The most event types and origins one publishable key is bound to.
pub const MAX_BINDINGS: usize = 50;

/// Creates a publishable key (`qnd_pub_...`) for booking widgets: bound to event types of the
/// organization (each tied to a calendar, or a team's) and to the browser origins that may use it. It holds
/// no scope; `rate_limit_per_minute` is the budget of each client address.
pub async fn create_publishable_key(
    db: &DatabaseConnection,
    org_id: Uuid,
    event_types: &[Uuid],
    origins: &[String],
    name: Option<&str>,
    rate_limit_per_minute: Option<u32>,
) -> Result<CreatedKey, AdminError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    require_organization(db, org_id).await?;
    let mut types: Vec<Uuid> = Vec::new();
    for id in event_types {
        if !types.contains(id) {
            types.push(*id);
        }
    }
    if types.is_empty() || types.len() > MAX_BINDINGS {
        return Err(AdminError::Invalid(format!(
            "a publishable key is bound to 1 to {MAX_BINDINGS} event types (--event-types)"
        )));
    }
    for id in &types {
        let row = entity::event_types::Entity::find()
            .filter(entity::event_types::Column::OrgId.eq(org_id))
            .filter(entity::event_types::Column::Id.eq(*id))
            .one(db)
            .await?
            .ok_or(AdminError::NotFound("event type"))?;
        // A widget books an event type on its own calendar, or on its team's hosts.
        let team = crate::repo::event_types::team_of(&row)?.0.is_team();
        if row.calendar_id.is_none() && !team {
            return Err(AdminError::Invalid(format!(
                "event type {id} belongs to no calendar and has no hosts: a widget books an event \
                 type on its own calendar or its team's"
            )));
        }
    }
    let mut allowed: Vec<String> = Vec::new();
    for origin in origins {
        let origin = crate::auth::parse_origin(origin).map_err(AdminError::Invalid)?;
        if !allowed.contains(&origin) {
            allowed.push(origin);
        }
    }
    if allowed.is_empty() || allowed.len() > MAX_BINDINGS {
        return Err(AdminError::Invalid(format!(
            "a publishable key allows 1 to {MAX_BINDINGS} origins (--origins https://shop.example)"
        )));
    }
    let limit = stored_rate_limit(rate_limit_per_minute)?;
    let id = ApiKeyId::generate();
    let key = crate::auth::generate_publishable_key(id);
    let join = |items: Vec<String>| items.join(",");
    entity::api_keys::ActiveModel {
        id: Set(id),
        org_id: Set(OrgId(org_id)),
        name: Set(name.map(str::to_string)),
        lookup: Set(key.lookup),
        secret_hash: Set(key.hash),
        scopes: Set(String::new()),
        rate_limit_per_minute: Set(limit),
        expires_at: Set(None),
        revoked_at: Set(None),
        last_used_at: Set(None),
        created_at: Set(time::now()),
        event_type_ids: Set(Some(join(types.iter().map(Uuid::to_string).collect()))),
        origins: Set(Some(join(allowed.clone()))),
    }
    .insert(db)
    .await?;
    crate::auth::note_origins_changed();
    Ok(CreatedKey {
        id: id.0,
        key: key.secret,
        scopes: Vec::new(),
        event_types: Some(types),
        origins: Some(allowed),
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
    crate::auth::note_origins_changed();
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
    /// A publishable key's event types and origins (absent for a secret key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
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
    require_organization(db, org_id).await?;
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
            scopes: k
                .scopes
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            event_types: k.event_type_ids.as_deref().map(|ids| {
                ids.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            origins: k
                .origins
                .as_deref()
                .map(|o| o.split(',').map(str::to_string).collect()),
            rate_limit_per_minute: k.rate_limit_per_minute,
            created_at: fmt(k.created_at),
            expires_at: k.expires_at.map(fmt),
            revoked_at: k.revoked_at.map(fmt),
            last_used_at: k.last_used_at.map(fmt),
        })
        .collect())
}
