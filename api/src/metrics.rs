//! Prometheus metrics, rendered as text at `GET /metrics`: request counts and latency histograms
//! by route template, method and status, and the booking outcomes an operator watches
//! (bookings created, refusals for conflicts, rate-limited requests). Every label comes from a
//! fixed set: the route is a template of the spec (or one of the few routes outside it, or
//! `unmatched`), the method one of the standard ones (or `other`), the status three digits. No
//! request, however invented its method or path, can add a series of its own.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use poem_openapi::OpenApi;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    bookings_created: AtomicU64,
    booking_refusals: Mutex<BTreeMap<&'static str, u64>>,
    rate_limited: AtomicU64,
}

/// Routes served outside the OpenAPI document.
const UNDOCUMENTED_ROUTES: [&str; 4] = ["/metrics", "/docs", "/openapi.json", "/openapi.yaml"];

/// The method as a label: one of the standard methods, else `other`.
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The route template a request path falls under (`/v1/calendar/events/abc` ->
/// `/v1/calendar/events/{id}`), for responses that never reached an operation (a 429, a
/// failed authentication, `/metrics` itself); `unmatched` when no route has that shape.
pub fn route_of_path(path: &str) -> &'static str {
    static TEMPLATES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let mut all: Vec<&'static str> = spec_templates().values().copied().collect();
        all.extend(UNDOCUMENTED_ROUTES);
        all.sort_unstable();
        all.dedup();
        all
    });
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    templates
        .iter()
        .copied()
        .find(|template| {
            let mut want = template.split('/');
            let mut got = path.split('/');
            loop {
                match (want.next(), got.next()) {
                    (None, None) => return true,
                    (Some(w), Some(g)) if w.starts_with('{') || w == g => {}
                    _ => return false,
                }
            }
        })
        .unwrap_or("unmatched")
}

/// Operation id -> path template, from the spec.
fn spec_templates() -> &'static HashMap<&'static str, &'static str> {
    static ROUTES: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut map = HashMap::new();
        for api in <crate::Api as OpenApi>::meta() {
            for path in api.paths {
                let template: &'static str = Box::leak(path.path.clone().into_boxed_str());
                for op in path.operations {
                    if let Some(id) = op.operation_id {
                        map.insert(id, template);
                    }
                }
            }
        }
        map
    })
}

/// The path template of an operation id (`createEvent` -> `/v1/calendar/events`), from the spec.
pub fn route_template(operation_id: Option<&str>) -> &'static str {
    operation_id
        .and_then(|id| spec_templates().get(id).copied())
        .unwrap_or("unmatched")
}

impl Metrics {
    /// Counts one request. `route` and `method` come from `route_template`/`route_of_path`
    /// and `method_label`, so the label sets stay fixed.
    pub fn record_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, method, status))
            .or_default() += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry((route, method)).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn booking_created(&self) {
        self.bookings_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A booking or reschedule refused with `slot_unavailable`, by reason.
    pub fn booking_refused(&self, reason: &'static str) {
        *self
            .booking_refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP quando_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE quando_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "quando_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP quando_http_request_duration_seconds Time from request to response.\n",
        );
        out.push_str("# TYPE quando_http_request_duration_seconds histogram\n");
        for ((route, method), h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "quando_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "quando_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "quando_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "quando_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP quando_bookings_created_total Events booked.\n");
        out.push_str("# TYPE quando_bookings_created_total counter\n");
        let _ = writeln!(
            out,
            "quando_bookings_created_total {}",
            self.bookings_created.load(Ordering::Relaxed)
        );
        out.push_str("# HELP quando_booking_refusals_total Bookings and reschedules refused with slot_unavailable, by reason.\n");
        out.push_str("# TYPE quando_booking_refusals_total counter\n");
        for (reason, n) in self
            .booking_refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "quando_booking_refusals_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str("# HELP quando_rate_limited_total Requests refused with 429.\n");
        out.push_str("# TYPE quando_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "quando_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_map_to_their_path_templates() {
        assert_eq!(route_template(Some("createEvent")), "/v1/calendar/events");
        assert_eq!(route_template(Some("getEvent")), "/v1/calendar/events/{id}");
        assert_eq!(route_template(None), "unmatched");
    }

    #[test]
    fn paths_fall_under_a_fixed_set_of_route_labels() {
        assert_eq!(route_of_path("/v1/calendar/events"), "/v1/calendar/events");
        assert_eq!(
            route_of_path("/v1/calendar/events/anything"),
            "/v1/calendar/events/{id}"
        );
        assert_eq!(route_of_path("/metrics"), "/metrics");
        assert_eq!(route_of_path("/healthz"), "/healthz");
        assert_eq!(route_of_path("/"), "unmatched");
        assert_eq!(route_of_path("/v1/calendar/events/a/b/c"), "unmatched");
        assert_eq!(route_of_path("/wp-admin/x"), "unmatched");
    }

    #[test]
    fn invented_methods_are_other() {
        let invented = poem::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&poem::http::Method::PATCH), "PATCH");
    }

    #[test]
    fn the_exposition_counts_requests_and_fills_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("/v1/calendar/events", "POST", 201, 0.003);
        m.record_request("/v1/calendar/events", "POST", 201, 0.2);
        m.booking_created();
        m.booking_refused("conflict");
        let text = m.render();
        assert!(text.contains("quando_http_requests_total{route=\"/v1/calendar/events\",method=\"POST\",status=\"201\"} 2"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("quando_bookings_created_total 1"));
        assert!(text.contains("quando_booking_refusals_total{reason=\"conflict\"} 1"));
    }
}
