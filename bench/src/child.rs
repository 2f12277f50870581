//! The server under test runs in a child process (this binary again, `serve-child`), so the
//! resident memory we report is the server's alone, not the load generator's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use quando_api::config::Config;

use crate::AnyError;

const READY_LINE: &str = "quando-bench child listening on ";
const HELLO_LINE: &str = "quando-bench hello-world listening on ";

/// The child side: what `quando serve` runs (logging set-up, then `Application::build` and
/// `run_until`: migrations, statistics, the accept loop, the hourly housekeeping), on
/// 127.0.0.1:0, with a per-key rate limit no benchmark reaches and webhook endpoints allowed
/// on loopback. Prints its address first.
pub async fn serve_child(database_url: String) -> Result<(), AnyError> {
    let _log = quando_api::telemetry::init();
    let config = Config {
        database_url,
        bind: "127.0.0.1:0".into(),
        rate_limit_per_minute: 1_000_000_000,
        // The create-webhook workload's receiver is on 127.0.0.1, over plain http.
        webhook_allow_private: true,
        ..Config::default()
    };
    let application = quando_api::app::Application::build(config).await?;
    let addr = application.local_addr()?;
    println!("{HELLO_LINE}{}", crate::hello::serve().await?);
    println!("{READY_LINE}http://{addr}");
    application.run_until(std::future::pending()).await?;
    Ok(())
}

/// The parent side: a running server child.
pub struct Server {
    child: Child,
    pub base: String,
    /// The child's poem-openapi hello-world server (`hello.rs`).
    pub hello: String,
}

impl Server {
    /// Starts the child on `database_url` and waits until it listens.
    /// Starts the server child, on core `pin` alone when given (`taskset -c`).
    pub async fn start(database_url: &str, pin: Option<usize>) -> Result<Self, AnyError> {
        let exe = std::env::current_exe()?;
        let mut command = match pin {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(["serve-child", "--database-url", database_url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("child stdout")?;
        let found = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            let mut hello = None;
            loop {
                line.clear();
                if lines.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                if let Some(base) = line.trim().strip_prefix(HELLO_LINE) {
                    hello = Some(base.to_string());
                }
                if let Some(base) = line.trim().strip_prefix(READY_LINE) {
                    let base = base.to_string();
                    // The server logs on stdout, as `quando serve` does; keep draining it.
                    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
                    return Some((base, hello?));
                }
            }
        })
        .await?;
        match found {
            Some((base, hello)) => Ok(Server { child, base, hello }),
            None => {
                let _ = child.kill();
                let status = child.wait()?;
                Err(format!("the server child exited before listening ({status})").into())
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Current and peak resident memory, in KiB.
    pub fn memory(&self) -> Option<(u64, u64)> {
        memory_of(self.pid())
    }

    /// Stops the server (SIGKILL: nothing it holds needs a graceful end here).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples a process's VmRSS every 50 ms until stopped; `stop` returns the largest seen (KiB).
pub struct RssSampler {
    running: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let max = Arc::new(AtomicU64::new(0));
        let (r, m) = (running.clone(), max.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while r.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some((rss, _)) = memory_of(pid) {
                    m.fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        RssSampler { running, max, task }
    }

    pub async fn stop(self, pid: u32) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        if let Some((rss, _)) = memory_of(pid) {
            self.max.fetch_max(rss, Ordering::Relaxed);
        }
        self.max.load(Ordering::Relaxed)
    }
}
