//! The MCP server at `/mcp`, spoken as a voice agent's client speaks it: JSON-RPC 2.0 over HTTP
//! POST (`initialize`, `notifications/initialized`, `tools/list`, `tools/call`) with a bearer key
//! and the session id the server hands out. Each tool result is checked twice: what the tool
//! answered (`structuredContent`, the sentence to read aloud, `isError`) and what the REST API
//! then shows (`GET /v1/calendar/events/{id}`), so the tools are seen to follow the same booking
//! rules as every other dialect. Both backends.
//!
//! Dates come from the clock so the cases never age: a weekday at least 14 days ahead. The Rome
//! office works Monday to Friday 09:00-17:00 local with 30-minute visits; its UTC offset on a day
//! follows the EU rule (summer time from the last Sunday of March to the last Sunday of October)
//! and is computed here, not read back from the server, and so are the spoken dates.
//!
//! The transport may answer a POST with one JSON body or with an SSE stream carrying the JSON-RPC
//! message; the session helper reads both, so that every tool is tested whichever it is, and one
//! case holds the server to the one JSON body its JSON-response mode promises.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use futures::future::join_all;
use quando_api::auth::Scope;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        // the protocol
        initialize_answers_quandos_server_info_and_a_session_and_tools_list_names_the_seven_tools_with_schemas,
        a_session_answers_each_request_with_exactly_its_one_message_and_delete_closes_it_with_204,
        no_key_or_an_unknown_key_is_401_in_the_json_envelope_and_a_publishable_key_is_403,
        // a call, start to end
        a_whole_call_finds_books_finds_by_phone_reschedules_and_cancels_as_the_rest_api_shows,
        slots_are_spoken_as_weekday_day_month_and_local_clock_in_the_requested_timezone,
        // booking once, and refusals an agent can act on
        a_retried_book_appointment_with_the_same_request_id_books_once_and_other_arguments_name_request_id,
        eight_simultaneous_book_appointment_calls_with_one_request_id_make_one_event,
        booking_a_taken_slot_is_a_tool_error_slot_unavailable_conflict_with_spoken_next_slots,
        a_closed_day_has_no_slots_a_reason_and_the_next_days_with_free_slots_monday_first,
        a_read_only_key_lists_services_and_slots_but_writing_tools_are_insufficient_scope,
        bad_arguments_are_tool_errors_naming_the_field,
        // holds, isolation, teams
        hold_slot_then_book_appointment_with_its_hold_id_books_the_held_slot,
        another_organizations_event_type_is_not_found_by_any_tool,
        a_round_robin_team_type_is_listed_with_its_hosts_and_booked_without_a_calendar_id,
    ]
}

const MCP: &str = "/mcp";
const PROTOCOL: &str = "2025-06-18";
const EVENTS: &str = "/v1/calendar/events";

const TOOLS: [&str; 7] = [
    "list_services",
    "find_available_slots",
    "hold_slot",
    "book_appointment",
    "find_appointments",
    "reschedule_appointment",
    "cancel_appointment",
];

/// How long one MCP answer may take before the case reports it hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

// ----- time -----

/// The first `weekday` at least 14 days from today, far from every notice rule.
fn ahead(weekday: Weekday) -> NaiveDate {
    let mut d = Utc::now().date_naive() + Days::new(14);
    while d.weekday() != weekday {
        d = d + Days::new(1);
    }
    d
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let mut d = next_month.expect("a first of the month") - Days::new(1);
    while d.weekday() != Weekday::Sun {
        d = d - Days::new(1);
    }
    d
}

/// Rome's UTC offset in hours during the working day of `date` (the clocks change at night).
fn rome_offset(date: NaiveDate) -> i64 {
    let summer = last_sunday(date.year(), 3) <= date && date < last_sunday(date.year(), 10);
    if summer { 2 } else { 1 }
}

/// `hh_mm` Rome time on `date`, as UTC: `YYYY-MM-DDTHH:MM:SSZ`.
fn rome(date: NaiveDate, hh_mm: &str) -> String {
    let clock = NaiveTime::parse_from_str(hh_mm, "%H:%M")
        .unwrap_or_else(|e| panic!("bad HH:MM {hh_mm:?}: {e}"));
    (date.and_time(clock) - chrono::Duration::hours(rome_offset(date)))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `hh_mm` Rome time on `date` with its offset: `YYYY-MM-DDTHH:MM:00+02:00`.
fn rome_local(date: NaiveDate, hh_mm: &str) -> String {
    format!("{date}T{hh_mm}:00+0{}:00", rome_offset(date))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A day as an agent says it: "Tuesday 14 April".
fn said_day(date: NaiveDate) -> String {
    format!(
        "{} {} {}",
        WEEKDAYS[date.weekday().num_days_from_monday() as usize],
        date.day(),
        MONTHS[date.month0() as usize]
    )
}

/// A time as an agent says it: "Tuesday 14 April at 09:30".
fn said(date: NaiveDate, hh_mm: &str) -> String {
    format!("{} at {hh_mm}", said_day(date))
}

// ----- the transport -----

/// One answer of `/mcp`: the HTTP status and headers, what was read of the body, and the
/// JSON-RPC message in it (from a JSON body or from the SSE stream), `Null` when there is none.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    message: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn describe(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 2000 {
            let cut = (0..=2000)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push_str("...");
        }
        format!(
            "HTTP {} (content-type {:?}) body: {text}",
            self.status,
            self.content_type()
        )
    }
}

/// The request a client sends to `/mcp`: the headers the transport requires, a bearer key when
/// given, and the session's headers when there is one.
fn mcp_request(
    app: &TestApp,
    key: Option<&str>,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = app
        .bare(Method::POST, MCP)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(session) = session {
        request = request
            .header("Mcp-Session-Id", session)
            .header("MCP-Protocol-Version", PROTOCOL);
    }
    request
}

/// The JSON-RPC answer in the complete events of an SSE stream read so far: the first event
/// whose data is a message with a `result` or an `error`.
fn sse_answer(text: &str) -> Option<Value> {
    let text = text.replace("\r\n", "\n");
    let mut events: Vec<&str> = text.split("\n\n").collect();
    // The piece after the last blank line is an event still arriving.
    events.pop();
    events.into_iter().find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let message: Value = serde_json::from_str(&data.join("\n")).ok()?;
        (message.get("result").is_some() || message.get("error").is_some()).then_some(message)
    })
}

/// POSTs `body` to `/mcp` and reads the answer: a JSON body in full, or an SSE stream up to the
/// event that answers (the stream may stay open after it).
async fn post_mcp(app: &TestApp, key: Option<&str>, session: Option<&str>, body: &Value) -> Reply {
    let mut response = mcp_request(app, key, session, body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /mcp {body} failed: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut bytes: Vec<u8> = Vec::new();
    let mut message = Value::Null;
    let read = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .unwrap_or_else(|e| panic!("reading the answer to {body} failed: {e}"))
        {
            bytes.extend_from_slice(&chunk);
            if sse && let Some(answer) = sse_answer(&String::from_utf8_lossy(&bytes)) {
                message = answer;
                return;
            }
        }
    };
    if tokio::time::timeout(ANSWER_TIMEOUT, read).await.is_err() {
        panic!(
            "no answer to {body} within {ANSWER_TIMEOUT:?}; read so far: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !sse {
        message = serde_json::from_str(&text).unwrap_or(Value::Null);
    }
    Reply {
        status,
        headers,
        text,
        message,
    }
}

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}
        }
    })
}

/// An MCP session of one key: its id and the next JSON-RPC request id.
struct Mcp {
    app: TestApp,
    key: String,
    session: String,
    /// What `initialize` answered (its `result`).
    initialized: Value,
    next_id: AtomicU64,
}

impl Mcp {
    /// `initialize`, then `notifications/initialized`: a session ready for tools.
    async fn open(app: &TestApp, key: &str) -> Mcp {
        let reply = post_mcp(app, Some(key), None, &initialize_body()).await;
        assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
        assert_eq!(
            reply.message["id"],
            json!(1),
            "initialize answers its id: {}",
            reply.describe()
        );
        let initialized = reply.message["result"].clone();
        assert!(
            initialized.is_object(),
            "initialize answers a result: {}",
            reply.describe()
        );
        let session = reply
            .header("mcp-session-id")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "initialize answers an Mcp-Session-Id header: {}",
                    reply.describe()
                )
            })
            .to_owned();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let noted = post_mcp(app, Some(key), Some(&session), &note).await;
        assert_eq!(
            noted.status,
            202,
            "notifications/initialized is accepted: {}",
            noted.describe()
        );
        Mcp {
            app: app.clone(),
            key: key.to_owned(),
            session,
            initialized,
            next_id: AtomicU64::new(2),
        }
    }

    /// A JSON-RPC request in this session, answered 200 with a `result` to its id: the reply.
    async fn request(&self, method: &str, params: Value) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = post_mcp(&self.app, Some(&self.key), Some(&self.session), &body).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.describe());
        assert_eq!(
            reply.message["jsonrpc"],
            json!("2.0"),
            "{method}: {}",
            reply.describe()
        );
        assert_eq!(
            reply.message["id"],
            json!(id),
            "{method} answers its own id: {}",
            reply.describe()
        );
        assert!(
            reply.message.get("error").is_none() && reply.message["result"].is_object(),
            "{method} answers a result, not a protocol error: {}",
            reply.describe()
        );
        reply
    }

    /// `tools/call`: the tool result, checked for shape (a text, structured content, `isError`).
    async fn call(&self, name: &str, args: Value) -> Value {
        let reply = self
            .request("tools/call", json!({"name": name, "arguments": args}))
            .await;
        let result = reply.message["result"].clone();
        assert!(
            text_of(&result).is_some_and(|t| !t.trim().is_empty()),
            "{name}: content[0] is a text to say: {result}"
        );
        assert!(
            result["structuredContent"].is_object(),
            "{name}: a structuredContent object: {result}"
        );
        assert!(
            result.get("isError").is_none_or(Value::is_boolean),
            "{name}: isError is a boolean: {result}"
        );
        result
    }

    /// A tool call that succeeds: its `structuredContent`.
    async fn ok(&self, name: &str, args: Value) -> Value {
        let result = self.call(name, args).await;
        assert!(!is_error(&result), "{name} should succeed: {result}");
        result["structuredContent"].clone()
    }

    /// A tool call that is a tool error `code`: its `structuredContent` (with the text as said).
    async fn fails(&self, name: &str, args: Value, code: &str) -> Value {
        let result = self.call(name, args).await;
        assert_tool_error(&result, code);
        result["structuredContent"].clone()
    }
}

fn text_of(result: &Value) -> Option<&str> {
    assert_eq!(
        result["content"][0]["type"],
        json!("text"),
        "content[0] is text: {result}"
    );
    result["content"][0]["text"].as_str()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

/// `isError: true`, `structuredContent.error == code`, and a message that is also the text.
#[track_caller]
fn assert_tool_error(result: &Value, code: &str) {
    assert!(is_error(result), "expected a tool error {code}: {result}");
    let structured = &result["structuredContent"];
    assert_eq!(
        structured["error"],
        json!(code),
        "structuredContent.error: {result}"
    );
    assert!(
        structured["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "the error has a message: {result}"
    );
    assert_eq!(
        text_of(result),
        structured["message"].as_str(),
        "the text says the message: {result}"
    );
}

/// An `invalid_arguments` tool error whose first field is `field`.
#[track_caller]
fn assert_names(result: &Value, field: &str) {
    assert_tool_error(result, "invalid_arguments");
    let fields = &result["structuredContent"]["fields"];
    assert_eq!(
        fields[0]["field"],
        json!(field),
        "fields[0].field names {field}: {result}"
    );
    assert!(
        fields[0]["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "the field has a message: {result}"
    );
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {value}"))
}

// ----- fixtures -----

/// Monday to Friday, 09:00-17:00.
fn weekdays_nine_to_five() -> Value {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    Value::Array(
        days.iter()
            .map(|d| json!({"day": d, "start": "09:00", "end": "17:00"}))
            .collect(),
    )
}

/// The Rome office (Europe/Rome, Monday to Friday 09:00-17:00) and a 30-minute visit on it, made
/// with `key`: (calendar id, event type id).
async fn rome_office(app: &TestApp, key: &str) -> (String, String) {
    let calendar = app
        .create_calendar(
            key,
            Some(json!({
                "name": "Studio Rossi",
                "timezone": "Europe/Rome",
                "workingHours": weekdays_nine_to_five()
            })),
        )
        .await;
    let calendar_id = id_of(&calendar);
    let event_type = app
        .create_event_type_with(
            key,
            json!({"calendarId": calendar_id, "name": "Visita di controllo", "durationMinutes": 30}),
        )
        .await;
    (calendar_id, id_of(&event_type))
}

fn request_id() -> String {
    format!("call-{}", Uuid::now_v7())
}

async fn read_event(app: &TestApp, id: &str) -> Value {
    assert_ok(&app.get(&format!("{EVENTS}/{id}")).await, 200)
}

/// Every event on `calendar_id`, cancelled ones too.
async fn events_on(app: &TestApp, key: &str, calendar_id: &str) -> Vec<Value> {
    let resp = app
        .get_query_as(
            key,
            EVENTS,
            &[("calendarId", calendar_id), ("limit", "100")],
        )
        .await;
    assert_list(&resp).0
}

// ----- the protocol -----

async fn initialize_answers_quandos_server_info_and_a_session_and_tools_list_names_the_seven_tools_with_schemas(
    app: TestApp,
) {
    let mcp = Mcp::open(&app, &app.key).await;
    let init = &mcp.initialized;
    assert_eq!(init["serverInfo"]["name"], json!("quando"), "{init}");
    assert!(
        init["serverInfo"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "serverInfo has a version: {init}"
    );
    assert!(
        init["capabilities"]["tools"].is_object(),
        "the server offers tools: {init}"
    );
    assert_eq!(
        init["protocolVersion"],
        json!(PROTOCOL),
        "the version asked for is agreed: {init}"
    );
    assert!(
        init["instructions"]
            .as_str()
            .is_some_and(|i| i.contains("book_appointment")),
        "the instructions tell the agent how a call goes: {init}"
    );

    let reply = mcp.request("tools/list", json!({})).await;
    let tools = reply.message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list answers tools: {}", reply.describe()))
        .clone();
    let mut names: Vec<&str> = tools.iter().map(|t| str_of(t, "name")).collect();
    names.sort_unstable();
    let mut expected = TOOLS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "exactly the seven tools");
    for tool in &tools {
        let name = str_of(tool, "name");
        assert!(
            tool["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{name} has a description: {tool}"
        );
        assert_eq!(
            tool["inputSchema"]["type"],
            json!("object"),
            "{name}'s inputSchema is an object schema: {tool}"
        );
        assert!(
            tool["outputSchema"].is_object(),
            "{name} has an outputSchema: {tool}"
        );
        assert_eq!(
            tool["outputSchema"]["type"],
            json!("object"),
            "{name}'s outputSchema is an object schema: {tool}"
        );
    }
    // The arguments are camelCase, and the ones a booking cannot do without are required.
    let book = tools
        .iter()
        .find(|t| t["name"] == json!("book_appointment"))
        .unwrap_or_else(|| panic!("book_appointment is listed"));
    let properties = book["inputSchema"]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("book_appointment's inputSchema has properties: {book}"));
    for field in [
        "eventTypeId",
        "startTime",
        "calendarId",
        "holdId",
        "customerName",
        "customerPhone",
        "customerEmail",
        "requestId",
    ] {
        assert!(
            properties.contains_key(field),
            "book_appointment takes {field}: {book}"
        );
    }
    let required: Vec<&str> = book["inputSchema"]["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for field in ["eventTypeId", "startTime", "customerName", "requestId"] {
        assert!(
            required.contains(&field),
            "book_appointment requires {field}: {book}"
        );
    }
    let slots = tools
        .iter()
        .find(|t| t["name"] == json!("find_available_slots"))
        .unwrap_or_else(|| panic!("find_available_slots is listed"));
    assert!(
        slots["outputSchema"]["properties"]["slots"].is_object(),
        "find_available_slots's outputSchema describes slots: {slots}"
    );
}

async fn a_session_answers_each_request_with_exactly_its_one_message_and_delete_closes_it_with_204(
    app: TestApp,
) {
    // Sessions keep rmcp's session mode: each POST answers a short SSE stream (the transport
    // allows JSON or SSE); the session-less revision's JSON answers are the Python SDK check's.
    let init = post_mcp(&app, Some(&app.key), None, &initialize_body()).await;
    assert_eq!(init.status, 200, "initialize: {}", init.describe());
    let session = init.header("mcp-session-id").unwrap_or("").to_owned();
    assert!(!session.is_empty(), "{}", init.describe());
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let noted = post_mcp(&app, Some(&app.key), Some(&session), &note).await;
    assert_eq!(noted.status, 202, "{}", noted.describe());
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let listed = post_mcp(&app, Some(&app.key), Some(&session), &list).await;
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "list_services", "arguments": {}}});
    let called = post_mcp(&app, Some(&app.key), Some(&session), &call).await;
    for (what, reply, id) in [
        ("initialize", &init, 1),
        ("tools/list", &listed, 2),
        ("tools/call", &called, 3),
    ] {
        assert_eq!(reply.status, 200, "{what}: {}", reply.describe());
        let messages: Vec<Value> = if reply.content_type().starts_with("application/json") {
            vec![serde_json::from_str(&reply.text).unwrap_or(Value::Null)]
        } else {
            reply
                .text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| serde_json::from_str(d).unwrap_or(Value::Null))
                .collect()
        };
        assert_eq!(
            messages.len(),
            1,
            "{what}: exactly one JSON-RPC message: {}",
            reply.describe()
        );
        assert_eq!(messages[0]["id"], json!(id), "{what}: {}", reply.describe());
        assert!(
            messages[0]["result"].is_object(),
            "{what}: {}",
            reply.describe()
        );
    }
    let closed = send(
        app.req_as(&app.key, Method::DELETE, "/mcp")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18"),
    )
    .await;
    assert_eq!(
        closed.status,
        204,
        "closing a session: {}",
        closed.describe()
    );
    let after = post_mcp(&app, Some(&app.key), Some(&session), &list).await;
    assert_eq!(
        after.status,
        404,
        "a closed session is gone: {}",
        after.describe()
    );
}

async fn no_key_or_an_unknown_key_is_401_in_the_json_envelope_and_a_publishable_key_is_403(
    app: TestApp,
) {
    let body = initialize_body();
    let none = send(mcp_request(&app, None, None, &body)).await;
    let error = assert_error(&none, 401, "unauthorized");
    assert!(
        messages_about(&error, "").contains("bearer"),
        "the 401 says how to authenticate: {}",
        none.describe()
    );

    let unknown = format!("qnd_live_{}", "x".repeat(40));
    let resp = send(mcp_request(&app, Some(&unknown), None, &body)).await;
    assert_error(&resp, 401, "unauthorized");

    // Even inside a session: the key is checked on every request, not only on initialize.
    let mcp = Mcp::open(&app, &app.key).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let resp = send(mcp_request(&app, Some(&unknown), Some(&mcp.session), &list)).await;
    assert_error(&resp, 401, "unauthorized");

    let (_, event_type_id) = rome_office(&app, &app.key).await;
    let publishable = app
        .publishable_key(&[&event_type_id], &["https://shop.example"], None)
        .await;
    let resp = send(
        mcp_request(&app, Some(&publishable), None, &body).header("Origin", "https://shop.example"),
    )
    .await;
    let error = assert_error(&resp, 403, "insufficient_scope");
    assert!(
        messages_about(&error, "").contains("publishable"),
        "the 403 says a publishable key cannot use /mcp: {}",
        resp.describe()
    );
}

// ----- a call, start to end -----

async fn a_whole_call_finds_books_finds_by_phone_reschedules_and_cancels_as_the_rest_api_shows(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Tue);
    let mcp = Mcp::open(&app, &app.key).await;

    // 1. The free slots of the day the caller wants.
    let found = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string()}),
        )
        .await;
    assert_eq!(found["timezone"], json!("Europe/Rome"), "{found}");
    let slots = found["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("slots is an array: {found}"))
        .clone();
    assert!(slots.len() >= 3, "the day has free slots: {found}");
    assert_eq!(slots[0]["startTime"], json!(rome(day, "09:00")), "{found}");
    assert_eq!(slots[0]["endTime"], json!(rome(day, "09:30")), "{found}");
    assert_eq!(slots[0]["calendarIds"], json!([calendar_id]), "{found}");
    let first = str_of(&slots[0], "startTime").to_owned();

    // 2. The booking, with the phone as a caller gives it.
    let booked = mcp
        .ok(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": first,
                "customerName": "Maria Rossi",
                "customerPhone": "0039 06 1234 5678",
                "requestId": request_id(),
            }),
        )
        .await;
    let id = str_of(&booked, "appointmentId").to_owned();
    assert_uuid_v7(&booked["appointmentId"], "appointmentId");
    assert_eq!(booked["status"], json!("confirmed"), "{booked}");
    assert_eq!(booked["startTime"], json!(rome(day, "09:00")), "{booked}");
    assert_eq!(booked["endTime"], json!(rome(day, "09:30")), "{booked}");
    assert_eq!(booked["calendarId"], json!(calendar_id), "{booked}");
    assert_eq!(booked["eventTypeId"], json!(event_type_id), "{booked}");
    assert_eq!(booked["customerPhone"], json!("+390612345678"), "{booked}");
    assert_eq!(booked["spoken"], json!(said(day, "09:00")), "{booked}");
    let event = read_event(&app, &id).await;
    assert_eq!(event["startTime"], json!(rome(day, "09:00")), "{event}");
    assert_eq!(event["endTime"], json!(rome(day, "09:30")), "{event}");
    assert_eq!(event["status"], json!("confirmed"), "{event}");
    assert_eq!(event["calendarId"], json!(calendar_id), "{event}");
    assert_eq!(event["eventTypeId"], json!(event_type_id), "{event}");
    assert_eq!(event["customerName"], json!("Maria Rossi"), "{event}");
    assert_eq!(event["customerPhone"], json!("+390612345678"), "{event}");
    assert_eq!(event["bookedVia"], json!("mcp"), "{event}");

    // 3. The caller rings again: found by the phone written another way.
    let mine = mcp
        .ok("find_appointments", json!({"phone": "+39 06 1234 5678"}))
        .await;
    let appointments = mine["appointments"]
        .as_array()
        .unwrap_or_else(|| panic!("appointments is an array: {mine}"));
    assert_eq!(appointments.len(), 1, "{mine}");
    assert_eq!(appointments[0]["appointmentId"], json!(id), "{mine}");
    assert_eq!(
        appointments[0]["spoken"],
        json!(said(day, "09:00")),
        "{mine}"
    );

    // 4. Moved to another free slot of the same day: it keeps its length.
    let later = str_of(&slots[2], "startTime").to_owned();
    assert_eq!(later, rome(day, "10:00"), "{found}");
    let moved_result = mcp
        .call(
            "reschedule_appointment",
            json!({"appointmentId": id, "startTime": later}),
        )
        .await;
    assert!(!is_error(&moved_result), "{moved_result}");
    let moved = &moved_result["structuredContent"];
    assert_eq!(moved["appointmentId"], json!(id), "{moved}");
    assert_eq!(moved["startTime"], json!(rome(day, "10:00")), "{moved}");
    assert_eq!(moved["endTime"], json!(rome(day, "10:30")), "{moved}");
    assert_eq!(moved["status"], json!("confirmed"), "{moved}");
    assert!(
        text_of(&moved_result).is_some_and(|t| t.contains(&said(day, "10:00"))),
        "the text says the new time: {moved_result}"
    );
    let event = read_event(&app, &id).await;
    assert_eq!(event["startTime"], json!(rome(day, "10:00")), "{event}");
    assert_eq!(event["endTime"], json!(rome(day, "10:30")), "{event}");
    assert_eq!(event["status"], json!("confirmed"), "{event}");
    assert_eq!(event["bookedVia"], json!("mcp"), "{event}");

    // 5. Cancelled: its time is free again.
    let cancelled = mcp
        .ok(
            "cancel_appointment",
            json!({"appointmentId": id, "reason": "the caller is travelling"}),
        )
        .await;
    assert_eq!(cancelled["appointmentId"], json!(id), "{cancelled}");
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    let event = read_event(&app, &id).await;
    assert_eq!(event["status"], json!("cancelled"), "{event}");
    assert_eq!(event["startTime"], json!(rome(day, "10:00")), "{event}");
    assert_eq!(event["customerPhone"], json!("+390612345678"), "{event}");
    assert_eq!(event["bookedVia"], json!("mcp"), "{event}");

    // After it: no upcoming appointment for that phone, and 10:00 is offered again.
    let mine = mcp
        .ok("find_appointments", json!({"phone": "+390612345678"}))
        .await;
    assert_eq!(mine["appointments"], json!([]), "{mine}");
    let found = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string(), "maxSlots": 20}),
        )
        .await;
    let starts: Vec<&str> = found["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| str_of(s, "startTime"))
        .collect();
    assert!(
        starts.contains(&rome(day, "10:00").as_str()),
        "a cancelled appointment frees its time: {found}"
    );
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 1);
}

async fn slots_are_spoken_as_weekday_day_month_and_local_clock_in_the_requested_timezone(
    app: TestApp,
) {
    let (_, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Tue);
    let mcp = Mcp::open(&app, &app.key).await;

    let result = mcp
        .call(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string(), "timezone": "Europe/Rome", "maxSlots": 3}),
        )
        .await;
    assert!(!is_error(&result), "{result}");
    let found = &result["structuredContent"];
    assert_eq!(found["timezone"], json!("Europe/Rome"), "{found}");
    let slots = found["slots"].as_array().cloned().unwrap_or_default();
    assert_eq!(slots.len(), 3, "maxSlots is honoured: {found}");
    for (slot, clock) in slots.iter().zip(["09:00", "09:30", "10:00"]) {
        assert_eq!(slot["startTime"], json!(rome(day, clock)), "{slot}");
        assert_eq!(
            slot["localStartTime"],
            json!(rome_local(day, clock)),
            "{slot}"
        );
        assert_eq!(slot["spoken"], json!(said(day, clock)), "{slot}");
    }
    // One day asked for: the text names it once, then its times.
    let text = text_of(&result).unwrap_or_default();
    assert!(
        text.contains(&format!("on {}", said_day(day))),
        "the text names the day: {text:?}"
    );
    for clock in ["09:00", "09:30", "10:00"] {
        assert!(text.contains(clock), "the text offers {clock}: {text:?}");
    }
    // A range of days: each time said in full.
    let result = mcp
        .call(
            "find_available_slots",
            json!({
                "eventTypeId": event_type_id,
                "fromDate": day.to_string(),
                "toDate": (day + Days::new(1)).to_string(),
                "timezone": "Europe/Rome",
                "maxSlots": 2
            }),
        )
        .await;
    assert!(!is_error(&result), "{result}");
    let text = text_of(&result).unwrap_or_default();
    for clock in ["09:00", "09:30"] {
        assert!(
            text.contains(&said(day, clock)),
            "the text of a range says {clock} in full: {text:?}"
        );
    }

    // The same slots said for a caller in UTC: only the local clock changes.
    let utc = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string(), "timezone": "UTC", "maxSlots": 1}),
        )
        .await;
    assert_eq!(utc["timezone"], json!("UTC"), "{utc}");
    let clock = format!("{:02}:00", 9 - rome_offset(day));
    assert_eq!(utc["slots"][0]["spoken"], json!(said(day, &clock)), "{utc}");
    assert_eq!(
        utc["slots"][0]["localStartTime"],
        json!(format!("{day}T{clock}:00+00:00")),
        "{utc}"
    );

    // A local start time is read in the calendar's zone when the agent names none.
    let booked = mcp
        .ok(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": format!("{day}T11:30"),
                "customerName": "Luca Verdi",
                "requestId": request_id(),
            }),
        )
        .await;
    assert_eq!(booked["startTime"], json!(rome(day, "11:30")), "{booked}");
    assert_eq!(
        booked["localStartTime"],
        json!(rome_local(day, "11:30")),
        "{booked}"
    );
    assert_eq!(booked["spoken"], json!(said(day, "11:30")), "{booked}");
}

// ----- booking once, and refusals -----

async fn a_retried_book_appointment_with_the_same_request_id_books_once_and_other_arguments_name_request_id(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Wed);
    let mcp = Mcp::open(&app, &app.key).await;
    let args = json!({
        "eventTypeId": event_type_id,
        "startTime": rome(day, "09:00"),
        "customerName": "Giulia Neri",
        "customerPhone": "+39 06 1234 5678",
        "requestId": request_id(),
    });

    let first = mcp.ok("book_appointment", args.clone()).await;
    // The agent's call timed out; it sends the same again, even from a new session.
    let again = mcp.ok("book_appointment", args.clone()).await;
    let other_session = Mcp::open(&app, &app.key).await;
    let third = other_session.ok("book_appointment", args.clone()).await;
    assert_eq!(again, first, "a retry answers what the first call did");
    assert_eq!(third, first, "a retry from another session too");
    let events = events_on(&app, &app.key, &calendar_id).await;
    assert_eq!(events.len(), 1, "one booking: {events:?}");
    assert_eq!(events[0]["id"], first["appointmentId"], "{events:?}");

    // The same requestId for another booking is refused, naming it; nothing is written.
    let other = with(args.clone(), json!({"startTime": rome(day, "11:00")}));
    let result = mcp.call("book_appointment", other).await;
    assert_names(&result, "requestId");
    let renamed = with(args, json!({"customerName": "Giulia Bianchi"}));
    let result = mcp.call("book_appointment", renamed).await;
    assert_names(&result, "requestId");
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 1);
}

async fn eight_simultaneous_book_appointment_calls_with_one_request_id_make_one_event(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Thu);
    let mcp = Mcp::open(&app, &app.key).await;
    let args = json!({
        "eventTypeId": event_type_id,
        "startTime": rome(day, "14:00"),
        "customerName": "Paolo Gialli",
        "customerPhone": "0039 06 1234 5678",
        "requestId": request_id(),
    });

    // Four on the agent's session and four on sessions of their own (retries on new
    // connections), all at once.
    let mut sessions = vec![];
    for _ in 0..4 {
        sessions.push(Mcp::open(&app, &app.key).await);
    }
    let calls = (0..8).map(|i| {
        let session = if i % 2 == 0 { &mcp } else { &sessions[i / 2] };
        session.call("book_appointment", args.clone())
    });
    let results = join_all(calls).await;
    let mut ids: Vec<Value> = Vec::new();
    for result in &results {
        if is_error(result) {
            // A duplicate still waiting for the first may be told to try again; nothing else.
            assert_tool_error(result, "in_progress");
        } else {
            ids.push(result["structuredContent"]["appointmentId"].clone());
        }
    }
    assert!(!ids.is_empty(), "at least one call books: {results:?}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every answer names the same appointment: {ids:?}"
    );
    let events = events_on(&app, &app.key, &calendar_id).await;
    assert_eq!(events.len(), 1, "one event, never a second: {events:?}");
    assert_eq!(events[0]["id"], ids[0], "{events:?}");
    assert_eq!(events[0]["startTime"], json!(rome(day, "14:00")));

    // Once it is done, a late retry answers the same appointment.
    let late = mcp.ok("book_appointment", args).await;
    assert_eq!(late["appointmentId"], ids[0], "{late}");
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 1);
}

async fn booking_a_taken_slot_is_a_tool_error_slot_unavailable_conflict_with_spoken_next_slots(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Tue);
    let taken = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            &rome(day, "09:00"),
            &rome(day, "09:30"),
        )
        .await;
    let mcp = Mcp::open(&app, &app.key).await;

    let result = mcp
        .call(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": rome(day, "09:00"),
                "customerName": "Anna Blu",
                "customerPhone": "+39 06 1234 5678",
                "requestId": request_id(),
            }),
        )
        .await;
    assert_tool_error(&result, "slot_unavailable");
    let refused = &result["structuredContent"];
    assert_eq!(refused["reason"], json!("conflict"), "{result}");
    let next = refused["nextSlots"]
        .as_array()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| panic!("nextSlots offers other times: {result}"));
    assert_eq!(next[0]["startTime"], json!(rome(day, "09:30")), "{result}");
    assert_eq!(next[0]["spoken"], json!(said(day, "09:30")), "{result}");
    for slot in next {
        assert!(
            slot["spoken"].as_str().is_some_and(|s| !s.is_empty()),
            "each next slot is said: {result}"
        );
    }
    let text = text_of(&result).unwrap_or_default();
    assert!(
        text.contains("already taken"),
        "the text says why: {text:?}"
    );
    assert!(
        text.contains(&said(day, "09:30")),
        "the text offers the next free time: {text:?}"
    );
    // An agent is never told whose appointment is in the way.
    assert!(
        !result.to_string().contains(str_of(&taken, "id")),
        "the tool error does not name the event in the way: {result}"
    );
    let events = events_on(&app, &app.key, &calendar_id).await;
    assert_eq!(events.len(), 1, "nothing was written: {events:?}");

    // Rescheduling onto a taken time is refused the same way, and the appointment stays.
    let booked = mcp
        .ok(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": rome(day, "09:30"),
                "customerName": "Anna Blu",
                "requestId": request_id(),
            }),
        )
        .await;
    let id = str_of(&booked, "appointmentId");
    let result = mcp
        .call(
            "reschedule_appointment",
            json!({"appointmentId": id, "startTime": rome(day, "09:00")}),
        )
        .await;
    assert_tool_error(&result, "slot_unavailable");
    assert_eq!(
        result["structuredContent"]["reason"],
        json!("conflict"),
        "{result}"
    );
    let event = read_event(&app, id).await;
    assert_eq!(event["startTime"], json!(rome(day, "09:30")), "{event}");
}

async fn a_closed_day_has_no_slots_a_reason_and_the_next_days_with_free_slots_monday_first(
    app: TestApp,
) {
    let (_, event_type_id) = rome_office(&app, &app.key).await;
    let sunday = ahead(Weekday::Sun);
    let monday = sunday + Days::new(1);
    let mcp = Mcp::open(&app, &app.key).await;

    let result = mcp
        .call(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": sunday.to_string()}),
        )
        .await;
    assert!(
        !is_error(&result),
        "nothing free is an answer, not an error: {result}"
    );
    let found = &result["structuredContent"];
    assert_eq!(found["slots"], json!([]), "{found}");
    assert_eq!(found["reason"], json!("outside_working_hours"), "{found}");
    let days = found["nextAvailableDays"]
        .as_array()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| panic!("nextAvailableDays names the next open days: {found}"));
    assert_eq!(days[0]["date"], json!(monday.to_string()), "{found}");
    assert_eq!(days[0]["spoken"], json!(said_day(monday)), "{found}");
    assert_eq!(
        days[0]["firstSlot"]["startTime"],
        json!(rome(monday, "09:00")),
        "{found}"
    );
    assert_eq!(
        days[0]["firstSlot"]["spoken"],
        json!(said(monday, "09:00")),
        "{found}"
    );
    if let Some(tuesday) = days.get(1) {
        assert_eq!(
            tuesday["date"],
            json!((monday + Days::new(1)).to_string()),
            "{found}"
        );
    }
    let text = text_of(&result).unwrap_or_default();
    assert!(
        text.contains(&said_day(sunday)) && text.contains(&said_day(monday)),
        "the text names the day asked for and the next free one: {text:?}"
    );
}

async fn a_read_only_key_lists_services_and_slots_but_writing_tools_are_insufficient_scope(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Tue);
    let existing = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    &rome(day, "15:00"),
                    &rome(day, "15:30"),
                ),
                json!({"customerName": "Carla Viola", "customerPhone": "+39 06 1234 5678"}),
            ),
        )
        .await;
    let existing_id = id_of(&existing);
    let read_only = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    let mcp = Mcp::open(&app, &read_only).await;

    let services = mcp.ok("list_services", json!({})).await;
    let listed = services["services"]
        .as_array()
        .unwrap_or_else(|| panic!("services is an array: {services}"));
    assert_eq!(listed.len(), 1, "{services}");
    assert_eq!(listed[0]["eventTypeId"], json!(event_type_id), "{services}");
    assert_eq!(
        listed[0]["name"],
        json!("Visita di controllo"),
        "{services}"
    );
    assert_eq!(listed[0]["durationMinutes"], json!(30), "{services}");
    assert_eq!(listed[0]["assignment"], json!("single"), "{services}");
    assert_eq!(
        listed[0]["calendars"],
        json!([{"calendarId": calendar_id, "name": "Studio Rossi", "timezone": "Europe/Rome"}]),
        "{services}"
    );
    let found = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string()}),
        )
        .await;
    assert_eq!(
        found["slots"][0]["startTime"],
        json!(rome(day, "09:00")),
        "{found}"
    );
    let mine = mcp
        .ok("find_appointments", json!({"phone": "0039 06 1234 5678"}))
        .await;
    assert_eq!(
        mine["appointments"][0]["appointmentId"],
        json!(existing_id),
        "{mine}"
    );

    let refused = mcp
        .fails(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": rome(day, "09:00"),
                "customerName": "Carla Viola",
                "requestId": request_id(),
            }),
            "insufficient_scope",
        )
        .await;
    assert_eq!(refused["scope"], json!("calendar:write"), "{refused}");
    let refused = mcp
        .fails(
            "cancel_appointment",
            json!({"appointmentId": existing_id}),
            "insufficient_scope",
        )
        .await;
    assert_eq!(refused["scope"], json!("calendar:write"), "{refused}");
    mcp.fails(
        "reschedule_appointment",
        json!({"appointmentId": existing_id, "startTime": rome(day, "16:00")}),
        "insufficient_scope",
    )
    .await;
    mcp.fails(
        "hold_slot",
        json!({"eventTypeId": event_type_id, "startTime": rome(day, "09:00")}),
        "insufficient_scope",
    )
    .await;

    // Nothing was written: one event, still confirmed at 15:00.
    let events = events_on(&app, &app.key, &calendar_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = read_event(&app, &existing_id).await;
    assert_eq!(event["status"], json!("confirmed"), "{event}");
    assert_eq!(event["startTime"], json!(rome(day, "15:00")), "{event}");
}

async fn bad_arguments_are_tool_errors_naming_the_field(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Tue);
    let mcp = Mcp::open(&app, &app.key).await;
    let booking = |extra: Value| {
        with(
            json!({
                "eventTypeId": event_type_id,
                "startTime": rome(day, "09:00"),
                "customerName": "Marco Grigi",
                "customerPhone": "+39 06 1234 5678",
                "requestId": request_id(),
            }),
            extra,
        )
    };

    let result = mcp
        .call(
            "find_available_slots",
            json!({"eventTypeId": "not-a-uuid", "date": day.to_string()}),
        )
        .await;
    assert_names(&result, "eventTypeId");
    let result = mcp
        .call(
            "book_appointment",
            booking(json!({"eventTypeId": "not-a-uuid"})),
        )
        .await;
    assert_names(&result, "eventTypeId");
    let result = mcp
        .call(
            "book_appointment",
            booking(json!({"startTime": "tomorrow"})),
        )
        .await;
    assert_names(&result, "startTime");
    let result = mcp
        .call(
            "book_appointment",
            booking(json!({"customerPhone": "12345"})),
        )
        .await;
    assert_names(&result, "customerPhone");
    let result = mcp.call("find_appointments", json!({})).await;
    assert_names(&result, "phone");
    let result = mcp
        .call(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": "next tuesday"}),
        )
        .await;
    assert_names(&result, "date");
    let result = mcp
        .call(
            "hold_slot",
            json!({"eventTypeId": event_type_id, "startTime": "soon"}),
        )
        .await;
    assert_names(&result, "startTime");
    let result = mcp
        .call(
            "reschedule_appointment",
            json!({"appointmentId": "not-a-uuid", "startTime": rome(day, "10:00")}),
        )
        .await;
    assert_names(&result, "appointmentId");

    // A refused call writes nothing, and its requestId stays free for the corrected call.
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 0);
    let id = request_id();
    let result = mcp
        .call(
            "book_appointment",
            booking(json!({"customerPhone": "12345", "requestId": id})),
        )
        .await;
    assert_names(&result, "customerPhone");
    let booked = mcp
        .ok("book_appointment", booking(json!({"requestId": id})))
        .await;
    assert_eq!(booked["customerPhone"], json!("+390612345678"), "{booked}");
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 1);
}

// ----- holds, isolation, teams -----

async fn hold_slot_then_book_appointment_with_its_hold_id_books_the_held_slot(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office(&app, &app.key).await;
    let day = ahead(Weekday::Wed);
    let mcp = Mcp::open(&app, &app.key).await;

    // A local time, read in the calendar's zone.
    let result = mcp
        .call(
            "hold_slot",
            json!({"eventTypeId": event_type_id, "startTime": format!("{day}T10:00")}),
        )
        .await;
    assert!(!is_error(&result), "{result}");
    let held = &result["structuredContent"];
    let hold_id = str_of(held, "holdId").to_owned();
    assert_eq!(held["calendarId"], json!(calendar_id), "{held}");
    assert_eq!(held["startTime"], json!(rome(day, "10:00")), "{held}");
    assert_eq!(held["endTime"], json!(rome(day, "10:30")), "{held}");
    assert_eq!(held["spoken"], json!(said(day, "10:00")), "{held}");
    assert_utc_seconds(&held["expiresAt"], "expiresAt");
    let expires = chrono::DateTime::parse_from_rfc3339(str_of(held, "expiresAt"))
        .unwrap_or_else(|e| panic!("expiresAt is RFC 3339: {e}"));
    let left = expires.with_timezone(&Utc) - Utc::now();
    assert!(
        left > chrono::Duration::minutes(8) && left <= chrono::Duration::minutes(11),
        "a hold lasts 10 minutes by default: {held}"
    );
    assert!(
        text_of(&result).is_some_and(|t| t.contains(&said(day, "10:00"))),
        "{result}"
    );

    // While held, the slot is offered to nobody and another client cannot book it.
    let found = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": event_type_id, "date": day.to_string(), "maxSlots": 20}),
        )
        .await;
    let starts: Vec<&str> = found["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| str_of(s, "startTime"))
        .collect();
    assert!(
        starts.contains(&rome(day, "09:30").as_str())
            && !starts.contains(&rome(day, "10:00").as_str()),
        "the held slot is not offered: {found}"
    );
    let other = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead, Scope::CalendarWrite])
        .await;
    let resp = app
        .post_as(
            &other,
            EVENTS,
            &event_body(
                &calendar_id,
                &event_type_id,
                &rome(day, "10:00"),
                &rome(day, "10:30"),
            ),
        )
        .await;
    assert_error(&resp, 409, "slot_unavailable");

    // The caller confirms: the hold becomes the appointment.
    let booked = mcp
        .ok(
            "book_appointment",
            json!({
                "eventTypeId": event_type_id,
                "startTime": rome(day, "10:00"),
                "holdId": hold_id,
                "customerName": "Sara Rosa",
                "customerPhone": "0039 06 1234 5678",
                "requestId": request_id(),
            }),
        )
        .await;
    let id = str_of(&booked, "appointmentId");
    assert_eq!(booked["startTime"], json!(rome(day, "10:00")), "{booked}");
    assert_eq!(booked["status"], json!("confirmed"), "{booked}");
    let event = read_event(&app, id).await;
    assert_eq!(event["startTime"], json!(rome(day, "10:00")), "{event}");
    assert_eq!(event["endTime"], json!(rome(day, "10:30")), "{event}");
    assert_eq!(event["customerPhone"], json!("+390612345678"), "{event}");
    assert_eq!(event["bookedVia"], json!("mcp"), "{event}");
    assert_eq!(events_on(&app, &app.key, &calendar_id).await.len(), 1);
}

async fn another_organizations_event_type_is_not_found_by_any_tool(app: TestApp) {
    let (_, other_key) = app.new_org("Studio Verdi").await;
    let (their_calendar, their_type) = rome_office(&app, &other_key).await;
    let day = ahead(Weekday::Tue);
    let mcp = Mcp::open(&app, &app.key).await;

    let missing = mcp
        .fails(
            "find_available_slots",
            json!({"eventTypeId": their_type, "date": day.to_string()}),
            "not_found",
        )
        .await;
    assert!(
        !missing.to_string().contains(&their_calendar),
        "nothing of theirs is told: {missing}"
    );
    mcp.fails(
        "book_appointment",
        json!({
            "eventTypeId": their_type,
            "startTime": rome(day, "09:00"),
            "customerName": "Intruso",
            "requestId": request_id(),
        }),
        "not_found",
    )
    .await;
    mcp.fails(
        "hold_slot",
        json!({"eventTypeId": their_type, "startTime": rome(day, "09:00")}),
        "not_found",
    )
    .await;
    // Their calendar, named outright, is not found either.
    mcp.fails(
        "book_appointment",
        json!({
            "eventTypeId": their_type,
            "calendarId": their_calendar,
            "startTime": rome(day, "09:00"),
            "customerName": "Intruso",
            "requestId": request_id(),
        }),
        "not_found",
    )
    .await;
    // And an unknown one is told the same way.
    mcp.fails(
        "find_available_slots",
        json!({"eventTypeId": unknown_id(), "date": day.to_string()}),
        "not_found",
    )
    .await;
    let services = mcp.ok("list_services", json!({})).await;
    assert_eq!(services["services"], json!([]), "{services}");

    // Their appointments are not found by phone, nor cancelled by id.
    let theirs = app
        .create_event_with(
            &other_key,
            with(
                event_body(
                    &their_calendar,
                    &their_type,
                    &rome(day, "12:00"),
                    &rome(day, "12:30"),
                ),
                json!({"customerName": "Cliente Verdi", "customerPhone": "+39 06 1234 5678"}),
            ),
        )
        .await;
    let found = mcp
        .ok("find_appointments", json!({"phone": "+39 06 1234 5678"}))
        .await;
    assert_eq!(found["appointments"], json!([]), "{found}");
    mcp.fails(
        "cancel_appointment",
        json!({"appointmentId": id_of(&theirs)}),
        "not_found",
    )
    .await;

    let events = events_on(&app, &other_key, &their_calendar).await;
    assert_eq!(events.len(), 1, "only their own booking: {events:?}");
    assert_eq!(events[0]["status"], json!("confirmed"), "{events:?}");
}

async fn a_round_robin_team_type_is_listed_with_its_hosts_and_booked_without_a_calendar_id(
    app: TestApp,
) {
    let mut hosts = Vec::new();
    for name in ["Host A", "Host B"] {
        let calendar = app
            .create_calendar(&app.key, Some(json!({"name": name, "timezone": "UTC"})))
            .await;
        hosts.push(id_of(&calendar));
    }
    let team_type = id_of(
        &app.create_event_type_with(
            &app.key,
            json!({
                "name": "Consulenza di gruppo",
                "durationMinutes": 30,
                "assignment": "roundRobin",
                "hosts": [{"calendarId": hosts[0]}, {"calendarId": hosts[1]}],
            }),
        )
        .await,
    );
    let day = ahead(Weekday::Mon);
    let mcp = Mcp::open(&app, &app.key).await;

    let services = mcp.ok("list_services", json!({})).await;
    let service = services["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["eventTypeId"] == json!(team_type))
        .unwrap_or_else(|| panic!("the team type is listed: {services}"));
    assert_eq!(service["assignment"], json!("roundRobin"), "{services}");
    assert_eq!(
        service["calendars"],
        json!([
            {"calendarId": hosts[0], "name": "Host A", "timezone": "UTC"},
            {"calendarId": hosts[1], "name": "Host B", "timezone": "UTC"},
        ]),
        "{services}"
    );

    // Open around the clock: the 20 first slots run from 00:00 to 09:30 UTC.
    let start = format!("{day}T09:00:00Z");
    let found = mcp
        .ok(
            "find_available_slots",
            json!({"eventTypeId": team_type, "fromDate": day.to_string(), "toDate": day.to_string(), "maxSlots": 20}),
        )
        .await;
    assert_eq!(
        found["timezone"],
        json!("UTC"),
        "the first host's zone: {found}"
    );
    let slot = found["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["startTime"] == json!(start))
        .unwrap_or_else(|| panic!("09:00 is offered: {found}"));
    let mut free: Vec<&str> = slot["calendarIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    free.sort_unstable();
    let mut both: Vec<&str> = hosts.iter().map(String::as_str).collect();
    both.sort_unstable();
    assert_eq!(free, both, "both hosts are free at 09:00: {slot}");

    let booking = |name: &str| {
        json!({
            "eventTypeId": team_type,
            "startTime": start,
            "customerName": name,
            "requestId": request_id(),
        })
    };
    let mut landed = Vec::new();
    for name in ["Primo Cliente", "Secondo Cliente"] {
        let booked = mcp.ok("book_appointment", booking(name)).await;
        assert_eq!(booked["eventTypeId"], json!(team_type), "{booked}");
        assert_eq!(booked["startTime"], json!(start), "{booked}");
        assert_eq!(booked["spoken"], json!(said(day, "09:00")), "{booked}");
        let event = read_event(&app, str_of(&booked, "appointmentId")).await;
        assert_eq!(event["calendarId"], booked["calendarId"], "{event}");
        assert_eq!(event["startTime"], json!(start), "{event}");
        assert_eq!(event["bookedVia"], json!("mcp"), "{event}");
        assert_eq!(event["status"], json!("confirmed"), "{event}");
        landed.push(str_of(&booked, "calendarId").to_owned());
    }
    landed.sort_unstable();
    assert_eq!(landed, both, "each booking went to a different free host");

    // Both hosts busy: the third caller is told so, with the next free times.
    let result = mcp.call("book_appointment", booking("Terzo Cliente")).await;
    assert_tool_error(&result, "slot_unavailable");
    assert_eq!(
        result["structuredContent"]["reason"],
        json!("conflict"),
        "{result}"
    );
    assert_eq!(
        result["structuredContent"]["nextSlots"][0]["startTime"],
        json!(format!("{day}T09:30:00Z")),
        "{result}"
    );
    for host in &hosts {
        assert_eq!(events_on(&app, &app.key, host).await.len(), 1, "{host}");
    }
}
