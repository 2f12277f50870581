use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub calendar_id: Uuid,
    pub event_type_id: Uuid,
    pub start_time: DateTimeUtc,
    pub end_time: DateTimeUtc,
    /// `start_time` minus the event type's buffer before: what the overlap rule compares.
    pub block_start: DateTimeUtc,
    /// `end_time` plus the event type's buffer after.
    pub block_end: DateTimeUtc,
    pub timezone: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub customer_email: Option<String>,
    pub notes: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub status: String,
    pub booked_via: String,
    pub cancellation_reason: Option<String>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
