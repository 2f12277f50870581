//! Service endpoints (health, readiness, the served spec, the docs page) and the drift test that
//! keeps the checked-in `openapi.yaml` equal to what the code generates.

use libtest_mimic::Failed;
use reqwest::Method;
use serde_json::Value;

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        healthz_is_200,
        readyz_is_200_when_the_database_is_reachable,
        readyz_is_503_naming_the_pending_migration_when_the_schema_is_behind_the_binary,
        readyz_is_503_when_the_schema_is_missing,
        openapi_json_is_the_spec_with_the_calendar_paths,
        openapi_json_names_its_operations,
        openapi_yaml_is_served,
        every_operation_declares_only_the_errors_its_method_and_inputs_can_produce,
        docs_is_an_html_page,
    ]
}

/// Registered once (not per backend): it needs no server.
pub fn openapi_yaml_matches_what_the_code_generates() -> Result<(), Failed> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let generated = quando_api::spec::spec_yaml();
    let checked_in = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read {path} ({e}): run `cargo run -p quando-api -- openapi > openapi.yaml`")
    })?;
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()) + 1);
        return Err(format!(
            "openapi.yaml is stale: run `cargo run -p quando-api -- openapi > openapi.yaml` (first difference at line {line})"
        )
        .into());
    }
    Ok(())
}

async fn healthz_is_200(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/healthz")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    resp.request_id();
}

async fn readyz_is_200_when_the_database_is_reachable(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/readyz")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    resp.request_id();
}

async fn readyz_is_503_naming_the_pending_migration_when_the_schema_is_behind_the_binary(
    app: TestApp,
) {
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = (SELECT max(version) FROM seaql_migrations)",
        )
        .await
        .expect("forget the newest migration");
    let resp = send(app.bare(Method::GET, "/readyz")).await;
    assert_eq!(resp.status, 503, "{}", resp.describe());
    assert_eq!(resp.body["status"], "unavailable", "{}", resp.describe());
    let reason = resp.body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("1 migration(s) pending"),
        "the reason says the schema is behind: {reason}"
    );
    resp.request_id();
}

async fn readyz_is_503_when_the_schema_is_missing(app: TestApp) {
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("DROP TABLE seaql_migrations")
        .await
        .expect("drop the migrations table");
    let resp = send(app.bare(Method::GET, "/readyz")).await;
    assert_eq!(resp.status, 503, "{}", resp.describe());
    let reason = resp.body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("schema"),
        "the reason names the schema: {reason}"
    );
}

async fn fetch_spec(app: &TestApp) -> Value {
    let resp = send(app.bare(Method::GET, "/openapi.json")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("application/json"),
        "{}",
        resp.describe()
    );
    assert!(
        resp.body.is_object(),
        "/openapi.json is not a JSON object: {}",
        resp.describe()
    );
    resp.body
}

async fn openapi_json_is_the_spec_with_the_calendar_paths(app: TestApp) {
    let spec = fetch_spec(&app).await;
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "`openapi` should be a 3.x version: {}",
        spec["openapi"]
    );
    let paths = spec["paths"].as_object().expect("spec has no paths");
    for path in [
        "/v1/calendar/events",
        "/v1/calendar/events/{id}",
        "/v1/calendar/calendars",
        "/v1/calendar/calendars/{id}",
        "/v1/calendar/event-types",
        "/v1/calendar/event-types/{id}",
    ] {
        assert!(
            paths.contains_key(path),
            "the spec lacks {path}; it has {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        paths["/v1/calendar/events"].get("get").is_some()
            && paths["/v1/calendar/events"].get("post").is_some()
    );
}

async fn openapi_json_names_its_operations(app: TestApp) {
    let spec = fetch_spec(&app).await;
    let events = &spec["paths"]["/v1/calendar/events"];
    assert_eq!(events["get"]["operationId"], "listEvents");
    assert_eq!(events["post"]["operationId"], "createEvent");
    for (path, item) in spec["paths"].as_object().expect("spec has no paths") {
        for (method, op) in item.as_object().into_iter().flatten() {
            assert!(
                op["operationId"].as_str().is_some_and(|id| !id.is_empty()),
                "{method} {path} has no operationId"
            );
        }
    }
}

/// The error statuses an operation declares follow from what it takes: a key (401, 403, 429,
/// and 500/503 like any operation on storage), a JSON body (400, 413, 415), an
/// `Idempotency-Key` (409 `idempotency_in_progress`, 422); nothing else can add a status but
/// 404 (a resource named by id) and 409 `slot_unavailable` on booking writes. So a GET never
/// declares 409, 413, 415 or 422, and the health endpoints declare none of the key's errors.
async fn every_operation_declares_only_the_errors_its_method_and_inputs_can_produce(app: TestApp) {
    use std::collections::BTreeSet;
    let spec = fetch_spec(&app).await;
    let mut walked = 0;
    for (path, item) in spec["paths"].as_object().expect("spec has no paths") {
        for (method, op) in item.as_object().into_iter().flatten() {
            let id = op["operationId"].as_str().unwrap_or("?");
            let declared: BTreeSet<u16> = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(status, _)| status.parse().ok())
                .filter(|status| *status >= 400)
                .collect();
            let secured = op["security"].as_array().is_some_and(|r| !r.is_empty());
            let has_body = op["requestBody"].is_object();
            let idempotent = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "Idempotency-Key");
            let mut allowed: BTreeSet<u16> = BTreeSet::new();
            let mut required: BTreeSet<u16> = BTreeSet::new();
            if secured {
                required.extend([401, 403, 429, 500, 503]);
                allowed.extend([400, 404]);
            } else {
                // Health and readiness: readiness says 503 when the database is not ready.
                allowed.insert(503);
            }
            if has_body {
                required.extend([400, 413, 415]);
                allowed.insert(409);
            }
            if idempotent {
                required.extend([409, 422]);
            }
            if path.starts_with("/api/v1/") && path.ends_with("/providers") {
                // Talkover's external calendar providers: not supported.
                required.insert(501);
            }
            allowed.extend(&required);
            match method.as_str() {
                "get" => assert!(
                    !has_body && !idempotent,
                    "{id}: a GET takes no body and no Idempotency-Key"
                ),
                "patch" => assert!(!idempotent, "{id}: Idempotency-Key is for POST only"),
                _ => {}
            }
            let undeclared: Vec<_> = required.difference(&declared).collect();
            let unexpected: Vec<_> = declared.difference(&allowed).collect();
            assert!(
                undeclared.is_empty() && unexpected.is_empty(),
                "{id} ({method} {path}) declares {declared:?}: missing {undeclared:?}, \
                 cannot produce {unexpected:?}"
            );
            for status in &declared {
                let content = &op["responses"][status.to_string()]["content"];
                let schema = content
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map(|m| &m["schema"]);
                let envelope = if path.starts_with("/api/v1/") {
                    "#/components/schemas/TalkoverError"
                } else {
                    "#/components/schemas/ErrorEnvelope"
                };
                if secured || *status != 503 {
                    assert_eq!(
                        schema.and_then(|s| s["$ref"].as_str()),
                        Some(envelope),
                        "{id}: {status} must be declared with the error envelope"
                    );
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 16, "only {walked} operations in the spec");
    let get_calendar = &spec["paths"]["/v1/calendar/calendars/{id}"]["get"]["responses"];
    for status in ["409", "413", "415", "422"] {
        assert!(
            get_calendar[status].is_null(),
            "getCalendar advertises {status}: {get_calendar}"
        );
    }
}

async fn openapi_yaml_is_served(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/openapi.yaml")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.text.contains("openapi:"),
        "/openapi.yaml does not look like YAML: {}",
        resp.describe()
    );
    assert!(resp.text.contains("/v1/calendar/events"));
}

async fn docs_is_an_html_page(app: TestApp) {
    let resp = send(app.bare(Method::GET, "/docs")).await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("text/html"),
        "{}",
        resp.describe()
    );
}
