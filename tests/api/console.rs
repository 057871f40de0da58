//! The web console driven over HTTP as each role, with its protections.

use sea_orm::EntityTrait;
use serde_json::Value;
use sipas::auth::Role;
use sipas::entities::audit;

use crate::helpers::{TestApp, between, console_client, csrf_of, spawn_app_with};

async fn app() -> TestApp {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    app
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let res = client.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn every_role_signs_in_and_sees_what_it_may() {
    let app = app().await;
    for (role, unit) in [(Role::Admin, None), (Role::Analyst, None), (Role::UnitManager, Some("QNM.TK"))] {
        let (client, _) = console_client(&app, role, unit).await;
        let (status, html) = get(&client, &app, "/console?period=2024").await;
        assert_eq!(status, 200, "{role:?}");
        assert!(html.contains("SIPAS") && html.contains("<svg"), "{role:?}: overview with charts");
        let expected_n = if role == Role::UnitManager { "331" } else { "600" };
        assert!(html.contains(&format!("{expected_n} phiếu")), "{role:?}: the scope's count");

        let (status, html) = get(&client, &app, "/console/units/QNM.TK.AM?period=2024").await;
        assert_eq!(status, 200, "{role:?} unit page");
        assert!(html.contains("Phường An Mỹ") && html.contains("Phân bố câu trả lời"));
        assert!(html.contains("83.4"), "{role:?}: the unit's SIPAS");
        let (status, html) = get(&client, &app, "/console/units/QNM.TK.AM/report?period=2024").await;
        assert_eq!(status, 200);
        assert!(html.contains("Báo cáo SIPAS") && !html.contains("Đăng xuất"), "print view without navigation");
        let (status, _) = get(&client, &app, "/console/rankings?period=2024").await;
        assert_eq!(status, 200);
        let (status, _) = get(&client, &app, "/console/exports").await;
        assert_eq!(status, 200);
        for path in [
            "/api/v1/exports/indices.csv?period=2024",
            "/api/v1/exports/indices.xlsx?period=2024",
            "/api/v1/exports/indices.json?period=2024",
            "/api/v1/exports/microdata.csv?period=2024",
            "/api/v1/exports/microdata.xlsx?period=2024",
        ] {
            let res = client.get(app.url(path)).send().await.unwrap();
            if role == Role::UnitManager && path.contains("microdata") {
                assert_eq!(res.status(), 403, "row-level data is not for a unit manager: {path}");
                continue;
            }
            assert_eq!(res.status(), 200, "{role:?} {path} with the session cookie");
            assert!(!res.bytes().await.unwrap().is_empty());
        }

        let outside = get(&client, &app, "/console/units/QNM.HA?period=2024").await.0;
        let users = get(&client, &app, "/console/admin/users").await.0;
        let audit_page = get(&client, &app, "/console/admin/audit").await.0;
        match role {
            Role::Admin => assert_eq!((outside, users, audit_page), (200, 200, 200)),
            Role::Analyst => assert_eq!((outside, users, audit_page), (200, 403, 403)),
            Role::UnitManager => assert_eq!((outside, users, audit_page), (403, 403, 403)),
        }
        let (status, html) = get(&client, &app, "/console/admin/units").await;
        assert_eq!(status, 200);
        assert_eq!(html.contains("Thêm đơn vị"), role == Role::Admin, "only admins get the form");
        if role == Role::UnitManager {
            assert!(!html.contains("QNM.HA.MA"), "another subtree's units are not listed");
        }
    }
}

#[tokio::test]
async fn signing_in_needs_the_form_cookie_and_the_right_password() {
    let app = app().await;
    let (client, email) = console_client(&app, Role::Analyst, None).await;
    // Signed in: the login form of another browser, posted without its cookie, is refused.
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = bare
        .post(app.url("/console/login"))
        .form(&[("form", "guess"), ("email", email.as_str()), ("password", crate::helpers::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A wrong password comes back as the form with a message, and is audited.
    let fresh =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = fresh.get(app.url("/console/login")).send().await.unwrap().text().await.unwrap();
    let token = between(&page, "name=\"form\" value=\"", "\"").unwrap();
    let res = fresh
        .post(app.url("/console/login"))
        .form(&[("form", token.as_str()), ("email", email.as_str()), ("password", "wrong one!")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("Sai thư điện tử hoặc mật khẩu"));
    // Open redirects are refused.
    let page =
        fresh.get(app.url("/console/login?next=https://evil.example")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("name=\"next\" value=\"/console\""));
    // Anonymous visitors are sent to the sign-in page, with the way back.
    let res = bare.get(app.url("/console/rankings?period=2024")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/console/login?next=%2Fconsole%2Frankings%3Fperiod%3D2024");

    let actions: Vec<String> =
        audit::Entity::find().all(&app.db).await.unwrap().into_iter().map(|a| a.action).collect();
    assert!(actions.contains(&"login".to_string()) && actions.contains(&"login_failed".to_string()), "{actions:?}");
    let _ = client;
}

#[tokio::test]
async fn every_form_post_needs_the_session_csrf_token() {
    let app = app().await;
    let (client, _) = console_client(&app, Role::Admin, None).await;
    let page = get(&client, &app, "/console/admin/units").await.1;
    let csrf = csrf_of(&page);
    let unit = [("code", "QNM.STC"), ("parent", "QNM"), ("level", "department"), ("name_vi", "Sở Tài chính")];
    for token in ["", "forged-token"] {
        let mut form = unit.to_vec();
        form.push(("csrf", token));
        let res = client.post(app.url("/console/admin/units")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "csrf {token:?}");
    }
    assert!(sipas::store::units::by_code(&app.db, "QNM.STC").await.unwrap().is_none());
    let mut form = unit.to_vec();
    form.push(("csrf", csrf.as_str()));
    let res = client.post(app.url("/console/admin/units")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(sipas::store::units::by_code(&app.db, "QNM.STC").await.unwrap().is_some());
    // A bad unit comes back as the page with the problems listed.
    let res = client
        .post(app.url("/console/admin/units"))
        .form(&[
            ("code", "bad code"),
            ("parent", "QNM"),
            ("level", "department"),
            ("name_vi", ""),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("code") && html.contains("name_vi"));
    // Sign-out is a POST with the token too.
    let res = client.post(app.url("/console/logout")).form(&[("csrf", "nope")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = client.post(app.url("/console/logout")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(get(&client, &app, "/console").await.0, 303, "signed out");
}

#[tokio::test]
async fn console_pages_carry_security_headers_and_cookies_their_flags() {
    let app = app().await;
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = bare.get(app.url("/console/login")).send().await.unwrap();
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script at all");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn admins_manage_users_and_volumes_from_the_console_and_it_is_audited() {
    let app = app().await;
    let (client, _) = console_client(&app, Role::Admin, None).await;
    let csrf = csrf_of(&get(&client, &app, "/console/admin/users").await.1);
    let res = client
        .post(app.url("/console/admin/users"))
        .form(&[
            ("email", "head@tk.gov.vn"),
            ("role", "unit_manager"),
            ("unit", "QNM.TK"),
            ("password", "a long enough passphrase"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let user = sipas::store::users::by_email(&app.db, "head@tk.gov.vn").await.unwrap().unwrap();
    let res = client
        .post(app.url(&format!("/console/admin/users/{}", user.id)))
        .form(&[("role", "unit_manager"), ("unit", "QNM.TK"), ("disabled", "true"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(sipas::store::users::by_email(&app.db, "head@tk.gov.vn").await.unwrap().unwrap().disabled);
    let res = client
        .post(app.url("/console/admin/volumes"))
        .form(&[("unit", "QNM.TK.AM"), ("month", "2024-03"), ("dossiers", "420"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = get(&client, &app, "/console/admin/volumes?year=2024").await.1;
    assert!(html.contains("420"));
    let export =
        client.get(app.url("/api/v1/exports/indices.csv?period=2024-Q1&respondent_type=citizen")).send().await.unwrap();
    assert_eq!(export.status(), 200);

    let log: Vec<Value> = client.get(app.url("/api/v1/admin/audit")).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["user_created", "user_updated", "volumes_set", "export", "login"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let export_entry = log.iter().find(|e| e["action"] == "export").unwrap();
    assert_eq!(export_entry["details"]["filters"]["respondent_type"], "citizen");
    assert_eq!(export_entry["details"]["period"], "2024-Q1");
    assert_eq!(export_entry["details"]["rows"], 9);
    let csv = client.get(app.url("/api/v1/admin/audit.csv")).send().await.unwrap().text().await.unwrap();
    assert!(csv.starts_with('\u{feff}') && csv.contains("user_created"));
    // The audit log never holds what respondents wrote.
    let all = audit::Entity::find().all(&app.db).await.unwrap();
    assert!(all.iter().all(|a| !a.details.contains("answers") && !a.details.contains("comment\":\"")));
}
