//! The webhook receiver of the create-webhook workload (issue 17): a plain HTTP server in the
//! bench process (on the load generator's cores) that answers every POST with 204 and counts
//! it, so a subscribed endpoint's deliveries cost the server what they cost in production:
//! the outbox row in the booking's transaction, then the worker's claim, signature and send.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::{Request, Route};
use tokio::task::JoinHandle;

use crate::AnyError;

pub struct Receiver {
    /// Where the endpoint points: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver, AnyError> {
        let (acceptor, addr) = crate::hello::bind_loopback().await?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let app = Route::new().at(
            "/hook",
            poem::post(poem::endpoint::make(move |req: Request| {
                let counter = counter.clone();
                async move {
                    let _ = req.into_body().into_bytes().await;
                    counter.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            })),
        );
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(Receiver {
            url: format!("http://{addr}/hook"),
            received,
            task,
        })
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until no delivery has arrived for `quiet` (or `limit` has passed); returns how
    /// long the backlog took to drain.
    pub async fn settle(&self, quiet: Duration, limit: Duration) -> Duration {
        let started = Instant::now();
        let (mut last, mut since) = (self.received(), Instant::now());
        while started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.received();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return since - started;
            }
        }
        started.elapsed()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
