//! Checks every request head on a connection before hyper reads it. hyper answers a head it
//! cannot parse (bad bytes, over 100 headers, a bad `Content-Length` or `Transfer-Encoding`)
//! on its own with an empty-bodied 400 or 431; this reader finds those heads first, gives hyper
//! only what came before them, and answers them itself in the JSON envelope with an
//! `X-Request-Id` before the connection closes.
//!
//! To know where each head starts it follows the request stream: a head, then its body by
//! `Content-Length` or chunked framing. Anything it cannot follow (a malformed chunk) is passed
//! to hyper untouched from then on; hyper refuses it and closes the connection.
//!
//! Head bytes are held back until the head is complete, so hyper never sees a partial head: its
//! head deadline runs while they trickle in.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use poem::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Activity;
use crate::metrics::{Metrics, method_label};

/// The largest request head (request line and headers) read; hyper and the app see smaller.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;
/// hyper's own limit, which a head must not reach.
const MAX_HEADERS: usize = 100;

/// Where the reader is in the request stream.
#[derive(Debug)]
enum Phase {
    /// Collecting a head; nothing of it has been passed on.
    Head,
    /// Inside a body of known length: this many bytes to go.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// No longer followed: every byte goes to hyper.
    PassThrough,
    /// A bad head was found: hyper gets end of stream, the client our answer.
    Refused,
}

/// The chunked-body framing, just enough of it to find where the body ends.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size { digits: u8, value: u64 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { empty: bool },
    TrailerLf { empty: bool },
}

/// The verdict on a complete head.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    method: &'static str,
}

/// The connection's socket, read through the head check.
pub(crate) struct Checked {
    inner: TcpStream,
    activity: Arc<Activity>,
    metrics: Option<Arc<Metrics>>,
    phase: Phase,
    /// The head being collected.
    head: Vec<u8>,
    /// Checked bytes not yet handed to hyper, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// Our own answer to a refused head, written before the connection is shut.
    answer: Option<(Vec<u8>, usize)>,
}

impl Checked {
    pub(crate) fn new(
        inner: TcpStream,
        activity: Arc<Activity>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Checked {
            inner,
            activity,
            metrics,
            phase: Phase::Head,
            head: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            answer: None,
        }
    }

    /// Follows `bytes` through the stream, moving what hyper may see into `ready`.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::PassThrough => {
                    self.ready.extend_from_slice(bytes);
                    return;
                }
                Phase::Refused => return,
                Phase::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    self.ready.extend_from_slice(&bytes[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.phase = Phase::Head;
                    }
                    bytes = &bytes[n..];
                }
                Phase::Chunked(chunk) => {
                    let (used, next) = follow_chunks(*chunk, bytes);
                    self.ready.extend_from_slice(&bytes[..used]);
                    self.phase = next;
                    bytes = &bytes[used..];
                }
                Phase::Head => {
                    let start = self.head.len();
                    // Empty lines before a request line are skipped, as hyper does.
                    if start == 0 {
                        let blank = bytes
                            .iter()
                            .take_while(|b| matches!(b, b'\r' | b'\n'))
                            .count();
                        bytes = &bytes[blank..];
                        if bytes.is_empty() {
                            return;
                        }
                    }
                    let take = match head_end(&self.head, bytes) {
                        Some(end) => end,
                        None => bytes.len(),
                    };
                    self.head.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.head.len() > MAX_HEAD_BYTES {
                        self.refuse(Refusal {
                            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                            code: "headers_too_large",
                            message: format!(
                                "the request line and headers are over {} KiB",
                                MAX_HEAD_BYTES / 1024
                            ),
                            method: "other",
                        });
                        return;
                    }
                    if !ends_head(&self.head) {
                        continue;
                    }
                    match check_head(&self.head) {
                        Ok(next) => {
                            self.ready.append(&mut self.head);
                            self.phase = next;
                        }
                        Err(refusal) => {
                            self.refuse(refusal);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn refuse(&mut self, refusal: Refusal) {
        self.phase = Phase::Refused;
        self.head = Vec::new();
        let id = uuid::Uuid::now_v7().to_string();
        let body = serde_json::json!({
            "error": {"code": refusal.code, "message": refusal.message, "details": null},
            "requestId": id,
        })
        .to_string();
        let status = refusal.status;
        let answer = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        );
        self.answer = Some((answer.into_bytes(), 0));
        if let Some(metrics) = &self.metrics {
            metrics.record_request("unmatched", refusal.method, status.as_u16(), 0.0);
        }
        tracing::info!(
            request_id = %id,
            org_id = "",
            method = refusal.method,
            route = "unmatched",
            status = status.as_u16(),
            latency_ms = 0.0,
            reason = %refusal.message,
            "request"
        );
    }

    /// Writes our answer to a refused head, if there is one still to write.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.answer {
            if *written == bytes.len() {
                self.answer = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                self.answer = None;
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.activity.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl Checked {
    /// Reads and drops what the client already sent past a refused head (up to 1 MiB): closing
    /// a socket with unread bytes resets it, and a reset can destroy the answer before the
    /// client reads it.
    fn discard_unread(&mut self, cx: &mut Context<'_>) {
        let mut buf = [0u8; 8192];
        for _ in 0..128 {
            let mut read = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {}
                _ => return,
            }
        }
    }
}

/// Where the head ends within `more`, given what has been collected before it: the index just
/// past the empty line that closes it.
fn head_end(before: &[u8], more: &[u8]) -> Option<usize> {
    // An empty line is "\n\n" or "\n\r\n"; look at the last two collected bytes as well.
    let tail = &before[before.len().saturating_sub(2)..];
    let mut window: Vec<u8> = Vec::with_capacity(3);
    window.extend_from_slice(tail);
    for (i, b) in more.iter().enumerate() {
        window.push(*b);
        if window.len() > 3 {
            window.remove(0);
        }
        if *b == b'\n' {
            let n = window.len();
            if (n >= 2 && window[n - 2] == b'\n')
                || (n >= 3 && window[n - 3] == b'\n' && window[n - 2] == b'\r')
            {
                return Some(i + 1);
            }
        }
    }
    None
}

fn ends_head(head: &[u8]) -> bool {
    head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n")
}

/// hyper's own checks on a complete head, so that none of them fails inside hyper. Returns
/// how the body that follows is framed.
fn check_head(head: &[u8]) -> Result<Phase, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let bad = |message: String, method: &'static str| Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "bad_request",
        message,
        method,
    };
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(bad("the request head is incomplete".into(), "other"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                code: "headers_too_large",
                message: format!(
                    "at most {} headers",
                    crate::middleware::request_id::MAX_HEADERS
                ),
                method: "other",
            });
        }
        Err(err) => {
            return Err(bad(
                format!("the request head is malformed ({err})"),
                "other",
            ));
        }
    }
    let method = req
        .method
        .and_then(|m| poem::http::Method::from_bytes(m.as_bytes()).ok())
        .map_or("other", |m| method_label(&m));
    let path = req.path.unwrap_or_default();
    if poem::http::Uri::try_from(path).is_err() {
        return Err(bad("the request target is not a valid URL".into(), method));
    }
    let http_11 = req.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for header in req.headers.iter() {
        if poem::http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            return Err(bad(
                format!("the header name {:?} is not valid", header.name),
                method,
            ));
        }
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return Err(bad("Transfer-Encoding needs HTTP/1.1".into(), method));
            }
            let last = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            chunked = Some(last.is_some_and(|l| l.eq_ignore_ascii_case("chunked")));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let value = digits(header.value).ok_or_else(|| {
                bad(
                    "Content-Length must be a whole number of bytes".into(),
                    method,
                )
            })?;
            if length.is_some_and(|l| l != value) {
                return Err(bad(
                    "Content-Length is given twice with different values".into(),
                    method,
                ));
            }
            length = Some(value);
        }
    }
    match (chunked, length) {
        (Some(false), _) => Err(bad(
            "Transfer-Encoding must end with chunked".into(),
            method,
        )),
        (Some(true), _) => Ok(Phase::Chunked(Chunk::Size {
            digits: 0,
            value: 0,
        })),
        (None, Some(n)) if n > 0 => Ok(Phase::Body(n)),
        (None, _) => Ok(Phase::Head),
    }
}

/// A Content-Length value: ASCII digits only, no sign, no overflow (hyper's rule).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// Follows chunked framing through `bytes`: how many belong to the body, and the phase after.
fn follow_chunks(mut state: Chunk, bytes: &[u8]) -> (usize, Phase) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        state = match state {
            Chunk::Data(left) => {
                let n = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                i += n;
                let left = left - n as u64;
                if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                }
            }
            Chunk::Size { digits, value } => {
                i += 1;
                match (b as char).to_digit(16) {
                    Some(d) if digits < 16 => Chunk::Size {
                        digits: digits + 1,
                        value: value * 16 + u64::from(d),
                    },
                    None if digits > 0 && matches!(b, b';' | b' ' | b'\t') => {
                        Chunk::Extension { value }
                    }
                    None if digits > 0 && b == b'\r' => Chunk::SizeLf { value },
                    _ => return (i, Phase::PassThrough),
                }
            }
            Chunk::Extension { value } => {
                i += 1;
                if b == b'\r' {
                    Chunk::SizeLf { value }
                } else {
                    Chunk::Extension { value }
                }
            }
            Chunk::SizeLf { value } => {
                i += 1;
                match (b, value) {
                    (b'\n', 0) => Chunk::Trailer { empty: true },
                    (b'\n', n) => Chunk::Data(n),
                    _ => return (i, Phase::PassThrough),
                }
            }
            Chunk::DataCr => {
                i += 1;
                if b != b'\r' {
                    return (i, Phase::PassThrough);
                }
                Chunk::DataLf
            }
            Chunk::DataLf => {
                i += 1;
                if b != b'\n' {
                    return (i, Phase::PassThrough);
                }
                Chunk::Size {
                    digits: 0,
                    value: 0,
                }
            }
            Chunk::Trailer { empty } => {
                i += 1;
                match b {
                    b'\r' => Chunk::TrailerLf { empty },
                    b'\n' if empty => return (i, Phase::Head),
                    b'\n' => Chunk::Trailer { empty: true },
                    _ => Chunk::Trailer { empty: false },
                }
            }
            Chunk::TrailerLf { empty } => {
                i += 1;
                match (b, empty) {
                    (b'\n', true) => return (i, Phase::Head),
                    (b'\n', false) => Chunk::Trailer { empty: true },
                    _ => return (i, Phase::PassThrough),
                }
            }
        };
    }
    (i, Phase::Chunked(state))
}

impl AsyncRead for Checked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = (this.ready.len() - this.ready_at).min(out.remaining());
                out.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.phase, Phase::Refused) {
                // End of stream: hyper finishes what it has and shuts the connection down.
                return Poll::Ready(Ok(()));
            }
            let mut buf = [0u8; 8192];
            let mut read = ReadBuf::new(&mut buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let got = read.filled();
            if got.is_empty() {
                // The client closed; an unfinished head is dropped.
                return Poll::Ready(Ok(()));
            }
            this.activity.touch();
            let got = got.to_vec();
            this.feed(&got);
        }
    }
}

impl AsyncWrite for Checked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.activity.touch();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // After everything hyper wrote, before the end: our answer to a refused head.
        if this.answer.is_some() {
            ready!(this.poll_answer(cx))?;
            this.discard_unread(cx);
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.activity.touch();
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase_after(head: &str) -> Result<Phase, Refusal> {
        check_head(head.as_bytes())
    }

    #[test]
    fn ordinary_heads_pass_and_say_how_their_body_is_framed() {
        assert!(matches!(
            phase_after("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(Phase::Head)
        ));
        assert!(matches!(
            phase_after("POST /v1 HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
            Ok(Phase::Body(12))
        ));
        assert!(matches!(
            phase_after("POST /v1 HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Ok(Phase::Chunked(_))
        ));
    }

    #[test]
    fn heads_hyper_would_refuse_are_refused_here_first() {
        for (head, status) in [
            ("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("PRI * HTTP/2.0\r\n\r\n", 400),
        ] {
            let refusal = phase_after(head)
                .err()
                .unwrap_or_else(|| panic!("{head:?} passed"));
            assert_eq!(refusal.status.as_u16(), status, "{head:?}");
        }
        let many: String = (0..101).map(|i| format!("x-{i}: 1\r\n")).collect();
        let refusal = phase_after(&format!("GET / HTTP/1.1\r\n{many}\r\n"))
            .err()
            .unwrap_or_else(|| panic!("101 headers passed"));
        assert_eq!(refusal.status.as_u16(), 431);
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n", b"\r\nbody"), Some(2));
        assert_eq!(head_end(b"GET / HTTP/1.1\r", b"\n\r\n"), Some(3));
        assert_eq!(head_end(b"GET / HTTP/1.1\n", b"\n"), Some(1));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b", b"\r\n"), None);
    }

    #[test]
    fn chunked_bodies_are_followed_to_their_end() {
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET";
        let (used, next) = follow_chunks(
            Chunk::Size {
                digits: 0,
                value: 0,
            },
            body,
        );
        assert_eq!(used, body.len() - 3);
        assert!(matches!(next, Phase::Head));
        let (_, next) = follow_chunks(
            Chunk::Size {
                digits: 0,
                value: 0,
            },
            b"zz\r\n",
        );
        assert!(matches!(next, Phase::PassThrough));
    }
}
