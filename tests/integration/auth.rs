//! API keys: missing, malformed and unknown keys (401), revoked keys (403 forbidden), and scope
//! enforcement (403 insufficient_scope naming the missing scope).

use quando_api::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        organization_keys_look_like_qnd_live_keys,
        every_v1_endpoint_without_a_key_is_401,
        a_bearer_token_that_is_not_a_key_is_401,
        an_unknown_key_of_the_right_shape_is_401,
        basic_auth_is_401,
        a_revoked_key_is_403_forbidden,
        a_read_only_key_can_read_everything,
        a_read_only_key_writing_is_403_insufficient_scope_naming_calendar_write,
        a_write_only_key_reading_is_403_insufficient_scope_naming_calendar_read,
        a_write_only_key_can_create,
    ]
}

/// Every /v1 operation with a body that would be valid, so that only the key decides the answer.
/// `ids` = (calendar id, event type id, event id) of the caller's organization.
fn operations(ids: &(String, String, String)) -> Vec<(Method, String, Option<Value>)> {
    let (calendar_id, event_type_id, event_id) = ids;
    vec![
        (Method::GET, "/v1/calendar/events".into(), None),
        (
            Method::POST,
            "/v1/calendar/events".into(),
            Some(event_body(
                calendar_id,
                event_type_id,
                "2027-05-03T09:00:00Z",
                "2027-05-03T09:30:00Z",
            )),
        ),
        (Method::GET, format!("/v1/calendar/events/{event_id}"), None),
        (Method::GET, "/v1/calendar/calendars".into(), None),
        (
            Method::POST,
            "/v1/calendar/calendars".into(),
            Some(json!({"name": "Nuovo", "timezone": "Europe/Rome"})),
        ),
        (
            Method::GET,
            format!("/v1/calendar/calendars/{calendar_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/calendar/calendars/{calendar_id}"),
            Some(json!({"name": "Rinominato"})),
        ),
        (Method::GET, "/v1/calendar/event-types".into(), None),
        (
            Method::POST,
            "/v1/calendar/event-types".into(),
            Some(json!({"calendarId": calendar_id, "name": "Nuovo tipo", "durationMinutes": 20})),
        ),
        (
            Method::GET,
            format!("/v1/calendar/event-types/{event_type_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/calendar/event-types/{event_type_id}"),
            Some(json!({"name": "Rinominato"})),
        ),
    ]
}

/// A calendar, an event type and an event of the first organization.
async fn fixtures(app: &TestApp) -> (String, String, String) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T08:00:00Z",
            "2027-05-03T08:30:00Z",
        )
        .await;
    (calendar_id, event_type_id, id_of(&event))
}

fn with_body(request: reqwest::RequestBuilder, body: &Option<Value>) -> reqwest::RequestBuilder {
    match body {
        Some(body) => request.json(body),
        None => request,
    }
}

/// How many calendars, event types and events the first organization has.
async fn counts(app: &TestApp) -> (u64, u64, u64) {
    let mut out = [0u64; 3];
    for (i, path) in [
        "/v1/calendar/calendars",
        "/v1/calendar/event-types",
        "/v1/calendar/events",
    ]
    .iter()
    .enumerate()
    {
        let (_, pagination) = assert_list(&app.get(path).await);
        out[i] = pagination["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {pagination}"));
    }
    (out[0], out[1], out[2])
}

async fn organization_keys_look_like_qnd_live_keys(app: TestApp) {
    assert!(
        app.key.starts_with("qnd_live_"),
        "org key {:?} should start with qnd_live_",
        app.key
    );
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    assert!(
        key.starts_with("qnd_live_"),
        "key {key:?} should start with qnd_live_"
    );
    assert_ne!(key, app.key, "every key is new");
}

async fn every_v1_endpoint_without_a_key_is_401(app: TestApp) {
    let ids = fixtures(&app).await;
    let before = counts(&app).await;
    for (method, path, body) in operations(&ids) {
        let resp = send(with_body(app.bare(method.clone(), &path), &body)).await;
        assert_eq!(
            resp.status,
            401,
            "{method} {path} without a key: {}",
            resp.describe()
        );
        assert_error(&resp, 401, "unauthorized");
    }
    assert_eq!(
        counts(&app).await,
        before,
        "unauthenticated requests must change nothing"
    );
}

async fn a_bearer_token_that_is_not_a_key_is_401(app: TestApp) {
    for token in [
        "nonsense",
        "qnd_live_",
        "qnd_live_short",
        "rpl_live_your_key",
    ] {
        let resp = app.get_as(token, "/v1/calendar/events").await;
        assert_eq!(resp.status, 401, "Bearer {token}: {}", resp.describe());
        assert_error(&resp, 401, "unauthorized");
    }
    let resp = send(
        app.bare(Method::GET, "/v1/calendar/events")
            .header("Authorization", "Bearer"),
    )
    .await;
    assert_error(&resp, 401, "unauthorized");
    let resp = send(
        app.bare(Method::GET, "/v1/calendar/events")
            .header("Authorization", "Bearer "),
    )
    .await;
    assert_error(&resp, 401, "unauthorized");
}

async fn an_unknown_key_of_the_right_shape_is_401(app: TestApp) {
    let forty = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0";
    assert_eq!(forty.len(), 40);
    for key in [format!("qnd_live_{forty}"), format!("qnd_test_{forty}")] {
        let resp = app.get_as(&key, "/v1/calendar/events").await;
        assert_eq!(resp.status, 401, "unknown key {key}: {}", resp.describe());
        assert_error(&resp, 401, "unauthorized");
    }
    // A real key with one character changed is unknown too.
    let mut tampered = app.key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'x' { 'y' } else { 'x' });
    assert_error(
        &app.get_as(&tampered, "/v1/calendar/events").await,
        401,
        "unauthorized",
    );
}

async fn basic_auth_is_401(app: TestApp) {
    let resp = send(
        app.bare(Method::GET, "/v1/calendar/events")
            .basic_auth("admin", Some(&app.key)),
    )
    .await;
    assert_error(&resp, 401, "unauthorized");
    let resp = send(
        app.bare(Method::GET, "/v1/calendar/events")
            .basic_auth(&app.key, None::<&str>),
    )
    .await;
    assert_error(&resp, 401, "unauthorized");
}

async fn a_revoked_key_is_403_forbidden(app: TestApp) {
    let (key_id, key) = app
        .created_key_with_scopes(app.org_id, &[Scope::CalendarRead, Scope::CalendarWrite])
        .await;
    assert_list(&app.get_as(&key, "/v1/calendar/events").await);
    quando_api::admin::revoke_key(&app.db, key_id)
        .await
        .unwrap_or_else(|e| panic!("admin::revoke_key failed: {e}"));
    let resp = app.get_as(&key, "/v1/calendar/events").await;
    assert_error(&resp, 403, "forbidden");
    let resp = app
        .post_as(
            &key,
            "/v1/calendar/calendars",
            &json!({"name": "Revocato", "timezone": "UTC"}),
        )
        .await;
    assert_error(&resp, 403, "forbidden");
    // The organization's other key still works.
    assert_list(&app.get("/v1/calendar/events").await);
}

async fn a_read_only_key_can_read_everything(app: TestApp) {
    let ids = fixtures(&app).await;
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    for (method, path, _) in operations(&ids)
        .into_iter()
        .filter(|(m, _, _)| *m == Method::GET)
    {
        let resp = app.get_as(&key, &path).await;
        assert_eq!(
            resp.status,
            200,
            "{method} {path} with calendar:read: {}",
            resp.describe()
        );
        assert_ok(&resp, 200);
    }
}

async fn a_read_only_key_writing_is_403_insufficient_scope_naming_calendar_write(app: TestApp) {
    let ids = fixtures(&app).await;
    let before = counts(&app).await;
    let calendar_before = assert_ok(
        &app.get(&format!("/v1/calendar/calendars/{}", ids.0)).await,
        200,
    );
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    for (method, path, body) in operations(&ids)
        .into_iter()
        .filter(|(m, _, _)| *m != Method::GET)
    {
        let resp = send(with_body(app.req_as(&key, method.clone(), &path), &body)).await;
        assert_eq!(
            resp.status,
            403,
            "{method} {path} with only calendar:read: {}",
            resp.describe()
        );
        let error = assert_error(&resp, 403, "insufficient_scope");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("calendar:write"),
            "the message should name calendar:write: {error}"
        );
    }
    assert_eq!(
        counts(&app).await,
        before,
        "refused writes must create nothing"
    );
    let calendar_after = assert_ok(
        &app.get(&format!("/v1/calendar/calendars/{}", ids.0)).await,
        200,
    );
    assert_eq!(
        calendar_after, calendar_before,
        "refused patches must change nothing"
    );
}

async fn a_write_only_key_reading_is_403_insufficient_scope_naming_calendar_read(app: TestApp) {
    let ids = fixtures(&app).await;
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarWrite])
        .await;
    for (method, path, _) in operations(&ids)
        .into_iter()
        .filter(|(m, _, _)| *m == Method::GET)
    {
        let resp = app.get_as(&key, &path).await;
        assert_eq!(
            resp.status,
            403,
            "{method} {path} with only calendar:write: {}",
            resp.describe()
        );
        let error = assert_error(&resp, 403, "insufficient_scope");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("calendar:read"),
            "the message should name calendar:read: {error}"
        );
    }
}

async fn a_write_only_key_can_create(app: TestApp) {
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarWrite])
        .await;
    let calendar = app.create_calendar(&key, None).await;
    let event_type = app
        .create_event_type(&key, Some(&id_of(&calendar)), 30)
        .await;
    app.create_event(
        &key,
        &id_of(&calendar),
        &id_of(&event_type),
        "2027-05-03T09:00:00Z",
        "2027-05-03T09:30:00Z",
    )
    .await;
    assert_eq!(counts(&app).await, (1, 1, 1));
}
