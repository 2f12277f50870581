//! The richer event: description, type, attendees, owner, createdBy, metadata, all-day events
//! and transparency, in the native dialect, on both backends; and events without an event type
//! (made by dialects that have none) listed and filtered like any other.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        every_new_field_round_trips_through_create_get_and_list,
        every_limit_breached_is_a_validation_error_naming_the_field,
        a_patch_replaces_attendees_and_metadata_and_clears_fields,
        an_all_day_event_on_the_rome_spring_forward_day_blocks_exactly_23_hours,
        an_all_day_event_on_the_rome_fall_back_day_blocks_exactly_25_hours,
        all_day_and_timed_forms_are_exclusive_and_each_needs_both_ends,
        a_transparent_event_over_a_slot_leaves_it_free_and_bookable,
        making_a_transparent_event_opaque_is_checked_for_overlap,
        an_event_without_an_event_type_lists_filters_and_reads,
    ]
}

const FULL: &str = "/v1/calendar/events";

fn rich(calendar: &str, event_type: &str) -> Value {
    with(
        event_body(
            calendar,
            event_type,
            "2027-06-01T09:00:00Z",
            "2027-06-01T09:30:00Z",
        ),
        json!({
            "description": "Agenda: crowns, then X-rays.",
            "type": "appointment",
            "attendees": [
                {"name": "Laura Bianchi", "email": "laura@example.com", "optional": false, "responseStatus": "accepted"},
                {"email": "Interpreter@Example.COM", "optional": true}
            ],
            "ownerId": "dr-bianchi",
            "ownerType": "agent",
            "createdBy": "voice-agent-7",
            "metadata": {"crmId": "L-1042", "campaign": "spring"},
            "transparency": "opaque"
        }),
    )
}

async fn every_new_field_round_trips_through_create_get_and_list(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let created = assert_ok(&app.post_event(&rich(&calendar, &event_type)).await, 201);
    let id = id_of(&created);
    let got = assert_ok(&app.get(&format!("{FULL}/{id}")).await, 200);
    let (listed, _) = assert_list(&app.list_events(&[("calendarId", &calendar)]).await);
    for event in [&created, &got, &listed[0]] {
        assert_eq!(event["description"], "Agenda: crowns, then X-rays.");
        assert_eq!(event["type"], "appointment");
        assert_eq!(event["ownerId"], "dr-bianchi");
        assert_eq!(event["ownerType"], "agent");
        assert_eq!(event["createdBy"], "voice-agent-7");
        assert_eq!(
            event["metadata"],
            json!({"crmId": "L-1042", "campaign": "spring"})
        );
        assert_eq!(event["transparency"], "opaque");
        assert_eq!(event["allDay"], false);
        assert_eq!(event["startDate"], Value::Null);
        let attendees = event["attendees"].as_array().expect("attendees array");
        assert_eq!(attendees.len(), 2, "{event}");
        assert_eq!(attendees[0]["name"], "Laura Bianchi");
        assert_eq!(attendees[0]["responseStatus"], "accepted");
        assert_eq!(attendees[1]["name"], Value::Null);
        assert_eq!(attendees[1]["optional"], true);
        assert_eq!(attendees[1]["responseStatus"], "needsAction");
        assert_eq!(attendees[1]["email"], "Interpreter@example.com");
    }
    // Absent fields are null or empty, never missing.
    let plain = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "2027-06-01T10:00:00Z",
            "2027-06-01T10:30:00Z",
        )
        .await;
    for key in [
        "description",
        "type",
        "ownerId",
        "ownerType",
        "createdBy",
        "startDate",
        "endDate",
    ] {
        assert_eq!(plain[key], Value::Null, "{key} of a plain event: {plain}");
    }
    assert_eq!(plain["attendees"], json!([]));
    assert_eq!(plain["metadata"], json!({}));
    assert_eq!(plain["transparency"], "opaque");
}

async fn every_limit_breached_is_a_validation_error_naming_the_field(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let base = event_body(
        &calendar,
        &event_type,
        "2027-06-02T09:00:00Z",
        "2027-06-02T09:30:00Z",
    );
    let mut attendees: Vec<Value> = (0..3)
        .map(|i| json!({"email": format!("a{i}@example.com")}))
        .collect();
    attendees.push(json!({"email": "not-an-address"}));
    let resp = app
        .post_event(&with(
            base.clone(),
            json!({
                "attendees": attendees,
                "metadata": {"crmId": "x".repeat(501), "k".repeat(41): "v"},
            }),
        ))
        .await;
    let error = assert_validation(&resp, &["attendees[3].email", "metadata.crmId"]);
    assert!(
        field_names(&error).contains(&format!("metadata.{}", "k".repeat(41))),
        "{error}"
    );

    // Limits the published schema states are checked with the body's shape, each named.
    assert_validation(
        &app.post_event(&with(base.clone(), json!({"type": "t".repeat(65)})))
            .await,
        &["type"],
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"email": format!("p{i}@example.com")}))
        .collect();
    assert_validation(
        &app.post_event(&with(base.clone(), json!({"attendees": many})))
            .await,
        &["attendees"],
    );
    let keys: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_validation(
        &app.post_event(&with(base.clone(), json!({"metadata": keys})))
            .await,
        &["metadata"],
    );
    assert_validation(
        &app.post_event(&with(base.clone(), json!({"ownerType": "robot"})))
            .await,
        &["ownerType"],
    );
    assert_validation(
        &app.post_event(&with(
            base.clone(),
            json!({"attendees": [{"email": "a@example.com", "responseStatus": "maybe"}]}),
        ))
        .await,
        &["attendees[0].responseStatus"],
    );
    assert_eq!(
        assert_list(&app.list_events(&[]).await).0.len(),
        0,
        "nothing refused was stored"
    );
}

async fn a_patch_replaces_attendees_and_metadata_and_clears_fields(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let created = assert_ok(&app.post_event(&rich(&calendar, &event_type)).await, 201);
    let id = id_of(&created);
    let patched = assert_ok(
        &app.patch(
            &format!("{FULL}/{id}"),
            &json!({
                "attendees": [{"email": "new@example.com", "responseStatus": "tentative"}],
                "metadata": {"crmId": "L-2000"},
                "description": null,
                "type": "meeting"
            }),
        )
        .await,
        200,
    );
    assert_eq!(patched["attendees"].as_array().map(Vec::len), Some(1));
    assert_eq!(patched["attendees"][0]["email"], "new@example.com");
    assert_eq!(patched["metadata"], json!({"crmId": "L-2000"}));
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["type"], "meeting");
    assert_eq!(patched["ownerId"], "dr-bianchi", "untouched fields stay");
    let cleared = assert_ok(
        &app.patch(
            &format!("{FULL}/{id}"),
            &json!({"attendees": null, "metadata": {}}),
        )
        .await,
        200,
    );
    assert_eq!(cleared["attendees"], json!([]));
    assert_eq!(cleared["metadata"], json!({}));
}

/// A calendar open around the clock in Rome with a 60-minute event type.
async fn rome_day_and_type(app: &TestApp) -> (String, String) {
    let calendar = app
        .create_calendar(
            &app.key,
            Some(json!({"name": "Sala", "timezone": "Europe/Rome"})),
        )
        .await;
    let calendar = id_of(&calendar);
    let event_type = app.create_event_type(&app.key, Some(&calendar), 60).await;
    (calendar, id_of(&event_type))
}

fn all_day(calendar: &str, event_type: &str, start: &str, end: &str) -> Value {
    json!({"calendarId": calendar, "eventTypeId": event_type, "startDate": start,
           "endDate": end, "timezone": "Europe/Rome", "type": "block"})
}

async fn assert_day_blocks(app: &TestApp, date: &str, next: &str, hours: i64, first_utc: &str) {
    let (calendar, event_type) = rome_day_and_type(app).await;
    let event = assert_ok(
        &app.post_event(&all_day(&calendar, &event_type, date, next))
            .await,
        201,
    );
    assert_eq!(event["allDay"], true);
    assert_eq!(event["startDate"], date);
    assert_eq!(event["endDate"], next);
    assert_eq!(event["startTime"], first_utc);
    let start = chrono::DateTime::parse_from_rfc3339(event["startTime"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(event["endTime"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_hours(), hours, "{event}");
    // The last hour of that local day is taken; the first hour of the next is free.
    let last_hour = plus_minutes(event["endTime"].as_str().unwrap(), -60);
    let resp = app
        .post_event(&event_body(
            &calendar,
            &event_type,
            &last_hour,
            event["endTime"].as_str().unwrap(),
        ))
        .await;
    assert_slot_conflict(&resp, &event);
    let after = plus_minutes(event["endTime"].as_str().unwrap(), 60);
    assert_ok(
        &app.post_event(&event_body(
            &calendar,
            &event_type,
            event["endTime"].as_str().unwrap(),
            &after,
        ))
        .await,
        201,
    );
}

async fn an_all_day_event_on_the_rome_spring_forward_day_blocks_exactly_23_hours(app: TestApp) {
    assert_day_blocks(&app, "2027-03-28", "2027-03-29", 23, "2027-03-27T23:00:00Z").await;
}

async fn an_all_day_event_on_the_rome_fall_back_day_blocks_exactly_25_hours(app: TestApp) {
    assert_day_blocks(&app, "2027-10-31", "2027-11-01", 25, "2027-10-30T22:00:00Z").await;
}

async fn all_day_and_timed_forms_are_exclusive_and_each_needs_both_ends(app: TestApp) {
    let (calendar, event_type) = rome_day_and_type(&app).await;
    let both = with(
        all_day(&calendar, &event_type, "2027-05-01", "2027-05-02"),
        json!({"startTime": "2027-05-01T09:00:00Z", "endTime": "2027-05-01T10:00:00Z"}),
    );
    assert_validation(&app.post_event(&both).await, &["startDate"]);
    let half =
        json!({"calendarId": calendar, "eventTypeId": event_type, "startDate": "2027-05-01"});
    assert_validation(&app.post_event(&half).await, &["endDate"]);
    let backwards = all_day(&calendar, &event_type, "2027-05-02", "2027-05-02");
    assert_validation(&app.post_event(&backwards).await, &["endDate"]);
    let neither = json!({"calendarId": calendar, "eventTypeId": event_type});
    assert_validation(&app.post_event(&neither).await, &["startTime", "endTime"]);
    let sloppy = all_day(&calendar, &event_type, "2027-5-1", "2027-05-02");
    assert_validation(&app.post_event(&sloppy).await, &["startDate"]);
}

async fn a_transparent_event_over_a_slot_leaves_it_free_and_bookable(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let reminder = with(
        event_body(
            &calendar,
            &event_type,
            "2027-07-05T09:00:00Z",
            "2027-07-05T10:00:00Z",
        ),
        json!({"transparency": "transparent", "type": "reminder"}),
    );
    let transparent = assert_ok(&app.post_event(&reminder).await, 201);
    assert_eq!(transparent["transparency"], "transparent");
    let slots = assert_ok(
        &app.get_query(
            "/v1/calendar/availability",
            &[
                ("calendarId", calendar.as_str()),
                ("eventTypeId", event_type.as_str()),
                ("dateFrom", "2027-07-05T09:00:00Z"),
                ("dateTo", "2027-07-05T10:00:00Z"),
            ],
        )
        .await,
        200,
    );
    let starts: Vec<&str> = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["startTime"].as_str())
        .collect();
    assert_eq!(
        starts,
        ["2027-07-05T09:00:00Z", "2027-07-05T09:30:00Z"],
        "{slots}"
    );
    app.create_event(
        &app.key,
        &calendar,
        &event_type,
        "2027-07-05T09:00:00Z",
        "2027-07-05T09:30:00Z",
    )
    .await;
    // A second transparent event over the now-booked slot is fine too.
    assert_ok(&app.post_event(&reminder).await, 201);
}

async fn making_a_transparent_event_opaque_is_checked_for_overlap(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let hold = with(
        event_body(
            &calendar,
            &event_type,
            "2027-07-06T09:00:00Z",
            "2027-07-06T09:30:00Z",
        ),
        json!({"transparency": "transparent"}),
    );
    let hold = assert_ok(&app.post_event(&hold).await, 201);
    let booked = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "2027-07-06T09:00:00Z",
            "2027-07-06T09:30:00Z",
        )
        .await;
    let resp = app
        .patch(
            &format!("{FULL}/{}", id_of(&hold)),
            &json!({"transparency": "opaque"}),
        )
        .await;
    assert_slot_conflict(&resp, &booked);
}

async fn an_event_without_an_event_type_lists_filters_and_reads(app: TestApp) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let typed = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            "2027-08-02T09:00:00Z",
            "2027-08-02T09:30:00Z",
        )
        .await;
    // A dialect without event types books through the same core; the native POST requires one.
    let calendar_id = quando_api::domain::ids::CalendarId(calendar.parse().unwrap());
    let state = quando_api::state::AppState::new(app.db.clone(), Default::default());
    let request = quando_api::service::events::BookingRequest {
        calendar: Some(calendar_id),
        event_type: None,
        start: "2027-08-02T10:00:00Z".parse().unwrap(),
        end: "2027-08-02T10:45:00Z".parse().unwrap(),
        zone: quando_api::domain::time::Zone::UTC,
        customer_name: None,
        customer_phone: None,
        customer_email: None,
        title: Some("Call-back".into()),
        location: None,
        notes: None,
        status: quando_api::service::events::Status::Confirmed,
        force: true,
        all_day: None,
        details: Default::default(),
        booked_via: "api",
        hold: None,
    };
    let untyped = state
        .service
        .book(quando_api::domain::ids::OrgId(app.org_id), request, &|_| {
            (201, String::new())
        })
        .await
        .expect("a booking without an event type");
    let id = untyped.id.to_string();
    let got = assert_ok(&app.get(&format!("{FULL}/{id}")).await, 200);
    assert_eq!(got["eventTypeId"], Value::Null);
    let (all, _) = assert_list(&app.list_events(&[("calendarId", &calendar)]).await);
    assert_eq!(ids(&all), [id_of(&typed), id.clone()]);
    let (by_type, _) = assert_list(&app.list_events(&[("eventTypeId", &event_type)]).await);
    assert_eq!(ids(&by_type), [id_of(&typed)]);
    let (confirmed, _) = assert_list(&app.list_events(&[("status", "confirmed")]).await);
    assert_eq!(confirmed.len(), 2);
    // It moves and cancels through the API like any other.
    let moved = assert_ok(
        &app.patch(
            &format!("{FULL}/{id}"),
            &json!({"startTime": "2027-08-02T11:00:00Z"}),
        )
        .await,
        200,
    );
    assert_eq!(moved["endTime"], "2027-08-02T11:45:00Z");
    let cancelled = send(app.req(Method::POST, &format!("{FULL}/{id}/cancel"))).await;
    assert_eq!(assert_ok(&cancelled, 200)["status"], "cancelled");
}
