//! Talkover's availability and availability rules under `/api/v1/calendars/{id}`: the slots
//! equal the native availability's, and the rules are the calendar's working hours and date
//! overrides, so a rule set here shows natively and native hours show here. Both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        availability_has_the_talkover_shape_and_equals_the_native_availability,
        availability_refuses_a_bad_window_naming_the_field,
        a_recurring_rule_added_here_changes_native_availability_and_working_hours,
        native_working_hours_appear_here_as_rules_and_a_rule_deleted_here_disappears_natively,
        exception_rules_close_a_day_and_open_other_hours_both_ways,
        a_recurring_rule_in_another_zone_is_refused_on_timezone,
        an_overlapping_rule_is_refused_naming_the_field_and_changes_nothing,
        an_idempotency_key_retry_adds_the_rule_once,
        another_organizations_calendar_or_rule_is_not_found,
    ]
}

// Monday 2027-05-03 .. Saturday 2027-05-08.
const MONDAY: &str = "2027-05-03";
const TUESDAY: &str = "2027-05-04";
const SATURDAY: &str = "2027-05-08";

fn rules_path(calendar: &str) -> String {
    format!("/api/v1/calendars/{calendar}/availability-rules")
}

fn availability_path(calendar: &str) -> String {
    format!("/api/v1/calendars/{calendar}/availability")
}

/// The fields a Talkover validation error names.
#[track_caller]
fn talkover_fields(resp: &Resp) -> Vec<String> {
    let error = talkover_error(resp, 400, "VALIDATION_ERROR");
    error["details"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["field"].as_str().map(str::to_owned))
        .collect()
}

/// A native calendar from `extra` over a UTC one open around the clock.
async fn calendar(app: &TestApp, extra: Value) -> String {
    let body = with(json!({"name": "Line 1", "timezone": "UTC"}), extra);
    id_of(&app.create_calendar(&app.key, Some(body)).await)
}

fn weekdays(start: &str, end: &str) -> Value {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    Value::Array(
        days.iter()
            .map(|d| json!({"day": d, "start": start, "end": end}))
            .collect(),
    )
}

async fn rules(app: &TestApp, calendar: &str) -> Vec<Value> {
    let data = talkover_ok(&app.get(&rules_path(calendar)).await, 200);
    data.as_array().cloned().unwrap_or_default()
}

async fn add_rule(app: &TestApp, calendar: &str, body: Value) -> Value {
    talkover_ok(&app.post(&rules_path(calendar), &body).await, 201)
}

async fn delete_rule(app: &TestApp, calendar: &str, rule: &str) -> Resp {
    send(app.req(Method::DELETE, &format!("{}/{rule}", rules_path(calendar)))).await
}

async fn native_calendar(app: &TestApp, calendar: &str) -> Value {
    assert_ok(
        &app.get(&format!("/v1/calendar/calendars/{calendar}")).await,
        200,
    )
}

/// Talkover's slots of a day, as (start, end) pairs.
async fn talkover_slots(
    app: &TestApp,
    calendar: &str,
    day: &str,
    minutes: u32,
) -> Vec<(String, String)> {
    let from = format!("{day}T00:00:00Z");
    let to = format!("{day}T23:59:00Z");
    let minutes = minutes.to_string();
    let resp = app
        .get_query(
            &availability_path(calendar),
            &[("from", &from), ("to", &to), ("duration_minutes", &minutes)],
        )
        .await;
    let data = talkover_ok(&resp, 200);
    pairs(&data, "start_at", "end_at")
}

/// The native slots of a day for a new event type of `minutes` without buffers.
async fn native_slots(
    app: &TestApp,
    calendar: &str,
    day: &str,
    minutes: i64,
) -> Vec<(String, String)> {
    let event_type = id_of(
        &app.create_event_type(&app.key, Some(calendar), minutes)
            .await,
    );
    let from = format!("{day}T00:00:00Z");
    let to = format!("{day}T23:59:00Z");
    let resp = app
        .get_query(
            "/v1/calendar/availability",
            &[
                ("calendarId", calendar),
                ("eventTypeId", &event_type),
                ("dateFrom", &from),
                ("dateTo", &to),
            ],
        )
        .await;
    pairs(&assert_ok(&resp, 200)["slots"], "startTime", "endTime")
}

fn pairs(slots: &Value, start: &str, end: &str) -> Vec<(String, String)> {
    slots
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s[start].as_str().unwrap_or_default().to_owned(),
                s[end].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn starts(slots: &[(String, String)]) -> Vec<&str> {
    slots.iter().map(|(s, _)| s.as_str()).collect()
}

async fn availability_has_the_talkover_shape_and_equals_the_native_availability(app: TestApp) {
    let calendar = calendar(
        &app,
        json!({"timezone": "Europe/Rome", "workingHours": weekdays("09:00", "12:00")}),
    )
    .await;
    let event_type = id_of(&app.create_event_type(&app.key, Some(&calendar), 45).await);
    app.create_event(
        &app.key,
        &calendar,
        &event_type,
        "2027-05-03T08:30:00Z",
        "2027-05-03T09:15:00Z",
    )
    .await;

    let resp = app
        .get_query(
            &availability_path(&calendar),
            &[
                ("from", "2027-05-03T00:00:00+02:00"),
                ("to", "2027-05-05T00:00:00+02:00"),
                ("duration_minutes", "45"),
            ],
        )
        .await;
    talkover_ok(&resp, 200);
    assert_has_keys(
        &resp.body,
        &["success", "data", "has_more", "next_from"],
        "body",
    );
    assert_eq!(resp.body["has_more"], false, "{}", resp.describe());
    assert!(resp.body["next_from"].is_null(), "{}", resp.describe());
    let slots = resp.body["data"].as_array().cloned().unwrap_or_default();
    for slot in &slots {
        assert_has_keys(slot, &["start_at", "end_at"], "slot");
        assert_utc_seconds(&slot["start_at"], "start_at");
    }
    let here = pairs(&resp.body["data"], "start_at", "end_at");
    // 09:00-12:00 Rome is 07:00-10:00 UTC; the booked 08:30-09:15 takes one 45-minute slot.
    assert_eq!(
        starts(&here),
        [
            "2027-05-03T07:00:00Z",
            "2027-05-03T07:45:00Z",
            "2027-05-03T09:15:00Z",
            "2027-05-04T07:00:00Z",
            "2027-05-04T07:45:00Z",
            "2027-05-04T08:30:00Z",
            "2027-05-04T09:15:00Z",
        ]
    );
    let native = {
        let resp = app
            .get_query(
                "/v1/calendar/availability",
                &[
                    ("calendarId", calendar.as_str()),
                    ("eventTypeId", event_type.as_str()),
                    ("dateFrom", "2027-05-03T00:00:00+02:00"),
                    ("dateTo", "2027-05-05T00:00:00+02:00"),
                ],
            )
            .await;
        pairs(&assert_ok(&resp, 200)["slots"], "startTime", "endTime")
    };
    assert_eq!(here, native);

    // Without duration_minutes the slots are 30 minutes, the same as a 30-minute event type's.
    let default = {
        let resp = app
            .get_query(
                &availability_path(&calendar),
                &[
                    ("from", "2027-05-04T00:00:00Z"),
                    ("to", "2027-05-04T23:59:00Z"),
                ],
            )
            .await;
        pairs(&talkover_ok(&resp, 200), "start_at", "end_at")
    };
    assert_eq!(
        default[0],
        ("2027-05-04T07:00:00Z".into(), "2027-05-04T07:30:00Z".into())
    );
    assert_eq!(default, native_slots(&app, &calendar, TUESDAY, 30).await);
}

async fn availability_refuses_a_bad_window_naming_the_field(app: TestApp) {
    let calendar = calendar(&app, json!({})).await;
    let path = availability_path(&calendar);
    for (query, field) in [
        (
            vec![
                ("from", "2027-05-03T00:00:00"),
                ("to", "2027-05-04T00:00:00Z"),
            ],
            "from",
        ),
        (
            vec![
                ("from", "2027-05-04T00:00:00Z"),
                ("to", "2027-05-03T00:00:00Z"),
            ],
            "to",
        ),
        (
            vec![
                ("from", "2027-05-03T00:00:00Z"),
                ("to", "2027-07-05T00:00:00Z"),
            ],
            "to",
        ),
    ] {
        let resp = app.get_query(&path, &query).await;
        assert_eq!(talkover_fields(&resp), [field], "{query:?}");
    }
    for query in [
        vec![("to", "2027-05-04T00:00:00Z")],
        vec![
            ("from", "2027-05-03T00:00:00Z"),
            ("to", "2027-05-04T00:00:00Z"),
            ("duration_minutes", "4"),
        ],
    ] {
        let resp = app.get_query(&path, &query).await;
        talkover_error(&resp, 400, "VALIDATION_ERROR");
    }
    // Past 1,000 slots: has_more and the from that continues.
    let resp = app
        .get_query(
            &path,
            &[
                ("from", "2027-05-01T00:00:00Z"),
                ("to", "2027-05-31T00:00:00Z"),
                ("duration_minutes", "5"),
            ],
        )
        .await;
    let data = talkover_ok(&resp, 200);
    assert_eq!(data.as_array().map(Vec::len), Some(1000));
    assert_eq!(resp.body["has_more"], true);
    assert_eq!(resp.body["next_from"], "2027-05-04T11:20:00Z");
}

async fn a_recurring_rule_added_here_changes_native_availability_and_working_hours(app: TestApp) {
    let calendar = calendar(&app, json!({})).await;
    assert!(rules(&app, &calendar).await.is_empty());
    assert!(native_slots(&app, &calendar, TUESDAY, 60).await.len() >= 23);

    let rule = add_rule(
        &app,
        &calendar,
        json!({"type": "recurring", "days_of_week": [1, 3], "start_time": "09:00", "end_time": "12:00"}),
    )
    .await;
    assert_eq!(rule["type"], "recurring");
    assert_eq!(rule["days_of_week"], json!([1, 3]));
    assert_eq!(rule["start_time"], "09:00");
    assert_eq!(rule["end_time"], "12:00");
    assert_eq!(rule["timezone"], "UTC");
    assert!(rule["id"].is_string());
    assert_eq!(rules(&app, &calendar).await, vec![rule.clone()]);

    let native = native_calendar(&app, &calendar).await;
    assert_eq!(
        native["workingHours"],
        json!([
            {"day": "monday", "start": "09:00", "end": "12:00"},
            {"day": "wednesday", "start": "09:00", "end": "12:00"},
        ])
    );
    assert_eq!(
        starts(&native_slots(&app, &calendar, MONDAY, 60).await),
        [
            "2027-05-03T09:00:00Z",
            "2027-05-03T10:00:00Z",
            "2027-05-03T11:00:00Z"
        ]
    );
    assert!(native_slots(&app, &calendar, TUESDAY, 60).await.is_empty());

    // The same hours on another day join the rule: one rule, its id that of the new content.
    let joined = add_rule(
        &app,
        &calendar,
        json!({"type": "recurring", "days_of_week": [2], "start_time": "09:00", "end_time": "12:00", "timezone": "UTC"}),
    )
    .await;
    assert_eq!(joined["days_of_week"], json!([1, 2, 3]));
    assert_ne!(joined["id"], rule["id"]);
    assert_eq!(rules(&app, &calendar).await, vec![joined]);
    assert_eq!(native_slots(&app, &calendar, TUESDAY, 60).await.len(), 3);
}

async fn native_working_hours_appear_here_as_rules_and_a_rule_deleted_here_disappears_natively(
    app: TestApp,
) {
    let mut hours = weekdays("09:00", "17:00");
    if let Some(list) = hours.as_array_mut() {
        list.push(json!({"day": "saturday", "start": "10:00", "end": "12:00"}));
    }
    let calendar = calendar(
        &app,
        json!({"timezone": "Europe/Rome", "workingHours": hours}),
    )
    .await;
    let listed = rules(&app, &calendar).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["days_of_week"], json!([1, 2, 3, 4, 5]));
    assert_eq!(listed[0]["start_time"], "09:00");
    assert_eq!(listed[0]["end_time"], "17:00");
    assert_eq!(listed[0]["timezone"], "Europe/Rome");
    assert_eq!(listed[1]["days_of_week"], json!([6]));
    assert_eq!(listed, rules(&app, &calendar).await, "ids are stable");
    assert_eq!(native_slots(&app, &calendar, SATURDAY, 60).await.len(), 2);

    let saturday = listed[1]["id"].as_str().unwrap_or_default().to_owned();
    let resp = delete_rule(&app, &calendar, &saturday).await;
    talkover_ok(&resp, 200);
    assert!(resp.body["message"].is_string(), "{}", resp.describe());
    let native = native_calendar(&app, &calendar).await;
    assert_eq!(native["workingHours"], weekdays("09:00", "17:00"));
    assert!(native_slots(&app, &calendar, SATURDAY, 60).await.is_empty());
    assert_eq!(rules(&app, &calendar).await, vec![listed[0].clone()]);
    talkover_error(
        &delete_rule(&app, &calendar, &saturday).await,
        404,
        "NOT_FOUND",
    );

    // Hours changed natively show here at once.
    let resp = app
        .patch(
            &format!("/v1/calendar/calendars/{calendar}"),
            &json!({"workingHours": [{"day": "sunday", "start": "08:00", "end": "24:00"}]}),
        )
        .await;
    assert_ok(&resp, 200);
    let listed = rules(&app, &calendar).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["days_of_week"], json!([7]));
    assert_eq!(listed[0]["end_time"], "24:00");
}

async fn exception_rules_close_a_day_and_open_other_hours_both_ways(app: TestApp) {
    let calendar = calendar(&app, json!({"workingHours": weekdays("09:00", "12:00")})).await;

    let closed = add_rule(
        &app,
        &calendar,
        json!({"type": "exception", "date": MONDAY, "available": false}),
    )
    .await;
    assert_eq!(closed["type"], "exception");
    assert_eq!(closed["date"], MONDAY);
    assert_eq!(closed["available"], false);
    assert!(closed.get("start_time").is_none(), "{closed}");
    let open = add_rule(
        &app,
        &calendar,
        json!({"type": "exception", "date": SATURDAY, "available": true, "start_time": "10:00", "end_time": "12:00"}),
    )
    .await;
    assert_eq!(open["available"], true);
    assert_eq!(open["start_time"], "10:00");

    let native = native_calendar(&app, &calendar).await;
    assert_eq!(
        native["dateOverrides"],
        json!([
            {"date": MONDAY, "ranges": []},
            {"date": SATURDAY, "ranges": [{"start": "10:00", "end": "12:00"}]},
        ])
    );
    assert!(native_slots(&app, &calendar, MONDAY, 60).await.is_empty());
    assert_eq!(
        starts(&native_slots(&app, &calendar, SATURDAY, 60).await),
        ["2027-05-08T10:00:00Z", "2027-05-08T11:00:00Z"]
    );
    assert_eq!(native_slots(&app, &calendar, TUESDAY, 60).await.len(), 3);

    // Deleting the closing rule here reopens the day natively.
    let resp = delete_rule(&app, &calendar, closed["id"].as_str().unwrap_or_default()).await;
    talkover_ok(&resp, 200);
    assert_eq!(native_slots(&app, &calendar, MONDAY, 60).await.len(), 3);

    // An override set natively is an exception rule here.
    let resp = app
        .patch(
            &format!("/v1/calendar/calendars/{calendar}"),
            &json!({"dateOverrides": [{"date": TUESDAY, "ranges": []},
                                      {"date": SATURDAY, "ranges": [{"start": "10:00", "end": "12:00"}]}]}),
        )
        .await;
    assert_ok(&resp, 200);
    let listed = rules(&app, &calendar).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[1]["date"], TUESDAY);
    assert_eq!(listed[1]["available"], false);
    assert_eq!(listed[2], open, "the same content keeps its id");
    assert!(
        talkover_slots(&app, &calendar, TUESDAY, 60)
            .await
            .is_empty()
    );
}

async fn a_recurring_rule_in_another_zone_is_refused_on_timezone(app: TestApp) {
    let calendar = calendar(&app, json!({"timezone": "Europe/Rome"})).await;
    let body = json!({"type": "recurring", "days_of_week": [1], "start_time": "09:00",
                      "end_time": "17:00", "timezone": "America/New_York"});
    let resp = app.post(&rules_path(&calendar), &body).await;
    assert_eq!(talkover_fields(&resp), ["timezone"]);
    let message = resp.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Europe/Rome"), "{message}");
    assert!(rules(&app, &calendar).await.is_empty());
    assert!(native_calendar(&app, &calendar).await["workingHours"].is_null());

    let same = with(body, json!({"timezone": "Europe/Rome"}));
    let rule = add_rule(&app, &calendar, same).await;
    assert_eq!(rule["timezone"], "Europe/Rome");
}

async fn an_overlapping_rule_is_refused_naming_the_field_and_changes_nothing(app: TestApp) {
    let calendar = calendar(&app, json!({"workingHours": weekdays("09:00", "17:00")})).await;
    add_rule(
        &app,
        &calendar,
        json!({"type": "exception", "date": SATURDAY, "start_time": "10:00", "end_time": "12:00"}),
    )
    .await;
    let before = native_calendar(&app, &calendar).await;
    for (body, field) in [
        (
            json!({"type": "recurring", "days_of_week": [6, 5], "start_time": "16:00", "end_time": "18:00"}),
            "start_time",
        ),
        (
            json!({"type": "exception", "date": SATURDAY, "start_time": "11:00", "end_time": "13:00"}),
            "start_time",
        ),
        (
            json!({"type": "exception", "date": SATURDAY, "available": false}),
            "date",
        ),
        (
            json!({"type": "recurring", "days_of_week": [9], "start_time": "18:00", "end_time": "17:00"}),
            "days_of_week[0]",
        ),
    ] {
        let resp = app.post(&rules_path(&calendar), &body).await;
        assert_eq!(talkover_fields(&resp)[0], field, "{body}");
    }
    assert_eq!(native_calendar(&app, &calendar).await, before);
    // Touching hours are fine.
    add_rule(
        &app,
        &calendar,
        json!({"type": "recurring", "days_of_week": [5], "start_time": "17:00", "end_time": "19:00"}),
    )
    .await;
}

async fn an_idempotency_key_retry_adds_the_rule_once(app: TestApp) {
    let calendar = calendar(&app, json!({})).await;
    let body = json!({"type": "recurring", "days_of_week": [1], "start_time": "09:00", "end_time": "12:00"});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let resp = send(
            app.req(Method::POST, &rules_path(&calendar))
                .header("Idempotency-Key", "rule-1")
                .json(&body),
        )
        .await;
        answers.push(talkover_ok(&resp, 201));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(rules(&app, &calendar).await.len(), 1);
    assert_eq!(
        native_calendar(&app, &calendar).await["workingHours"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn another_organizations_calendar_or_rule_is_not_found(app: TestApp) {
    let calendar = calendar(&app, json!({"workingHours": weekdays("09:00", "17:00")})).await;
    let rule = rules(&app, &calendar).await[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let before = native_calendar(&app, &calendar).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let b_calendar = id_of(&app.create_calendar(&key_b, None).await);
    let body = json!({"type": "exception", "date": MONDAY, "available": false});

    let resp = send(
        app.req_as(&key_b, Method::GET, &availability_path(&calendar))
            .query(&[
                ("from", "2027-05-03T00:00:00Z"),
                ("to", "2027-05-04T00:00:00Z"),
            ]),
    )
    .await;
    talkover_error(&resp, 404, "NOT_FOUND");
    talkover_error(
        &app.get_as(&key_b, &rules_path(&calendar)).await,
        404,
        "NOT_FOUND",
    );
    talkover_error(
        &app.post_as(&key_b, &rules_path(&calendar), &body).await,
        404,
        "NOT_FOUND",
    );
    for path in [
        format!("{}/{rule}", rules_path(&calendar)),
        format!("{}/{rule}", rules_path(&b_calendar)),
    ] {
        let resp = send(app.req_as(&key_b, Method::DELETE, &path)).await;
        talkover_error(&resp, 404, "NOT_FOUND");
    }
    assert_eq!(native_calendar(&app, &calendar).await, before);
}
