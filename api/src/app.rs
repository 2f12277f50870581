//! One way to start the server: `Application::build` connects, migrates, refreshes the planner's
//! statistics and binds; `run_until` serves with the production accept loop and runs the hourly
//! housekeeping beside it. `quando serve`, the integration tests and the bench's server child all
//! start Quando through here, so what is tested and measured is what runs.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;
use crate::{app, db, server};

pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// A bound, ready server on a migrated database.
pub struct Application {
    listener: TcpListener,
    /// `--metrics-bind`: the listener `/metrics` is served on, apart from the API.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Connects to `config.database_url`, applies pending migrations, refreshes statistics and
    /// binds `config.bind` (`127.0.0.1:0` picks a free port), and `config.metrics_bind` if set.
    pub async fn build(config: Config) -> Result<Application, BuildError> {
        let conn = db::connect(&config.database_url).await?;
        db::migrate(&conn).await?;
        Self::build_with(conn, config).await
    }

    /// The same on a pool the caller opened and migrated (a test that made the database).
    pub async fn build_with(
        conn: DatabaseConnection,
        config: Config,
    ) -> Result<Application, BuildError> {
        db::analyze(&conn).await?;
        crate::domain::contact::Phone::warm_up();
        let listener = TcpListener::bind(&config.bind).await?;
        let metrics_listener = match &config.metrics_bind {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                format!("cannot listen for /metrics on {addr} (QUANDO_METRICS_BIND): {e}")
            })?),
            None => None,
        };
        Ok(Application {
            listener,
            metrics_listener,
            state: AppState::new(conn, config),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served when `config.metrics_bind` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let conn = self.state.db.clone();
        let (metrics, options) = (
            self.state.metrics.clone(),
            self.state.config.serve_options(),
        );
        let limits = self.state.limits.clone();
        let service = self.state.service.clone();
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "quando listening");
        }
        let metrics_server = serve_metrics(self.metrics_listener, self.state.clone());
        let deliveries = deliver_webhooks(self.state.clone());
        let serving = server::serve(
            self.listener,
            app(self.state),
            options,
            Some(metrics),
            shutdown,
        );
        let result = tokio::select! {
            r = serving => r,
            () = housekeeping(conn.clone(), service) => Ok(()),
            () = sweep_auth_failures(limits) => Ok(()),
            () = metrics_server => Ok(()),
            () = deliveries => Ok(()),
        };
        let _ = conn.close().await;
        result
    }
}

/// Folds every organization's event count stripes (`repo::events::fold_org_counts`), one
/// organization per statement. Answers the counter rows written.
async fn fold_org_counts(conn: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let mut written = 0;
    for org in crate::repo::events::striped_orgs(conn).await? {
        written += crate::repo::events::fold_org_counts(conn, org).await?;
    }
    Ok(written)
}

/// Hourly: stored Idempotency-Key responses past their 24 hours are deleted, finished webhook
/// deliveries (and their messages) past 30 days too, the planner's statistics are refreshed,
/// the organizations' event count stripes are folded (PostgreSQL), and recurring events get
/// their instances up to the horizon again (`service::series`). Never returns.
async fn housekeeping(conn: DatabaseConnection, service: crate::service::Service) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.tick().await; // the first tick is now: statistics were just refreshed by `build`
    loop {
        tick.tick().await;
        if let Err(err) = db::analyze(&conn).await {
            tracing::warn!(error = %err, "statistics refresh failed");
        }
        match crate::repo::idempotency::purge_expired(&conn, crate::domain::time::now()).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys purged"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "idempotency purge failed"),
        }
        let cutoff = crate::domain::time::now()
            - chrono::Duration::days(crate::repo::webhooks::LOG_RETENTION_DAYS);
        match crate::repo::webhooks::purge_finished(service.writer(), cutoff).await {
            Ok((d, m)) if d + m > 0 => {
                tracing::info!(deliveries = d, messages = m, "old webhook log purged");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "webhook log purge failed"),
        }
        let expired = crate::domain::time::now() - crate::repo::holds::KEEP_EXPIRED;
        match crate::repo::holds::purge_expired(service.writer(), expired).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired slot holds deleted"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "purging expired slot holds failed"),
        }
        match fold_org_counts(&conn).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "event count stripes folded"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "folding event count stripes failed"),
        }
        match service.extend_due_series().await {
            Ok(n) if n > 0 => tracing::info!(written = n, "recurring events extended"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "extending recurring events failed"),
        }
    }
}

/// The webhook delivery worker (`crate::delivery`). Never returns.
async fn deliver_webhooks(state: AppState) {
    let service = &state.service;
    crate::delivery::Worker::new(
        service.writer().clone(),
        state.config.webhook_allow_private,
        service.deliveries_due(),
    )
    .run()
    .await
}

/// Every `SWEEP_INTERVAL`: per-IP failed-authentication buckets that are full again are
/// dropped, so the limiter's memory follows the guessing going on now. Never returns.
async fn sweep_auth_failures(limits: std::sync::Arc<crate::rate_limit::Limits>) {
    let mut tick = tokio::time::interval(crate::rate_limit::SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        limits.sweep_auth_failures();
    }
}

/// Serves `/metrics` on its own listener, with the API's connection limits, until the API server
/// stops (the caller drops this then). Without a listener, or should its accept loop fail, it
/// waits forever: the API goes on either way.
async fn serve_metrics(listener: Option<TcpListener>, state: AppState) {
    if let Some(listener) = listener {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics listening");
        }
        let (metrics, options) = (state.metrics.clone(), state.config.serve_options());
        let served = server::serve(
            listener,
            crate::metrics_app(state),
            options,
            Some(metrics),
            std::future::pending(),
        )
        .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    }
    std::future::pending::<()>().await;
}
