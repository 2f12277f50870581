//! Quando: a multi-tenant appointment-booking API.
//!
//! `app(state)` is the whole server; the binary, the integration tests and `quando openapi`
//! all build it from here, so what is tested is what runs.

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod context;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod dialects;
pub mod domain;
pub mod error;
pub mod instance;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod middleware;
pub mod outbound;
pub mod pagination;
pub mod payload;
pub mod rate_limit;
pub mod repo;
pub mod schema;
pub mod server;
pub mod service;
pub mod spec;
pub mod state;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_support;
pub mod widget;

use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Route};
use poem_openapi::OpenApiService;

use config::MetricsExposure;
use dialects::native::availability::AvailabilityApi;
use dialects::native::calendars::CalendarsApi;
use dialects::native::event_types::EventTypesApi;
use dialects::native::events::EventsApi;
use dialects::native::feeds::FeedsApi;
use dialects::native::holds::HoldsApi;
use dialects::native::service::ServiceApi;
use dialects::native::webhooks::WebhooksApi;
use dialects::talkover::TalkoverApi;
use dialects::talkover::availability::TalkoverAvailabilityApi;
use dialects::talkover::calendars::TalkoverCalendarsApi;
use dialects::talkover::events::TalkoverEventsApi;
use state::AppState;

pub type Api = (
    EventsApi,
    AvailabilityApi,
    CalendarsApi,
    EventTypesApi,
    WebhooksApi,
    ServiceApi,
    TalkoverApi,
    TalkoverEventsApi,
    TalkoverCalendarsApi,
    TalkoverAvailabilityApi,
    FeedsApi,
    HoldsApi,
);

const DESCRIPTION: &str = "Quando is a multi-tenant appointment-booking API. An organization owns \
calendars (bookable resources), event types (what can be booked) and events (appointments). \
Authenticate with `Authorization: Bearer qnd_live_...`; keys carry the scopes `calendar:read`, \
`calendar:write` and `webhooks:manage` (webhook endpoints and their delivery log). Booking widgets \
use publishable keys (`qnd_pub_...`, scheme `publishableKey`), bound to event types and browser \
origins: they reach only the operations that name that scheme. Every response carries `X-Request-Id`, and every JSON body of the /v1 API \
carries the same `requestId`. Errors share one envelope: \
`{\"error\":{\"code\",\"message\",\"details\"},\"requestId\"}`. Times are ISO 8601; output is \
always UTC with `Z`. The same store and rules also answer Talkover's calendar API under \
`/api/v1` (snake_case fields, `{\"success\": true, \"data\": ...}`, errors \
`{\"success\": false, \"error\": {\"code\": \"SLOT_UNAVAILABLE\", ...}, \"requestId\"}`), and \
Google Calendar v3 under `/calendar/v3` (Google's own resources and error shape; described by \
Google's discovery document, not here).";

/// The OpenAPI service: the operations and the spec they generate.
pub fn api_service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            EventsApi,
            AvailabilityApi,
            CalendarsApi,
            EventTypesApi,
            WebhooksApi,
            ServiceApi,
            TalkoverApi,
            TalkoverEventsApi,
            TalkoverCalendarsApi,
            TalkoverAvailabilityApi,
            FeedsApi,
            HoldsApi,
        ),
        "Quando",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The whole HTTP server.
pub fn app(state: AppState) -> impl Endpoint<Output = poem::Response> + 'static {
    let service = api_service();
    let (yaml, json) = spec::spec_yaml_and_json();
    let docs = service.swagger_ui_html();
    let routes = Route::new()
        .nest("/", service)
        .nest(dialects::google::errors::PREFIX, dialects::google::routes())
        // A calendar feed: no API key, its token is the credential (dialects/native/feeds.rs).
        .at("/feeds/:file", poem::get(dialects::native::feeds::feed_ics))
        // The booking widget: a script any website embeds, and a whole booking page.
        .at("/widget.js", poem::get(widget::widget_js))
        .at("/book/:event_type", poem::get(widget::book_page))
        // Voice agents: the Model Context Protocol's Streamable HTTP transport (mcp/).
        .at("/mcp", mcp::McpEndpoint::new(state.clone()))
        .at(
            "/openapi.json",
            make_sync(move |_| {
                json.clone()
                    .with_content_type("application/json; charset=utf-8")
            }),
        )
        .at(
            "/openapi.yaml",
            make_sync(move |_| {
                yaml.clone()
                    .with_content_type("application/yaml; charset=utf-8")
            }),
        )
        .at(
            "/docs",
            make_sync(move |_| Html(docs.clone()).into_response()),
        );
    // `/metrics` is on the API port only behind a token with no address of its own; otherwise a
    // request for it is the 404 of any unknown path.
    let routes = match state.config.metrics_exposure() {
        MetricsExposure::ApiPortWithToken => routes.at("/metrics", poem::get(metrics_text)),
        MetricsExposure::Nowhere | MetricsExposure::OwnAddress => routes,
    };
    routes
        .around(middleware::idempotency::layer)
        .around(middleware::tenant::layer)
        .around(middleware::request_id::layer)
        .around(dialects::talkover::errors::layer)
        .around(dialects::google::errors::layer)
        .data(state)
}

/// The server of `--metrics-bind`: `GET /metrics` (behind the token when one is set) and the
/// JSON 404 for anything else, with request ids, time limit and request metrics like the API.
pub fn metrics_app(state: AppState) -> impl Endpoint<Output = poem::Response> + 'static {
    Route::new()
        .at("/metrics", poem::get(metrics_text))
        .around(middleware::request_id::layer)
        .data(state)
}

/// `GET /metrics`: Prometheus text exposition. With `QUANDO_METRICS_TOKEN` set, only to
/// `Authorization: Bearer <token>` (compared in constant time); else 401 in the envelope.
#[poem::handler]
fn metrics_text(
    state: poem::web::Data<&AppState>,
    req: &poem::Request,
) -> Result<poem::Response, error::ApiError> {
    if let Some(token) = &state.config.metrics_token {
        let given = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into();
        if !matches {
            return Err(error::ApiError::unauthorized(
                "/metrics needs Authorization: Bearer <the server's QUANDO_METRICS_TOKEN>",
            ));
        }
    }
    Ok(state
        .metrics
        .render()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response())
}
