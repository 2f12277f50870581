//! The error envelope and request ids on every kind of failure: malformed JSON, oversized and
//! non-JSON bodies, unknown routes and wrong methods.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        malformed_json_body_is_400_bad_request,
        a_json_body_that_is_not_an_object_is_400,
        body_over_64_kib_is_413_payload_too_large,
        text_plain_body_is_415_unsupported_media_type,
        a_body_without_content_type_is_415_unsupported_media_type,
        json_with_a_charset_parameter_is_accepted,
        unknown_route_is_404_not_found_in_the_envelope,
        wrong_method_is_405_method_not_allowed_in_the_envelope,
        a_well_formed_request_id_is_echoed_in_header_and_body,
        a_malformed_request_id_is_replaced_by_a_generated_one,
        every_response_gets_its_own_request_id,
    ]
}

const EVENTS: &str = "/v1/calendar/events";

async fn malformed_json_body_is_400_bad_request(app: TestApp) {
    for (path, body) in [
        (EVENTS, r#"{"calendarId": "#),
        (EVENTS, r#"{"calendarId": "x",}"#),
        ("/v1/calendar/calendars", "{name: 'Sala'}"),
        ("/v1/calendar/event-types", "not json at all"),
    ] {
        let resp = send(
            app.req(Method::POST, path)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            resp.status,
            400,
            "POST {path} with {body:?}: {}",
            resp.describe()
        );
        assert_error(&resp, 400, "bad_request");
    }
}

async fn a_json_body_that_is_not_an_object_is_400(app: TestApp) {
    for body in ["[]", "42", "null", "\"event\""] {
        let resp = send(
            app.req(Method::POST, EVENTS)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            resp.status,
            400,
            "POST {EVENTS} with {body}: {}",
            resp.describe()
        );
        let code = resp.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            code == "bad_request" || code == "validation_error",
            "a non-object body is bad_request or validation_error: {}",
            resp.describe()
        );
        assert_error(&resp, 400, &code);
    }
}

async fn body_over_64_kib_is_413_payload_too_large(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-04-15T10:00:00Z",
            "2027-04-15T10:30:00Z",
        ),
        json!({"notes": "x".repeat(70 * 1024)}),
    );
    let resp = app.post_event(&body).await;
    assert_error(&resp, 413, "payload_too_large");
    let (items, _) = assert_list(&app.list_events(&[]).await);
    assert!(items.is_empty(), "an oversized request must create nothing");

    let resp = send(
        app.req(Method::POST, "/v1/calendar/calendars")
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"name":"Sala","timezone":"UTC","description":"{}"}}"#,
                "y".repeat(65 * 1024)
            )),
    )
    .await;
    assert_error(&resp, 413, "payload_too_large");
}

async fn text_plain_body_is_415_unsupported_media_type(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-04-15T10:00:00Z",
        "2027-04-15T10:30:00Z",
    );
    let resp = send(
        app.req(Method::POST, EVENTS)
            .header("Content-Type", "text/plain")
            .body(body.to_string()),
    )
    .await;
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = send(
        app.req(Method::POST, "/v1/calendar/calendars")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=Sala&timezone=UTC"),
    )
    .await;
    assert_error(&resp, 415, "unsupported_media_type");
}

async fn a_body_without_content_type_is_415_unsupported_media_type(app: TestApp) {
    let resp = send(
        app.req(Method::POST, "/v1/calendar/calendars")
            .body(r#"{"name":"Sala","timezone":"UTC"}"#),
    )
    .await;
    assert_error(&resp, 415, "unsupported_media_type");
}

async fn json_with_a_charset_parameter_is_accepted(app: TestApp) {
    let resp = send(
        app.req(Method::POST, "/v1/calendar/calendars")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(r#"{"name":"Sala","timezone":"UTC"}"#),
    )
    .await;
    assert_ok(&resp, 201);
}

async fn unknown_route_is_404_not_found_in_the_envelope(app: TestApp) {
    for path in ["/v1/nope", "/v1/calendar/nope", "/nope"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status, 404, "GET {path}: {}", resp.describe());
        assert_error(&resp, 404, "not_found");
    }
    let resp = send(app.bare(Method::GET, "/v1/nope")).await;
    assert!(
        resp.status == 404 || resp.status == 401,
        "GET /v1/nope without a key: {}",
        resp.describe()
    );
    assert_error(
        &resp,
        resp.status,
        if resp.status == 404 {
            "not_found"
        } else {
            "unauthorized"
        },
    );
}

async fn wrong_method_is_405_method_not_allowed_in_the_envelope(app: TestApp) {
    for (method, path) in [
        (Method::DELETE, EVENTS),
        (Method::PUT, "/v1/calendar/calendars"),
        (Method::PATCH, "/v1/calendar/event-types"),
    ] {
        let resp = send(app.req(method.clone(), path)).await;
        assert_eq!(resp.status, 405, "{method} {path}: {}", resp.describe());
        assert_error(&resp, 405, "method_not_allowed");
    }
}

async fn a_well_formed_request_id_is_echoed_in_header_and_body(app: TestApp) {
    // On a success...
    let resp = send(
        app.req(Method::GET, EVENTS)
            .header("X-Request-Id", "req-abc123"),
    )
    .await;
    assert_list(&resp);
    assert_eq!(resp.request_id(), "req-abc123");
    assert_eq!(resp.body["requestId"], json!("req-abc123"));
    // ...on a 404...
    let resp = send(
        app.req(Method::GET, &format!("{EVENTS}/{}", unknown_id()))
            .header("X-Request-Id", "req-abc124"),
    )
    .await;
    assert_error(&resp, 404, "not_found");
    assert_eq!(resp.request_id(), "req-abc124");
    // ...on a 401 (before any key is known)...
    let resp = send(
        app.bare(Method::GET, EVENTS)
            .header("X-Request-Id", "req-abc125"),
    )
    .await;
    assert_error(&resp, 401, "unauthorized");
    assert_eq!(resp.request_id(), "req-abc125");
    // ...and on a 400 validation error.
    let resp = send(
        app.req(Method::POST, EVENTS)
            .header("X-Request-Id", "req-abc126")
            .json(&json!({})),
    )
    .await;
    assert_error(&resp, 400, "validation_error");
    assert_eq!(resp.request_id(), "req-abc126");
}

async fn a_malformed_request_id_is_replaced_by_a_generated_one(app: TestApp) {
    let too_long = "r".repeat(300);
    for sent in [too_long.as_str(), "req abc 123", "req\tabc"] {
        let resp = send(app.req(Method::GET, EVENTS).header("X-Request-Id", sent)).await;
        assert_list(&resp);
        let got = resp.request_id();
        assert_ne!(got, sent, "a malformed X-Request-Id must be replaced");
        assert!(
            !got.contains(char::is_whitespace) && got.len() <= 255,
            "generated id {got:?}"
        );
    }
}

async fn every_response_gets_its_own_request_id(app: TestApp) {
    let a = app.get(EVENTS).await;
    let b = app.get(EVENTS).await;
    assert_list(&a);
    assert_list(&b);
    assert_ne!(
        a.request_id(),
        b.request_id(),
        "generated request ids must differ"
    );
    for resp in [
        app.get("/v1/nope").await,
        send(app.req(Method::DELETE, EVENTS)).await,
    ] {
        resp.request_id();
    }
}
