//! tracing-subscriber set-up: human-readable by default, one JSON object per line with
//! `QUANDO_LOG_FORMAT=json`. `QUANDO_LOG` is the filter (default `info`). Logs go to stdout.
//!
//! Lines leave through one thread of their own (`tracing-appender`'s non-blocking writer):
//! the task that logs a request hands its line over a queue and goes on, and the log thread
//! writes whatever has queued since its last write in one `write` to stdout. Writing each
//! line from the request's task cost a system call per request, and on a pipe a wake-up of
//! its reader: 10.9% of the server's CPU under `get` in the profile of 2026-12-03 (README).
//! Nothing is dropped: when the queue is full, the logging task waits, as it waited on stdout
//! before. Lines still queued at exit are written when the guard `init` returns is dropped;
//! a killed process loses at most those, never a booking.

use std::io::{BufWriter, Write};

use tracing::Subscriber;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before a logging task waits: at a few hundred bytes a line, about a
/// quarter of a megabyte, so a slow reader of stdout cannot grow the server's memory further.
const QUEUED_LINES: usize = 1_024;

/// What the log thread gathers before one write (the lines of one drain of the queue).
const WRITE_BUFFER: usize = 64 * 1024;

fn filter(spec: Option<&str>) -> EnvFilter {
    EnvFilter::try_new(spec.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The JSON subscriber: each event one line, its fields at the top level.
pub fn json_subscriber<W>(spec: Option<&str>, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter(spec))
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .finish()
}

/// The log thread's writer: lines gathered in `buffered`, written out on each flush (the
/// thread flushes when it has drained the queue).
fn log_thread<W: Write + Send + 'static>(
    buffered: W,
) -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("quando-log")
        .finish(BufWriter::with_capacity(WRITE_BUFFER, buffered))
}

/// Installs the global subscriber as `QUANDO_LOG` and `QUANDO_LOG_FORMAT` say and returns the
/// log thread's guard: keep it until the process ends (dropping it writes what is still queued
/// and stops the thread).
pub fn init() -> WorkerGuard {
    let spec = std::env::var("QUANDO_LOG").ok();
    let spec = spec.as_deref();
    let json = std::env::var("QUANDO_LOG_FORMAT").is_ok_and(|f| f == "json");
    let (writer, guard) = log_thread(std::io::stdout());
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        tracing::subscriber::set_global_default(json_subscriber(spec, writer)).map_err(|_| ())
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter(spec))
            .with_writer(writer)
            .try_init()
            .map_err(|_| ())
    };
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    /// A writer whose writes wait until the test opens it, and that counts them.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicUsize>,
    }

    impl Gate {
        fn open(&self) {
            let (lock, ready) = &*self.open;
            *lock.lock().unwrap() = true;
            ready.notify_all();
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, ready) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = ready.wait(open).unwrap();
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_logged_while_the_output_is_busy_leave_in_one_write_in_order_and_none_is_lost() {
        let gate = Gate::default();
        let (writer, guard) = log_thread(gate.clone());
        let subscriber = json_subscriber(Some("info"), writer);
        tracing::subscriber::with_default(subscriber, || {
            // The first line's write waits on the closed gate (or the line is still queued);
            // the other 99 queue behind it.
            for n in 0..100 {
                tracing::info!(n, "request");
            }
        });
        gate.open();
        drop(guard);
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        let numbers: Vec<u64> = written
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..100).collect::<Vec<u64>>());
        let writes = gate.writes.load(Ordering::SeqCst);
        assert!(
            writes <= 2,
            "100 lines queued behind a busy output took {writes} writes, not one for the first and one for the rest"
        );
    }
}
