//! Exports over the API: the indices table (CSV, XLSX, JSON) and microdata (CSV, XLSX).
//! Same parameters, roles and suppression as `/api/v1/indices`. The files come from
//! `export::files`, as the console's do: every export is audited with its filters and row
//! count, and microdata streams, so any size finishes.

use actix_web::{HttpResponse, web};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::export::files::{ExportQuery, indices_file, microdata_file};
use crate::publish::query::Common;
use crate::startup::AppState;

/// The indices table of every unit in a subtree.
#[utoipa::path(get, path = "/api/v1/exports/indices.{format}", operation_id = "exportIndices", tag = "admin", security(("bearer" = [])),
    params(("format" = String, Path, description = "csv, xlsx or json"), ExportQuery, Common),
    responses((status = 200, description = "The table", content_type = "text/csv"),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn indices(
    state: web::Data<AppState>,
    who: Principal,
    format: web::Path<String>,
    q: web::Query<ExportQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    indices_file(&state, &who, &format, &q, &common).await
}

/// Anonymised microdata: one row per response (see `export::microdata`).
#[utoipa::path(get, path = "/api/v1/exports/microdata.{format}", operation_id = "exportMicrodata", tag = "admin", security(("bearer" = [])),
    params(("format" = String, Path, description = "csv or xlsx"), ExportQuery, Common),
    responses((status = 200, description = "Streamed rows; a transfer that breaks off ends with an error, never a clean end", content_type = "text/csv"),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
              (status = 429, description = "You already have two downloads under way", body = crate::error::ErrorBody),
              (status = 503, description = "Every download slot is taken: come back after Retry-After", body = crate::error::ErrorBody)))]
pub async fn microdata(
    state: web::Data<AppState>,
    who: Principal,
    format: web::Path<String>,
    q: web::Query<ExportQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    microdata_file(state.into_inner(), &who, &format, &q, &common).await
}
