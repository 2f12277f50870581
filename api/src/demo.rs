//! `quando serve --demo`: a demo organization with a calendar and an event type, created once
//! (found again by name on later starts), and its API key printed with a ready curl command.
//!
//! The key is minted once, not on every start. Its secret is stored only hashed in the
//! database, so on SQLite it is kept in a file beside the database (`<file>.demo-key`, readable
//! by its owner only) and printed again on later starts; on PostgreSQL there is no such place,
//! and later starts say where to get a key instead.

use std::path::{Path, PathBuf};

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
    /// The demo key's secret, when it is known (just minted, or kept beside the database).
    pub key: Option<String>,
}

/// Where the demo key is kept for a database URL: beside a SQLite file; nowhere for an
/// in-memory SQLite database or PostgreSQL.
pub fn key_file_for(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(format!("{path}.demo-key")))
}

/// The key kept in `file`, if it still authenticates for `org`.
async fn kept_key(db: &DatabaseConnection, org: OrgId, file: &Path) -> Option<String> {
    let key = std::fs::read_to_string(file).ok()?.trim().to_string();
    let cache = crate::auth::KeyCache::default();
    let tenant = crate::auth::authenticate(db, &cache, &key, crate::domain::time::now())
        .await
        .ok()?;
    (tenant.org_id == org).then_some(key)
}

fn keep_key(file: &Path, key: &str) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{key}\n").as_bytes()));
    if let Err(err) = written {
        tracing::warn!(file = %file.display(), error = %err, "could not keep the demo key");
    }
}

/// The demo organization, created on first use. `key_file` is where its key is kept between
/// starts (see `key_file_for`).
pub async fn ensure(db: &DatabaseConnection, key_file: Option<&Path>) -> Result<Demo, AdminError> {
    let existing = entity::organizations::Entity::find()
        .filter(entity::organizations::Column::Name.eq(DEMO_ORG_NAME))
        .one(db)
        .await?;
    let (org, key) = match existing {
        Some(org) => {
            let org_id = org.id;
            let kept = match key_file {
                Some(file) => kept_key(db, org_id, file).await,
                None => None,
            };
            match (kept, key_file) {
                (Some(key), _) => (org_id, Some(key)),
                // Lost or revoked: one new key, kept from now on.
                (None, Some(file)) => {
                    let key = admin::create_key(db, org.id.0, &Scope::ALL, Some("demo"), None)
                        .await?
                        .key;
                    keep_key(file, &key);
                    (org_id, Some(key))
                }
                (None, None) => (org_id, None),
            }
        }
        None => {
            let created = admin::create_organization(db, DEMO_ORG_NAME).await?;
            let key = created.api_key.key;
            if let Some(file) = key_file {
                keep_key(file, &key);
            }
            (OrgId(created.organization.id), Some(key))
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
                    owner_id: None,
                    is_default: true,
                    metadata: Default::default(),
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
                    assignment: crate::domain::team::Assignment::Single,
                    hosts: Vec::new(),
                },
            )
            .await?
        }
    };
    Ok(Demo {
        org_id: org.0,
        calendar_id: calendar.id.0,
        event_type_id: event_type.id.0,
        key,
    })
}

impl Demo {
    pub fn banner(&self, bind: &str) -> String {
        let Some(key) = &self.key else {
            return format!(
                "Demo organization {org}\n  calendar   {cal}\n  event type {et}\n  API key    (shown when the demo organization was created; \
                 for another: quando key create --org {org})\n",
                org = self.org_id,
                cal = self.calendar_id,
                et = self.event_type_id,
            );
        };
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
        )
    }
}
