//! The `mcp` workload: a voice agent's whole call (find slots -> book -> find by phone ->
//! reschedule -> cancel) through the MCP server at `/mcp`, and the same five operations over
//! the REST API in the same run, one histogram per operation and protocol.
//!
//! Each connection opens one MCP session (initialize, then the initialized notification) and
//! runs calls alternately over MCP and REST until the measured window ends; a call that gets an
//! unexpected answer counts as a failure of that operation and ends the call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use hdrhistogram::Histogram;
use quando_api::domain::time::Zone;
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AnyError;
use crate::load::{Measured, Rng, histogram, micros};
use crate::seed::ZONE;
use crate::workloads::{Plan, Row, Target};

/// The five operations of a call, as MCP tools and as REST requests.
const OPERATIONS: [(&str, &str); 5] = [
    (
        "find_available_slots",
        "GET /v1/calendar/availability (one day)",
    ),
    (
        "book_appointment",
        "POST /v1/calendar/events (Idempotency-Key)",
    ),
    (
        "find_appointments",
        "GET /v1/calendar/events?customerPhone&dateFrom",
    ),
    ("reschedule_appointment", "PATCH /v1/calendar/events/{id}"),
    ("cancel_appointment", "POST /v1/calendar/events/{id}/cancel"),
];

#[derive(Default)]
struct Tally {
    /// [protocol 0 = MCP, 1 = REST][operation]
    histograms: Vec<Vec<Histogram<u64>>>,
    failures: Vec<Vec<u64>>,
    examples: Vec<Vec<Option<String>>>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            histograms: (0..2)
                .map(|_| (0..OPERATIONS.len()).map(|_| histogram()).collect())
                .collect(),
            failures: vec![vec![0; OPERATIONS.len()]; 2],
            examples: vec![vec![None; OPERATIONS.len()]; 2],
        }
    }
}

/// One MCP session of one connection.
struct Session {
    client: Client,
    url: String,
    key: Arc<str>,
    id: String,
    next: u64,
}

/// The JSON-RPC answer in a response body: the body itself, or the `data:` of its SSE event.
fn message_of(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .find_map(|d| serde_json::from_str(d).ok())
}

impl Session {
    fn post(&self, body: &Value) -> RequestBuilder {
        let req = self
            .client
            .post(&self.url)
            .bearer_auth(&*self.key)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(body);
        if self.id.is_empty() {
            req
        } else {
            req.header("Mcp-Session-Id", &self.id)
        }
    }

    async fn open(client: Client, base: &str, key: Arc<str>) -> Result<Session, AnyError> {
        let mut session = Session {
            client,
            url: format!("{base}/mcp"),
            key,
            id: String::new(),
            next: 2,
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "quando-bench", "version": "1"}}});
        let resp = session.post(&init).send().await?;
        let id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or("initialize answered no Mcp-Session-Id")?
            .to_string();
        resp.bytes().await?;
        session.id = id;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        session.post(&note).send().await?.bytes().await?;
        Ok(session)
    }

    /// Calls a tool; its structured result, or why not.
    async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, String> {
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}});
        let resp = self.post(&body).send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        let message = message_of(&text).ok_or_else(|| format!("{status}: {text}"))?;
        let result = &message["result"];
        if status != 200 || result["isError"] != json!(false) {
            return Err(format!("{status}: {text}"));
        }
        Ok(result["structuredContent"].clone())
    }
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A valid Rome number no other call uses (so find-by-phone finds this call's booking only).
fn phone(rng: &mut Rng) -> String {
    format!("+39 06 {:04} {:04}", rng.below(10_000), rng.below(10_000))
}

/// What a call books and moves to.
struct Call {
    calendar: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// The new start, ten years later on the same weekday and local time (nothing is there).
    moved_local: String,
    phone: String,
}

fn next_call(target: &Target, zone: Zone, rng: &mut Rng) -> Call {
    let (calendar, start, end) = target.slots.next();
    let local = start.with_timezone(&zone.0).naive_local() + Span::days(3640);
    Call {
        calendar,
        start,
        end,
        moved_local: local.format("%Y-%m-%dT%H:%M:%S").to_string(),
        phone: phone(rng),
    }
}

/// Runs one call over MCP, timing each tool call; the index of the failed step and why.
async fn mcp_call(
    session: &mut Session,
    target: &Target,
    call: &Call,
    zone: Zone,
    times: &mut [Option<Duration>; 5],
) -> Result<(), (usize, String)> {
    let day = call.start.with_timezone(&zone.0).date_naive();
    let steps: [(&str, Value); 2] = [
        (
            "find_available_slots",
            json!({"eventTypeId": target.seeded.event_type.to_string(),
                   "calendarId": call.calendar.to_string(), "date": day.to_string(),
                   "timezone": ZONE}),
        ),
        (
            "book_appointment",
            json!({"eventTypeId": target.seeded.event_type.to_string(),
                   "calendarId": call.calendar.to_string(), "startTime": utc(call.start),
                   "endTime": utc(call.end), "customerName": "Laura Bianchi",
                   "customerPhone": call.phone, "requestId": Uuid::now_v7().to_string()}),
        ),
    ];
    let mut booked = Value::Null;
    for (k, (tool, args)) in steps.into_iter().enumerate() {
        let t0 = Instant::now();
        let out = session.call(tool, args).await.map_err(|e| (k, e))?;
        times[k] = Some(t0.elapsed());
        booked = out;
    }
    let id = booked["appointmentId"]
        .as_str()
        .ok_or((1, format!("no appointmentId in {booked}")))?
        .to_string();
    let rest: [(&str, Value); 3] = [
        ("find_appointments", json!({"phone": call.phone})),
        (
            "reschedule_appointment",
            json!({"appointmentId": id, "startTime": call.moved_local, "timezone": ZONE}),
        ),
        (
            "cancel_appointment",
            json!({"appointmentId": id, "reason": "the caller changed plans"}),
        ),
    ];
    for (k, (tool, args)) in rest.into_iter().enumerate() {
        let t0 = Instant::now();
        let out = session.call(tool, args).await.map_err(|e| (k + 2, e))?;
        times[k + 2] = Some(t0.elapsed());
        if tool == "find_appointments" && out["appointments"].as_array().is_none_or(Vec::is_empty) {
            return Err((2, format!("the booking was not found by phone: {out}")));
        }
    }
    Ok(())
}

async fn expect(req: RequestBuilder, status: u16) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if got == status {
        Ok(body)
    } else {
        Err(format!("{got}: {body}"))
    }
}

/// The same call over REST.
async fn rest_call(
    target: &Target,
    call: &Call,
    zone: Zone,
    times: &mut [Option<Duration>; 5],
) -> Result<(), (usize, String)> {
    let (client, base, key) = (&target.client, &target.base, &*target.key);
    let day = call.start.with_timezone(&zone.0).date_naive();
    let t0 = Instant::now();
    expect(
        client
            .get(format!("{base}/v1/calendar/availability"))
            .bearer_auth(key)
            .query(&[
                ("calendarId", call.calendar.to_string()),
                ("eventTypeId", target.seeded.event_type.to_string()),
                ("dateFrom", format!("{day}T00:00:00")),
                ("dateTo", format!("{}T00:00:00", day + Span::days(1))),
                ("timezone", ZONE.into()),
            ]),
        200,
    )
    .await
    .map_err(|e| (0, e))?;
    times[0] = Some(t0.elapsed());
    let t0 = Instant::now();
    let booked = expect(
        client
            .post(format!("{base}/v1/calendar/events"))
            .bearer_auth(key)
            .header("Idempotency-Key", Uuid::now_v7().to_string())
            .json(
                &json!({"calendarId": call.calendar, "eventTypeId": target.seeded.event_type,
                          "startTime": utc(call.start), "endTime": utc(call.end),
                          "customerName": "Laura Bianchi", "customerPhone": call.phone}),
            ),
        201,
    )
    .await
    .map_err(|e| (1, e))?;
    times[1] = Some(t0.elapsed());
    let id = booked["data"]["id"]
        .as_str()
        .ok_or((1, format!("no id in {booked}")))?
        .to_string();
    let t0 = Instant::now();
    let found = expect(
        client
            .get(format!("{base}/v1/calendar/events"))
            .bearer_auth(key)
            .query(&[
                ("customerPhone", call.phone.clone()),
                ("dateFrom", utc(Utc::now())),
            ]),
        200,
    )
    .await
    .map_err(|e| (2, e))?;
    times[2] = Some(t0.elapsed());
    if found["data"].as_array().is_none_or(Vec::is_empty) {
        return Err((2, format!("the booking was not found by phone: {found}")));
    }
    let t0 = Instant::now();
    expect(
        client
            .patch(format!("{base}/v1/calendar/events/{id}"))
            .bearer_auth(key)
            .json(&json!({"startTime": call.moved_local, "timezone": ZONE})),
        200,
    )
    .await
    .map_err(|e| (3, e))?;
    times[3] = Some(t0.elapsed());
    let t0 = Instant::now();
    expect(
        client
            .post(format!("{base}/v1/calendar/events/{id}/cancel"))
            .bearer_auth(key)
            .json(&json!({"reason": "the caller changed plans"})),
        200,
    )
    .await
    .map_err(|e| (4, e))?;
    times[4] = Some(t0.elapsed());
    Ok(())
}

/// Runs the workload: rows `mcp <tool>` and `rest <tool>` for each of the five operations.
pub async fn run(target: &Target, plan: &Plan, pid: u32) -> Result<Vec<Row>, AnyError> {
    let zone = Zone::parse(ZONE)?;
    let tally = Arc::new(Mutex::new(Tally::new()));
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let deadline = measure_from + plan.measure;
    let sampler = crate::child::RssSampler::start(pid);
    let mut tasks = Vec::new();
    for task in 0..plan.connections {
        let target = target.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut session =
                Session::open(target.client.clone(), &target.base, target.key.clone()).await?;
            let mut rng = Rng::new(0x3c9 + task as u64);
            let mut turn = task;
            while Instant::now() < deadline {
                let call = next_call(&target, zone, &mut rng);
                let protocol = turn % 2;
                turn += 1;
                let began = Instant::now();
                let mut times = [None; 5];
                let outcome = if protocol == 0 {
                    mcp_call(&mut session, &target, &call, zone, &mut times).await
                } else {
                    rest_call(&target, &call, zone, &mut times).await
                };
                if began < measure_from {
                    continue;
                }
                let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                for (k, time) in times.iter().enumerate() {
                    if let Some(time) = time {
                        let _ = tally.histograms[protocol][k].record(micros(*time));
                    }
                }
                if let Err((k, why)) = outcome {
                    tally.failures[protocol][k] += 1;
                    tally.examples[protocol][k].get_or_insert(why);
                }
            }
            Ok::<(), AnyError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let max_rss_kb = sampler.stop(pid).await;
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| "tally still shared")?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let mut rows = Vec::new();
    for (k, (tool, rest)) in OPERATIONS.iter().enumerate() {
        for (protocol, name, what) in [
            (
                0,
                format!("mcp {tool}"),
                format!("tools/call {tool} on /mcp"),
            ),
            (1, format!("rest {tool}"), (*rest).to_string()),
        ] {
            let histogram = tally.histograms[protocol][k].clone();
            let ok = histogram.len();
            let status = if protocol == 1 && k == 1 { 201 } else { 200 };
            rows.push(Row {
                name,
                what,
                expected: status,
                measured: Some(Measured {
                    requests: ok,
                    elapsed,
                    histogram,
                    statuses: BTreeMap::from([(status, ok)]),
                    failures: tally.failures[protocol][k],
                    failure_example: tally.examples[protocol][k].clone(),
                }),
                max_rss_kb: Some(max_rss_kb),
                note: None,
            });
        }
    }
    Ok(rows)
}
