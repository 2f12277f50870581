//! Tenant isolation, driven by the spec the server serves: every operation whose path has a
//! parameter is called with a second organization's key on the first organization's ids and must
//! be 404 `not_found` (never 200, 403 or 500); every operation that takes ids in its query or body
//! is called with the first organization's ids and gives its documented answer. An operation the
//! walk does not know how to call fails the test, so new operations cannot slip past it.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        every_operation_with_a_path_parameter_is_404_for_another_organizations_ids,
        every_operation_taking_ids_in_query_or_body_hides_another_organizations_ids,
    ]
}

/// GET /openapi.json from the running server.
pub async fn fetch_spec(app: &TestApp) -> Value {
    let resp = send(app.bare(Method::GET, "/openapi.json")).await;
    assert_eq!(resp.status, 200, "GET /openapi.json: {}", resp.describe());
    assert!(
        resp.body["paths"].is_object(),
        "/openapi.json has no paths: {}",
        resp.describe()
    );
    resp.body
}

/// `schema` with `$ref`s (`#/components/schemas/...`) followed.
pub fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(reference) = schema["$ref"].as_str() else {
            return schema;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("an external $ref: {reference}"));
        schema = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("a $ref to nothing: {reference}"));
    }
    panic!("a $ref cycle at {schema}");
}

/// Whether `schema` is (or combines) a string of format uuid.
fn is_uuid(spec: &Value, schema: &Value) -> bool {
    let schema = resolve(spec, schema);
    schema["format"] == json!("uuid")
        || ["allOf", "anyOf", "oneOf"].iter().any(|k| {
            schema[*k]
                .as_array()
                .is_some_and(|parts| parts.iter().any(|p| is_uuid(spec, p)))
        })
}

/// One operation of the spec, with what the walk needs to know about it.
#[derive(Debug)]
struct Operation {
    id: String,
    method: Method,
    path: String,
    has_path_parameters: bool,
    /// Query parameters and body fields that are ids (format uuid).
    id_inputs: Vec<String>,
    body_required: bool,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let paths = spec["paths"].as_object().expect("the spec has no paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            const METHODS: [&str; 8] = [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ];
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes())
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                .to_owned();
            let parameters: Vec<&Value> = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(op["parameters"].as_array().into_iter().flatten())
                .map(|p| resolve(spec, p))
                .collect();
            let has_path_parameters =
                path.contains('{') || parameters.iter().any(|p| p["in"] == json!("path"));
            let mut id_inputs: Vec<String> = parameters
                .iter()
                .filter(|p| p["in"] == json!("query") && is_uuid(spec, &p["schema"]))
                .map(|p| format!("query {}", p["name"].as_str().unwrap_or("?")))
                .collect();
            for media in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                let body = resolve(spec, &media["schema"]);
                for (name, field) in body["properties"].as_object().into_iter().flatten() {
                    if is_uuid(spec, field) {
                        id_inputs.push(format!("body {name}"));
                    }
                }
            }
            id_inputs.sort();
            id_inputs.dedup();
            out.push(Operation {
                id,
                method: http_method,
                path: path.clone(),
                has_path_parameters,
                id_inputs,
                body_required: op["requestBody"]["required"] == json!(true),
            });
        }
    }
    out
}

/// The first organization's calendar, event type and event, a webhook endpoint with one
/// delivery (a ping), and a slot hold.
struct OrgA {
    calendar: Value,
    event_type: Value,
    event: Value,
    webhook: String,
    delivery: String,
    hold: Value,
}

async fn org_a(app: &TestApp) -> OrgA {
    let calendar = app.create_calendar(&app.key, None).await;
    let event_type = app
        .create_event_type(&app.key, Some(&id_of(&calendar)), 30)
        .await;
    let event = app
        .create_event(
            &app.key,
            &id_of(&calendar),
            &id_of(&event_type),
            "2027-06-01T09:00:00Z",
            "2027-06-01T09:30:00Z",
        )
        .await;
    // A receiver that refuses connections: the ping's delivery exists, whatever becomes of it.
    let webhook = id_of(&assert_ok(
        &app.post("/v1/webhooks", &json!({"url": "http://127.0.0.1:9/hook"}))
            .await,
        201,
    ));
    let delivery = id_of(&assert_ok(
        &app.post(&format!("/v1/webhooks/{webhook}/test"), &json!({}))
            .await,
        202,
    ));
    let hold = assert_ok(
        &app.post(
            "/v1/calendar/holds",
            &json!({"calendarId": id_of(&calendar), "eventTypeId": id_of(&event_type),
                    "startTime": "2027-06-01T12:00:00Z", "ttlSeconds": 3600}),
        )
        .await,
        201,
    );
    OrgA {
        calendar,
        event_type,
        event,
        webhook,
        delivery,
        hold,
    }
}

impl OrgA {
    /// The id of A's resource named by a path segment (`calendars`, `event-types`, `events`).
    fn id_for(&self, segment: &str) -> Option<String> {
        match segment {
            "calendars" => Some(id_of(&self.calendar)),
            "event-types" => Some(id_of(&self.event_type)),
            "events" => Some(id_of(&self.event)),
            // Any member id: A's calendar, another organization's, is not found first (the
            // Talkover calendar tests walk a real member).
            "members" => Some(uuid::Uuid::nil().to_string()),
            // A's calendar is open around the clock and has no rules: any id (the calendar,
            // another organization's, is not found first).
            "availability-rules" => Some(uuid::Uuid::nil().to_string()),
            "webhooks" => Some(self.webhook.clone()),
            "deliveries" => Some(self.delivery.clone()),
            "holds" => Some(id_of(&self.hold)),
            _ => None,
        }
    }

    /// `template` with each `{parameter}` replaced by A's id of the kind its preceding segment
    /// names; None when a parameter follows a segment the walk does not know.
    fn fill(&self, template: &str) -> Option<String> {
        let mut previous = "";
        let mut out = Vec::new();
        for segment in template.split('/') {
            if segment.starts_with('{') && segment.ends_with('}') {
                out.push(self.id_for(previous)?);
            } else {
                out.push(segment.to_owned());
            }
            previous = segment;
        }
        Some(out.join("/"))
    }

    /// A's calendar, event type and event, read with A's key, equal to what they were; A's
    /// hold still live.
    async fn assert_unchanged(&self, app: &TestApp) {
        let again = app
            .post(
                "/v1/calendar/holds",
                &json!({"calendarId": id_of(&self.calendar), "eventTypeId": id_of(&self.event_type),
                        "startTime": self.hold["startTime"]}),
            )
            .await;
        assert_error(&again, 409, "slot_unavailable");
        let webhook = assert_ok(
            &app.get(&format!("/v1/webhooks/{}", self.webhook)).await,
            200,
        );
        assert_eq!(
            webhook["disabled"], false,
            "A's webhook was changed under another organization's key"
        );
        assert_ok(
            &app.get(&format!(
                "/v1/webhooks/{}/deliveries/{}",
                self.webhook, self.delivery
            ))
            .await,
            200,
        );
        for (path, before) in [
            (
                format!("/v1/calendar/calendars/{}", id_of(&self.calendar)),
                &self.calendar,
            ),
            (
                format!("/v1/calendar/event-types/{}", id_of(&self.event_type)),
                &self.event_type,
            ),
            (
                format!("/v1/calendar/events/{}", id_of(&self.event)),
                &self.event,
            ),
        ] {
            let now = assert_ok(&app.get(&path).await, 200);
            assert_eq!(
                &now, before,
                "{path} changed under another organization's key"
            );
        }
        for (path, only) in [
            ("/v1/calendar/calendars", &self.calendar),
            ("/v1/calendar/event-types", &self.event_type),
            ("/v1/calendar/events", &self.event),
        ] {
            let (items, _) = assert_list(&app.get(path).await);
            assert_eq!(
                ids(&items),
                vec![id_of(only)],
                "A's {path} gained or lost items"
            );
        }
    }
}

/// A minimal valid body for operations with a path parameter that require one, by operationId.
/// A new operation with a required body must be added here, or the walk fails.
fn minimal_body(operation_id: &str) -> Option<Value> {
    match operation_id {
        "updateCalendar" => Some(json!({"name": "x"})),
        "updateEventType" => Some(json!({"name": "x"})),
        "updateEvent" => Some(json!({"title": "x"})),
        "updateWebhook" => Some(json!({"disabled": true})),
        "talkoverCreateEvent" => Some(json!({"title": "x", "start_at": "2027-06-01T10:00:00Z",
                                             "end_at": "2027-06-01T10:30:00Z"})),
        "talkoverUpdateEvent" => Some(json!({"title": "x"})),
        "talkoverAddAttendee" => Some(json!({"email": "x@example.com"})),
        "talkoverAddMember" => Some(json!({"user_id": "x"})),
        "talkoverUpdateMember" => Some(json!({"user_id": "x"})),
        "talkoverCreateAvailabilityRule" => Some(json!({"type": "exception", "date": "2027-06-02",
                                                        "available": false})),
        _ => None,
    }
}

/// The required query parameters of an operation walked with a path parameter, by operationId.
fn minimal_query(operation_id: &str) -> Vec<(&'static str, &'static str)> {
    match operation_id {
        "talkoverGetAvailability" => {
            vec![
                ("from", "2027-06-01T00:00:00Z"),
                ("to", "2027-06-02T00:00:00Z"),
            ]
        }
        _ => Vec::new(),
    }
}

#[track_caller]
fn assert_hidden(resp: &Resp, path: &str, what: &str) {
    assert_eq!(
        resp.status,
        404,
        "{what} with another organization's key on A's ids must be 404: {}",
        resp.describe()
    );
    assert_error_at(resp, path, 404, "not_found");
}

async fn every_operation_with_a_path_parameter_is_404_for_another_organizations_ids(app: TestApp) {
    let spec = fetch_spec(&app).await;
    let a = org_a(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;

    let with_path_parameters: Vec<Operation> = operations(&spec)
        .into_iter()
        .filter(|op| op.has_path_parameters)
        .collect();
    let expected: BTreeSet<String> = with_path_parameters.iter().map(|o| o.id.clone()).collect();
    for known in [
        "getCalendar",
        "updateCalendar",
        "getEventType",
        "updateEventType",
        "getEvent",
        "updateEvent",
        "cancelEvent",
    ] {
        assert!(
            expected.contains(known),
            "the spec's operations with path parameters lack {known}: {expected:?}"
        );
    }

    let mut visited = BTreeSet::new();
    let mut unplanned = Vec::new();
    for op in &with_path_parameters {
        let Some(path) = a.fill(&op.path) else {
            unplanned.push(format!(
                "{} ({} {}): a path parameter of a kind the walk does not know",
                op.id, op.method, op.path
            ));
            continue;
        };
        let body = minimal_body(&op.id);
        if op.body_required && body.is_none() {
            unplanned.push(format!(
                "{} ({} {}): requires a body; add a minimal one to minimal_body",
                op.id, op.method, op.path
            ));
            continue;
        }
        let mut request = app
            .req_as(&key_b, op.method.clone(), &path)
            .query(&minimal_query(&op.id));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let resp = send(request).await;
        assert_hidden(
            &resp,
            &path,
            &format!("{} ({} {path}, body {body:?})", op.id, op.method),
        );
        visited.insert(op.id.clone());
    }
    assert_eq!(
        visited, expected,
        "every operation with a path parameter must be walked; not walked: {unplanned:?}"
    );

    a.assert_unchanged(&app).await;
}

async fn every_operation_taking_ids_in_query_or_body_hides_another_organizations_ids(app: TestApp) {
    let spec = fetch_spec(&app).await;
    let a = org_a(&app).await;
    let (a_calendar, a_event_type) = (id_of(&a.calendar), id_of(&a.event_type));
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let b_calendar = id_of(&app.create_calendar(&key_b, None).await);
    let b_event_type = id_of(&app.create_event_type(&key_b, Some(&b_calendar), 30).await);

    let taking_ids: BTreeSet<String> = operations(&spec)
        .into_iter()
        .filter(|op| !op.id_inputs.is_empty())
        .map(|op| format!("{} {:?}", op.id, op.id_inputs))
        .collect();
    let mut visited = BTreeSet::new();
    let mut visit = |id: &str, inputs: &[&str]| {
        visited.insert(format!("{id} {inputs:?}"));
    };

    // listEvents: filtering by A's ids finds nothing.
    visit("listEvents", &["query calendarId", "query eventTypeId"]);
    for (param, value) in [("calendarId", &a_calendar), ("eventTypeId", &a_event_type)] {
        let resp = app
            .get_query_as(&key_b, "/v1/calendar/events", &[(param, value.as_str())])
            .await;
        let (items, pagination) = assert_list(&resp);
        assert!(
            items.is_empty(),
            "listEvents?{param}=A's id: {}",
            resp.describe()
        );
        assert_pagination(&pagination, 1, 20, 0, 0);
    }

    // listEventTypes: likewise.
    visit("listEventTypes", &["query calendarId"]);
    let resp = app
        .get_query_as(
            &key_b,
            "/v1/calendar/event-types",
            &[("calendarId", a_calendar.as_str())],
        )
        .await;
    let (items, pagination) = assert_list(&resp);
    assert!(
        items.is_empty(),
        "listEventTypes?calendarId=A's calendar: {}",
        resp.describe()
    );
    assert_pagination(&pagination, 1, 20, 0, 0);

    // createEvent: A's calendar or event type, alone or with B's, is not found; at A's busy time
    // too (a 409 would reveal that A is busy then).
    visit(
        "createEvent",
        &["body calendarId", "body eventTypeId", "body holdId"],
    );
    // A's hold named in a booking on B's own calendar: not found (and A's hold stays live).
    let body = with(
        event_body(
            &b_calendar,
            &b_event_type,
            "2027-06-01T12:00:00Z",
            "2027-06-01T12:30:00Z",
        ),
        json!({"holdId": id_of(&a.hold)}),
    );
    let resp = app.post_as(&key_b, "/v1/calendar/events", &body).await;
    assert_hidden(&resp, "/v1", "createEvent with A's holdId");
    for (calendar_id, event_type_id, start, what) in [
        (
            &a_calendar,
            &a_event_type,
            "2027-06-01T15:00:00Z",
            "A's calendar and event type",
        ),
        (
            &a_calendar,
            &b_event_type,
            "2027-06-01T15:00:00Z",
            "A's calendar, B's event type",
        ),
        (
            &b_calendar,
            &a_event_type,
            "2027-06-01T15:00:00Z",
            "B's calendar, A's event type",
        ),
        (
            &a_calendar,
            &a_event_type,
            "2027-06-01T09:00:00Z",
            "over A's event",
        ),
    ] {
        let body = event_body(calendar_id, event_type_id, start, &plus_minutes(start, 30));
        let resp = app.post_as(&key_b, "/v1/calendar/events", &body).await;
        assert_hidden(&resp, "/v1", &format!("createEvent with {what}"));
    }

    // getAvailability: not found for A's ids, alone or mixed with B's.
    visit(
        "getAvailability",
        &["query calendarId", "query eventTypeId"],
    );
    for (calendar_id, event_type_id, what) in [
        (&a_calendar, &a_event_type, "A's calendar and event type"),
        (&a_calendar, &b_event_type, "A's calendar, B's event type"),
        (&b_calendar, &a_event_type, "B's calendar, A's event type"),
    ] {
        let resp = app
            .get_query_as(
                &key_b,
                "/v1/calendar/availability",
                &[
                    ("calendarId", calendar_id.as_str()),
                    ("eventTypeId", event_type_id.as_str()),
                    ("dateFrom", "2027-06-01T00:00:00Z"),
                    ("dateTo", "2027-06-02T00:00:00Z"),
                ],
            )
            .await;
        assert_hidden(&resp, "/v1", &format!("getAvailability with {what}"));
    }

    // createHold: A's calendar or event type, alone or with B's, is not found; over A's hold
    // too (a 409 would reveal that A's time is held).
    visit("createHold", &["body calendarId", "body eventTypeId"]);
    for (calendar_id, event_type_id, start, what) in [
        (
            &a_calendar,
            &a_event_type,
            "2027-06-01T15:00:00Z",
            "A's calendar and event type",
        ),
        (
            &a_calendar,
            &b_event_type,
            "2027-06-01T15:00:00Z",
            "A's calendar, B's event type",
        ),
        (
            &b_calendar,
            &a_event_type,
            "2027-06-01T15:00:00Z",
            "B's calendar, A's event type",
        ),
        (
            &a_calendar,
            &a_event_type,
            "2027-06-01T12:00:00Z",
            "over A's hold",
        ),
    ] {
        let body =
            json!({"calendarId": calendar_id, "eventTypeId": event_type_id, "startTime": start});
        let resp = app.post_as(&key_b, "/v1/calendar/holds", &body).await;
        assert_hidden(&resp, "/v1", &format!("createHold with {what}"));
    }

    // createEventType on A's calendar: not found.
    visit("createEventType", &["body calendarId"]);
    let resp = app
        .post_as(
            &key_b,
            "/v1/calendar/event-types",
            &json!({"calendarId": a_calendar, "name": "Intruso", "durationMinutes": 30}),
        )
        .await;
    assert_hidden(&resp, "/v1", "createEventType on A's calendar");

    // updateEventType: moving B's own event type onto A's calendar is not found either.
    visit("updateEventType", &["body calendarId"]);
    let b_type_path = format!("/v1/calendar/event-types/{b_event_type}");
    let b_type_before = assert_ok(&app.get_as(&key_b, &b_type_path).await, 200);
    let resp = app
        .patch_as(&key_b, &b_type_path, &json!({"calendarId": a_calendar}))
        .await;
    assert_hidden(
        &resp,
        "/v1",
        "updateEventType of B's event type onto A's calendar",
    );
    assert_eq!(
        assert_ok(&app.get_as(&key_b, &b_type_path).await, 200),
        b_type_before,
        "a refused updateEventType changed B's event type"
    );

    assert_eq!(
        visited, taking_ids,
        "every operation taking ids in its query or body must be walked with A's ids"
    );
    a.assert_unchanged(&app).await;
}
