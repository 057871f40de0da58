//! Building and running the application: what `sipas serve` runs and what the integration
//! tests boot unchanged on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{self, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use migrations::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::error::{form_error, json_error, path_error, query_error};
use crate::forms::{FormRegistry, loader};
use crate::index::catalog::Catalog;
use crate::reach::limits::Limits;
use crate::{routes, store, telemetry};

/// Largest request body accepted anywhere (413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub forms: FormRegistry,
    /// Every stored form version with its tally layout.
    pub catalog: Catalog,
    pub settings: Arc<Settings>,
    pub limits: Limits,
    /// Signs the time a survey page was served (minimum fill time).
    pub form_secret: Arc<Vec<u8>>,
    /// The publication gate's decided lattices.
    pub publisher: Arc<crate::publish::Publisher>,
    /// Microdata exports under way: each holds a pooled connection for its snapshot while it
    /// streams, and needs another for its audit entry, so at most half the pool may do so
    /// (and a few per user); more are told to come back instead of starving the pool.
    pub exports: Arc<crate::export::permits::ExportPermits>,
    /// The runtime that prepared the state (the main one, not an HTTP worker's): work a
    /// request must not wait for, or be timed by, runs there.
    pub background: tokio::runtime::Handle,
    /// The unit tree, cached until its generation moves.
    pub units: Arc<store::units::UnitCache>,
    /// Survey pages rendered and compressed once (see `web::page_cache`).
    pub pages: Arc<crate::web::page_cache::PageCache>,
    /// The queue to the writers that store submissions (group commit).
    pub writer: store::group_commit::Writer,
    /// `/readyz`'s own connection (see `store::connect_probe`).
    pub probe: DatabaseConnection,
    /// Where reads of figures go: a streaming replica when configured and caught up.
    pub reads: store::replica::Reads,
}

impl AppState {
    /// The connection for reading figures: first every submission this instance acknowledged
    /// is folded, then the replica is chosen if it holds everything the primary has.
    pub async fn figures_db(&self) -> &DatabaseConnection {
        self.writer.settled().await;
        self.reads.pick(&self.db).await
    }
}

/// Connects, runs the migrations, loads and checks the forms and records them.
pub async fn prepare(settings: &Settings) -> anyhow::Result<AppState> {
    settings.check()?;
    if let Some(warning) = settings.cookie_warning() {
        tracing::warn!("{warning}");
    }
    let forms = FormRegistry::new(loader::load_dir(&settings.forms_dir)?);
    let db = store::connect(settings.database_url.expose(), settings.max_db_connections).await?;
    Migrator::up(&db, None).await?;
    store::forms::sync(&db, &forms).await?;
    let catalog = Catalog::load(&db).await?;
    let form_secret = Arc::new(store::secrets::get_or_create(&db, "form_token").await?);
    // Responses a stopped instance stored but did not fold yet: counted before anything
    // here reads a figure.
    store::fold::drain(&db, &catalog).await?;
    let writer = store::group_commit::Writer::start(
        &db,
        &catalog,
        settings.ingest_writers,
        settings.ingest_queue,
        &tokio::runtime::Handle::current(),
    );
    store::upkeep::spawn(db.clone(), &tokio::runtime::Handle::current());
    let reads = store::replica::Reads::connect(
        settings.read_database_url.as_ref().map(|u| u.expose()),
        settings.max_db_connections,
        &db,
        &tokio::runtime::Handle::current(),
    )
    .await?;
    Ok(AppState {
        reads,
        db,
        forms,
        catalog,
        limits: Limits::new(settings, form_secret.clone()),
        settings: Arc::new(settings.clone()),
        form_secret,
        publisher: Arc::default(),
        background: tokio::runtime::Handle::current(),
        probe: store::connect_probe(settings.database_url.expose()).await?,
        writer,
        units: Arc::default(),
        pages: Arc::default(),
        exports: crate::export::permits::ExportPermits::new((settings.max_db_connections / 2) as usize),
    })
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let state = prepare(&settings).await?;
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let server = run(listener, state.clone())?;
        crate::email::spawn_worker(state.clone());
        spawn_housekeeping(state.clone());
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests (graceful shutdown)
    /// and folds what this instance acknowledged into the tallies (1.5 s at most), so the
    /// figures need not wait for another instance to find the rows it left.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.state.writer.settled().await;
        served
    }
}

/// Every ten minutes: forget idle rate-limit keys, expired receipt codes and sessions, and
/// export files kept a day.
fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            state.limits.sweep();
            if let Err(e) = store::throttles::sweep(&state.db, chrono::Utc::now().timestamp_millis()).await {
                tracing::warn!("purging full throttle buckets failed: {e}");
            }
            let today = crate::vietnam_today();
            if let Err(e) = crate::reach::codes::purge_expired(&state.db, today).await {
                tracing::warn!("purging expired codes failed: {e}");
            }
            if let Err(e) = store::sessions::delete_expired(&state.db, chrono::Utc::now()).await {
                tracing::warn!("purging expired sessions failed: {e}");
            }
            let now = chrono::Utc::now();
            use crate::export::jobs::{KEEP, STALE};
            if let Err(e) = store::export_jobs::sweep(&state.db, now - STALE, now - KEEP, now).await {
                tracing::warn!("purging old export files failed: {e}");
            }
        }
    });
}

/// Headers every answer carries unless its handler sets its own. Nothing is cached unless
/// a handler says it may be (the survey's script, QR codes, the icon): admin answers,
/// exports, the audit log and the sign-in answer that carries a token all hold personal or
/// unpublished data. HSTS only when the cookies are `Secure`, i.e. the service is meant to
/// be reached over HTTPS (on a plain-http office LAN it would lock browsers out).
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cache-Control", "no-store"))
        .add(("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"));
    if https { headers.add(("Strict-Transport-Security", "max-age=31536000")) } else { headers }
}

/// Cuts off a request body that has not fully arrived within `request_timeout_seconds` of
/// the request's start (a body trickling in a byte a second): the body ends with a timed-out
/// error, which the extractors answer with 408, and the worker is free again. Slow heads
/// are cut by the server's own client timeout.
async fn deadline(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;
    let seconds = req.app_data::<web::Data<AppState>>().map_or(30, |s| s.settings.request_timeout_seconds);
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let payload = req.take_payload();
    let bounded = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match tokio::time::timeout_at(until, payload.next()).await {
            Ok(Some(item)) => Some((item, Some(payload))),
            Ok(None) => None,
            Err(_) => {
                let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow");
                Some((Err(actix_web::error::PayloadError::Io(late)), None))
            }
        }
    });
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, actix_web::error::PayloadError>>>,
    > = Box::pin(bounded);
    req.set_payload(actix_web::dev::Payload::from(boxed));
    next.call(req).await
}

fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
            .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES).error_handler(form_error))
            .wrap(middleware::Compress::default())
            .wrap(from_fn(crate::web::pages_not_json))
            .wrap(security_headers(data.settings.cookie_secure))
            .wrap(from_fn(deadline))
            .wrap(from_fn(telemetry::access_log))
            .configure(routes::configure)
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
