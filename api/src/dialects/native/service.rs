//! `/healthz` and `/readyz`: for load balancers and orchestrators. No authentication.

use migration::{Migrator, MigratorTrait};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::ApiTags;
use crate::middleware::request_id;
use crate::state::AppState;

/// Service status.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency is down.
    pub status: String,
    /// Why the server is not ready (`unavailable` only): the database does not answer, the
    /// schema is missing or behind this binary's migrations, or SQLite does not take writes.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn health(status: &str, reason: Option<String>) -> Json<Health> {
    Json(Health {
        status: status.into(),
        reason,
        request_id: request_id::current(),
    })
}

/// Whether the database can serve this binary: it answers, its schema has every migration the
/// binary knows, and on SQLite the file takes a write (a full disk, a read-only or immutable
/// file, a lock held past the timeout all fail here). On PostgreSQL a write is not tried: its
/// failures are per request and answered 503 there.
async fn ready(db: &DatabaseConnection, writer: &DatabaseConnection) -> Result<(), String> {
    db.execute_unprepared("SELECT 1")
        .await
        .map_err(|e| format!("the database does not answer: {e}"))?;
    let pending = Migrator::get_pending_migrations(db)
        .await
        .map_err(|e| format!("the schema cannot be read (not migrated?): {e}"))?;
    if !pending.is_empty() {
        return Err(format!(
            "the schema is behind this binary: {} migration(s) pending; run `quando migrate`",
            pending.len()
        ));
    }
    if db.get_database_backend() == DbBackend::Sqlite {
        let write = async {
            let (_queued, txn) = crate::repo::begin_write(writer).await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO service_probe (id, checked_at) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                [crate::domain::time::now().into()],
            ))
            .await?;
            txn.commit().await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                crate::db::note_failure(&e);
                crate::db::note_trouble();
                return Err(format!("the SQLite database does not take writes: {e}"));
            }
            Err(_) => return Err("the SQLite database took no write within 5 s".into()),
        }
    }
    Ok(())
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
    /// The database cannot serve; `reason` says why.
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
        HealthResponse::Ok(health("ok", None))
    }

    /// Readiness
    ///
    /// 200 when the database can serve: it answers, its schema has every migration this binary
    /// knows, and (SQLite) its file takes a write. Else 503 with `reason`. No authentication.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        match ready(&state.db, &state.service.writer).await {
            Ok(()) => ReadyResponse::Ready(health("ok", None)),
            Err(reason) => {
                tracing::warn!(%reason, "readiness probe failed");
                ReadyResponse::Unavailable(health("unavailable", Some(reason)))
            }
        }
    }
}
