//! The booking widget, served from the binary: `/widget.js` (a `<quando-booking>` web component
//! that any website embeds with one script tag) and `/book/{eventTypeId}?key=qnd_pub_...` (a
//! whole booking page around it). Plain HTML, CSS and JavaScript in `api/assets/`; nothing is
//! fetched from anywhere else. The widget speaks the native API with a publishable key.
//!
//! These are pages for browsers, so their answers are HTML and JavaScript (like the docs page),
//! not the JSON envelope. The booking page is served only for a live publishable key bound to
//! the event type, with a Content-Security-Policy that allows its own script and API and lets
//! only the key's origins frame it.

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use crate::auth;
use crate::domain::ids::EventTypeId;
use crate::domain::time;
use crate::state::AppState;

const WIDGET_JS: &str = include_str!("../assets/widget.js");
const BOOK_HTML: &str = include_str!("../assets/book.html");

/// `GET /widget.js`.
#[handler]
pub fn widget_js() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header("x-content-type-options", "nosniff")
        .body(WIDGET_JS)
}

#[derive(Deserialize)]
pub struct BookQuery {
    key: Option<String>,
}

/// `&`, `<`, `>`, `"` and `'` escaped for an HTML attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        )
        .body(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width, initial-scale=1\"><title>Booking page not found</title>\
             </head><body><h1>Booking page not found</h1><p>This booking link is not valid: \
             check the event type and the key in it.</p></body></html>",
        )
}

/// The Content-Security-Policy of the booking page: its own script, styles and API only, framed
/// by the key's origins only.
pub fn page_policy(origins: &[String]) -> String {
    let mut ancestors = String::from("'self'");
    for origin in origins {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; \
         img-src 'self' data:; frame-ancestors {ancestors}; base-uri 'none'; form-action 'none'"
    )
}

/// `GET /book/{eventTypeId}?key=qnd_pub_...`.
#[handler]
pub async fn book_page(
    state: Data<&AppState>,
    req: &Request,
    Path(event_type): Path<String>,
    Query(query): Query<BookQuery>,
) -> Response {
    let Ok(event_type) = uuid::Uuid::parse_str(&event_type).map(EventTypeId) else {
        return not_found();
    };
    let Some(key) = query.key.filter(|k| auth::is_publishable_key(k)) else {
        return not_found();
    };
    let tenant = match auth::authenticate(&state.db, &state.key_cache, &key, time::now()).await {
        Ok(tenant) => tenant,
        Err(err) => {
            if err.code == crate::error::ErrorCode::Unauthorized
                && let Some(ip) = req.remote_addr().as_socket_addr().map(|a| a.ip())
                && state.limits.check_auth_failure(ip).is_err()
            {
                return StatusCode::TOO_MANY_REQUESTS.into_response();
            }
            return not_found();
        }
    };
    let Some(binding) = tenant.binding().filter(|b| b.allows(event_type)) else {
        return not_found();
    };
    let page = BOOK_HTML
        .replace("__QUANDO_EVENT_TYPE__", &escape(&event_type.0.to_string()))
        .replace("__QUANDO_KEY__", &escape(&key));
    let mut resp = Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(page);
    if let Ok(policy) = HeaderValue::from_str(&page_policy(&binding.origins)) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(
            escape(r#""><script>&'"#),
            "&quot;&gt;&lt;script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_booking_page_may_be_framed_by_the_keys_origins_only() {
        let policy = page_policy(&["https://shop.example".to_string()]);
        assert!(policy.contains("frame-ancestors 'self' https://shop.example;"));
        assert!(policy.contains("script-src 'self';"));
        assert!(policy.starts_with("default-src 'none';"));
    }

    #[test]
    fn the_page_has_the_placeholders_the_server_fills() {
        assert!(BOOK_HTML.contains("__QUANDO_EVENT_TYPE__"));
        assert!(BOOK_HTML.contains("__QUANDO_KEY__"));
        assert!(BOOK_HTML.contains("src=\"/widget.js\""));
    }
}
