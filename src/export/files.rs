//! Export files as downloads: parsing the export query, auditing, streaming; the API and the console call the same functions.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::{ApiError, FieldErrors};
use crate::export::indices::{ExportMeta, IndicesTable};
use crate::export::microdata::{self, Snapshot};
use crate::export::{BOM, csv_lines};
use crate::index::report::{self, Context};
use crate::publish::query::{Common, Parsed, Periods, add, parse_common};
use crate::startup::AppState;
use crate::store::tallies::Dim;
use crate::{audit, store};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The unit whose subtree is exported; default: your unit, or the province.
    pub within: Option<String>,
    /// Microdata only: `true` adds respondents' comments.
    pub comments: Option<String>,
    /// Microdata only: the breakdown column that keeps its values where the publication
    /// gate shows them (`respondent_type`, the default, `channel` or `service`); the others
    /// are `*`. With a filter, the filtered one.
    pub breakdown: Option<String>,
    /// Indices only: a day, YYYY-MM-DD, to list the units as they stood that day (names,
    /// parents, and what was below each); default: today's tree.
    #[param(pattern = r"^\d{4}-\d{2}-\d{2}$")]
    pub as_at: Option<String>,
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub fn attachment(name: &str) -> (actix_web::http::header::HeaderName, String) {
    (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
}

async fn parsed(
    state: &AppState,
    who: &Principal,
    q: &ExportQuery,
    common: &Common,
) -> Result<(Parsed, crate::units::UnitTree), ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let p = parse_common(state, &tree, who, q.within.as_deref(), common, Periods::Calendar, &mut fields)?;
    if !matches!(q.comments.as_deref(), None | Some("true" | "false")) {
        add(&mut fields, "comments", "must be true or false");
    }
    match (p, fields.is_empty()) {
        (Some(p), true) => Ok((p, tree)),
        _ => Err(ApiError::validation(fields)),
    }
}

fn file_stem(kind: &str, p: &Parsed) -> String {
    format!("sipas-{kind}-{}-{}", p.unit.code, p.period.label().replace("..", "_"))
}

/// The indices table as a file; the API and the console's export buttons both answer with it.
pub async fn indices_file(
    state: &AppState,
    who: &Principal,
    format: &str,
    q: &ExportQuery,
    common: &Common,
) -> Result<HttpResponse, ApiError> {
    if !["csv", "xlsx", "json"].contains(&format) {
        return Err(ApiError::NotFound("exports come as csv, xlsx or json".into()));
    }
    let as_at = crate::publish::query::parse_as_at(q.as_at.as_deref())?;
    let (p, tree) = parsed(state, who, q, common).await?;
    let ctx = Context::settled(state, &tree).await;
    let view = as_at.map(|day| report::AsAtView {
        day,
        scope: if who.role == crate::auth::Role::UnitManager { who.unit_id } else { None },
    });
    let Some(units) = report::unit_table(&ctx, &p.form, &p.unit, p.period, &p.filters, p.k, view).await? else {
        let mut fields = FieldErrors::new();
        add(&mut fields, "as_at", format!("{} did not exist on that day", p.unit.code));
        return Err(ApiError::validation(fields));
    };
    let table = IndicesTable {
        meta: ExportMeta {
            form: p.form.form.id.clone(),
            form_version: p.form.form.version,
            within: p.unit.code.clone(),
            from: p.period.from,
            to: p.period.to,
            period: p.period.label(),
            as_at,
            k: p.k,
            filters: p.filters.clone(),
            generated_at: Utc::now(),
        },
        units,
    };
    let details = json!({"export": "indices", "format": format, "within": p.unit.code, "period": p.period.label(),
        "as_at": as_at, "filters": p.filters, "k": p.k, "rows": table.units.len()});
    audit::record(&state.db, Some((who.user_id, &who.email)), "export", Some(&p.unit.code), details).await?;
    let mut stem = file_stem("indices", &p);
    if let Some(day) = as_at {
        stem.push_str(&format!("-as-at-{day}"));
    }
    Ok(match format {
        "csv" => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
            .insert_header(attachment(&format!("{stem}.csv")))
            .body(crate::export::indices::csv(&p.form.form, &table.units)),
        "xlsx" => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, XLSX))
            .insert_header(attachment(&format!("{stem}.xlsx")))
            .body(crate::export::indices::xlsx(&p.form.form, &table).map_err(ApiError::internal)?),
        _ => HttpResponse::Ok().json(table),
    })
}

pub type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

pub fn body(
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

pub const MANAGERS: &str = "microdata is for provincial analysts and administrators: a unit manager serves the citizens whose rows these are and reads the unit's published tables instead";

/// A microdata export ready to write: checked, its snapshot open, its permit held and the
/// export audited. The download and the background job both start from here.
pub struct Prepared {
    permit: crate::export::permits::Permit,
    snapshot: Snapshot,
    request: microdata::Request,
    form: std::sync::Arc<crate::index::catalog::Versioned>,
    pub format: String,
    pub file_name: String,
    pub unit_code: String,
    pub period: String,
}

impl Prepared {
    /// Responses the file will hold (every row of the plan: none is dropped).
    pub fn rows(&self) -> u64 {
        self.snapshot.plan.rows
    }

    /// Writes the file into `tx`, counting rows into `progress`, then gives the permit back.
    pub async fn write(self, tx: &Sender, progress: &AtomicU64) -> anyhow::Result<u64> {
        let _permit = self.permit;
        if self.format == "csv" {
            stream_csv(self.snapshot, &self.request, &self.form, tx, progress).await
        } else {
            stream_xlsx(self.snapshot, &self.request, &self.form, tx, progress).await
        }
    }
}

pub fn content_type(format: &str) -> &'static str {
    if format == "csv" { "text/csv; charset=utf-8" } else { XLSX }
}

/// Checks a microdata request, opens its snapshot and audits it (with `job` when it is
/// prepared in the background).
pub async fn prepare_microdata(
    state: &AppState,
    who: &Principal,
    format: &str,
    q: &ExportQuery,
    common: &Common,
    job: Option<uuid::Uuid>,
) -> Result<Prepared, ApiError> {
    if !["csv", "xlsx"].contains(&format) {
        return Err(ApiError::NotFound("microdata comes as csv or xlsx".into()));
    }
    if who.role == crate::auth::Role::UnitManager {
        return Err(ApiError::Forbidden(MANAGERS.into()));
    }
    let (p, tree) = parsed(state, who, q, common).await?;
    let filter_dim = p.filters.dimension().0;
    let column = match q.breakdown.as_deref() {
        None => filter_dim.unwrap_or(Dim::RespondentType),
        Some("respondent_type") => Dim::RespondentType,
        Some("channel") => Dim::Channel,
        Some("service") => Dim::Service,
        Some(_) => {
            let mut fields = crate::error::FieldErrors::new();
            add(&mut fields, "breakdown", "must be respondent_type, channel or service");
            return Err(ApiError::validation(fields));
        }
    };
    if filter_dim.is_some_and(|d| d != column) {
        let mut fields = crate::error::FieldErrors::new();
        add(&mut fields, "breakdown", "with a filter, the file breaks down by the filtered dimension only");
        return Err(ApiError::validation(fields));
    }
    let request = microdata::Request {
        form_id: p.form.form.id.clone(),
        within: p.unit.id,
        period: p.period,
        filters: p.filters.clone(),
        column,
        k: p.k,
        comments: q.comments.as_deref() == Some("true"),
    };
    let permit = state.exports.acquire(who.user_id).await?;
    let snapshot = Snapshot::open(state.figures_db().await, &state.publisher, &tree, &request).await?;
    let mut details = json!({"export": "microdata", "format": format, "within": p.unit.code, "period": p.period.label(),
        "filters": p.filters, "k": p.k, "comments": request.comments, "rows": snapshot.plan.rows,
        "groups": snapshot.plan.groups.len()});
    if let Some(job) = job {
        details["job"] = json!(job);
    }
    audit::record(&state.db, Some((who.user_id, &who.email)), "export", Some(&p.unit.code), details).await?;
    Ok(Prepared {
        permit,
        snapshot,
        request,
        form: p.form.clone(),
        format: format.to_string(),
        file_name: format!("{}.{format}", file_stem("microdata", &p)),
        unit_code: p.unit.code.clone(),
        period: p.period.label(),
    })
}

/// Microdata as a streamed file, for the API and the console alike.
pub async fn microdata_file(
    state: std::sync::Arc<AppState>,
    who: &Principal,
    format: &str,
    q: &ExportQuery,
    common: &Common,
) -> Result<HttpResponse, ApiError> {
    let prepared = prepare_microdata(&state, who, format, q, common, None).await?;
    let (content_type, file_name) = (content_type(&prepared.format), prepared.file_name.clone());
    // One page (1,000 rows, a few MB with comments) waits for the client at most: a slow
    // client holds the export, not the server's memory.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    // On the main runtime, not the HTTP worker's: a worker stopped at shutdown drops its
    // tasks outside any runtime, and the snapshot's pooled connection cannot be returned
    // there (sqlx panics). Here a stopped worker only closes the channel.
    state.background.spawn(async move {
        // An error after the headers ends the body with an error: the client sees a
        // truncated transfer, never a clean end of a partial file.
        if let Err(e) = prepared.write(&tx, &AtomicU64::new(0)).await {
            tracing::error!("microdata export stopped: {e}");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header(attachment(&file_name))
        .streaming(body(rx)))
}

/// Writes the CSV page by page; the channel's bound keeps memory flat when the client is slow.
pub async fn stream_csv(
    snapshot: Snapshot,
    request: &microdata::Request,
    form: &crate::index::catalog::Versioned,
    tx: &Sender,
    progress: &AtomicU64,
) -> anyhow::Result<u64> {
    let mut head = BOM.as_bytes().to_vec();
    head.extend(csv_lines(&[microdata::header(form, request.comments)
        .into_iter()
        .map(crate::export::Cell::Text)
        .collect()]));
    tx.send(Ok(Bytes::from(head))).await?;
    let mut pages = snapshot.pages(request, form).await?;
    let mut rows = 0;
    while let Some(page) = pages.next().await? {
        rows += page.len() as u64;
        tx.send(Ok(Bytes::from(csv_lines(&page)))).await?;
        progress.store(rows, Ordering::Relaxed);
    }
    drop(pages);
    snapshot.close().await?;
    Ok(rows)
}

/// Writes the workbook in constant-memory mode on a blocking thread (a sheet per million
/// rows), then streams the finished file.
pub async fn stream_xlsx(
    snapshot: Snapshot,
    request: &microdata::Request,
    form: &crate::index::catalog::Versioned,
    tx: &Sender,
    progress: &AtomicU64,
) -> anyhow::Result<u64> {
    use std::io::Read;
    let headings = microdata::headings(form, request.comments);
    let questions = form.form.clone();
    let (groups, k, period) = (snapshot.plan.groups.clone(), request.k, request.period);
    // The async side waits for room (never blocking a runtime thread); the writer's thread
    // blocks for rows.
    let (rows_tx, mut rows_rx) = tokio::sync::mpsc::channel::<Vec<Vec<crate::export::Cell>>>(4);
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        const ROWS_PER_SHEET: u32 = 1_000_000;
        let mut book = rust_xlsxwriter::Workbook::new();
        let number = rust_xlsxwriter::Format::new();
        let mut row_in_sheet = ROWS_PER_SHEET;
        let mut sheets = 0;
        while let Some(page) = rows_rx.blocking_recv() {
            for row in page {
                if row_in_sheet >= ROWS_PER_SHEET {
                    sheets += 1;
                    let sheet = book.add_worksheet_with_constant_memory()?;
                    sheet.set_name(format!("Phiếu {sheets}"))?;
                    crate::export::xlsx_headings(sheet, &headings, &[])?;
                    row_in_sheet = crate::export::FIRST_DATA_ROW;
                }
                let sheet = book.worksheet_from_index(sheets - 1)?;
                crate::export::xlsx_row(sheet, row_in_sheet, &microdata::in_words(row), &number)?;
                row_in_sheet += 1;
            }
        }
        if sheets == 0 {
            let sheet = book.add_worksheet().set_name("Phiếu 1")?;
            crate::export::xlsx_headings(sheet, &headings, &[])?;
        }
        crate::export::xlsx_questions(&mut book, &questions)?;
        microdata::xlsx_info(&mut book, &groups, k, &period)?;
        let mut file = tempfile::tempfile()?;
        book.save_to_writer(&mut file)?;
        Ok(file)
    });
    let mut pages = snapshot.pages(request, form).await?;
    let mut rows = 0;
    while let Some(page) = pages.next().await? {
        rows += page.len() as u64;
        if rows_tx.send(page).await.is_err() {
            break;
        }
        progress.store(rows, Ordering::Relaxed);
    }
    drop(rows_tx);
    drop(pages);
    // The rows are read: the snapshot's connection goes back to the pool before the file is sent.
    snapshot.close().await?;
    let mut file = writer.await??;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        tx.send(Ok(Bytes::copy_from_slice(&buffer[..n]))).await?;
    }
    Ok(rows)
}
