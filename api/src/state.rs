//! What every request can reach: the database pool, the settings, the rate-limit buckets, the
//! metrics and the coarse key-usage clock. Cheap to clone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate_limit::Limits;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// The booking core every dialect calls.
    pub service: crate::service::Service,
    pub config: Arc<Config>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    /// Recently authenticated keys.
    pub key_cache: Arc<crate::auth::KeyCache>,
    /// When each key's `last_used_at` was last written.
    pub key_usage: Arc<crate::auth::KeyUsage>,
    /// This process as owner of `Idempotency-Key` claims; registered on the first keyed request.
    pub instance: Arc<tokio::sync::OnceCell<crate::instance::Instance>>,
    /// The origins of live publishable keys, for CORS preflights (which carry no key).
    pub origins: Arc<crate::auth::OriginRegistry>,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config) -> Self {
        let metrics = Arc::new(Metrics::default());
        AppState {
            service: crate::service::Service::new(db.clone(), metrics.clone()),
            metrics,
            db,
            limits: Arc::new(Limits::new(
                config.rate_limit_per_minute,
                config.auth_failures_per_minute,
                config.widget_rate_limit_per_minute,
            )),
            origins: Arc::new(crate::auth::OriginRegistry::default()),
            key_cache: Arc::new(crate::auth::KeyCache::default()),
            key_usage: Arc::new(Mutex::new(HashMap::new())),
            instance: Arc::new(tokio::sync::OnceCell::new()),
            config: Arc::new(config),
        }
    }

    /// This process's instance, registered (lock taken) on first use.
    pub async fn instance(&self) -> Result<&crate::instance::Instance, sea_orm::DbErr> {
        self.instance
            .get_or_try_init(|| {
                crate::instance::Instance::start(&self.db, &self.config.database_url)
            })
            .await
    }
}
