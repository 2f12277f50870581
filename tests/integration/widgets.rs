//! Booking widgets: publishable keys (`qnd_pub_...`, bound to event types and browser origins,
//! reaching only the widget's operations, budgeted per client address), CORS by the key's origins
//! with preflights, slot holds (`POST`/`DELETE /v1/calendar/holds`: made under the booking rules,
//! blocking like bookings while live and nothing from expiry on, turned into a booking with
//! `holdId`, exactly one winner under races), and `/widget.js` and `/book/{eventTypeId}` served
//! from the binary. Both backends.

use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        // publishable keys
        a_publishable_key_starts_with_qnd_pub_and_reads_only_its_bound_event_types,
        a_publishable_key_reads_the_availability_of_its_bound_event_types_only,
        a_publishable_key_is_403_insufficient_scope_on_every_other_operation,
        a_booking_with_a_publishable_key_is_booked_via_widget,
        a_publishable_key_cannot_force_a_booking,
        a_publishable_key_cannot_book_or_hold_an_event_type_it_is_not_bound_to,
        a_refusal_to_a_publishable_key_never_names_the_event_in_the_way,
        a_publishable_key_budgets_each_client_address_on_its_own,
        // CORS
        an_allowed_origin_is_named_back_with_vary_origin_and_no_credentials,
        a_publishable_key_from_a_foreign_origin_is_403_without_cors_headers,
        a_secret_key_from_a_foreign_origin_is_403_and_without_an_origin_works_as_always,
        the_servers_own_origin_is_accepted_for_both_kinds_of_key,
        a_preflight_from_an_allowed_origin_is_204_with_methods_headers_and_max_age,
        a_preflight_from_a_foreign_origin_is_403_without_cors_headers,
        a_preflight_no_longer_accepts_the_origin_of_a_revoked_key,
        // holds
        a_hold_is_201_ending_after_the_event_types_duration_and_expiring_in_ten_minutes,
        a_hold_with_ttl_seconds_outside_1_to_3600_is_400_naming_it,
        a_hold_with_a_bad_start_time_is_400_naming_it,
        a_hold_is_refused_by_the_booking_rules_like_a_booking,
        a_second_hold_over_a_live_hold_is_409_offering_other_times,
        a_booking_by_any_key_over_a_live_hold_is_409,
        availability_leaves_out_a_held_slot_while_the_hold_is_live,
        another_key_books_over_an_expired_hold,
        an_expired_hold_is_listed_again_and_can_be_held_anew,
        a_booking_with_its_hold_id_turns_the_hold_into_the_event_and_uses_it_up,
        a_booking_naming_an_expired_hold_goes_ahead_only_while_the_time_is_free,
        a_booking_with_another_keys_hold_id_is_404,
        a_booking_with_a_hold_id_at_other_times_is_400_naming_start_and_end_time,
        a_live_hold_lets_its_own_booking_through_while_everyone_else_is_refused,
        releasing_a_hold_is_204_and_frees_its_time_at_once,
        a_publishable_key_releases_only_its_own_holds,
        holds_are_never_listed_as_events,
        thirty_two_simultaneous_holds_of_one_slot_hold_it_once_and_get_31_conflicts,
        sixteen_simultaneous_holds_and_bookings_of_one_slot_let_exactly_one_through,
        eight_simultaneous_bookings_naming_one_hold_book_it_once,
        another_organizations_calendar_or_event_type_is_404_for_a_hold,
        the_same_idempotency_key_twice_replays_the_first_hold,
        // the widget and the booking page
        widget_js_is_served_as_javascript,
        the_booking_page_embeds_the_widget_with_its_key_and_lets_only_its_origins_frame_it,
        the_booking_page_is_404_for_a_secret_key_an_unknown_key_an_unbound_type_or_a_bad_id,
    ]
}

const HOLDS: &str = "/v1/calendar/holds";
const EVENTS: &str = "/v1/calendar/events";
const AVAILABILITY: &str = "/v1/calendar/availability";
const SHOP: &str = "https://shop.example";
const EVIL: &str = "https://evil.example";

/// The contested slot of most cases: a Monday, far enough ahead for every notice rule.
const START: &str = "2027-06-07T10:00:00Z";
const END: &str = "2027-06-07T10:30:00Z";

/// A calendar, a 30-minute event type on it, and a publishable key bound to that type and
/// allowed from `SHOP`.
struct Widget {
    calendar_id: String,
    event_type_id: String,
    key: String,
}

async fn widget(app: &TestApp) -> Widget {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let key = app.publishable_key(&[&event_type_id], &[SHOP], None).await;
    Widget {
        calendar_id,
        event_type_id,
        key,
    }
}

impl Widget {
    /// Another publishable key bound to the same event type (another visitor's widget, say on
    /// another site).
    async fn another_key(&self, app: &TestApp) -> String {
        app.publishable_key(&[&self.event_type_id], &["https://other.example"], None)
            .await
    }

    fn hold_body(&self, start: &str) -> Value {
        json!({"calendarId": self.calendar_id, "eventTypeId": self.event_type_id, "startTime": start})
    }

    fn booking(&self, start: &str, end: &str) -> Value {
        event_body(&self.calendar_id, &self.event_type_id, start, end)
    }
}

fn hold_path(id: &str) -> String {
    format!("{HOLDS}/{id}")
}

async fn hold(app: &TestApp, key: &str, body: &Value) -> Resp {
    app.post_as(key, HOLDS, body).await
}

/// POST /v1/calendar/holds with `key`, which must answer 201; the hold's `data`.
async fn held(app: &TestApp, key: &str, body: &Value) -> Value {
    assert_ok(&hold(app, key, body).await, 201)
}

async fn book(app: &TestApp, key: &str, body: &Value) -> Resp {
    app.post_as(key, EVENTS, body).await
}

async fn release(app: &TestApp, key: &str, id: &str) -> Resp {
    send(app.req_as(key, Method::DELETE, &hold_path(id))).await
}

/// The slot starts (UTC) availability lists for the widget's type on 2027-06-07 from 09:00 to
/// 12:00 UTC.
async fn available_starts(app: &TestApp, key: &str, w: &Widget) -> Vec<String> {
    let resp = app
        .get_query_as(
            key,
            AVAILABILITY,
            &[
                ("calendarId", &w.calendar_id),
                ("eventTypeId", &w.event_type_id),
                ("dateFrom", "2027-06-07T09:00:00Z"),
                ("dateTo", "2027-06-07T12:00:00Z"),
            ],
        )
        .await;
    let data = assert_ok(&resp, 200);
    data["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("availability has no slots array: {}", resp.describe()))
        .iter()
        .map(|s| s["startTime"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn instant(t: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("bad time {t:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// A 409 `slot_unavailable` for a conflict whose `nextSlots` offers nothing overlapping
/// `[start, end)`. Returns the error.
#[track_caller]
fn assert_held_conflict(resp: &Resp, start: &str, end: &str) -> Value {
    let error = assert_error(resp, 409, "slot_unavailable");
    assert_eq!(
        error["details"]["reason"],
        json!("conflict"),
        "details.reason: {}",
        resp.describe()
    );
    let next = error["details"]["nextSlots"]
        .as_array()
        .unwrap_or_else(|| panic!("details.nextSlots is not an array: {}", resp.describe()));
    let (start, end) = (instant(start), instant(end));
    for slot in next {
        let s = instant(slot["startTime"].as_str().unwrap_or_default());
        let e = instant(slot["endTime"].as_str().unwrap_or_default());
        assert!(
            e <= start || s >= end,
            "nextSlots offers {slot}, which overlaps the taken time: {}",
            resp.describe()
        );
    }
    error
}

/// How many events the first organization's list holds.
async fn events_total(app: &TestApp) -> u64 {
    let (_, pagination) = assert_list(&app.list_events(&[("limit", "100")]).await);
    pagination["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("pagination.total is not a number: {pagination}"))
}

/// The response carries no CORS header at all.
#[track_caller]
fn assert_no_cors(resp: &Resp) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(
            resp.header(name).is_none(),
            "a refused origin got {name}: {:?} ({})",
            resp.header(name),
            resp.describe()
        );
    }
}

/// The answer names `origin` (never `*`) with `Vary: Origin` and no credentials.
#[track_caller]
fn assert_cors_for(resp: &Resp, origin: &str) {
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some(origin),
        "Access-Control-Allow-Origin: {:?}",
        resp.headers
    );
    let vary: Vec<String> = resp
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_ascii_lowercase()))
        .collect();
    assert!(
        vary.iter().any(|v| v == "origin"),
        "Vary should name Origin: {:?}",
        resp.headers
    );
    assert!(
        resp.header("access-control-allow-credentials").is_none(),
        "keys travel in Authorization: no credentials: {:?}",
        resp.headers
    );
}

/// The comma-separated list of a header, lower-cased.
fn header_list(resp: &Resp, name: &str) -> Vec<String> {
    resp.header(name)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

// ----- publishable keys -----

async fn a_publishable_key_starts_with_qnd_pub_and_reads_only_its_bound_event_types(app: TestApp) {
    let w = widget(&app).await;
    assert!(
        w.key.starts_with("qnd_pub_"),
        "a publishable key: {}",
        w.key
    );
    let path = format!("/v1/calendar/event-types/{}", w.event_type_id);
    let data = assert_ok(&app.get_as(&w.key, &path).await, 200);
    assert_eq!(data["id"], json!(w.event_type_id));
    assert_eq!(data["durationMinutes"], json!(30));

    // Another type of the same organization, on the same calendar: not found.
    let other = id_of(
        &app.create_event_type(&app.key, Some(&w.calendar_id), 60)
            .await,
    );
    let resp = app
        .get_as(&w.key, &format!("/v1/calendar/event-types/{other}"))
        .await;
    assert_error(&resp, 404, "not_found");
}

async fn a_publishable_key_reads_the_availability_of_its_bound_event_types_only(app: TestApp) {
    let w = widget(&app).await;
    let starts = available_starts(&app, &w.key, &w).await;
    assert!(
        starts.contains(&START.to_owned()),
        "the open calendar offers {START}: {starts:?}"
    );

    let other = id_of(
        &app.create_event_type(&app.key, Some(&w.calendar_id), 30)
            .await,
    );
    let resp = app
        .get_query_as(
            &w.key,
            AVAILABILITY,
            &[
                ("calendarId", &w.calendar_id),
                ("eventTypeId", &other),
                ("dateFrom", "2027-06-07T09:00:00Z"),
                ("dateTo", "2027-06-07T12:00:00Z"),
            ],
        )
        .await;
    assert_error(&resp, 404, "not_found");
}

async fn a_publishable_key_is_403_insufficient_scope_on_every_other_operation(app: TestApp) {
    let w = widget(&app).await;
    let event = app
        .create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
    let event_id = id_of(&event);
    let calendar = format!("/v1/calendar/calendars/{}", w.calendar_id);
    let event_type = format!("/v1/calendar/event-types/{}", w.event_type_id);
    let event_path = format!("{EVENTS}/{event_id}");
    let cancel = format!("{EVENTS}/{event_id}/cancel");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, EVENTS.to_owned(), None),
        (Method::GET, event_path.clone(), None),
        (
            Method::PATCH,
            event_path.clone(),
            Some(json!({"notes": "spostato"})),
        ),
        (Method::POST, cancel, Some(json!({}))),
        (Method::GET, "/v1/calendar/calendars".to_owned(), None),
        (Method::GET, calendar.clone(), None),
        (
            Method::POST,
            "/v1/calendar/calendars".to_owned(),
            Some(json!({"name": "Sala 2", "timezone": "Europe/Rome"})),
        ),
        (Method::PATCH, calendar, Some(json!({"name": "Rinominato"}))),
        (Method::GET, "/v1/calendar/event-types".to_owned(), None),
        (
            Method::POST,
            "/v1/calendar/event-types".to_owned(),
            Some(json!({"calendarId": w.calendar_id, "name": "Nuovo", "durationMinutes": 15})),
        ),
        (
            Method::PATCH,
            event_type,
            Some(json!({"name": "Rinominato"})),
        ),
        (Method::GET, "/v1/webhooks".to_owned(), None),
    ];
    for (method, path, body) in calls {
        let mut request = app.req_as(&w.key, method.clone(), &path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let resp = send(request).await;
        let error = assert_error(&resp, 403, "insufficient_scope");
        let message = error["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            message.contains("publishable key"),
            "{method} {path}: the message should say a publishable key cannot: {}",
            resp.describe()
        );
    }
    // Talkover too, in its own envelope.
    let resp = app.get_as(&w.key, "/api/v1/calendars").await;
    assert_error_at(&resp, "/api/v1/calendars", 403, "insufficient_scope");

    // Nothing changed.
    let now = assert_ok(&app.get(&event_path).await, 200);
    assert_eq!(now["status"], event["status"], "{now}");
    assert_eq!(now["notes"], event["notes"], "{now}");
    let (calendars, _) = assert_list(&app.get("/v1/calendar/calendars").await);
    assert_eq!(calendars.len(), 1, "{calendars:?}");
}

async fn a_booking_with_a_publishable_key_is_booked_via_widget(app: TestApp) {
    let w = widget(&app).await;
    let body = with(
        w.booking(START, END),
        json!({"customerName": "Giulia Verdi", "customerEmail": "giulia@example.com"}),
    );
    let created = assert_ok(&book(&app, &w.key, &body).await, 201);
    assert_eq!(created["bookedVia"], json!("widget"), "{created}");
    assert_eq!(created["startTime"], json!(START));
    let stored = assert_ok(
        &app.get(&format!("{EVENTS}/{}", id_of(&created))).await,
        200,
    );
    assert_eq!(stored["bookedVia"], json!("widget"), "{stored}");
    // A secret key's booking stays `api`.
    let by_secret = app
        .create_event(
            &app.key,
            &w.calendar_id,
            &w.event_type_id,
            "2027-06-07T11:00:00Z",
            "2027-06-07T11:30:00Z",
        )
        .await;
    assert_eq!(by_secret["bookedVia"], json!("api"), "{by_secret}");
}

async fn a_publishable_key_cannot_force_a_booking(app: TestApp) {
    let w = widget(&app).await;
    let body = with(w.booking(START, END), json!({"force": true}));
    assert_validation(&book(&app, &w.key, &body).await, &["force"]);
    assert_eq!(
        events_total(&app).await,
        0,
        "a refused booking books nothing"
    );
    // Without force it books.
    let body = with(w.booking(START, END), json!({"force": false}));
    assert_ok(&book(&app, &w.key, &body).await, 201);
}

async fn a_publishable_key_cannot_book_or_hold_an_event_type_it_is_not_bound_to(app: TestApp) {
    let w = widget(&app).await;
    let other = id_of(
        &app.create_event_type(&app.key, Some(&w.calendar_id), 30)
            .await,
    );
    let body = event_body(&w.calendar_id, &other, START, END);
    assert_error(&book(&app, &w.key, &body).await, 404, "not_found");
    let body = json!({"calendarId": w.calendar_id, "eventTypeId": other, "startTime": START});
    assert_error(&hold(&app, &w.key, &body).await, 404, "not_found");
    assert_eq!(events_total(&app).await, 0);
    // The time is still free for the secret key.
    app.create_event(&app.key, &w.calendar_id, &other, START, END)
        .await;
}

async fn a_refusal_to_a_publishable_key_never_names_the_event_in_the_way(app: TestApp) {
    let w = widget(&app).await;
    let event = app
        .create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
    // The secret key is told which event is in the way...
    let resp = book(&app, &app.key, &w.booking(START, END)).await;
    assert_slot_conflict(&resp, &event);
    // ...a publishable key (any visitor) is not, on a booking or on a hold.
    for resp in [
        book(&app, &w.key, &w.booking(START, END)).await,
        hold(&app, &w.key, &w.hold_body(START)).await,
    ] {
        let error = assert_held_conflict(&resp, START, END);
        let named = &error["details"]["conflictingEventId"];
        assert!(
            named.is_null(),
            "a publishable key was told the conflicting event {named}: {}",
            resp.describe()
        );
        assert!(
            !resp.text.contains(&id_of(&event)),
            "the answer names the other booking: {}",
            resp.describe()
        );
    }
}

async fn a_publishable_key_budgets_each_client_address_on_its_own(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let key = app
        .publishable_key(&[&event_type_id], &[SHOP], Some(3))
        .await;
    let path = format!("/v1/calendar/event-types/{event_type_id}");
    for i in 0..3 {
        let resp = app.get_as(&key, &path).await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.describe());
    }
    let resp = app.get_as(&key, &path).await;
    assert_error(&resp, 429, "rate_limit_exceeded");
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("a 429 needs a Retry-After in seconds: {:?}", resp.headers));
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        resp.header("x-ratelimit-limit"),
        Some("3"),
        "{:?}",
        resp.headers
    );

    // Another visitor, from another address, has a budget of its own.
    let visitor = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client bound to 127.0.0.2");
    let resp = send(visitor.get(app.url(&path)).bearer_auth(&key)).await;
    assert_eq!(
        resp.status,
        200,
        "another address must not be refused for the first one's requests: {}",
        resp.describe()
    );
    // The secret key is untouched by the widget's budget.
    assert_eq!(app.get(&path).await.status, 200);
}

// ----- CORS -----

async fn an_allowed_origin_is_named_back_with_vary_origin_and_no_credentials(app: TestApp) {
    let w = widget(&app).await;
    let path = format!("/v1/calendar/event-types/{}", w.event_type_id);
    let resp = send(
        app.req_as(&w.key, Method::GET, &path)
            .header("Origin", SHOP),
    )
    .await;
    assert_ok(&resp, 200);
    assert_cors_for(&resp, SHOP);
    assert_ne!(resp.header("access-control-allow-origin"), Some("*"));

    // A hold and a refusal from the same origin carry it too (the browser must read the 409).
    let resp = send(
        app.req_as(&w.key, Method::POST, HOLDS)
            .header("Origin", SHOP)
            .json(&w.hold_body(START)),
    )
    .await;
    assert_ok(&resp, 201);
    assert_cors_for(&resp, SHOP);
    let resp = send(
        app.req_as(&w.key, Method::POST, HOLDS)
            .header("Origin", SHOP)
            .json(&w.hold_body(START)),
    )
    .await;
    assert_error(&resp, 409, "slot_unavailable");
    assert_cors_for(&resp, SHOP);
}

async fn a_publishable_key_from_a_foreign_origin_is_403_without_cors_headers(app: TestApp) {
    let w = widget(&app).await;
    let path = format!("/v1/calendar/event-types/{}", w.event_type_id);
    let resp = send(
        app.req_as(&w.key, Method::GET, &path)
            .header("Origin", EVIL),
    )
    .await;
    assert_error(&resp, 403, "forbidden");
    assert_no_cors(&resp);
    // A sandboxed frame's `null`, and an origin that is not one, are foreign too.
    for origin in ["null", "shop.example", "https://shop.example.evil.example"] {
        let resp = send(
            app.req_as(&w.key, Method::GET, &path)
                .header("Origin", origin),
        )
        .await;
        assert_error(&resp, 403, "forbidden");
        assert_no_cors(&resp);
    }

    // Nor can it hold or book from there.
    let resp = send(
        app.req_as(&w.key, Method::POST, HOLDS)
            .header("Origin", EVIL)
            .json(&w.hold_body(START)),
    )
    .await;
    assert_error(&resp, 403, "forbidden");
    assert_no_cors(&resp);
    let resp = send(
        app.req_as(&w.key, Method::POST, EVENTS)
            .header("Origin", EVIL)
            .json(&w.booking(START, END)),
    )
    .await;
    assert_error(&resp, 403, "forbidden");
    assert_eq!(events_total(&app).await, 0);
    // Nothing is held: the time is free.
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

async fn a_secret_key_from_a_foreign_origin_is_403_and_without_an_origin_works_as_always(
    app: TestApp,
) {
    let w = widget(&app).await;
    // Even the origin a publishable key allows is foreign to a secret key.
    for origin in [EVIL, SHOP] {
        let resp = send(app.req(Method::GET, EVENTS).header("Origin", origin)).await;
        assert_error(&resp, 403, "forbidden");
        assert_no_cors(&resp);
        let resp = send(
            app.req(Method::POST, EVENTS)
                .header("Origin", origin)
                .json(&w.booking(START, END)),
        )
        .await;
        assert_error(&resp, 403, "forbidden");
        assert_no_cors(&resp);
    }
    assert_eq!(events_total(&app).await, 0);
    let resp = app.get(EVENTS).await;
    assert_list(&resp);
    assert!(
        resp.header("access-control-allow-origin").is_none(),
        "{:?}",
        resp.headers
    );
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

async fn the_servers_own_origin_is_accepted_for_both_kinds_of_key(app: TestApp) {
    let w = widget(&app).await;
    let own = app.base_url.trim_end_matches('/').to_owned();
    let path = format!("/v1/calendar/event-types/{}", w.event_type_id);
    for key in [&w.key, &app.key] {
        let resp = send(app.req_as(key, Method::GET, &path).header("Origin", &own)).await;
        assert_ok(&resp, 200);
        assert_cors_for(&resp, &own);
    }
    // The booking page, served by this server, holds with its key.
    let resp = send(
        app.req_as(&w.key, Method::POST, HOLDS)
            .header("Origin", &own)
            .json(&w.hold_body(START)),
    )
    .await;
    assert_ok(&resp, 201);
    assert_cors_for(&resp, &own);
}

async fn a_preflight_from_an_allowed_origin_is_204_with_methods_headers_and_max_age(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    // A key made just now is known to the preflight at once.
    let origin = "https://studio-rossi.example";
    app.publishable_key(&[&event_type_id], &[origin], None)
        .await;
    let resp = send(
        app.bare(Method::OPTIONS, HOLDS)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, idempotency-key",
            ),
    )
    .await;
    assert_eq!(resp.status, 204, "{} {:?}", resp.describe(), resp.headers);
    assert_cors_for(&resp, origin);
    let methods: Vec<String> = header_list(&resp, "access-control-allow-methods")
        .into_iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    for method in ["POST", "DELETE", "GET"] {
        assert!(
            methods.iter().any(|m| m == method),
            "Access-Control-Allow-Methods lacks {method}: {methods:?}"
        );
    }
    let headers = header_list(&resp, "access-control-allow-headers");
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(
            headers.iter().any(|h| h == header),
            "Access-Control-Allow-Headers lacks {header}: {headers:?}"
        );
    }
    let max_age = resp
        .header("access-control-max-age")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no numeric Access-Control-Max-Age: {:?}", resp.headers));
    assert!(max_age > 0, "Access-Control-Max-Age {max_age}");

    // The release's preflight too.
    let resp = send(
        app.bare(Method::OPTIONS, &hold_path(&unknown_id()))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "DELETE"),
    )
    .await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert_cors_for(&resp, origin);
}

async fn a_preflight_from_a_foreign_origin_is_403_without_cors_headers(app: TestApp) {
    widget(&app).await;
    let preflight = |origin: &'static str| {
        send(
            app.bare(Method::OPTIONS, HOLDS)
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
        )
    };
    let resp = preflight(EVIL).await;
    assert_eq!(resp.status, 403, "{}", resp.describe());
    assert_no_cors(&resp);
    // The key's own origin passes, so the refusal is about the origin.
    assert_eq!(preflight(SHOP).await.status, 204);
}

async fn a_preflight_no_longer_accepts_the_origin_of_a_revoked_key(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let origin = "https://revoked-shop.example";
    let created = quando_api::admin::create_publishable_key(
        &app.db,
        app.org_id,
        &[uuid::Uuid::parse_str(&event_type_id).expect("a uuid")],
        &[origin.to_owned()],
        None,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("admin::create_publishable_key failed: {e}"));
    let preflight = || {
        send(
            app.bare(Method::OPTIONS, HOLDS)
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST"),
        )
    };
    let resp = preflight().await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert_cors_for(&resp, origin);
    quando_api::admin::revoke_key(&app.db, created.id)
        .await
        .unwrap_or_else(|e| panic!("admin::revoke_key failed: {e}"));
    let resp = preflight().await;
    assert_eq!(
        resp.status,
        403,
        "no live key allows {origin} any more: {}",
        resp.describe()
    );
    assert_no_cors(&resp);
}

// ----- holds -----

async fn a_hold_is_201_ending_after_the_event_types_duration_and_expiring_in_ten_minutes(
    app: TestApp,
) {
    let w = widget(&app).await;
    let before = chrono::Utc::now();
    let resp = hold(&app, &w.key, &w.hold_body(START)).await;
    let data = assert_ok(&resp, 201);
    assert_has_keys(
        &data,
        &[
            "id",
            "calendarId",
            "eventTypeId",
            "startTime",
            "endTime",
            "expiresAt",
        ],
        "a hold",
    );
    assert_uuid_v7(&data["id"], "hold id");
    assert_eq!(data["calendarId"], json!(w.calendar_id));
    assert_eq!(data["eventTypeId"], json!(w.event_type_id));
    assert_eq!(data["startTime"], json!(START));
    assert_eq!(
        data["endTime"],
        json!(END),
        "the end defaults to the start plus 30 minutes"
    );
    assert_utc_seconds(&data["expiresAt"], "expiresAt");
    let expires = instant(data["expiresAt"].as_str().unwrap_or_default());
    let ahead = (expires - before).num_seconds();
    assert!(
        (595..=610).contains(&ahead),
        "expiresAt should be about 600 s ahead, is {ahead} s: {data}"
    );

    // With an explicit end, a zone for local times and a ttl.
    let body = json!({
        "calendarId": w.calendar_id,
        "eventTypeId": w.event_type_id,
        "startTime": "2027-06-07T14:00:00",
        "endTime": "2027-06-07T15:00:00",
        "timezone": "Europe/Rome",
        "ttlSeconds": 120,
    });
    let before = chrono::Utc::now();
    let data = held(&app, &w.key, &body).await;
    assert_eq!(data["startTime"], json!("2027-06-07T12:00:00Z"), "{data}");
    assert_eq!(data["endTime"], json!("2027-06-07T13:00:00Z"), "{data}");
    let ahead = (instant(data["expiresAt"].as_str().unwrap_or_default()) - before).num_seconds();
    assert!(
        (115..=130).contains(&ahead),
        "expiresAt should be about 120 s ahead, is {ahead} s: {data}"
    );
}

async fn a_hold_with_ttl_seconds_outside_1_to_3600_is_400_naming_it(app: TestApp) {
    let w = widget(&app).await;
    for ttl in [json!(0), json!(-5), json!(3601), json!(86400)] {
        let body = with(w.hold_body(START), json!({"ttlSeconds": ttl}));
        assert_validation(&hold(&app, &w.key, &body).await, &["ttlSeconds"]);
    }
    // Nothing was held by the refusals; the bounds themselves are fine.
    let body = with(w.hold_body(START), json!({"ttlSeconds": 3600}));
    let data = held(&app, &w.key, &body).await;
    let ahead = (instant(data["expiresAt"].as_str().unwrap_or_default()) - chrono::Utc::now())
        .num_seconds();
    assert!((3590..=3610).contains(&ahead), "{data}");
    let body = with(
        w.hold_body("2027-06-07T11:00:00Z"),
        json!({"ttlSeconds": 1}),
    );
    held(&app, &app.key, &body).await;
}

async fn a_hold_with_a_bad_start_time_is_400_naming_it(app: TestApp) {
    let w = widget(&app).await;
    for start in ["tomorrow at ten", "2027-13-07T10:00:00Z", ""] {
        let body = w.hold_body(start);
        assert_validation(&hold(&app, &w.key, &body).await, &["startTime"]);
    }
    let body = with(w.hold_body(START), json!({"endTime": "later"}));
    assert_validation(&hold(&app, &w.key, &body).await, &["endTime"]);
    // Nothing was held.
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

async fn a_hold_is_refused_by_the_booking_rules_like_a_booking(app: TestApp) {
    let w = widget(&app).await;
    // The past: before the minimum notice.
    let past = "2026-01-05T10:00:00Z";
    let error = assert_error(
        &hold(&app, &w.key, &w.hold_body(past)).await,
        409,
        "slot_unavailable",
    );
    assert_eq!(
        error["details"]["reason"],
        json!("before_minimum_notice"),
        "{error}"
    );
    // An end not after the start.
    let body = with(w.hold_body(START), json!({"endTime": START}));
    assert_validation(&hold(&app, &w.key, &body).await, &["endTime"]);
    // Too far ahead for the event type.
    let near = app
        .create_event_type_with(
            &app.key,
            json!({"calendarId": w.calendar_id, "name": "Prima visita", "durationMinutes": 30, "maxAdvanceDays": 30}),
        )
        .await;
    let key = app.publishable_key(&[&id_of(&near)], &[SHOP], None).await;
    let body = json!({"calendarId": w.calendar_id, "eventTypeId": near["id"], "startTime": START});
    let error = assert_error(&hold(&app, &key, &body).await, 409, "slot_unavailable");
    assert_eq!(
        error["details"]["reason"],
        json!("beyond_max_advance"),
        "{error}"
    );
    // None of these held anything.
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

async fn a_second_hold_over_a_live_hold_is_409_offering_other_times(app: TestApp) {
    let w = widget(&app).await;
    held(&app, &w.key, &w.hold_body(START)).await;
    let other = w.another_key(&app).await;
    // The same time, and one overlapping it, by another visitor, by the same one and by the
    // secret key.
    for key in [&other, &w.key, &app.key] {
        for start in [START, "2027-06-07T10:15:00Z"] {
            let resp = hold(&app, key, &w.hold_body(start)).await;
            assert_held_conflict(&resp, START, END);
        }
    }
    // Right after it is fine.
    held(&app, &other, &w.hold_body(END)).await;
}

async fn a_booking_by_any_key_over_a_live_hold_is_409(app: TestApp) {
    let w = widget(&app).await;
    held(&app, &w.key, &w.hold_body(START)).await;
    let other = w.another_key(&app).await;
    for key in [&app.key, &other, &w.key] {
        let resp = book(&app, key, &w.booking(START, END)).await;
        assert_held_conflict(&resp, START, END);
        let resp = book(
            &app,
            key,
            &w.booking("2027-06-07T09:45:00Z", "2027-06-07T10:15:00Z"),
        )
        .await;
        assert_held_conflict(&resp, START, END);
    }
    // `force` lifts working hours, never the overlap with a hold.
    let body = with(w.booking(START, END), json!({"force": true}));
    assert_held_conflict(&book(&app, &app.key, &body).await, START, END);
    assert_eq!(events_total(&app).await, 0);
}

async fn availability_leaves_out_a_held_slot_while_the_hold_is_live(app: TestApp) {
    let w = widget(&app).await;
    let starts = available_starts(&app, &w.key, &w).await;
    assert!(starts.contains(&START.to_owned()), "{starts:?}");
    held(&app, &w.key, &w.hold_body(START)).await;
    for key in [&w.key, &app.key] {
        let starts = available_starts(&app, key, &w).await;
        assert!(
            !starts.contains(&START.to_owned()),
            "a held slot is listed: {starts:?}"
        );
        for start in &starts {
            let s = instant(start);
            assert!(
                s + chrono::Duration::minutes(30) <= instant(START) || s >= instant(END),
                "{start} overlaps the held time: {starts:?}"
            );
        }
        assert!(
            starts.contains(&"2027-06-07T11:00:00Z".to_owned()),
            "the rest of the day is still offered: {starts:?}"
        );
    }
}

async fn another_key_books_over_an_expired_hold(app: TestApp) {
    let w = widget(&app).await;
    let body = with(w.hold_body(START), json!({"ttlSeconds": 1}));
    let hold = held(&app, &w.key, &body).await;
    // No clean-up runs in between: the hold row is still there, it just no longer blocks.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let other = w.another_key(&app).await;
    let event = assert_ok(&book(&app, &other, &w.booking(START, END)).await, 201);
    assert_eq!(event["startTime"], json!(START));
    assert_eq!(event["bookedVia"], json!("widget"));
    // And the secret key's next booking is refused by that booking, not by the hold.
    let resp = book(&app, &app.key, &w.booking(START, END)).await;
    assert_slot_conflict(&resp, &event);
    // The hold's owner cannot book it any more either.
    let resp = book(
        &app,
        &w.key,
        &with(w.booking(START, END), json!({"holdId": hold["id"]})),
    )
    .await;
    assert_held_conflict(&resp, START, END);
}

async fn an_expired_hold_is_listed_again_and_can_be_held_anew(app: TestApp) {
    let w = widget(&app).await;
    let body = with(w.hold_body(START), json!({"ttlSeconds": 1}));
    held(&app, &w.key, &body).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let starts = available_starts(&app, &w.key, &w).await;
    assert!(
        starts.contains(&START.to_owned()),
        "an expired hold still hides its slot: {starts:?}"
    );
    let other = w.another_key(&app).await;
    let again = held(&app, &other, &w.hold_body(START)).await;
    assert_eq!(again["startTime"], json!(START));
    // The new hold blocks, the first owner included.
    assert_held_conflict(&hold(&app, &w.key, &w.hold_body(START)).await, START, END);
}

async fn a_booking_with_its_hold_id_turns_the_hold_into_the_event_and_uses_it_up(app: TestApp) {
    let w = widget(&app).await;
    let hold = held(&app, &w.key, &w.hold_body(START)).await;
    let hold_id = id_of(&hold);
    let body = with(
        w.booking(START, END),
        json!({"holdId": hold_id, "customerName": "Luca Neri"}),
    );
    let event = assert_ok(&book(&app, &w.key, &body).await, 201);
    assert_eq!(event["startTime"], json!(START));
    assert_eq!(event["endTime"], json!(END));
    assert_eq!(event["bookedVia"], json!("widget"));
    assert_ne!(event["id"], hold["id"], "the event has an id of its own");
    assert_eq!(events_total(&app).await, 1);

    // Used up: the same hold again is not found, and so is its release.
    let resp = book(&app, &w.key, &body).await;
    assert_error(&resp, 404, "not_found");
    assert_error(&release(&app, &w.key, &hold_id).await, 404, "not_found");
    assert_eq!(events_total(&app).await, 1);
    // The time is the booking's now.
    let resp = book(&app, &app.key, &w.booking(START, END)).await;
    assert_slot_conflict(&resp, &event);

    // A secret key converts its own holds the same way.
    let start = "2027-06-07T11:00:00Z";
    let end = "2027-06-07T11:30:00Z";
    let hold = held(&app, &app.key, &w.hold_body(start)).await;
    let body = with(w.booking(start, end), json!({"holdId": hold["id"]}));
    let event = assert_ok(&book(&app, &app.key, &body).await, 201);
    assert_eq!(event["bookedVia"], json!("api"));
}

async fn a_booking_naming_an_expired_hold_goes_ahead_only_while_the_time_is_free(app: TestApp) {
    let w = widget(&app).await;
    let quick = |start: &str| with(w.hold_body(start), json!({"ttlSeconds": 1}));
    let free = held(&app, &w.key, &quick(START)).await;
    let taken_start = "2027-06-07T11:00:00Z";
    let taken_end = "2027-06-07T11:30:00Z";
    let taken = held(&app, &w.key, &quick(taken_start)).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // Someone else takes the second time once its hold has expired.
    let other = w.another_key(&app).await;
    assert_ok(
        &book(&app, &other, &w.booking(taken_start, taken_end)).await,
        201,
    );

    let body = with(w.booking(START, END), json!({"holdId": free["id"]}));
    let event = assert_ok(&book(&app, &w.key, &body).await, 201);
    assert_eq!(event["startTime"], json!(START));
    let body = with(
        w.booking(taken_start, taken_end),
        json!({"holdId": taken["id"]}),
    );
    let resp = book(&app, &w.key, &body).await;
    assert_held_conflict(&resp, taken_start, taken_end);
    assert_eq!(events_total(&app).await, 2);
}

async fn a_booking_with_another_keys_hold_id_is_404(app: TestApp) {
    let w = widget(&app).await;
    let hold = held(&app, &w.key, &w.hold_body(START)).await;
    let body = with(w.booking(START, END), json!({"holdId": hold["id"]}));
    let other = w.another_key(&app).await;
    for key in [&other, &app.key] {
        assert_error(&book(&app, key, &body).await, 404, "not_found");
    }
    // An id that names no hold at all.
    let body = with(w.booking(START, END), json!({"holdId": unknown_id()}));
    assert_error(&book(&app, &w.key, &body).await, 404, "not_found");
    assert_eq!(events_total(&app).await, 0);
    // The hold is intact: its owner books it.
    let body = with(w.booking(START, END), json!({"holdId": hold["id"]}));
    assert_ok(&book(&app, &w.key, &body).await, 201);
}

async fn a_booking_with_a_hold_id_at_other_times_is_400_naming_start_and_end_time(app: TestApp) {
    let w = widget(&app).await;
    let hold = held(&app, &w.key, &w.hold_body(START)).await;
    let moved = with(
        w.booking("2027-06-07T11:00:00Z", "2027-06-07T11:30:00Z"),
        json!({"holdId": hold["id"]}),
    );
    assert_validation(&book(&app, &w.key, &moved).await, &["startTime", "endTime"]);
    let longer = with(
        w.booking(START, "2027-06-07T11:00:00Z"),
        json!({"holdId": hold["id"]}),
    );
    let error = assert_validation(&book(&app, &w.key, &longer).await, &["endTime"]);
    assert!(
        !field_names(&error).contains(&"startTime".to_owned()),
        "the start is the hold's: {error}"
    );
    assert_eq!(events_total(&app).await, 0);
    // The refusals left the hold in place: it still blocks, and it still converts.
    assert_held_conflict(
        &book(&app, &app.key, &w.booking(START, END)).await,
        START,
        END,
    );
    let body = with(w.booking(START, END), json!({"holdId": hold["id"]}));
    assert_ok(&book(&app, &w.key, &body).await, 201);
}

async fn a_live_hold_lets_its_own_booking_through_while_everyone_else_is_refused(app: TestApp) {
    let w = widget(&app).await;
    let mine = held(&app, &w.key, &w.hold_body(START)).await;
    let other = w.another_key(&app).await;
    assert_held_conflict(
        &book(&app, &app.key, &w.booking(START, END)).await,
        START,
        END,
    );
    assert_held_conflict(
        &book(&app, &other, &w.booking(START, END)).await,
        START,
        END,
    );
    assert_held_conflict(&hold(&app, &other, &w.hold_body(START)).await, START, END);
    // The same key without naming its hold is refused like anyone.
    assert_held_conflict(
        &book(&app, &w.key, &w.booking(START, END)).await,
        START,
        END,
    );
    // The rules change after the hold: from now on nothing so far ahead can be booked...
    let resp = app
        .patch(
            &format!("/v1/calendar/event-types/{}", w.event_type_id),
            &json!({"maxAdvanceDays": 30}),
        )
        .await;
    assert_ok(&resp, 200);
    let later = w.booking("2027-06-07T11:00:00Z", "2027-06-07T11:30:00Z");
    let refused = assert_error(&book(&app, &app.key, &later).await, 409, "slot_unavailable");
    assert_eq!(refused["details"]["reason"], json!("beyond_max_advance"));
    // ...but the hold keeps its time under the rules it was made under.
    let body = with(w.booking(START, END), json!({"holdId": mine["id"]}));
    let event = assert_ok(&book(&app, &w.key, &body).await, 201);
    assert_eq!(event["startTime"], json!(START));
    let (items, _) = assert_list(&app.list_events(&[]).await);
    assert_eq!(ids(&items), vec![id_of(&event)]);
}

async fn releasing_a_hold_is_204_and_frees_its_time_at_once(app: TestApp) {
    let w = widget(&app).await;
    let first = held(&app, &w.key, &w.hold_body(START)).await;
    let resp = release(&app, &w.key, &id_of(&first)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert!(
        resp.text.is_empty(),
        "a 204 has no body: {}",
        resp.describe()
    );
    // At once: another visitor holds it...
    let other = w.another_key(&app).await;
    let second = held(&app, &other, &w.hold_body(START)).await;
    // ...the secret key releases that one (any of its organization's)...
    let resp = release(&app, &app.key, &id_of(&second)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert!(
        available_starts(&app, &w.key, &w)
            .await
            .contains(&START.to_owned())
    );
    // ...and books the time.
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
    // A released hold is gone.
    assert_error(
        &release(&app, &w.key, &id_of(&first)).await,
        404,
        "not_found",
    );
}

async fn a_publishable_key_releases_only_its_own_holds(app: TestApp) {
    let w = widget(&app).await;
    let hold = held(&app, &w.key, &w.hold_body(START)).await;
    let other = w.another_key(&app).await;
    assert_error(
        &release(&app, &other, &id_of(&hold)).await,
        404,
        "not_found",
    );
    assert_error(
        &release(&app, &w.key, &unknown_id()).await,
        404,
        "not_found",
    );
    // Still held.
    assert_held_conflict(
        &book(&app, &app.key, &w.booking(START, END)).await,
        START,
        END,
    );
    let resp = release(&app, &w.key, &id_of(&hold)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

async fn holds_are_never_listed_as_events(app: TestApp) {
    let w = widget(&app).await;
    let event = app
        .create_event(
            &app.key,
            &w.calendar_id,
            &w.event_type_id,
            "2027-06-07T09:00:00Z",
            "2027-06-07T09:30:00Z",
        )
        .await;
    let by_widget = held(&app, &w.key, &w.hold_body(START)).await;
    let by_secret = held(&app, &app.key, &w.hold_body("2027-06-07T11:00:00Z")).await;
    let (items, pagination) = assert_list(&app.list_events(&[]).await);
    assert_eq!(ids(&items), vec![id_of(&event)], "holds are not events");
    assert_eq!(pagination["total"], json!(1));
    let (items, _) = assert_list(
        &app.list_events(&[
            ("dateFrom", "2027-06-07T00:00:00Z"),
            ("dateTo", "2027-06-08T00:00:00Z"),
            ("calendarId", &w.calendar_id),
        ])
        .await,
    );
    assert_eq!(ids(&items), vec![id_of(&event)]);
    for hold in [&by_widget, &by_secret] {
        let resp = app.get(&format!("{EVENTS}/{}", id_of(hold))).await;
        assert_error(&resp, 404, "not_found");
    }
}

async fn thirty_two_simultaneous_holds_of_one_slot_hold_it_once_and_get_31_conflicts(app: TestApp) {
    let w = widget(&app).await;
    let mut keys = vec![app.key.clone(), w.key.clone()];
    for _ in 0..2 {
        keys.push(w.another_key(&app).await);
    }
    let body = w.hold_body(START);
    let requests = (0..32).map(|i| hold(&app, &keys[i % keys.len()], &body));
    let responses = join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let created: Vec<&Resp> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one of 32 simultaneous holds of one slot must win; statuses: {statuses:?}"
    );
    let winner = assert_ok(created[0], 201);
    assert_eq!(winner["startTime"], json!(START));
    let refused: Vec<&Resp> = responses.iter().filter(|r| r.status != 201).collect();
    assert_eq!(refused.len(), 31, "statuses: {statuses:?}");
    for resp in refused {
        assert_held_conflict(resp, START, END);
    }
    assert_eq!(events_total(&app).await, 0, "holds are not events");
    assert!(
        !available_starts(&app, &app.key, &w)
            .await
            .contains(&START.to_owned())
    );
}

async fn sixteen_simultaneous_holds_and_bookings_of_one_slot_let_exactly_one_through(app: TestApp) {
    let w = widget(&app).await;
    let other = w.another_key(&app).await;
    let keys = [app.key.clone(), w.key.clone(), other];
    let requests = (0..16).map(|i| {
        let key = &keys[i % keys.len()];
        let (path, body) = if i % 2 == 0 {
            (HOLDS, w.hold_body(START))
        } else {
            (EVENTS, w.booking(START, END))
        };
        send(app.req_as(key, Method::POST, path).json(&body))
    });
    let responses = join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let winners: Vec<usize> = (0..16).filter(|i| responses[*i].status == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 8 holds and 8 bookings of one slot must win; statuses: {statuses:?}"
    );
    for resp in &responses {
        if resp.status == 201 {
            assert_ok(resp, 201);
        } else {
            assert_held_conflict(resp, START, END);
        }
    }
    let booked = u64::from(winners[0] % 2 == 1);
    assert_eq!(
        events_total(&app).await,
        booked,
        "one booking if a booking won, none if a hold did; statuses: {statuses:?}"
    );
    assert!(
        !available_starts(&app, &app.key, &w)
            .await
            .contains(&START.to_owned())
    );
}

async fn eight_simultaneous_bookings_naming_one_hold_book_it_once(app: TestApp) {
    let w = widget(&app).await;
    let hold = held(&app, &w.key, &w.hold_body(START)).await;
    let body = with(w.booking(START, END), json!({"holdId": hold["id"]}));
    let responses = join_all((0..8).map(|_| book(&app, &w.key, &body))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let created: Vec<&Resp> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "one hold books one event; statuses: {statuses:?}"
    );
    assert_ok(created[0], 201);
    for resp in responses.iter().filter(|r| r.status != 201) {
        // Used up by the winner: not found, or refused by the winner's event.
        if resp.status == 404 {
            assert_error(resp, 404, "not_found");
        } else {
            assert_held_conflict(resp, START, END);
        }
    }
    assert_eq!(events_total(&app).await, 1, "statuses: {statuses:?}");
}

async fn another_organizations_calendar_or_event_type_is_404_for_a_hold(app: TestApp) {
    let w = widget(&app).await;
    let (_, other_key) = app.new_org("Studio Legale Ferri").await;
    let their_calendar = id_of(&app.create_calendar(&other_key, None).await);
    let their_type = id_of(
        &app.create_event_type(&other_key, Some(&their_calendar), 30)
            .await,
    );
    let theirs =
        json!({"calendarId": their_calendar, "eventTypeId": their_type, "startTime": START});
    let mixed_calendar =
        json!({"calendarId": their_calendar, "eventTypeId": w.event_type_id, "startTime": START});
    let mixed_type =
        json!({"calendarId": w.calendar_id, "eventTypeId": their_type, "startTime": START});
    for key in [&app.key, &w.key] {
        for body in [&theirs, &mixed_calendar, &mixed_type] {
            let resp = hold(&app, key, body).await;
            assert_error(&resp, 404, "not_found");
        }
    }
    // Their hold cannot be released from here, and their time is theirs to hold.
    let their_hold = held(&app, &other_key, &theirs).await;
    for key in [&app.key, &w.key] {
        assert_error(
            &release(&app, key, &id_of(&their_hold)).await,
            404,
            "not_found",
        );
    }
    // Nor booked with their hold id.
    let body = with(w.booking(START, END), json!({"holdId": their_hold["id"]}));
    assert_error(&book(&app, &app.key, &body).await, 404, "not_found");
    // Our slot at the same time is ours.
    held(&app, &w.key, &w.hold_body(START)).await;
    let resp = release(&app, &other_key, &id_of(&their_hold)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
}

async fn the_same_idempotency_key_twice_replays_the_first_hold(app: TestApp) {
    let w = widget(&app).await;
    let post = || {
        send(
            app.req_as(&w.key, Method::POST, HOLDS)
                .header("Idempotency-Key", "widget-hold-7c1e")
                .json(&w.hold_body(START)),
        )
    };
    let first = post().await;
    let data = assert_ok(&first, 201);
    assert_ne!(first.header("idempotent-replayed"), Some("true"));
    let second = post().await;
    let again = assert_ok(&second, 201);
    assert_eq!(again["id"], data["id"], "a retry holds nothing twice");
    assert_eq!(again["expiresAt"], data["expiresAt"]);
    assert_eq!(
        second.header("idempotent-replayed"),
        Some("true"),
        "{:?}",
        second.headers
    );
    // The hold is there exactly once: releasing it frees the time.
    let resp = release(&app, &w.key, &id_of(&data)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    app.create_event(&app.key, &w.calendar_id, &w.event_type_id, START, END)
        .await;
}

// ----- the widget and the booking page -----

async fn widget_js_is_served_as_javascript(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/widget.js")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("text/javascript"),
        "{}",
        resp.describe()
    );
    assert!(
        resp.text.contains("quando-booking"),
        "the script defines <quando-booking>"
    );
}

async fn the_booking_page_embeds_the_widget_with_its_key_and_lets_only_its_origins_frame_it(
    app: TestApp,
) {
    let w = widget(&app).await;
    let path = format!("/book/{}", w.event_type_id);
    let resp = send(app.bare(Method::GET, &path).query(&[("key", &w.key)])).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("text/html"),
        "{}",
        resp.describe()
    );
    assert!(resp.text.contains("<quando-booking"), "{}", resp.describe());
    assert!(
        resp.text.contains(&format!("data-key=\"{}\"", w.key)),
        "the page carries its key: {}",
        resp.describe()
    );
    assert!(
        resp.text
            .contains(&format!("data-event-type=\"{}\"", w.event_type_id)),
        "{}",
        resp.describe()
    );
    let policy = resp
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("no Content-Security-Policy: {:?}", resp.headers));
    assert!(
        policy.contains(&format!("frame-ancestors 'self' {SHOP}")),
        "only the key's origins may frame the page: {policy}"
    );
    assert!(!policy.contains(EVIL), "{policy}");
}

async fn the_booking_page_is_404_for_a_secret_key_an_unknown_key_an_unbound_type_or_a_bad_id(
    app: TestApp,
) {
    let w = widget(&app).await;
    let unbound = id_of(
        &app.create_event_type(&app.key, Some(&w.calendar_id), 30)
            .await,
    );
    let unknown_key = format!("qnd_pub_{}", "A1b2C3d4E5".repeat(4));
    let bound = format!("/book/{}", w.event_type_id);
    let cases: Vec<(String, Option<&str>)> = vec![
        (bound.clone(), Some(app.key.as_str())),
        (bound.clone(), Some(unknown_key.as_str())),
        (bound.clone(), None),
        (format!("/book/{unbound}"), Some(w.key.as_str())),
        (format!("/book/{}", unknown_id()), Some(w.key.as_str())),
        ("/book/not-a-uuid".to_owned(), Some(w.key.as_str())),
    ];
    for (path, key) in cases {
        let mut request = app.bare(Method::GET, &path);
        if let Some(key) = key {
            request = request.query(&[("key", key)]);
        }
        let resp = send(request).await;
        assert_eq!(resp.status, 404, "{path} with {key:?}: {}", resp.describe());
        assert!(
            resp.content_type().starts_with("text/html"),
            "{path}: {}",
            resp.describe()
        );
        assert!(
            !resp.text.contains("<quando-booking"),
            "{path}: {}",
            resp.describe()
        );
        if let Some(key) = key {
            assert!(!resp.text.contains(key), "the page echoes the key: {path}");
        }
    }
}
