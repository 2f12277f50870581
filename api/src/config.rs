//! Settings from flags and `QUANDO_*` environment variables, validated at start-up.

/// Server settings. `Config::default()` is what `quando serve` uses with no flags or env.
#[derive(Clone, Debug)]
pub struct Config {
    /// `QUANDO_DATABASE_URL`: `sqlite://quando.db?mode=rwc` (default) or `postgres://...`.
    pub database_url: String,
    /// `QUANDO_BIND`: the address to listen on.
    pub bind: String,
    /// `QUANDO_RATE_LIMIT_PER_MINUTE`: default per-key request budget.
    pub rate_limit_per_minute: u32,
    /// `QUANDO_AUTH_FAILURES_PER_MINUTE`: failed authentications allowed per client IP.
    pub auth_failures_per_minute: u32,
    /// `QUANDO_REQUEST_TIMEOUT_SECONDS`: a request still running after this is answered 503.
    pub request_timeout: std::time::Duration,
    /// `QUANDO_HEADER_READ_TIMEOUT_SECONDS`: a request head must arrive within this.
    pub header_read_timeout: std::time::Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// `QUANDO_MAX_CONNECTIONS`: connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// `QUANDO_METRICS_BIND`: an address of its own on which `/metrics` is served (e.g.
    /// `127.0.0.1:9090`). With it, `/metrics` is not served on the API port at all.
    pub metrics_bind: Option<String>,
    /// `QUANDO_METRICS_TOKEN`: `/metrics` answers only `Authorization: Bearer <token>`, on the
    /// metrics address if there is one, else on the API port. With neither setting, `/metrics`
    /// is served nowhere (404 on the API port).
    pub metrics_token: Option<String>,
    /// `QUANDO_SYNC_TOKEN_TTL_SECONDS`: how long a Google Calendar sync token stays usable;
    /// an older one is 410 `fullSyncRequired` (default 30 days).
    pub sync_token_ttl: std::time::Duration,
    /// `QUANDO_WEBHOOK_ALLOW_PRIVATE`: webhook endpoints may be plain `http` and on loopback,
    /// private or link-local addresses (a test rig or a receiver inside the same network).
    /// Off by default: a tenant could otherwise point deliveries at the server's own network.
    pub webhook_allow_private: bool,
    /// `QUANDO_PUBLIC_URL`: the address clients reach this server at (`https://quando.example`),
    /// for URLs Quando hands out (calendar feeds). Without it, the request's own `Host` (and
    /// `X-Forwarded-Proto`) is used.
    pub public_url: Option<String>,
    /// `QUANDO_CORS_ORIGINS`: browser origins (comma-separated, `https://admin.example`) from
    /// which secret keys are accepted, for dashboards. A request with any other `Origin` and a
    /// secret key is refused (publishable keys carry their own origins).
    pub cors_origins: Vec<String>,
    /// `QUANDO_WIDGET_RATE_LIMIT_PER_MINUTE`: requests per minute of each client address with
    /// one publishable key (a key's own `--rate-limit` replaces it).
    pub widget_rate_limit_per_minute: u32,
}

/// Where `/metrics` is served, from `metrics_bind` and `metrics_token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsExposure {
    /// Neither setting: nowhere.
    Nowhere,
    /// A token and no address of its own: on the API port, to that token only.
    ApiPortWithToken,
    /// An address of its own (with or without a token): there only.
    OwnAddress,
}

/// The shortest `QUANDO_METRICS_TOKEN` accepted: guessing it must be hopeless.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// A metrics token, checked at start-up: at least `MIN_METRICS_TOKEN_LEN` visible ASCII
/// characters, so that it fits a header and cannot be guessed.
pub fn parse_metrics_token(token: &str) -> Result<String, String> {
    if token.len() < MIN_METRICS_TOKEN_LEN {
        return Err(format!(
            "the metrics token must be at least {MIN_METRICS_TOKEN_LEN} characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the metrics token must be visible ASCII characters, no spaces".to_string());
    }
    Ok(token.to_string())
}

/// `QUANDO_PUBLIC_URL`: an absolute `http(s)` URL with no query or fragment; kept without a
/// trailing slash.
pub fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("the public URL must be http:// or https:// with a host".to_string());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the public URL must have no query or fragment".to_string());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://quando.db?mode=rwc";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: DEFAULT_DATABASE_URL.to_string(),
            bind: DEFAULT_BIND.to_string(),
            rate_limit_per_minute: 600,
            auth_failures_per_minute: 30,
            request_timeout: std::time::Duration::from_secs(30),
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
            metrics_bind: None,
            metrics_token: None,
            sync_token_ttl: std::time::Duration::from_secs(30 * 24 * 3600),
            webhook_allow_private: false,
            public_url: None,
            cors_origins: Vec::new(),
            widget_rate_limit_per_minute: 60,
        }
    }
}

impl Config {
    /// Where `/metrics` is served.
    pub fn metrics_exposure(&self) -> MetricsExposure {
        match (&self.metrics_bind, &self.metrics_token) {
            (Some(_), _) => MetricsExposure::OwnAddress,
            (None, Some(_)) => MetricsExposure::ApiPortWithToken,
            (None, None) => MetricsExposure::Nowhere,
        }
    }

    /// The connection limits `server::serve` enforces.
    pub fn serve_options(&self) -> crate::server::ServeOptions {
        crate::server::ServeOptions {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            ..crate::server::ServeOptions::default()
        }
    }
}
