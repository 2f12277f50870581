//! Printing one backend's results: a plain table for the terminal or Markdown for the README,
//! the raw-storage baseline with create's ratio to it, and the targets with what was
//! measured against each.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::Measured;
use crate::workloads::{DEEP_PAGE, Row};

pub struct BackendReport {
    pub label: String,
    pub events: usize,
    pub calendars: usize,
    pub events_per_calendar: usize,
    pub seeded_in: Duration,
    /// The team-availability workload's team: hosts, events per host, seeding time.
    pub team: Option<(usize, usize, Duration)>,
    pub connections: usize,
    pub seconds: u64,
    pub warmup: Duration,
    pub baseline: Option<Measured>,
    /// SQLite only: the same check-and-insert through rusqlite, one thread (issue 17).
    pub driver_free: Option<Measured>,
    /// The core the server was pinned to (the load generator had the others).
    pub pinned: Option<usize>,
    pub rows: Vec<Row>,
    /// Server VmRSS before the first workload and VmHWM after the last, KiB.
    pub rss_idle_kb: Option<u64>,
    pub rss_peak_kb: Option<u64>,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn statuses(row: &Row) -> String {
    let Some(m) = &row.measured else {
        return "-".into();
    };
    let mut parts: Vec<String> = m
        .statuses
        .iter()
        .map(|(s, n)| {
            if *s == row.expected {
                format!("{s}: {n}")
            } else {
                format!("{s}: {n} UNEXPECTED")
            }
        })
        .collect();
    if m.failures > 0 {
        parts.push(format!("no response: {} UNEXPECTED", m.failures));
    }
    parts.join(", ")
}

fn notes(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        if let Some(note) = &row.note {
            out.push(format!("{}: {note}", row.name));
        }
        if let Some(example) = row
            .measured
            .as_ref()
            .and_then(|m| m.failure_example.as_ref())
        {
            out.push(format!(
                "{}: a request without response: {example}",
                row.name
            ));
        }
    }
    out
}

fn find<'a>(rows: &'a [Row], name: &str) -> Option<&'a Measured> {
    rows.iter()
        .find(|r| r.name == name)
        .and_then(|r| r.measured.as_ref())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

/// The targets: (target, measured, verdict).
fn targets(r: &BackendReport) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let (Some(create), Some(base)) = (find(&r.rows, "create"), &r.baseline) {
        let ratio = create.rate() / base.rate().max(1e-9);
        out.push((
            "create >= 50% of the raw-storage transaction rate".into(),
            format!(
                "{:.0} req/s vs {:.0} tx/s = {:.0}%",
                create.rate(),
                base.rate(),
                ratio * 100.0
            ),
            verdict(ratio >= 0.5).into(),
        ));
    }
    if let (Some(create), Some(free)) = (find(&r.rows, "create"), &r.driver_free) {
        let ratio = create.rate() / free.rate().max(1e-9);
        out.push((
            "create over HTTP >= 1.0x the driver-free rate (rusqlite, one booking per fsync; issue 17)"
                .into(),
            format!(
                "{:.0} req/s vs {:.0} tx/s = {ratio:.2}x",
                create.rate(),
                free.rate()
            ),
            verdict(ratio >= 1.0).into(),
        ));
    }
    if let Some(create) = find(&r.rows, "create") {
        out.push((
            "create p99 < 10 ms".into(),
            format!("{:.2} ms", create.ms(0.99)),
            verdict(create.ms(0.99) < 10.0).into(),
        ));
    }
    // The suite's events and the team's (when team-availability seeded one).
    let org_events = r.events + r.team.map_or(0, |(hosts, per_host, _)| hosts * per_host);
    for name in ["list", "list-filtered"] {
        if let Some(m) = find(&r.rows, name) {
            out.push((
                format!(
                    "{name} p99 < 5 ms with {} events in the org",
                    thousands(org_events as u64)
                ),
                format!("{:.2} ms", m.ms(0.99)),
                verdict(m.ms(0.99) < 5.0).into(),
            ));
        }
    }
    // Issue 17: tails, and what a key costs.
    if let Some(create) = find(&r.rows, "create") {
        let ratio = create.ms(0.99) / create.ms(0.5).max(1e-9);
        out.push((
            format!(
                "create p99 <= 3x its p50 at {}",
                count(r.connections, "connection")
            ),
            format!(
                "p50 {:.2} ms, p99 {:.2} ms ({ratio:.2}x)",
                create.ms(0.5),
                create.ms(0.99)
            ),
            verdict(ratio <= 3.0).into(),
        ));
        if let Some(keyed) = find(&r.rows, "create-idempotent") {
            let share = keyed.rate() / create.rate().max(1e-9);
            out.push((
                "create with an Idempotency-Key >= 85% of plain create (the key alone)".into(),
                format!(
                    "{:.0} vs {:.0} req/s = {:.0}%",
                    keyed.rate(),
                    create.rate(),
                    share * 100.0
                ),
                verdict(share >= 0.85).into(),
            ));
        }
        if let Some(hooked) = find(&r.rows, "create-webhook") {
            let share = hooked.rate() / create.rate().max(1e-9);
            out.push((
                "create with an Idempotency-Key and one subscribed webhook endpoint >= 85% of plain create".into(),
                format!(
                    "{:.0} vs {:.0} req/s = {:.0}%",
                    hooked.rate(),
                    create.rate(),
                    share * 100.0
                ),
                verdict(share >= 0.85).into(),
            ));
        }
    }
    // Issue 17: the framework ceiling.
    if let (Some(get), Some(hello)) = (find(&r.rows, "get"), find(&r.rows, "hello")) {
        let ratio = get.rate() / hello.rate().max(1e-9);
        out.push((
            "get >= 15% of a poem-openapi hello world's rate in the same process".into(),
            format!(
                "{:.0} vs {:.0} req/s = {:.1}%",
                get.rate(),
                hello.rate(),
                ratio * 100.0
            ),
            verdict(ratio >= 0.15).into(),
        ));
    }
    // Issue 17: first pages answer from counters, within 2x of a get by id.
    if let Some(get) = find(&r.rows, "get") {
        for name in ["list", "list-status", "list-calendar"] {
            if let Some(m) = find(&r.rows, name) {
                let ratio = m.ms(0.99) / get.ms(0.99).max(1e-9);
                out.push((
                    format!(
                        "{name} p99 <= 2x get's p99 with {} events in the org",
                        thousands(org_events as u64)
                    ),
                    format!(
                        "{:.2} ms against {:.2} ms ({ratio:.2}x)",
                        m.ms(0.99),
                        get.ms(0.99)
                    ),
                    verdict(ratio <= 2.0).into(),
                ));
            }
        }
    }
    let deep = r
        .rows
        .iter()
        .find(|row| row.name.starts_with("cursor-page-") && row.name != "cursor-page-2");
    match (find(&r.rows, "cursor-page-2"), deep) {
        (Some(shallow), Some(deep_row)) => {
            if let Some(deep) = &deep_row.measured {
                let ratio = deep.ms(0.5) / shallow.ms(0.5).max(1e-9);
                let page1 = find(&r.rows, "list")
                    .map(|m| {
                        format!(
                            "; page 1 without cursor (`list`, counts the org): p50 {:.2} ms",
                            m.ms(0.5)
                        )
                    })
                    .unwrap_or_default();
                out.push((
                    format!(
                        "cursor page {DEEP_PAGE} as fast as page 1 (deepest cursor page walked: p50 within 25% of cursor page 2)"
                    ),
                    format!(
                        "{}: p50 {:.2} ms, {:.0} req/s; cursor-page-2: p50 {:.2} ms, {:.0} req/s ({ratio:.2}x){page1}",
                        deep_row.name,
                        deep.ms(0.5),
                        deep.rate(),
                        shallow.ms(0.5),
                        shallow.rate()
                    ),
                    verdict(ratio <= 1.25).into(),
                ));
            }
        }
        _ => {
            if r.rows.iter().any(|row| row.name == "cursor-page-*") {
                out.push((
                    format!("cursor page {DEEP_PAGE} as fast as page 1"),
                    "cursor paging not available".into(),
                    "not measured".into(),
                ));
            }
        }
    }
    if let Some(m) = find(&r.rows, "availability") {
        let note = if r.events_per_calendar >= 10_000 {
            String::new()
        } else {
            format!(
                " (calendars hold {} events here, not 10,000; `quando-bench availability` seeds 10,000)",
                thousands(r.events_per_calendar as u64)
            )
        };
        out.push((
            "availability 31 days over 10,000 events: median < 5 ms".into(),
            format!("median {:.2} ms{note}", m.ms(0.5)),
            verdict(m.ms(0.5) < 5.0).into(),
        ));
    }
    if let Some(m) = find(&r.rows, "team-availability") {
        let (hosts, per_host) = r.team.map_or((0, 0), |(h, n, _)| (h, n));
        out.push((
            format!(
                "team-availability: 31 days over {hosts} hosts with {} events each (round robin, `hosts=true`): p50 < 20 ms",
                thousands(per_host as u64)
            ),
            format!("median {:.2} ms", m.ms(0.5)),
            verdict(m.ms(0.5) < 20.0).into(),
        ));
    }
    if let Some(row) = r.rows.iter().find(|row| row.name == "create")
        && let Some(kb) = row.max_rss_kb
    {
        out.push((
            "server RSS < 50 MB under the create load".into(),
            format!("max {:.1} MB", mb(kb)),
            verdict(mb(kb) < 50.0).into(),
        ));
    }
    out
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn header(r: &BackendReport) -> String {
    let team = r.team.map_or(String::new(), |(hosts, per_host, took)| {
        format!(
            "; team-availability's team: {} more events over {} (round robin), seeded in {:.1}s",
            thousands((hosts * per_host) as u64),
            count(hosts, "host calendar"),
            took.as_secs_f64()
        )
    });
    let pinned = r.pinned.map_or(String::new(), |core| {
        format!("; server pinned to CPU {core}, load generator and baselines to the other cores (taskset)")
    });
    format!(
        "{} over {} ({} per calendar), seeded in {:.1}s{team}; {}, {}s per workload after {}s warm-up{pinned}",
        count(r.events, "event"),
        count(r.calendars, "calendar"),
        thousands(r.events_per_calendar as u64),
        r.seeded_in.as_secs_f64(),
        count(r.connections, "connection"),
        r.seconds,
        r.warmup.as_secs()
    )
}

/// `1 calendar`, `1,000 calendars`.
pub fn count(n: usize, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", thousands(n as u64))
}

fn driver_free_line(r: &BackendReport) -> Option<String> {
    let free = r.driver_free.as_ref()?;
    Some(format!(
        "driver-free baseline (the same check-and-insert on the same file through SQLite's C API with rusqlite: one thread, one booking per BEGIN IMMEDIATE transaction, synchronous=FULL): {:.0} tx/s, p50 {:.2} ms, p99 {:.2} ms ({} not 201)",
        free.rate(),
        free.ms(0.5),
        free.ms(0.99),
        free.unexpected(201)
    ))
}

fn baseline_line(r: &BackendReport) -> Option<String> {
    let base = r.baseline.as_ref()?;
    let mut line = format!(
        "raw-storage baseline (repo::begin_write + find_conflict + insert in-process through sea-orm/sqlx, i.e. the driver: no HTTP, auth, rules, validation or JSON; {}): {:.0} tx/s, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
        count(r.connections, "task"),
        base.rate(),
        base.ms(0.5),
        base.ms(0.99),
        base.ms(0.999)
    );
    if base.unexpected(201) > 0 {
        let _ = write!(
            line,
            " ({} UNEXPECTED outcomes: {:?}, {} errors{})",
            base.unexpected(201),
            base.statuses,
            base.failures,
            base.failure_example
                .as_deref()
                .map(|e| format!(", e.g. {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(create) = find(&r.rows, "create") {
        let _ = write!(
            line,
            "\ncreate over HTTP = {:.2}x the raw-storage rate ({:.0} / {:.0})",
            create.rate() / base.rate().max(1e-9),
            create.rate(),
            base.rate()
        );
    }
    Some(line)
}

fn memory_line(r: &BackendReport) -> String {
    format!(
        "server child (`quando serve`'s stack; logs as it does, QUANDO_LOG={}): RSS {} MB idle before the first workload, {} MB peak (VmHWM) over the run",
        std::env::var("QUANDO_LOG").unwrap_or_else(|_| "info (a line per request)".into()),
        r.rss_idle_kb
            .map_or("?".into(), |kb| format!("{:.1}", mb(kb))),
        r.rss_peak_kb
            .map_or("?".into(), |kb| format!("{:.1}", mb(kb)))
    )
}

fn cells(row: &Row) -> [String; 5] {
    match &row.measured {
        Some(m) => [
            format!("{:.0}", m.rate()),
            format!("{:.2}", m.ms(0.5)),
            format!("{:.2}", m.ms(0.99)),
            format!("{:.2}", m.ms(0.999)),
            row.max_rss_kb
                .map_or("-".into(), |kb| format!("{:.1}", mb(kb))),
        ],
        None => ["-".into(), "-".into(), "-".into(), "-".into(), "-".into()],
    }
}

pub fn text(r: &BackendReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n== {} ==", r.label);
    let _ = writeln!(s, "{}", header(r));
    let _ = writeln!(
        s,
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>8}  statuses",
        "workload", "req/s", "p50 ms", "p99 ms", "p999 ms", "RSS MB"
    );
    for row in &r.rows {
        let [rate, p50, p99, p999, rss] = cells(row);
        let _ = writeln!(
            s,
            "{:<18} {rate:>8} {p50:>8} {p99:>8} {p999:>8} {rss:>8}  {}",
            row.name,
            statuses(row)
        );
    }
    let _ = writeln!(
        s,
        "(RSS MB = the server child's largest VmRSS during the workload)"
    );
    for row in &r.rows {
        if !row.what.is_empty() {
            let _ = writeln!(s, "  {:<18} {}", row.name, row.what);
        }
    }
    for note in notes(&r.rows) {
        let _ = writeln!(s, "note: {note}");
    }
    if let Some(line) = baseline_line(r) {
        let _ = writeln!(s, "{line}");
    }
    if let Some(line) = driver_free_line(r) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "{}", memory_line(r));
    let _ = writeln!(s, "targets:");
    for (target, measured, verdict) in targets(r) {
        let _ = writeln!(s, "  [{verdict}] {target}: {measured}");
    }
    s
}

pub fn markdown(r: &BackendReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n### {}\n", r.label);
    let _ = writeln!(s, "{}.\n", header(r));
    let _ = writeln!(
        s,
        "| Workload | req/s | p50 ms | p99 ms | p999 ms | max RSS MB | Statuses |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    for row in &r.rows {
        let [rate, p50, p99, p999, rss] = cells(row);
        let _ = writeln!(
            s,
            "| `{}` | {rate} | {p50} | {p99} | {p999} | {rss} | {} |",
            row.name,
            statuses(row)
        );
    }
    let _ = writeln!(s);
    for note in notes(&r.rows) {
        let _ = writeln!(s, "- {note}");
    }
    if let Some(line) = baseline_line(r) {
        for l in line.lines() {
            let _ = writeln!(s, "- {l}");
        }
    }
    if let Some(line) = driver_free_line(r) {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s, "- {}\n", memory_line(r));
    let _ = writeln!(s, "| Target | Measured | |");
    let _ = writeln!(s, "|---|---|---|");
    for (target, measured, verdict) in targets(r) {
        let _ = writeln!(s, "| {target} | {measured} | {verdict} |");
    }
    s
}
