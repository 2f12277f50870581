//! Webhooks as the Standard Webhooks specification has them (standardwebhooks.com): the signing
//! secret, the signature of one delivery, the retry schedule, and which destinations a delivery
//! may go to. Pure functions; the outbox, the worker and the routes build on these.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// The prefix of a signing secret as shown to its owner; the rest is the key, base64.
const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret: 192 bits, inside the 24..64 bytes the specification asks for.
const SECRET_BYTES: usize = 24;

/// A signing secret: the key an endpoint's deliveries are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> SigningSecret {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill(&mut key[..]);
        SigningSecret(key)
    }

    /// Reads a secret as shown (`whsec_` + base64); the prefix may be left out, as the reference
    /// libraries allow.
    pub fn parse(shown: &str) -> Result<SigningSecret, String> {
        let encoded = shown.strip_prefix(SECRET_PREFIX).unwrap_or(shown);
        let key = BASE64.decode(encoded).map_err(|_| {
            "is not a whsec_ secret: the part after the prefix must be base64".to_string()
        })?;
        if key.is_empty() {
            return Err("is empty".into());
        }
        Ok(SigningSecret(key))
    }

    /// The secret as its owner sees it, once: `whsec_` + base64 of the key.
    pub fn shown(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    /// `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header of one delivery: a signature with each secret that currently
/// signs (two during a rotation), separated by spaces, so a receiver holding either verifies.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long after each failed attempt the next one is made: 5 s, 30 s, 2 min, 10 min, 30 min,
/// 2 h, 6 h. After the seventh retry fails, the message is failed.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
];

/// The wait before the next attempt once `failed` attempts have failed (1 after the first), or
/// `None` when the schedule is spent. `jitter` in [0, 1) spreads retries of many messages that
/// failed together over up to a tenth more of the wait, so a receiver that comes back is not hit
/// by all of them in the same second.
pub fn retry_delay(failed: u32, jitter: f64) -> Option<Duration> {
    let index = usize::try_from(failed.checked_sub(1)?).ok()?;
    let base = *RETRY_SCHEDULE.get(index)?;
    let spread = base.mul_f64(jitter.clamp(0.0, 0.999_999) / 10.0);
    Some(base + spread)
}

/// What a webhook message tells: one per change to an event, whichever dialect made it, or a
/// `ping` sent on request to test an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    Rescheduled,
    Updated,
    Cancelled,
    Ping,
}

impl EventKind {
    /// The kinds an endpoint can ask for (`events`); every endpoint gets its own pings.
    pub const SUBSCRIBABLE: [EventKind; 4] = [
        EventKind::Created,
        EventKind::Rescheduled,
        EventKind::Updated,
        EventKind::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "appointment.created",
            EventKind::Rescheduled => "appointment.rescheduled",
            EventKind::Updated => "appointment.updated",
            EventKind::Cancelled => "appointment.cancelled",
            EventKind::Ping => "ping",
        }
    }

    /// A subscribable kind by its name.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::SUBSCRIBABLE
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    /// The kind of a change to an event: cancelling it (whatever else changed) is `cancelled`,
    /// moving a live event to other times is `rescheduled`, anything else (a cancelled event
    /// made live again included) is `updated`.
    pub fn of_change(was_live: bool, is_live: bool, times_changed: bool) -> EventKind {
        match (was_live, is_live) {
            (true, false) => EventKind::Cancelled,
            (true, true) if times_changed => EventKind::Rescheduled,
            _ => EventKind::Updated,
        }
    }
}

/// Whether an endpoint that asked for `wanted` (empty: everything) gets messages of `kind`.
pub fn wants(wanted: &[String], kind: EventKind) -> bool {
    kind == EventKind::Ping || wanted.is_empty() || wanted.iter().any(|w| w == kind.as_str())
}

/// How long an endpoint may fail every delivery before Quando disables it.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 60 * 60);

/// How long the secret before a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a delivery may go, as checked before any connection is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub url: url::Url,
}

/// Longest endpoint URL taken.
pub const MAX_URL_LENGTH: usize = 2048;

/// Checks an endpoint URL as given. Without `allow_private`: https only, and no host that is an
/// address of this machine or of a private, link-local or otherwise non-public network (written
/// as an IP in any form, IPv4-mapped IPv6 included, or as `localhost`). A name is checked again
/// once resolved, at every delivery (`forbidden_address`), since DNS can point anywhere.
pub fn check_destination(raw: &str, allow_private: bool) -> Result<Destination, String> {
    if raw.len() > MAX_URL_LENGTH {
        return Err(format!("is longer than {MAX_URL_LENGTH} characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err("must use https".into()),
        other => return Err(format!("must use https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    let host = url.host().ok_or("has no host")?;
    if !allow_private {
        let address = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err("points at this machine (localhost)".into());
                }
                None
            }
        };
        if let Some(ip) = address
            && let Some(why) = forbidden_address(ip)
        {
            return Err(format!("points at {why} ({ip})"));
        }
    }
    Ok(Destination { url })
}

/// Why a delivery must not connect to `ip`, or `None` for a public address.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address carried in IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, or
            // the deprecated compatible ::a.b.c.d) reaches that IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
                return forbidden_v4(v4);
            }
            forbidden_v6(v6)
        }
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0];
    let compatible = s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1);
    (nat64 || compatible).then_some(tail)
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("this machine")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_private() {
        Some("a private network")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata services live there)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) network")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking network")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("this machine")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private network (unique local)")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("a link-local or site-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_change_is_named_cancelled_rescheduled_or_updated_by_what_it_did() {
        use super::EventKind;
        use super::EventKind::*;
        assert_eq!(EventKind::of_change(true, false, true), Cancelled);
        assert_eq!(EventKind::of_change(true, false, false), Cancelled);
        assert_eq!(EventKind::of_change(true, true, true), Rescheduled);
        assert_eq!(EventKind::of_change(true, true, false), Updated);
        assert_eq!(EventKind::of_change(false, true, true), Updated);
        assert_eq!(EventKind::of_change(false, false, false), Updated);
    }

    #[test]
    fn an_endpoint_gets_the_kinds_it_asked_for_and_always_its_pings() {
        use super::{EventKind, wants};
        let some = vec!["appointment.cancelled".to_string()];
        assert!(wants(&some, EventKind::Cancelled));
        assert!(!wants(&some, EventKind::Created));
        assert!(wants(&some, EventKind::Ping));
        assert!(wants(&[], EventKind::Rescheduled));
        assert_eq!(
            EventKind::parse("appointment.updated"),
            Some(EventKind::Updated)
        );
        assert_eq!(EventKind::parse("ping"), None);
    }

    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector_signs_exactly() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_reads_with_or_without_its_prefix_and_shows_as_it_was_given() {
        let with = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let without = SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(with, without);
        assert_eq!(with.shown(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_").is_err());
    }

    #[test]
    fn generated_secrets_are_24_random_bytes_and_differ() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a, b);
        assert!(a.shown().starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&a.shown()).unwrap().0.len(), 24);
        assert_eq!(format!("{a:?}"), "SigningSecret(..)", "never printed");
    }

    #[test]
    fn during_a_rotation_the_header_carries_one_signature_per_secret() {
        let old = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let new = SigningSecret::generate();
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 1_700_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                new.sign("msg_1", 1_700_000_000, b"{}"),
                old.sign("msg_1", 1_700_000_000, b"{}")
            ]
        );
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn retries_follow_the_schedule_with_at_most_a_tenth_of_jitter_then_stop() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let expected = [
            Duration::from_secs(5),
            Duration::from_secs(30),
            minutes(2),
            minutes(10),
            minutes(30),
            minutes(120),
            minutes(360),
        ];
        for (i, base) in expected.iter().enumerate() {
            let failed = u32::try_from(i + 1).unwrap();
            assert_eq!(retry_delay(failed, 0.0), Some(*base));
            let most = retry_delay(failed, 0.999_999).unwrap();
            assert!(
                most > *base && most <= *base + base.mul_f64(0.1),
                "{most:?}"
            );
        }
        assert_eq!(retry_delay(8, 0.5), None, "the seventh retry was the last");
        assert_eq!(retry_delay(0, 0.5), None);
    }

    #[test]
    fn https_urls_of_public_hosts_are_taken() {
        for ok in [
            "https://hooks.example.com/quando",
            "https://hooks.example.com:8443/a?b=c",
            "https://93.184.215.14/hook",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
        ] {
            assert!(check_destination(ok, false).is_ok(), "{ok}");
        }
    }

    #[test]
    fn plain_http_and_other_schemes_are_refused_unless_private_destinations_are_allowed() {
        assert_eq!(
            check_destination("http://hooks.example.com/", false).unwrap_err(),
            "must use https"
        );
        assert!(check_destination("http://127.0.0.1:9000/", true).is_ok());
        assert!(check_destination("ftp://hooks.example.com/", true).is_err());
        assert!(check_destination("file:///etc/passwd", true).is_err());
        assert!(check_destination("not a url", true).is_err());
        assert!(
            check_destination(&format!("https://a.example/{}", "x".repeat(2048)), true).is_err()
        );
    }

    #[test]
    fn credentials_and_fragments_in_the_url_are_refused() {
        assert!(check_destination("https://user:pw@hooks.example.com/", false).is_err());
        assert!(check_destination("https://hooks.example.com/#x", false).is_err());
    }

    #[test]
    fn loopback_private_link_local_and_mapped_addresses_are_refused_in_every_spelling() {
        for bad in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0.0.0.0/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[64:ff9b::10.0.0.1]/",
            "https://[::10.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
        ] {
            assert!(
                check_destination(bad, false).is_err(),
                "{bad} must be refused"
            );
            assert!(
                check_destination(bad, true).is_ok(),
                "{bad} is allowed when private is"
            );
        }
    }

    #[test]
    fn resolved_addresses_are_judged_the_same_way() {
        let forbidden = |s: &str| forbidden_address(s.parse().unwrap()).is_some();
        assert!(forbidden("127.0.0.53"));
        assert!(forbidden("::ffff:10.0.0.8"));
        assert!(forbidden("fc00::5"));
        assert!(!forbidden("8.8.8.8"));
        assert!(!forbidden("2001:4860:4860::8888"));
        assert!(!forbidden("::ffff:8.8.8.8"));
    }
}
