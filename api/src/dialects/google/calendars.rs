//! `calendarList.list` and `calendars.get`: the organization's calendars as Google shows them.
//! The default calendar (`isDefault` in the native API) is the one marked `primary`.

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::errors::GError;
use super::{Call, calendar_of};
use crate::auth::Scope;
use crate::state::AppState;

fn etag(m: &entity::calendars::Model) -> String {
    format!("\"{}\"", m.updated_at.timestamp_millis())
}

/// A calendar list entry.
fn entry(m: &entity::calendars::Model) -> Value {
    json!({
        "kind": "calendar#calendarListEntry",
        "etag": etag(m),
        "id": m.id.0.to_string(),
        "summary": m.name,
        "description": m.description,
        "timeZone": m.timezone,
        "primary": m.is_default,
        "accessRole": "owner",
        "defaultReminders": [],
    })
}

/// `GET /calendar/v3/users/me/calendarList`: every calendar of the organization (at most
/// 500; one page).
#[handler]
pub async fn calendar_list(req: &Request, state: Data<&AppState>) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarRead)?;
    // Accepted and checked like Google's; one page holds them all.
    call.params.int("maxResults", 1, 250)?;
    call.params.bool("showDeleted")?;
    call.params.bool("showHidden")?;
    let (models, _) = state.service.calendars_listed(call.org).await?;
    let etag = models
        .iter()
        .map(|m| m.updated_at.timestamp_millis())
        .max()
        .unwrap_or(0);
    Ok(call.respond(
        StatusCode::OK,
        json!({
            "kind": "calendar#calendarList",
            "etag": format!("\"{etag}\""),
            "items": models.iter().map(entry).collect::<Vec<_>>(),
        }),
    ))
}

/// `GET /calendar/v3/calendars/{calendarId}`: one calendar (`primary` is the default one).
#[handler]
pub async fn calendar_get(
    req: &Request,
    state: Data<&AppState>,
    Path(calendar_id): Path<String>,
) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarRead)?;
    let m = calendar_of(&state, call.org, &calendar_id).await?;
    Ok(call.respond(
        StatusCode::OK,
        json!({
            "kind": "calendar#calendar",
            "etag": etag(&m),
            "id": m.id.0.to_string(),
            "summary": m.name,
            "description": m.description,
            "timeZone": m.timezone,
        }),
    ))
}
