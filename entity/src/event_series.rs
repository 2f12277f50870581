use sea_orm::entity::prelude::*;

use crate::ids::{CalendarId, OrgId, SeriesId};

/// A recurring event: its RFC 5545 lines and how far its instances (rows of `events` naming this
/// series) have been written.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_series")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SeriesId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: OrgId,
    pub calendar_id: CalendarId,
    /// The lines as the client gave them (a JSON array of strings).
    #[sea_orm(column_type = "JsonBinary")]
    pub recurrence: Json,
    /// The zone the rule is expanded in.
    pub timezone: String,
    /// The first occurrence as the rule starts it.
    pub first_start: DateTimeUtc,
    pub first_end: DateTimeUtc,
    pub all_day: bool,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// Instances exist for every rule start before this instant.
    pub expanded_until: DateTimeUtc,
    /// The rule has no start at or after `expanded_until`.
    pub ended: bool,
    /// `confirmed` or `cancelled` (the whole series).
    pub status: String,
    /// The id a Google Calendar client chose for the series (unique per calendar).
    pub gcal_id: Option<String>,
    /// The iCalendar UID every instance shares.
    pub ical_uid: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
