//! Slow, greedy and malformed clients: no request grows the metrics, a head that trickles in is
//! cut off at its deadline, connections over the cap wait, heads hyper would refuse on its own
//! are answered in the envelope, and a declared body over the limit is refused before it is
//! sent. These cases start a second server of their own (`quando_api::server::serve`, what
//! `quando serve` runs) on the case's database, with the limits under test.
//!
//! `process_cases` run the real `quando` binary, once (not per backend): a low descriptor
//! limit, the CLI's zero values, `serve --demo` twice. The binary is built with
//! `cargo build -p quando-api --bin quando` on first use (a no-op when it is fresh).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libtest_mimic::Failed;
use quando_api::admin;
use quando_api::auth::Scope;
use quando_api::config::Config;
use reqwest::Method;
use serde_json::Value;

use crate::protection::{metric, metrics};
use crate::support::*;

/// One CLI run that must be refused: what it is, its arguments, its environment.
type ZeroRun = (String, Vec<String>, Vec<(&'static str, &'static str)>);

pub fn cases() -> Vec<Case> {
    cases![
        thousands_of_requests_with_invented_methods_and_paths_leave_the_metrics_series_bounded,
        rate_limited_requests_and_metrics_itself_carry_their_real_route_label,
        a_client_dribbling_header_bytes_is_disconnected_within_the_head_deadline,
        heads_hyper_would_refuse_on_its_own_are_answered_in_the_envelope_with_a_request_id,
        a_content_length_over_the_body_limit_is_413_at_once_without_waiting_for_the_body,
        connections_over_the_cap_wait_in_the_backlog_and_are_served_when_one_closes,
    ]
}

const EVENTS: &str = "/v1/calendar/events";

/// A second server on the case's database with `config`'s limits: its address.
async fn serve_with(app: &TestApp, config: Config) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let state = quando_api::state::AppState::new(app.db.clone(), config);
    let (metrics, options) = (state.metrics.clone(), state.config.serve_options());
    let endpoint = quando_api::app(state);
    // Ends with the case's runtime.
    tokio::spawn(quando_api::server::serve(
        listener,
        endpoint,
        options,
        Some(metrics),
        std::future::pending(),
    ));
    addr
}

/// What came back on a raw connection before it closed or `wait` passed.
struct Raw {
    bytes: Vec<u8>,
    /// The server closed the connection (end of stream or reset).
    closed: bool,
    /// How long until it closed, or until `wait` passed.
    after: Duration,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Writes `request` on a fresh connection to `addr` and reads until the server closes it or
/// `wait` passes (blocking I/O on a thread of its own).
async fn raw_exchange(addr: SocketAddr, request: Vec<u8>, wait: Duration) -> Raw {
    tokio::task::spawn_blocking(move || {
        let mut stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        // The server may refuse and close before all of it is written: read what it said.
        let _ = stream.write_all(&request);
        read_until_closed(&mut stream, wait)
    })
    .await
    .unwrap_or_else(|e| panic!("the raw client thread failed: {e}"))
}

fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Raw {
    let started = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Raw {
                bytes,
                closed: false,
                after: started.elapsed(),
            };
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => {
                return Raw {
                    bytes,
                    closed: true,
                    after: started.elapsed(),
                };
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return Raw {
                    bytes,
                    closed: true,
                    after: started.elapsed(),
                };
            }
        }
    }
}

/// The one response in `raw`: status, headers (lower-case names) and body.
#[track_caller]
fn parse_response(raw: &Raw) -> (u16, Vec<(String, String)>, String) {
    let text = raw.text();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The connection was answered with `status` in the JSON envelope carrying `code` and a
/// request id equal to its `X-Request-Id`, or closed without a byte; never an empty body.
#[track_caller]
fn assert_envelope_or_closed(raw: &Raw, status: u16, code: &str, what: &str) {
    if raw.bytes.is_empty() {
        assert!(raw.closed, "{what}: neither answered nor closed");
        return;
    }
    let (got, headers, body) = parse_response(raw);
    assert_eq!(got, status, "{what}: {}", raw.text());
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let id =
        header("x-request-id").unwrap_or_else(|| panic!("{what}: no X-Request-Id: {}", raw.text()));
    assert!(
        header("content-type").is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON: {}",
        raw.text()
    );
    let body: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {}", raw.text()));
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
    assert_eq!(body["requestId"], id.as_str(), "{what}: {body}");
}

/// The number of lines of `/metrics`.
async fn metrics_lines(app: &TestApp) -> usize {
    let resp = send(app.client.get(format!("{}/metrics", app.metrics_url))).await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.describe());
    resp.text.lines().count()
}

async fn thousands_of_requests_with_invented_methods_and_paths_leave_the_metrics_series_bounded(
    app: TestApp,
) {
    let request = |method: &str, path: String| {
        let method = Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("method {method}: {e}"));
        app.bare(method, &path)
    };
    // Every kind of request the flood makes, once, so that the series it may add exist.
    for (method, path) in [
        ("GET", "/no/such/path".to_owned()),
        ("POST", "/no/such/path".to_owned()),
        ("BREW", "/no/such/path".to_owned()),
        ("BREW", EVENTS.to_owned()),
        ("GET", format!("{EVENTS}/not-an-id")),
    ] {
        send(request(method, path)).await;
    }
    let before = metrics_lines(&app).await;

    let flood = (0..3000).map(|i| match i % 3 {
        0 => request(&format!("INVENTED{i}"), EVENTS.to_owned()),
        1 => request(
            &format!("X-{i}"),
            format!("/probe/{i}/{}", "z".repeat(i % 50)),
        ),
        _ => request("GET", format!("/wp-admin/{i}.php?q={i}")),
    });
    futures::stream::iter(flood)
        .map(|req| async move { req.send().await.map(|r| r.status().as_u16()) })
        .buffer_unordered(8)
        .for_each(|outcome| async move {
            let status = outcome.unwrap_or_else(|e| panic!("a flood request failed: {e}"));
            assert!(
                (400..500).contains(&status),
                "an invented request got {status}"
            );
        })
        .await;

    let after = metrics_lines(&app).await;
    assert!(
        after <= before + 40,
        "/metrics grew from {before} to {after} lines after 3,000 requests with invented methods and paths"
    );
    let samples = metrics(&app).await;
    assert!(
        metric(
            &samples,
            "quando_http_requests_total",
            &[("method", "other")]
        ) >= 2000.0,
        "invented methods are counted under method=\"other\""
    );
    assert!(
        metric(
            &samples,
            "quando_http_requests_total",
            &[("route", "unmatched")]
        ) >= 2000.0,
        "invented paths are counted under route=\"unmatched\""
    );
}

async fn rate_limited_requests_and_metrics_itself_carry_their_real_route_label(app: TestApp) {
    let limited = admin::create_key(&app.db, app.org_id, &Scope::ALL, Some("one"), Some(1))
        .await
        .unwrap_or_else(|e| panic!("admin::create_key: {e}"));
    let calendars = "/v1/calendar/calendars";
    assert_list(&app.get_as(&limited.key, calendars).await);
    let refused = app.get_as(&limited.key, calendars).await;
    assert_error(&refused, 429, "rate_limit_exceeded");
    metrics(&app).await;

    let samples = metrics(&app).await;
    let count = |labels: &[(&str, &str)]| metric(&samples, "quando_http_requests_total", labels);
    assert_eq!(
        count(&[("route", calendars), ("method", "GET"), ("status", "429")]),
        1.0,
        "the 429 is counted under its route"
    );
    assert!(
        count(&[("route", "/metrics"), ("method", "GET"), ("status", "200")]) >= 1.0,
        "GET /metrics is counted under route=\"/metrics\""
    );
    assert_eq!(
        count(&[("route", "unmatched"), ("status", "429")]),
        0.0,
        "no 429 is unmatched"
    );
}

async fn a_client_dribbling_header_bytes_is_disconnected_within_the_head_deadline(app: TestApp) {
    let addr = serve_with(
        &app,
        Config {
            header_read_timeout: Duration::from_secs(1),
            ..Config::default()
        },
    )
    .await;
    let raw = tokio::task::spawn_blocking(move || {
        let mut stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
        let head = b"GET /healthz HTTP/1.1\r\nHost: quando\r\nX-Slow: ".repeat(20);
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        for byte in head {
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            if stream.write_all(&[byte]).is_err() {
                return Raw {
                    bytes: Vec::new(),
                    closed: true,
                    after: started.elapsed(),
                };
            }
            match stream.read(&mut buf) {
                Ok(n) => {
                    return Raw {
                        bytes: buf[..n].to_vec(),
                        closed: true,
                        after: started.elapsed(),
                    };
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    return Raw {
                        bytes: Vec::new(),
                        closed: true,
                        after: started.elapsed(),
                    };
                }
            }
        }
        Raw {
            bytes: Vec::new(),
            closed: false,
            after: started.elapsed(),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("the dribbling client failed: {e}"));
    assert!(
        raw.closed && raw.after < Duration::from_secs(5),
        "a client sending a header byte every 300 ms is still connected after {:?} (deadline 1 s)",
        raw.after
    );
    assert!(
        raw.bytes.is_empty() || raw.text().contains("\r\n\r\n{"),
        "the connection was closed with an empty-bodied answer: {:?}",
        raw.text()
    );
    // The server itself is fine.
    let ok = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: quando\r\nConnection: close\r\n\r\n".to_vec(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(parse_response(&ok).0, 200, "{}", ok.text());
}

async fn heads_hyper_would_refuse_on_its_own_are_answered_in_the_envelope_with_a_request_id(
    app: TestApp,
) {
    let addr = serve_with(&app, Config::default()).await;
    let many: String = (0..150).map(|i| format!("X-Extra-{i}: 1\r\n")).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "150 headers",
            format!("GET /healthz HTTP/1.1\r\nHost: q\r\n{many}\r\n"),
            431,
            "headers_too_large",
        ),
        (
            "a control byte in a header value",
            "GET /healthz HTTP/1.1\r\nHost: q\r\nX-Bad: a\u{1}b\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "a space in a header name",
            "GET /healthz HTTP/1.1\r\nHost: q\r\nBad Name: 1\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "a 70 KiB URL",
            format!("GET /healthz?q={} HTTP/1.1\r\nHost: q\r\n\r\n", "a".repeat(70 * 1024)),
            431,
            "headers_too_large",
        ),
        (
            "a Content-Length that is not a number",
            "POST /v1/calendar/events HTTP/1.1\r\nHost: q\r\nContent-Length: ten\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "two different Content-Lengths",
            "POST /v1/calendar/events HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".into(),
            400,
            "bad_request",
        ),
        (
            "a Transfer-Encoding that does not end in chunked",
            "POST /v1/calendar/events HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
            400,
            "bad_request",
        ),
    ];
    for (what, request, status, code) in cases {
        let raw = raw_exchange(addr, request.into_bytes(), Duration::from_secs(5)).await;
        assert!(
            !raw.bytes.is_empty(),
            "{what}: closed without an answer (the envelope is expected)"
        );
        assert_envelope_or_closed(&raw, status, code, what);
        assert!(
            raw.closed,
            "{what}: the connection stays open after the refusal"
        );
    }
    // A good request before a bad one on the same connection is still answered, first.
    let raw = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: q\r\n\r\nGET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"
            .to_vec(),
        Duration::from_secs(5),
    )
    .await;
    let text = raw.text();
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("\"bad_request\""),
        "a pipelined good request then a bad one: {text:?}"
    );
}

async fn a_content_length_over_the_body_limit_is_413_at_once_without_waiting_for_the_body(
    app: TestApp,
) {
    let addr = serve_with(&app, Config::default()).await;
    for (what, auth) in [
        ("without a key", String::new()),
        (
            "with a key",
            format!("Authorization: Bearer {}\r\n", app.key),
        ),
    ] {
        let head = format!(
            "POST {EVENTS} HTTP/1.1\r\nHost: q\r\n{auth}Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        );
        let raw = raw_exchange(addr, head.into_bytes(), Duration::from_secs(5)).await;
        assert!(
            !raw.bytes.is_empty(),
            "{what}: no answer within 5 s to a head declaring 10,000,000 bytes and sending none"
        );
        let (status, _, body) = parse_response(&raw);
        assert_eq!(status, 413, "{what}: {}", raw.text());
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", raw.text()));
        assert_eq!(body["error"]["code"], "payload_too_large", "{what}: {body}");
    }
    let (events, _) = assert_list(&app.list_events(&[]).await);
    assert!(events.is_empty(), "a refused body created an event");
}

async fn connections_over_the_cap_wait_in_the_backlog_and_are_served_when_one_closes(app: TestApp) {
    let addr = serve_with(
        &app,
        Config {
            max_connections: 2,
            ..Config::default()
        },
    )
    .await;
    let outcome = tokio::task::spawn_blocking(move || {
        let connect = || TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
        // Two connections that hold both places: each has been answered once.
        let mut held: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut s = connect();
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n")
                    .unwrap_or_else(|e| panic!("write: {e}"));
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).unwrap_or(0);
                assert!(
                    buf[..n].starts_with(b"HTTP/1.1 200"),
                    "a connection under the cap is served: {:?}",
                    String::from_utf8_lossy(&buf[..n])
                );
                s
            })
            .collect();
        let mut third = connect();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
        let waiting = read_until_closed(&mut third, Duration::from_secs(1));
        held.pop();
        let served = read_until_closed(&mut third, Duration::from_secs(5));
        (waiting, served)
    })
    .await
    .unwrap_or_else(|e| panic!("the client thread failed: {e}"));
    let (waiting, served) = outcome;
    assert!(
        waiting.bytes.is_empty() && !waiting.closed,
        "a third connection over a cap of 2 was answered or closed at once: {:?}",
        waiting.text()
    );
    assert_eq!(
        parse_response(&served).0,
        200,
        "the waiting connection is served once a place is free: {}",
        served.text()
    );
}

// ----- the real binary -----

/// The trials that run the `quando` binary, once each.
pub fn process_trials() -> Vec<libtest_mimic::Trial> {
    use libtest_mimic::Trial;
    vec![
        Trial::test(
            "process::hardening::under_a_low_descriptor_limit_the_server_backs_off_and_answers_again_once_connections_close",
            under_a_low_descriptor_limit_the_server_backs_off_and_answers_again_once_connections_close,
        ),
        Trial::test(
            "process::hardening::zero_values_of_cli_settings_are_refused_naming_the_flag",
            zero_values_of_cli_settings_are_refused_naming_the_flag,
        ),
        Trial::test(
            "process::hardening::serve_demo_twice_on_one_database_reuses_its_key",
            serve_demo_twice_on_one_database_reuses_its_key,
        ),
    ]
}

/// The `quando` binary, built (or found fresh) by `cargo build -p quando-api --bin quando`.
fn quando_bin() -> Result<PathBuf, Failed> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args(["build", "-q", "-p", "quando-api", "--bin", "quando"])
            .arg("--message-format=json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if !out.status.success() {
            return Err(format!("cargo build -p quando-api failed: {}", out.status));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["target"]["name"] == "quando")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| "cargo build named no quando executable".to_owned())
    })
    .clone()
    .map_err(Failed::from)
}

/// A `quando` child process, killed when dropped.
struct Quando {
    child: Child,
    /// Lines it printed on stdout, as they come.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Quando {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Quando {
    /// Starts `command` (a `quando serve ...`) with JSON logs and waits for its listening line:
    /// the child, its address and what it printed before.
    fn serve(mut command: Command) -> Result<(Quando, SocketAddr, Vec<String>), Failed> {
        command
            .env("QUANDO_LOG_FORMAT", "json")
            .env("QUANDO_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|e| format!("spawning quando: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let quando = Quando { child, lines };
        let mut before = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = quando
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("quando serve did not start listening: {before:?}"))?;
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["message"] == "quando listening"
            {
                let addr = log["addr"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| format!("no addr in {line}"))?;
                return Ok((quando, addr, before));
            }
            before.push(line);
        }
    }
}

/// One `GET /healthz` on a fresh connection: its status, or None when there is no answer
/// within `wait`.
fn healthz(addr: SocketAddr, wait: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, wait).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n")
        .ok()?;
    let raw = read_until_closed(&mut stream, wait);
    let text = raw.text();
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

/// User plus system CPU time of process `pid`, from /proc.
fn cpu_time(pid: u32) -> Result<Duration, Failed> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("odd stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, Failed> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| Failed::from(format!("no field {i} in {stat}")))
    };
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(100);
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 1000 / hz))
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}/{name}?mode=rwc", dir.path().display())
}

fn under_a_low_descriptor_limit_the_server_backs_off_and_answers_again_once_connections_close()
-> Result<(), Failed> {
    let bin = quando_bin()?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(&bin)
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url"])
        .arg(sqlite_url(&dir, "fd.db"))
        .args(["--header-read-timeout-seconds", "120"]);
    let (quando, addr, _) = Quando::serve(command)?;
    if healthz(addr, Duration::from_secs(5)) != Some(200) {
        return Err("/healthz does not answer before the flood".into());
    }

    // More connections than the process has descriptors: the kernel completes them all, the
    // server can accept only some.
    let held: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("connecting: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    let pid = quando.child.id();
    let (cpu_before, started) = (cpu_time(pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let busy = cpu_time(pid)?.saturating_sub(cpu_before);
    let share = busy.as_secs_f64() / started.elapsed().as_secs_f64();
    if share > 0.2 {
        return Err(format!(
            "out of descriptors, the server used {:.0}% of a core for 2 s (it should wait, not spin)",
            share * 100.0
        )
        .into());
    }

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if healthz(addr, Duration::from_secs(2)) == Some(200) {
            break;
        }
        if Instant::now() > deadline {
            return Err("/healthz does not answer 20 s after the connections closed".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(quando);
    Ok(())
}

fn zero_values_of_cli_settings_are_refused_naming_the_flag() -> Result<(), Failed> {
    let bin = quando_bin()?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let url = sqlite_url(&dir, "zero.db");
    let org = uuid::Uuid::now_v7().to_string();
    let serve = |flag: &str| {
        vec![
            "serve".to_owned(),
            "--bind".into(),
            "127.0.0.1:0".into(),
            flag.into(),
            "0".into(),
        ]
    };
    let key = |flag: &str| {
        vec![
            "key".to_owned(),
            "create".into(),
            "--org".into(),
            org.clone(),
            flag.into(),
            "0".into(),
        ]
    };
    let mut runs: Vec<ZeroRun> = [
        "--rate-limit-per-minute",
        "--auth-failures-per-minute",
        "--request-timeout-seconds",
        "--header-read-timeout-seconds",
        "--max-connections",
    ]
    .into_iter()
    .map(|flag| (flag.to_owned(), serve(flag), Vec::new()))
    .collect();
    for flag in ["--expires-in-days", "--rate-limit"] {
        runs.push((flag.to_owned(), key(flag), Vec::new()));
    }
    runs.push((
        "--rate-limit-per-minute".to_owned(),
        vec!["serve".into(), "--bind".into(), "127.0.0.1:0".into()],
        vec![("QUANDO_RATE_LIMIT_PER_MINUTE", "0")],
    ));
    // Empty metrics settings, and a token too short to be secret, are refused the same way.
    let bare_serve =
        || -> Vec<String> { vec!["serve".into(), "--bind".into(), "127.0.0.1:0".into()] };
    for (flag, value) in [
        ("--metrics-bind", ""),
        ("--metrics-token", ""),
        ("--metrics-token", "short"),
    ] {
        let mut args = bare_serve();
        args.push(format!("{flag}={value}"));
        runs.push((flag.to_owned(), args, Vec::new()));
    }
    runs.push((
        "--metrics-bind".to_owned(),
        bare_serve(),
        vec![("QUANDO_METRICS_BIND", "")],
    ));
    runs.push((
        "--metrics-token".to_owned(),
        bare_serve(),
        vec![("QUANDO_METRICS_TOKEN", "")],
    ));
    for (flag, args, env) in runs {
        let mut child = Command::new(&bin)
            .args(&args)
            .arg("--database-url")
            .arg(&url)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning quando: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("quando {args:?} {env:?} accepted 0 and kept running").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        if status.success() || !stderr.contains(&flag) {
            return Err(format!(
                "quando {args:?} {env:?}: expected a failure naming {flag}, got {status} with {stderr:?}"
            )
            .into());
        }
    }
    Ok(())
}

fn serve_demo_twice_on_one_database_reuses_its_key() -> Result<(), Failed> {
    let bin = quando_bin()?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let url = sqlite_url(&dir, "demo.db");
    let start = || -> Result<(String, String), Failed> {
        let mut command = Command::new(&bin);
        command
            .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--database-url"])
            .arg(&url);
        let (quando, _, printed) = Quando::serve(command)?;
        drop(quando);
        let field = |label: &str| {
            printed
                .iter()
                .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
                .ok_or_else(|| Failed::from(format!("no {label:?} line in {printed:?}")))
        };
        Ok((field("Demo organization")?, field("API key")?))
    };
    let key_count = |org: &str| -> Result<usize, Failed> {
        let out = Command::new(&bin)
            .args(["key", "list", "--org", org, "--database-url"])
            .arg(&url)
            .output()
            .map_err(|e| format!("quando key list: {e}"))?;
        let keys: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("quando key list printed no JSON ({e})"))?;
        keys.as_array()
            .map(Vec::len)
            .ok_or_else(|| Failed::from(format!("quando key list: {keys}")))
    };
    let (org, first_key) = start()?;
    let after_first = key_count(&org)?;
    let (org_again, second_key) = start()?;
    if org_again != org {
        return Err(format!("a second demo organization {org_again} beside {org}").into());
    }
    let after_second = key_count(&org)?;
    if after_second != after_first {
        return Err(format!(
            "the demo organization had {after_first} keys after the first start and {after_second} after the second"
        )
        .into());
    }
    if second_key != first_key {
        return Err(format!(
            "the second start printed another key ({second_key}) than the first ({first_key})"
        )
        .into());
    }
    Ok(())
}
