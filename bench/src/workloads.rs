//! The workloads: what each one asks the server, and the raw-storage baseline that books the
//! same transaction without HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use hdrhistogram::Histogram;
use quando_api::domain::ids::{CalendarId, EventTypeId};
use quando_api::repo::events::NewEvent;
use reqwest::{Client, RequestBuilder};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AnyError;
use crate::load::{Job, Measured, Outcome, Rng, drive, histogram, micros};
use crate::receiver::Receiver;
use crate::seed::{FreshSlots, Seeded, ZONE, block};

/// The workloads of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Create,
    CreateIdempotent,
    /// Keyed create with one webhook endpoint subscribed (`receiver.rs`).
    CreateWebhook,
    CreateTaken,
    List,
    /// The seed's own list example: the first page of one status over the whole organization.
    ListStatus,
    /// The first page of one calendar, no dates.
    ListCalendar,
    ListFiltered,
    Get,
    Availability,
    /// Availability of a round-robin event type over `TEAM_HOSTS` hosts, with the free hosts.
    TeamAvailability,
    /// Deep listing: cursor page 2, cursor page 5,000 and offset page 5,000.
    Deep,
    /// A voice agent's call over MCP next to the same five operations over REST (`mcp.rs`).
    Mcp,
    /// The framework ceiling: a poem-openapi hello-world endpoint in the server child (`hello.rs`).
    Hello,
}

impl Workload {
    /// In the order they run.
    pub const ALL: [Workload; 14] = [
        Workload::Create,
        Workload::CreateIdempotent,
        Workload::CreateWebhook,
        Workload::CreateTaken,
        Workload::List,
        Workload::ListStatus,
        Workload::ListCalendar,
        Workload::ListFiltered,
        Workload::Get,
        Workload::Availability,
        Workload::TeamAvailability,
        Workload::Deep,
        Workload::Mcp,
        Workload::Hello,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::CreateIdempotent => "create-idempotent",
            Workload::CreateWebhook => "create-webhook",
            Workload::CreateTaken => "create-taken",
            Workload::List => "list",
            Workload::ListStatus => "list-status",
            Workload::ListCalendar => "list-calendar",
            Workload::ListFiltered => "list-filtered",
            Workload::Get => "get",
            Workload::Availability => "availability",
            Workload::TeamAvailability => "team-availability",
            Workload::Deep => "deep",
            Workload::Mcp => "mcp",
            Workload::Hello => "hello",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    fn describe(self) -> &'static str {
        match self {
            Workload::Create => "POST /v1/calendar/events, a distinct free slot each",
            Workload::CreateIdempotent => "the same, with a fresh Idempotency-Key each",
            Workload::CreateWebhook => {
                "the same keyed create, one webhook endpoint subscribed to appointment.created"
            }
            Workload::CreateTaken => "POST onto a seeded booking's exact time (409 conflict)",
            Workload::List => "GET /v1/calendar/events?limit=20 (first page, whole org)",
            Workload::ListStatus => {
                "GET /v1/calendar/events?status=confirmed&limit=10 (the seed's example)"
            }
            Workload::ListCalendar => {
                "GET /v1/calendar/events?calendarId&limit=20 (first page of a calendar)"
            }
            Workload::ListFiltered => "GET ...?calendarId&dateFrom&dateTo (31 days)&limit=20",
            Workload::Get => "GET /v1/calendar/events/{id}, a random seeded id",
            Workload::Availability => "GET /v1/calendar/availability, 31 days, random calendar",
            Workload::TeamAvailability => {
                "GET /v1/calendar/availability?eventTypeId (round robin, 50 hosts)&hosts=true, 31 days"
            }
            Workload::Deep => "GET /v1/calendar/events deep pages",
            Workload::Mcp => "find slots, book, find by phone, reschedule, cancel: MCP and REST",
            Workload::Hello => "GET /hello of a poem-openapi hello world in the server process",
        }
    }

    fn expected_status(self) -> u16 {
        match self {
            Workload::Create | Workload::CreateIdempotent | Workload::CreateWebhook => 201,
            Workload::CreateTaken => 409,
            _ => 200,
        }
    }
}

/// The page the deep-listing workloads reach (limit 20: the 100,000th event).
pub const DEEP_PAGE: u64 = 5_000;
/// The cursor walk to the deep page stops after this long and uses the page it reached.
const WALK_BUDGET: Duration = Duration::from_secs(300);

/// How the workloads of one backend run.
pub struct Plan {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Everything an HTTP workload needs, cheap to clone into each request.
#[derive(Clone)]
pub struct Target {
    pub client: Client,
    pub base: String,
    /// The server child's hello-world base URL.
    pub hello: String,
    pub key: Arc<str>,
    pub seeded: Arc<Seeded>,
    pub slots: Arc<FreshSlots>,
}

impl Target {
    /// The target of a running server child, for `connections` keep-alive connections.
    pub fn new(
        server: &crate::child::Server,
        seeded: Arc<Seeded>,
        slots: Arc<FreshSlots>,
        connections: usize,
    ) -> Result<Target, AnyError> {
        Ok(Target {
            client: Client::builder()
                .pool_max_idle_per_host(connections)
                .build()?,
            base: server.base.clone(),
            hello: server.hello.clone(),
            key: seeded.key.as_str().into(),
            seeded,
            slots,
        })
    }
}

/// One row of the report.
pub struct Row {
    pub name: String,
    /// What it asks, in a few words.
    pub what: String,
    pub expected: u16,
    pub measured: Option<Measured>,
    /// Largest VmRSS of the server seen while it ran, KiB.
    pub max_rss_kb: Option<u64>,
    pub note: Option<String>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn midnight(d: NaiveDate) -> String {
    format!("{d}T00:00:00Z")
}

/// Sends a request, reads the whole body, returns the status.
async fn send(req: RequestBuilder) -> Outcome {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.bytes().await.map_err(|e| e.to_string())?;
    Ok(status)
}

/// Sends a request and returns the status and the JSON body.
async fn fetch(req: RequestBuilder) -> Result<(u16, Value), AnyError> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await?;
    Ok((status, body))
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

fn random_day(rng: &mut Rng, from: NaiveDate, to_inclusive: NaiveDate) -> NaiveDate {
    let days = (to_inclusive - from).num_days().max(0);
    from + Span::days(rng.below(days as u64 + 1) as i64)
}

/// The body of a booking, as a booking widget would send it.
fn booking(t: &Target, calendar: Uuid, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    json!({
        "calendarId": calendar,
        "eventTypeId": t.seeded.event_type,
        "startTime": utc(start),
        "endTime": utc(end),
        "timezone": ZONE,
        "customerName": "Laura Bianchi",
        "customerEmail": "laura.bianchi@example.com",
        "customerPhone": "+39 06 1234 5678",
        "title": "Demo Prodotto",
    })
}

impl Target {
    fn get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&*self.key)
    }

    fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&*self.key)
            .json(body)
    }

    /// The request a workload makes next.
    fn request(&self, workload: Workload, rng: &mut Rng) -> RequestBuilder {
        let s = &self.seeded;
        match workload {
            Workload::Create | Workload::CreateIdempotent | Workload::CreateWebhook => {
                let (calendar, start, end) = self.slots.next();
                let req = self.post("/v1/calendar/events", &booking(self, calendar, start, end));
                if workload != Workload::Create {
                    req.header("Idempotency-Key", Uuid::now_v7().to_string())
                } else {
                    req
                }
            }
            Workload::CreateTaken => {
                let (calendar, start, end) = *pick(rng, &s.taken);
                self.post("/v1/calendar/events", &booking(self, calendar, start, end))
            }
            Workload::List => self.get("/v1/calendar/events?limit=20"),
            Workload::Hello => self.client.get(format!("{}/hello", self.hello)),
            Workload::ListStatus => self.get("/v1/calendar/events?status=confirmed&limit=10"),
            Workload::ListCalendar => self.get("/v1/calendar/events").query(&[
                ("calendarId", pick(rng, &s.calendars).to_string()),
                ("limit", "20".into()),
            ]),
            Workload::ListFiltered => {
                let calendar = pick(rng, &s.calendars);
                let from = random_day(rng, s.first_date, s.last_date - Span::days(31));
                self.get("/v1/calendar/events").query(&[
                    ("calendarId", calendar.to_string()),
                    ("dateFrom", midnight(from)),
                    ("dateTo", midnight(from + Span::days(31))),
                    ("limit", "20".into()),
                ])
            }
            Workload::Get => self.get(&format!("/v1/calendar/events/{}", pick(rng, &s.event_ids))),
            Workload::Availability => {
                let calendar = pick(rng, &s.calendars);
                let from = random_day(
                    rng,
                    s.today + Span::days(2),
                    (s.last_date - Span::days(31)).max(s.today + Span::days(2)),
                );
                self.get("/v1/calendar/availability").query(&[
                    ("calendarId", calendar.to_string()),
                    ("eventTypeId", s.event_type.to_string()),
                    ("dateFrom", midnight(from)),
                    ("dateTo", midnight(from + Span::days(31))),
                ])
            }
            Workload::TeamAvailability => {
                let Some(team) = &s.team else {
                    // Not reached: `run_simple` refuses the workload without a team.
                    return self.get("/v1/calendar/availability");
                };
                let from = random_day(
                    rng,
                    s.today + Span::days(2),
                    (team.last_date - Span::days(31)).max(s.today + Span::days(2)),
                );
                self.get("/v1/calendar/availability").query(&[
                    ("eventTypeId", team.event_type.to_string()),
                    ("dateFrom", midnight(from)),
                    ("dateTo", midnight(from + Span::days(31))),
                    ("hosts", "true".into()),
                ])
            }
            Workload::Deep | Workload::Mcp => self.get("/v1/calendar/events?limit=20"),
        }
    }
}

/// Runs one simple workload: a sanity request first (its answer checked), then the load.
pub async fn run_simple(
    target: &Target,
    plan: &Plan,
    workload: Workload,
    pid: u32,
) -> Result<Row, AnyError> {
    let expected = workload.expected_status();
    if workload == Workload::CreateTaken && target.seeded.taken.is_empty() {
        return Err("no seeded event lies in the future to book again".into());
    }
    if workload == Workload::TeamAvailability && target.seeded.team.is_none() {
        return Err("the team was not seeded".into());
    }
    let hook = if workload == Workload::CreateWebhook {
        Some(subscribe(target).await?)
    } else {
        None
    };
    let mut rng = Rng::new(7);
    let (status, body) = fetch(target.request(workload, &mut rng)).await?;
    let mut note = None;
    if status != expected {
        note = Some(format!("sanity request answered {status}: {body}"));
    } else if matches!(
        workload,
        Workload::List | Workload::ListStatus | Workload::ListCalendar | Workload::ListFiltered
    ) {
        let n = body["data"].as_array().map_or(0, Vec::len);
        if n == 0 {
            note = Some("sanity request returned no events".into());
        }
    } else if workload == Workload::Availability {
        let n = body["data"]["slots"].as_array().map_or(0, Vec::len);
        note = Some(format!(
            "{} free slots in the sampled window; {} events per calendar",
            n,
            crate::report::thousands(target.seeded.events_per_calendar as u64)
        ));
    } else if workload == Workload::TeamAvailability
        && let Some(team) = &target.seeded.team
    {
        let slots = body["data"]["slots"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let hosts: usize = slots
            .iter()
            .map(|s| s["hosts"].as_array().map_or(0, Vec::len))
            .sum();
        let continued = if body["nextDateFrom"].is_null() {
            String::new()
        } else {
            format!(" (capped; nextDateFrom {})", body["nextDateFrom"])
        };
        note = Some(format!(
            "{} free slots in the sampled window{continued}, {:.1} free hosts listed per slot on average; {} hosts with {} events each ({} in all, {} to {}, seeded in {:.1}s, in the same organization)",
            slots.len(),
            hosts as f64 / slots.len().max(1) as f64,
            team.calendars.len(),
            crate::report::thousands(team.events_per_host as u64),
            crate::report::thousands((team.calendars.len() * team.events_per_host) as u64),
            team.first_date,
            team.last_date,
            team.elapsed.as_secs_f64()
        ));
    }
    let t = target.clone();
    let job: Job = Arc::new(move |rng| Box::pin(send(t.request(workload, rng))));
    let sampler = crate::child::RssSampler::start(pid);
    let measured = drive(plan.connections, plan.warmup, plan.measure, job).await;
    let max_rss_kb = sampler.stop(pid).await;
    if let Some((receiver, id)) = hook {
        let at_end = receiver.received();
        let drained_in = receiver
            .settle(Duration::from_secs(1), Duration::from_secs(60))
            .await;
        let deleted = send(
            target
                .client
                .delete(format!("{}/v1/webhooks/{id}", target.base))
                .bearer_auth(&*target.key),
        )
        .await;
        if deleted != Ok(204) {
            return Err(
                format!("deleting the bench's webhook endpoint answered {deleted:?}").into(),
            );
        }
        note = Some(format!(
            "{} deliveries received by the end of the load (warm-up included), {} in all after the backlog drained in {:.1}s",
            at_end,
            receiver.received(),
            drained_in.as_secs_f64()
        ));
    }
    let measured = measured?;
    Ok(Row {
        name: workload.name().into(),
        what: workload.describe().into(),
        expected,
        measured: Some(measured),
        max_rss_kb: Some(max_rss_kb),
        note,
    })
}

/// Starts a receiver and subscribes it to `appointment.created`; returns it and the endpoint's id.
async fn subscribe(target: &Target) -> Result<(Receiver, String), AnyError> {
    let receiver = Receiver::start().await?;
    let (status, body) = fetch(target.post(
        "/v1/webhooks",
        &json!({
            "url": receiver.url,
            "events": ["appointment.created"],
            "description": "quando-bench create-webhook",
        }),
    ))
    .await?;
    let id = body["data"]["id"].as_str().or(body["id"].as_str());
    match (status, id) {
        (201, Some(id)) => Ok((receiver, id.to_string())),
        _ => Err(format!("creating the bench's webhook endpoint answered {status}: {body}").into()),
    }
}

/// Where the cursor walk got to.
struct Walk {
    /// `nextCursor` of page 1: the cursor of page 2.
    page2: String,
    /// The cursor of the deepest page reached, and that page's number.
    deep: String,
    deep_page: u64,
    /// The walk ended on the last page.
    last: bool,
    histogram: Histogram<u64>,
    elapsed: Duration,
}

/// Walks `limit=20` pages by `nextCursor` from page 1 to page `DEEP_PAGE` (or the last page).
/// `None` when the server does not page by cursor.
async fn walk(t: &Target) -> Result<Option<Walk>, AnyError> {
    let started = Instant::now();
    let mut hist = histogram();
    let first = t.get("/v1/calendar/events?limit=20");
    let t0 = Instant::now();
    let (status, body) = fetch(first).await?;
    hist.record(micros(t0.elapsed()))?;
    if status != 200 {
        return Err(format!("first page answered {status}: {body}").into());
    }
    let Some(next) = body.get("nextCursor") else {
        return Ok(None);
    };
    let Some(page2) = next.as_str().map(str::to_string) else {
        return Err("the first page has no nextCursor: too few events for a walk".into());
    };
    let (mut cursor, mut page, mut last) = (page2.clone(), 2u64, false);
    let mut previous = page2.clone();
    while page < DEEP_PAGE && started.elapsed() < WALK_BUDGET {
        let req = t
            .get("/v1/calendar/events")
            .query(&[("limit", "20"), ("cursor", cursor.as_str())]);
        let t0 = Instant::now();
        let (status, body) = fetch(req).await?;
        hist.record(micros(t0.elapsed()))?;
        if status != 200 {
            return Err(format!("cursor page {page} answered {status}: {body}").into());
        }
        match body["nextCursor"].as_str() {
            Some(next) => {
                previous = std::mem::replace(&mut cursor, next.to_string());
                page += 1;
            }
            None => {
                last = true;
                // Compare full pages: a short last page would flatter the deep cursor.
                if body["data"].as_array().map_or(0, Vec::len) < 20 && page > 2 {
                    cursor = previous;
                    page -= 1;
                }
                break;
            }
        }
    }
    Ok(Some(Walk {
        page2,
        deep: cursor,
        deep_page: page,
        last,
        histogram: hist,
        elapsed: started.elapsed(),
    }))
}

/// Deep listing: a cursor page near the start and one `DEEP_PAGE` pages in, and the same depth
/// by offset (`page=`), each measured like the other workloads.
pub async fn run_deep(target: &Target, plan: &Plan, pid: u32) -> Result<Vec<Row>, AnyError> {
    let mut rows = Vec::new();
    let load = |query: Vec<(&'static str, String)>| {
        let t = target.clone();
        let job: Job =
            Arc::new(move |_| Box::pin(send(t.get("/v1/calendar/events").query(&query))));
        job
    };
    let measure = |job: Job| async move {
        let sampler = crate::child::RssSampler::start(pid);
        let measured = drive(plan.connections, plan.warmup, plan.measure, job).await;
        let rss = sampler.stop(pid).await;
        measured.map(|m| (m, rss))
    };

    eprintln!("  walking cursor pages to page {DEEP_PAGE}");
    match walk(target).await? {
        None => rows.push(Row {
            name: "cursor-page-*".into(),
            what: "GET /v1/calendar/events?limit=20&cursor=...".into(),
            expected: 200,
            measured: None,
            max_rss_kb: None,
            note: Some("cursor paging not available (no nextCursor in the list body)".into()),
        }),
        Some(w) => {
            let walked = format!(
                "walk to page {}{}: {} pages fetched one after another in {:.1}s, p50 {:.2} ms, p99 {:.2} ms",
                w.deep_page,
                if w.last {
                    " (the last full page)"
                } else if w.deep_page < DEEP_PAGE {
                    " (walk time budget spent)"
                } else {
                    ""
                },
                w.histogram.len(),
                w.elapsed.as_secs_f64(),
                w.histogram.value_at_quantile(0.5) as f64 / 1000.0,
                w.histogram.value_at_quantile(0.99) as f64 / 1000.0,
            );
            for (name, what, cursor, note) in [
                (
                    "cursor-page-2".to_string(),
                    "GET ...?limit=20&cursor= (page 1's nextCursor)".to_string(),
                    w.page2,
                    None,
                ),
                (
                    format!("cursor-page-{}", w.deep_page),
                    format!("GET ...?limit=20&cursor= (page {}'s)", w.deep_page),
                    w.deep,
                    Some(walked),
                ),
            ] {
                let (m, rss) =
                    measure(load(vec![("limit", "20".into()), ("cursor", cursor)])).await?;
                rows.push(Row {
                    name,
                    what,
                    expected: 200,
                    measured: Some(m),
                    max_rss_kb: Some(rss),
                    note,
                });
            }
        }
    }

    // Offset paging to the same depth (or the last page).
    let (status, body) = fetch(target.get("/v1/calendar/events?limit=20")).await?;
    let total = body["pagination"]["total"].as_u64().unwrap_or(0);
    let page = DEEP_PAGE.min(total / 20).max(1);
    let note = (status != 200)
        .then(|| format!("first page answered {status}"))
        .or_else(|| (page < DEEP_PAGE).then(|| format!("page {page} is the last full page")));
    let (m, rss) = measure(load(vec![
        ("limit", "20".into()),
        ("page", page.to_string()),
    ]))
    .await?;
    rows.push(Row {
        name: format!("offset-page-{page}"),
        what: format!("GET /v1/calendar/events?page={page}&limit=20"),
        expected: 200,
        measured: Some(m),
        max_rss_kb: Some(rss),
        note,
    });
    Ok(rows)
}

/// The raw-storage baseline: the storage part of the create transaction the server runs
/// (`repo::begin_write`, `find_conflict`, `insert`, commit: BEGIN IMMEDIATE check-and-insert on
/// SQLite, insert under the exclusion constraint on PostgreSQL), called in-process through
/// sea-orm/sqlx from `connections` tasks on distinct free slots. No HTTP, auth, validation,
/// rules or JSON.
pub async fn baseline(
    db: &DatabaseConnection,
    seeded: &Seeded,
    slots: Arc<FreshSlots>,
    plan: &Plan,
) -> Result<Measured, AnyError> {
    let (db, org, event_type) = (db.clone(), seeded.org, seeded.event_type);
    let job: Job = Arc::new(move |_| {
        let (db, slots) = (db.clone(), slots.clone());
        Box::pin(async move {
            let (calendar, start, end) = slots.next();
            let block = block(start, end);
            let new = NewEvent {
                id: quando_api::domain::ids::EventId::generate(),
                calendar_id: CalendarId(calendar),
                event_type_id: Some(EventTypeId(event_type)),
                start,
                end,
                block,
                timezone: ZONE.into(),
                customer_name: Some("Laura Bianchi".into()),
                customer_phone: Some("+390612345678".into()),
                customer_email: Some("laura.bianchi@example.com".into()),
                notes: None,
                title: Some("Demo Prodotto".into()),
                location: None,
                status: entity::events::EventStatus::Confirmed,
                booked_via: "api",
                details: Default::default(),
                all_day: None,
                series: None,
                team_hosts: None,
            };
            let fail = |e: sea_orm::DbErr| format!("{e:?}");
            let (_queued, txn) = quando_api::repo::begin_write(&db).await.map_err(fail)?;
            let calendar = CalendarId(calendar);
            if quando_api::repo::events::find_conflict(&txn, org, calendar, block, None)
                .await
                .map_err(fail)?
                .is_some()
            {
                return Ok(409);
            }
            match quando_api::repo::events::insert(&txn, org, new).await {
                Ok(_) => {
                    txn.commit().await.map_err(fail)?;
                    Ok(201)
                }
                Err(err) if quando_api::db::is_exclusion_violation(&err) => Ok(409),
                Err(err) => Err(fail(err)),
            }
        })
    });
    drive(plan.connections, plan.warmup, plan.measure, job).await
}
