//! The HTTP/1.1 server around `app()`: the accept loop and each connection's limits. It exists
//! because a slow or greedy client must not be able to take the server offline:
//! - a request head (request line and headers) must arrive within `header_read_timeout` of the
//!   server starting to wait for it (hyper's own deadline, which needs a timer poem never gives
//!   it), and a connection with no traffic for `idle_timeout` is closed;
//! - at most `max_connections` are served at once; the rest wait in the kernel's backlog;
//! - when the process runs out of file descriptors (EMFILE/ENFILE), accepting pauses briefly
//!   instead of retrying in a busy loop, and resumes once descriptors are free;
//! - every head is checked before hyper reads it (`head`), so a malformed one is answered in the
//!   JSON envelope with an `X-Request-Id` instead of hyper's empty-bodied 400/431;
//! - a request answered without its body being read (a 401, 404, 413 or 415 refused before the
//!   handler reads it) does not end the keep-alive connection under the client: the loop keeps
//!   hold of the body, drains what is left of it (bounded in bytes and time) after the answer is
//!   made, and only when it cannot says `Connection: close` in that answer, so a client never
//!   writes its next request into a connection the server is closing.
//!
//! It must never hold a connection or a descriptor past these limits, and never answer in
//! anything but the envelope.

mod head;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt, Request};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::metrics::Metrics;

/// Connection limits of `serve`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A request head not complete this long after the server began waiting for it closes the
    /// connection (this also bounds how long a kept-alive connection may sit idle between
    /// requests).
    pub header_read_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// After the shutdown signal, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How long accepting pauses when the process or the system is out of descriptors.
const EXHAUSTED_PAUSE: Duration = Duration::from_millis(100);

/// Serves `endpoint` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to `shutdown_grace`. `metrics` counts heads refused before routing.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    options: ServeOptions,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let endpoint: Arc<poem::endpoint::BoxEndpoint<'static>> =
        Arc::new(endpoint.map_to_response().boxed());
    let local = listener.local_addr()?;
    let permits = options.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(permits));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut exhausted_since: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                if let Some(since) = exhausted_since.take() {
                    tracing::warn!(
                        paused_ms = since.elapsed().as_millis() as u64,
                        "accepting again: file descriptors are available"
                    );
                }
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    endpoint: endpoint.clone(),
                    options: options.clone(),
                    metrics: metrics.clone(),
                    local,
                    remote,
                    stop: stop_rx.clone(),
                };
                tokio::spawn(async move {
                    connection.run(stream).await;
                    drop(slot);
                });
            }
            Err(err) if out_of_descriptors(&err) => {
                drop(slot);
                if exhausted_since.is_none() {
                    exhausted_since = Some(Instant::now());
                    tracing::error!(
                        error = %err,
                        "out of file descriptors: pausing accept; raise the limit (ulimit -n) or lower --max-connections"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(EXHAUSTED_PAUSE) => {}
                }
            }
            // A connection that failed between the kernel and us (reset, aborted): its own
            // business, not the listener's.
            Err(err) => tracing::debug!(error = %err, "accept failed"),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(permits).unwrap_or(u32::MAX);
    if tokio::time::timeout(options.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the system is out of something that closing
/// connections gives back; retrying at once would only spin.
fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(23 | 24 | 105 | 12))
}

struct Connection {
    endpoint: Arc<poem::endpoint::BoxEndpoint<'static>>,
    options: ServeOptions,
    metrics: Option<Arc<Metrics>>,
    local: SocketAddr,
    remote: SocketAddr,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = head::Checked::new(stream, activity.clone(), self.metrics.clone());
        let (endpoint, local, remote) = (self.endpoint.clone(), self.local, self.remote);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let endpoint = endpoint.clone();
            async move {
                let (parts, incoming) = req.into_parts();
                let held = Held::new(incoming);
                let parts = poem::RequestParts::from((
                    parts,
                    LocalAddr(local.into()),
                    RemoteAddr(remote.into()),
                    Scheme::HTTP,
                ));
                let body = poem::Body::from(http_body_util::BodyExt::boxed(
                    http_body_util::BodyExt::map_err(held.clone(), io::Error::other),
                ));
                let mut resp = endpoint
                    .get_response(Request::from_parts(parts, body))
                    .await;
                if !held.drain().await {
                    resp.headers_mut().insert(
                        poem::http::header::CONNECTION,
                        poem::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(hyper::Response::from(resp))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            .keep_alive(true)
            // End of stream after a refused head must not drop the answers to the requests
            // before it; a client that only shuts its sending side still gets its answer.
            .half_close(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle = self.options.idle_timeout;
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = activity.quiet_for(idle) => {
                tracing::debug!(remote = %self.remote, "closing an idle connection");
            }
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
        // Finish what is in flight, take nothing new.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.options.shutdown_grace, conn).await;
    }
}

/// What is left of a request body after its answer is drained up to this many bytes...
const DRAIN_MAX_BYTES: usize = 1024 * 1024;
/// ...for at most this long; past either, the answer closes the connection instead.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

/// A request body shared by the app (which may read it, or drop it unread) and the connection
/// (which drains what the app left, so the connection can serve the next request).
#[derive(Clone)]
struct Held(Arc<std::sync::Mutex<Option<Incoming>>>);

impl Held {
    fn new(body: Incoming) -> Self {
        Held(Arc::new(std::sync::Mutex::new(Some(body))))
    }

    /// Reads what the app left of the body, within the bounds: whether the body is now whole
    /// (so hyper can keep the connection open).
    async fn drain(&self) -> bool {
        use http_body::Body as _;
        use http_body_util::BodyExt;
        let rest = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut rest) = rest else {
            return true;
        };
        if rest.is_end_stream() {
            return true;
        }
        let read = async {
            let mut seen = 0usize;
            while let Some(frame) = rest.frame().await {
                let Ok(frame) = frame else { return false };
                if let Some(data) = frame.data_ref() {
                    seen += data.len();
                    if seen > DRAIN_MAX_BYTES {
                        return false;
                    }
                }
            }
            true
        };
        tokio::time::timeout(DRAIN_MAX_TIME, read)
            .await
            .unwrap_or(false)
    }
}

impl http_body::Body for Held {
    type Data = bytes_of::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut body = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match body.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}

/// `bytes::Bytes`, the data type of hyper's bodies, through hyper's own re-export.
mod bytes_of {
    pub type Bytes = <hyper::body::Incoming as http_body::Body>::Data;
}

/// When a connection last moved a byte, in milliseconds since it was accepted.
pub(crate) struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `quiet`.
    async fn quiet_for(&self, quiet: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + quiet;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}
