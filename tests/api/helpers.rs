//! `spawn_app()` and friends.

use std::path::PathBuf;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sipas::auth::{self, Role};
use sipas::config::{Secret, Settings};
use sipas::entities::{answer, response};
use sipas::forms::submission::ValidSubmission;
use sipas::forms::{Channel, RespondentType};
use sipas::startup::Application;
use sipas::store;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sipas-2017-small").join(name)
}

pub fn forms_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("survey-forms")
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb { url, _dir: Some(dir), pg: None }
            }
            Some(admin_url) => {
                let name = format!("sipas_test_{}", Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url).await.expect("connect to TEST_DATABASE_URL");
                admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
                admin.close().await.ok();
                let (base, query) = match admin_url.split_once('?') {
                    Some((b, q)) => (b.to_string(), format!("?{q}")),
                    None => (admin_url.clone(), String::new()),
                };
                let prefix = base.rsplit_once('/').map_or(base.as_str(), |(p, _)| p);
                let url = format!("{prefix}/{name}{query}");
                TestDb { url, _dir: None, pg: Some((admin_url, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Drop runs outside async context: use a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ =
                            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub db: DatabaseConnection,
    pub state: sipas::startup::AppState,
    pub client: reqwest::Client,
    /// Dropped with the app: removes the PostgreSQL database.
    _test_db: TestDb,
}

pub fn test_settings(db: &TestDb) -> Settings {
    Settings {
        port: 0,
        database_url: Secret::new(db.url.clone()),
        forms_dir: forms_dir(),
        max_db_connections: 5,
        // Tests submit far faster than people do; the limits have tests of their own.
        submit_per_minute: 1_000_000,
        code_attempts_per_hour: 1_000_000,
        sign_ins_per_minute: 1_000_000,
        min_fill_seconds: 0,
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::new().await, change).await
}

/// The app on a database the test made itself (kept, not dropped, afterwards).
pub async fn spawn_app_at(url: &str, change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb { url: url.to_string(), _dir: None, pg: None }, change).await
}

async fn spawn_app_on(test_db: TestDb, change: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&test_db);
    change(&mut settings);
    let app = Application::build(settings).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let db = state.db.clone();
    tokio::spawn(app.run_until_stopped());
    // Idle connections are dropped well before the server's keep-alive (actix: 5 s) ends
    // them: a request sent on a connection the server is closing fails with
    // IncompleteMessage, as a PostgreSQL run of the demo test once did.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client");
    TestApp { address, db, state, client, _test_db: test_db }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request")
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.patch(self.url(path)).bearer_auth(token).json(body).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// Posts a submission as the survey page's script does: with the page's signed token,
    /// minted a minute ago (a post without one, or too soon, is stored but flagged).
    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        let mut body = body.clone();
        if body.get("form_token").is_none() {
            let minted = chrono::Utc::now().timestamp_millis() - 60_000;
            body["form_token"] = json!(sipas::reach::limits::form_token(&self.state.form_secret, minted));
        }
        self.post_json("/api/v1/responses", &body).await
    }

    /// The units of the reference data set (QNM and below).
    pub async fn seed_reference_units(&self) {
        let text = std::fs::read_to_string(fixture("units.csv")).expect("units.csv");
        let rows = sipas::units::import::parse_csv(&text).expect("valid csv");
        store::units::import(&self.db, rows).await.expect("db").expect("import ok");
    }

    /// The reference units and its 600 responses, imported as paper forms with their dates.
    pub async fn import_reference(&self) {
        self.seed_reference_units().await;
        let text = std::fs::read_to_string(fixture("responses.jsonl")).expect("responses.jsonl");
        let report = sipas::imports::responses_jsonl(&self.state, &text).await.expect("db").expect("valid file");
        assert_eq!(report.created, 600);
    }

    pub async fn response_count(&self) -> u64 {
        response::Entity::find().count(&self.db).await.expect("count")
    }

    pub async fn answer_count(&self) -> u64 {
        answer::Entity::find().count(&self.db).await.expect("count")
    }

    /// Creates an account directly in the store and signs it in over HTTP.
    pub async fn login_as(&self, role: Role, unit: Option<&str>) -> String {
        let unit_id = match unit {
            Some(code) => Some(store::units::by_code(&self.db, code).await.expect("db").expect("unit").id),
            None => None,
        };
        let email = format!("{}-{}@example.gov.vn", role.as_str(), Uuid::new_v4().simple());
        store::users::insert(&self.db, &email, auth::hash_password(PASSWORD).expect("hash"), role, unit_id)
            .await
            .expect("user");
        let res = self.post_json("/api/v1/auth/login", &json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }
}

/// A complete, valid sipas-2017 submission for `unit`, every item answered 4.
pub fn valid_submission(unit: &str) -> Value {
    let codes = [
        "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6", "D1", "D2", "D3",
        "E1", "E2", "E3", "E4",
    ];
    let answers: serde_json::Map<String, Value> = codes.iter().map(|c| (c.to_string(), json!(4))).collect();
    json!({
        "submission_id": Uuid::new_v4(),
        "unit": unit,
        "form": "sipas-2017",
        "respondent_type": "citizen",
        "channel": "online",
        "answers": answers,
    })
}

/// Asserts the common error shape and returns the body.
pub async fn error_body(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let body: Value = res.json().await.expect("json error body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["fields"].is_object(), "{body}");
    body
}

/// A client that keeps cookies, signed in to the console through its login form.
pub async fn console_client(app: &TestApp, role: Role, unit: Option<&str>) -> (reqwest::Client, String) {
    let unit_id = match unit {
        Some(code) => Some(store::units::by_code(&app.db, code).await.expect("db").expect("unit").id),
        None => None,
    };
    let email = format!("{}-{}@example.gov.vn", role.as_str(), Uuid::new_v4().simple());
    store::users::insert(&app.db, &email, auth::hash_password(PASSWORD).expect("hash"), role, unit_id)
        .await
        .expect("user");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client");
    let page = client.get(app.url("/console/login")).send().await.expect("login page").text().await.expect("text");
    let token = between(&page, "name=\"form\" value=\"", "\"").expect("form token");
    let res = client
        .post(app.url("/console/login"))
        .form(&[("form", token.as_str()), ("email", email.as_str()), ("password", PASSWORD), ("next", "/console")])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303, "signed in");
    (client, email)
}

/// The text between two markers.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

/// The CSRF token of a console page.
pub fn csrf_of(page: &str) -> String {
    between(page, "name=\"csrf\" value=\"", "\"").expect("csrf field")
}

/// The Python that has the test tools (aiosmtpd, openapi-spec-validator): scripts/test.sh
/// installs them into a virtual environment and names its interpreter in `SIPAS_PYTHON`.
pub fn python() -> String {
    std::env::var("SIPAS_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into())
}

/// A real SMTP server (Python's aiosmtpd) on 127.0.0.1 that files every message in a Maildir.
pub struct SmtpServer {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let mut server = SmtpServer { child: None, port: free_port(), dir: tempfile::tempdir().expect("dir") };
        server.run();
        server
    }

    /// A server for a port nothing listens on yet (see `run`).
    pub fn stopped() -> SmtpServer {
        SmtpServer { child: None, port: free_port(), dir: tempfile::tempdir().expect("dir") }
    }

    pub fn run(&mut self) {
        let child = std::process::Command::new(python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(self.dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python -m aiosmtpd: run scripts/test.sh, or set SIPAS_PYTHON to a Python with aiosmtpd");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("aiosmtpd did not start on port {}", self.port);
    }

    pub fn maildir(&self) -> std::path::PathBuf {
        self.dir.path().join("mail").join("new")
    }

    /// Messages received so far: (to, subject, decoded text body).
    pub fn messages(&self) -> Vec<(String, String, String)> {
        let dir = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
        entries
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .filter_map(|raw| {
                let mail = mailparse::parse_mail(&raw).ok()?;
                let header = |name: &str| {
                    mail.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).map(|h| h.get_value())
                };
                let body =
                    if mail.subparts.is_empty() { mail.get_body().ok()? } else { mail.subparts[0].get_body().ok()? };
                Some((header("To")?, header("Subject")?, body))
            })
            .collect()
    }

    /// Waits up to `seconds` for at least `n` messages.
    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<(String, String, String)> {
        for _ in 0..seconds * 10 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Settings that send mail to `smtp` quickly.
pub fn with_smtp(s: &mut Settings, smtp: &SmtpServer) {
    s.smtp_host = Some("127.0.0.1".into());
    s.smtp_port = smtp.port;
    s.smtp_tls = "none".into();
    s.mail_poll_ms = 100;
    s.mail_retry_base_seconds = 1;
    s.mail_from = "SIPAS Quảng Nam <sipas@quangnam.gov.vn>".into();
    s.public_base_url = "https://khaosat.example.gov.vn".into();
}

/// Every path of the route table (`src/routes/mod.rs`, read from its source) with the
/// methods it declares for its `Allow` header.
pub fn route_table() -> Vec<(String, Vec<String>)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes/mod.rs")).expect("routes");
    source
        .split("resource(\"")
        .skip(1)
        .filter_map(|piece| {
            let mut parts = piece.split('"');
            let path = parts.next()?.to_string();
            let methods = parts.nth(1)?.split(", ").map(String::from).collect();
            Some((path, methods))
        })
        .collect()
}

/// A unit's id by its code.
pub async fn unit_id(app: &TestApp, code: &str) -> i32 {
    store::units::by_code(&app.db, code).await.expect("db").expect("unit").id
}

/// A valid submission as a writer receives it (six items answered 4, 30 Nov 2026), for
/// storing directly with `store::responses::insert_group`.
pub fn stored_submission(unit_id: i32) -> ValidSubmission {
    ValidSubmission {
        submission_id: Uuid::new_v4(),
        unit_id,
        form_id: "sipas-2017".into(),
        form_version: 1,
        respondent_type: RespondentType::Citizen,
        channel: Channel::Online,
        survey_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        service: None,
        demographics: Default::default(),
        comment: None,
        answers: ["A1", "A2", "B1", "C1", "D1", "E1"].iter().map(|c| (c.to_string(), 4)).collect(),
        body_hash: "x".repeat(64),
        code_hash: None,
        code_units: Vec::new(),
        flagged: false,
    }
}
