//! Storage faults, as an unlucky operator meets them: a disk that fills up, database files made
//! unwritable, PostgreSQL connections killed mid-transaction. Through each, the promise holds:
//! every booking answered 201 is in the database after a restart, nothing else is acknowledged,
//! transient trouble is a 503 (never a 500), the server recovers without a restart, and
//! repeated list calls agree on their totals (no connection went back to the pool holding a
//! transaction).
//!
//! These run once each, on the backend they are about (not once per backend), and need root for
//! `mount -t tmpfs` and `chattr` (CI runs as root).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

pub fn trials(postgres_url: Option<String>) -> Vec<Trial> {
    let skip_pg = postgres_url.is_none();
    vec![
        Trial::test(
            "faults::a_full_disk_under_sqlite_never_acknowledges_a_lost_booking",
            || block_on(full_disk()),
        ),
        Trial::test(
            "faults::unwritable_sqlite_files_never_acknowledge_a_lost_booking",
            || block_on(immutable_files()),
        ),
        Trial::test(
            "faults::killed_postgres_connections_never_lose_an_acknowledged_booking",
            move || block_on(killed_connections(postgres_url.clone().unwrap_or_default())),
        )
        .with_ignored_flag(skip_pg),
    ]
}

fn block_on(f: impl std::future::Future<Output = Result<(), String>>) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let out = rt.block_on(async { tokio::time::timeout(Duration::from_secs(240), f).await });
    rt.shutdown_timeout(Duration::from_secs(2));
    match out {
        Ok(r) => r.map_err(Failed::from),
        Err(_) => Err(Failed::from("timed out after 240 s")),
    }
}

/// A real server on a database URL, stoppable and restartable on the same database.
struct Server {
    base: String,
    db: DatabaseConnection,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(url: &str) -> Result<Server, String> {
        let config = quando_api::config::Config {
            database_url: url.to_string(),
            bind: "127.0.0.1:0".into(),
            rate_limit_per_minute: 1_000_000,
            ..quando_api::config::Config::default()
        };
        let application = quando_api::app::Application::build(config)
            .await
            .map_err(|e| format!("Application::build: {e}"))?;
        let addr = application.local_addr().map_err(|e| e.to_string())?;
        let db = application.state().db.clone();
        let task = tokio::spawn(async move {
            let _ = application.run_until(std::future::pending()).await;
        });
        Ok(Server {
            base: format!("http://{addr}"),
            db,
            task,
        })
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let _ = self.db.close().await;
    }
}

/// An organization with a key, a calendar open around the clock and a 30-minute event type.
struct Tenant {
    key: String,
    calendar: String,
    event_type: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

async fn tenant(server: &Server) -> Result<Tenant, String> {
    let org = quando_api::admin::create_organization(&server.db, "Faults Ltd")
        .await
        .map_err(|e| format!("create org: {e}"))?;
    let key = org.api_key.key;
    let c = client();
    let calendar: Value = c
        .post(format!("{}/v1/calendar/calendars", server.base))
        .bearer_auth(&key)
        .json(&json!({"name": "Chair 1", "timezone": "UTC"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let calendar = calendar["data"]["id"]
        .as_str()
        .ok_or("no calendar id")?
        .to_string();
    let et: Value = c
        .post(format!("{}/v1/calendar/event-types", server.base))
        .bearer_auth(&key)
        .json(&json!({"name": "Visit", "durationMinutes": 30}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let event_type = et["data"]["id"]
        .as_str()
        .ok_or("no event type id")?
        .to_string();
    Ok(Tenant {
        key,
        calendar,
        event_type,
    })
}

/// What the server said to a batch of bookings.
#[derive(Default)]
struct Outcome {
    acked: Vec<String>,
    unavailable: usize,
    /// The last 503 or transport failure, for the failure message.
    last_failure: Option<String>,
}

/// Books slots `from..to` (30 minutes each from 2030-01-01), `parallel` at a time. Any answer but
/// 201 or 503 `service_unavailable` (with Retry-After) is a failure; a transport error (a
/// connection the server dropped) is counted with the 503s.
async fn book(
    base: &str,
    t: &Tenant,
    slots: std::ops::Range<i64>,
    parallel: usize,
) -> Result<Outcome, String> {
    use futures::StreamExt;
    let start = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .map_err(|e| e.to_string())?
        .with_timezone(&chrono::Utc);
    let c = client();
    let results: Vec<Result<(u16, Value, bool), String>> = futures::stream::iter(slots)
        .map(|i| {
            let c = c.clone();
            let s = start + chrono::Duration::minutes(30 * i);
            let body = json!({
                "calendarId": t.calendar,
                "eventTypeId": t.event_type,
                "startTime": s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "endTime": (s + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "customerName": format!("Customer {i}"),
            });
            let url = format!("{base}/v1/calendar/events");
            let key = t.key.clone();
            async move {
                match c.post(url).bearer_auth(key).json(&body).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r.headers().contains_key("retry-after");
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        Ok((status, v, retry_after))
                    }
                    Err(e) if e.is_connect() || e.is_request() => Ok((0, Value::Null, true)),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut out = Outcome::default();
    for r in results {
        let (status, body, retry_after) = r?;
        match status {
            201 => out.acked.push(
                body["data"]["id"]
                    .as_str()
                    .ok_or("201 without an id")?
                    .to_string(),
            ),
            0 => {
                out.unavailable += 1;
                out.last_failure = Some("no answer (connection closed)".into());
            }
            503 if body["error"]["code"] == "service_unavailable" && retry_after => {
                out.unavailable += 1;
                out.last_failure = Some(body.to_string());
            }
            other => return Err(format!("booking answered {other}: {body}")),
        }
    }
    Ok(out)
}

/// The organization's event total as `GET /v1/calendar/events` reports it.
async fn list_total(base: &str, key: &str) -> Result<u64, String> {
    let v: Value = client()
        .get(format!("{base}/v1/calendar/events?limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    v["pagination"]["total"]
        .as_u64()
        .ok_or_else(|| format!("no total in {v}"))
}

/// Repeated list calls agree (every pooled connection sees the same committed state).
async fn totals_agree(base: &str, key: &str) -> Result<u64, String> {
    let mut seen = BTreeSet::new();
    for _ in 0..12 {
        seen.insert(list_total(base, key).await?);
    }
    match seen.len() {
        1 => Ok(*seen.iter().next().unwrap_or(&0)),
        _ => Err(format!(
            "repeated list calls disagree on the total: {seen:?}"
        )),
    }
}

/// After a restart on the same database: every acknowledged id is there, and at most
/// `unanswered` more (a commit whose answer was lost with its connection may have happened).
async fn all_present(
    url: &str,
    key: &str,
    acked: &[String],
    unanswered: usize,
) -> Result<(), String> {
    let server = Server::start(url).await?;
    let c = client();
    let mut missing = Vec::new();
    for id in acked {
        let status = c
            .get(format!("{}/v1/calendar/events/{id}", server.base))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status()
            .as_u16();
        if status != 200 {
            missing.push(id.clone());
        }
    }
    let total = totals_agree(&server.base, key).await;
    server.stop().await;
    if !missing.is_empty() {
        return Err(format!(
            "{} of {} acknowledged bookings are missing after a restart: {missing:?}",
            missing.len(),
            acked.len()
        ));
    }
    let total = total?;
    if total < acked.len() as u64 || total > (acked.len() + unanswered) as u64 {
        return Err(format!(
            "after a restart the list holds {total} events: {} were acknowledged and {unanswered} unanswered",
            acked.len()
        ));
    }
    Ok(())
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?} failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Fills the file system holding `dir` until a write fails; returns the filler's path.
fn fill(dir: &Path) -> Result<std::path::PathBuf, String> {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("filler: {e}"))?;
    let chunk = vec![0u8; 4096];
    loop {
        if f.write_all(&chunk).and_then(|_| f.sync_all()).is_err() {
            break;
        }
    }
    Ok(path)
}

/// A tmpfs mounted inside a temporary directory: unmounted, then the directory removed.
struct Tmpfs(std::path::PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn full_disk() -> Result<(), String> {
    let holder = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mount = holder.path().join("fs");
    std::fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
    let m = mount.to_string_lossy().to_string();
    // Room for the migrations to run on an empty disk (their write-ahead log peaks at a few MB
    // since migrations 13 and 14; at 4 MB start-up itself ran out of space now and then); the
    // fault is `fill`'s, which takes whatever space is left.
    run("mount", &["-t", "tmpfs", "-o", "size=16m", "tmpfs", &m])?;
    let _mounted = Tmpfs(mount.clone(), holder);
    let url = format!("sqlite://{}/quando.db?mode=rwc", mount.display());

    let server = Server::start(&url).await?;
    let t = tenant(&server).await?;
    let mut acked = book(&server.base, &t, 0..20, 4).await?.acked;
    if acked.len() != 20 {
        return Err(format!(
            "before the fault only {} of 20 booked",
            acked.len()
        ));
    }

    // The disk fills: bookings are 201 (committed) or 503, nothing else, and nothing is lost.
    let filler = fill(&mount)?;
    let during = book(&server.base, &t, 100..180, 8).await?;
    if during.unavailable == 0 {
        return Err("no booking failed on a full disk: the fault was not reached".into());
    }
    acked.extend(during.acked);
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .status()
        .as_u16();
    if ready != 503 {
        return Err(format!("/readyz answered {ready} on a full disk, not 503"));
    }

    // Space comes back: the server recovers without a restart.
    std::fs::remove_file(&filler).map_err(|e| e.to_string())?;
    let after = book(&server.base, &t, 200..260, 8).await?;
    if after.acked.len() != 60 {
        return Err(format!(
            "after the disk was freed only {} of 60 bookings succeeded ({} unavailable)",
            after.acked.len(),
            after.unavailable
        ));
    }
    acked.extend(after.acked);
    let total = totals_agree(&server.base, &t.key).await?;
    if total != acked.len() as u64 {
        return Err(format!(
            "the list says {total} events but {} were acknowledged",
            acked.len()
        ));
    }
    server.stop().await;
    all_present(&url, &t.key, &acked, 0).await
}

async fn immutable_files() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}/quando.db?mode=rwc", dir.path().display());
    let server = Server::start(&url).await?;
    let t = tenant(&server).await?;
    let mut acked = book(&server.base, &t, 0..20, 4).await?.acked;

    let files: Vec<String> = ["quando.db", "quando.db-wal"]
        .iter()
        .map(|f| dir.path().join(f).to_string_lossy().to_string())
        .filter(|p| Path::new(p).exists())
        .collect();
    let args: Vec<&str> = std::iter::once("+i")
        .chain(files.iter().map(String::as_str))
        .collect();
    run("chattr", &args)?;
    let during = book(&server.base, &t, 100..140, 8).await;
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string());
    let mut undo: Vec<&str> = vec!["-i"];
    undo.extend(files.iter().map(String::as_str));
    run("chattr", &undo)?;
    let during = during?;
    if during.unavailable == 0 {
        return Err("no booking failed on unwritable files: the fault was not reached".into());
    }
    if ready != Ok::<u16, String>(503) {
        return Err(format!(
            "/readyz answered {ready:?} with unwritable files, not 503"
        ));
    }
    acked.extend(during.acked);

    let after = book(&server.base, &t, 200..240, 8).await?;
    if after.acked.len() != 40 {
        return Err(format!(
            "once writable again only {} of 40 bookings succeeded; last failure: {:?}",
            after.acked.len(),
            after.last_failure
        ));
    }
    acked.extend(after.acked);
    let total = totals_agree(&server.base, &t.key).await?;
    if total != acked.len() as u64 {
        return Err(format!(
            "the list says {total} events but {} were acknowledged",
            acked.len()
        ));
    }
    server.stop().await;
    all_present(&url, &t.key, &acked, 0).await
}

async fn killed_connections(admin_url: String) -> Result<(), String> {
    let name = format!("quando_faults_{}", uuid::Uuid::now_v7().simple());
    let admin = Database::connect(&admin_url)
        .await
        .map_err(|e| format!("admin connect: {e}"))?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| e.to_string())?;
    let mut url = reqwest::Url::parse(&admin_url).map_err(|e| e.to_string())?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let result = async {
        let server = Server::start(&url).await?;
        let t = tenant(&server).await?;
        // Bookings in flight while every server connection is terminated, again and again.
        let load = book(&server.base, &t, 0..240, 8);
        let killer = async {
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let _ = admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .await;
            }
        };
        let (outcome, ()) = tokio::join!(load, killer);
        let outcome = outcome?;
        let unanswered = outcome.unavailable;
        let mut acked = outcome.acked;
        // Recovered without a restart.
        let after = book(&server.base, &t, 300..330, 4).await?;
        if after.acked.len() != 30 {
            return Err(format!(
                "after the kills only {} of 30 bookings succeeded",
                after.acked.len()
            ));
        }
        acked.extend(after.acked);
        server.stop().await;
        all_present(&url, &t.key, &acked, unanswered).await
    }
    .await;
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    result
}
