//! The Talkover dialect under `/api/v1`: the seed's create example as the seed gives it, the list
//! and batch-list shapes, round trips with the native API, every error code in Talkover's
//! envelope, races and idempotency. Both backends.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        the_seeds_create_example_passes,
        a_calendars_events_list_by_from_to_and_status_sorted_by_start,
        the_batch_list_covers_several_calendars_and_refuses_another_organizations,
        an_event_made_here_is_read_and_cancelled_natively,
        an_event_made_natively_is_read_and_rescheduled_here,
        a_put_with_status_cancelled_frees_the_time,
        a_refused_time_is_slot_unavailable_with_reason_and_next_slots,
        every_error_is_in_the_talkover_envelope_with_its_code,
        thirty_two_concurrent_creates_on_one_slot_give_one_201,
        an_idempotency_key_retry_creates_nothing,
        an_attendee_is_added_with_an_id_and_a_duplicate_is_refused,
        health_answers_success,
        external_providers_answer_not_supported,
    ]
}

fn path(calendar: &str) -> String {
    format!("/api/v1/calendars/{calendar}/events")
}

/// A calendar open around the clock (the native API makes it).
async fn calendar(app: &TestApp) -> String {
    id_of(
        &app.create_calendar(&app.key, Some(json!({"name": "Line 1", "timezone": "UTC"})))
            .await,
    )
}

async fn create(app: &TestApp, calendar: &str, start: &str, end: &str) -> Value {
    let body = json!({"title": "Call-back", "start_at": start, "end_at": end});
    talkover_ok(&app.post(&path(calendar), &body).await, 201)
}

async fn the_seeds_create_example_passes(app: TestApp) {
    let cal = calendar(&app).await;
    // The seed's body, but for the date (a past one would be refused).
    let body = json!({
        "title": "Demo with Acme",
        "start_at": "2027-01-20T15:00:00Z",
        "end_at": "2027-01-20T15:30:00Z",
        "type": "meeting",
        "attendees": [{"name":"Jane Doe","email":"jane@example.com"}]
    });
    let resp = send(
        app.req(Method::POST, &format!("/api/v1/calendars/{cal}/events"))
            .header("content-type", "application/json")
            .json(&body),
    )
    .await;
    let data = talkover_ok(&resp, 201);
    assert_uuid_v7(&data["id"], "id");
    assert_eq!(data["calendar_id"], cal.as_str());
    assert_eq!(data["title"], "Demo with Acme");
    assert_eq!(data["start_at"], "2027-01-20T15:00:00Z");
    assert_eq!(data["end_at"], "2027-01-20T15:30:00Z");
    assert_eq!(data["status"], "confirmed");
    assert_eq!(data["type"], "meeting");
    assert_eq!(data["attendees"][0]["name"], "Jane Doe");
    assert_eq!(data["attendees"][0]["email"], "jane@example.com");
}

async fn a_calendars_events_list_by_from_to_and_status_sorted_by_start(app: TestApp) {
    let cal = calendar(&app).await;
    let late = create(&app, &cal, "2027-02-01T11:00:00Z", "2027-02-01T11:30:00Z").await;
    let early = create(&app, &cal, "2027-02-01T09:00:00Z", "2027-02-01T09:30:00Z").await;
    let tentative = talkover_ok(
        &app.post(
            &path(&cal),
            &json!({"title": "Maybe", "start_at": "2027-02-01T13:00:00Z",
                    "end_at": "2027-02-01T13:30:00Z", "status": "tentative"}),
        )
        .await,
        201,
    );
    let resp = app.get(&path(&cal)).await;
    let all = talkover_ok(&resp, 200);
    assert_eq!(resp.body["has_more"], false);
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            early["id"].as_str().unwrap(),
            late["id"].as_str().unwrap(),
            tentative["id"].as_str().unwrap()
        ]
    );
    // `from` bounds start_at below, `to` bounds end_at above.
    let window = talkover_ok(
        &app.get_query(
            &path(&cal),
            &[
                ("from", "2027-02-01T09:00:01Z"),
                ("to", "2027-02-01T11:30:00Z"),
            ],
        )
        .await,
        200,
    );
    assert_eq!(window.as_array().unwrap().len(), 1, "{window}");
    assert_eq!(window[0]["id"], late["id"]);
    let tent = talkover_ok(
        &app.get_query(&path(&cal), &[("status", "tentative")]).await,
        200,
    );
    assert_eq!(tent.as_array().unwrap().len(), 1);
    assert_eq!(tent[0]["status"], "tentative");
}

async fn the_batch_list_covers_several_calendars_and_refuses_another_organizations(app: TestApp) {
    let (a, b) = (calendar(&app).await, calendar(&app).await);
    create(&app, &a, "2027-03-01T09:00:00Z", "2027-03-01T09:30:00Z").await;
    create(&app, &b, "2027-03-01T08:00:00Z", "2027-03-01T08:30:00Z").await;
    let url = format!(
        "/api/v1/calendars/events?calendar_ids[]={a}&calendar_ids[]={b}&from=2027-03-01T00:00:00Z&to=2027-03-02T00:00:00Z"
    );
    let data = talkover_ok(&app.get(&url).await, 200);
    let cals: Vec<&str> = data
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["calendar_id"].as_str())
        .collect();
    assert_eq!(cals, [b.as_str(), a.as_str()], "sorted by start_at: {data}");
    let (_, other_key) = app.new_org("Another Ltd").await;
    let theirs = id_of(
        &app.create_calendar(
            &other_key,
            Some(json!({"name": "Theirs", "timezone": "UTC"})),
        )
        .await,
    );
    let mixed = format!("/api/v1/calendars/events?calendar_ids[]={a}&calendar_ids[]={theirs}");
    talkover_error(&app.get(&mixed).await, 404, "NOT_FOUND");
    talkover_error(
        &app.get("/api/v1/calendars/events").await,
        400,
        "VALIDATION_ERROR",
    );
}

async fn an_event_made_here_is_read_and_cancelled_natively(app: TestApp) {
    let cal = calendar(&app).await;
    let body = json!({"title": "Demo", "description": "agenda", "start_at": "2027-04-01T09:00:00Z",
        "end_at": "2027-04-01T09:30:00Z", "type": "meeting", "created_by": "u-1", "owner_id": "agent-7",
        "owner_type": "agent", "attendees": [{"name": "Jane", "email": "jane@example.com"}]});
    let made = talkover_ok(&app.post(&path(&cal), &body).await, 201);
    let id = made["id"].as_str().unwrap();
    let native = assert_ok(&app.get(&format!("/v1/calendar/events/{id}")).await, 200);
    assert_eq!(native["calendarId"], cal.as_str());
    assert_eq!(native["title"], "Demo");
    assert_eq!(native["description"], "agenda");
    assert_eq!(native["type"], "meeting");
    assert_eq!(native["createdBy"], "u-1");
    assert_eq!(native["ownerId"], "agent-7");
    assert_eq!(native["ownerType"], "agent");
    assert_eq!(native["eventTypeId"], Value::Null);
    assert_eq!(native["bookedVia"], "talkover");
    assert_eq!(native["startTime"], made["start_at"]);
    assert_eq!(native["endTime"], made["end_at"]);
    assert_eq!(native["attendees"][0]["email"], "jane@example.com");
    let cancelled = send(app.req(Method::POST, &format!("/v1/calendar/events/{id}/cancel"))).await;
    assert_eq!(assert_ok(&cancelled, 200)["status"], "cancelled");
    let listed = talkover_ok(&app.get(&path(&cal)).await, 200);
    assert_eq!(listed[0]["status"], "cancelled");
}

async fn an_event_made_natively_is_read_and_rescheduled_here(app: TestApp) {
    let (cal, et) = app.calendar_and_event_type().await;
    // The native calendar from support works weekdays; pick a free weekday morning.
    let native = app
        .create_event(
            &app.key,
            &cal,
            &et,
            "2027-04-05T08:00:00Z",
            "2027-04-05T08:30:00Z",
        )
        .await;
    let id = id_of(&native);
    let listed = talkover_ok(&app.get(&path(&cal)).await, 200);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["start_at"], native["startTime"]);
    let moved = talkover_ok(
        &app.req_put(
            &format!("{}/{id}", path(&cal)),
            &json!({"start_at": "2027-04-05T09:00:00Z", "title": "Moved"}),
        )
        .await,
        200,
    );
    assert_eq!(moved["start_at"], "2027-04-05T09:00:00Z");
    assert_eq!(
        moved["end_at"], "2027-04-05T09:30:00Z",
        "the length is kept"
    );
    assert_eq!(moved["title"], "Moved");
    assert!(moved["updated_at"].is_string());
    let again = assert_ok(&app.get(&format!("/v1/calendar/events/{id}")).await, 200);
    assert_eq!(again["startTime"], "2027-04-05T09:00:00Z");
    assert_eq!(
        again["eventTypeId"],
        et.as_str(),
        "the event keeps its event type"
    );
}

async fn a_put_with_status_cancelled_frees_the_time(app: TestApp) {
    let cal = calendar(&app).await;
    let made = create(&app, &cal, "2027-04-02T09:00:00Z", "2027-04-02T09:30:00Z").await;
    let id = made["id"].as_str().unwrap();
    let cancelled = talkover_ok(
        &app.req_put(
            &format!("{}/{id}", path(&cal)),
            &json!({"status": "cancelled"}),
        )
        .await,
        200,
    );
    assert_eq!(cancelled["status"], "cancelled");
    create(&app, &cal, "2027-04-02T09:00:00Z", "2027-04-02T09:30:00Z").await;
}

async fn a_refused_time_is_slot_unavailable_with_reason_and_next_slots(app: TestApp) {
    let cal = calendar(&app).await;
    let taken = create(&app, &cal, "2027-05-03T10:00:00Z", "2027-05-03T10:30:00Z").await;
    let body = json!({"title": "Again", "start_at": "2027-05-03T10:15:00Z", "end_at": "2027-05-03T10:45:00Z"});
    let error = talkover_error(&app.post(&path(&cal), &body).await, 409, "SLOT_UNAVAILABLE");
    assert_eq!(error["details"]["reason"], "conflict");
    assert_eq!(error["details"]["conflicting_event_id"], taken["id"]);
    let next = error["details"]["next_slots"]
        .as_array()
        .expect("next_slots");
    assert!(!next.is_empty(), "{error}");
    assert!(
        next[0]["start_at"].is_string() && next[0]["end_at"].is_string(),
        "{error}"
    );
    // Working hours of the calendar apply: a calendar open 09-17 refuses 20:00.
    let office = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "Office", "timezone": "UTC",
                "workingHours": [{"day": "monday", "start": "09:00", "end": "17:00"}]})),
        )
        .await,
    );
    let late = json!({"title": "Late", "start_at": "2027-05-03T20:00:00Z", "end_at": "2027-05-03T20:30:00Z"});
    let error = talkover_error(
        &app.post(&path(&office), &late).await,
        409,
        "SLOT_UNAVAILABLE",
    );
    assert_eq!(error["details"]["reason"], "outside_working_hours");
    let past = json!({"title": "Past", "start_at": "2020-05-04T10:00:00Z", "end_at": "2020-05-04T10:30:00Z"});
    let error = talkover_error(&app.post(&path(&cal), &past).await, 409, "SLOT_UNAVAILABLE");
    assert_eq!(error["details"]["reason"], "before_minimum_notice");
}

async fn every_error_is_in_the_talkover_envelope_with_its_code(app: TestApp) {
    let cal = calendar(&app).await;
    let ok =
        json!({"title": "T", "start_at": "2027-06-01T09:00:00Z", "end_at": "2027-06-01T09:30:00Z"});
    // 401 without a key, or with a wrong one.
    talkover_error(
        &send(app.bare(Method::GET, &path(&cal))).await,
        401,
        "INVALID_API_KEY",
    );
    talkover_error(
        &send(app.req_as("qnd_live_nope", Method::GET, &path(&cal))).await,
        401,
        "INVALID_API_KEY",
    );
    // 403: a revoked key, then a read-only key writing.
    let (revoked_id, revoked) = app
        .created_key_with_scopes(app.org_id, &quando_api::auth::Scope::ALL)
        .await;
    quando_api::admin::revoke_key(&app.db, revoked_id)
        .await
        .expect("revoke the key");
    talkover_error(&app.get_as(&revoked, &path(&cal)).await, 403, "FORBIDDEN");
    let reader = app
        .key_with_scopes(app.org_id, &[quando_api::auth::Scope::CalendarRead])
        .await;
    talkover_error(
        &app.post_as(&reader, &path(&cal), &ok).await,
        403,
        "INSUFFICIENT_SCOPE",
    );
    // 400, naming every bad field the Talkover way.
    let bad = json!({"start_at": "2027-06-01T10:00:00Z", "end_at": "2027-06-01T09:00:00Z"});
    let error = talkover_error(&app.post(&path(&cal), &bad).await, 400, "VALIDATION_ERROR");
    let fields: Vec<&str> = error["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"title"), "{error}");
    let backwards =
        json!({"title": "T", "start_at": "2027-06-01T10:00:00Z", "end_at": "2027-06-01T09:00:00Z"});
    let error = talkover_error(
        &app.post(&path(&cal), &backwards).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(error["details"]["fields"][0]["field"], "end_at", "{error}");
    let local =
        json!({"title": "T", "start_at": "2027-06-01T10:00:00", "end_at": "2027-06-01T11:00:00Z"});
    let error = talkover_error(
        &app.post(&path(&cal), &local).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(
        error["details"]["fields"][0]["field"], "start_at",
        "{error}"
    );
    // 404: an unknown calendar, another organization's calendar and event, an unknown route.
    talkover_error(&app.post(&path(&unknown_id()), &ok).await, 404, "NOT_FOUND");
    let (_, other_key) = app.new_org("Other").await;
    let theirs = id_of(
        &app.create_calendar(&other_key, Some(json!({"name": "X", "timezone": "UTC"})))
            .await,
    );
    talkover_error(&app.post(&path(&theirs), &ok).await, 404, "NOT_FOUND");
    let their_event = talkover_ok(&app.post_as(&other_key, &path(&theirs), &ok).await, 201);
    let their_url = format!("{}/{}", path(&theirs), their_event["id"].as_str().unwrap());
    talkover_error(
        &app.req_put(&their_url, &json!({"title": "mine"})).await,
        404,
        "NOT_FOUND",
    );
    let mine_then_theirs = format!("{}/{}", path(&cal), their_event["id"].as_str().unwrap());
    talkover_error(
        &app.req_put(&mine_then_theirs, &json!({"title": "mine"}))
            .await,
        404,
        "NOT_FOUND",
    );
    talkover_error(&app.get("/api/v1/no-such-thing").await, 404, "NOT_FOUND");
    // 413 and 415.
    let huge = json!({"title": "x".repeat(70_000), "start_at": "2027-06-01T09:00:00Z", "end_at": "2027-06-01T09:30:00Z"});
    talkover_error(
        &app.post(&path(&cal), &huge).await,
        413,
        "PAYLOAD_TOO_LARGE",
    );
    let text = send(
        app.req(Method::POST, &path(&cal))
            .header("content-type", "text/plain")
            .body("hi"),
    )
    .await;
    talkover_error(&text, 415, "UNSUPPORTED_MEDIA_TYPE");
    // 422: one key, two bodies.
    let first = send(
        app.req(Method::POST, &path(&cal))
            .header("Idempotency-Key", "k-1")
            .json(&ok),
    )
    .await;
    talkover_ok(&first, 201);
    let other = json!({"title": "T2", "start_at": "2027-06-01T11:00:00Z", "end_at": "2027-06-01T11:30:00Z"});
    let second = send(
        app.req(Method::POST, &path(&cal))
            .header("Idempotency-Key", "k-1")
            .json(&other),
    )
    .await;
    talkover_error(&second, 422, "IDEMPOTENCY_CONFLICT");
    // 429 with the rate-limit headers.
    let slow = quando_api::admin::create_key(
        &app.db,
        app.org_id,
        &[quando_api::auth::Scope::CalendarRead],
        Some("slow"),
        Some(1),
    )
    .await
    .expect("a key with a limit of 1 per minute");
    let mut last = None;
    for _ in 0..3 {
        last = Some(app.get_as(&slow.key, &path(&cal)).await);
    }
    let limited = last.expect("three requests");
    talkover_error(&limited, 429, "RATE_LIMIT_EXCEEDED");
    assert!(
        limited.header("retry-after").is_some(),
        "{}",
        limited.describe()
    );
    assert!(
        limited.header("x-ratelimit-limit").is_some(),
        "{}",
        limited.describe()
    );
}

async fn thirty_two_concurrent_creates_on_one_slot_give_one_201(app: TestApp) {
    let cal = calendar(&app).await;
    let body = json!({"title": "Race", "start_at": "2027-07-01T09:00:00Z", "end_at": "2027-07-01T09:30:00Z"});
    let url = path(&cal);
    let answers = join_all((0..32).map(|_| app.post(&url, &body))).await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    let refused = answers
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "SLOT_UNAVAILABLE")
        .count();
    assert_eq!(
        (created, refused),
        (1, 31),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let listed = talkover_ok(&app.get(&url).await, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn an_idempotency_key_retry_creates_nothing(app: TestApp) {
    let cal = calendar(&app).await;
    let body = json!({"title": "Once", "start_at": "2027-07-02T09:00:00Z", "end_at": "2027-07-02T09:30:00Z"});
    let post = || {
        send(
            app.req(Method::POST, &path(&cal))
                .header("Idempotency-Key", "call-1")
                .json(&body),
        )
    };
    let first = post().await;
    let made = talkover_ok(&first, 201);
    let again = post().await;
    assert_eq!(talkover_ok(&again, 201)["id"], made["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let listed = talkover_ok(&app.get(&path(&cal)).await, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn an_attendee_is_added_with_an_id_and_a_duplicate_is_refused(app: TestApp) {
    let cal = calendar(&app).await;
    let made = create(&app, &cal, "2027-07-03T09:00:00Z", "2027-07-03T09:30:00Z").await;
    let url = format!("{}/{}/attendees", path(&cal), made["id"].as_str().unwrap());
    let added = talkover_ok(
        &app.post(&url, &json!({"name": "Jane", "email": "jane@example.com"}))
            .await,
        201,
    );
    assert_uuid_v7(&added["id"], "attendee id");
    assert_eq!(added["email"], "jane@example.com");
    let error = talkover_error(
        &app.post(
            &url,
            &json!({"name": "Jane again", "email": "JANE@example.com"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(error["details"]["fields"][0]["field"], "email", "{error}");
    let error = talkover_error(
        &app.post(&url, &json!({"email": "not-an-address"})).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(error["details"]["fields"][0]["field"], "email", "{error}");
    let listed = talkover_ok(&app.get(&path(&cal)).await, 200);
    assert_eq!(listed[0]["attendees"].as_array().unwrap().len(), 1);
}

async fn health_answers_success(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/api/v1/health")).await;
    assert_eq!(talkover_ok(&resp, 200)["status"], "ok");
}

async fn external_providers_answer_not_supported(app: TestApp) {
    let cal = calendar(&app).await;
    let url = format!("/api/v1/calendars/{cal}/providers");
    let body = json!({"provider": "google", "redirect_uri": "https://example.com/cb"});
    let error = talkover_error(&app.post(&url, &body).await, 501, "NOT_SUPPORTED");
    assert!(
        error["message"].as_str().unwrap().contains("not supported"),
        "{error}"
    );
    talkover_error(&app.get(&url).await, 501, "NOT_SUPPORTED");
    talkover_error(
        &app.post(
            &format!("/api/v1/calendars/{}/providers", unknown_id()),
            &body,
        )
        .await,
        404,
        "NOT_FOUND",
    );
}
