//! Exports over the API: the indices table (CSV, XLSX, JSON) and microdata (CSV, XLSX).
//! Same parameters, roles and suppression as `/api/v1/indices`. The files come from
//! `export::files`, as the console's do: every export is audited with its filters and row
//! count, and microdata streams, so any size finishes.

use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::export::files::{ExportQuery, indices_file, microdata_file};
use crate::export::jobs::{self, JobView};
use crate::publish::query::Common;
use crate::startup::AppState;
use crate::store;

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

/// Starts preparing microdata in the background (same parameters as the download): for
/// files that take more than a few seconds. Poll the job; download its file when done.
#[utoipa::path(post, path = "/api/v1/exports/microdata.{format}/jobs", operation_id = "startMicrodataJob", tag = "admin", security(("bearer" = [])),
    params(("format" = String, Path, description = "csv or xlsx"), ExportQuery, Common),
    responses((status = 202, description = "Started; `Location` is the job", body = JobView),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
              (status = 429, description = "You already have two exports under way", body = crate::error::ErrorBody),
              (status = 503, description = "Every export slot is taken: come back after Retry-After", body = crate::error::ErrorBody)))]
pub async fn start_job(
    state: web::Data<AppState>,
    who: Principal,
    format: web::Path<String>,
    q: web::Query<ExportQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    let job = jobs::start_microdata(state.into_inner(), &who, &format, &q, &common).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/v1/exports/jobs/{}", job.id)))
        .json(JobView::of(job, Utc::now())))
}

/// Your background exports, newest first (the last 20).
#[utoipa::path(get, path = "/api/v1/exports/jobs", operation_id = "listExportJobs", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [JobView])))]
pub async fn list_jobs(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let jobs: Vec<JobView> =
        store::export_jobs::list(&state.db, who.user_id, 20).await?.into_iter().map(|j| JobView::of(j, now)).collect();
    Ok(HttpResponse::Ok().json(jobs))
}

/// One of your background exports: its state, rows done of rows total, time left, and
/// where its file is once done. Another user's job answers 404.
#[utoipa::path(get, path = "/api/v1/exports/jobs/{id}", operation_id = "getExportJob", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job")),
    responses((status = 200, body = JobView)))]
pub async fn get_job(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(JobView::of(jobs::job(&state, &who, *id).await?, Utc::now())))
}

/// Cancels a running export (its partial file is deleted) or deletes a finished one.
#[utoipa::path(delete, path = "/api/v1/exports/jobs/{id}", operation_id = "cancelExportJob", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job")),
    responses((status = 204, description = "Cancelled or deleted")))]
pub async fn cancel_job(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    jobs::cancel(&state, &who, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The file of a finished export (kept a day after it finished).
#[utoipa::path(get, path = "/api/v1/exports/jobs/{id}/file", operation_id = "downloadExportJob", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job")),
    responses((status = 200, description = "The file", content_type = "text/csv"),
              (status = 409, description = "Not done (running, failed or cancelled)", body = crate::error::ErrorBody)))]
pub async fn job_file(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    jobs::download(state.into_inner(), &who, *id).await
}
