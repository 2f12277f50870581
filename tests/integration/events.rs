//! Events: the seed's create and list examples, pagination, every filter, time parsing, field
//! validation, and the no-double-booking rule (including concurrent requests).

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        post_event_with_the_seed_example_is_201_with_every_field,
        get_event_by_id_returns_what_post_returned,
        get_event_with_an_unknown_id_is_404,
        get_event_with_a_malformed_id_is_404,
        list_events_with_the_seed_query_paginates_25_events_into_3_pages,
        list_events_past_the_last_page_is_200_with_empty_data,
        list_events_matching_nothing_has_0_total_pages,
        list_events_defaults_to_page_1_and_limit_20,
        list_events_accepts_limit_1_and_100,
        list_events_is_sorted_by_start_time_then_id,
        list_events_filters_by_calendar_id,
        list_events_filters_by_event_type_id,
        list_events_filters_by_status,
        list_events_date_from_is_inclusive_and_date_to_is_exclusive,
        list_events_date_from_with_an_offset_is_honoured,
        list_events_combines_filters,
        list_events_with_limit_out_of_range_is_400_naming_limit,
        list_events_with_an_invalid_page_is_400_naming_page,
        list_events_with_a_malformed_id_filter_is_400_naming_it,
        list_events_with_a_date_that_does_not_parse_is_400_naming_it,
        list_events_with_a_date_without_offset_is_400_naming_it,
        list_events_with_an_unknown_status_is_400_naming_status,
        post_event_with_an_offset_is_returned_in_utc,
        post_event_with_local_times_reads_them_in_the_named_timezone,
        post_event_at_a_nonexistent_local_time_is_400_saying_it_does_not_exist,
        post_event_at_an_ambiguous_local_time_is_400_saying_it_is_ambiguous,
        post_event_with_a_local_time_and_no_timezone_is_400_naming_start_time,
        post_event_with_an_unknown_timezone_is_400_naming_timezone,
        post_event_without_timezone_defaults_to_utc,
        post_event_ending_at_or_before_its_start_is_400_naming_end_time,
        post_event_longer_than_7_days_is_400_naming_end_time,
        post_event_lasting_exactly_7_days_is_201,
        post_event_normalises_customer_phone_to_e164,
        post_event_with_an_invalid_customer_phone_is_400_naming_it,
        post_event_with_an_invalid_customer_email_is_400_naming_it,
        post_event_with_status_cancelled_or_unknown_is_400_naming_status,
        post_event_with_status_tentative_is_201_tentative,
        post_event_with_a_number_for_title_is_400_naming_title,
        post_event_missing_its_required_fields_names_them_in_one_400,
        post_event_without_calendar_id_books_the_event_types_own_calendar_or_is_400_naming_it,
        post_event_with_a_malformed_calendar_id_is_400_naming_calendar_id,
        post_event_on_an_unknown_calendar_is_404,
        post_event_with_an_unknown_event_type_is_404,
        post_event_with_an_event_type_for_any_calendar_is_201,
        post_event_overlapping_a_confirmed_event_is_409,
        post_event_overlapping_a_tentative_event_is_409,
        post_events_back_to_back_are_both_201,
        post_event_at_the_same_time_on_another_calendar_is_201,
        post_event_inside_the_buffer_after_an_event_is_409,
        post_event_whose_buffer_before_reaches_an_event_is_409,
        simultaneous_posts_for_one_slot_book_exactly_once,
    ]
}

const EVENTS: &str = "/v1/calendar/events";

/// The seed's create example, moved to a future date.
fn seed_body(calendar_id: &str, event_type_id: &str) -> Value {
    json!({
        "calendarId": calendar_id,
        "eventTypeId": event_type_id,
        "startTime": "2027-04-15T14:00:00Z",
        "endTime": "2027-04-15T14:30:00Z",
        "timezone": "Europe/Rome",
        "customerName": "Laura Bianchi",
        "customerEmail": "laura.bianchi@example.com",
        "title": "Demo Prodotto"
    })
}

/// Books `n` back-to-back 30-minute events from 2027-04-15T08:00:00Z, posting them latest first so
/// that the list's order cannot come from insertion order. Returns them sorted by start.
async fn book_back_to_back(
    app: &TestApp,
    calendar_id: &str,
    event_type_id: &str,
    n: i64,
) -> Vec<Value> {
    let mut events = Vec::new();
    for i in (0..n).rev() {
        let start = plus_minutes("2027-04-15T08:00:00Z", 30 * i);
        let end = plus_minutes(&start, 30);
        events.push(
            app.create_event(&app.key, calendar_id, event_type_id, &start, &end)
                .await,
        );
    }
    events.reverse();
    events
}

// ----- create and read -----

async fn post_event_with_the_seed_example_is_201_with_every_field(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let resp = app
        .post_event(&seed_body(&calendar_id, &event_type_id))
        .await;
    let event = assert_ok(&resp, 201);

    let mut keys: Vec<&str> = resp
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["data", "requestId"],
        "the body has other keys: {}",
        resp.describe()
    );
    assert_has_keys(&event, &EVENT_FIELDS, "the created event");
    assert_uuid_v7(&event["id"], "id");
    assert_eq!(event["calendarId"], json!(calendar_id));
    assert_eq!(event["eventTypeId"], json!(event_type_id));
    assert_eq!(event["startTime"], json!("2027-04-15T14:00:00Z"));
    assert_eq!(event["endTime"], json!("2027-04-15T14:30:00Z"));
    assert_eq!(event["timezone"], json!("Europe/Rome"));
    assert_eq!(event["customerName"], json!("Laura Bianchi"));
    assert_eq!(event["customerPhone"], Value::Null);
    assert_eq!(event["customerEmail"], json!("laura.bianchi@example.com"));
    assert_eq!(event["notes"], Value::Null);
    assert_eq!(event["title"], json!("Demo Prodotto"));
    assert_eq!(event["location"], Value::Null);
    assert_eq!(event["status"], json!("confirmed"));
    assert_eq!(event["bookedVia"], json!("api"));
    assert_recent(&event["createdAt"], "createdAt");
    assert_recent(&event["updatedAt"], "updatedAt");
}

async fn get_event_by_id_returns_what_post_returned(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        seed_body(&calendar_id, &event_type_id),
        json!({"customerPhone": "+393331234567", "notes": "Consulenza iniziale", "location": "Zoom"}),
    );
    let created = app.create_event_with(&app.key, body).await;
    let resp = app.get(&format!("{EVENTS}/{}", id_of(&created))).await;
    let fetched = assert_ok(&resp, 200);
    assert_eq!(
        fetched, created,
        "GET by id should return the event as POST returned it"
    );
    assert_eq!(fetched["notes"], json!("Consulenza iniziale"));
    assert_eq!(fetched["location"], json!("Zoom"));
}

async fn get_event_with_an_unknown_id_is_404(app: TestApp) {
    let resp = app.get(&format!("{EVENTS}/{}", unknown_id())).await;
    assert_error(&resp, 404, "not_found");
}

async fn get_event_with_a_malformed_id_is_404(app: TestApp) {
    let resp = app.get(&format!("{EVENTS}/abc")).await;
    assert_error(&resp, 404, "not_found");
}

// ----- list and pagination -----

async fn list_events_with_the_seed_query_paginates_25_events_into_3_pages(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let booked = book_back_to_back(&app, &calendar_id, &event_type_id, 25).await;

    let mut seen = Vec::new();
    for (page, expected_len) in [("1", 10), ("2", 10), ("3", 5)] {
        let resp = app
            .list_events(&[("status", "confirmed"), ("limit", "10"), ("page", page)])
            .await;
        let (items, pagination) = assert_list(&resp);
        assert_pagination(&pagination, page.parse().unwrap(), 10, 25, 3);
        assert_eq!(items.len(), expected_len, "page {page} length");
        for item in &items {
            assert_has_keys(item, &EVENT_FIELDS, "a listed event");
        }
        seen.extend(items);
    }
    assert_eq!(
        ids(&seen),
        ids(&booked),
        "pages 1-3 should hold all 25 events in start order"
    );
    assert_eq!(
        seen, booked,
        "listed events should equal what POST returned"
    );

    // The seed's exact query: no page parameter means page 1.
    let resp = app
        .list_events(&[("status", "confirmed"), ("limit", "10")])
        .await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 10, 25, 3);
    assert_eq!(ids(&items), ids(&booked[..10]));
}

async fn list_events_past_the_last_page_is_200_with_empty_data(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    book_back_to_back(&app, &calendar_id, &event_type_id, 25).await;
    let resp = app
        .list_events(&[("status", "confirmed"), ("limit", "10"), ("page", "4")])
        .await;
    let (items, pagination) = assert_list(&resp);
    assert!(
        items.is_empty(),
        "page 4 of 3 should be empty: {}",
        resp.describe()
    );
    assert_pagination(&pagination, 4, 10, 25, 3);
}

async fn list_events_matching_nothing_has_0_total_pages(app: TestApp) {
    let resp = app.list_events(&[]).await;
    let (items, pagination) = assert_list(&resp);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 20, 0, 0);

    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    book_back_to_back(&app, &calendar_id, &event_type_id, 2).await;
    let resp = app
        .list_events(&[("status", "tentative"), ("limit", "10")])
        .await;
    let (items, pagination) = assert_list(&resp);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 10, 0, 0);
}

async fn list_events_defaults_to_page_1_and_limit_20(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let booked = book_back_to_back(&app, &calendar_id, &event_type_id, 25).await;
    let resp = app.list_events(&[]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 20, 25, 2);
    assert_eq!(ids(&items), ids(&booked[..20]));
}

async fn list_events_accepts_limit_1_and_100(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let booked = book_back_to_back(&app, &calendar_id, &event_type_id, 3).await;

    let resp = app.list_events(&[("limit", "1"), ("page", "2")]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 2, 1, 3, 3);
    assert_eq!(ids(&items), ids(&booked[1..2]));

    let resp = app.list_events(&[("limit", "100")]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 100, 3, 1);
    assert_eq!(ids(&items), ids(&booked));
}

async fn list_events_is_sorted_by_start_time_then_id(app: TestApp) {
    // Three calendars booked at the same times, so equal start times must fall back to the id.
    let mut all = Vec::new();
    let mut calendars = Vec::new();
    for _ in 0..3 {
        calendars.push(app.calendar_and_event_type().await);
    }
    for start in [
        "2027-04-15T11:00:00Z",
        "2027-04-15T09:00:00Z",
        "2027-04-15T10:00:00Z",
    ] {
        for (calendar_id, event_type_id) in &calendars {
            let end = plus_minutes(start, 30);
            all.push(
                app.create_event(&app.key, calendar_id, event_type_id, start, &end)
                    .await,
            );
        }
    }
    let mut expected: Vec<(String, String)> = all
        .iter()
        .map(|e| (e["startTime"].as_str().unwrap().to_owned(), id_of(e)))
        .collect();
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let resp = app.list_events(&[("limit", "100")]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 100, 9, 1);
    assert_eq!(
        ids(&items),
        expected,
        "events should be ordered by startTime, then id"
    );
}

// ----- filters -----

async fn list_events_filters_by_calendar_id(app: TestApp) {
    let (cal_a, et_a) = app.calendar_and_event_type().await;
    let (cal_b, et_b) = app.calendar_and_event_type().await;
    let a = book_back_to_back(&app, &cal_a, &et_a, 3).await;
    let b = book_back_to_back(&app, &cal_b, &et_b, 2).await;

    let resp = app.list_events(&[("calendarId", &cal_a)]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 20, 3, 1);
    assert_eq!(ids(&items), ids(&a));

    let resp = app.list_events(&[("calendarId", &cal_b)]).await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), ids(&b));

    let unknown = unknown_id();
    let resp = app.list_events(&[("calendarId", &unknown)]).await;
    let (items, pagination) = assert_list(&resp);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 20, 0, 0);
}

async fn list_events_filters_by_event_type_id(app: TestApp) {
    let (calendar_id, short) = app.calendar_and_event_type().await;
    let long = id_of(
        &app.create_event_type(&app.key, Some(&calendar_id), 60)
            .await,
    );
    let e1 = app
        .create_event(
            &app.key,
            &calendar_id,
            &short,
            "2027-04-15T09:00:00Z",
            "2027-04-15T09:30:00Z",
        )
        .await;
    let e2 = app
        .create_event(
            &app.key,
            &calendar_id,
            &long,
            "2027-04-15T10:00:00Z",
            "2027-04-15T11:00:00Z",
        )
        .await;
    let e3 = app
        .create_event(
            &app.key,
            &calendar_id,
            &short,
            "2027-04-15T12:00:00Z",
            "2027-04-15T12:30:00Z",
        )
        .await;

    let resp = app.list_events(&[("eventTypeId", &short)]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 20, 2, 1);
    assert_eq!(ids(&items), vec![id_of(&e1), id_of(&e3)]);

    let resp = app.list_events(&[("eventTypeId", &long)]).await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), vec![id_of(&e2)]);
}

async fn list_events_filters_by_status(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let confirmed = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-04-15T09:00:00Z",
            "2027-04-15T09:30:00Z",
        )
        .await;
    let tentative = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    "2027-04-15T10:00:00Z",
                    "2027-04-15T10:30:00Z",
                ),
                json!({"status": "tentative"}),
            ),
        )
        .await;

    let resp = app.list_events(&[("status", "confirmed")]).await;
    let (items, pagination) = assert_list(&resp);
    assert_pagination(&pagination, 1, 20, 1, 1);
    assert_eq!(ids(&items), vec![id_of(&confirmed)]);

    let resp = app.list_events(&[("status", "tentative")]).await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), vec![id_of(&tentative)]);

    let resp = app.list_events(&[("status", "cancelled")]).await;
    let (items, pagination) = assert_list(&resp);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 20, 0, 0);
}

async fn list_events_date_from_is_inclusive_and_date_to_is_exclusive(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let mut ev = Vec::new();
    for start in [
        "2027-04-15T10:00:00Z",
        "2027-04-15T11:00:00Z",
        "2027-04-15T12:00:00Z",
    ] {
        let end = plus_minutes(start, 30);
        ev.push(id_of(
            &app.create_event(&app.key, &calendar_id, &event_type_id, start, &end)
                .await,
        ));
    }

    let resp = app
        .list_events(&[("dateFrom", "2027-04-15T11:00:00Z")])
        .await;
    let (items, pagination) = assert_list(&resp);
    assert_eq!(
        ids(&items),
        ev[1..].to_vec(),
        "dateFrom keeps events starting at it"
    );
    assert_pagination(&pagination, 1, 20, 2, 1);

    let resp = app.list_events(&[("dateTo", "2027-04-15T12:00:00Z")]).await;
    let (items, _) = assert_list(&resp);
    assert_eq!(
        ids(&items),
        ev[..2].to_vec(),
        "dateTo drops events starting at it"
    );

    // An event that started before dateFrom but is still running is not included: the filter is on startTime.
    let resp = app
        .list_events(&[("dateFrom", "2027-04-15T10:15:00Z")])
        .await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), ev[1..].to_vec());
}

async fn list_events_date_from_with_an_offset_is_honoured(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let mut ev = Vec::new();
    for start in [
        "2027-04-15T10:00:00Z",
        "2027-04-15T11:00:00Z",
        "2027-04-15T12:00:00Z",
    ] {
        let end = plus_minutes(start, 30);
        ev.push(id_of(
            &app.create_event(&app.key, &calendar_id, &event_type_id, start, &end)
                .await,
        ));
    }
    // 13:00+02:00 is 11:00Z; 14:00+02:00 is 12:00Z.
    let resp = app
        .list_events(&[("dateFrom", "2027-04-15T13:00:00+02:00")])
        .await;
    let (items, _) = assert_list(&resp);
    assert_eq!(
        ids(&items),
        ev[1..].to_vec(),
        "dateFrom=13:00+02:00 means 11:00Z"
    );

    let resp = app
        .list_events(&[
            ("dateFrom", "2027-04-15T13:00:00+02:00"),
            ("dateTo", "2027-04-15T14:00:00+02:00"),
        ])
        .await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), ev[1..2].to_vec());
}

async fn list_events_combines_filters(app: TestApp) {
    let (cal_a, et_a) = app.calendar_and_event_type().await;
    let et_a2 = id_of(&app.create_event_type(&app.key, Some(&cal_a), 30).await);
    let (cal_b, et_b) = app.calendar_and_event_type().await;

    let book = |cal: String, et: String, start: &'static str, status: &'static str| {
        let app = app.clone();
        async move {
            let body = with(
                event_body(&cal, &et, start, &plus_minutes(start, 30)),
                json!({"status": status}),
            );
            id_of(&app.create_event_with(&app.key, body).await)
        }
    };
    let _early = book(
        cal_a.clone(),
        et_a.clone(),
        "2027-04-15T08:00:00Z",
        "confirmed",
    )
    .await;
    let wanted = book(
        cal_a.clone(),
        et_a.clone(),
        "2027-04-15T10:00:00Z",
        "confirmed",
    )
    .await;
    let _tentative = book(
        cal_a.clone(),
        et_a.clone(),
        "2027-04-15T11:00:00Z",
        "tentative",
    )
    .await;
    let _other_type = book(
        cal_a.clone(),
        et_a2.clone(),
        "2027-04-15T12:00:00Z",
        "confirmed",
    )
    .await;
    let _other_calendar = book(
        cal_b.clone(),
        et_b.clone(),
        "2027-04-15T10:00:00Z",
        "confirmed",
    )
    .await;
    let _late = book(
        cal_a.clone(),
        et_a.clone(),
        "2027-04-16T10:00:00Z",
        "confirmed",
    )
    .await;

    let resp = app
        .list_events(&[
            ("calendarId", cal_a.as_str()),
            ("eventTypeId", et_a.as_str()),
            ("status", "confirmed"),
            ("dateFrom", "2027-04-15T09:00:00Z"),
            ("dateTo", "2027-04-16T00:00:00Z"),
            ("limit", "5"),
        ])
        .await;
    let (items, pagination) = assert_list(&resp);
    assert_eq!(ids(&items), vec![wanted]);
    assert_pagination(&pagination, 1, 5, 1, 1);
}

async fn list_events_with_limit_out_of_range_is_400_naming_limit(app: TestApp) {
    for limit in ["0", "101", "abc", "-1"] {
        let resp = app.list_events(&[("limit", limit)]).await;
        assert_eq!(resp.status, 400, "limit={limit}: {}", resp.describe());
        assert_validation(&resp, &["limit"]);
    }
}

async fn list_events_with_an_invalid_page_is_400_naming_page(app: TestApp) {
    for page in ["0", "-1", "abc"] {
        let resp = app.list_events(&[("page", page)]).await;
        assert_eq!(resp.status, 400, "page={page}: {}", resp.describe());
        assert_validation(&resp, &["page"]);
    }
}

async fn list_events_with_a_malformed_id_filter_is_400_naming_it(app: TestApp) {
    for param in ["calendarId", "eventTypeId"] {
        let resp = app.list_events(&[(param, "not-a-uuid")]).await;
        assert_eq!(resp.status, 400, "{param}=not-a-uuid: {}", resp.describe());
        assert_validation(&resp, &[param]);
    }
}

async fn list_events_with_a_date_that_does_not_parse_is_400_naming_it(app: TestApp) {
    for (param, value) in [
        ("dateFrom", "yesterday"),
        ("dateTo", "tomorrow"),
        ("dateFrom", "2027-13-45T99:00:00Z"),
    ] {
        let resp = app.list_events(&[(param, value)]).await;
        assert_eq!(resp.status, 400, "{param}={value}: {}", resp.describe());
        assert_validation(&resp, &[param]);
    }
}

async fn list_events_with_a_date_without_offset_is_400_naming_it(app: TestApp) {
    // The list names no timezone, so a local time has no meaning: never silently UTC.
    for param in ["dateFrom", "dateTo"] {
        let resp = app.list_events(&[(param, "2027-04-15T10:00:00")]).await;
        assert_eq!(
            resp.status,
            400,
            "{param}=2027-04-15T10:00:00: {}",
            resp.describe()
        );
        assert_validation(&resp, &[param]);
    }
}

async fn list_events_with_an_unknown_status_is_400_naming_status(app: TestApp) {
    let resp = app.list_events(&[("status", "bogus")]).await;
    assert_validation(&resp, &["status"]);
}

// ----- times -----

async fn post_event_with_an_offset_is_returned_in_utc(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T16:00:00+02:00",
        "2027-04-15T16:30:00+02:00",
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["startTime"], json!("2027-04-15T14:00:00Z"));
    assert_eq!(event["endTime"], json!("2027-04-15T14:30:00Z"));
    assert_utc_seconds(&event["startTime"], "startTime");

    // Fractions of a second on input still come back with seconds precision.
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T15:00:00.000Z",
        "2027-04-15T15:30:00.000Z",
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["startTime"], json!("2027-04-15T15:00:00Z"));
    assert_eq!(event["endTime"], json!("2027-04-15T15:30:00Z"));
}

async fn post_event_with_local_times_reads_them_in_the_named_timezone(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    // Winter: Rome is UTC+1.
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-01-15T10:00:00",
            "2027-01-15T10:30:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["startTime"], json!("2027-01-15T09:00:00Z"));
    assert_eq!(event["endTime"], json!("2027-01-15T09:30:00Z"));
    assert_eq!(event["timezone"], json!("Europe/Rome"));

    // Summer: Rome is UTC+2.
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-07-15T10:00:00",
            "2027-07-15T10:30:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["startTime"], json!("2027-07-15T08:00:00Z"));
    assert_eq!(event["endTime"], json!("2027-07-15T08:30:00Z"));
}

async fn post_event_at_a_nonexistent_local_time_is_400_saying_it_does_not_exist(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    // On 2027-03-28 Rome's clocks jump from 02:00 to 03:00.
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-03-28T02:30:00",
            "2027-03-28T03:30:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let error = assert_validation(&app.post_event(&body).await, &["startTime"]);
    let text = messages_about(&error, "startTime");
    assert!(
        text.contains("exist"),
        "the message should say the local time does not exist: {error}"
    );
}

async fn post_event_at_an_ambiguous_local_time_is_400_saying_it_is_ambiguous(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    // On 2027-10-31 Rome's clocks go back from 03:00 to 02:00, so 02:30 happens twice.
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-10-31T02:30:00",
            "2027-10-31T03:30:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let error = assert_validation(&app.post_event(&body).await, &["startTime"]);
    let text = messages_about(&error, "startTime");
    assert!(
        text.contains("ambiguous"),
        "the message should say the local time is ambiguous: {error}"
    );
}

async fn post_event_with_a_local_time_and_no_timezone_is_400_naming_start_time(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00",
        "2027-04-15T10:30:00Z",
    );
    assert_validation(&app.post_event(&body).await, &["startTime"]);
}

async fn post_event_with_an_unknown_timezone_is_400_naming_timezone(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"timezone": "Mars/Olympus"}),
    );
    assert_validation(&app.post_event(&body).await, &["timezone"]);
}

async fn post_event_without_timezone_defaults_to_utc(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["timezone"], json!("UTC"));
    for field in [
        "customerName",
        "customerPhone",
        "customerEmail",
        "notes",
        "title",
        "location",
    ] {
        assert_eq!(
            event[field],
            Value::Null,
            "{field} was not sent, so it should be null"
        );
    }
}

async fn post_event_ending_at_or_before_its_start_is_400_naming_end_time(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    for end in ["2027-04-15T10:00:00Z", "2027-04-15T09:30:00Z"] {
        let body = event_body(&calendar_id, &event_type_id, "2027-04-15T10:00:00Z", end);
        let resp = app.post_event(&body).await;
        assert_eq!(resp.status, 400, "endTime {end}: {}", resp.describe());
        assert_validation(&resp, &["endTime"]);
    }
}

async fn post_event_longer_than_7_days_is_400_naming_end_time(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-22T10:01:00Z",
    );
    assert_validation(&app.post_event(&body).await, &["endTime"]);
}

async fn post_event_lasting_exactly_7_days_is_201(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-22T10:00:00Z",
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["endTime"], json!("2027-04-22T10:00:00Z"));
}

// ----- fields -----

async fn post_event_normalises_customer_phone_to_e164(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"customerPhone": "+39 (06) 123-456.78"}),
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["customerPhone"], json!("+390612345678"));
    let fetched = assert_ok(&app.get(&format!("{EVENTS}/{}", id_of(&event))).await, 200);
    assert_eq!(
        fetched["customerPhone"],
        json!("+390612345678"),
        "the stored phone is E.164"
    );
}

async fn post_event_with_an_invalid_customer_phone_is_400_naming_it(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    for phone in ["12345", "abc", "+39 06 abc 4567", "+1234567890123456"] {
        let body = with(
            event_body(
                &calendar_id,
                &event_type_id,
                "2027-04-15T10:00:00Z",
                "2027-04-15T10:30:00Z",
            ),
            json!({"customerPhone": phone}),
        );
        let resp = app.post_event(&body).await;
        assert_eq!(
            resp.status,
            400,
            "customerPhone {phone:?}: {}",
            resp.describe()
        );
        assert_validation(&resp, &["customerPhone"]);
    }
}

async fn post_event_with_an_invalid_customer_email_is_400_naming_it(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    for email in ["not-an-email", "laura@", "@example.com"] {
        let body = with(
            event_body(
                &calendar_id,
                &event_type_id,
                "2027-04-15T10:00:00Z",
                "2027-04-15T10:30:00Z",
            ),
            json!({"customerEmail": email}),
        );
        let resp = app.post_event(&body).await;
        assert_eq!(
            resp.status,
            400,
            "customerEmail {email:?}: {}",
            resp.describe()
        );
        assert_validation(&resp, &["customerEmail"]);
    }
}

async fn post_event_with_status_cancelled_or_unknown_is_400_naming_status(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    for status in ["cancelled", "bogus"] {
        let body = with(
            event_body(
                &calendar_id,
                &event_type_id,
                "2027-04-15T10:00:00Z",
                "2027-04-15T10:30:00Z",
            ),
            json!({"status": status}),
        );
        let resp = app.post_event(&body).await;
        assert_eq!(resp.status, 400, "status {status:?}: {}", resp.describe());
        assert_validation(&resp, &["status"]);
    }
}

async fn post_event_with_status_tentative_is_201_tentative(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"status": "tentative"}),
    );
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(event["status"], json!("tentative"));
}

async fn post_event_with_a_number_for_title_is_400_naming_title(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"title": 42}),
    );
    assert_validation(&app.post_event(&body).await, &["title"]);
    let resp = app.list_events(&[]).await;
    let (items, _) = assert_list(&resp);
    assert!(items.is_empty(), "a rejected body must create nothing");
}

async fn post_event_missing_its_required_fields_names_them_in_one_400(app: TestApp) {
    let body = json!({"customerName": "Laura Bianchi", "title": "Demo Prodotto"});
    let error = assert_validation(
        &app.post_event(&body).await,
        &["eventTypeId", "startTime", "endTime"],
    );
    let mut named = field_names(&error);
    named.sort();
    named.dedup();
    assert_eq!(
        named,
        ["endTime", "eventTypeId", "startTime"],
        "exactly the three missing fields (calendarId depends on the event type): {error}"
    );
}

async fn post_event_without_calendar_id_books_the_event_types_own_calendar_or_is_400_naming_it(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let (start, end) = ("2027-04-15T10:00:00Z", "2027-04-15T10:30:00Z");
    let body = json!({"eventTypeId": event_type_id, "startTime": start, "endTime": end});
    let event = app.create_event_with(&app.key, body).await;
    assert_eq!(
        event["calendarId"], calendar_id,
        "an event type bound to one calendar books there: {event}"
    );
    let any = app
        .create_event_type_with(
            &app.key,
            json!({"name": "Consulenza", "durationMinutes": 30}),
        )
        .await;
    let body = json!({"eventTypeId": id_of(&any), "startTime": start, "endTime": end});
    assert_validation(&app.post_event(&body).await, &["calendarId"]);
}

async fn post_event_with_a_malformed_calendar_id_is_400_naming_calendar_id(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        "clx-cal-001",
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    );
    assert_validation(&app.post_event(&body).await, &["calendarId"]);
}

async fn post_event_on_an_unknown_calendar_is_404(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &unknown_id(),
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    );
    assert_error(&app.post_event(&body).await, 404, "not_found");
}

async fn post_event_with_an_unknown_event_type_is_404(app: TestApp) {
    let (calendar_id, _) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &unknown_id(),
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    );
    assert_error(&app.post_event(&body).await, 404, "not_found");
}

async fn post_event_with_an_event_type_for_any_calendar_is_201(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let event_type = app.create_event_type(&app.key, None, 30).await;
    assert_eq!(event_type["calendarId"], Value::Null);
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &id_of(&event_type),
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        )
        .await;
    assert_eq!(event["calendarId"], json!(calendar_id));
}

// ----- no double booking -----

async fn post_event_overlapping_a_confirmed_event_is_409(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        )
        .await;
    for (start, end) in [
        ("2027-04-15T10:00:00Z", "2027-04-15T10:30:00Z"),
        ("2027-04-15T10:15:00Z", "2027-04-15T10:45:00Z"),
        ("2027-04-15T09:45:00Z", "2027-04-15T10:15:00Z"),
        ("2027-04-15T09:00:00Z", "2027-04-15T11:00:00Z"),
        ("2027-04-15T10:10:00Z", "2027-04-15T10:20:00Z"),
    ] {
        let resp = app
            .post_event(&event_body(&calendar_id, &event_type_id, start, end))
            .await;
        assert_eq!(
            resp.status,
            409,
            "{start}..{end} overlaps 10:00..10:30: {}",
            resp.describe()
        );
        assert_slot_conflict(&resp, &first);
    }
    let (items, _) = assert_list(&app.list_events(&[]).await);
    assert_eq!(
        ids(&items),
        vec![id_of(&first)],
        "a refused booking must create nothing"
    );
}

async fn post_event_overlapping_a_tentative_event_is_409(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let tentative = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    "2027-04-15T10:00:00Z",
                    "2027-04-15T10:30:00Z",
                ),
                json!({"status": "tentative"}),
            ),
        )
        .await;
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:15:00Z",
            "2027-04-15T10:45:00Z",
        ))
        .await;
    assert_slot_conflict(&resp, &tentative);
}

async fn post_events_back_to_back_are_both_201(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    )
    .await;
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:30:00Z",
        "2027-04-15T11:00:00Z",
    )
    .await;
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        "2027-04-15T09:30:00Z",
        "2027-04-15T10:00:00Z",
    )
    .await;
    let (items, pagination) = assert_list(&app.list_events(&[]).await);
    assert_eq!(items.len(), 3);
    assert_pagination(&pagination, 1, 20, 3, 1);
}

async fn post_event_at_the_same_time_on_another_calendar_is_201(app: TestApp) {
    let (cal_a, et_a) = app.calendar_and_event_type().await;
    let (cal_b, et_b) = app.calendar_and_event_type().await;
    app.create_event(
        &app.key,
        &cal_a,
        &et_a,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    )
    .await;
    app.create_event(
        &app.key,
        &cal_b,
        &et_b,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    )
    .await;
}

async fn post_event_inside_the_buffer_after_an_event_is_409(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let buffered = app
        .create_event_type_with(
            &app.key,
            json!({"calendarId": calendar_id, "name": "Igiene dentale", "durationMinutes": 30, "bufferAfterMinutes": 15}),
        )
        .await;
    assert_eq!(buffered["bufferAfterMinutes"], json!(15));
    let plain = id_of(
        &app.create_event_type(&app.key, Some(&calendar_id), 30)
            .await,
    );

    // 10:00-10:30 with 15 minutes after blocks until 10:45.
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &id_of(&buffered),
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        )
        .await;
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &plain,
            "2027-04-15T10:40:00Z",
            "2027-04-15T11:10:00Z",
        ))
        .await;
    assert_slot_conflict(&resp, &first);
    app.create_event(
        &app.key,
        &calendar_id,
        &plain,
        "2027-04-15T10:45:00Z",
        "2027-04-15T11:15:00Z",
    )
    .await;
}

async fn post_event_whose_buffer_before_reaches_an_event_is_409(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let plain = id_of(
        &app.create_event_type(&app.key, Some(&calendar_id), 30)
            .await,
    );
    let buffered = id_of(
        &app.create_event_type_with(
            &app.key,
            json!({"calendarId": calendar_id, "name": "Chirurgia", "durationMinutes": 30, "bufferBeforeMinutes": 15}),
        )
        .await,
    );
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &plain,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        )
        .await;
    // 10:30-11:00 with 15 minutes before blocks from 10:15, inside 10:00-10:30.
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &buffered,
            "2027-04-15T10:30:00Z",
            "2027-04-15T11:00:00Z",
        ))
        .await;
    assert_slot_conflict(&resp, &first);
    app.create_event(
        &app.key,
        &calendar_id,
        &buffered,
        "2027-04-15T10:45:00Z",
        "2027-04-15T11:15:00Z",
    )
    .await;
}

async fn simultaneous_posts_for_one_slot_book_exactly_once(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    // Twelve requests whose times all overlap one another (starts 0..11 minutes apart, 30 minutes long).
    let requests = (0..12).map(|i| {
        let start = plus_minutes("2027-04-15T10:00:00Z", i);
        let body = with(
            event_body(
                &calendar_id,
                &event_type_id,
                &start,
                &plus_minutes(&start, 30),
            ),
            json!({"customerName": format!("Cliente {i}")}),
        );
        send(app.req(Method::POST, EVENTS).json(&body))
    });
    let responses = join_all(requests).await;
    let created: Vec<&Resp> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one of 12 overlapping simultaneous bookings must win; statuses: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let winner = assert_ok(created[0], 201);
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_slot_conflict(resp, &winner);
    }
    let (items, pagination) = assert_list(&app.list_events(&[]).await);
    assert_pagination(&pagination, 1, 20, 1, 1);
    assert_eq!(ids(&items), vec![id_of(&winner)]);
}
