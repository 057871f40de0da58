//! Admin accounts, sessions and unit scope.

use chrono::{TimeDelta, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{session, user};

use crate::helpers::{PASSWORD, error_body, spawn_app};

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
