//! Prometheus metrics, rendered as text at `GET /metrics`: request counts and latency histograms
//! by route template, method and status, and the booking outcomes an operator watches
//! (bookings created, refusals for conflicts, rate-limited requests). Every label comes from a
//! fixed set: the route is a template of the spec (or one of the few routes outside it, or
//! `unmatched`), the method one of the standard ones (or `other`), the status three digits. No
//! request, however invented its method or path, can add a series of its own.
//!
//! The series live in a `prometheus` registry of their own per `Metrics` (so servers in one
//! process, as in the tests, never share counts): lock-free atomics once a series exists, no
//! allocation per request, and the text exposition format 0.0.4 written by the crate.

use std::collections::HashMap;
use std::sync::OnceLock;

use poem_openapi::OpenApi;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    bookings_created: IntCounter,
    booking_refusals: IntCounterVec,
    rate_limited: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Routes served outside the OpenAPI document.
const UNDOCUMENTED_ROUTES: [&str; 7] = [
    "/metrics",
    "/docs",
    "/openapi.json",
    "/openapi.yaml",
    "/mcp",
    "/widget.js",
    "/book/{eventTypeId}",
];

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

/// A status code as a label without formatting it per request: `"100"` to `"999"`.
fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (100..1000).map(|s: u16| s.to_string()).collect());
    status
        .checked_sub(100)
        .and_then(|i| labels.get(usize::from(i)))
        .map_or("other", String::as_str)
}

impl Metrics {
    /// A fresh registry with every family of the exposition.
    pub fn new() -> Self {
        // Fixed, distinct, well-formed names into a new registry: this cannot fail at run time
        // (a unit test builds it), only by an edit to the definitions below.
        Self::try_new().unwrap_or_else(|err| panic!("the metric definitions are invalid: {err}"))
    }

    fn try_new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "quando_http_requests_total",
                "HTTP requests by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "quando_http_request_duration_seconds",
                "Time from request to response.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let bookings_created = IntCounter::new("quando_bookings_created_total", "Events booked.")?;
        let booking_refusals = IntCounterVec::new(
            Opts::new(
                "quando_booking_refusals_total",
                "Bookings and reschedules refused with slot_unavailable, by reason.",
            ),
            &["reason"],
        )?;
        let rate_limited =
            IntCounter::new("quando_rate_limited_total", "Requests refused with 429.")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(bookings_created.clone()))?;
        registry.register(Box::new(booking_refusals.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            bookings_created,
            booking_refusals,
            rate_limited,
        })
    }

    /// Counts one request. `route` and `method` come from `route_template`/`route_of_path`
    /// and `method_label`, so the label sets stay fixed.
    pub fn record_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        // Label counts match the definitions, so these lookups cannot fail.
        if let Ok(counter) =
            self.requests
                .get_metric_with_label_values(&[route, method, status_label(status)])
        {
            counter.inc();
        }
        if let Ok(histogram) = self.latency.get_metric_with_label_values(&[route, method]) {
            histogram.observe(seconds);
        }
    }

    pub fn booking_created(&self) {
        self.bookings_created.inc();
    }

    /// A booking or reschedule refused with `slot_unavailable`, by reason.
    pub fn booking_refused(&self, reason: &'static str) {
        if let Ok(counter) = self
            .booking_refusals
            .get_metric_with_label_values(&[reason])
        {
            counter.inc();
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The Prometheus text exposition (format 0.0.4). A family with no series yet (no request
    /// counted, no refusal) is left out until it has one.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %err, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
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
        assert!(text.contains("# TYPE quando_http_requests_total counter"));
        assert!(text.contains("quando_http_requests_total{method=\"POST\",route=\"/v1/calendar/events\",status=\"201\"} 2"));
        assert!(text.contains("# TYPE quando_http_request_duration_seconds histogram"));
        assert!(text.contains("le=\"0.001\"} 0"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("quando_bookings_created_total 1"));
        assert!(text.contains("quando_booking_refusals_total{reason=\"conflict\"} 1"));
    }

    #[test]
    fn every_documented_family_is_exposed_with_its_type() {
        let m = Metrics::new();
        m.record_request("unmatched", "other", 400, 0.0);
        m.booking_refused("outside_working_hours");
        m.rate_limited();
        let text = m.render();
        for (name, kind) in [
            ("quando_http_requests_total", "counter"),
            ("quando_http_request_duration_seconds", "histogram"),
            ("quando_bookings_created_total", "counter"),
            ("quando_booking_refusals_total", "counter"),
            ("quando_rate_limited_total", "counter"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}: {text}"
            );
        }
        assert!(text.contains("quando_bookings_created_total 0"));
        assert!(text.contains("quando_rate_limited_total 1"));
        assert!(text.contains("status=\"400\""));
    }

    #[test]
    fn servers_in_one_process_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.booking_created();
        assert!(a.render().contains("quando_bookings_created_total 1"));
        assert!(b.render().contains("quando_bookings_created_total 0"));
    }

    #[test]
    fn status_labels_are_the_three_digits() {
        assert_eq!(status_label(201), "201");
        assert_eq!(status_label(599), "599");
        assert_eq!(status_label(99), "other");
    }
}
