//! Event types: create with defaults, read, list, patch, and their validation errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        post_event_type_is_201_with_defaults,
        post_event_type_with_every_field_returns_them,
        post_event_type_for_any_calendar_has_null_calendar_id,
        post_event_type_with_zero_or_negative_duration_is_400_naming_duration_minutes,
        post_event_type_with_a_negative_buffer_is_400_naming_it,
        post_event_type_without_name_and_duration_is_400_naming_both,
        post_event_type_on_an_unknown_calendar_is_404,
        post_event_type_on_another_organizations_calendar_is_404,
        get_event_type_by_id_returns_what_post_returned,
        get_event_type_with_an_unknown_id_is_404,
        get_event_type_with_a_malformed_id_is_404,
        list_event_types_paginates,
        patch_event_type_changes_its_fields,
        patch_event_type_with_zero_duration_is_400_naming_duration_minutes,
        patch_event_type_with_an_unknown_id_is_404,
    ]
}

const EVENT_TYPES: &str = "/v1/calendar/event-types";

async fn post_event_type_is_201_with_defaults(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let resp = app
        .post(
            EVENT_TYPES,
            &json!({"calendarId": calendar_id, "name": "Demo Prodotto", "durationMinutes": 30}),
        )
        .await;
    let event_type = assert_ok(&resp, 201);
    assert_has_keys(&event_type, &EVENT_TYPE_FIELDS, "the created event type");
    assert_uuid_v7(&event_type["id"], "id");
    assert_eq!(event_type["calendarId"], json!(calendar_id));
    assert_eq!(event_type["name"], json!("Demo Prodotto"));
    assert_eq!(event_type["durationMinutes"], json!(30));
    assert_eq!(event_type["bufferBeforeMinutes"], json!(0));
    assert_eq!(event_type["bufferAfterMinutes"], json!(0));
    assert_eq!(event_type["minimumNoticeMinutes"], Value::Null);
    assert_eq!(event_type["location"], Value::Null);
    assert_eq!(event_type["active"], json!(true));
    assert_recent(&event_type["createdAt"], "createdAt");
    assert_recent(&event_type["updatedAt"], "updatedAt");
}

async fn post_event_type_with_every_field_returns_them(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let body = json!({
        "calendarId": calendar_id,
        "name": "Consulenza",
        "durationMinutes": 45,
        "bufferBeforeMinutes": 5,
        "bufferAfterMinutes": 10,
        "minimumNoticeMinutes": 120,
        "location": "Zoom",
        "active": false
    });
    let event_type = app.create_event_type_with(&app.key, body.clone()).await;
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(
            &event_type[field], value,
            "{field} should come back as sent"
        );
    }
}

async fn post_event_type_for_any_calendar_has_null_calendar_id(app: TestApp) {
    let event_type = app
        .create_event_type_with(&app.key, json!({"name": "Chiamata", "durationMinutes": 15}))
        .await;
    assert_eq!(
        event_type["calendarId"],
        Value::Null,
        "an absent calendarId means any calendar"
    );
    let event_type = app.create_event_type(&app.key, None, 20).await;
    assert_eq!(event_type["calendarId"], Value::Null);
}

async fn post_event_type_with_zero_or_negative_duration_is_400_naming_duration_minutes(
    app: TestApp,
) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    for duration in [0, -30] {
        let resp = app
            .post(
                EVENT_TYPES,
                &json!({"calendarId": calendar_id, "name": "Zero", "durationMinutes": duration}),
            )
            .await;
        assert_eq!(
            resp.status,
            400,
            "durationMinutes {duration}: {}",
            resp.describe()
        );
        assert_validation(&resp, &["durationMinutes"]);
    }
}

async fn post_event_type_with_a_negative_buffer_is_400_naming_it(app: TestApp) {
    for field in ["bufferBeforeMinutes", "bufferAfterMinutes"] {
        let body = with(
            json!({"name": "Buffer", "durationMinutes": 30}),
            json!({field: -5}),
        );
        let resp = app.post(EVENT_TYPES, &body).await;
        assert_eq!(resp.status, 400, "{field} -5: {}", resp.describe());
        assert_validation(&resp, &[field]);
    }
}

async fn post_event_type_without_name_and_duration_is_400_naming_both(app: TestApp) {
    let resp = app.post(EVENT_TYPES, &json!({"location": "Zoom"})).await;
    assert_validation(&resp, &["name", "durationMinutes"]);
}

async fn post_event_type_on_an_unknown_calendar_is_404(app: TestApp) {
    let resp = app
        .post(
            EVENT_TYPES,
            &json!({"calendarId": unknown_id(), "name": "Demo", "durationMinutes": 30}),
        )
        .await;
    assert_error(&resp, 404, "not_found");
}

async fn post_event_type_on_another_organizations_calendar_is_404(app: TestApp) {
    let (_, other_key) = app.new_org("Altra Clinica").await;
    let foreign = id_of(&app.create_calendar(&other_key, None).await);
    let resp = app
        .post(
            EVENT_TYPES,
            &json!({"calendarId": foreign, "name": "Demo", "durationMinutes": 30}),
        )
        .await;
    assert_error(&resp, 404, "not_found");
    let (items, _) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty(), "nothing may be created");
}

async fn get_event_type_by_id_returns_what_post_returned(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let resp = app.get(&format!("{EVENT_TYPES}/{event_type_id}")).await;
    let fetched = assert_ok(&resp, 200);
    assert_has_keys(&fetched, &EVENT_TYPE_FIELDS, "the fetched event type");
    assert_eq!(id_of(&fetched), event_type_id);
    assert_eq!(fetched["durationMinutes"], json!(30));
}

async fn get_event_type_with_an_unknown_id_is_404(app: TestApp) {
    assert_error(
        &app.get(&format!("{EVENT_TYPES}/{}", unknown_id())).await,
        404,
        "not_found",
    );
}

async fn get_event_type_with_a_malformed_id_is_404(app: TestApp) {
    assert_error(
        &app.get(&format!("{EVENT_TYPES}/clx-et-001")).await,
        404,
        "not_found",
    );
}

async fn list_event_types_paginates(app: TestApp) {
    let (items, pagination) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 20, 0, 0);

    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let mut created = BTreeSet::new();
    for duration in [15, 30, 45] {
        created.insert(id_of(
            &app.create_event_type(&app.key, Some(&calendar_id), duration)
                .await,
        ));
    }
    let (page1, pagination) = assert_list(&app.get_query(EVENT_TYPES, &[("limit", "2")]).await);
    assert_pagination(&pagination, 1, 2, 3, 2);
    assert_eq!(page1.len(), 2);
    for event_type in &page1 {
        assert_has_keys(event_type, &EVENT_TYPE_FIELDS, "a listed event type");
    }
    let (page2, pagination) = assert_list(
        &app.get_query(EVENT_TYPES, &[("limit", "2"), ("page", "2")])
            .await,
    );
    assert_pagination(&pagination, 2, 2, 3, 2);
    let listed: BTreeSet<String> = ids(&page1).into_iter().chain(ids(&page2)).collect();
    assert_eq!(listed, created);

    let resp = app.get_query(EVENT_TYPES, &[("limit", "0")]).await;
    assert_validation(&resp, &["limit"]);
}

async fn patch_event_type_changes_its_fields(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let path = format!("{EVENT_TYPES}/{event_type_id}");
    let before = assert_ok(&app.get(&path).await, 200);
    let patch = json!({
        "name": "Visita lunga",
        "durationMinutes": 60,
        "bufferAfterMinutes": 10,
        "minimumNoticeMinutes": 60,
        "location": "Studio 2",
        "active": false
    });
    let patched = assert_ok(&app.patch(&path, &patch).await, 200);
    for (field, value) in patch.as_object().unwrap() {
        assert_eq!(&patched[field], value, "{field} should be patched");
    }
    assert_eq!(patched["calendarId"], before["calendarId"]);
    assert_eq!(
        patched["bufferBeforeMinutes"],
        before["bufferBeforeMinutes"]
    );
    assert_eq!(patched["createdAt"], before["createdAt"]);
    assert!(patched["updatedAt"].as_str().unwrap() >= before["updatedAt"].as_str().unwrap());
    assert_eq!(assert_ok(&app.get(&path).await, 200), patched);
}

async fn patch_event_type_with_zero_duration_is_400_naming_duration_minutes(app: TestApp) {
    let (_, event_type_id) = app.calendar_and_event_type().await;
    let path = format!("{EVENT_TYPES}/{event_type_id}");
    assert_validation(
        &app.patch(&path, &json!({"durationMinutes": 0})).await,
        &["durationMinutes"],
    );
    assert_eq!(
        assert_ok(&app.get(&path).await, 200)["durationMinutes"],
        json!(30)
    );
}

async fn patch_event_type_with_an_unknown_id_is_404(app: TestApp) {
    let resp = app
        .patch(
            &format!("{EVENT_TYPES}/{}", unknown_id()),
            &json!({"name": "X"}),
        )
        .await;
    assert_error(&resp, 404, "not_found");
}
