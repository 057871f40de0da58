//! Settings: compiled defaults < optional TOML file (`sipas.toml`, or `--config`) <
//! environment (`SIPAS_DATABASE_URL`, `SIPAS_PORT`, ...) < command-line flags.
//! With no file and no environment the service runs on an embedded SQLite file.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The smallest `suppression_k` the service runs with.
pub const MIN_SUPPRESSION_K: u64 = 5;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// `sqlite://sipas.db` (created when missing) or any `postgres://` URL.
    pub database_url: Secret,
    pub max_db_connections: u32,
    /// A PostgreSQL streaming replica for console pages, indices, rankings, trends and
    /// exports (`postgres://`); none by default. Writes always go to `database_url`.
    pub read_database_url: Option<Secret>,
    /// Tasks that store submissions (group commit); 0 means one on SQLite, two on PostgreSQL.
    pub ingest_writers: usize,
    /// Submissions that may wait for a writer; one more is answered 503 + Retry-After.
    pub ingest_queue: usize,
    /// Folder of form files; when it does not exist the forms built into the binary are used.
    pub forms_dir: PathBuf,
    /// Where citizens reach the service, for links and QR codes.
    pub public_base_url: String,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    /// Send the session cookie only over HTTPS. Turn off only for plain-HTTP local use.
    pub cookie_secure: bool,
    /// Figures with fewer responses than this are withheld everywhere (at least 5).
    pub suppression_k: u64,
    /// SMTP server for digests, alerts and password resets; no email is sent without it.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or `none` (local only).
    pub smtp_tls: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// The From header of every message.
    pub mail_from: String,
    /// How often the mail worker looks for due messages, in milliseconds.
    pub mail_poll_ms: u64,
    /// First retry delay in seconds; it doubles with each failed attempt (at most an hour).
    pub mail_retry_base_seconds: i64,
    /// Submissions per minute from one client address (offices share addresses: be generous).
    pub submit_per_minute: u32,
    /// Submissions per minute from one kiosk device.
    pub kiosk_per_minute: u32,
    /// Submissions carrying a receipt code per hour from one client (guessing is hopeless).
    pub code_attempts_per_hour: u32,
    /// Sign-in attempts per minute from one client address.
    pub sign_ins_per_minute: u32,
    /// Seconds a request may take to arrive and be answered (head included): a body sent a
    /// byte a second is cut off with 408 instead of holding a worker.
    pub request_timeout_seconds: u64,
    /// Addresses of reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<String>,
    /// A survey page sent back sooner than this after it was served is flagged.
    pub min_fill_seconds: i64,
    /// Days a receipt code stays valid.
    pub code_validity_days: i64,
    /// A unit's SIPAS for the current calendar month below this (with at least k responses) alerts
    /// its managers, at most once a week.
    pub alert_threshold: f64,
    /// `RUST_LOG`-style filter.
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "127.0.0.1".into(),
            port: 8080,
            database_url: Secret("sqlite://sipas.db".into()),
            max_db_connections: 10,
            read_database_url: None,
            ingest_writers: 0,
            ingest_queue: 2048,
            forms_dir: PathBuf::from("survey-forms"),
            public_base_url: "http://localhost:8080".into(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            cookie_secure: true,
            suppression_k: 10,
            smtp_host: None,
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            mail_from: "SIPAS <no-reply@localhost>".into(),
            mail_poll_ms: 5000,
            mail_retry_base_seconds: 30,
            alert_threshold: 70.0,
            submit_per_minute: 30,
            kiosk_per_minute: 6,
            code_attempts_per_hour: 60,
            sign_ins_per_minute: 10,
            request_timeout_seconds: 30,
            trusted_proxies: Vec::new(),
            min_fill_seconds: 8,
            code_validity_days: 30,
            log: "info".into(),
        }
    }
}

impl Settings {
    /// Reads the layers below the command line. An explicitly named file must exist;
    /// the default `sipas.toml` is optional.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "configuration file {} not found", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("sipas.toml")),
        }
        let settings: Settings = figment.merge(Env::prefixed("SIPAS_").ignore(&["config"])).extract()?;
        settings.check()?;
        Ok(settings)
    }

    /// A warning for the log when browsers will drop the console's cookies: the public
    /// address is plain http while cookies are marked Secure (signing in then works only from
    /// this machine, as `localhost`).
    pub fn cookie_warning(&self) -> Option<String> {
        (self.cookie_secure && self.public_base_url.starts_with("http://")).then(|| {
            format!(
                "public_base_url is {} (plain http) but cookie_secure is true: browsers drop Secure cookies over \
                 http, so signing in to the console fails from other machines. Serve it over HTTPS, or set \
                 SIPAS_COOKIE_SECURE=false for plain-HTTP use on a local network.",
                self.public_base_url
            )
        })
    }

    /// Refuses settings the service must not run with, every problem at once, each naming its
    /// key and environment variable. `load` and `startup::prepare` (which every command that
    /// touches the database goes through) call it, so no running service holds such settings.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut problems: Vec<(&str, String)> = Vec::new();
        let mut at_least = |key: &'static str, value: i128, floor: i128, why: &str| {
            if value < floor {
                problems.push((key, format!("is {value}; it must be at least {floor}{why}")));
            }
        };
        at_least(
            "suppression_k",
            self.suppression_k.into(),
            MIN_SUPPRESSION_K.into(),
            ": fewer responses than that would single people out",
        );
        at_least("max_db_connections", self.max_db_connections.into(), 1, "");
        at_least("ingest_queue", i128::try_from(self.ingest_queue).unwrap_or(i128::MAX), 1, "");
        at_least("session_idle_minutes", self.session_idle_minutes.into(), 1, "");
        at_least("session_absolute_hours", self.session_absolute_hours.into(), 1, "");
        at_least("mail_poll_ms", self.mail_poll_ms.into(), 1, "");
        at_least("mail_retry_base_seconds", self.mail_retry_base_seconds.into(), 1, "");
        at_least("code_validity_days", self.code_validity_days.into(), 1, "");
        // A limit of 0 would be read as 1 by the limiter: say so rather than guess.
        at_least("submit_per_minute", self.submit_per_minute.into(), 1, "");
        at_least("kiosk_per_minute", self.kiosk_per_minute.into(), 1, "");
        at_least("code_attempts_per_hour", self.code_attempts_per_hour.into(), 1, "");
        at_least("sign_ins_per_minute", self.sign_ins_per_minute.into(), 1, "");
        at_least("request_timeout_seconds", self.request_timeout_seconds.into(), 1, "");
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.push(("database_url", "must start with sqlite: or postgres://".into()));
        }
        if let Some(read) = &self.read_database_url {
            let postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
            if !(postgres(read.expose()) && postgres(url)) {
                problems
                    .push(("read_database_url", "must be a postgres:// replica of a postgres:// database_url".into()));
            }
        }
        if !["starttls", "tls", "none"].contains(&self.smtp_tls.as_str()) {
            problems.push(("smtp_tls", format!("is {:?}; it must be starttls, tls or none", self.smtp_tls)));
        }
        if !(0.0..=100.0).contains(&self.alert_threshold) {
            problems.push(("alert_threshold", format!("is {}; it must be from 0 to 100", self.alert_threshold)));
        }
        let lines: Vec<String> =
            problems.iter().map(|(key, problem)| format!("{key} (SIPAS_{}) {problem}", key.to_uppercase())).collect();
        anyhow::ensure!(lines.is_empty(), "invalid settings:\n  {}", lines.join("\n  "));
        Ok(())
    }
}

/// A string that never prints: database URLs carry passwords.
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
