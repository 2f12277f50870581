//! Request budgets. Each API key has a GCRA bucket (governor) of its own per-minute limit (the
//! key's own, else the server default), refilled continuously; failed authentications are
//! budgeted per client IP so keys cannot be guessed fast. Buckets live in this process only:
//! behind several servers each enforces its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::domain::ids::ApiKeyId;

type KeyBucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;
/// One publishable key's buckets, one per client address.
type ClientBuckets =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

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
    /// A publishable key is in every visitor's browser: its budget is per client address, so
    /// one visitor cannot spend everyone's (`widget_per_minute`, or the key's own limit).
    widget_per_minute: u32,
    clients: Mutex<HashMap<ApiKeyId, (u32, Arc<ClientBuckets>)>>,
    auth_failures: FailureBudget,
    clock: DefaultClock,
}

/// Failed authentications per client IP: a keyed GCRA limiter whose store holds an address only
/// until its bucket is full again. `sweep` (governor's `retain_recent`) drops every address
/// whose bucket has been full for one refill interval, which at 30 failures a minute is 4 s
/// after a single failure and a minute after a full burst. `Application::run_until` sweeps
/// every `SWEEP_INTERVAL`, and a failure that finds more than `SWEEP_ABOVE` addresses in the
/// store sweeps at once (at most once per `SWEEP_INTERVAL / 10`, so a flood cannot make every
/// failure walk the store). The store therefore holds no more than the addresses that failed
/// within about the last minute plus one interval, and empties by itself once guessing stops.
pub struct FailureBudget<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    start: C::Instant,
    /// When the store was last swept, in nanoseconds after `start`.
    last_sweep: AtomicU64,
}

/// How often the running server sweeps the per-IP store.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// A failure that finds more addresses than this in the store sweeps it.
const SWEEP_ABOVE: usize = 10_000;

impl<C: Clock + Clone> FailureBudget<C> {
    pub fn with_clock(per_minute_limit: u32, clock: C) -> Self {
        let start = clock.now();
        FailureBudget {
            limiter: RateLimiter::dashmap_with_clock(per_minute(per_minute_limit), clock.clone()),
            clock,
            start,
            last_sweep: AtomicU64::new(0),
        }
    }

    fn elapsed_nanos(&self) -> u64 {
        let elapsed: Duration = self.clock.now().duration_since(self.start).into();
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one failure from `ip`; `Err(retry_after seconds)` once it is over budget.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.limiter.len() > SWEEP_ABOVE {
            let now = self.elapsed_nanos();
            let last = self.last_sweep.load(Ordering::Relaxed);
            let gap = u64::try_from((SWEEP_INTERVAL / 10).as_nanos()).unwrap_or(u64::MAX);
            if now.saturating_sub(last) >= gap
                && self
                    .last_sweep
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.sweep();
            }
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Drops every address whose bucket is full again (governor's `retain_recent`) and gives
    /// the freed capacity back; returns how many addresses are still held.
    pub fn sweep(&self) -> usize {
        self.last_sweep
            .store(self.elapsed_nanos(), Ordering::Relaxed);
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.limiter.len()
    }

    /// Addresses held right now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Limits {
    pub fn new(
        default_per_minute: u32,
        auth_failures_per_minute: u32,
        widget_per_minute: u32,
    ) -> Self {
        Limits {
            default_per_minute: default_per_minute.max(1),
            keys: Mutex::new(HashMap::new()),
            widget_per_minute: widget_per_minute.max(1),
            clients: Mutex::new(HashMap::new()),
            auth_failures: FailureBudget::with_clock(
                auth_failures_per_minute,
                DefaultClock::default(),
            ),
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
        self.budget(limit, self.bucket(key, limit).check())
    }

    /// Takes one request from the budget of one client address with a publishable key (the
    /// key's own limit, else the server's widget default).
    pub fn check_client(
        &self,
        key: ApiKeyId,
        client: IpAddr,
        own_limit: Option<u32>,
    ) -> Result<Budget, Budget> {
        let limit = own_limit
            .filter(|l| *l > 0)
            .unwrap_or(self.widget_per_minute);
        let buckets = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            match clients.get(&key) {
                Some((l, buckets)) if *l == limit => buckets.clone(),
                _ => {
                    let buckets = Arc::new(
                        RateLimiter::dashmap(per_minute(limit))
                            .with_middleware::<StateInformationMiddleware>(),
                    );
                    clients.insert(key, (limit, buckets.clone()));
                    buckets
                }
            }
        };
        self.budget(limit, buckets.check_key(&client))
    }

    fn budget(
        &self,
        limit: u32,
        outcome: Result<
            governor::middleware::StateSnapshot,
            governor::NotUntil<<DefaultClock as Clock>::Instant>,
        >,
    ) -> Result<Budget, Budget> {
        let refill = Duration::from_secs(60) / limit;
        match outcome {
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
        self.auth_failures.check(ip)
    }

    /// Drops the per-IP failure buckets that are full again; returns how many remain.
    pub fn sweep_auth_failures(&self) -> usize {
        // The per-address buckets of publishable keys go the same way: an address is held
        // only until its bucket is full again.
        let clients: Vec<Arc<ClientBuckets>> = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|(_, b)| b.clone())
            .collect();
        for buckets in clients {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
        self.auth_failures.sweep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_then_is_refused_with_a_retry_after() {
        let limits = Limits::new(600, 30, 60);
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
        let limits = Limits::new(2, 30, 60);
        let (a, b) = (ApiKeyId::generate(), ApiKeyId::generate());
        assert_eq!(limits.check_key(a, None).unwrap().limit, 2);
        limits.check_key(a, None).unwrap();
        assert!(limits.check_key(a, None).is_err());
        assert!(limits.check_key(b, None).is_ok());
    }

    #[test]
    fn a_publishable_key_budgets_each_client_address_on_its_own() {
        let limits = Limits::new(600, 30, 2);
        let key = ApiKeyId::generate();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(limits.check_client(key, a, None).unwrap().limit, 2);
        limits.check_client(key, a, None).unwrap();
        let refused = limits.check_client(key, a, None).unwrap_err();
        assert!(refused.retry_after.is_some());
        assert!(
            limits.check_client(key, b, None).is_ok(),
            "another visitor is not affected"
        );
        assert_eq!(limits.check_client(key, b, Some(5)).unwrap().limit, 5);
    }

    #[test]
    fn failed_authentications_are_budgeted_per_ip() {
        let limits = Limits::new(600, 2, 60);
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

    #[test]
    fn the_per_ip_failure_store_shrinks_once_its_buckets_are_full_again() {
        let clock = governor::clock::FakeRelativeClock::default();
        let budget = FailureBudget::with_clock(30, clock.clone());
        for i in 0..500u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(budget.check(ip).is_ok());
        }
        let burst: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..30 {
            assert!(budget.check(burst).is_ok());
        }
        assert!(budget.check(burst).is_err());
        assert_eq!(budget.len(), 501);
        // Nothing has recovered yet: a sweep keeps every address.
        assert_eq!(budget.sweep(), 501);

        // One failure refills in 2 s (30 a minute) and is dropped one refill later; the burst
        // needs the whole minute.
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            budget.sweep(),
            1,
            "only the address still over budget is kept"
        );
        // Its bucket was kept: two failures refilled in 5 s, not a fresh budget of 30.
        assert!(budget.check(burst).is_ok());
        assert!(budget.check(burst).is_ok());
        assert!(budget.check(burst).is_err());

        clock.advance(Duration::from_secs(70));
        assert_eq!(budget.sweep(), 0);
        assert!(budget.is_empty());
        assert!(
            budget.check(burst).is_ok(),
            "a recovered address starts afresh"
        );
    }

    #[test]
    fn a_failure_that_finds_the_store_over_its_cap_sweeps_it() {
        let clock = governor::clock::FakeRelativeClock::default();
        let budget = FailureBudget::with_clock(30, clock.clone());
        for i in 0..=u32::try_from(SWEEP_ABOVE).unwrap() {
            let _ = budget.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert_eq!(budget.len(), SWEEP_ABOVE + 1);
        clock.advance(SWEEP_INTERVAL);
        let _ = budget.check("192.0.2.7".parse().unwrap());
        assert_eq!(
            budget.len(),
            1,
            "the recovered addresses went with that failure"
        );
    }
}
