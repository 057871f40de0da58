//! The audit log (admins only), as JSON or CSV.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::audit::{AuditQuery, entries};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::export::{BOM, Cell, csv_lines};
use crate::startup::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", operation_id = "listAudit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows: Vec<AuditEntry> = entries(&state, &who, &q)
        .await?
        .into_iter()
        .map(|e| AuditEntry {
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            details: serde_json::from_str(&e.details).unwrap_or_default(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// The same as CSV.
#[utoipa::path(get, path = "/api/v1/admin/audit.csv", operation_id = "auditCsv", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 403, body = crate::error::ErrorBody)))]
pub async fn csv(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = entries(&state, &who, &q).await?;
    let mut out = BOM.as_bytes().to_vec();
    let header = ["at", "actor", "action", "target", "details"].map(|h| Cell::Text(h.into())).to_vec();
    out.extend(csv_lines(&[header]));
    let lines: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|e| {
            vec![
                Cell::Text(e.at.to_rfc3339()),
                Cell::Text(e.actor.unwrap_or_default()),
                Cell::Text(e.action),
                Cell::Text(e.target.unwrap_or_default()),
                Cell::Text(e.details),
            ]
        })
        .collect();
    out.extend(csv_lines(&lines));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((CONTENT_DISPOSITION, "attachment; filename=\"sipas-audit.csv\""))
        .body(out))
}
