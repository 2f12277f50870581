//! Protection and operations: per-key rate limits (X-RateLimit-* headers, 429 with Retry-After),
//! expired and revoked keys, the key list without secrets, oversized bodies, failed
//! authentications throttled per client address, the JSON request log, the Prometheus counters
//! at `/metrics`, and the documented maximum length of string fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quando_api::admin;
use quando_api::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::spec_walk::{fetch_spec, resolve};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        a_key_limited_to_3_per_minute_gets_3_requests_then_429_with_retry_after,
        a_key_without_its_own_limit_reports_the_server_default_of_600_even_on_errors,
        unauthenticated_responses_carry_no_rate_limit_headers,
        an_expired_key_is_403_forbidden_and_a_key_expiring_in_30_days_works,
        the_key_list_shows_revoked_and_last_used_times_and_never_a_secret,
        a_body_over_64_kib_with_an_idempotency_key_is_413_and_creates_nothing,
        failed_authentications_from_one_address_are_throttled_after_30_but_valid_keys_still_work,
        metrics_count_requests_bookings_conflicts_and_rate_limited_requests,
        metrics_on_the_api_port_is_404_in_the_envelope_when_it_has_an_address_of_its_own,
        metrics_with_neither_an_address_nor_a_token_is_served_nowhere,
        metrics_behind_a_token_on_the_api_port_answers_only_that_bearer_token,
        metrics_on_its_own_address_with_a_token_answers_only_that_token_and_nothing_else,
        each_request_writes_one_json_log_line_with_its_request_id_org_route_status_and_latency,
        a_title_over_200_characters_is_400_naming_title_and_200_characters_are_accepted,
    ]
}

const EVENTS: &str = "/v1/calendar/events";
const CALENDARS: &str = "/v1/calendar/calendars";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A header that must be present and a whole number.
#[track_caller]
fn number_header(resp: &Resp, name: &str) -> u64 {
    let value = resp
        .header(name)
        .unwrap_or_else(|| panic!("no {name} header: {}", resp.describe()));
    value.parse().unwrap_or_else(|_| {
        panic!(
            "{name} {value:?} is not a whole number: {}",
            resp.describe()
        )
    })
}

/// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, with Reset checked to be unix
/// seconds from `now` to a minute after it (the bucket is full again within a minute).
#[track_caller]
fn rate_limit_headers(resp: &Resp, now: u64) -> (u64, u64) {
    let limit = number_header(resp, "x-ratelimit-limit");
    let remaining = number_header(resp, "x-ratelimit-remaining");
    let reset = number_header(resp, "x-ratelimit-reset");
    assert!(
        (now..=now + 61).contains(&reset),
        "X-RateLimit-Reset {reset} should be unix seconds between now ({now}) and a minute on: {}",
        resp.describe()
    );
    (limit, remaining)
}

/// A 429 `rate_limit_exceeded` in the envelope with `Retry-After` in whole seconds, 1 to 60.
/// Returns Retry-After.
#[track_caller]
fn assert_too_many(resp: &Resp) -> u64 {
    assert_error(resp, 429, "rate_limit_exceeded");
    let retry_after = number_header(resp, "retry-after");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After {retry_after} should be 1 to 60 seconds: {}",
        resp.describe()
    );
    retry_after
}

#[track_caller]
fn assert_no_rate_limit_headers(resp: &Resp, what: &str) {
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(
            resp.header(name).is_none(),
            "{what}: an unauthenticated response carries {name}: {:?}",
            resp.headers
        );
    }
}

/// A full-scope key of the first organization with its own per-minute limit: (key id, secret).
async fn key_limited_to(app: &TestApp, per_minute: u32) -> (uuid::Uuid, String) {
    let key = admin::create_key(
        &app.db,
        app.org_id,
        &Scope::ALL,
        Some("limited"),
        Some(per_minute),
    )
    .await
    .unwrap_or_else(|e| panic!("admin::create_key with a limit of {per_minute} failed: {e}"));
    (key.id, key.key)
}

/// A full-scope key of the first organization expiring in `days` (0 = already expired).
async fn key_expiring_in(app: &TestApp, days: u32) -> admin::CreatedKey {
    admin::create_key_expiring(
        &app.db,
        app.org_id,
        &Scope::ALL,
        Some("expiring"),
        None,
        Some(days),
    )
    .await
    .unwrap_or_else(|e| panic!("admin::create_key_expiring({days}) failed: {e}"))
}

async fn a_key_limited_to_3_per_minute_gets_3_requests_then_429_with_retry_after(app: TestApp) {
    let (_, limited) = key_limited_to(&app, 3).await;
    for expected_remaining in [2, 1, 0] {
        let now = unix_now();
        let resp = app.get_as(&limited, CALENDARS).await;
        assert_list(&resp);
        assert_eq!(
            rate_limit_headers(&resp, now),
            (3, expected_remaining),
            "X-RateLimit-Limit and X-RateLimit-Remaining: {:?}",
            resp.headers
        );
    }

    let now = unix_now();
    let resp = app.get_as(&limited, CALENDARS).await;
    assert_too_many(&resp);
    assert_eq!(
        rate_limit_headers(&resp, now),
        (3, 0),
        "a 429 carries the key's limit and nothing remaining: {:?}",
        resp.headers
    );
    // Writes are refused as well, and create nothing.
    let resp = app
        .post_as(
            &limited,
            CALENDARS,
            &json!({"name": "Oltre il limite", "timezone": "UTC"}),
        )
        .await;
    assert_too_many(&resp);

    // The organization's other key has a bucket of its own.
    let now = unix_now();
    let resp = app.get(CALENDARS).await;
    let (items, _) = assert_list(&resp);
    assert!(items.is_empty(), "the refused POST created a calendar");
    let (limit, remaining) = rate_limit_headers(&resp, now);
    assert_eq!(limit, 600, "the other key has the server default");
    assert!(
        remaining >= 590,
        "the other key's budget is untouched: {remaining}"
    );
}

async fn a_key_without_its_own_limit_reports_the_server_default_of_600_even_on_errors(
    app: TestApp,
) {
    let now = unix_now();
    let first = app.get(EVENTS).await;
    assert_list(&first);
    let (limit, first_remaining) = rate_limit_headers(&first, now);
    assert_eq!(limit, 600, "{:?}", first.headers);
    assert!(first_remaining < 600, "a request takes from the budget");

    // Errors of an authenticated request carry the headers too: 404, 400, 409.
    let now = unix_now();
    let not_found = app.get(&format!("{EVENTS}/{}", unknown_id())).await;
    assert_error(&not_found, 404, "not_found");
    let (limit, remaining) = rate_limit_headers(&not_found, now);
    assert_eq!(limit, 600);
    assert!(
        remaining < first_remaining,
        "each request takes one: {remaining} after {first_remaining}"
    );
    let invalid = app.post(EVENTS, &json!({})).await;
    assert_error(&invalid, 400, "validation_error");
    assert_eq!(rate_limit_headers(&invalid, now).0, 600);

    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T09:00:00Z",
        "2027-05-03T09:30:00Z",
    );
    let created = app.post_event(&body).await;
    assert_ok(&created, 201);
    assert_eq!(rate_limit_headers(&created, now).0, 600);
    let conflict = app.post_event(&body).await;
    assert_error(&conflict, 409, "slot_unavailable");
    assert_eq!(rate_limit_headers(&conflict, now).0, 600);
}

async fn unauthenticated_responses_carry_no_rate_limit_headers(app: TestApp) {
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let resp = send(app.bare(Method::GET, path)).await;
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.describe());
        assert_no_rate_limit_headers(&resp, path);
    }
    let resp = send(app.client.get(format!("{}/metrics", app.metrics_url))).await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.describe());
    assert_no_rate_limit_headers(&resp, "/metrics on its own address");
    let resp = send(app.bare(Method::GET, EVENTS)).await;
    assert_error(&resp, 401, "unauthorized");
    assert_no_rate_limit_headers(&resp, "GET /v1/calendar/events without a key");
    let unknown = format!("qnd_live_{}", "Z9".repeat(20));
    let resp = app.get_as(&unknown, EVENTS).await;
    assert_error(&resp, 401, "unauthorized");
    assert_no_rate_limit_headers(&resp, "GET /v1/calendar/events with an unknown key");
}

async fn an_expired_key_is_403_forbidden_and_a_key_expiring_in_30_days_works(app: TestApp) {
    let expired = key_expiring_in(&app, 0).await;
    let resp = app.get_as(&expired.key, EVENTS).await;
    let error = assert_error(&resp, 403, "forbidden");
    assert!(
        messages_about(&error, "").contains("expired"),
        "the message should say the key expired: {error}"
    );
    let resp = app
        .post_as(
            &expired.key,
            CALENDARS,
            &json!({"name": "Scaduto", "timezone": "UTC"}),
        )
        .await;
    assert_error(&resp, 403, "forbidden");
    let (items, _) = assert_list(&app.get(CALENDARS).await);
    assert!(items.is_empty(), "an expired key created a calendar");

    let month = key_expiring_in(&app, 30).await;
    assert_list(&app.get_as(&month.key, EVENTS).await);
    app.create_calendar(&month.key, None).await;
}

async fn the_key_list_shows_revoked_and_last_used_times_and_never_a_secret(app: TestApp) {
    let month = key_expiring_in(&app, 30).await;
    let (revoked_id, revoked) = app
        .created_key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    admin::revoke_key(&app.db, revoked_id)
        .await
        .unwrap_or_else(|e| panic!("admin::revoke_key failed: {e}"));
    assert_error(&app.get_as(&revoked, EVENTS).await, 403, "forbidden");
    assert_list(&app.get_as(&month.key, EVENTS).await);

    // last_used_at is written off the request path: wait for it, up to about two seconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    let keys = loop {
        let keys = admin::list_keys(&app.db, app.org_id)
            .await
            .unwrap_or_else(|e| panic!("admin::list_keys failed: {e}"));
        let used = keys
            .iter()
            .any(|k| k.id == month.id && k.last_used_at.is_some());
        if used || Instant::now() >= deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let listed: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::to_value(k).unwrap_or_else(|e| panic!("KeyInfo to JSON: {e}")))
        .collect();
    let find = |id: uuid::Uuid| {
        listed
            .iter()
            .find(|k| k["id"] == json!(id))
            .unwrap_or_else(|| panic!("key {id} is not listed: {listed:?}"))
            .clone()
    };
    let (month_info, revoked_info) = (find(month.id), find(revoked_id));

    let text = serde_json::to_string(&listed).unwrap_or_default();
    for secret in [&app.key, &month.key, &revoked] {
        let hidden = &secret[secret.len() - 20..];
        assert!(
            !text.contains(secret.as_str()) && !text.contains(hidden),
            "the key list shows a secret: {text}"
        );
    }
    for (info, secret) in [(&month_info, &month.key), (&revoked_info, &revoked)] {
        let prefix = info["prefix"]
            .as_str()
            .unwrap_or_else(|| panic!("no prefix: {info}"));
        assert!(
            secret.starts_with(prefix) && prefix.len() < secret.len() / 2,
            "the prefix {prefix:?} should be the short public start of the key: {info}"
        );
    }

    assert!(
        revoked_info["revokedAt"].is_string(),
        "revokedAt of the revoked key: {revoked_info}"
    );
    assert_recent(&revoked_info["revokedAt"], "revokedAt");
    assert!(
        month_info["revokedAt"].is_null(),
        "a live key has revokedAt null: {month_info}"
    );
    assert!(
        month_info["lastUsedAt"].is_string(),
        "lastUsedAt is still unset two seconds after a request: {month_info}"
    );
    assert_recent(&month_info["lastUsedAt"], "lastUsedAt");
    let expires =
        chrono::DateTime::parse_from_rfc3339(month_info["expiresAt"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| {
                panic!("expiresAt of the 30-day key is not a time ({e}): {month_info}")
            });
    let days = expires
        .signed_duration_since(chrono::Utc::now())
        .num_hours();
    assert!(
        (29 * 24..=30 * 24).contains(&days),
        "expiresAt should be 30 days on: {month_info}"
    );
}

async fn a_body_over_64_kib_with_an_idempotency_key_is_413_and_creates_nothing(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"notes": "x".repeat(65 * 1024)}),
    );
    let resp = send(
        app.req(Method::POST, EVENTS)
            .header("Idempotency-Key", "oversized-booking-1")
            .json(&body),
    )
    .await;
    assert_error(&resp, 413, "payload_too_large");
    let resp = send(
        app.req(Method::POST, CALENDARS)
            .header("Idempotency-Key", "oversized-calendar-1")
            .json(
                &json!({"name": "Sala", "timezone": "UTC", "description": "y".repeat(65 * 1024)}),
            ),
    )
    .await;
    assert_error(&resp, 413, "payload_too_large");

    let (events, _) = assert_list(&app.list_events(&[]).await);
    assert!(events.is_empty(), "an oversized booking created an event");
    let (calendars, _) = assert_list(&app.get(CALENDARS).await);
    assert_eq!(
        ids(&calendars),
        vec![calendar_id],
        "an oversized POST created a calendar"
    );
}

async fn failed_authentications_from_one_address_are_throttled_after_30_but_valid_keys_still_work(
    app: TestApp,
) {
    let unknown = format!("qnd_live_{}", "q7".repeat(20));
    let started = Instant::now();
    let mut failures = 0u64;
    let refused = loop {
        let resp = app.get_as(&unknown, EVENTS).await;
        if resp.status != 401 {
            break resp;
        }
        assert_error(&resp, 401, "unauthorized");
        failures += 1;
        assert!(failures <= 200, "200 failed authentications and no 429");
    };
    // 30 a minute, refilled one every two seconds: 30 at once, plus one per two seconds taken.
    let allowed = 30 + started.elapsed().as_secs() / 2;
    assert!(
        (30..=allowed).contains(&failures),
        "{failures} failed authentications before the first 429 (30 expected, at most {allowed} after {:?})",
        started.elapsed()
    );
    assert_too_many(&refused);

    // Only failures are budgeted: the organization's valid key from the same address still works.
    assert_list(&app.get(EVENTS).await);
    let resp = app.get_as(&unknown, EVENTS).await;
    assert_too_many(&resp);
    assert_list(&app.get(EVENTS).await);
    app.create_calendar(&app.key, None).await;
}

// ----- metrics -----

/// One sample of the Prometheus text format: `name{label="value",...} value`.
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Parses the exposition's samples; comment lines are skipped.
#[track_caller]
pub(crate) fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a metrics line without a value: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a metrics value that is not a number: {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unterminated labels: {line:?}"));
                (name, parse_labels(body, line))
            }
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

#[track_caller]
fn parse_labels(mut body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body
            .split_once("=\"")
            .unwrap_or_else(|| panic!("a label without =\": {line:?}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("a dangling escape: {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("an unterminated label value: {line:?}"),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        body = rest[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The sum of the samples named `name` whose labels include all of `labels` (0 when none).
pub(crate) fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// GET /metrics on the server's metrics address: 200, Prometheus text.
pub(crate) async fn metrics(app: &TestApp) -> Vec<Sample> {
    let resp = send(app.client.get(format!("{}/metrics", app.metrics_url))).await;
    assert_metrics_text(&resp)
}

/// A 200 of Prometheus text: its samples.
#[track_caller]
fn assert_metrics_text(resp: &Resp) -> Vec<Sample> {
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.describe());
    assert!(
        resp.content_type().starts_with("text/plain"),
        "/metrics should be Prometheus text (text/plain): {}",
        resp.describe()
    );
    assert!(
        resp.text
            .contains("# TYPE quando_http_requests_total counter"),
        "/metrics has no TYPE line for quando_http_requests_total: {}",
        resp.describe()
    );
    parse_metrics(&resp.text)
}

async fn metrics_count_requests_bookings_conflicts_and_rate_limited_requests(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let created_201 = [("route", EVENTS), ("method", "POST"), ("status", "201")];
    let refused_409 = [("route", EVENTS), ("method", "POST"), ("status", "409")];
    let before = metrics(&app).await;

    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T09:00:00Z",
        "2027-05-03T09:30:00Z",
    );
    assert_ok(&app.post_event(&body).await, 201);
    assert_error(&app.post_event(&body).await, 409, "slot_unavailable");

    let after = metrics(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    assert_eq!(
        moved("quando_bookings_created_total", &[]),
        1.0,
        "quando_bookings_created_total after one booking"
    );
    assert_eq!(
        moved("quando_booking_refusals_total", &[("reason", "conflict")]),
        1.0,
        "quando_booking_refusals_total{{reason=\"conflict\"}} after one conflict"
    );
    assert_eq!(
        moved("quando_http_requests_total", &created_201),
        1.0,
        "quando_http_requests_total for POST /v1/calendar/events 201"
    );
    assert_eq!(
        moved("quando_http_requests_total", &refused_409),
        1.0,
        "quando_http_requests_total for POST /v1/calendar/events 409"
    );
    let buckets: Vec<&Sample> = after
        .iter()
        .filter(|s| {
            s.name == "quando_http_request_duration_seconds_bucket"
                && s.labels.get("route").map(String::as_str) == Some(EVENTS)
                && s.labels.get("method").map(String::as_str) == Some("POST")
        })
        .collect();
    assert!(
        !buckets.is_empty(),
        "no quando_http_request_duration_seconds_bucket line for POST {EVENTS}"
    );
    let infinite = metric(
        &after,
        "quando_http_request_duration_seconds_bucket",
        &[("route", EVENTS), ("method", "POST"), ("le", "+Inf")],
    );
    assert!(
        infinite >= 2.0,
        "the +Inf bucket of POST {EVENTS} counts both requests: {infinite}"
    );
    assert_eq!(
        infinite,
        metric(
            &after,
            "quando_http_request_duration_seconds_count",
            &[("route", EVENTS), ("method", "POST")]
        ),
        "the +Inf bucket equals the _count"
    );

    // A 429 moves quando_rate_limited_total.
    let (_, limited) = key_limited_to(&app, 1).await;
    assert_list(&app.get_as(&limited, EVENTS).await);
    assert_too_many(&app.get_as(&limited, EVENTS).await);
    let last = metrics(&app).await;
    assert_eq!(
        metric(&last, "quando_rate_limited_total", &[])
            - metric(&after, "quando_rate_limited_total", &[]),
        1.0,
        "quando_rate_limited_total after one 429"
    );
}

/// Another server on the case's database, started the one way the binary starts it, with
/// `metrics_bind` and `metrics_token` as given: its API and metrics base URLs.
async fn spawn_with_metrics(
    app: &TestApp,
    metrics_bind: Option<&str>,
    metrics_token: Option<&str>,
) -> (String, Option<String>) {
    let config = quando_api::config::Config {
        bind: "127.0.0.1:0".into(),
        metrics_bind: metrics_bind.map(str::to_owned),
        metrics_token: metrics_token.map(str::to_owned),
        ..quando_api::config::Config::default()
    };
    let application = quando_api::app::Application::build_with(app.db.clone(), config)
        .await
        .unwrap_or_else(|e| panic!("Application::build_with: {e}"));
    let api = application
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let metrics = application.metrics_addr();
    // Ends with the case's runtime.
    tokio::spawn(application.run_until(std::future::pending()));
    (
        format!("http://{api}"),
        metrics.map(|addr| format!("http://{addr}")),
    )
}

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

async fn metrics_on_the_api_port_is_404_in_the_envelope_when_it_has_an_address_of_its_own(
    app: TestApp,
) {
    let resp = send(app.bare(Method::GET, "/metrics")).await;
    assert_error(&resp, 404, "not_found");
    assert!(
        !resp.text.contains("quando_"),
        "no metric on the API port: {}",
        resp.describe()
    );
    // The metrics address serves /metrics and nothing else, in the envelope too.
    metrics(&app).await;
    let resp = send(app.client.get(format!("{}{EVENTS}", app.metrics_url))).await;
    assert_error(&resp, 404, "not_found");
}

async fn metrics_with_neither_an_address_nor_a_token_is_served_nowhere(app: TestApp) {
    let (api, metrics_url) = spawn_with_metrics(&app, None, None).await;
    assert!(metrics_url.is_none());
    let resp = send(app.client.get(format!("{api}/metrics"))).await;
    assert_error(&resp, 404, "not_found");
    let resp = send(
        app.client
            .get(format!("{api}/metrics"))
            .bearer_auth(&app.key),
    )
    .await;
    assert_error(&resp, 404, "not_found");
}

async fn metrics_behind_a_token_on_the_api_port_answers_only_that_bearer_token(app: TestApp) {
    let (api, metrics_url) = spawn_with_metrics(&app, None, Some(METRICS_TOKEN)).await;
    assert!(metrics_url.is_none());
    let url = format!("{api}/metrics");
    let refused = [
        ("no Authorization", app.client.get(&url)),
        ("an API key", app.client.get(&url).bearer_auth(&app.key)),
        (
            "a token one character short",
            app.client
                .get(&url)
                .bearer_auth(&METRICS_TOKEN[..METRICS_TOKEN.len() - 1]),
        ),
        (
            "the token as Basic",
            app.client
                .get(&url)
                .header("authorization", format!("Basic {METRICS_TOKEN}")),
        ),
    ];
    for (what, request) in refused {
        let resp = send(request).await;
        let error = assert_error(&resp, 401, "unauthorized");
        assert!(
            !resp.text.contains("quando_http"),
            "{what}: no metric in a refusal: {error}"
        );
    }
    let samples = assert_metrics_text(&send(app.client.get(&url).bearer_auth(METRICS_TOKEN)).await);
    assert!(
        metric(
            &samples,
            "quando_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ) >= 4.0,
        "the refusals are counted"
    );
}

async fn metrics_on_its_own_address_with_a_token_answers_only_that_token_and_nothing_else(
    app: TestApp,
) {
    let (api, metrics_url) =
        spawn_with_metrics(&app, Some("127.0.0.1:0"), Some(METRICS_TOKEN)).await;
    let metrics_url = metrics_url.unwrap_or_else(|| panic!("no metrics address"));
    let resp = send(
        app.client
            .get(format!("{api}/metrics"))
            .bearer_auth(METRICS_TOKEN),
    )
    .await;
    assert_error(&resp, 404, "not_found");
    let url = format!("{metrics_url}/metrics");
    assert_error(&send(app.client.get(&url)).await, 401, "unauthorized");
    assert_metrics_text(&send(app.client.get(&url).bearer_auth(METRICS_TOKEN)).await);
}

// ----- the JSON request log -----

/// An in-memory log sink.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves `requests` through the real app in-process on a thread of its own, with the JSON log
/// subscriber `QUANDO_LOG_FORMAT=json` selects (`telemetry::json_subscriber`) writing to memory, and returns the
/// log lines. (The format is chosen once per process, so the shared test server cannot switch it.)
async fn json_log_of(app: &TestApp, requests: Vec<poem::Request>) -> Vec<Value> {
    let db = app.db.clone();
    let captured = Captured::default();
    let sink = captured.clone();
    tokio::task::spawn_blocking(move || {
        use poem::Endpoint as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let subscriber = quando_api::telemetry::json_subscriber(Some("info"), move || sink.clone());
        // While only one scoped subscriber exists, tracing-core rebuilds callsite interest from
        // the calling thread's default (none yet), so callsites other tests' servers already hit
        // would stay disabled; registering a silent second subscriber first avoids that.
        let _silent = tracing_subscriber::registry().set_default();
        let _guard = subscriber.set_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime for the log test: {e}"));
        rt.block_on(async move {
            let config = quando_api::config::Config::default();
            let endpoint = quando_api::app(quando_api::state::AppState::new(db, config));
            for request in requests {
                let _ = endpoint.call(request).await;
            }
            // Let the background last_used_at write finish before the runtime goes.
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
    })
    .await
    .unwrap_or_else(|e| panic!("the log test thread failed: {e}"));
    let bytes = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn in_process_request(method: Method, path: &str, key: Option<&str>, id: &str) -> poem::Request {
    let method = poem::http::Method::from_bytes(method.as_str().as_bytes())
        .unwrap_or_else(|e| panic!("method: {e}"));
    let mut builder = poem::Request::builder()
        .method(method)
        .uri(path.parse().unwrap_or_else(|e| panic!("uri {path}: {e}")))
        .header("x-request-id", id);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    builder.finish()
}

async fn each_request_writes_one_json_log_line_with_its_request_id_org_route_status_and_latency(
    app: TestApp,
) {
    let calendar = app.create_calendar(&app.key, None).await;
    let calendar_path = format!("{CALENDARS}/{}", id_of(&calendar));
    let missing_path = format!("{EVENTS}/{}", unknown_id());
    let lines = json_log_of(
        &app,
        vec![
            in_process_request(Method::GET, &calendar_path, Some(&app.key), "log-req-1"),
            in_process_request(Method::GET, &missing_path, Some(&app.key), "log-req-2"),
            in_process_request(Method::GET, EVENTS, None, "log-req-3"),
        ],
    )
    .await;
    let request_line = |id: &str| -> Value {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == json!("request") && l["request_id"] == json!(id))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one `request` log line for {id}, got {found:?} in {lines:?}"
        );
        found[0].clone()
    };

    let org = app.org_id.to_string();
    for (id, route, status, org_id) in [
        (
            "log-req-1",
            "/v1/calendar/calendars/{id}",
            200,
            org.as_str(),
        ),
        ("log-req-2", "/v1/calendar/events/{id}", 404, org.as_str()),
        ("log-req-3", EVENTS, 401, ""),
    ] {
        let line = request_line(id);
        assert_eq!(line["level"], json!("INFO"), "{line}");
        assert_eq!(line["method"], json!("GET"), "method: {line}");
        assert_eq!(line["route"], json!(route), "route template: {line}");
        assert_eq!(line["status"], json!(status), "status: {line}");
        assert_eq!(line["org_id"], json!(org_id), "org_id: {line}");
        assert!(
            line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "latency_ms: {line}"
        );
        assert!(line["timestamp"].is_string(), "timestamp: {line}");
    }
    let all = serde_json::to_string(&lines).unwrap_or_default();
    assert!(!all.contains(&app.key), "the log shows the API key: {all}");
}

// ----- documented string maxima -----

async fn a_title_over_200_characters_is_400_naming_title_and_200_characters_are_accepted(
    app: TestApp,
) {
    // The spec documents the limit.
    let spec = fetch_spec(&app).await;
    let op = &spec["paths"][EVENTS]["post"];
    let content = op["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
        .unwrap_or_else(|| panic!("createEvent has no request body: {op}"));
    let schema = resolve(&spec, &content["schema"]);
    let title = resolve(&spec, &schema["properties"]["title"]);
    assert_eq!(
        title["maxLength"],
        json!(200),
        "the spec should document title maxLength 200: {title}"
    );

    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = |title: String, hour: u32| {
        with(
            event_body(
                &calendar_id,
                &event_type_id,
                &format!("2027-05-03T{hour:02}:00:00Z"),
                &format!("2027-05-03T{hour:02}:30:00Z"),
            ),
            json!({"title": title}),
        )
    };
    let resp = app.post_event(&body("t".repeat(201), 9)).await;
    let error = assert_validation(&resp, &["title"]);
    let said = messages_about(&error, "title");
    assert!(
        said.contains("at most 200"),
        "the message should say at most 200 characters: {error}"
    );
    let (items, _) = assert_list(&app.list_events(&[]).await);
    assert!(items.is_empty(), "a refused title created an event");

    // The limit counts characters, not bytes: 200 accented letters are 400 bytes.
    let data = assert_ok(&app.post_event(&body("è".repeat(200), 10)).await, 201);
    assert_eq!(data["title"], json!("è".repeat(200)));
}
