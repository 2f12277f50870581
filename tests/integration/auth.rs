//! API keys: missing, malformed and unknown keys (401), revoked keys (403 forbidden), and scope
//! enforcement (403 insufficient_scope naming the missing scope).
//!
//! The walks are driven by the spec the server serves: every operation of `/openapi.json` with a
//! security requirement is called, its scope read from the requirement (the scheme
//! `calendarRead` or `calendarWrite`, `quando_api::auth::SCHEME_SCOPES`). An operation added
//! without a scope check, or with the wrong scheme, fails here without anyone listing it. The
//! operations that also name `publishableKey` are the only ones a publishable key reaches.

use quando_api::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        organization_keys_look_like_qnd_live_keys,
        every_operation_with_a_security_requirement_is_401_without_a_key,
        a_bearer_token_that_is_not_a_key_is_401,
        an_unknown_key_of_the_right_shape_is_401,
        basic_auth_is_401,
        a_revoked_key_is_403_forbidden,
        a_read_only_key_can_call_every_operation_of_the_calendar_read_scheme,
        a_key_without_an_operations_scope_is_403_insufficient_scope_naming_it_on_every_operation,
        a_write_only_key_can_create,
        a_publishable_key_reaches_only_the_operations_whose_spec_names_its_scheme,
    ]
}

/// One operation of the served spec that has a security requirement, ready to call with only
/// the key deciding the answer: its path filled with the caller's ids, its required query
/// parameters set, and a body that would be valid.
struct Secured {
    id: String,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    scope: Scope,
    /// The spec names `publishableKey` beside the scope's scheme.
    publishable: bool,
}

impl Secured {
    fn request(&self, app: &TestApp, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = match key {
            Some(key) => app.req_as(key, self.method.clone(), &self.path),
            None => app.bare(self.method.clone(), &self.path),
        };
        with_body(request.query(&self.query), &self.body)
    }

    fn describe(&self) -> String {
        format!("{} ({} {})", self.id, self.method, self.path)
    }
}

/// A body that would be valid, by operationId. An operation with a request body that is not
/// here fails the walk: add it.
fn valid_body(operation_id: &str, ids: &(String, String, String)) -> Option<Value> {
    let (calendar_id, event_type_id, _) = ids;
    Some(match operation_id {
        "createEvent" => event_body(
            calendar_id,
            event_type_id,
            "2027-05-03T09:00:00Z",
            "2027-05-03T09:30:00Z",
        ),
        "updateEvent" => json!({"title": "Rinominato"}),
        "cancelEvent" => json!({"reason": "test"}),
        "createCalendar" => json!({"name": "Nuovo", "timezone": "Europe/Rome"}),
        "updateCalendar" => json!({"name": "Rinominato"}),
        "createEventType" => {
            json!({"calendarId": calendar_id, "name": "Nuovo tipo", "durationMinutes": 20})
        }
        "updateEventType" => json!({"name": "Rinominato"}),
        "createWebhook" => json!({"url": "https://hooks.example.com/quando"}),
        "updateWebhook" => json!({"description": "Rinominato"}),
        "createHold" => json!({"calendarId": calendar_id, "eventTypeId": event_type_id,
                               "startTime": "2027-05-03T11:00:00Z"}),
        "talkoverCreateEvent" => json!({"title": "Demo", "start_at": "2027-05-03T10:00:00Z",
                                        "end_at": "2027-05-03T10:30:00Z"}),
        "talkoverUpdateEvent" => json!({"title": "Rinominato"}),
        "talkoverAddAttendee" => json!({"name": "Jane", "email": "jane@example.com"}),
        "talkoverCreateCalendar" => json!({"name": "Nuovo", "owner_id": "user_1"}),
        "talkoverAddMember" => json!({"user_id": "user_1", "role": "editor"}),
        "talkoverUpdateMember" => json!({"user_id": "user_1"}),
        "talkoverCreateAvailabilityRule" => json!({"type": "recurring", "days_of_week": [1, 2],
                                                   "start_time": "09:00", "end_time": "12:00"}),
        _ => return None,
    })
}

/// A value for a required query parameter, by name.
fn query_value(name: &str, ids: &(String, String, String)) -> Option<String> {
    let (calendar_id, event_type_id, _) = ids;
    Some(match name {
        "calendarId" => calendar_id.clone(),
        "eventTypeId" => event_type_id.clone(),
        "dateFrom" => "2027-05-03T00:00:00Z".into(),
        "dateTo" => "2027-05-04T00:00:00Z".into(),
        "calendar_ids[]" => calendar_id.clone(),
        "from" => "2027-05-03T00:00:00Z".into(),
        "to" => "2027-05-04T00:00:00Z".into(),
        _ => return None,
    })
}

/// Every operation of the served spec with a security requirement. Fails when a `/v1`
/// operation has none, names a scheme of no known scope, or cannot be called (a path parameter,
/// a required query parameter or a body the walk does not know).
async fn secured_operations(app: &TestApp, ids: &(String, String, String)) -> Vec<Secured> {
    let spec = crate::spec_walk::fetch_spec(app).await;
    let (calendar_id, event_type_id, event_id) = ids;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("the spec has no paths") {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Ok(http_method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap_or("?").to_owned();
            let requirements = op["security"].as_array().cloned().unwrap_or_default();
            if requirements.is_empty() {
                if template.starts_with("/v1/") {
                    problems.push(format!(
                        "{id}: a /v1 operation without a security requirement"
                    ));
                }
                continue;
            }
            let all_schemes: Vec<&String> = requirements
                .iter()
                .flat_map(|r| r.as_object().into_iter().flatten().map(|(k, _)| k))
                .collect();
            let publishable = all_schemes.iter().any(|s| *s == "publishableKey");
            let schemes: Vec<&String> = all_schemes
                .iter()
                .copied()
                .filter(|s| *s != "publishableKey")
                .collect();
            let scope = match schemes.as_slice() {
                [only] => quando_api::auth::SCHEME_SCOPES
                    .iter()
                    .find(|(name, _)| name == only)
                    .map(|(_, scope)| *scope),
                _ => None,
            };
            let Some(scope) = scope else {
                problems.push(format!(
                    "{id}: security {schemes:?} is not exactly one scheme of a known scope"
                ));
                continue;
            };
            let path = template
                .replace("/events/{id}", &format!("/events/{event_id}"))
                .replace("/calendars/{id}", &format!("/calendars/{calendar_id}"))
                .replace(
                    "/event-types/{id}",
                    &format!("/event-types/{event_type_id}"),
                )
                .replace("{calendar_id}", calendar_id)
                // Any member id: the key is checked before the member is looked up.
                .replace("{member_id}", &uuid::Uuid::nil().to_string())
                .replace("{event_id}", event_id)
                // Any rule id: the key is checked before the rule is looked up.
                .replace("{rule_id}", &uuid::Uuid::nil().to_string())
                // Any webhook and delivery id: the key is checked before they are looked up.
                .replace(
                    "/webhooks/{id}",
                    &format!("/webhooks/{}", uuid::Uuid::nil()),
                )
                .replace("{delivery_id}", &uuid::Uuid::nil().to_string())
                // Any hold id: the key is checked before the hold is looked up.
                .replace("/holds/{id}", &format!("/holds/{}", uuid::Uuid::nil()));
            if path.contains('{') {
                problems.push(format!(
                    "{id}: a path parameter the walk does not know: {path}"
                ));
                continue;
            }
            let mut query = Vec::new();
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] != json!("query") || parameter["required"] != json!(true) {
                    continue;
                }
                let name = parameter["name"].as_str().unwrap_or("?");
                match query_value(name, ids) {
                    Some(value) => query.push((name.to_owned(), value)),
                    None => problems.push(format!("{id}: required query parameter {name}")),
                }
            }
            let body = if op["requestBody"].is_object() {
                let body = valid_body(&id, ids);
                if body.is_none() {
                    problems.push(format!("{id}: takes a body; add a valid one to valid_body"));
                    continue;
                }
                body
            } else {
                None
            };
            out.push(Secured {
                id,
                method: http_method,
                path,
                query,
                body,
                scope,
                publishable,
            });
        }
    }
    assert!(
        problems.is_empty(),
        "the spec-driven walk cannot call: {problems:#?}"
    );
    let walked: Vec<&str> = out.iter().map(|o| o.id.as_str()).collect();
    for known in [
        "listEvents",
        "createEvent",
        "getEvent",
        "updateEvent",
        "cancelEvent",
        "getAvailability",
        "listCalendars",
        "createCalendar",
        "getCalendar",
        "updateCalendar",
        "listEventTypes",
        "createEventType",
        "getEventType",
        "updateEventType",
    ] {
        assert!(
            walked.contains(&known),
            "{known} is not a secured operation of the spec: {walked:?}"
        );
    }
    out
}

/// Every scope but `scope`: what a key lacking it holds.
fn other(scope: Scope) -> Vec<Scope> {
    Scope::ALL.into_iter().filter(|s| *s != scope).collect()
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

async fn every_operation_with_a_security_requirement_is_401_without_a_key(app: TestApp) {
    let ids = fixtures(&app).await;
    let before = counts(&app).await;
    for op in secured_operations(&app, &ids).await {
        let resp = send(op.request(&app, None)).await;
        assert_eq!(
            resp.status,
            401,
            "{} without a key: {}",
            op.describe(),
            resp.describe()
        );
        assert_error_at(&resp, &op.path, 401, "unauthorized");
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

async fn a_read_only_key_can_call_every_operation_of_the_calendar_read_scheme(app: TestApp) {
    let ids = fixtures(&app).await;
    let key = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    let reads: Vec<Secured> = secured_operations(&app, &ids)
        .await
        .into_iter()
        .filter(|op| op.scope == Scope::CalendarRead)
        .collect();
    assert!(
        reads.iter().all(|op| op.method == Method::GET),
        "calendar:read is for GET operations only: {:?}",
        reads.iter().map(Secured::describe).collect::<Vec<_>>()
    );
    for op in reads {
        let resp = send(op.request(&app, Some(&key))).await;
        if op.path.ends_with("/providers") {
            // Authorised, then not supported (external calendar providers).
            assert_error_at(&resp, &op.path, 501, "not_supported");
            continue;
        }
        if op.id == "getCalendarFeed" {
            // The first read makes the calendar's feed (201, its URL shown once); then 200.
            assert_ok_at(&resp, &op.path, 201);
            let again = send(op.request(&app, Some(&key))).await;
            assert_ok_at(&again, &op.path, 200);
            continue;
        }
        assert_eq!(
            resp.status,
            200,
            "{} with calendar:read: {}",
            op.describe(),
            resp.describe()
        );
        assert_ok_at(&resp, &op.path, 200);
    }
}

async fn a_key_without_an_operations_scope_is_403_insufficient_scope_naming_it_on_every_operation(
    app: TestApp,
) {
    let ids = fixtures(&app).await;
    let before = counts(&app).await;
    let calendar_path = format!("/v1/calendar/calendars/{}", ids.0);
    let event_path = format!("/v1/calendar/events/{}", ids.2);
    let calendar_before = assert_ok(&app.get(&calendar_path).await, 200);
    let event_before = assert_ok(&app.get(&event_path).await, 200);
    let mut lacking = std::collections::HashMap::new();
    for scope in Scope::ALL {
        lacking.insert(scope, app.key_with_scopes(app.org_id, &other(scope)).await);
    }
    let operations = secured_operations(&app, &ids).await;
    for scope in Scope::ALL {
        assert!(
            operations.iter().any(|op| op.scope == scope),
            "no operation of the spec needs {}",
            scope.as_str()
        );
    }
    for op in &operations {
        let key = &lacking[&op.scope];
        assert!(
            op.method == Method::GET || op.scope != Scope::CalendarRead,
            "{} changes state and must not need only calendar:read",
            op.describe()
        );
        let resp = send(op.request(&app, Some(key))).await;
        assert_eq!(
            resp.status,
            403,
            "{} with only {}: {}",
            op.describe(),
            quando_api::auth::format_scopes(&other(op.scope)),
            resp.describe()
        );
        let error = assert_error_at(&resp, &op.path, 403, "insufficient_scope");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(op.scope.as_str()),
            "{}: the message should name {}: {error}",
            op.describe(),
            op.scope.as_str()
        );
    }
    assert_eq!(
        counts(&app).await,
        before,
        "refused writes must create nothing"
    );
    assert_eq!(
        assert_ok(&app.get(&calendar_path).await, 200),
        calendar_before,
        "refused patches must change nothing"
    );
    assert_eq!(
        assert_ok(&app.get(&event_path).await, 200),
        event_before,
        "refused patches and cancels must change nothing"
    );
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

async fn a_publishable_key_reaches_only_the_operations_whose_spec_names_its_scheme(app: TestApp) {
    let ids = fixtures(&app).await;
    let key = quando_api::admin::create_publishable_key(
        &app.db,
        app.org_id,
        &[ids.1.parse().expect("event type id")],
        &["https://shop.example".to_string()],
        Some("widget"),
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("admin::create_publishable_key failed: {e}"))
    .key;
    assert!(key.starts_with("qnd_pub_"), "{key}");
    let operations = secured_operations(&app, &ids).await;
    let reached: Vec<&str> = operations
        .iter()
        .filter(|op| op.publishable)
        .map(|op| op.id.as_str())
        .collect();
    let allowed = [
        "createEvent",
        "getAvailability",
        "getEventType",
        "createHold",
        "releaseHold",
    ];
    for id in &reached {
        assert!(
            allowed.contains(id),
            "{id} names publishableKey, but a widget has no business there"
        );
    }
    for wanted in allowed {
        assert!(
            reached.contains(&wanted),
            "{wanted} should accept a publishable key: {reached:?}"
        );
    }
    let before = counts(&app).await;
    for op in operations.iter().filter(|op| !op.publishable) {
        let resp = send(op.request(&app, Some(&key))).await;
        assert_eq!(
            resp.status,
            403,
            "{} with a publishable key: {}",
            op.describe(),
            resp.describe()
        );
        let error = assert_error_at(&resp, &op.path, 403, "insufficient_scope");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("publishable key"),
            "{}: {error}",
            op.describe()
        );
    }
    assert_eq!(
        counts(&app).await,
        before,
        "a publishable key changes nothing it may not reach"
    );
    for op in operations.iter().filter(|op| op.publishable) {
        let resp = send(op.request(&app, Some(&key))).await;
        let want = match op.id.as_str() {
            "createEvent" | "createHold" => 201,
            // The walk's hold id is made up: not found, after the key was accepted.
            "releaseHold" => 404,
            _ => 200,
        };
        assert_eq!(
            resp.status,
            want,
            "{} with a publishable key: {}",
            op.describe(),
            resp.describe()
        );
    }
}
