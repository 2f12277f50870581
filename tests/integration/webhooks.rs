//! Webhooks: endpoints and their secrets, the outbox (one message per change, whichever dialect
//! made it, nothing for a write that did not commit), signatures checked against the secret the
//! way a Standard Webhooks receiver checks them, order per event, retries and the delivery log,
//! rotation, an endpoint disabled after five days of failures, and other organizations. A real
//! receiver on loopback (the test servers allow private destinations). Both backends.
//!
//! The Standard Webhooks library from PyPI checks the same deliveries in CI
//! (`scripts/webhooks_check.py`), with the kill -9 and two-instance cases.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, handler};
use quando_api::auth::Scope;
use quando_api::domain::webhooks::SigningSecret;
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::google::{event_path, insert, timed};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        an_endpoint_shows_its_secret_once_and_is_read_changed_and_deleted,
        bad_endpoints_are_refused_naming_every_field,
        each_change_is_delivered_once_with_its_kind_signed_and_in_order,
        changes_made_through_talkover_and_google_are_delivered_with_the_right_kind,
        a_refused_booking_sends_nothing,
        an_endpoint_gets_only_the_events_it_asked_for,
        a_failed_attempt_is_retried_and_the_log_shows_each_try,
        a_rotated_secret_signs_beside_the_old_one,
        an_endpoint_failing_for_five_days_is_disabled_and_says_why,
        a_failed_delivery_is_sent_again_on_retry,
        a_ping_reaches_the_endpoint,
        every_instance_of_a_recurring_event_is_announced,
        another_organizations_endpoints_and_deliveries_are_not_found,
        webhook_routes_need_the_webhooks_manage_scope,
        the_delivery_log_keeps_thirty_days_and_never_drops_a_pending_delivery,
    ]
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: i64,
    signatures: Vec<String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether one of its signatures is `secret`'s over `{id}.{timestamp}.{body}`, as a
    /// Standard Webhooks receiver checks.
    fn signed_by(&self, secret: &str) -> bool {
        let secret = SigningSecret::parse(secret).expect("a whsec_ secret");
        let expected = secret.sign(&self.id, self.timestamp, &self.body);
        self.signatures.contains(&expected)
    }
}

/// A webhook receiver on loopback: answers `status` (settable) and keeps what it got.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
    /// Requests answered 2xx.
    delivered: Arc<Mutex<Vec<Received>>>,
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, rx: Data<&Receiver>) -> Response {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let got = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signatures: header("webhook-signature")
            .split(' ')
            .map(str::to_string)
            .collect(),
        body,
    };
    let status = rx.status.load(Ordering::SeqCst);
    rx.got.lock().unwrap().push(got.clone());
    if (200..300).contains(&status) {
        rx.delivered.lock().unwrap().push(got);
    }
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .finish()
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let rx = Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            status: Arc::new(AtomicU16::new(204)),
            got: Arc::default(),
            delivered: Arc::default(),
        };
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(rx.clone());
        let server = poem::Server::new(poem::listener::TcpListener::bind(format!(
            "127.0.0.1:{port}"
        )));
        tokio::spawn(async move {
            let _ = server.run(app).await;
        });
        // Until it listens.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rx
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn delivered(&self) -> Vec<Received> {
        self.delivered.lock().unwrap().clone()
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to `within`) until `n` requests were answered 2xx; answers them.
    async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        poll_for(within, || async { self.delivered() }, |got| got.len() >= n).await
    }
}

/// Creates an endpoint; answers (id, secret).
async fn endpoint(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let made = assert_ok(&app.post_as(key, "/v1/webhooks", &body).await, 201);
    let secret = made["secret"]
        .as_str()
        .expect("secret on create")
        .to_string();
    (id_of(&made), secret)
}

fn kinds(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let resp = app
        .get(&format!("/v1/webhooks/{webhook}/deliveries?limit=100"))
        .await;
    assert_list(&resp).0
}

/// A calendar open around the clock and a 30-minute event type.
async fn setup(app: &TestApp) -> (String, String) {
    app.calendar_and_event_type().await
}

async fn book(app: &TestApp, cal: &str, et: &str, start: &str, end: &str) -> String {
    id_of(&app.create_event(&app.key, cal, et, start, end).await)
}

const WAIT: Duration = Duration::from_secs(15);

/// Asks `probe` every 50 ms until `done` holds for its answer or `within` has passed; answers
/// the last one (the caller's assertions then say what was wrong).
async fn poll_for<T, F, Fut>(within: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = probe().await;
        if done(&got) || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `poll_for` over `WAIT`.
async fn poll<T, F, Fut>(probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    poll_for(WAIT, probe, done).await
}

async fn an_endpoint_shows_its_secret_once_and_is_read_changed_and_deleted(app: TestApp) {
    let body = json!({
        "url": "https://hooks.example.com/quando",
        "events": ["appointment.created", "appointment.cancelled"],
        "description": "CRM sync",
    });
    let made = assert_ok(&app.post("/v1/webhooks", &body).await, 201);
    assert!(
        made["secret"].as_str().unwrap().starts_with("whsec_"),
        "{made}"
    );
    SigningSecret::parse(made["secret"].as_str().unwrap()).expect("the secret parses");
    assert_eq!(made["url"], "https://hooks.example.com/quando");
    assert_eq!(
        made["events"],
        json!(["appointment.created", "appointment.cancelled"])
    );
    assert_eq!(made["disabled"], false);
    assert_uuid_v7(&made["id"], "id");
    let id = id_of(&made);
    let path = format!("/v1/webhooks/{id}");

    let read = assert_ok(&app.get(&path).await, 200);
    assert!(
        read.get("secret").is_none(),
        "the secret is shown once: {read}"
    );
    assert_eq!(read["description"], "CRM sync");

    let (listed, pagination) = assert_list(&app.get("/v1/webhooks").await);
    assert_eq!(ids(&listed), vec![id.clone()]);
    assert_pagination(&pagination, 1, 20, 1, 1);
    assert!(listed[0].get("secret").is_none());

    let changed = assert_ok(
        &app.patch(
            &path,
            &json!({"events": [], "description": null, "disabled": true}),
        )
        .await,
        200,
    );
    assert_eq!(changed["events"], json!([]));
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["disabled"], true);

    let resp = send(app.req(Method::DELETE, &path)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert_error(&app.get(&path).await, 404, "not_found");
    let resp = send(app.req(Method::DELETE, &path)).await;
    assert_error(&resp, 404, "not_found");
}

async fn bad_endpoints_are_refused_naming_every_field(app: TestApp) {
    let body = json!({
        "url": "ftp://hooks.example.com/x",
        "events": ["appointment.created", "appointment.exploded"],
        "description": "x".repeat(501),
    });
    let resp = app.post("/v1/webhooks", &body).await;
    assert_validation(&resp, &["url", "events[1]", "description"]);
    let resp = app.post("/v1/webhooks", &json!({"url": "not a url"})).await;
    assert_validation(&resp, &["url"]);
    let resp = app.post("/v1/webhooks", &json!({"events": []})).await;
    assert_error(&resp, 400, "validation_error");
    let resp = app
        .post(
            "/v1/webhooks",
            &json!({"url": "https://x.example", "events": "all"}),
        )
        .await;
    assert_error(&resp, 400, "validation_error");
    let (id, _) = endpoint(&app, &app.key, json!({"url": "https://x.example/h"})).await;
    let resp = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"url": "gopher://x", "events": ["ping"]}),
        )
        .await;
    assert_validation(&resp, &["url", "events[0]"]);
    let resp = app
        .get(&format!("/v1/webhooks/{id}/deliveries?status=lost"))
        .await;
    assert_error(&resp, 400, "validation_error");
    // As everywhere in the API, an id that cannot exist is not found.
    let resp = app.get("/v1/webhooks/not-a-uuid").await;
    assert_error(&resp, 404, "not_found");
    assert_error(
        &app.get(&format!("/v1/webhooks/{}", unknown_id())).await,
        404,
        "not_found",
    );
}

async fn each_change_is_delivered_once_with_its_kind_signed_and_in_order(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, secret) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    let id = book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    let path = format!("/v1/calendar/events/{id}");
    assert_ok(
        &app.patch(
            &path,
            &json!({"startTime": "2027-03-01T11:00:00Z", "endTime": "2027-03-01T11:30:00Z"}),
        )
        .await,
        200,
    );
    assert_ok(&app.patch(&path, &json!({"title": "Check-up"})).await, 200);
    assert_ok(
        &app.post(&format!("{path}/cancel"), &json!({"reason": "ill"}))
            .await,
        200,
    );
    let got = rx.wait_delivered(4, WAIT).await;
    assert_eq!(
        kinds(&got),
        vec![
            "appointment.created",
            "appointment.rescheduled",
            "appointment.updated",
            "appointment.cancelled"
        ]
    );
    for r in &got {
        assert!(r.signed_by(&secret), "signature of {}", r.id);
        let body = r.json();
        assert_eq!(body["id"], r.id.as_str());
        assert!(r.id.starts_with("msg_"), "{}", r.id);
        assert_utc_seconds(&body["timestamp"], "timestamp");
        assert_eq!(body["data"]["id"], id.as_str());
        assert_eq!(body["data"]["calendarId"], cal.as_str());
        let now = chrono::Utc::now().timestamp();
        assert!(
            (now - r.timestamp).abs() < 60,
            "webhook-timestamp {}",
            r.timestamp
        );
    }
    let rescheduled = got[1].json();
    assert_eq!(rescheduled["data"]["startTime"], "2027-03-01T11:00:00Z");
    assert_eq!(
        rescheduled["data"]["previous"]["startTime"],
        "2027-03-01T09:00:00Z"
    );
    assert_eq!(
        rescheduled["data"]["previous"]["endTime"],
        "2027-03-01T09:30:00Z"
    );
    assert!(got[0].json()["data"].get("previous").is_none());
    assert_eq!(got[2].json()["data"]["title"], "Check-up");
    assert_eq!(got[3].json()["data"]["status"], "cancelled");
    assert_eq!(got[3].json()["data"]["cancellationReason"], "ill");
    // Once each: nothing more arrives, and the log agrees.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.got().len(), 4);
    let log = deliveries(&app, &webhook).await;
    assert_eq!(log.len(), 4);
    for d in &log {
        assert_eq!(d["status"], "succeeded", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["responseStatus"], 204);
        assert_eq!(d["eventId"], id.as_str());
        assert_eq!(d["nextAttemptAt"], Value::Null);
        assert_utc_seconds(&d["deliveredAt"], "deliveredAt");
    }
    let mut logged: Vec<String> = log
        .iter()
        .map(|d| d["messageId"].as_str().unwrap().to_string())
        .collect();
    let mut sent: Vec<String> = got.iter().map(|r| r.id.clone()).collect();
    logged.sort();
    sent.sort();
    assert_eq!(logged, sent);
}

async fn changes_made_through_talkover_and_google_are_delivered_with_the_right_kind(app: TestApp) {
    let rx = Receiver::start().await;
    let (_, secret) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let cal = id_of(
        &app.create_calendar(&app.key, Some(json!({"name": "Desk", "timezone": "UTC"})))
            .await,
    );
    // Talkover: create, then PUT new times, then PUT status cancelled.
    let made = talkover_ok(
        &app.post(
            &format!("/api/v1/calendars/{cal}/events"),
            &json!({"title": "Call", "start_at": "2027-02-01T10:00:00Z", "end_at": "2027-02-01T10:30:00Z"}),
        )
        .await,
        201,
    );
    let talk_id = made["id"].as_str().unwrap().to_string();
    let put = |body: Value| {
        let path = format!("/api/v1/calendars/{cal}/events/{talk_id}");
        let app = app.clone();
        async move { app.req_put(&path, &body).await }
    };
    talkover_ok(
        &put(json!({"start_at": "2027-02-01T12:00:00Z", "end_at": "2027-02-01T12:30:00Z"})).await,
        200,
    );
    talkover_ok(&put(json!({"status": "cancelled"})).await, 200);
    // Google: insert, then delete.
    let g = insert(&app, &cal, timed("Review", "2027-02-02T09:00:00Z", 30)).await;
    let g_id = g["id"].as_str().unwrap().to_string();
    let resp = send(app.req(Method::DELETE, &event_path(&cal, &g_id))).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());

    let got = rx.wait_delivered(5, WAIT).await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    // In order per event (two events' messages may interleave).
    let of = |event: &str| -> Vec<Value> {
        got.iter()
            .map(Received::json)
            .filter(|b| b["data"]["id"] == event)
            .collect()
    };
    let talk = of(&talk_id);
    let talk_kinds: Vec<&str> = talk.iter().map(|b| b["event"].as_str().unwrap()).collect();
    assert_eq!(
        talk_kinds,
        vec![
            "appointment.created",
            "appointment.rescheduled",
            "appointment.cancelled"
        ]
    );
    assert_eq!(talk[0]["data"]["bookedVia"], "talkover");
    assert_eq!(
        talk[1]["data"]["previous"]["startTime"],
        "2027-02-01T10:00:00Z"
    );
    assert_eq!(talk[1]["data"]["startTime"], "2027-02-01T12:00:00Z");
    let google_id = got
        .iter()
        .map(Received::json)
        .find(|b| b["data"]["title"] == "Review")
        .map(|b| b["data"]["id"].as_str().unwrap().to_string())
        .expect("the Google insert is announced");
    let google = of(&google_id);
    let google_kinds: Vec<&str> = google
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        google_kinds,
        vec!["appointment.created", "appointment.cancelled"]
    );
    assert_eq!(google[0]["data"]["bookedVia"], "gcal");
}

async fn a_refused_booking_sends_nothing(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, _) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    let clash = event_body(&cal, &et, "2027-03-01T09:15:00Z", "2027-03-01T09:45:00Z");
    assert_error(&app.post_event(&clash).await, 409, "slot_unavailable");
    let bad = event_body(&cal, &et, "2027-03-01T10:00:00Z", "2027-03-01T09:00:00Z");
    assert_error(&app.post_event(&bad).await, 400, "validation_error");
    rx.wait_delivered(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(kinds(&rx.got()), vec!["appointment.created"]);
    assert_eq!(deliveries(&app, &webhook).await.len(), 1);
}

async fn an_endpoint_gets_only_the_events_it_asked_for(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, _) = endpoint(
        &app,
        &app.key,
        json!({"url": rx.url, "events": ["appointment.cancelled"]}),
    )
    .await;
    let (cal, et) = setup(&app).await;
    let id = book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    assert_ok(
        &app.post(&format!("/v1/calendar/events/{id}/cancel"), &json!({}))
            .await,
        200,
    );
    let got = rx.wait_delivered(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(kinds(&got), vec!["appointment.cancelled"]);
    assert_eq!(rx.got().len(), 1);
    assert_eq!(deliveries(&app, &webhook).await.len(), 1);
}

async fn a_failed_attempt_is_retried_and_the_log_shows_each_try(app: TestApp) {
    let rx = Receiver::start().await;
    rx.answer(500);
    let (webhook, secret) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    let id = book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    // The first attempt fails: the log says so and when the next one is due.
    let failed = poll(
        || deliveries(&app, &webhook),
        |log| log.first().is_some_and(|d| d["attempts"] == 1),
    )
    .await;
    let d = &failed[0];
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["responseStatus"], 500);
    assert_eq!(d["lastError"], "answered 500");
    assert_utc_seconds(&d["nextAttemptAt"], "nextAttemptAt");
    let endpoint_now = assert_ok(&app.get(&format!("/v1/webhooks/{webhook}")).await, 200);
    assert_utc_seconds(&endpoint_now["failingSince"], "failingSince");
    // A cancel made meanwhile waits behind the create it follows.
    assert_ok(
        &app.post(&format!("/v1/calendar/events/{id}/cancel"), &json!({}))
            .await,
        200,
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(kinds(&rx.got()), vec!["appointment.created"]);
    rx.answer(200);
    // About 5 s after the failure (plus up to a tenth), both arrive, in order.
    let got = rx.wait_delivered(2, Duration::from_secs(20)).await;
    assert_eq!(
        kinds(&got),
        vec!["appointment.created", "appointment.cancelled"]
    );
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    let all = rx.got();
    assert_eq!(all.len(), 3, "one failed try and two deliveries");
    assert_eq!(all[0].id, all[1].id, "a retry keeps the message id");
    let log = deliveries(&app, &webhook).await;
    let created = log
        .iter()
        .find(|d| d["event"] == "appointment.created")
        .unwrap();
    assert_eq!(created["status"], "succeeded");
    assert_eq!(created["attempts"], 2);
    assert_eq!(created["responseStatus"], 200);
    assert_eq!(created["lastError"], Value::Null);
    let healthy = assert_ok(&app.get(&format!("/v1/webhooks/{webhook}")).await, 200);
    assert_eq!(healthy["failingSince"], Value::Null);
    // Filtered log.
    let resp = app
        .get(&format!("/v1/webhooks/{webhook}/deliveries?status=pending"))
        .await;
    assert!(assert_list(&resp).0.is_empty());
}

async fn a_rotated_secret_signs_beside_the_old_one(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, old) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let rotated = assert_ok(
        &app.post(&format!("/v1/webhooks/{webhook}/rotate-secret"), &json!({}))
            .await,
        200,
    );
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_utc_seconds(
        &rotated["previousSecretExpiresAt"],
        "previousSecretExpiresAt",
    );
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    let got = rx.wait_delivered(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signatures.len(), 2, "{:?}", got[0].signatures);
    assert!(got[0].signed_by(&new));
    assert!(got[0].signed_by(&old));
    // Once the day is over only the new secret signs.
    app.db
        .execute_unprepared("UPDATE webhook_endpoints SET previous_secret_until = created_at")
        .await
        .unwrap();
    book(
        &app,
        &cal,
        &et,
        "2027-03-02T09:00:00Z",
        "2027-03-02T09:30:00Z",
    )
    .await;
    let got = rx.wait_delivered(2, WAIT).await;
    assert_eq!(got[1].signatures.len(), 1);
    assert!(got[1].signed_by(&new));
    assert!(!got[1].signed_by(&old));
}

async fn an_endpoint_failing_for_five_days_is_disabled_and_says_why(app: TestApp) {
    let rx = Receiver::start().await;
    rx.answer(503);
    let (webhook, _) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    // It has been failing for six days.
    let six_days_ago = chrono::Utc::now() - chrono::Duration::days(6);
    {
        use entity::webhook_endpoints::{Column, Entity};
        use sea_orm::EntityTrait;
        use sea_orm::sea_query::Expr;
        Entity::update_many()
            .col_expr(Column::FailingSince, Expr::value(Some(six_days_ago)))
            .exec(&app.db)
            .await
            .unwrap();
    }
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    let path = format!("/v1/webhooks/{webhook}");
    let disabled = poll(
        || async { assert_ok(&app.get(&path).await, 200) },
        |e| e["disabled"] == true,
    )
    .await;
    assert_eq!(disabled["disabled"], true, "{disabled}");
    let reason = disabled["disabledReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("5 days") && reason.contains("503"),
        "{reason}"
    );
    // A disabled endpoint is sent nothing new.
    rx.answer(204);
    book(
        &app,
        &cal,
        &et,
        "2027-03-02T09:00:00Z",
        "2027-03-02T09:30:00Z",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(deliveries(&app, &webhook).await.len(), 1);
    // Enabled again, it starts over.
    let enabled = assert_ok(
        &app.patch(
            &format!("/v1/webhooks/{webhook}"),
            &json!({"disabled": false}),
        )
        .await,
        200,
    );
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(enabled["failingSince"], Value::Null);
    book(
        &app,
        &cal,
        &et,
        "2027-03-03T09:00:00Z",
        "2027-03-03T09:30:00Z",
    )
    .await;
    let got = rx.wait_delivered(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["data"]["startTime"], "2027-03-03T09:00:00Z");
}

async fn a_failed_delivery_is_sent_again_on_retry(app: TestApp) {
    let rx = Receiver::start().await;
    rx.answer(500);
    let (webhook, _) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    poll(|| async { rx.got() }, |got| !got.is_empty()).await;
    // As if the whole schedule had failed.
    app.db
        .execute_unprepared("UPDATE webhook_deliveries SET status = 'failed'")
        .await
        .unwrap();
    let failed = deliveries(&app, &webhook).await;
    assert_eq!(failed[0]["status"], "failed");
    assert_eq!(failed[0]["nextAttemptAt"], Value::Null);
    let delivery = id_of(&failed[0]);
    rx.answer(200);
    let resp = app
        .post(
            &format!("/v1/webhooks/{webhook}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await;
    let retried = assert_ok(&resp, 202);
    assert_eq!(retried["status"], "pending");
    let got = rx.wait_delivered(1, WAIT).await;
    assert_eq!(kinds(&got), vec!["appointment.created"]);
    let path = format!("/v1/webhooks/{webhook}/deliveries/{delivery}");
    let done = poll(
        || async { assert_ok(&app.get(&path).await, 200) },
        |d| d["status"] == "succeeded",
    )
    .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 2);
    // Retrying a delivered one changes nothing.
    let again = assert_ok(
        &app.post(
            &format!("/v1/webhooks/{webhook}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await,
        202,
    );
    assert_eq!(again["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.delivered().len(), 1);
    assert_error(
        &app.post(
            &format!("/v1/webhooks/{webhook}/deliveries/{}/retry", unknown_id()),
            &json!({}),
        )
        .await,
        404,
        "not_found",
    );
}

async fn a_ping_reaches_the_endpoint(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, secret) = endpoint(
        &app,
        &app.key,
        json!({"url": rx.url, "events": ["appointment.cancelled"], "disabled": true}),
    )
    .await;
    let resp = app
        .post(&format!("/v1/webhooks/{webhook}/test"), &json!({}))
        .await;
    let queued = assert_ok(&resp, 202);
    assert_eq!(queued["event"], "ping");
    assert_eq!(queued["eventId"], Value::Null);
    let got = rx.wait_delivered(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].signed_by(&secret));
    let body = got[0].json();
    assert_eq!(body["event"], "ping");
    assert_eq!(body["data"]["webhookId"], webhook.as_str());
    assert_eq!(queued["messageId"], got[0].id.as_str());
}

async fn every_instance_of_a_recurring_event_is_announced(app: TestApp) {
    let rx = Receiver::start().await;
    endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let cal = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "Gym", "timezone": "Europe/Rome"})),
        )
        .await,
    );
    let body = json!({
        "summary": "Pilates",
        "start": {"dateTime": "2027-03-22T18:00:00", "timeZone": "Europe/Rome"},
        "end": {"dateTime": "2027-03-22T19:00:00", "timeZone": "Europe/Rome"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
    });
    let master = insert(&app, &cal, body).await;
    let got = rx.wait_delivered(3, WAIT).await;
    assert_eq!(kinds(&got), vec!["appointment.created"; 3]);
    let mut starts: Vec<String> = got
        .iter()
        .map(|r| r.json()["data"]["startTime"].as_str().unwrap().to_string())
        .collect();
    starts.sort();
    // 18:00 in Rome: +01:00 before 28 March, +02:00 after.
    assert_eq!(
        starts,
        vec![
            "2027-03-22T17:00:00Z",
            "2027-03-29T16:00:00Z",
            "2027-04-05T16:00:00Z"
        ]
    );
    // Cancelling the series announces each instance's cancellation.
    let id = master["id"].as_str().unwrap();
    let resp = send(app.req(Method::DELETE, &event_path(&cal, id))).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    let got = rx.wait_delivered(6, WAIT).await;
    assert_eq!(
        kinds(&got[3..]),
        vec!["appointment.cancelled"; 3],
        "{:?}",
        kinds(&got)
    );
}

async fn another_organizations_endpoints_and_deliveries_are_not_found(app: TestApp) {
    let rx = Receiver::start().await;
    let (webhook, _) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    rx.wait_delivered(1, WAIT).await;
    let delivery = id_of(&deliveries(&app, &webhook).await[0]);

    let (_, other) = app.new_org("Other clinic").await;
    let base = format!("/v1/webhooks/{webhook}");
    let not_found = |resp: &Resp| {
        assert_error(resp, 404, "not_found");
    };
    not_found(&app.get_as(&other, &base).await);
    not_found(
        &app.patch_as(&other, &base, &json!({"disabled": true}))
            .await,
    );
    not_found(&send(app.req_as(&other, Method::DELETE, &base)).await);
    not_found(
        &app.post_as(&other, &format!("{base}/rotate-secret"), &json!({}))
            .await,
    );
    not_found(
        &app.post_as(&other, &format!("{base}/test"), &json!({}))
            .await,
    );
    not_found(&app.get_as(&other, &format!("{base}/deliveries")).await);
    not_found(
        &app.get_as(&other, &format!("{base}/deliveries/{delivery}"))
            .await,
    );
    not_found(
        &app.post_as(
            &other,
            &format!("{base}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await,
    );
    let (listed, _) = assert_list(&app.get_as(&other, "/v1/webhooks").await);
    assert!(listed.is_empty());
    // The other organization's bookings never reach this endpoint.
    let cal2 = id_of(&app.create_calendar(&other, None).await);
    let et2 = id_of(&app.create_event_type(&other, Some(&cal2), 30).await);
    app.create_event(
        &other,
        &cal2,
        &et2,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.got().len(), 1);
    // Still there, unchanged.
    assert_eq!(assert_ok(&app.get(&base).await, 200)["disabled"], false);
}

async fn webhook_routes_need_the_webhooks_manage_scope(app: TestApp) {
    let calendar_only = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead, Scope::CalendarWrite])
        .await;
    let resp = app.get_as(&calendar_only, "/v1/webhooks").await;
    assert_error(&resp, 403, "insufficient_scope");
    let resp = app
        .post_as(
            &calendar_only,
            "/v1/webhooks",
            &json!({"url": "https://x.example"}),
        )
        .await;
    assert_error(&resp, 403, "insufficient_scope");
    let manage_only = app
        .key_with_scopes(app.org_id, &[Scope::WebhooksManage])
        .await;
    assert_ok(&app.get_as(&manage_only, "/v1/webhooks").await, 200);
    let resp = app.get_as(&manage_only, "/v1/calendar/events").await;
    assert_error(&resp, 403, "insufficient_scope");
}

async fn the_delivery_log_keeps_thirty_days_and_never_drops_a_pending_delivery(app: TestApp) {
    use entity::{webhook_deliveries, webhook_messages};
    use sea_orm::sea_query::Expr;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let rx = Receiver::start().await;
    let (webhook, _) = endpoint(&app, &app.key, json!({"url": rx.url})).await;
    let (cal, et) = setup(&app).await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
    )
    .await;
    book(
        &app,
        &cal,
        &et,
        "2027-03-02T09:00:00Z",
        "2027-03-02T09:30:00Z",
    )
    .await;
    rx.wait_delivered(2, WAIT).await;
    rx.answer(500);
    book(
        &app,
        &cal,
        &et,
        "2027-03-03T09:00:00Z",
        "2027-03-03T09:30:00Z",
    )
    .await;
    poll(|| async { rx.got() }, |got| got.len() >= 3).await;
    // Everything is 40 days old.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
    webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::UpdatedAt, Expr::value(long_ago))
        .exec(&app.db)
        .await
        .unwrap();
    webhook_messages::Entity::update_many()
        .col_expr(webhook_messages::Column::CreatedAt, Expr::value(long_ago))
        .exec(&app.db)
        .await
        .unwrap();
    let cutoff =
        chrono::Utc::now() - chrono::Duration::days(quando_api::repo::webhooks::LOG_RETENTION_DAYS);
    let purged = quando_api::repo::webhooks::purge_finished(&app.db, cutoff)
        .await
        .unwrap();
    assert_eq!(purged, (2, 2));
    let left = deliveries(&app, &webhook).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["status"], "pending");
    assert_eq!(
        webhook_messages::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        1
    );
    // Nothing newer than the cutoff goes.
    let again = quando_api::repo::webhooks::purge_finished(&app.db, cutoff)
        .await
        .unwrap();
    assert_eq!(again, (0, 0));
}
