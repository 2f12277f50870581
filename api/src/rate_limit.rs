//! Request budgets. Each API key has a GCRA bucket (governor) of its own per-minute limit (the
//! key's own, else the server default), refilled continuously; failed authentications are
//! budgeted per client IP so keys cannot be guessed fast. Buckets live in this process only:
//! behind several servers each enforces its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::ids::ApiKeyId;

type KeyBucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// What the rate-limit headers say about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Requests per minute for this key.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Unix seconds when the bucket is full again.
    pub reset: u64,
    /// With a refusal: seconds until the next request is allowed.
    pub retry_after: Option<u64>,
}

pub struct Limits {
    default_per_minute: u32,
    keys: Mutex<HashMap<ApiKeyId, (u32, Arc<KeyBucket>)>>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Failed authentications counted since the per-IP buckets were last swept.
    failures_since_sweep: AtomicU32,
    clock: DefaultClock,
}

/// Every this many failed authentications, per-IP buckets that are full again are dropped, so
/// guessers from ever new addresses cannot grow the map without end.
const SWEEP_EVERY: u32 = 1024;

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Limits {
    pub fn new(default_per_minute: u32, auth_failures_per_minute: u32) -> Self {
        Limits {
            default_per_minute: default_per_minute.max(1),
            keys: Mutex::new(HashMap::new()),
            auth_failures: RateLimiter::keyed(per_minute(auth_failures_per_minute)),
            failures_since_sweep: AtomicU32::new(0),
            clock: DefaultClock::default(),
        }
    }

    fn bucket(&self, key: ApiKeyId, limit: u32) -> Arc<KeyBucket> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get(&key) {
            Some((l, bucket)) if *l == limit => bucket.clone(),
            _ => {
                let bucket = Arc::new(
                    RateLimiter::direct(per_minute(limit))
                        .with_middleware::<StateInformationMiddleware>(),
                );
                keys.insert(key, (limit, bucket.clone()));
                bucket
            }
        }
    }

    /// Takes one request from the key's budget (its own limit, else the server default).
    pub fn check_key(&self, key: ApiKeyId, own_limit: Option<u32>) -> Result<Budget, Budget> {
        let limit = own_limit
            .filter(|l| *l > 0)
            .unwrap_or(self.default_per_minute);
        let refill = Duration::from_secs(60) / limit;
        match self.bucket(key, limit).check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let until_full = refill * (limit - remaining.min(limit));
                Ok(Budget {
                    limit,
                    remaining,
                    reset: unix_now()
                        + until_full.as_secs()
                        + u64::from(until_full.subsec_nanos() > 0),
                    retry_after: None,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let wait_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Budget {
                    limit,
                    remaining: 0,
                    reset: unix_now() + (refill * limit).as_secs(),
                    retry_after: Some(wait_secs.max(1)),
                })
            }
        }
    }

    /// Counts a failed authentication from `ip`; `Err(retry_after)` once it is over budget.
    /// Only failures are budgeted: a valid key is never refused for its address, so one
    /// guesser behind a shared proxy cannot lock everyone else out.
    pub fn check_auth_failure(&self, ip: IpAddr) -> Result<(), u64> {
        if self.failures_since_sweep.fetch_add(1, Ordering::Relaxed) + 1 >= SWEEP_EVERY {
            self.failures_since_sweep.store(0, Ordering::Relaxed);
            self.auth_failures.retain_recent();
            self.auth_failures.shrink_to_fit();
        }
        self.auth_failures.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_then_is_refused_with_a_retry_after() {
        let limits = Limits::new(600, 30);
        let key = ApiKeyId::generate();
        let first = limits.check_key(key, Some(3)).unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        assert_eq!(limits.check_key(key, Some(3)).unwrap().remaining, 1);
        assert_eq!(limits.check_key(key, Some(3)).unwrap().remaining, 0);
        let refused = limits.check_key(key, Some(3)).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert!((1..=20).contains(&refused.retry_after.unwrap()));
        assert!(refused.reset >= unix_now());
    }

    #[test]
    fn keys_have_separate_buckets_and_the_default_applies_without_an_own_limit() {
        let limits = Limits::new(2, 30);
        let (a, b) = (ApiKeyId::generate(), ApiKeyId::generate());
        assert_eq!(limits.check_key(a, None).unwrap().limit, 2);
        limits.check_key(a, None).unwrap();
        assert!(limits.check_key(a, None).is_err());
        assert!(limits.check_key(b, None).is_ok());
    }

    #[test]
    fn failed_authentications_are_budgeted_per_ip() {
        let limits = Limits::new(600, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limits.check_auth_failure(ip).is_ok());
        assert!(limits.check_auth_failure(ip).is_ok());
        assert!(limits.check_auth_failure(ip).is_err());
        assert!(
            limits
                .check_auth_failure("10.0.0.2".parse().unwrap())
                .is_ok()
        );
    }
}
