use sea_orm::entity::prelude::*;

use crate::ids::{DeliveryId, EventId, MessageId, OrgId, WebhookId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DeliveryId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub endpoint_id: WebhookId,
    pub message_id: MessageId,
    pub event_id: Option<EventId>,
    /// The event's change number: one event's messages reach an endpoint in this order.
    pub seq: i64,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// While an instance is sending it: until when the row is its own.
    pub leased_until: Option<DateTimeUtc>,
    pub lease_owner: Option<Uuid>,
    /// The receiver's HTTP status at the last attempt.
    pub response_status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

/// Where a delivery stands, stored as its lower-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DeliveryStatus {
    /// Not yet delivered; attempted again at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A 2xx answer was received.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Every retry failed (or the endpoint is disabled or gone); `retry` sends it again.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
