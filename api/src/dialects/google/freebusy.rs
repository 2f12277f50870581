//! `POST /calendar/v3/freeBusy`: the busy times of up to 50 calendars, merged. Busy is what
//! holds time under Quando's rules: confirmed and tentative opaque events (transparent and
//! cancelled ones are free). An unknown calendar, or another organization's, gets a per-calendar
//! `notFound` error instead of failing the whole query.

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Map, Value, json};

use super::errors::GError;
use super::events::{read_json, zone_param};
use super::{Call, Round, bound, calendar_of};
use crate::auth::Scope;
use crate::domain::time::Zone;
use crate::repo;
use crate::state::AppState;

/// At most this many calendars in one query (Google's limit).
pub const MAX_CALENDARS: usize = 50;
/// At most this long a window (Google allows about two months).
const MAX_WINDOW_DAYS: i64 = 62;

/// Merges intervals sorted by start (touching ones too) and clips them to the window.
pub fn merge(
    mut busy: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    busy.sort();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (s, e) in busy {
        let (s, e) = (s.max(from), e.min(to));
        if s >= e {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// A window bound; a fraction of a second widens the window to whole seconds.
fn time_field(
    body: &Map<String, Value>,
    name: &str,
    round: Round,
) -> Result<DateTime<Utc>, GError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(GError::required(name, format!("Required: {name}"))),
        Some(Value::String(s)) => bound(s, round)
            .map_err(|e| GError::invalid(name, format!("Invalid value for {name}: {e}"))),
        Some(_) => Err(GError::invalid(
            name,
            format!("{name} must be an RFC 3339 string"),
        )),
    }
}

/// Formats an instant in the query's zone, as Google does with `timeZone`.
fn in_zone(t: DateTime<Utc>, zone: Zone) -> String {
    if zone == Zone::UTC {
        crate::domain::time::format_utc(t)
    } else {
        t.with_timezone(&zone.0)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

#[handler]
pub async fn query(req: &Request, state: Data<&AppState>, body: Body) -> Result<Response, GError> {
    let call = Call::new(req, Scope::CalendarRead)?;
    let body = read_json(req, body).await?;
    let time_min = time_field(&body, "timeMin", Round::Down)?;
    let time_max = time_field(&body, "timeMax", Round::Up)?;
    if time_max <= time_min {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty: timeMax must be after timeMin",
        )
        .at("timeMax"));
    }
    if time_max - time_min > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(GError::invalid(
            "timeMax",
            format!("The time range is too long: at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    let zone = zone_param(&body, "timeZone")?.unwrap_or(Zone::UTC);
    let items = match body.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(GError::invalid("items", "items must be an array")),
    };
    if items.len() > MAX_CALENDARS {
        return Err(GError::invalid(
            "items",
            format!("Too many calendars requested: at most {MAX_CALENDARS}"),
        ));
    }
    for key in ["groupExpansionMax", "calendarExpansionMax"] {
        if let Some(v) = body.get(key)
            && !v.is_null()
            && !v.as_i64().is_some_and(|n| (1..=100).contains(&n))
        {
            return Err(GError::invalid(
                key,
                format!("{key} must be an integer from 1 to 100"),
            ));
        }
    }
    let mut calendars = Map::new();
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item.get("id").and_then(Value::as_str) else {
            return Err(GError::required(
                &format!("items[{i}].id"),
                "Required: each item names a calendar id",
            ));
        };
        let answer = match calendar_of(&state, call.org, id).await {
            Ok(calendar) => {
                let mut busy = repo::events::busy_between(
                    &state.db,
                    call.org,
                    calendar.id,
                    time_min,
                    time_max,
                )
                .await
                .map_err(GError::from)?;
                // A live slot hold (a visitor or a caller about to book) is busy too.
                busy.extend(
                    repo::holds::live_times_between(
                        &state.db,
                        call.org,
                        calendar.id,
                        time_min,
                        time_max,
                        crate::domain::time::now(),
                    )
                    .await
                    .map_err(GError::from)?,
                );
                let busy: Vec<Value> = merge(busy, time_min, time_max)
                    .into_iter()
                    .map(|(s, e)| json!({"start": in_zone(s, zone), "end": in_zone(e, zone)}))
                    .collect();
                json!({"busy": busy})
            }
            Err(err) if err.status == StatusCode::NOT_FOUND => json!({
                "errors": [{"domain": "global", "reason": "notFound"}],
                "busy": [],
            }),
            Err(err) => return Err(err),
        };
        calendars.insert(id.to_string(), answer);
    }
    Ok(call.respond(
        StatusCode::OK,
        json!({
            "kind": "calendar#freeBusy",
            "timeMin": in_zone(time_min, zone),
            "timeMax": in_zone(time_max, zone),
            "calendars": calendars,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_touching_intervals_merge_and_are_clipped() {
        let t = |h: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 1, 4, h, 0, 0).unwrap();
        let merged = merge(
            vec![
                (t(9), t(11)),
                (t(10), t(12)),
                (t(12), t(13)),
                (t(15), t(16)),
                (t(5), t(7)),
            ],
            t(6),
            t(20),
        );
        assert_eq!(merged, vec![(t(6), t(7)), (t(9), t(13)), (t(15), t(16))]);
    }
}
