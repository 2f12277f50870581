//! Outbound HTTP for webhook deliveries (issue 13's worker builds on it): one POST, signed as
//! Standard Webhooks has it, with a time limit, no redirects followed, and names resolved here so
//! that no address `domain::webhooks::forbidden_address` names is ever connected to unless
//! private destinations are allowed: a receiver's DNS cannot point a delivery at this machine,
//! the private network or a cloud metadata service, at creation or later.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhooks::{
    SigningSecret, check_destination, forbidden_address, signature_header,
};

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed before or instead of an answer (refused destination, timeout, connection).
    pub error: Option<String>,
}

impl Attempt {
    /// A 2xx answer; anything else is retried.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Resolves names with the system resolver and keeps only addresses a delivery may reach.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || forbidden_address(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| forbidden_address(a.ip()))
                    .unwrap_or("no address");
                return Err(format!(
                    "{host} resolves to {why}; deliveries go to public addresses only"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Sends deliveries; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// `timeout` bounds the whole attempt, connection included (10 s in service).
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Sender, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("Quando-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the webhook HTTP client cannot start: {e}"))?;
        Ok(Sender {
            client,
            allow_private,
        })
    }

    /// POSTs `body` to `url` with the `webhook-id`, `webhook-timestamp` and `webhook-signature`
    /// headers (one signature per secret that currently signs).
    pub async fn send(
        &self,
        url: &str,
        id: &str,
        timestamp: i64,
        secrets: &[SigningSecret],
        body: Vec<u8>,
    ) -> Attempt {
        let started = Instant::now();
        let refused = |error: String| Attempt {
            status: None,
            latency: started.elapsed(),
            error: Some(error),
        };
        let destination = match check_destination(url, self.allow_private) {
            Ok(d) => d,
            Err(why) => return refused(format!("url {why}")),
        };
        let signature = signature_header(secrets, id, timestamp, &body);
        let sent = self
            .client
            .post(destination.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => Attempt {
                status: Some(resp.status().as_u16()),
                latency: started.elapsed(),
                error: None,
            },
            Err(e) if e.is_timeout() => refused("no answer within the time limit".into()),
            Err(e) => refused(describe(&e)),
        }
    }
}

/// The innermost cause of a failed request, which says what happened ("connection refused",
/// "resolves to this machine"), rather than reqwest's outer "error sending request".
fn describe(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver on loopback that answers each request with `reply` after `delay`, and hands
    /// back the raw requests it read.
    async fn receiver(
        reply: &'static str,
        delay: Duration,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut read = 0;
                    // Headers, then the body Content-Length announces.
                    loop {
                        let n = socket.read(&mut buf[read..]).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        read += n;
                        let text = String::from_utf8_lossy(&buf[..read]).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if read >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&buf[..read]).to_string());
                    tokio::time::sleep(delay).await;
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, rx)
    }

    /// An empty JSON body, signed with a fresh secret.
    async fn ping(sender: &Sender, url: &str, id: &str) -> Attempt {
        sender
            .send(url, id, 1, &[SigningSecret::generate()], b"{}".to_vec())
            .await
    }

    const NO_CONTENT: &str =
        "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn a_delivery_carries_the_standard_webhooks_headers_and_a_2xx_is_delivered() {
        let (url, mut seen) = receiver(NO_CONTENT, Duration::ZERO).await;
        let secret = SigningSecret::generate();
        let old = SigningSecret::generate();
        let body = br#"{"id":"msg_1","event":"appointment.created"}"#.to_vec();
        let sender = Sender::new(true, Duration::from_secs(5)).unwrap();
        let attempt = sender
            .send(
                &url,
                "msg_1",
                1_700_000_000,
                &[secret.clone(), old.clone()],
                body.clone(),
            )
            .await;
        assert!(attempt.delivered(), "{attempt:?}");
        assert_eq!(attempt.status, Some(204));
        let request = seen.recv().await.unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(lower.starts_with("post /hook http/1.1"));
        assert!(lower.contains("webhook-id: msg_1\r\n"));
        assert!(lower.contains("webhook-timestamp: 1700000000\r\n"));
        let signature = request
            .lines()
            .find_map(|l| l.strip_prefix("webhook-signature: "))
            .unwrap();
        assert_eq!(
            signature,
            format!(
                "{} {}",
                secret.sign("msg_1", 1_700_000_000, &body),
                old.sign("msg_1", 1_700_000_000, &body)
            )
        );
        assert!(request.ends_with(std::str::from_utf8(&body).unwrap()));
    }

    #[tokio::test]
    async fn a_500_and_a_redirect_are_not_delivered_and_the_redirect_is_not_followed() {
        let (url, _seen) = receiver(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let sender = Sender::new(true, Duration::from_secs(5)).unwrap();
        let attempt = ping(&sender, &url, "msg_2").await;
        assert_eq!((attempt.status, attempt.delivered()), (Some(500), false));

        let (url, _seen) = receiver(
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let attempt = ping(&sender, &url, "msg_3").await;
        assert_eq!((attempt.status, attempt.delivered()), (Some(302), false));
    }

    #[tokio::test]
    async fn a_receiver_slower_than_the_limit_is_a_timeout_not_a_hang() {
        let (url, _seen) = receiver(NO_CONTENT, Duration::from_secs(3)).await;
        let sender = Sender::new(true, Duration::from_millis(300)).unwrap();
        let attempt = ping(&sender, &url, "msg_4").await;
        assert!(!attempt.delivered());
        assert_eq!(
            attempt.error.as_deref(),
            Some("no answer within the time limit")
        );
        assert!(attempt.latency < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn without_private_destinations_loopback_is_refused_before_any_connection() {
        let (url, mut seen) = receiver(NO_CONTENT, Duration::ZERO).await;
        let sender = Sender::new(false, Duration::from_secs(5)).unwrap();
        let attempt = ping(&sender, &url, "msg_5").await;
        assert!(!attempt.delivered());
        assert_eq!(attempt.error.as_deref(), Some("url must use https"));
        let https = url.replace("http://", "https://");
        let attempt = ping(&sender, &https, "msg_5").await;
        assert!(attempt.error.unwrap().contains("this machine"));
        assert!(seen.try_recv().is_err(), "nothing reached the receiver");
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused_by_the_resolver() {
        let resolver = GuardedResolver {
            allow_private: false,
        };
        let refused = resolver.resolve("localhost".parse().unwrap()).await;
        let err = refused
            .err()
            .expect("localhost resolves to loopback only")
            .to_string();
        assert!(err.contains("this machine"), "{err}");
        let allowed = GuardedResolver {
            allow_private: true,
        }
        .resolve("localhost".parse().unwrap())
        .await
        .expect("allowed when private destinations are");
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
