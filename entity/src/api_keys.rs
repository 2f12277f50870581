use sea_orm::entity::prelude::*;

use crate::ids::{ApiKeyId, OrgId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: Option<String>,
    /// Public, indexed part of the key used to find the row before the constant-time compare.
    #[sea_orm(unique)]
    pub lookup: String,
    pub secret_hash: String,
    /// Comma-separated scopes, e.g. `calendar:read,calendar:write`.
    pub scopes: String,
    pub rate_limit_per_minute: Option<i32>,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// A publishable key's event types, comma-separated; `None` for a secret key.
    pub event_type_ids: Option<String>,
    /// A publishable key's allowed browser origins, comma-separated; `None` for a secret key.
    pub origins: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
