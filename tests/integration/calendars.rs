//! Calendars: create, read, list with pagination, patch, and their validation errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        post_calendar_is_201_with_every_field,
        post_calendar_without_description_has_null_description,
        get_calendar_by_id_returns_what_post_returned,
        get_calendar_with_an_unknown_id_is_404,
        get_calendar_with_a_malformed_id_is_404,
        list_calendars_paginates,
        list_calendars_with_an_invalid_limit_or_page_is_400_naming_it,
        patch_calendar_changes_name_timezone_and_description,
        patch_calendar_with_only_a_name_keeps_the_other_fields,
        patch_calendar_with_an_unknown_id_is_404,
        post_calendar_with_an_unknown_timezone_is_400_naming_timezone,
        patch_calendar_with_an_unknown_timezone_is_400_naming_timezone,
        post_calendar_without_a_name_is_400_naming_name,
        post_calendar_with_an_empty_name_is_400_naming_name,
        patch_calendar_with_an_empty_name_is_400_naming_name,
    ]
}

const CALENDARS: &str = "/v1/calendar/calendars";

async fn post_calendar_is_201_with_every_field(app: TestApp) {
    let resp = app
        .post(
            CALENDARS,
            &json!({"name": "Sala riunioni", "timezone": "Europe/Rome", "description": "Primo piano"}),
        )
        .await;
    let calendar = assert_ok(&resp, 201);
    assert_has_keys(&calendar, &CALENDAR_FIELDS, "the created calendar");
    assert_uuid_v7(&calendar["id"], "id");
    assert_eq!(calendar["name"], json!("Sala riunioni"));
    assert_eq!(calendar["timezone"], json!("Europe/Rome"));
    assert_eq!(calendar["description"], json!("Primo piano"));
    assert_recent(&calendar["createdAt"], "createdAt");
    assert_recent(&calendar["updatedAt"], "updatedAt");
}

async fn post_calendar_without_description_has_null_description(app: TestApp) {
    let calendar = app
        .create_calendar(
            &app.key,
            Some(json!({"name": "Agente vocale", "timezone": "America/New_York"})),
        )
        .await;
    assert_eq!(calendar["description"], Value::Null);
    assert_eq!(calendar["timezone"], json!("America/New_York"));
}

async fn get_calendar_by_id_returns_what_post_returned(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    let fetched = assert_ok(
        &app.get(&format!("{CALENDARS}/{}", id_of(&created))).await,
        200,
    );
    assert_eq!(fetched, created);
}

async fn get_calendar_with_an_unknown_id_is_404(app: TestApp) {
    assert_error(
        &app.get(&format!("{CALENDARS}/{}", unknown_id())).await,
        404,
        "not_found",
    );
}

async fn get_calendar_with_a_malformed_id_is_404(app: TestApp) {
    assert_error(
        &app.get(&format!("{CALENDARS}/clx-cal-001")).await,
        404,
        "not_found",
    );
}

async fn list_calendars_paginates(app: TestApp) {
    let resp = app.get(CALENDARS).await;
    let (items, pagination) = assert_list(&resp);
    assert!(items.is_empty());
    assert_pagination(&pagination, 1, 20, 0, 0);

    let mut created = BTreeSet::new();
    for name in ["Uno", "Due", "Tre"] {
        let calendar = app
            .create_calendar(&app.key, Some(json!({"name": name, "timezone": "UTC"})))
            .await;
        created.insert(id_of(&calendar));
    }

    let (page1, pagination) = assert_list(&app.get_query(CALENDARS, &[("limit", "2")]).await);
    assert_pagination(&pagination, 1, 2, 3, 2);
    assert_eq!(page1.len(), 2);
    for calendar in &page1 {
        assert_has_keys(calendar, &CALENDAR_FIELDS, "a listed calendar");
    }
    let (page2, pagination) = assert_list(
        &app.get_query(CALENDARS, &[("limit", "2"), ("page", "2")])
            .await,
    );
    assert_pagination(&pagination, 2, 2, 3, 2);
    assert_eq!(page2.len(), 1);
    let listed: BTreeSet<String> = ids(&page1).into_iter().chain(ids(&page2)).collect();
    assert_eq!(
        listed, created,
        "two pages should hold the three calendars, each once"
    );

    let (page3, pagination) = assert_list(
        &app.get_query(CALENDARS, &[("limit", "2"), ("page", "3")])
            .await,
    );
    assert!(page3.is_empty());
    assert_pagination(&pagination, 3, 2, 3, 2);
}

async fn list_calendars_with_an_invalid_limit_or_page_is_400_naming_it(app: TestApp) {
    for (param, value) in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "abc"),
        ("page", "0"),
    ] {
        let resp = app.get_query(CALENDARS, &[(param, value)]).await;
        assert_eq!(resp.status, 400, "{param}={value}: {}", resp.describe());
        assert_validation(&resp, &[param]);
    }
}

async fn patch_calendar_changes_name_timezone_and_description(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    let path = format!("{CALENDARS}/{}", id_of(&created));
    let resp = app
        .patch(
            &path,
            &json!({"name": "Dott. Verdi", "timezone": "America/Sao_Paulo", "description": "Secondo piano"}),
        )
        .await;
    let patched = assert_ok(&resp, 200);
    assert_eq!(patched["id"], created["id"]);
    assert_eq!(patched["name"], json!("Dott. Verdi"));
    assert_eq!(patched["timezone"], json!("America/Sao_Paulo"));
    assert_eq!(patched["description"], json!("Secondo piano"));
    assert_eq!(
        patched["createdAt"], created["createdAt"],
        "createdAt never changes"
    );
    assert_utc_seconds(&patched["updatedAt"], "updatedAt");
    let (created_at, updated_at) = (
        patched["createdAt"].as_str().unwrap(),
        patched["updatedAt"].as_str().unwrap(),
    );
    assert!(
        updated_at >= created_at,
        "updatedAt {updated_at} before createdAt {created_at}"
    );
    assert!(
        updated_at >= created["updatedAt"].as_str().unwrap(),
        "updatedAt went backwards"
    );

    let fetched = assert_ok(&app.get(&path).await, 200);
    assert_eq!(fetched, patched, "GET should show the patched calendar");
}

async fn patch_calendar_with_only_a_name_keeps_the_other_fields(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    let path = format!("{CALENDARS}/{}", id_of(&created));
    let patched = assert_ok(&app.patch(&path, &json!({"name": "Nuovo nome"})).await, 200);
    assert_eq!(patched["name"], json!("Nuovo nome"));
    assert_eq!(patched["timezone"], created["timezone"]);
    assert_eq!(patched["description"], created["description"]);
}

async fn patch_calendar_with_an_unknown_id_is_404(app: TestApp) {
    let resp = app
        .patch(
            &format!("{CALENDARS}/{}", unknown_id()),
            &json!({"name": "X"}),
        )
        .await;
    assert_error(&resp, 404, "not_found");
}

async fn post_calendar_with_an_unknown_timezone_is_400_naming_timezone(app: TestApp) {
    let resp = app
        .post(
            CALENDARS,
            &json!({"name": "Marte", "timezone": "Mars/Olympus"}),
        )
        .await;
    assert_validation(&resp, &["timezone"]);
    let (items, _) = assert_list(&app.get(CALENDARS).await);
    assert!(items.is_empty(), "a rejected calendar must not be created");
}

async fn patch_calendar_with_an_unknown_timezone_is_400_naming_timezone(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    let path = format!("{CALENDARS}/{}", id_of(&created));
    assert_validation(
        &app.patch(&path, &json!({"timezone": "Mars/Olympus"})).await,
        &["timezone"],
    );
    let fetched = assert_ok(&app.get(&path).await, 200);
    assert_eq!(
        fetched["timezone"], created["timezone"],
        "a rejected patch changes nothing"
    );
}

async fn post_calendar_without_a_name_is_400_naming_name(app: TestApp) {
    let resp = app
        .post(CALENDARS, &json!({"timezone": "Europe/Rome"}))
        .await;
    assert_validation(&resp, &["name"]);
}

async fn post_calendar_with_an_empty_name_is_400_naming_name(app: TestApp) {
    let resp = app
        .post(CALENDARS, &json!({"name": "", "timezone": "Europe/Rome"}))
        .await;
    assert_validation(&resp, &["name"]);
}

async fn patch_calendar_with_an_empty_name_is_400_naming_name(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    let path = format!("{CALENDARS}/{}", id_of(&created));
    assert_validation(&app.patch(&path, &json!({"name": ""})).await, &["name"]);
    let fetched = assert_ok(&app.get(&path).await, 200);
    assert_eq!(fetched["name"], created["name"]);
}
