//! The Google Calendar v3 dialect under `/calendar/v3`: Google's events, calendar list,
//! calendars and freeBusy resources (paths, camelCase fields, `kind`/`etag`, page and sync
//! tokens, Google's error shape) mapped onto Quando's one store and one set of rules. An event
//! made here is listed, read, moved and cancelled through the native and Talkover APIs and the
//! other way round; every write goes through `crate::service`, which also bumps the calendar's
//! change counter that incremental sync reads.
//!
//! Served as plain poem routes, not poem-openapi operations: Google's clients are generated
//! from Google's own discovery document, not from ours, and what this dialect answers does not
//! fit a fixed schema (`fields=` trims any response to the members asked for, `304` answers
//! `If-None-Match`, the error object carries Quando's refusal beside Google's members). Putting
//! it in `openapi.yaml` would describe shapes the server does not send.
//!
//! Every call accepts Google's standard parameters: `alt=json` (the only format), `prettyPrint`,
//! `fields` (top-level members, with `items(a,b)` selecting members of each item), `quotaUser`
//! and `key` (accepted, unused: the Bearer key is what authenticates).

pub mod calendars;
pub mod errors;
pub mod events;
pub mod freebusy;
pub mod series;
pub mod tokens;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use serde_json::{Map, Value};

use crate::auth::{AuthFailure, Scope, Tenant};
use crate::domain::ids::{CalendarId, OrgId};
use crate::domain::time::parse_instant;
use crate::state::AppState;
use errors::GError;

/// The routes of the dialect, to be nested at `errors::PREFIX`.
pub fn routes() -> impl poem::Endpoint<Output = Response> {
    Route::new()
        .at(
            "/calendars/:calendar_id/events",
            poem::get(events::events_list).post(events::events_insert),
        )
        .at(
            "/calendars/:calendar_id/events/import",
            poem::post(events::events_import),
        )
        .at(
            "/calendars/:calendar_id/events/:event_id",
            poem::get(events::events_get)
                .patch(events::events_patch)
                .put(events::events_update)
                .delete(events::events_delete),
        )
        .at(
            "/calendars/:calendar_id/events/:event_id/instances",
            poem::get(series::events_instances),
        )
        .at(
            "/calendars/:calendar_id",
            poem::get(calendars::calendar_get),
        )
        .at(
            "/users/me/calendarList",
            poem::get(calendars::calendar_list),
        )
        .at("/freeBusy", poem::post(freebusy::query))
        .around(answer_errors)
}

/// A handler's `GError` is the answer itself (already in Google's shape); other errors (no
/// route, wrong method) go on to the layers that render them, and `errors::layer` rewrites them.
async fn answer_errors<E: poem::Endpoint>(
    next: std::sync::Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    match next.call(req).await {
        Ok(resp) => Ok(resp.into_response()),
        Err(err) => match err.downcast_ref::<GError>() {
            Some(g) => Ok(g.clone().into_response()),
            None => Err(err),
        },
    }
}

/// The query string of a call, parsed once, repeated parameters kept.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn of(req: &Request) -> Self {
        Params(
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, GError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(GError::invalid(
                name,
                format!("Invalid boolean value for {name}: '{other}' (use true or false)"),
            )),
        }
    }

    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, GError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(GError::invalid(
                    name,
                    format!("Invalid value for {name}: '{v}' (an integer from {min} to {max})"),
                )),
            },
        }
    }

    /// An RFC 3339 instant with an offset (`2026-12-01T10:00:00Z`, `...+01:00`) used as a
    /// bound. Google's clients send fractions of a second (`datetime.utcnow().isoformat()`);
    /// Quando's times are whole seconds, so a fraction rounds the bound down (`Round::Down`) or
    /// up without changing which events it selects.
    pub fn time(&self, name: &str, round: Round) -> Result<Option<DateTime<Utc>>, GError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => bound(v, round).map(Some).map_err(|e| {
                GError::invalid(
                    name,
                    format!("Invalid value for {name}: {e} (RFC 3339 with an offset, e.g. 2026-12-01T10:00:00Z)"),
                )
            }),
        }
    }
}

/// Which way a bound with a fraction of a second goes to a whole second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    Down,
    Up,
}

/// An instant bound, its fraction of a second rounded `round`.
pub fn bound(v: &str, round: Round) -> Result<DateTime<Utc>, crate::domain::time::TimeError> {
    let (whole, fraction) = split_fraction(v);
    let t = parse_instant(&whole, None)?;
    Ok(if fraction && round == Round::Up {
        t + chrono::Duration::seconds(1)
    } else {
        t
    })
}

/// `10:00:00.250Z` as `10:00:00Z` and whether the fraction was not zero.
fn split_fraction(v: &str) -> (String, bool) {
    if let Some(dot) = v.find('.') {
        let digits: String = v[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            let whole = format!("{}{}", &v[..dot], &v[dot + 1 + digits.len()..]);
            return (whole, digits.chars().any(|c| c != '0'));
        }
    }
    (v.to_string(), false)
}

/// `10:00:00.000Z` reads as `10:00:00Z`: Google's clients send milliseconds; Quando stores
/// whole seconds and refuses a fraction that is not zero.
pub fn strip_zero_fraction(v: &str) -> String {
    if let Some(dot) = v.find('.') {
        let digits: String = v[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() && digits.chars().all(|c| c == '0') {
            return format!("{}{}", &v[..dot], &v[dot + 1 + digits.len()..]);
        }
    }
    v.to_string()
}

/// What `fields=` asked for: top-level members, and for each one optionally the members of its
/// items (`items(id,summary)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMask(Vec<(String, Option<Vec<String>>)>);

impl FieldMask {
    /// Parses `a,b(c,d),e/f`; a path `e/f` keeps all of `e` (members below the top level are
    /// not trimmed).
    pub fn parse(spec: &str) -> Result<FieldMask, GError> {
        let bad = || GError::invalid("fields", format!("Invalid field selection: '{spec}'"));
        let mut out = Vec::new();
        let mut depth = 0usize;
        let mut start = 0usize;
        let bytes = spec.as_bytes();
        let mut parts = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => depth = depth.checked_sub(1).ok_or_else(bad)?,
                b',' if depth == 0 => {
                    parts.push(&spec[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err(bad());
        }
        parts.push(&spec[start..]);
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, sub) = match part.split_once('(') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix(')').ok_or_else(bad)?;
                    let sub: Vec<String> = inner
                        .split(',')
                        .map(|s| s.trim().split('/').next().unwrap_or("").to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    (name.trim(), Some(sub))
                }
                None => (part.split('/').next().unwrap_or(part), None),
            };
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
            if !valid {
                return Err(bad());
            }
            out.push((name.to_string(), sub));
        }
        Ok(FieldMask(out))
    }

    /// The members of `value` that were asked for.
    pub fn apply(&self, value: Value) -> Value {
        let Value::Object(map) = value else {
            return value;
        };
        if self.0.is_empty() || self.0.iter().any(|(n, _)| n == "*") {
            return Value::Object(map);
        }
        let mut out = Map::new();
        for (name, sub) in &self.0 {
            let Some(v) = map.get(name) else { continue };
            let v = match (sub, v) {
                (Some(sub), Value::Array(items)) => {
                    Value::Array(items.iter().map(|item| pick(item, sub)).collect())
                }
                (Some(sub), other) => pick(other, sub),
                (None, other) => other.clone(),
            };
            out.insert(name.clone(), v);
        }
        Value::Object(out)
    }
}

fn pick(item: &Value, names: &[String]) -> Value {
    match item {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| names.iter().any(|n| n == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One call: the caller, its standard parameters and where the server is reached.
pub struct Call {
    pub org: OrgId,
    pub params: Params,
    fields: Option<FieldMask>,
    pretty: bool,
    /// `http://host:port` as the request named it, for `htmlLink`.
    pub base: String,
}

impl Call {
    /// Authenticates with the scope, and checks the standard parameters.
    pub fn new(req: &Request, scope: Scope) -> Result<Call, GError> {
        let tenant = tenant(req, scope)?;
        let params = Params::of(req);
        if let Some(alt) = params.get("alt")
            && alt != "json"
        {
            return Err(GError::invalid(
                "alt",
                format!("Invalid value for alt: '{alt}' (only json is served)"),
            ));
        }
        let pretty = params.bool("prettyPrint")?.unwrap_or(true);
        let fields = params.get("fields").map(FieldMask::parse).transpose()?;
        let host = req
            .headers()
            .get(poem::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Ok(Call {
            org: tenant.org_id,
            params,
            fields,
            pretty,
            base: format!("http://{host}"),
        })
    }

    /// A JSON answer, trimmed to `fields` and printed as `prettyPrint` asks.
    pub fn respond(&self, status: StatusCode, value: Value) -> Response {
        let value = match &self.fields {
            Some(mask) => mask.apply(value),
            None => value,
        };
        let body = if self.pretty {
            serde_json::to_string_pretty(&value).unwrap_or_default()
        } else {
            value.to_string()
        };
        Response::builder()
            .status(status)
            .content_type("application/json; charset=UTF-8")
            .body(body)
    }
}

/// The caller, as the tenant layer authenticated it, holding `scope`.
pub fn tenant(req: &Request, scope: Scope) -> Result<Tenant, GError> {
    if let Some(tenant) = req.data::<Tenant>() {
        tenant.require(scope)?;
        return Ok(tenant.clone());
    }
    if let Some(AuthFailure(err)) = req.data::<AuthFailure>() {
        return Err(err.clone().into());
    }
    Err(GError::new(
        StatusCode::UNAUTHORIZED,
        "global",
        "authError",
        "Login Required: send Authorization: Bearer qnd_live_... (a Quando API key)",
    )
    .at("Authorization"))
}

/// The calendar a `calendarId` names: a Quando calendar id, or `primary` for the organization's
/// default calendar. Another organization's calendar is not found, exactly like a missing one.
pub async fn calendar_of(
    state: &AppState,
    org: OrgId,
    calendar_id: &str,
) -> Result<entity::calendars::Model, GError> {
    if calendar_id == "primary" {
        return state
            .service
            .default_calendar(org)
            .await?
            .ok_or_else(|| {
                GError::not_found(
                    "Not Found: this organization has no default calendar, so 'primary' names none; \
                     make one the default with PATCH /v1/calendar/calendars/{id} {\"isDefault\": true} \
                     (or POST /v1/calendar/calendars with \"isDefault\": true), or use the calendar's id",
                )
            });
    }
    let id = uuid::Uuid::try_parse(calendar_id)
        .map_err(|_| GError::not_found(format!("Not Found: no calendar '{calendar_id}'")))?;
    Ok(state.service.calendar(org, CalendarId(id)).await?)
}

/// RFC 3339 with milliseconds, as Google writes `created` and `updated`.
pub fn google_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An empty 204 or 304 answer.
pub fn no_content(status: StatusCode) -> Response {
    StatusCode::into_response(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_keep_the_members_asked_for_and_of_each_item() {
        let mask = FieldMask::parse("items(id,summary),nextPageToken").unwrap();
        let v = json!({"kind": "calendar#events", "nextPageToken": "p",
            "items": [{"id": "a", "summary": "s", "etag": "e"}]});
        assert_eq!(
            mask.apply(v),
            json!({"nextPageToken": "p", "items": [{"id": "a", "summary": "s"}]})
        );
        assert!(FieldMask::parse("items(id").is_err());
        assert!(FieldMask::parse("a b").is_err());
    }

    #[test]
    fn a_bound_with_a_fraction_rounds_to_a_whole_second() {
        let t = |s: &str, r| crate::domain::time::format_utc(bound(s, r).unwrap());
        assert_eq!(
            t("2026-01-01T10:00:00.25Z", Round::Down),
            "2026-01-01T10:00:00Z"
        );
        assert_eq!(
            t("2026-01-01T10:00:00.25Z", Round::Up),
            "2026-01-01T10:00:01Z"
        );
        assert_eq!(
            t("2026-01-01T10:00:00.000+01:00", Round::Up),
            "2026-01-01T09:00:00Z"
        );
        assert!(bound("2026-01-01T10:00:00.5", Round::Down).is_err());
    }

    #[test]
    fn a_zero_fraction_is_dropped_and_another_kept() {
        assert_eq!(
            strip_zero_fraction("2026-01-01T10:00:00.000Z"),
            "2026-01-01T10:00:00Z"
        );
        assert_eq!(
            strip_zero_fraction("2026-01-01T10:00:00.5Z"),
            "2026-01-01T10:00:00.5Z"
        );
        assert_eq!(
            strip_zero_fraction("2026-01-01T10:00:00+01:00"),
            "2026-01-01T10:00:00+01:00"
        );
    }
}
