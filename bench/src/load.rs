//! The load driver: `connections` tokio tasks, each issuing one request after another until the
//! time is up, every latency recorded in an HDR histogram (microseconds) and every outcome
//! counted. The same driver runs HTTP workloads and the in-process raw-storage baseline.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::AnyError;

/// An outcome: an HTTP status (or 201/409 for the baseline's booked/conflict), or an error
/// that never got a status (connection refused, timeout, database error).
pub type Outcome = Result<u16, String>;
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// Makes the next request of a task, with that task's random numbers.
pub type Job = Arc<dyn Fn(&mut Rng) -> OutcomeFuture + Send + Sync>;

/// SplitMix64: enough randomness to pick calendars, ids and days, with no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// What one workload measured.
pub struct Measured {
    pub requests: u64,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no status, with one example message.
    pub failures: u64,
    pub failure_example: Option<String>,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A quantile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    /// Responses with a status other than `expected`, plus failures.
    pub fn unexpected(&self, expected: u16) -> u64 {
        self.failures
            + self
                .statuses
                .iter()
                .filter(|(s, _)| **s != expected)
                .map(|(_, n)| n)
                .sum::<u64>()
    }
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Runs `job` from `connections` tasks: `warmup` unrecorded, then `measure` recorded. A request
/// counts when it starts inside the measured window; the rate divides by the time from the
/// window's start until the last of them finished.
pub async fn drive(
    connections: usize,
    warmup: Duration,
    measure: Duration,
    job: Job,
) -> Result<Measured, AnyError> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + measure;
    let mut tasks = Vec::with_capacity(connections);
    for task in 0..connections {
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x5eed + task as u64);
            let mut histogram = histogram();
            let mut statuses = BTreeMap::<u16, u64>::new();
            let mut failures = 0u64;
            let mut failure_example = None;
            let mut last_end = measure_from;
            loop {
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let outcome = job(&mut rng).await;
                let t1 = Instant::now();
                if t0 < measure_from {
                    continue;
                }
                last_end = t1;
                let _ = histogram.record(micros(t1 - t0));
                match outcome {
                    Ok(status) => *statuses.entry(status).or_default() += 1,
                    Err(message) => {
                        failures += 1;
                        failure_example.get_or_insert(message);
                    }
                }
            }
            (histogram, statuses, failures, failure_example, last_end)
        }));
    }
    let mut total = Measured {
        requests: 0,
        elapsed: Duration::ZERO,
        histogram: histogram(),
        statuses: BTreeMap::new(),
        failures: 0,
        failure_example: None,
    };
    let mut last_end = measure_from;
    for task in tasks {
        let (histogram, statuses, failures, example, end) = task.await?;
        total.histogram.add(&histogram)?;
        for (status, n) in statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.failures += failures;
        if total.failure_example.is_none() {
            total.failure_example = example;
        }
        last_end = last_end.max(end);
    }
    total.requests = total.histogram.len();
    total.elapsed = last_end.saturating_duration_since(measure_from);
    Ok(total)
}
