//! Tenant isolation: a second organization tries every endpoint on the first one's ids and always
//! gets 404 not_found (never 200, 403 or 500), and its lists never show the first one's data.

use serde_json::json;

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        another_organization_gets_404_on_every_endpoint_with_our_ids,
        another_organization_cannot_book_on_our_calendar_or_event_type,
        another_organization_cannot_create_an_event_type_on_our_calendar,
        another_organizations_lists_never_show_our_data,
        another_organization_filtering_by_our_calendar_sees_nothing,
        organizations_book_the_same_time_independently,
    ]
}

/// Org A's calendar, event type and event, made with A's key.
struct OrgA {
    calendar: serde_json::Value,
    event_type: serde_json::Value,
    event: serde_json::Value,
}

async fn org_a_data(app: &TestApp) -> OrgA {
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
    OrgA {
        calendar,
        event_type,
        event,
    }
}

#[track_caller]
fn assert_hidden(resp: &Resp, what: &str) {
    assert_eq!(
        resp.status,
        404,
        "{what}: another organization's id must be 404: {}",
        resp.describe()
    );
    assert_error(resp, 404, "not_found");
}

async fn another_organization_gets_404_on_every_endpoint_with_our_ids(app: TestApp) {
    let a = org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let calendar = format!("/v1/calendar/calendars/{}", id_of(&a.calendar));
    let event_type = format!("/v1/calendar/event-types/{}", id_of(&a.event_type));
    let event = format!("/v1/calendar/events/{}", id_of(&a.event));

    assert_hidden(&app.get_as(&key_b, &calendar).await, "GET calendar");
    assert_hidden(
        &app.patch_as(&key_b, &calendar, &json!({"name": "Preso"}))
            .await,
        "PATCH calendar",
    );
    assert_hidden(&app.get_as(&key_b, &event_type).await, "GET event type");
    assert_hidden(
        &app.patch_as(
            &key_b,
            &event_type,
            &json!({"name": "Preso", "durationMinutes": 5}),
        )
        .await,
        "PATCH event type",
    );
    assert_hidden(&app.get_as(&key_b, &event).await, "GET event");

    // Nothing of A's changed.
    assert_eq!(assert_ok(&app.get(&calendar).await, 200), a.calendar);
    assert_eq!(assert_ok(&app.get(&event_type).await, 200), a.event_type);
    assert_eq!(assert_ok(&app.get(&event).await, 200), a.event);
}

async fn another_organization_cannot_book_on_our_calendar_or_event_type(app: TestApp) {
    let a = org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let b_calendar = id_of(&app.create_calendar(&key_b, None).await);
    let b_event_type = id_of(&app.create_event_type(&key_b, Some(&b_calendar), 30).await);
    let (a_calendar, a_event_type) = (id_of(&a.calendar), id_of(&a.event_type));

    for (calendar_id, event_type_id, what) in [
        (
            &a_calendar,
            &a_event_type,
            "A's calendar and A's event type",
        ),
        (
            &a_calendar,
            &b_event_type,
            "A's calendar with B's event type",
        ),
        (
            &b_calendar,
            &a_event_type,
            "B's calendar with A's event type",
        ),
    ] {
        // A free time, so that only ownership can refuse it.
        let body = event_body(
            calendar_id,
            event_type_id,
            "2027-06-01T15:00:00Z",
            "2027-06-01T15:30:00Z",
        );
        assert_hidden(
            &app.post_as(&key_b, "/v1/calendar/events", &body).await,
            what,
        );
    }
    // And at the time of A's event: a 409 would reveal that A is busy then.
    let body = event_body(
        &a_calendar,
        &a_event_type,
        "2027-06-01T09:00:00Z",
        "2027-06-01T09:30:00Z",
    );
    assert_hidden(
        &app.post_as(&key_b, "/v1/calendar/events", &body).await,
        "booking over A's event",
    );

    let (items, _) = assert_list(&app.list_events(&[]).await);
    assert_eq!(
        ids(&items),
        vec![id_of(&a.event)],
        "A's calendar got no new event"
    );
}

async fn another_organization_cannot_create_an_event_type_on_our_calendar(app: TestApp) {
    let a = org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let resp = app
        .post_as(
            &key_b,
            "/v1/calendar/event-types",
            &json!({"calendarId": id_of(&a.calendar), "name": "Intruso", "durationMinutes": 30}),
        )
        .await;
    assert_hidden(&resp, "POST event type on A's calendar");
}

async fn another_organizations_lists_never_show_our_data(app: TestApp) {
    let a = org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    for path in [
        "/v1/calendar/events",
        "/v1/calendar/calendars",
        "/v1/calendar/event-types",
    ] {
        let (items, pagination) = assert_list(&app.get_as(&key_b, path).await);
        assert!(items.is_empty(), "B's {path} shows A's data: {items:?}");
        assert_pagination(&pagination, 1, 20, 0, 0);
    }

    // B's own data shows up, and still none of A's.
    let b_calendar = app.create_calendar(&key_b, None).await;
    let b_event_type = app
        .create_event_type(&key_b, Some(&id_of(&b_calendar)), 30)
        .await;
    let b_event = app
        .create_event(
            &key_b,
            &id_of(&b_calendar),
            &id_of(&b_event_type),
            "2027-06-01T09:00:00Z",
            "2027-06-01T09:30:00Z",
        )
        .await;
    for (path, mine, theirs) in [
        ("/v1/calendar/events", &b_event, &a.event),
        ("/v1/calendar/calendars", &b_calendar, &a.calendar),
        ("/v1/calendar/event-types", &b_event_type, &a.event_type),
    ] {
        let (items, pagination) = assert_list(&app.get_as(&key_b, path).await);
        assert_eq!(ids(&items), vec![id_of(mine)], "B's {path}");
        assert_eq!(pagination["total"], json!(1));
        let (items, _) = assert_list(&app.get(path).await);
        assert_eq!(ids(&items), vec![id_of(theirs)], "A's {path}");
    }
}

async fn another_organization_filtering_by_our_calendar_sees_nothing(app: TestApp) {
    let a = org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    for (param, value) in [
        ("calendarId", id_of(&a.calendar)),
        ("eventTypeId", id_of(&a.event_type)),
    ] {
        let resp = app
            .get_query_as(&key_b, "/v1/calendar/events", &[(param, value.as_str())])
            .await;
        if resp.status == 404 {
            assert_error(&resp, 404, "not_found");
        } else {
            let (items, pagination) = assert_list(&resp);
            assert!(
                items.is_empty(),
                "B filtering by A's {param} sees A's events: {}",
                resp.describe()
            );
            assert_eq!(pagination["total"], json!(0));
        }
    }
}

async fn organizations_book_the_same_time_independently(app: TestApp) {
    org_a_data(&app).await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let b_calendar = id_of(&app.create_calendar(&key_b, None).await);
    let b_event_type = id_of(&app.create_event_type(&key_b, Some(&b_calendar), 30).await);
    app.create_event(
        &key_b,
        &b_calendar,
        &b_event_type,
        "2027-06-01T09:00:00Z",
        "2027-06-01T09:30:00Z",
    )
    .await;
}
