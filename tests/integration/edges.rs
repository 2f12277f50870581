//! Edge inputs: times at the ends of years 0001-9999, NUL in text, un-cancelling under every
//! booking rule, overlapping working hours, the availability cap, cursors before 1970, and
//! error messages in the API's own words.

use serde_json::{Value, json};

use crate::support::{
    Case, Resp, TestApp, assert_error, assert_ok, assert_validation, event_body, id_of,
    messages_about, with,
};

pub fn cases() -> Vec<Case> {
    cases![
        a_booking_whose_buffer_after_pushes_its_block_past_9999_is_a_validation_error,
        a_rescheduled_booking_whose_block_leaves_9999_is_a_validation_error,
        times_outside_years_0001_to_9999_are_validation_errors_naming_the_field,
        availability_at_the_end_of_9999_never_prints_year_10000,
        nul_in_any_text_field_of_a_body_is_a_validation_error_naming_it,
        nul_in_a_text_query_parameter_is_a_validation_error_naming_it,
        a_leap_second_is_refused_with_a_message_that_says_leap_seconds_are_not_supported,
        error_messages_are_in_the_apis_own_words_never_the_frameworks,
        overlapping_or_duplicate_working_hours_are_a_validation_error_naming_the_range,
        override_dates_must_be_exactly_yyyy_mm_dd,
        every_next_cursor_round_trips_including_events_before_1970,
        a_wide_availability_window_is_capped_at_1000_slots_and_next_date_from_gets_the_rest,
        leaving_cancelled_is_held_to_every_booking_rule_unless_forced,
        leaving_cancelled_on_an_inactive_event_type_is_refused_like_a_new_booking,
        a_patch_that_keeps_the_times_is_not_rechecked_against_hours_narrowed_since,
    ]
}

/// A UTC calendar open around the clock and an event type on it built from `extra`.
async fn open_calendar(app: &TestApp, event_type: Value) -> (String, String) {
    let calendar = id_of(
        &app.create_calendar(&app.key, Some(json!({"name": "Sala", "timezone": "UTC"})))
            .await,
    );
    let body = with(
        json!({"calendarId": calendar, "name": "Visita", "durationMinutes": 30}),
        event_type,
    );
    let event_type = id_of(&app.create_event_type_with(&app.key, body).await);
    (calendar, event_type)
}

/// No response may ever print a five-digit year.
#[track_caller]
fn assert_no_year_10000(resp: &Resp) {
    assert!(
        !resp.text.contains("+10000") && !resp.text.contains("10000-"),
        "a response printed a year past 9999: {}",
        resp.describe()
    );
}

async fn a_booking_whose_buffer_after_pushes_its_block_past_9999_is_a_validation_error(
    app: TestApp,
) {
    let (calendar, event_type) = open_calendar(&app, json!({"bufferAfterMinutes": 60})).await;
    // Two overlapping bookings whose blocks run into year 10000: neither may be stored (on
    // SQLite the text `+10000-...` sorted below `9999-...`, so both used to be accepted).
    for (start, end) in [
        ("9999-12-31T23:00:00Z", "9999-12-31T23:30:00Z"),
        ("9999-12-31T23:10:00Z", "9999-12-31T23:40:00Z"),
    ] {
        let resp = app
            .post_event(&event_body(&calendar, &event_type, start, end))
            .await;
        assert_no_year_10000(&resp);
        let error = assert_validation(&resp, &["endTime"]);
        assert!(
            messages_about(&error, "endTime").contains("9999"),
            "the message should say the block would end after year 9999: {error}"
        );
    }
    let resp = app.list_events(&[("limit", "100")]).await;
    assert_no_year_10000(&resp);
    assert_eq!(assert_ok(&resp, 200), json!([]), "nothing was stored");
    // A block that ends inside 9999 is stored, and an overlapping one is a 409.
    let first = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "9999-12-31T21:00:00Z",
            "9999-12-31T21:30:00Z",
        )
        .await;
    assert_eq!(first["endTime"], json!("9999-12-31T21:30:00Z"));
    let resp = app
        .post_event(&event_body(
            &calendar,
            &event_type,
            "9999-12-31T22:00:00Z",
            "9999-12-31T22:30:00Z",
        ))
        .await;
    assert_no_year_10000(&resp);
    crate::support::assert_slot_conflict(&resp, &first);
}

async fn a_rescheduled_booking_whose_block_leaves_9999_is_a_validation_error(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({"bufferAfterMinutes": 45})).await;
    let event = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "2030-01-10T10:00:00Z",
            "2030-01-10T10:30:00Z",
        )
        .await;
    let path = format!("/v1/calendar/events/{}", id_of(&event));
    let resp = app
        .patch(&path, &json!({"startTime": "9999-12-31T23:00:00Z"}))
        .await;
    assert_no_year_10000(&resp);
    assert_validation(&resp, &["endTime"]);
    let resp = app.get(&path).await;
    assert_eq!(assert_ok(&resp, 200)["startTime"], event["startTime"]);
    // Within range it moves.
    let resp = app
        .patch(&path, &json!({"startTime": "9999-12-31T22:00:00Z"}))
        .await;
    assert_eq!(
        assert_ok(&resp, 200)["endTime"],
        json!("9999-12-31T22:30:00Z")
    );
}

async fn times_outside_years_0001_to_9999_are_validation_errors_naming_the_field(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    let late = "9999-12-31T23:30:00-01:00";
    let early = "0001-01-01T00:30:00+01:00";
    let body = |start: &str, end: &str| event_body(&calendar, &event_type, start, end);
    for (resp, field) in [
        (
            app.post_event(&body("9999-12-31T23:00:00Z", late)).await,
            "endTime",
        ),
        (
            app.post_event(&with(
                body(early, "0001-01-01T01:00:00Z"),
                json!({"force": true}),
            ))
            .await,
            "startTime",
        ),
        (
            app.post_event(&with(
                body("9999-12-31T20:00:00", "9999-12-31T20:30:00"),
                json!({"timezone": "America/New_York"}),
            ))
            .await,
            "startTime",
        ),
    ] {
        assert_no_year_10000(&resp);
        let error = assert_validation(&resp, &[field]);
        assert!(
            messages_about(&error, field).contains("0001 to 9999"),
            "{field}: {error}"
        );
    }
    let event = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "2030-01-10T10:00:00Z",
            "2030-01-10T10:30:00Z",
        )
        .await;
    let path = format!("/v1/calendar/events/{}", id_of(&event));
    let resp = app.patch(&path, &json!({"endTime": late})).await;
    assert_validation(&resp, &["endTime"]);
    let resp = app
        .patch(&path, &json!({"startTime": early, "force": true}))
        .await;
    assert_validation(&resp, &["startTime"]);
    for field in ["dateFrom", "dateTo"] {
        let resp = app.list_events(&[(field, late)]).await;
        assert_validation(&resp, &[field]);
    }
    let window = |from: &'static str, to: &'static str| {
        vec![
            ("calendarId", calendar.clone()),
            ("eventTypeId", event_type.clone()),
            ("dateFrom", from.to_string()),
            ("dateTo", to.to_string()),
        ]
    };
    for (query, field) in [
        (window("9999-12-31T00:00:00Z", late), "dateTo"),
        (window(early, "0001-01-02T00:00:00Z"), "dateFrom"),
    ] {
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = app.get_query("/v1/calendar/availability", &query).await;
        assert_no_year_10000(&resp);
        assert_validation(&resp, &[field]);
    }
}

async fn availability_at_the_end_of_9999_never_prints_year_10000(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({"bufferAfterMinutes": 10})).await;
    let window = |zone: &'static str| {
        let (calendar, event_type) = (calendar.clone(), event_type.clone());
        let app = app.clone();
        async move {
            app.get_query(
                "/v1/calendar/availability",
                &[
                    ("calendarId", &calendar),
                    ("eventTypeId", &event_type),
                    ("dateFrom", "9999-12-31T20:00:00Z"),
                    ("dateTo", "9999-12-31T23:59:59Z"),
                    ("timezone", zone),
                ],
            )
            .await
        }
    };
    // East of Greenwich these starts are already year 10000 locally: never printed.
    let resp = window("Pacific/Kiritimati").await;
    assert_no_year_10000(&resp);
    assert_ok(&resp, 200);
    let resp = window("America/New_York").await;
    assert_no_year_10000(&resp);
    let data = assert_ok(&resp, 200);
    let starts: Vec<&str> = data["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["startTime"].as_str())
        .collect();
    // 23:30 would end at midnight of year 10000 (its block at 00:10): not offered.
    assert_eq!(
        starts,
        [
            "9999-12-31T20:00:00Z",
            "9999-12-31T20:30:00Z",
            "9999-12-31T21:00:00Z",
            "9999-12-31T21:30:00Z",
            "9999-12-31T22:00:00Z",
            "9999-12-31T22:30:00Z",
            "9999-12-31T23:00:00Z",
        ]
    );
}

/// The JSON string `"a\u0000b"`.
fn nul() -> Value {
    json!("Mario\u{0}Rossi")
}

/// A body with `field` set to a string holding NUL, sent; the answer must name `name`.
#[track_caller]
fn assert_nul_refused(resp: &Resp, name: &str) {
    let error = assert_validation(resp, &[name]);
    assert!(
        messages_about(&error, name).contains("nul"),
        "the message for {name} should say NUL: {error}"
    );
}

async fn nul_in_any_text_field_of_a_body_is_a_validation_error_naming_it(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    let base = event_body(
        &calendar,
        &event_type,
        "2030-01-10T10:00:00Z",
        "2030-01-10T10:30:00Z",
    );
    let event_fields = [
        "startTime",
        "endTime",
        "timezone",
        "customerName",
        "customerPhone",
        "customerEmail",
        "title",
        "location",
        "notes",
    ];
    for field in event_fields {
        let resp = app
            .post_event(&with(base.clone(), json!({ field: nul() })))
            .await;
        assert_nul_refused(&resp, field);
    }
    let event = app.create_event_with(&app.key, base.clone()).await;
    let path = format!("/v1/calendar/events/{}", id_of(&event));
    for field in event_fields {
        let resp = app.patch(&path, &json!({ field: nul() })).await;
        assert_nul_refused(&resp, field);
    }
    let resp = app
        .post(&format!("{path}/cancel"), &json!({"reason": nul()}))
        .await;
    assert_nul_refused(&resp, "reason");
    // Nothing of it was stored.
    let stored = assert_ok(&app.get(&path).await, 200);
    assert_eq!(stored["status"], json!("confirmed"));
    assert!(!stored.to_string().contains("\\u0000"), "{stored}");

    let calendar_body = json!({
        "name": "Sala",
        "timezone": "UTC",
        "description": "d",
        "workingHours": [{"day": "monday", "start": "09:00", "end": "17:00"}],
        "dateOverrides": [{"date": "2030-01-01", "ranges": [{"start": "10:00", "end": "12:00"}]}],
    });
    let calendar_path = format!("/v1/calendar/calendars/{calendar}");
    for (field, patch) in [
        ("name", json!({"name": nul()})),
        ("timezone", json!({"timezone": nul()})),
        ("description", json!({"description": nul()})),
        (
            "workingHours[0].start",
            json!({"workingHours": [{"day": "monday", "start": nul(), "end": "17:00"}]}),
        ),
        (
            "dateOverrides[0].date",
            json!({"dateOverrides": [{"date": nul(), "ranges": []}]}),
        ),
        (
            "dateOverrides[0].ranges[0].end",
            json!({"dateOverrides": [{"date": "2030-01-01", "ranges": [{"start": "10:00", "end": nul()}]}]}),
        ),
    ] {
        let resp = app
            .post(
                "/v1/calendar/calendars",
                &with(calendar_body.clone(), patch.clone()),
            )
            .await;
        assert_nul_refused(&resp, field);
        let resp = app.patch(&calendar_path, &patch).await;
        assert_nul_refused(&resp, field);
    }
    let type_path = format!("/v1/calendar/event-types/{event_type}");
    for field in ["name", "location"] {
        let body = json!({"name": "Visita", "durationMinutes": 30, field: nul()});
        let resp = app.post("/v1/calendar/event-types", &body).await;
        assert_nul_refused(&resp, field);
        let resp = app.patch(&type_path, &json!({ field: nul() })).await;
        assert_nul_refused(&resp, field);
    }
}

async fn nul_in_a_text_query_parameter_is_a_validation_error_naming_it(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    let bad = "2030-01-10T10:00:00\u{0}Z";
    for (field, value) in [
        ("customerPhone", "+39061234\u{0}5678"),
        ("customerEmail", "mario\u{0}@example.com"),
        ("cursor", "c1\u{0}.0196f6d28c1e7a3b9f00000000000e01"),
        ("dateFrom", bad),
        ("dateTo", bad),
    ] {
        let resp = app.list_events(&[(field, value)]).await;
        assert_validation(&resp, &[field]);
    }
    for (field, value) in [
        ("dateFrom", bad),
        ("dateTo", bad),
        ("timezone", "Europe/Rome\u{0}"),
    ] {
        let mut query = vec![
            ("calendarId", calendar.as_str()),
            ("eventTypeId", event_type.as_str()),
            ("dateFrom", "2030-01-10T00:00:00Z"),
            ("dateTo", "2030-01-11T00:00:00Z"),
        ];
        query.retain(|(k, _)| *k != field);
        query.push((field, value));
        let resp = app.get_query("/v1/calendar/availability", &query).await;
        assert_validation(&resp, &[field]);
    }
}

async fn a_leap_second_is_refused_with_a_message_that_says_leap_seconds_are_not_supported(
    app: TestApp,
) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    for (start, timezone) in [
        ("2030-06-30T23:59:60Z", None),
        ("2030-06-30T23:59:60+00:00", None),
        ("2030-06-30T23:59:60", Some("UTC")),
    ] {
        let mut body = event_body(&calendar, &event_type, start, "2030-07-01T00:30:00Z");
        if let Some(zone) = timezone {
            body = with(body, json!({ "timezone": zone }));
        }
        let resp = app.post_event(&body).await;
        let error = assert_validation(&resp, &["startTime"]);
        assert!(
            messages_about(&error, "startTime").contains("leap seconds are not supported"),
            "{start}: {error}"
        );
    }
    let resp = app
        .list_events(&[("dateFrom", "2030-06-30T23:59:60Z")])
        .await;
    let error = assert_validation(&resp, &["dateFrom"]);
    assert!(
        messages_about(&error, "dateFrom").contains("leap second"),
        "{error}"
    );
}

/// No message or field message of an error carries a framework's wording.
#[track_caller]
fn assert_own_words(resp: &Resp) {
    let error = &resp.body["error"];
    let mut texts = vec![error["message"].as_str().unwrap_or_default().to_string()];
    for entry in error["details"]["fields"].as_array().into_iter().flatten() {
        texts.push(entry["message"].as_str().unwrap_or_default().to_string());
    }
    for text in texts {
        for framework in [
            "Type \"",
            "expects an input value",
            "verification failed",
            "maxLength(",
            "minLength(",
            "Expected input type",
            "failed to parse",
            "occurred while parsing",
        ] {
            assert!(
                !text.contains(framework),
                "{framework:?} is a framework's wording: {}",
                resp.describe()
            );
        }
    }
}

async fn error_messages_are_in_the_apis_own_words_never_the_frameworks(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    let long = "c".repeat(101);
    let availability = "/v1/calendar/availability";
    let cases: Vec<(Resp, &str, &str)> = vec![
        (
            app.get_query(availability, &[("calendarId", &calendar)])
                .await,
            "eventTypeId",
            "is required",
        ),
        (
            app.list_events(&[("cursor", &long)]).await,
            "cursor",
            "must be at most 100 characters",
        ),
        (
            app.list_events(&[("customerEmail", &"e".repeat(300))])
                .await,
            "customerEmail",
            "must be at most 254 characters",
        ),
        (
            app.get_query(
                availability,
                &[
                    ("calendarId", &calendar),
                    ("eventTypeId", &event_type),
                    ("dateFrom", "2030-01-10T00:00:00Z"),
                    ("dateTo", "2030-01-11T00:00:00Z"),
                    ("timezone", &"x".repeat(65)),
                ],
            )
            .await,
            "timezone",
            "must be at most 64 characters",
        ),
        (
            app.list_events(&[("limit", "0")]).await,
            "limit",
            "must be at least 1",
        ),
        (
            app.list_events(&[("calendarId", "nope")]).await,
            "calendarId",
            "must be a UUID",
        ),
        (
            app.post_event(&json!({"calendarId": calendar, "eventTypeId": event_type}))
                .await,
            "startTime",
            "is required",
        ),
        (
            app.post_event(&with(
                event_body(
                    &calendar,
                    &event_type,
                    "2030-01-10T10:00:00Z",
                    "2030-01-10T10:30:00Z",
                ),
                json!({"notes": "n".repeat(5001)}),
            ))
            .await,
            "notes",
            "must be at most 5000 characters",
        ),
        (
            app.post_event(&with(
                event_body(
                    &calendar,
                    &event_type,
                    "2030-01-10T10:00:00Z",
                    "2030-01-10T10:30:00Z",
                ),
                json!({"title": 42}),
            ))
            .await,
            "title",
            "must be a string",
        ),
        (
            app.post(
                "/v1/calendar/calendars",
                &json!({"name": "Sala", "workingHours": [{"day": "monday", "start": "09:00"}]}),
            )
            .await,
            "workingHours[0].end",
            "is required",
        ),
    ];
    for (resp, field, words) in cases {
        assert_own_words(&resp);
        let error = assert_error(&resp, 400, "validation_error");
        assert!(
            messages_about(&error, field).contains(&words.to_lowercase()),
            "{field} should say {words:?}: {}",
            resp.describe()
        );
    }
}

const CALENDARS: &str = "/v1/calendar/calendars";

async fn overlapping_or_duplicate_working_hours_are_a_validation_error_naming_the_range(
    app: TestApp,
) {
    let range = |day: &str, start: &str, end: &str| json!({"day": day, "start": start, "end": end});
    let calendar = |extra: Value| with(json!({"name": "Sala", "timezone": "Europe/Rome"}), extra);
    let cases = [
        (
            json!({"workingHours": [range("monday", "09:00", "13:00"), range("monday", "12:00", "17:00")]}),
            "workingHours[1]",
        ),
        (
            json!({"workingHours": [
                range("monday", "09:00", "17:00"),
                range("tuesday", "09:00", "17:00"),
                range("monday", "09:00", "17:00"),
            ]}),
            "workingHours[2]",
        ),
        (
            json!({"dateOverrides": [{"date": "2030-12-24", "ranges": [
                {"start": "09:00", "end": "12:00"},
                {"start": "11:30", "end": "12:30"},
            ]}]}),
            "dateOverrides[0].ranges[1]",
        ),
    ];
    let existing = id_of(&app.create_calendar(&app.key, None).await);
    let path = format!("{CALENDARS}/{existing}");
    for (extra, field) in cases {
        let resp = app.post(CALENDARS, &calendar(extra.clone())).await;
        let error = assert_validation(&resp, &[field]);
        assert!(messages_about(&error, field).contains("overlap"), "{error}");
        let resp = app.patch(&path, &extra).await;
        assert_validation(&resp, &[field]);
    }
    // Ranges that only touch are one working stretch split in two, and are accepted.
    let touching = json!({"workingHours": [range("monday", "09:00", "12:00"), range("monday", "12:00", "17:00")]});
    let resp = app.post(CALENDARS, &calendar(touching)).await;
    assert_ok(&resp, 201);
}

async fn override_dates_must_be_exactly_yyyy_mm_dd(app: TestApp) {
    for date in [
        "2030-1-5",
        "2030-01-5",
        "2030-01-05T00:00",
        "2030-01-05 ",
        "2030-01-05 trailing",
        "+2030-01-05",
    ] {
        let resp = app
            .post(
                CALENDARS,
                &json!({"name": "Sala", "dateOverrides": [{"date": date, "ranges": []}]}),
            )
            .await;
        let error = assert_validation(&resp, &["dateOverrides[0].date"]);
        assert!(
            messages_about(&error, "dateOverrides[0].date").contains("yyyy-mm-dd"),
            "{date}: {error}"
        );
    }
    let data = assert_ok(
        &app.post(
            CALENDARS,
            &json!({"name": "Sala", "dateOverrides": [{"date": "2030-01-05", "ranges": []}]}),
        )
        .await,
        201,
    );
    assert_eq!(data["dateOverrides"][0]["date"], json!("2030-01-05"));
}

async fn every_next_cursor_round_trips_including_events_before_1970(app: TestApp) {
    let (calendar, event_type) = open_calendar(&app, json!({})).await;
    let mut expected = Vec::new();
    for start in [
        "1950-01-01T09:00:00Z",
        "1969-07-20T20:17:00Z",
        "1969-12-31T23:30:00Z",
        "1970-01-01T00:00:00Z",
        "2030-01-10T10:00:00Z",
    ] {
        let end = crate::support::plus_minutes(start, 30);
        let body = with(
            event_body(&calendar, &event_type, start, &end),
            json!({"force": true}),
        );
        expected.push(id_of(&app.create_event_with(&app.key, body).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("limit", "1".to_string())];
        if let Some(c) = cursor.take() {
            query.push(("cursor", c));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = app.list_events(&query).await;
        let data = assert_ok(&resp, 200);
        seen.extend(data.as_array().into_iter().flatten().map(id_of));
        match resp.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "a walk with limit 1 must meet every event once, in order"
    );
}

async fn a_wide_availability_window_is_capped_at_1000_slots_and_next_date_from_gets_the_rest(
    app: TestApp,
) {
    // Around the clock, 5-minute slots, 5 days: 1,440 slots.
    let (calendar, event_type) = open_calendar(&app, json!({"durationMinutes": 5})).await;
    let date_to = "2030-01-15T00:00:00Z";
    let mut from = "2030-01-10T00:00:00Z".to_string();
    let mut starts: Vec<String> = Vec::new();
    let mut answers = 0;
    loop {
        answers += 1;
        assert!(answers <= 3, "the continuation never ended");
        let resp = app
            .get_query(
                "/v1/calendar/availability",
                &[
                    ("calendarId", &calendar),
                    ("eventTypeId", &event_type),
                    ("dateFrom", &from),
                    ("dateTo", date_to),
                ],
            )
            .await;
        let data = assert_ok(&resp, 200);
        let page: Vec<String> = data["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["startTime"].as_str().map(str::to_string))
            .collect();
        assert!(page.len() <= 1000, "{} slots in one answer", page.len());
        starts.extend(page);
        match resp.body["nextDateFrom"].as_str() {
            Some(next) => {
                assert_eq!(
                    answers,
                    1,
                    "only the first answer is cut: {}",
                    resp.describe()
                );
                from = next.to_string();
            }
            None => {
                assert!(
                    resp.body.get("nextDateFrom").is_some(),
                    "nextDateFrom is null, not missing"
                );
                break;
            }
        }
    }
    assert_eq!(answers, 2);
    let expected: Vec<String> = (0..1440)
        .map(|i| crate::support::plus_minutes("2030-01-10T00:00:00Z", i * 5))
        .collect();
    assert_eq!(starts.len(), 1440, "no slot lost or repeated");
    assert_eq!(starts, expected);
}

/// A UTC calendar open all day every day, a 30-minute event type on it, and a booking three
/// days from now at 14:00: (calendar path, event type path, event path).
async fn booked_in_open_hours(app: &TestApp) -> (String, String, String) {
    let all_day: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|day| json!({"day": day, "start": "00:00", "end": "24:00"}))
    .collect();
    let calendar = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "Sala", "timezone": "UTC", "workingHours": all_day})),
        )
        .await,
    );
    let event_type = id_of(
        &app.create_event_type_with(
            &app.key,
            json!({"calendarId": calendar, "name": "Visita", "durationMinutes": 30}),
        )
        .await,
    );
    let start = (chrono::Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%dT14:00:00Z")
        .to_string();
    let end = crate::support::plus_minutes(&start, 30);
    let event = app
        .create_event(&app.key, &calendar, &event_type, &start, &end)
        .await;
    (
        format!("{CALENDARS}/{calendar}"),
        format!("/v1/calendar/event-types/{event_type}"),
        format!("/v1/calendar/events/{}", id_of(&event)),
    )
}

async fn leaving_cancelled_is_held_to_every_booking_rule_unless_forced(app: TestApp) {
    for (reason, status) in [
        ("outside_working_hours", "confirmed"),
        ("closed_override", "tentative"),
        ("before_minimum_notice", "confirmed"),
        ("beyond_max_advance", "tentative"),
    ] {
        let (calendar, event_type, event) = booked_in_open_hours(&app).await;
        let booked = assert_ok(&app.get(&event).await, 200);
        let date = &booked["startTime"].as_str().unwrap_or_default()[..10];
        assert_ok(&app.post(&format!("{event}/cancel"), &json!({})).await, 200);
        let (path, change) = match reason {
            "outside_working_hours" => (
                &calendar,
                json!({"workingHours": [{"day": "monday", "start": "09:00", "end": "12:00"}]}),
            ),
            "closed_override" => (
                &calendar,
                json!({"dateOverrides": [{"date": date, "ranges": []}]}),
            ),
            "before_minimum_notice" => (&event_type, json!({"minimumNoticeMinutes": 7 * 24 * 60})),
            _ => (&event_type, json!({"maxAdvanceDays": 1})),
        };
        assert_ok(&app.patch(path, &change).await, 200);
        let resp = app.patch(&event, &json!({"status": status})).await;
        let error = assert_error(&resp, 409, "slot_unavailable");
        assert_eq!(
            error["details"]["reason"],
            json!(reason),
            "{}",
            resp.describe()
        );
        let still = assert_ok(&app.get(&event).await, 200);
        assert_eq!(
            still["status"],
            json!("cancelled"),
            "{reason}: refused means unchanged"
        );
        let resp = app
            .patch(&event, &json!({"status": status, "force": true}))
            .await;
        let data = assert_ok(&resp, 200);
        assert_eq!(
            data["status"],
            json!(status),
            "{reason}: force lifts the rule"
        );
        assert_eq!(data["startTime"], booked["startTime"]);
    }
}

async fn leaving_cancelled_on_an_inactive_event_type_is_refused_like_a_new_booking(app: TestApp) {
    let (_, event_type, event) = booked_in_open_hours(&app).await;
    let booked = assert_ok(&app.get(&event).await, 200);
    assert_ok(&app.post(&format!("{event}/cancel"), &json!({})).await, 200);
    assert_ok(
        &app.patch(&event_type, &json!({"active": false})).await,
        200,
    );
    // A new booking of an inactive event type is a validation_error, force or not; so is
    // taking the time again.
    let new = with(
        event_body(
            booked["calendarId"].as_str().unwrap_or_default(),
            booked["eventTypeId"].as_str().unwrap_or_default(),
            "2030-01-10T10:00:00Z",
            "2030-01-10T10:30:00Z",
        ),
        json!({"force": true}),
    );
    assert_validation(&app.post_event(&new).await, &["eventTypeId"]);
    for body in [
        json!({"status": "confirmed"}),
        json!({"status": "tentative", "force": true}),
    ] {
        let resp = app.patch(&event, &body).await;
        let error = assert_validation(&resp, &["status"]);
        assert!(
            messages_about(&error, "status").contains("not active"),
            "{error}"
        );
    }
    assert_eq!(
        assert_ok(&app.get(&event).await, 200)["status"],
        json!("cancelled")
    );
    // Other edits of the cancelled event still work.
    let resp = app.patch(&event, &json!({"notes": "richiamare"})).await;
    assert_eq!(assert_ok(&resp, 200)["notes"], json!("richiamare"));
}

async fn a_patch_that_keeps_the_times_is_not_rechecked_against_hours_narrowed_since(app: TestApp) {
    let (calendar, _, event) = booked_in_open_hours(&app).await;
    let booked = assert_ok(&app.get(&event).await, 200);
    let narrowed = json!({"workingHours": [{"day": "monday", "start": "09:00", "end": "12:00"}]});
    assert_ok(&app.patch(&calendar, &narrowed).await, 200);
    let resp = app
        .patch(&event, &json!({"notes": "portare referti"}))
        .await;
    assert_eq!(assert_ok(&resp, 200)["notes"], json!("portare referti"));
    // A client echoing the whole event back, times unchanged.
    let echo = json!({
        "startTime": booked["startTime"],
        "endTime": booked["endTime"],
        "title": "Controllo",
        "status": "confirmed",
    });
    let data = assert_ok(&app.patch(&event, &echo).await, 200);
    assert_eq!(data["title"], json!("Controllo"));
    assert_eq!(data["startTime"], booked["startTime"]);
    // A real move is checked against today's hours.
    let moved = json!({"startTime": crate::support::plus_minutes(booked["startTime"].as_str().unwrap_or_default(), 30)});
    let resp = app.patch(&event, &moved).await;
    let error = assert_error(&resp, 409, "slot_unavailable");
    assert_eq!(error["details"]["reason"], json!("outside_working_hours"));
}
