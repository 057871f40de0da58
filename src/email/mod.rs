//! Email. Messages go into a durable outbox table first; a worker hands due ones to SMTP
//! with lettre and retries failures with a doubling delay, so an SMTP outage or a restart
//! loses nothing. Headers are built with lettre's typed builders (no CR/LF injection).
//! Without `smtp_host` nothing is sent: messages stay queued and the log says so.

pub mod reports;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::config::Settings;
use crate::entities::outbox;
use crate::startup::AppState;

/// After this many failed attempts a message is given up (and stays visible in the table).
const MAX_ATTEMPTS: i32 = 12;

pub struct Mail {
    /// `password_reset`, `digest`, `alert`, `invitation`...
    pub kind: &'static str,
    /// Enqueueing the same key twice queues one message.
    pub dedupe_key: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Queues a message; false when one with the same dedupe key was queued before.
pub async fn enqueue(db: &impl ConnectionTrait, mail: Mail) -> Result<bool, DbErr> {
    let now = Utc::now();
    // A header value never carries line breaks.
    let subject: String = mail.subject.replace(['\r', '\n'], " ").chars().take(300).collect();
    let row = outbox::ActiveModel {
        kind: Set(mail.kind.to_string()),
        dedupe_key: Set(mail.dedupe_key),
        recipient: Set(mail.to),
        subject: Set(subject),
        body_text: Set(mail.text),
        body_html: Set(mail.html),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        ..Default::default()
    };
    let result = outbox::Entity::insert(row)
        .on_conflict(OnConflict::column(outbox::Column::DedupeKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(result > 0)
}

pub fn transport(settings: &Settings) -> Option<anyhow::Result<AsyncSmtpTransport<Tokio1Executor>>> {
    let host = settings.smtp_host.as_deref()?;
    let built = (|| {
        let mut builder = match settings.smtp_tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
        };
        builder = builder.port(settings.smtp_port).timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(builder.build())
    })();
    Some(built)
}

fn message(settings: &Settings, row: &outbox::Model) -> anyhow::Result<Message> {
    let from: Mailbox = settings.mail_from.parse()?;
    let to: Mailbox = row.recipient.parse()?;
    let builder = Message::builder().from(from).to(to).subject(row.subject.clone());
    let message = match &row.body_html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(row.body_text.clone(), html.clone()))?,
        None => builder.header(ContentType::TEXT_PLAIN).body(row.body_text.clone())?,
    };
    Ok(message)
}

/// Sends the messages that are due. Returns how many were delivered.
pub async fn deliver_due(state: &AppState, smtp: &AsyncSmtpTransport<Tokio1Executor>) -> Result<usize, DbErr> {
    let now = Utc::now();
    let due = outbox::Entity::find()
        .filter(outbox::Column::SentAt.is_null())
        .filter(outbox::Column::FailedAt.is_null())
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .order_by_asc(outbox::Column::Id)
        .limit(20)
        .all(&state.db)
        .await?;
    let mut delivered = 0;
    for row in due {
        // Claim the message, so that a second worker (another process) skips it.
        let claimed = outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, sea_orm::sea_query::Expr::value(now + TimeDelta::minutes(5)))
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::NextAttemptAt.eq(row.next_attempt_at))
            .exec(&state.db)
            .await?;
        if claimed.rows_affected == 0 {
            continue;
        }
        let outcome = match message(&state.settings, &row) {
            Ok(m) => smtp.send(m).await.map(|_| ()).map_err(|e| (e.to_string(), e.is_permanent())),
            Err(e) => Err((e.to_string(), true)),
        };
        let mut update = outbox::ActiveModel { id: Set(row.id), ..Default::default() };
        match outcome {
            Ok(()) => {
                delivered += 1;
                update.sent_at = Set(Some(Utc::now()));
                // Store less: the text is not needed once delivered; invitation addresses go too.
                update.body_text = Set(String::new());
                update.body_html = Set(None);
                if row.kind == "invitation" {
                    update.recipient = Set(String::new());
                }
                tracing::info!(id = row.id, kind = %row.kind, "mail delivered");
            }
            Err((error, permanent)) => {
                let attempts = row.attempts + 1;
                let delay = (state.settings.mail_retry_base_seconds << attempts.min(12)).min(3600);
                update.attempts = Set(attempts);
                update.last_error = Set(Some(error.chars().take(500).collect()));
                update.next_attempt_at = Set(Utc::now() + TimeDelta::seconds(delay));
                if permanent || attempts >= MAX_ATTEMPTS {
                    update.failed_at = Set(Some(Utc::now()));
                    // Failed for good: a reset link or invitation code must not stay in clear.
                    update.body_text = Set(String::new());
                    update.body_html = Set(None);
                }
                tracing::warn!(id = row.id, kind = %row.kind, attempts, "mail not delivered: {error}");
            }
        }
        outbox::Entity::update(update).exec(&state.db).await?;
    }
    Ok(delivered)
}

/// The mail worker: every `mail_poll_ms`, queues the digests and alerts that are due and
/// delivers what is waiting. Runs until the process stops.
pub fn spawn_worker(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let smtp = match transport(&state.settings) {
        None => {
            let waiting = "messages stay in the outbox until smtp_host is set";
            tracing::warn!("email is off: smtp_host is not configured; {waiting}");
            return None;
        }
        Some(Err(e)) => {
            tracing::error!("email is off: the SMTP settings are unusable: {e}");
            return None;
        }
        Some(Ok(t)) => t,
    };
    tracing::info!(
        host = state.settings.smtp_host.as_deref().unwrap_or(""),
        port = state.settings.smtp_port,
        tls = %state.settings.smtp_tls,
        "email is on"
    );
    Some(tokio::spawn(async move {
        let poll = Duration::from_millis(state.settings.mail_poll_ms);
        let mut last_scheduled = None;
        loop {
            let now = Utc::now();
            if let Err(e) = reports::schedule(&state, now, &mut last_scheduled).await {
                tracing::warn!("scheduling digests and alerts failed: {e}");
            }
            if let Err(e) = deliver_due(&state, &smtp).await {
                tracing::warn!("mail delivery round failed: {e}");
            }
            tokio::time::sleep(poll).await;
        }
    }))
}
