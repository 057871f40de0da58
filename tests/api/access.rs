//! Every route against every role: anonymous, admin, analyst, and a unit_manager of QNM.TK
//! guessing URLs of another unit's pages and exports.

use serde_json::json;
use sipas::auth::Role;

use crate::helpers::{console_client, spawn_app_with};

#[tokio::test]
async fn every_route_answers_each_role_as_it_should() {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    let tokens = [
        ("admin", app.login_as(Role::Admin, None).await),
        ("analyst", app.login_as(Role::Analyst, None).await),
        ("manager", app.login_as(Role::UnitManager, Some("QNM.TK")).await),
    ];
    // (method, path, body, [anonymous, admin, analyst, manager])
    let unit_body = json!({"code": "QNM.NEW", "parent": "QNM", "level": "department", "name_vi": "Mới"});
    let cases: Vec<(&str, &str, Option<serde_json::Value>, [u16; 4])> = vec![
        ("GET", "/api/v1/forms", None, [200, 200, 200, 200]),
        ("GET", "/api/v1/units/QNM.HA", None, [200, 200, 200, 200]),
        ("GET", "/api/v1/auth/me", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/admin/units", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/admin/units/QNM.TK.AM", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/admin/units/QNM.HA.MA", None, [401, 200, 200, 403]),
        ("PATCH", "/api/v1/admin/units/QNM.TK.AM", Some(json!({"name_en": "An My"})), [401, 200, 403, 403]),
        ("GET", "/api/v1/indices?unit=QNM.TK&period=2024", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/indices?unit=QNM&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/indices?unit=QNM.HA.MA&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/rankings?within=QNM.HA&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/trends?unit=QNM.SNV&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/trends?unit=QNM.TK.TT&period=2024", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/exports/indices.csv?within=QNM.TK&period=2024", None, [401, 200, 200, 200]),
        ("GET", "/api/v1/exports/indices.xlsx?within=QNM.HA&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/exports/indices.json?within=QNM&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/exports/microdata.csv?within=QNM.HA&period=2024", None, [401, 200, 200, 403]),
        // Microdata is for provincial roles: a unit manager is refused even within its scope.
        ("GET", "/api/v1/exports/microdata.xlsx?within=QNM.TK.AM&period=2024", None, [401, 200, 200, 403]),
        ("GET", "/api/v1/admin/volumes?unit=QNM.HA", None, [401, 200, 200, 403]),
        (
            "PUT",
            "/api/v1/admin/volumes",
            Some(json!({"volumes": [{"unit": "QNM.TK", "month": "2024-01", "dossiers": 5}]})),
            [401, 200, 403, 403],
        ),
        ("GET", "/api/v1/admin/users", None, [401, 200, 403, 403]),
        (
            "POST",
            "/api/v1/admin/users",
            Some(json!({"email": "x@y.vn", "role": "analyst", "password": "a long passphrase for tests"})),
            [401, 201, 403, 403],
        ),
        ("GET", "/api/v1/admin/audit", None, [401, 200, 403, 403]),
        ("GET", "/api/v1/admin/audit.csv", None, [401, 200, 403, 403]),
        ("POST", "/api/v1/admin/units", Some(unit_body), [401, 201, 403, 403]),
    ];
    for (method, path, body, expected) in &cases {
        for (who, token) in [("anonymous", None)].into_iter().chain(tokens.iter().map(|(w, t)| (*w, Some(t)))) {
            let mut req = app.client.request(method.parse().unwrap(), app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let status = req.send().await.unwrap().status().as_u16();
            let i = ["anonymous", "admin", "analyst", "manager"].iter().position(|w| *w == who).unwrap();
            // A second admin create of the same record is a conflict, not an access error.
            assert_eq!(status, expected[i], "{who} {method} {path}");
        }
    }

    // The console, by URL guessing, as a unit_manager of QNM.TK.
    let (manager, _) = console_client(&app, Role::UnitManager, Some("QNM.TK")).await;
    for (path, status) in [
        ("/console", 200),
        ("/console/units/QNM.TK.HH", 200),
        ("/console/units/QNM.HA.MA", 403),
        ("/console/units/QNM/report", 403),
        ("/console/units/QNM.SNV?period=2024", 403),
        ("/console/rankings", 200),
        ("/console/admin/users", 403),
        ("/console/admin/audit", 403),
        ("/console/admin/units/QNM.TK/edit", 403),
        ("/console/admin/volumes", 200),
    ] {
        let got = manager.get(app.url(path)).send().await.unwrap().status().as_u16();
        assert_eq!(got, status, "manager {path}");
    }
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/console", "/console/units/QNM", "/console/admin/users", "/console/exports"] {
        assert_eq!(anonymous.get(app.url(path)).send().await.unwrap().status(), 303, "anonymous {path}");
    }
}
