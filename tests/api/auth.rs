//! Admin accounts, sessions and unit scope.

use chrono::{TimeDelta, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{session, user};

use crate::helpers::{PASSWORD, error_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn login_returns_a_bearer_token_and_an_httponly_cookie_and_stores_only_hashes() {
    let app = spawn_app().await;
    let token = app.login_as(Role::Analyst, None).await;
    let me: Value = app.get_as("/api/v1/auth/me", &token).await.json().await.unwrap();
    assert_eq!(me["role"], "analyst");

    let users = user::Entity::find().all(&app.db).await.unwrap();
    assert!(users[0].password_hash.starts_with("$argon2id$"), "Argon2id");
    let sessions = session::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].token_hash, token, "the token itself is not stored");

    let res = app.post_json("/api/v1/auth/login", &json!({"email": users[0].email, "password": PASSWORD})).await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("sipas_session="), "{cookie}");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    // The cookie alone signs the request in.
    let value = cookie.split(';').next().unwrap();
    let res = app.client.get(app.url("/api/v1/auth/me")).header("cookie", value).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.login_as(Role::Admin, None).await;
    let email = user::Entity::find().one(&app.db).await.unwrap().unwrap().email;
    let a = error_body(
        app.post_json("/api/v1/auth/login", &json!({"email": email, "password": "wrong password"})).await,
        401,
        "unauthorized",
    )
    .await;
    let b = error_body(
        app.post_json("/api/v1/auth/login", &json!({"email": "nobody@example.gov.vn", "password": "wrong password"}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(a, b);
    let out = error_body(
        app.post_json("/api/v1/auth/login", &json!({"email": "not-an-email", "password": ""})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(out["fields"]["email"].is_array() && out["fields"]["password"].is_array(), "{out}");
}

#[tokio::test]
async fn logout_revokes_the_token_server_side() {
    let app = spawn_app().await;
    let token = app.login_as(Role::Admin, None).await;
    assert_eq!(app.get_as("/api/v1/admin/units", &token).await.status(), 200);
    let res = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    error_body(app.get_as("/api/v1/admin/units", &token).await, 401, "unauthorized").await;
    assert!(session::Entity::find().all(&app.db).await.unwrap().is_empty());
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let app = spawn_app().await;
    let idle = app.login_as(Role::Admin, None).await;
    let absolute = app.login_as(Role::Admin, None).await;
    for s in session::Entity::find().all(&app.db).await.unwrap() {
        let mut active: session::ActiveModel = s.clone().into();
        if s.token_hash == sipas::auth::token_hash(&idle) {
            active.last_seen_at = Set(Utc::now() - TimeDelta::minutes(31));
        } else {
            active.expires_at = Set(Utc::now() - TimeDelta::seconds(1));
        }
        active.update(&app.db).await.unwrap();
    }
    error_body(app.get_as("/api/v1/auth/me", &idle).await, 401, "unauthorized").await;
    error_body(app.get_as("/api/v1/auth/me", &absolute).await, 401, "unauthorized").await;
    assert!(session::Entity::find().all(&app.db).await.unwrap().is_empty(), "expired sessions are deleted");
}

#[tokio::test]
async fn missing_or_garbage_tokens_get_401() {
    let app = spawn_app().await;
    error_body(app.get("/api/v1/admin/units").await, 401, "unauthorized").await;
    error_body(app.get_as("/api/v1/admin/units", "garbage").await, 401, "unauthorized").await;
    let res =
        app.client.get(app.url("/api/v1/admin/units")).header("authorization", "Basic YTpi").send().await.unwrap();
    error_body(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_unit_manager_sees_only_its_subtree() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let token = app.login_as(Role::UnitManager, Some("QNM.TK")).await;
    let list: Value = app.get_as("/api/v1/admin/units", &token).await.json().await.unwrap();
    let mut codes: Vec<&str> = list["units"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["QNM.TK", "QNM.TK.AM", "QNM.TK.HH", "QNM.TK.TT"]);
    assert_eq!(app.get_as("/api/v1/admin/units/QNM.TK.AM", &token).await.status(), 200);
    for outside in ["QNM", "QNM.HA", "QNM.HA.MA", "QNM.SNV"] {
        error_body(app.get_as(&format!("/api/v1/admin/units/{outside}"), &token).await, 403, "forbidden").await;
    }
    let me: Value = app.get_as("/api/v1/auth/me", &token).await.json().await.unwrap();
    assert_eq!(me["unit"], "QNM.TK");

    let analyst = app.login_as(Role::Analyst, None).await;
    let list: Value = app.get_as("/api/v1/admin/units", &analyst).await.json().await.unwrap();
    assert_eq!(list["units"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let app = crate::helpers::spawn_app_with(|s| s.sign_ins_per_minute = 3).await;
    let body = json!({"email": "someone@example.gov.vn", "password": "guess guess"});
    for _ in 0..3 {
        error_body(app.post_json("/api/v1/auth/login", &body).await, 401, "unauthorized").await;
    }
    let res = app.post_json("/api/v1/auth/login", &body).await;
    assert!(res.headers().contains_key("retry-after"));
    error_body(res, 429, "too_many_requests").await;
}

#[tokio::test]
async fn one_account_is_throttled_whatever_the_addresses_and_the_owner_gets_back_in() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1".into()]).await;
    app.login_as(Role::Admin, None).await;
    let email = user::Entity::find().all(&app.db).await.unwrap()[0].email.clone();
    let mut statuses = Vec::new();
    for i in 0..24 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("10.0.{}.{}", i / 2, i % 2 + 1))
            .json(&json!({"email": email, "password": format!("wrong guess number {i}")}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 13, "24 guesses from 12 addresses, {refused} throttled: {statuses:?}");
    // Not a lock-out: the bucket refills, and the owner signs in after a short pause.
    tokio::time::sleep(std::time::Duration::from_millis(6_500)).await;
    let res = app.post_json("/api/v1/auth/login", &json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn passwords_follow_the_asvs_rule_on_the_api() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin, None).await;
    let create = |password: &str| {
        let body =
            json!({"email": format!("new{}@example.gov.vn", password.len()), "role": "analyst", "password": password});
        let (app, admin) = (&app, admin.clone());
        async move { app.client.post(app.url("/api/v1/admin/users")).bearer_auth(admin).json(&body).send().await.unwrap() }
    };
    for bad in ["1234567890", "          ", "               ", "passwordpassword", "aaaaaaaaaaaaaaaaaaaa"] {
        let out = error_body(create(bad).await, 422, "validation_failed").await;
        assert!(out["fields"]["password"].is_array(), "{bad:?}: {out}");
    }
    assert_eq!(create("mùa thu Hà Nội lá vàng").await.status(), 201, "a phrase, no composition rules");
}

#[tokio::test]
async fn a_failed_sign_in_never_logs_what_was_typed_for_an_unknown_email() {
    let app = spawn_app().await;
    let typed = "Bi mat cua toi 2026";
    let res = app.post_json("/api/v1/auth/login", &json!({"email": typed, "password": "whatever"})).await;
    assert!(res.status() == 401 || res.status() == 422, "{}", res.status());
    let res = app.post_json("/api/v1/auth/login", &json!({"email": "nobody@example.gov.vn", "password": typed})).await;
    assert_eq!(res.status(), 401);
    let log = sipas::entities::audit::Entity::find().all(&app.db).await.unwrap();
    assert!(!log.is_empty(), "failed sign-ins are still logged");
    for entry in &log {
        let text = format!("{:?} {:?} {}", entry.target, entry.actor, entry.details);
        assert!(!text.contains(typed) && !text.contains("nobody@"), "{text}");
    }
}

#[tokio::test]
async fn the_idle_clock_follows_the_last_use_not_the_last_minute() {
    let app = spawn_app_with(|s| s.session_idle_minutes = 1).await;
    let token = app.login_as(Role::Analyst, None).await;
    // Signed in 45 s ago, used now: the use is recorded, so 45 s later it is still alive.
    let db = app.db.clone();
    let age = |seconds: i64| {
        let db = db.clone();
        async move {
            let s = session::Entity::find().one(&db).await.unwrap().unwrap();
            let mut s: session::ActiveModel = s.into();
            s.last_seen_at = Set(Utc::now() - TimeDelta::seconds(seconds));
            s.update(&db).await.unwrap();
        }
    };
    age(45).await;
    assert_eq!(app.get_as("/api/v1/auth/me", &token).await.status(), 200);
    let seen = session::Entity::find().one(&app.db).await.unwrap().unwrap().last_seen_at;
    assert!(Utc::now() - seen < TimeDelta::seconds(3), "the use at 45 s was recorded: {seen}");
    age(45).await;
    assert_eq!(app.get_as("/api/v1/auth/me", &token).await.status(), 200, "90 s after sign-in, 45 s after use");
    age(61).await;
    assert_eq!(app.get_as("/api/v1/auth/me", &token).await.status(), 401, "idle for more than a minute");
}
