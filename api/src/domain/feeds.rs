//! A calendar feed's secret token and the window a feed covers. The token is the feed's only
//! credential (calendar apps subscribe to a URL and send no API key), so it is long, random,
//! recognisable, and stored only as its SHA-256. Pure functions; the feed service builds on them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The prefix of every feed token, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "qfeed_";

/// Random bytes in a token: 256 bits from the thread's CSPRNG (seeded by the operating system).
const TOKEN_BYTES: usize = 32;

/// How far back a feed reaches from the start of the current UTC day.
pub const WINDOW_PAST_DAYS: i64 = 90;
/// How far ahead a feed reaches from the start of the current UTC day (plus that day).
pub const WINDOW_FUTURE_DAYS: i64 = 365;

/// A feed token as shown once to its owner: `qfeed_` + 43 characters of URL-safe base64.
#[derive(Clone, PartialEq, Eq)]
pub struct FeedToken(String);

impl std::fmt::Debug for FeedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedToken(..)")
    }
}

impl FeedToken {
    /// A fresh token.
    pub fn generate() -> FeedToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill(&mut bytes[..]);
        FeedToken(format!("{TOKEN_PREFIX}{}", BASE64URL.encode(bytes)))
    }

    /// A token as a URL names it; None for anything that is not the shape `generate` makes
    /// (so a malformed token is never looked up).
    pub fn parse(shown: &str) -> Option<FeedToken> {
        let random = shown.strip_prefix(TOKEN_PREFIX)?;
        let decoded = BASE64URL.decode(random).ok()?;
        (decoded.len() == TOKEN_BYTES).then(|| FeedToken(shown.to_string()))
    }

    /// The token itself, to put into the feed's URL.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: SHA-256 of the token, lower-case hex (64 characters).
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The instants a feed covers: events whose time intersects `[from, to)`. Counted from the start
/// of the current UTC day, so the feed (and its ETag) stays the same all day when nothing
/// changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    pub fn around(now: DateTime<Utc>) -> Window {
        let today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        Window {
            from: today - Duration::days(WINDOW_PAST_DAYS),
            to: today + Duration::days(WINDOW_FUTURE_DAYS + 1),
        }
    }

    /// Whether `[start, end)` meets the window (an instant event, start = end, counts when it
    /// lies inside).
    pub fn meets(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < self.to && (end > self.from || (start == end && start >= self.from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_token_is_prefixed_url_safe_and_carries_256_random_bits() {
        let token = FeedToken::generate();
        let shown = token.expose();
        assert!(shown.starts_with("qfeed_"), "{shown}");
        assert_eq!(shown.len(), "qfeed_".len() + 43);
        assert!(
            shown["qfeed_".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{shown}"
        );
        assert_ne!(FeedToken::generate(), token);
        assert_eq!(FeedToken::parse(shown), Some(token));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = FeedToken::generate();
        let random = &good.expose()["qfeed_".len()..];
        for bad in [
            "",
            "qfeed_",
            random,
            &format!("qnd_live_{random}"),
            &format!("qfeed_{}", &random[1..]),
            &format!("qfeed_{random}A"),
            &format!("qfeed_{}=", random),
            &format!("qfeed_{}+", &random[1..]),
        ] {
            assert_eq!(FeedToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_stored_hash_is_sha256_hex_and_never_the_token() {
        let token = FeedToken::parse("qfeed_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let hash = token.hash();
        // sha256sum of the token's text, computed independently.
        assert_eq!(
            hash,
            "159903684567b7b80aacbc1c9fc2009d9b837ed022e407c33fe2fa3bf9a46edc"
        );
        assert_ne!(FeedToken::generate().hash(), hash);
    }

    #[test]
    fn the_window_runs_from_90_days_back_to_365_days_ahead_of_today_in_whole_days() {
        let w = Window::around(utc("2027-06-15T13:45:12Z"));
        assert_eq!(w.from, utc("2027-03-17T00:00:00Z"));
        assert_eq!(w.to, utc("2028-06-15T00:00:00Z"));
        assert_eq!(Window::around(utc("2027-06-15T23:59:59Z")), w);
    }

    #[test]
    fn an_event_meets_the_window_when_their_times_intersect() {
        let w = Window::around(utc("2027-06-15T12:00:00Z"));
        assert!(w.meets(utc("2027-03-16T23:00:00Z"), utc("2027-03-17T00:30:00Z")));
        assert!(!w.meets(utc("2027-03-16T23:00:00Z"), utc("2027-03-17T00:00:00Z")));
        assert!(w.meets(utc("2028-06-14T23:30:00Z"), utc("2028-06-15T00:30:00Z")));
        assert!(!w.meets(utc("2028-06-15T00:00:00Z"), utc("2028-06-15T00:30:00Z")));
    }
}
