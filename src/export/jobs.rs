//! Exports prepared in the background: a job writes the same file a download would stream
//! into the database in 1 MiB chunks (so any instance serves it, and memory stays flat),
//! with its progress (rows done of rows total) every half second; the console and the API
//! poll it, download the file when it is done, or cancel it. Files are deleted a day after
//! their job ended; a job whose instance stopped is failed by the housekeeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::CONTENT_TYPE;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::entities::export_job;
use crate::error::ApiError;
use crate::export::files::{self, ExportQuery, Prepared};
use crate::publish::query::Common;
use crate::startup::AppState;
use crate::{audit, store};

/// Size of a stored piece of a file.
const CHUNK: usize = 1 << 20;
/// How often a running job records its progress (and learns it was cancelled).
const REPORT_EVERY: Duration = Duration::from_millis(500);
/// A running job with no news for this long was on an instance that stopped.
pub const STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// How long a finished job and its file are kept.
pub const KEEP: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A job as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub format: String,
    pub unit: String,
    pub period: String,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    pub rows_done: i64,
    pub rows_total: i64,
    /// 0 to 100.
    pub percent: u8,
    /// Estimated from the rate so far; none until some rows are done, and once it ended.
    pub seconds_left: Option<u64>,
    pub bytes: i64,
    pub file_name: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When done: where the file is, until `expires_at`.
    pub download: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl JobView {
    pub fn of(job: export_job::Model, now: DateTime<Utc>) -> JobView {
        // A job its instance stopped preparing reads as failed before the housekeeping says so.
        let stopped = job.state == "running" && job.updated_at < now - STALE;
        let (state, error) = if stopped {
            ("failed".to_string(), Some("interrupted: the service stopped while preparing it".to_string()))
        } else {
            (job.state.clone(), job.error.clone())
        };
        let percent = match (state.as_str(), job.rows_total) {
            ("done", _) => 100,
            (_, 0) => 0,
            _ => (job.rows_done.clamp(0, job.rows_total) * 100 / job.rows_total) as u8,
        };
        let seconds_left = (state == "running" && job.rows_done > 0).then(|| {
            let spent = (now - job.created_at).num_milliseconds().max(1) as f64 / 1000.0;
            let left = (job.rows_total - job.rows_done).max(0) as f64;
            (spent / job.rows_done as f64 * left).ceil() as u64
        });
        let done = state == "done";
        JobView {
            id: job.id,
            kind: job.kind,
            format: job.format,
            unit: job.unit_code,
            period: job.period,
            state,
            rows_done: job.rows_done,
            rows_total: job.rows_total,
            percent,
            seconds_left,
            bytes: job.bytes,
            file_name: job.file_name,
            created_at: job.created_at,
            finished_at: job.finished_at,
            download: done.then(|| format!("/api/v1/exports/jobs/{}/file", job.id)),
            expires_at: job.finished_at.filter(|_| done).map(|f| f + KEEP),
            error,
        }
    }
}

/// Starts a microdata export in the background; the export is checked and audited first,
/// as a download is, so a mistake is answered at once.
pub async fn start_microdata(
    state: Arc<AppState>,
    who: &Principal,
    format: &str,
    q: &ExportQuery,
    common: &Common,
) -> Result<export_job::Model, ApiError> {
    let id = Uuid::new_v4();
    let prepared = files::prepare_microdata(&state, who, format, q, common, Some(id)).await?;
    let job = store::export_jobs::create(
        &state.db,
        store::export_jobs::NewJob {
            id,
            user_id: who.user_id,
            kind: "microdata",
            format,
            unit_code: &prepared.unit_code,
            period: &prepared.period,
            file_name: &prepared.file_name,
            rows_total: prepared.rows(),
        },
        Utc::now(),
    )
    .await?;
    state.background.spawn(run(state.clone(), id, prepared));
    Ok(job)
}

/// Writes the file, recording progress, until it is done, fails or is cancelled.
async fn run(state: Arc<AppState>, id: Uuid, prepared: Prepared) {
    let db = &state.db;
    let progress = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let counter = progress.clone();
    let mut writer = tokio::spawn(async move { prepared.write(&tx, &counter).await });
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK);
    let (mut seq, mut bytes) = (0i32, 0u64);
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    let outcome: anyhow::Result<bool> = async {
        loop {
            tokio::select! {
                piece = rx.recv() => match piece {
                    Some(Ok(piece)) => {
                        buffer.extend_from_slice(&piece);
                        if buffer.len() >= CHUNK {
                            bytes += buffer.len() as u64;
                            store::export_jobs::add_chunk(db, id, seq, std::mem::take(&mut buffer)).await?;
                            seq += 1;
                        }
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                },
                _ = ticker.tick() => {
                    let rows = progress.load(Ordering::Relaxed);
                    if !store::export_jobs::progress(db, id, rows, bytes, Utc::now()).await? {
                        return Ok(false);
                    }
                }
            }
        }
        let rows = (&mut writer).await??;
        if !buffer.is_empty() {
            bytes += buffer.len() as u64;
            store::export_jobs::add_chunk(db, id, seq, std::mem::take(&mut buffer)).await?;
        }
        store::export_jobs::progress(db, id, rows, bytes, Utc::now()).await?;
        Ok(store::export_jobs::finish(db, id, "done", None, Utc::now()).await?)
    }
    .await;
    match outcome {
        Ok(true) => tracing::info!(job = %id, bytes, "background export done"),
        // Cancelled: the writer stops at once (a workbook only writes to the channel at its
        // end), ending its snapshot and giving back its slot.
        Ok(false) => {
            writer.abort();
            if let Err(e) = store::export_jobs::delete_file(db, id).await {
                tracing::warn!(job = %id, "deleting a cancelled export's file failed: {e}");
            }
        }
        Err(e) => {
            tracing::error!(job = %id, "background export failed: {e}");
            writer.abort();
            if let Err(e) = store::export_jobs::finish(db, id, "failed", Some("the export failed"), Utc::now()).await {
                tracing::warn!(job = %id, "recording a failed export failed: {e}");
            }
        }
    }
}

/// The job, or 404 when it is not the caller's.
pub async fn job(state: &AppState, who: &Principal, id: Uuid) -> Result<export_job::Model, ApiError> {
    store::export_jobs::get(&state.db, id, who.user_id).await?.ok_or_else(|| ApiError::NotFound("no such job".into()))
}

/// Cancels a running job (its partial file is deleted) or deletes an ended one.
pub async fn cancel(state: &AppState, who: &Principal, id: Uuid) -> Result<(), ApiError> {
    let found = job(state, who, id).await?;
    let now = Utc::now();
    let was_running = store::export_jobs::finish(&state.db, id, "cancelled", None, now).await?;
    if !was_running {
        store::export_jobs::delete(&state.db, id).await?;
    }
    let details = serde_json::json!({"job": id, "was": found.state, "rows_done": found.rows_done});
    audit::record(&state.db, Some((who.user_id, &who.email)), "export_cancelled", Some(&found.unit_code), details)
        .await?;
    Ok(())
}

/// The finished file, streamed chunk by chunk (409 while it is not done).
pub async fn download(state: Arc<AppState>, who: &Principal, id: Uuid) -> Result<HttpResponse, ApiError> {
    let found = job(&state, who, id).await?;
    if found.state != "done" {
        return Err(ApiError::Conflict(format!("the export is {}: there is no file to download", found.state)));
    }
    let details = serde_json::json!({"job": id, "bytes": found.bytes});
    audit::record(&state.db, Some((who.user_id, &who.email)), "export_downloaded", Some(&found.unit_code), details)
        .await?;
    let (db, size) = (state.db.clone(), found.bytes);
    // A file deleted while it is read (it expired) ends the body with an error: the client
    // sees a truncated transfer, never a clean end of part of a file.
    let chunks = futures_util::stream::unfold(Some((0i32, 0i64)), move |at| {
        let db = db.clone();
        async move {
            let (n, sent) = at?;
            match store::export_jobs::chunk(&db, id, n).await {
                Ok(Some(data)) => {
                    let sent = sent + data.len() as i64;
                    Some((Ok(Bytes::from(data)), Some((n + 1, sent))))
                }
                Ok(None) if sent >= size => None,
                Ok(None) => Some((Err(std::io::Error::other("export file deleted while read")), None)),
                Err(e) => {
                    tracing::error!(job = %id, "reading an export's file failed: {e}");
                    Some((Err(std::io::Error::other("export file unreadable")), None))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, files::content_type(&found.format)))
        .insert_header(files::attachment(&found.file_name))
        .streaming(chunks))
}
