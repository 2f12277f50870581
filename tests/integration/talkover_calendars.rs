//! Talkover's calendars and members under `/api/v1/calendars`: the create, list and get shapes,
//! round trips with the native calendar (name, zone, owner, metadata equal both ways), field
//! errors naming the snake_case field, another organization's calendar and member not found,
//! members added, listed and changed, idempotent retries. Both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        a_calendar_is_created_listed_and_read_in_talkovers_shapes,
        the_batch_event_list_is_still_routed_to_events_not_to_a_calendar,
        a_calendar_made_here_is_read_natively_with_the_same_values,
        a_calendar_made_natively_is_read_here_with_the_same_values,
        missing_and_too_long_fields_are_validation_errors_naming_the_snake_case_field,
        another_organizations_calendar_and_member_are_not_found,
        members_are_added_listed_and_updated,
        a_duplicate_user_and_a_bad_role_are_refused,
        an_idempotency_key_retry_creates_no_second_calendar_or_member,
    ]
}

const CALENDARS: &str = "/api/v1/calendars";

fn members_path(calendar: &str) -> String {
    format!("{CALENDARS}/{calendar}/members")
}

fn talkover_ok(resp: &Resp, status: u16) -> Value {
    assert_ok_at(resp, CALENDARS, status)
}

/// A Talkover error with `code` (a native code, as `assert_error_at` takes it).
#[track_caller]
fn talkover_error(resp: &Resp, status: u16, code: &str) -> Value {
    assert_error_at(resp, CALENDARS, status, code)
}

fn sales() -> Value {
    json!({"name": "Sales team", "timezone": "America/New_York", "owner_id": "user_123",
           "metadata": {"team": "sales", "crm": "hs-42"}})
}

async fn create(app: &TestApp, body: &Value) -> Value {
    talkover_ok(&app.post(CALENDARS, body).await, 201)
}

async fn add_member(app: &TestApp, calendar: &str, body: Value) -> Value {
    talkover_ok(&app.post(&members_path(calendar), &body).await, 201)
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

async fn a_calendar_is_created_listed_and_read_in_talkovers_shapes(app: TestApp) {
    let made = create(&app, &sales()).await;
    assert_eq!(
        keys(&made),
        [
            "created_at",
            "id",
            "metadata",
            "name",
            "owner_id",
            "timezone"
        ]
    );
    assert_uuid_v7(&made["id"], "calendar id");
    assert_eq!(made["name"], "Sales team");
    assert_eq!(made["timezone"], "America/New_York");
    assert_eq!(made["owner_id"], "user_123");
    assert_eq!(made["metadata"], json!({"team": "sales", "crm": "hs-42"}));
    assert_utc_seconds(&made["created_at"], "created_at");
    assert_recent(&made["created_at"], "created_at");

    // The zone defaults to UTC.
    let plain = create(&app, &json!({"name": "Line 2", "owner_id": "user_9"})).await;
    assert_eq!(plain["timezone"], "UTC");
    assert_eq!(plain["metadata"], Value::Null);

    let resp = app.get(CALENDARS).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert_eq!(resp.body["has_more"], false, "{}", resp.describe());
    let listed = talkover_ok(&resp, 200);
    assert_eq!(listed, json!([made.clone(), plain.clone()]));

    let id = made["id"].as_str().unwrap();
    let read = talkover_ok(&app.get(&format!("{CALENDARS}/{id}")).await, 200);
    assert_eq!(read, made);
}

async fn the_batch_event_list_is_still_routed_to_events_not_to_a_calendar(app: TestApp) {
    let made = create(&app, &sales()).await;
    let id = made["id"].as_str().unwrap();
    let resp = app
        .get_query(
            &format!("{CALENDARS}/events"),
            &[("calendar_ids[]", id), ("from", "2027-01-01T00:00:00Z")],
        )
        .await;
    assert_eq!(talkover_ok(&resp, 200), json!([]));
    assert_eq!(resp.body["has_more"], false, "{}", resp.describe());
    // Without calendar_ids[] it is the batch list's own error, not a calendar id that is no UUID.
    let error = talkover_error(
        &app.get(&format!("{CALENDARS}/events")).await,
        400,
        "validation_error",
    );
    assert_fields(&error, &["calendar_ids[]"]);
}

async fn a_calendar_made_here_is_read_natively_with_the_same_values(app: TestApp) {
    let made = create(&app, &sales()).await;
    let id = made["id"].as_str().unwrap();
    let native = assert_ok(&app.get(&format!("/v1/calendar/calendars/{id}")).await, 200);
    assert_eq!(native["id"], made["id"]);
    assert_eq!(native["name"], "Sales team");
    assert_eq!(native["timezone"], "America/New_York");
    assert_eq!(native["ownerId"], "user_123");
    assert_eq!(native["metadata"], made["metadata"]);
    assert_eq!(native["createdAt"], made["created_at"]);
    // Open around the clock until hours are set.
    assert_eq!(native["workingHours"], Value::Null);
}

async fn a_calendar_made_natively_is_read_here_with_the_same_values(app: TestApp) {
    let native = app
        .create_calendar(
            &app.key,
            Some(
                json!({"name": "Poltrona 1", "timezone": "Europe/Rome", "ownerId": "dr-rossi",
                        "metadata": {"room": "1"}}),
            ),
        )
        .await;
    let id = id_of(&native);
    let here = talkover_ok(&app.get(&format!("{CALENDARS}/{id}")).await, 200);
    assert_eq!(here["id"], native["id"]);
    assert_eq!(here["name"], "Poltrona 1");
    assert_eq!(here["timezone"], "Europe/Rome");
    assert_eq!(here["owner_id"], "dr-rossi");
    assert_eq!(here["metadata"], json!({"room": "1"}));
    assert_eq!(here["created_at"], native["createdAt"]);

    // A native calendar made without them has neither, in both dialects.
    let bare = app.create_calendar(&app.key, None).await;
    assert_eq!(bare["ownerId"], Value::Null);
    assert_eq!(bare["metadata"], Value::Null);
    let here = talkover_ok(
        &app.get(&format!("{CALENDARS}/{}", id_of(&bare))).await,
        200,
    );
    assert_eq!(here["owner_id"], Value::Null);
    assert_eq!(here["metadata"], Value::Null);
}

async fn missing_and_too_long_fields_are_validation_errors_naming_the_snake_case_field(
    app: TestApp,
) {
    let long = "x".repeat(256);
    for (body, fields) in [
        (json!({"timezone": "UTC"}), vec!["name", "owner_id"]),
        (json!({"name": long, "owner_id": "u"}), vec!["name"]),
        (json!({"name": "A", "owner_id": long}), vec!["owner_id"]),
        (
            json!({"name": "  ", "owner_id": " "}),
            vec!["name", "owner_id"],
        ),
        (
            json!({"name": "A", "owner_id": "u", "timezone": "Mars/Olympus"}),
            vec!["timezone"],
        ),
        (
            json!({"name": "A", "owner_id": "u", "metadata": {"": "v"}}),
            vec!["metadata"],
        ),
        (
            json!({"name": "A", "owner_id": "u", "metadata": {"k": "v".repeat(600)}}),
            vec!["metadata.k"],
        ),
    ] {
        let resp = app.post(CALENDARS, &body).await;
        let error = talkover_error(&resp, 400, "validation_error");
        assert_fields(&error, &fields);
    }
    let cal = create(&app, &sales()).await;
    let cal = cal["id"].as_str().unwrap();
    for (body, field) in [
        (json!({"role": "editor"}), "user_id"),
        (json!({"user_id": long}), "user_id"),
        (json!({"user_id": " "}), "user_id"),
    ] {
        let resp = app.post(&members_path(cal), &body).await;
        let error = talkover_error(&resp, 400, "validation_error");
        assert_fields(&error, &[field]);
    }
    // Nothing was created by the refused requests.
    let listed = talkover_ok(&app.get(CALENDARS).await, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let members = talkover_ok(&app.get(&members_path(cal)).await, 200);
    assert_eq!(members, json!([]));
}

async fn another_organizations_calendar_and_member_are_not_found(app: TestApp) {
    let cal = create(&app, &sales()).await;
    let cal = cal["id"].as_str().unwrap().to_owned();
    let member = add_member(&app, &cal, json!({"user_id": "u1", "role": "editor"})).await;
    let member_path = format!("{}/{}", members_path(&cal), id_of(&member));
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let cal_b = talkover_ok(&app.post_as(&key_b, CALENDARS, &sales()).await, 201);
    let cal_b = cal_b["id"].as_str().unwrap().to_owned();

    for path in [format!("{CALENDARS}/{cal}"), members_path(&cal)] {
        talkover_error(&app.get_as(&key_b, &path).await, 404, "not_found");
    }
    let body = json!({"user_id": "intruder", "role": "owner"});
    talkover_error(
        &app.post_as(&key_b, &members_path(&cal), &body).await,
        404,
        "not_found",
    );
    talkover_error(
        &send(app.req_as(&key_b, Method::PUT, &member_path).json(&body)).await,
        404,
        "not_found",
    );
    // A's member through B's own calendar is not found either.
    let through_b = format!("{}/{}", members_path(&cal_b), id_of(&member));
    talkover_error(
        &send(app.req_as(&key_b, Method::PUT, &through_b).json(&body)).await,
        404,
        "not_found",
    );
    // B lists only its own calendar.
    let listed = talkover_ok(&app.get_as(&key_b, CALENDARS).await, 200);
    assert_eq!(ids(listed.as_array().unwrap()), vec![cal_b]);
    // A's member is as it was.
    let members = talkover_ok(&app.get(&members_path(&cal)).await, 200);
    assert_eq!(members, json!([member]));
}

async fn members_are_added_listed_and_updated(app: TestApp) {
    let cal = create(&app, &sales()).await;
    let cal = cal["id"].as_str().unwrap().to_owned();
    let owner = add_member(&app, &cal, json!({"user_id": "user_123", "role": "owner"})).await;
    assert_eq!(
        keys(&owner),
        [
            "added_at",
            "calendar_id",
            "id",
            "role",
            "updated_at",
            "user_id"
        ]
    );
    assert_uuid_v7(&owner["id"], "member id");
    assert_eq!(owner["calendar_id"], cal.as_str());
    assert_eq!(owner["user_id"], "user_123");
    assert_eq!(owner["role"], "owner");
    assert_utc_seconds(&owner["added_at"], "added_at");
    assert_recent(&owner["added_at"], "added_at");
    // Without a role a member is a viewer.
    let viewer = add_member(&app, &cal, json!({"user_id": "user_456"})).await;
    assert_eq!(viewer["role"], "viewer");

    let resp = app.get(&members_path(&cal)).await;
    assert_eq!(resp.body["has_more"], false, "{}", resp.describe());
    assert_eq!(
        talkover_ok(&resp, 200),
        json!([owner.clone(), viewer.clone()])
    );

    // Another calendar's members are its own.
    let other = create(&app, &json!({"name": "Support", "owner_id": "user_9"})).await;
    let other = other["id"].as_str().unwrap().to_owned();
    assert_eq!(
        talkover_ok(&app.get(&members_path(&other)).await, 200),
        json!([])
    );
    add_member(
        &app,
        &other,
        json!({"user_id": "user_456", "role": "editor"}),
    )
    .await;

    let url = format!("{}/{}", members_path(&cal), id_of(&viewer));
    let changed = talkover_ok(
        &app.req_put(&url, &json!({"user_id": "user_456", "role": "editor"}))
            .await,
        200,
    );
    assert_eq!(changed["id"], viewer["id"]);
    assert_eq!(changed["role"], "editor");
    assert_eq!(changed["added_at"], viewer["added_at"]);
    // A change without a role keeps it; the user can change.
    let renamed = talkover_ok(
        &app.req_put(&url, &json!({"user_id": "user_789"})).await,
        200,
    );
    assert_eq!(renamed["user_id"], "user_789");
    assert_eq!(renamed["role"], "editor");
    let listed = talkover_ok(&app.get(&members_path(&cal)).await, 200);
    assert_eq!(listed, json!([owner, renamed]));

    // A member of another calendar is not found under this one; an unknown one neither.
    for wrong in [
        format!("{}/{}", members_path(&other), id_of(&viewer)),
        format!("{}/{}", members_path(&cal), unknown_id()),
    ] {
        talkover_error(
            &app.req_put(&wrong, &json!({"user_id": "x"})).await,
            404,
            "not_found",
        );
    }
}

async fn a_duplicate_user_and_a_bad_role_are_refused(app: TestApp) {
    let cal = create(&app, &sales()).await;
    let cal = cal["id"].as_str().unwrap().to_owned();
    let first = add_member(&app, &cal, json!({"user_id": "user_1", "role": "owner"})).await;
    let second = add_member(&app, &cal, json!({"user_id": "user_2"})).await;

    let error = talkover_error(
        &app.post(
            &members_path(&cal),
            &json!({"user_id": "user_1", "role": "viewer"}),
        )
        .await,
        400,
        "validation_error",
    );
    assert_fields(&error, &["user_id"]);
    // Taking another member's user by PUT is refused too; keeping one's own is fine.
    let url = format!("{}/{}", members_path(&cal), id_of(&second));
    let error = talkover_error(
        &app.req_put(&url, &json!({"user_id": "user_1"})).await,
        400,
        "validation_error",
    );
    assert_fields(&error, &["user_id"]);
    talkover_ok(
        &app.req_put(&url, &json!({"user_id": "user_2", "role": "viewer"}))
            .await,
        200,
    );

    for role in [json!("admin"), json!("OWNER"), json!(3)] {
        let error = talkover_error(
            &app.post(
                &members_path(&cal),
                &json!({"user_id": "user_3", "role": role}),
            )
            .await,
            400,
            "validation_error",
        );
        assert_fields(&error, &["role"]);
        let error = talkover_error(
            &app.req_put(&url, &json!({"user_id": "user_2", "role": role}))
                .await,
            400,
            "validation_error",
        );
        assert_fields(&error, &["role"]);
    }
    let listed = talkover_ok(&app.get(&members_path(&cal)).await, 200);
    assert_eq!(
        ids(listed.as_array().unwrap()),
        vec![id_of(&first), id_of(&second)]
    );
    assert_eq!(listed[1]["role"], "viewer");
}

async fn an_idempotency_key_retry_creates_no_second_calendar_or_member(app: TestApp) {
    let post = |path: String, key: &'static str, body: Value| {
        send(
            app.req(Method::POST, &path)
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let first = post(CALENDARS.into(), "cal-1", sales()).await;
    let made = talkover_ok(&first, 201);
    let again = post(CALENDARS.into(), "cal-1", sales()).await;
    assert_eq!(talkover_ok(&again, 201), made);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let listed = talkover_ok(&app.get(CALENDARS).await, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let cal = made["id"].as_str().unwrap().to_owned();
    let body = json!({"user_id": "user_1", "role": "editor"});
    let added = talkover_ok(
        &post(members_path(&cal), "member-1", body.clone()).await,
        201,
    );
    let again = post(members_path(&cal), "member-1", body).await;
    assert_eq!(talkover_ok(&again, 201), added);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let members = talkover_ok(&app.get(&members_path(&cal)).await, 200);
    assert_eq!(members, json!([added]));
}
