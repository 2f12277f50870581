//! What every request can reach: the database pool and the settings. Cheap to clone.

use sea_orm::DatabaseConnection;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: std::sync::Arc<Config>,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config) -> Self {
        AppState {
            db,
            config: std::sync::Arc::new(config),
        }
    }
}
