use sea_orm::entity::prelude::*;

use crate::ids::{OrgId, WebhookId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub url: String,
    /// JSON array of the event names wanted; empty: every event.
    #[sea_orm(column_type = "JsonBinary")]
    pub events: Json,
    pub description: Option<String>,
    pub disabled: bool,
    /// Why the endpoint stopped receiving (set when Quando disabled it).
    pub disabled_reason: Option<String>,
    /// `whsec_...`
    pub secret: String,
    /// The secret before the last rotation, signing beside the new one until
    /// `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    /// The first failed delivery since the last successful one.
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
