//! The test app: the real server bound to 127.0.0.1:0 on a fresh database, a reqwest client, and the
//! fixtures and assertions every resource module shares.
//!
//! Each trial gets its own database (a SQLite file in a temporary directory, or a PostgreSQL database
//! of its own that is dropped afterwards), so cases never see each other's rows. Fixtures go through
//! the HTTP API, like a client would; only organizations and keys are made with the admin functions,
//! because the HTTP API has no endpoint for them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use libtest_mimic::Failed;
use quando_api::auth::Scope;
use reqwest::{Method, RequestBuilder, header::HeaderMap};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

/// A case's body: it receives its own running app.
pub type CaseFn = fn(TestApp) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One test case, registered once per backend by `main`.
pub struct Case {
    pub name: &'static str,
    pub run: CaseFn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How long one case may run before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one case on its own runtime: spawn the app, run the case, tear down, report.
pub fn run_case(backend: Backend, postgres_url: Option<String>, run: CaseFn) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the tokio runtime: {e}"))?;
    let result = rt.block_on(async move {
        let (app, teardown) = TestApp::spawn(backend, postgres_url.as_deref())
            .await
            .map_err(|e| Failed::from(format!("setting up the test app failed: {e}")))?;
        // The case runs in a task of its own so that a panic comes back as a JoinError and the
        // database is dropped all the same. The panic hook writes where it panicked into the slot.
        let slot = PanicSlot::default();
        let case = PANIC_LOCATION.scope(slot.clone(), tokio::time::timeout(CASE_TIMEOUT, run(app)));
        let outcome = tokio::spawn(case).await;
        teardown.run().await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Failed::from(format!("timed out after {CASE_TIMEOUT:?}"))),
            Err(e) if e.is_panic() => {
                let mut message = panic_message(e.into_panic());
                if let Some(at) = slot.lock().ok().and_then(|l| l.clone()) {
                    message.push_str(&format!("\n  at {at}"));
                }
                Err(Failed::from(message))
            }
            Err(e) => Err(Failed::from(format!("the case task failed: {e}"))),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

type PanicSlot = std::sync::Arc<std::sync::Mutex<Option<String>>>;

tokio::task_local! {
    /// Where the running case panicked, filled by the hook installed in `install_panic_hook`.
    static PANIC_LOCATION: PanicSlot;
}

/// A panic inside a case is reported once, in the trial's failure message with its location,
/// instead of a backtrace on stderr; panics anywhere else keep the default report.
pub fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let in_case = PANIC_LOCATION
            .try_with(|slot| {
                if let Ok(mut slot) = slot.lock() {
                    *slot = location.clone();
                }
            })
            .is_ok();
        if !in_case {
            default_hook(info);
        }
    }));
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the case panicked (non-string payload)".to_owned()
    }
}

/// What has to be undone after a case, filled in as set-up gets further.
#[derive(Default)]
pub struct Teardown {
    server: Option<tokio::task::JoinHandle<()>>,
    db: Option<DatabaseConnection>,
    postgres: Option<(DatabaseConnection, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Teardown {
    pub async fn run(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        if let Some(db) = self.db.take() {
            let _ = db.close().await;
        }
        if let Some((admin, name)) = self.postgres.take() {
            if let Err(e) = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
            {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
            let _ = admin.close().await;
        }
        // The temporary directory (SQLite file) goes when self is dropped.
    }
}

/// A running server on a fresh database, with a first organization and its full-scope key.
#[derive(Clone)]
pub struct TestApp {
    pub base_url: String,
    /// `http://` and the address of the server's own `/metrics` listener (`metrics_bind`).
    pub metrics_url: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub org_id: Uuid,
    /// The first organization's key, scopes calendar:read and calendar:write.
    pub key: String,
}

impl TestApp {
    async fn spawn(
        backend: Backend,
        postgres_url: Option<&str>,
    ) -> Result<(TestApp, Teardown), String> {
        let mut teardown = Teardown::default();
        match Self::try_spawn(backend, postgres_url, &mut teardown).await {
            Ok(app) => Ok((app, teardown)),
            Err(e) => {
                teardown.run().await;
                Err(e)
            }
        }
    }

    async fn try_spawn(
        backend: Backend,
        postgres_url: Option<&str>,
        teardown: &mut Teardown,
    ) -> Result<TestApp, String> {
        let database_url = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
                let url = format!("sqlite://{}/quando.db?mode=rwc", dir.path().display());
                teardown._dir = Some(dir);
                url
            }
            Backend::Postgres => {
                let admin_url = postgres_url.ok_or("QUANDO_TEST_POSTGRES_URL is not set")?;
                let name = format!("quando_t_{}", Uuid::now_v7().simple());
                let admin = Database::connect(admin_url)
                    .await
                    .map_err(|e| format!("connect to {admin_url}: {e}"))?;
                let created = admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await;
                teardown.postgres = Some((admin, name.clone()));
                created.map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
                let mut url =
                    reqwest::Url::parse(admin_url).map_err(|e| format!("bad postgres url: {e}"))?;
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
        };

        let db = quando_api::db::connect(&database_url)
            .await
            .map_err(|e| format!("db::connect({database_url}): {e}"))?;
        teardown.db = Some(db.clone());
        quando_api::db::migrate(&db)
            .await
            .map_err(|e| format!("db::migrate: {e}"))?;

        let config = quando_api::config::Config {
            database_url: database_url.clone(),
            bind: "127.0.0.1:0".into(),
            metrics_bind: Some("127.0.0.1:0".into()),
            // Webhook tests deliver to a receiver on loopback.
            webhook_allow_private: true,
            ..quando_api::config::Config::default()
        };
        // The one way the server starts (`quando serve` runs the same), with its accept loop.
        let application = quando_api::app::Application::build_with(db.clone(), config)
            .await
            .map_err(|e| format!("Application::build_with: {e}"))?;
        let addr = application
            .local_addr()
            .map_err(|e| format!("the listener has no socket address: {e}"))?;
        let metrics_addr = application
            .metrics_addr()
            .ok_or("the metrics listener has no socket address")?;
        teardown.server = Some(tokio::spawn(async move {
            let _ = application.run_until(std::future::pending()).await;
        }));

        let org = quando_api::admin::create_organization(&db, "Studio Dentistico Rossi")
            .await
            .map_err(|e| format!("admin::create_organization: {e}"))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("reqwest client: {e}"))?;
        Ok(TestApp {
            base_url: format!("http://{addr}"),
            metrics_url: format!("http://{metrics_addr}"),
            client,
            db,
            org_id: org.organization.id,
            key: org.api_key.key,
        })
    }

    // ----- organizations and keys (admin functions: there is no HTTP endpoint for them) -----

    /// A second organization with its full-scope key.
    pub async fn new_org(&self, name: &str) -> (Uuid, String) {
        let org = quando_api::admin::create_organization(&self.db, name)
            .await
            .unwrap_or_else(|e| panic!("admin::create_organization({name}) failed: {e}"));
        (org.organization.id, org.api_key.key)
    }

    /// A new key of `org_id` with exactly these scopes.
    pub async fn key_with_scopes(&self, org_id: Uuid, scopes: &[Scope]) -> String {
        self.created_key_with_scopes(org_id, scopes).await.1
    }

    /// A new key of `org_id` with exactly these scopes: (key id, secret).
    pub async fn created_key_with_scopes(&self, org_id: Uuid, scopes: &[Scope]) -> (Uuid, String) {
        let key =
            quando_api::admin::create_key(&self.db, org_id, scopes, Some("integration test"), None)
                .await
                .unwrap_or_else(|e| panic!("admin::create_key failed: {e}"));
        (key.id, key.key)
    }

    // ----- requests -----

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request with no Authorization header.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request carrying `key` as a bearer token.
    pub fn req_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).bearer_auth(key)
    }

    /// A request carrying the first organization's key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_as(&self.key, method, path)
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.req(Method::GET, path)).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Resp {
        send(self.req_as(key, Method::GET, path)).await
    }

    /// GET with query parameters, encoded by reqwest (so `+02:00` arrives intact).
    pub async fn get_query(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        send(self.req(Method::GET, path).query(query)).await
    }

    pub async fn get_query_as(&self, key: &str, path: &str, query: &[(&str, &str)]) -> Resp {
        send(self.req_as(key, Method::GET, path).query(query)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        send(self.req(Method::POST, path).json(body)).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Resp {
        send(self.req_as(key, Method::POST, path).json(body)).await
    }

    pub async fn req_put(&self, path: &str, body: &Value) -> Resp {
        send(self.req(Method::PUT, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        send(self.req(Method::PATCH, path).json(body)).await
    }

    pub async fn patch_as(&self, key: &str, path: &str, body: &Value) -> Resp {
        send(self.req_as(key, Method::PATCH, path).json(body)).await
    }

    /// POST /v1/calendar/events with the first organization's key.
    pub async fn post_event(&self, body: &Value) -> Resp {
        self.post("/v1/calendar/events", body).await
    }

    /// GET /v1/calendar/events with these query parameters and the first organization's key.
    pub async fn list_events(&self, query: &[(&str, &str)]) -> Resp {
        self.get_query("/v1/calendar/events", query).await
    }

    // ----- fixtures, through the HTTP API -----

    /// Creates a calendar (default body: a Rome calendar) and returns its `data`.
    pub async fn create_calendar(&self, key: &str, body: Option<Value>) -> Value {
        let body = body.unwrap_or_else(|| {
            json!({"name": "Dott.ssa Bianchi", "timezone": "Europe/Rome", "description": "Studio 1"})
        });
        let resp = self.post_as(key, "/v1/calendar/calendars", &body).await;
        assert_ok(&resp, 201)
    }

    /// Creates an event type of `duration_minutes` on `calendar_id` (None = any calendar).
    pub async fn create_event_type(
        &self,
        key: &str,
        calendar_id: Option<&str>,
        duration_minutes: i64,
    ) -> Value {
        self.create_event_type_with(
            key,
            json!({"calendarId": calendar_id, "name": "Visita di controllo", "durationMinutes": duration_minutes}),
        )
        .await
    }

    /// Creates an event type from a full body and returns its `data`.
    pub async fn create_event_type_with(&self, key: &str, body: Value) -> Value {
        let resp = self.post_as(key, "/v1/calendar/event-types", &body).await;
        assert_ok(&resp, 201)
    }

    /// Books [start, end) and returns the event's `data`.
    pub async fn create_event(
        &self,
        key: &str,
        calendar_id: &str,
        event_type_id: &str,
        start: &str,
        end: &str,
    ) -> Value {
        self.create_event_with(key, event_body(calendar_id, event_type_id, start, end))
            .await
    }

    /// Books from a full body and returns the event's `data`.
    pub async fn create_event_with(&self, key: &str, body: Value) -> Value {
        let resp = self.post_as(key, "/v1/calendar/events", &body).await;
        assert_ok(&resp, 201)
    }

    /// A calendar and a 30-minute event type on it, with the first organization's key: (calendar id, event type id).
    pub async fn calendar_and_event_type(&self) -> (String, String) {
        let calendar = self.create_calendar(&self.key, None).await;
        let calendar_id = id_of(&calendar);
        let event_type = self
            .create_event_type(&self.key, Some(&calendar_id), 30)
            .await;
        (calendar_id, id_of(&event_type))
    }

    /// A publishable key (`qnd_pub_...`) of the first organization, bound to these event types
    /// and browser origins, with this budget per client address (None = the server default).
    pub async fn publishable_key(
        &self,
        event_types: &[&str],
        origins: &[&str],
        rate_limit: Option<u32>,
    ) -> String {
        let event_types: Vec<Uuid> = event_types
            .iter()
            .map(|id| Uuid::parse_str(id).unwrap_or_else(|e| panic!("bad event type id {id}: {e}")))
            .collect();
        let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
        quando_api::admin::create_publishable_key(
            &self.db,
            self.org_id,
            &event_types,
            &origins,
            Some("integration test widget"),
            rate_limit,
        )
        .await
        .unwrap_or_else(|e| panic!("admin::create_publishable_key failed: {e}"))
        .key
    }
}

/// The smallest valid event body.
pub fn event_body(calendar_id: &str, event_type_id: &str, start: &str, end: &str) -> Value {
    json!({"calendarId": calendar_id, "eventTypeId": event_type_id, "startTime": start, "endTime": end})
}

/// `base` with every key of `extra` set on it (a `null` in `extra` sets null; see `without` to remove).
pub fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
    base
}

// ----- responses -----

/// A response read in full, so assertions can quote it.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Value::Null` when it is empty or not JSON.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// The X-Request-Id header; panics when it is missing.
    #[track_caller]
    pub fn request_id(&self) -> &str {
        match self.header("x-request-id") {
            Some(id) if !id.is_empty() => id,
            _ => panic!("response has no X-Request-Id header: {}", self.describe()),
        }
    }

    pub fn describe(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 1500 {
            text.truncate(1500);
            text.push_str("...");
        }
        format!(
            "HTTP {} (content-type {:?}) body: {}",
            self.status,
            self.content_type(),
            text
        )
    }
}

pub async fn send(request: RequestBuilder) -> Resp {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("reading the body failed: {e}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        body,
    }
}

// ----- assertions -----

/// Checks a success of `status` with a JSON body `{"data": ..., "requestId": <X-Request-Id>}` and returns `data`.
#[track_caller]
pub fn assert_ok(resp: &Resp, status: u16) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected HTTP {status}, got {}",
        resp.describe()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "expected a JSON body, got {}",
        resp.describe()
    );
    assert_request_id_matches(resp);
    assert!(
        resp.body.get("data").is_some(),
        "the body has no `data`: {}",
        resp.describe()
    );
    resp.body["data"].clone()
}

/// Checks a 200 list response and returns (data, pagination).
#[track_caller]
pub fn assert_list(resp: &Resp) -> (Vec<Value>, Value) {
    let data = assert_ok(resp, 200);
    let items = data
        .as_array()
        .unwrap_or_else(|| panic!("`data` of a list is not an array: {}", resp.describe()))
        .clone();
    let pagination = resp.body["pagination"].clone();
    assert!(
        pagination.is_object(),
        "a list has no `pagination` object: {}",
        resp.describe()
    );
    (items, pagination)
}

/// Checks the pagination object exactly.
#[track_caller]
pub fn assert_pagination(pagination: &Value, page: u64, limit: u64, total: u64, total_pages: u64) {
    assert_eq!(
        pagination,
        &json!({"page": page, "limit": limit, "total": total, "totalPages": total_pages}),
        "pagination differs"
    );
}

/// The body's requestId equals the X-Request-Id header.
#[track_caller]
pub fn assert_request_id_matches(resp: &Resp) {
    let header = resp.request_id().to_owned();
    assert_eq!(
        resp.body["requestId"].as_str(),
        Some(header.as_str()),
        "body requestId differs from the X-Request-Id header {header:?}: {}",
        resp.describe()
    );
}

/// Checks an error response: status, JSON content type, the envelope
/// `{"error":{"code","message","details"},"requestId"}` with requestId equal to X-Request-Id.
/// Returns the `error` object.
#[track_caller]
pub fn assert_error(resp: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected HTTP {status} {code}, got {}",
        resp.describe()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "an error body must be application/json: {}",
        resp.describe()
    );
    let body = resp
        .body
        .as_object()
        .unwrap_or_else(|| panic!("the error body is not a JSON object: {}", resp.describe()));
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["error", "requestId"],
        "the envelope has other keys: {}",
        resp.describe()
    );
    let error = &resp.body["error"];
    assert_eq!(
        error["code"].as_str(),
        Some(code),
        "wrong error code: {}",
        resp.describe()
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "the error has no message: {}",
        resp.describe()
    );
    assert!(
        error
            .get("details")
            .is_some_and(|d| d.is_null() || d.is_object()),
        "error.details must be present, null or an object: {}",
        resp.describe()
    );
    assert_request_id_matches(resp);
    error.clone()
}

/// A 400 validation_error whose details.fields names every one of `fields`. Returns the error.
#[track_caller]
/// Whether a request path belongs to the Talkover dialect (its own envelopes).
pub fn is_talkover(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// `assert_error` in the dialect of `path`: on `/api/v1` the Talkover envelope
/// (`{"success": false, "error": {...}, "requestId"}`) with the Talkover code of `code`.
#[track_caller]
pub fn assert_error_at(resp: &Resp, path: &str, status: u16, code: &str) -> Value {
    if !is_talkover(path) {
        return assert_error(resp, status, code);
    }
    assert_eq!(
        resp.status,
        status,
        "expected HTTP {status} {code}, got {}",
        resp.describe()
    );
    let mut keys: Vec<&str> = resp
        .body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["error", "requestId", "success"],
        "{}",
        resp.describe()
    );
    assert_eq!(resp.body["success"], false, "{}", resp.describe());
    assert_eq!(
        resp.body["error"]["code"].as_str(),
        Some(quando_api::dialects::talkover::errors::code_of(code)),
        "wrong error code: {}",
        resp.describe()
    );
    assert_eq!(
        resp.body["requestId"].as_str(),
        resp.header("x-request-id"),
        "{}",
        resp.describe()
    );
    resp.body["error"].clone()
}

/// A Talkover success: the status, `"success": true` and an `X-Request-Id`; its `data`.
#[track_caller]
pub fn talkover_ok(resp: &Resp, status: u16) -> Value {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert_eq!(resp.body["success"], true, "{}", resp.describe());
    assert!(resp.header("x-request-id").is_some(), "{}", resp.describe());
    resp.body["data"].clone()
}

/// A Talkover error: the status, JSON, `"success": false`, the upper-snake `code`, a message,
/// `requestId` equal to the `X-Request-Id` header, and no `data`; its `error`.
#[track_caller]
pub fn talkover_error(resp: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("application/json"),
        "{}",
        resp.describe()
    );
    assert_eq!(resp.body["success"], false, "{}", resp.describe());
    assert_eq!(resp.body["error"]["code"], code, "{}", resp.describe());
    assert!(
        resp.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        resp.describe()
    );
    assert_eq!(
        resp.body["requestId"].as_str(),
        resp.header("x-request-id"),
        "{}",
        resp.describe()
    );
    assert!(resp.body.get("data").is_none(), "{}", resp.describe());
    resp.body["error"].clone()
}

/// `assert_ok` in the dialect of `path`: on `/api/v1`, `{"success": true, "data": ...}`.
#[track_caller]
pub fn assert_ok_at(resp: &Resp, path: &str, status: u16) -> Value {
    if !is_talkover(path) {
        return assert_ok(resp, status);
    }
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert_eq!(resp.body["success"], true, "{}", resp.describe());
    resp.body["data"].clone()
}

pub fn assert_validation(resp: &Resp, fields: &[&str]) -> Value {
    let error = assert_error(resp, 400, "validation_error");
    assert_fields(&error, fields);
    error
}

/// details.fields names each of `fields` (others may be named too), each with a message.
#[track_caller]
pub fn assert_fields(error: &Value, fields: &[&str]) {
    let named = field_names(error);
    for field in fields {
        assert!(
            named.iter().any(|n| n == field),
            "details.fields should name {field:?}; it names {named:?} in {error}"
        );
    }
    for entry in error["details"]["fields"].as_array().into_iter().flatten() {
        assert!(
            entry["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "a details.fields entry has no message: {error}"
        );
    }
}

/// The field names listed in details.fields.
#[track_caller]
pub fn field_names(error: &Value) -> Vec<String> {
    let fields = error["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("error.details.fields is not an array: {error}"));
    fields
        .iter()
        .map(|f| {
            f["field"]
                .as_str()
                .unwrap_or_else(|| panic!("a details.fields entry has no `field` string: {error}"))
                .to_owned()
        })
        .collect()
}

/// The error's own message and the messages of `field`, lower-cased, to look for words in.
pub fn messages_about(error: &Value, field: &str) -> String {
    let mut text = error["message"].as_str().unwrap_or("").to_lowercase();
    for entry in error["details"]["fields"].as_array().into_iter().flatten() {
        if entry["field"].as_str() == Some(field) {
            text.push_str(" | ");
            text.push_str(&entry["message"].as_str().unwrap_or("").to_lowercase());
        }
    }
    text
}

/// A UTC timestamp with `Z` and whole seconds: `YYYY-MM-DDTHH:MM:SSZ`.
#[track_caller]
pub fn assert_utc_seconds(value: &Value, what: &str) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let ok =
        s.len() == 20 && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok();
    assert!(
        ok,
        "{what} should be UTC with Z and seconds precision (YYYY-MM-DDTHH:MM:SSZ), got {s:?}"
    );
}

/// A UTC timestamp within a few minutes of now.
#[track_caller]
pub fn assert_recent(value: &Value, what: &str) {
    assert_utc_seconds(value, what);
    let t = chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{what} {value} is not RFC 3339: {e}"));
    let age = chrono::Utc::now()
        .signed_duration_since(t)
        .num_seconds()
        .abs();
    assert!(age < 300, "{what} {value} is not close to now");
}

/// A UUID v7 string.
#[track_caller]
pub fn assert_uuid_v7(value: &Value, what: &str) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let id = Uuid::parse_str(s).unwrap_or_else(|e| panic!("{what} {s:?} is not a UUID: {e}"));
    assert_eq!(id.get_version_num(), 7, "{what} {s:?} is not a UUID v7");
}

/// The object has every one of `keys` (absent optional fields must be null, not missing).
#[track_caller]
pub fn assert_has_keys(value: &Value, keys: &[&str], what: &str) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !obj.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {value}");
}

pub const EVENT_FIELDS: [&str; 27] = [
    "id",
    "calendarId",
    "eventTypeId",
    "startTime",
    "endTime",
    "timezone",
    "customerName",
    "customerPhone",
    "customerEmail",
    "notes",
    "title",
    "location",
    "status",
    "bookedVia",
    "createdAt",
    "updatedAt",
    "description",
    "type",
    "attendees",
    "ownerId",
    "ownerType",
    "createdBy",
    "metadata",
    "allDay",
    "startDate",
    "endDate",
    "transparency",
];

pub const CALENDAR_FIELDS: [&str; 6] = [
    "id",
    "name",
    "timezone",
    "description",
    "createdAt",
    "updatedAt",
];

pub const EVENT_TYPE_FIELDS: [&str; 11] = [
    "id",
    "calendarId",
    "name",
    "durationMinutes",
    "bufferBeforeMinutes",
    "bufferAfterMinutes",
    "minimumNoticeMinutes",
    "location",
    "active",
    "createdAt",
    "updatedAt",
];

/// The `id` of an object in a response.
#[track_caller]
pub fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no string id in {value}"))
        .to_owned()
}

/// The ids of a list's items, in order.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

/// A valid UUID that names nothing.
pub fn unknown_id() -> String {
    Uuid::now_v7().to_string()
}

/// `t` (RFC 3339) moved by `minutes`, written as UTC `YYYY-MM-DDTHH:MM:SSZ`.
#[track_caller]
pub fn plus_minutes(t: &str, minutes: i64) -> String {
    let t =
        chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("bad time {t:?}: {e}"));
    (t.with_timezone(&chrono::Utc) + chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A 409 `slot_unavailable` for an overlap, naming the event in the way.
#[track_caller]
pub fn assert_slot_conflict(resp: &Resp, conflicting: &Value) {
    let error = assert_error(resp, 409, "slot_unavailable");
    assert_eq!(
        error["details"]["reason"],
        json!("conflict"),
        "details.reason should be \"conflict\": {}",
        resp.describe()
    );
    assert_eq!(
        error["details"]["conflictingEventId"],
        conflicting["id"],
        "details.conflictingEventId should name the event in the way: {}",
        resp.describe()
    );
}
