//! Mail through a real SMTP server (Python's aiosmtpd on 127.0.0.1): password resets,
//! digests and alerts, the retry path while the server is down, and nothing sent without
//! SMTP settings.

use sea_orm::EntityTrait;
use serde_json::json;
use sipas::auth::Role;
use sipas::entities::outbox;

use crate::helpers::{SmtpServer, between, spawn_app, spawn_app_with, with_smtp};

#[tokio::test]
async fn a_password_reset_link_arrives_and_works_once() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| with_smtp(s, &smtp)).await;
    app.login_as(Role::Analyst, None).await;
    let email = sipas::store::users::all(&app.db).await.unwrap()[0].email.clone();
    let res = app.post_json("/api/v1/auth/password-reset", &json!({"email": email})).await;
    assert_eq!(res.status(), 202);
    // An unknown address gets the same answer and no mail.
    let res = app.post_json("/api/v1/auth/password-reset", &json!({"email": "nobody@example.gov.vn"})).await;
    assert_eq!(res.status(), 202);
    let mails = smtp.wait_for(1, 15).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (to, subject, body) = &mails[0];
    assert_eq!(to, &email);
    assert!(subject.contains("Đặt lại mật khẩu"), "{subject}");
    let token = between(body, "https://khaosat.example.gov.vn/console/reset/", "\n").expect("link").trim().to_string();
    // Stored only as a hash.
    let stored = sipas::entities::password_reset::Entity::find().all(&app.db).await.unwrap();
    assert!(stored.iter().all(|r| r.token_hash != token));

    let res = app
        .post_json("/api/v1/auth/password-reset/confirm", &json!({"token": token, "password": "a brand new password"}))
        .await;
    assert_eq!(res.status(), 204);
    let res = app.post_json("/api/v1/auth/login", &json!({"email": email, "password": "a brand new password"})).await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json("/api/v1/auth/password-reset/confirm", &json!({"token": token, "password": "yet another password"}))
        .await;
    assert_eq!(res.status(), 422, "one use only");
    // Delivered mail keeps no body in the outbox.
    let sent = outbox::Entity::find().all(&app.db).await.unwrap();
    assert!(sent.iter().all(|m| m.sent_at.is_some() && m.body_text.is_empty()));
}

#[tokio::test]
async fn digests_and_alerts_reach_unit_managers() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| {
        with_smtp(s, &smtp);
        s.alert_threshold = 99.0;
    })
    .await;
    app.seed_reference_units().await;
    // 30 responses at An My over the last days: SIPAS well below 99.
    for i in 0..30 {
        let mut body = crate::helpers::valid_submission("QNM.TK.AM");
        body["answers"]["A1"] = json!(if i % 2 == 0 { 2 } else { 5 });
        assert_eq!(app.submit(&body).await.status(), 201);
    }
    app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    app.login_as(Role::UnitManager, Some("QNM.HA")).await;
    let today = sipas::vietnam_today();
    assert_eq!(sipas::email::reports::enqueue_digests(&app.state, today).await.unwrap(), 2);
    assert_eq!(sipas::email::reports::enqueue_digests(&app.state, today).await.unwrap(), 0, "once a week");
    assert_eq!(
        sipas::email::reports::enqueue_alerts(&app.state, today).await.unwrap(),
        1,
        "only the unit under the threshold"
    );
    assert_eq!(sipas::email::reports::enqueue_alerts(&app.state, today).await.unwrap(), 0);
    let mails = smtp.wait_for(3, 15).await;
    assert_eq!(mails.len(), 3);
    let digest_am = mails.iter().find(|m| m.1.contains("Bản tin tuần") && m.1.contains("An Mỹ")).expect("An My digest");
    assert!(digest_am.2.contains("SIPAS") && digest_am.2.contains("30 phiếu"), "{}", digest_am.2);
    assert!(digest_am.2.contains("https://khaosat.example.gov.vn/console/units/QNM.TK.AM"));
    let digest_ha = mails.iter().find(|m| m.1.contains("Hội An")).expect("Hoi An digest");
    assert!(digest_ha.2.contains("Chưa đủ 10 phiếu"), "no figure under k: {}", digest_ha.2);
    let alert = mails.iter().find(|m| m.1.contains("Cảnh báo")).expect("alert");
    assert!(alert.1.contains("An Mỹ") && alert.2.contains("dưới ngưỡng 99.0"));
    assert!(!alert.0.is_empty());
}

#[tokio::test]
async fn mail_waits_and_retries_while_the_smtp_server_is_down() {
    let mut smtp = SmtpServer::stopped();
    let app = spawn_app_with(|s| with_smtp(s, &smtp)).await;
    app.login_as(Role::Admin, None).await;
    let email = sipas::store::users::all(&app.db).await.unwrap()[0].email.clone();
    assert_eq!(app.post_json("/api/v1/auth/password-reset", &json!({"email": email})).await.status(), 202);
    // The worker tries, fails, and keeps the message with a later attempt time.
    let mut failed = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let rows = outbox::Entity::find().all(&app.db).await.unwrap();
        if rows[0].attempts >= 1 {
            failed = Some(rows[0].clone());
            break;
        }
    }
    let failed = failed.expect("a failed attempt");
    assert!(failed.sent_at.is_none() && failed.failed_at.is_none() && failed.last_error.is_some());
    assert!(failed.next_attempt_at > failed.created_at);
    // The server comes back: the message is delivered on a later attempt, once.
    smtp.run();
    let mails = smtp.wait_for(1, 20).await;
    assert_eq!(mails.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "not sent twice");
    let row = outbox::Entity::find().all(&app.db).await.unwrap().remove(0);
    assert!(row.sent_at.is_some() && row.attempts >= 1);
}

#[tokio::test]
async fn without_smtp_settings_nothing_is_sent_and_mail_stays_queued() {
    let app = spawn_app().await;
    app.login_as(Role::Admin, None).await;
    let email = sipas::store::users::all(&app.db).await.unwrap()[0].email.clone();
    assert_eq!(app.post_json("/api/v1/auth/password-reset", &json!({"email": email})).await.status(), 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rows = outbox::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].sent_at.is_none() && rows[0].attempts == 0);
}

#[tokio::test]
async fn headers_cannot_be_injected_through_a_subject() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| with_smtp(s, &smtp)).await;
    let mail = sipas::email::Mail {
        kind: "test",
        dedupe_key: None,
        to: "someone@example.gov.vn".into(),
        subject: "Hello\r\nBcc: victim@example.com".into(),
        text: "body".into(),
        html: None,
    };
    sipas::email::enqueue(&app.db, mail).await.unwrap();
    let mails = smtp.wait_for(1, 15).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].1.contains("Hello") && mails[0].1.contains("Bcc: victim"), "kept as text of the subject");
    let raw: Vec<String> = std::fs::read_dir(smtp.maildir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!raw[0].lines().any(|l| l.starts_with("Bcc:")), "no Bcc header line");
}

/// Waits until the outbox holds `n` messages (reset requests are handled in the background).
async fn outbox_rows(app: &crate::helpers::TestApp, n: usize) -> Vec<outbox::Model> {
    for _ in 0..100 {
        let rows = outbox::Entity::find().all(&app.db).await.unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    outbox::Entity::find().all(&app.db).await.unwrap()
}

#[tokio::test]
async fn a_reset_link_confirmed_eight_times_at_once_works_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    app.login_as(Role::Admin, None).await;
    let email = sipas::store::users::all(&app.db).await.unwrap()[0].email.clone();
    assert_eq!(app.post_json("/api/v1/auth/password-reset", &json!({"email": email})).await.status(), 202);
    let rows = outbox_rows(&app, 1).await;
    let token = between(&rows[0].body_text, "/console/reset/", "\n").expect("link").trim().to_string();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"token": token, "password": format!("a long new password number {i}")});
            app.post_json("/api/v1/auth/password-reset/confirm", &body).await.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [204, 422].contains(s)), "{statuses:?}");
}

#[tokio::test]
async fn reset_requests_are_limited_per_email_and_per_address_with_or_without_an_account() {
    let app = spawn_app().await;
    app.login_as(Role::Admin, None).await;
    let email = sipas::store::users::all(&app.db).await.unwrap()[0].email.clone();
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(app.post_json("/api/v1/auth/password-reset", &json!({"email": email})).await.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 3, "three an hour for one email: {statuses:?}");
    assert!(statuses.iter().all(|s| [202, 429].contains(s)));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox_rows(&app, 3).await.len(), 3, "three mails, not fifty");
    // An address may ask for other emails, up to its own limit (10 an hour, the 50 above
    // counted 3 of them... and the refused ones too).
    let other = spawn_app().await;
    let mut answered = Vec::new();
    for i in 0..12 {
        let body = json!({"email": format!("someone{i}@example.gov.vn")});
        answered.push(other.post_json("/api/v1/auth/password-reset", &body).await.status().as_u16());
    }
    assert_eq!(answered.iter().filter(|s| **s == 202).count(), 10, "{answered:?}");
    assert_eq!(answered[11], 429);
}

#[tokio::test]
async fn a_reset_request_answers_as_fast_with_an_account_as_without() {
    let app = spawn_app().await;
    for _ in 0..4 {
        app.login_as(Role::Analyst, None).await;
    }
    let emails: Vec<String> = sipas::store::users::all(&app.db).await.unwrap().into_iter().map(|u| u.email).collect();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (i, email) in emails.iter().enumerate().take(4) {
        for (target, address) in [(&mut with, email.clone()), (&mut without, format!("nobody{i}@example.gov.vn"))] {
            let started = std::time::Instant::now();
            assert_eq!(app.post_json("/api/v1/auth/password-reset", &json!({"email": address})).await.status(), 202);
            target.push(started.elapsed().as_secs_f64() * 1e3);
            // Let the background look-up finish, so no request waits on the one before it.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    // The fastest of each: a busy machine only ever adds time, so the minimum is what the
    // request itself costs (a median of four let one stall on a loaded CI machine decide).
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (a, b) = (fastest(&with), fastest(&without));
    // Both answer before any look-up; what is left is noise. Before: 8.6 ms against 1.3 ms.
    assert!((a - b).abs() < 5.0, "with an account {a:.1} ms ({with:?}), without {b:.1} ms ({without:?})");
    assert_eq!(outbox_rows(&app, 4).await.len(), 4, "the links were queued all the same");
}
