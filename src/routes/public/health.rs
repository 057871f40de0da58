//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "Alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can serve: the database answers. With `read_database_url`, the detail
/// shows the replica's state and how far behind it is.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses((status = 200, description = "Ready"),
              (status = 503, description = "Database unreachable", body = crate::error::ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match store::ping(&state.probe).await {
        // A replica that is down or behind only sends reads back to the primary: still ready.
        Ok(()) => Ok(HttpResponse::Ok().json(match state.reads.status() {
            Some(replica) => json!({"status": "ready", "replica": replica}),
            None => json!({"status": "ready"}),
        })),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            Err(ApiError::Unavailable)
        }
    }
}
