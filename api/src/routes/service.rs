//! `/healthz` and `/readyz`: for load balancers and orchestrators. No authentication.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::ConnectionTrait;

use super::ApiTags;
use crate::middleware::request_id;
use crate::state::AppState;

/// Service status.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency is down.
    pub status: String,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn health(status: &str) -> Json<Health> {
    Json(Health {
        status: status.into(),
        request_id: request_id::current(),
    })
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers; the server can take traffic.
    #[oai(status = 200)]
    Ready(Json<Health>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

pub struct ServiceApi;

#[OpenApi(tag = "ApiTags::Service")]
impl ServiceApi {
    /// Liveness
    ///
    /// 200 while the process is up. No authentication.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(health("ok"))
    }

    /// Readiness
    ///
    /// 200 when the database answers a query, else 503. No authentication.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let db = &state.db;
        let probe = db.execute_unprepared("SELECT 1").await;
        match probe {
            Ok(_) => ReadyResponse::Ready(health("ok")),
            Err(err) => {
                tracing::warn!(error = %err, "readiness probe failed");
                ReadyResponse::Unavailable(health("unavailable"))
            }
        }
    }
}
