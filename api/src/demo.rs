//! `quando serve --demo`: a demo organization with a calendar and an event type, created once
//! (found again by name on later starts), and a fresh API key printed with a ready curl command.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::admin;
use crate::auth::Scope;
use crate::domain::ids::OrgId;
use crate::domain::time::Zone;
use crate::error::AdminError;
use crate::pagination::PageRequest;
use crate::repo;

pub const DEMO_ORG_NAME: &str = "Quando Demo";

pub struct Demo {
    pub org_id: uuid::Uuid,
    pub calendar_id: uuid::Uuid,
    pub event_type_id: uuid::Uuid,
    pub key: String,
}

pub async fn ensure(db: &DatabaseConnection) -> Result<Demo, AdminError> {
    let existing = entity::organizations::Entity::find()
        .filter(entity::organizations::Column::Name.eq(DEMO_ORG_NAME))
        .one(db)
        .await?;
    let (org, key) = match existing {
        Some(org) => {
            let key = admin::create_key(db, org.id, &Scope::ALL, Some("demo"), None).await?;
            (OrgId(org.id), key.key)
        }
        None => {
            let created = admin::create_organization(db, DEMO_ORG_NAME).await?;
            (OrgId(created.organization.id), created.api_key.key)
        }
    };
    let first = PageRequest::new(Some(1), Some(1));
    let calendar = match repo::calendars::list(db, org, first)
        .await?
        .0
        .into_iter()
        .next()
    {
        Some(c) => c,
        None => {
            repo::calendars::create(
                db,
                org,
                repo::calendars::NewCalendar {
                    name: "Studio Rossi".into(),
                    timezone: Zone::parse("Europe/Rome").unwrap_or(Zone::UTC),
                    description: Some("Demo calendar: weekdays 09:00-18:00 Rome time".into()),
                    working_hours: Some(
                        ["monday", "tuesday", "wednesday", "thursday", "friday"]
                            .into_iter()
                            .map(|day| crate::domain::schedule::WeeklyRangeDoc {
                                day: day.into(),
                                start: "09:00".into(),
                                end: "18:00".into(),
                            })
                            .collect(),
                    ),
                    date_overrides: Vec::new(),
                },
            )
            .await?
        }
    };
    let event_type = match repo::event_types::list(db, org, None, first)
        .await?
        .0
        .into_iter()
        .next()
    {
        Some(t) => t,
        None => {
            repo::event_types::create(
                db,
                org,
                repo::event_types::NewEventType {
                    calendar_id: None,
                    name: "Demo Prodotto".into(),
                    duration_minutes: 30,
                    buffer_before_minutes: 0,
                    buffer_after_minutes: 0,
                    minimum_notice_minutes: None,
                    slot_interval_minutes: None,
                    max_advance_days: None,
                    location: Some("Zoom".into()),
                    active: true,
                },
            )
            .await?
        }
    };
    Ok(Demo {
        org_id: org.0,
        calendar_id: calendar.id,
        event_type_id: event_type.id,
        key,
    })
}

impl Demo {
    pub fn banner(&self, bind: &str) -> String {
        let base = format!("http://{bind}");
        format!(
            "Demo organization {org}\n  calendar   {cal}\n  event type {et}\n  API key    {key}\n\n\
             Book an appointment:\n\
             curl -s -X POST {base}/v1/calendar/events \\\n  \
             -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n  \
             -d '{{\"calendarId\":\"{cal}\",\"eventTypeId\":\"{et}\",\"startTime\":\"2027-04-15T14:00:00\",\"endTime\":\"2027-04-15T14:30:00\",\"timezone\":\"Europe/Rome\",\"customerName\":\"Laura Bianchi\"}}'\n\n\
             List them:\n\
             curl -s '{base}/v1/calendar/events?limit=10' -H 'Authorization: Bearer {key}'\n",
            org = self.org_id,
            cal = self.calendar_id,
            et = self.event_type_id,
            key = self.key,
        )
    }
}
