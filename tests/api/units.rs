//! Units: CSV import, public info and the admin API.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::unit;
use sipas::store;
use sipas::units::import::parse_csv;

use crate::helpers::{error_body, fixture, spawn_app};

#[tokio::test]
async fn importing_the_reference_units_builds_the_tree_and_is_idempotent() {
    let app = spawn_app().await;
    let text = std::fs::read_to_string(fixture("units.csv")).unwrap();
    let report = store::units::import(&app.db, parse_csv(&text).unwrap()).await.unwrap().unwrap();
    assert_eq!((report.created, report.updated, report.unchanged), (9, 0, 0));
    let report = store::units::import(&app.db, parse_csv(&text).unwrap()).await.unwrap().unwrap();
    assert_eq!((report.created, report.updated, report.unchanged), (0, 0, 9));

    let tree = store::units::tree(&app.db).await.unwrap();
    let am = tree.by_code("QNM.TK.AM").unwrap();
    let tk = tree.by_code("QNM.TK").unwrap();
    assert_eq!(am.parent_id, Some(tk.id));
    assert_eq!(am.name_vi, "Phường An Mỹ");
    assert_eq!(tree.subtree(tree.by_code("QNM").unwrap().id).len(), 9);

    // A changed name is an update; English names come from an optional column.
    let changed = "code,parent,level,name_vi,name_en\nQNM.TK.AM,QNM.TK,commune,Phường An Mỹ (mới),An My ward\n";
    let report = store::units::import(&app.db, parse_csv(changed).unwrap()).await.unwrap().unwrap();
    assert_eq!((report.created, report.updated), (0, 1));
    let am = store::units::by_code(&app.db, "QNM.TK.AM").await.unwrap().unwrap();
    assert_eq!(am.name_en.as_deref(), Some("An My ward"));
}

#[tokio::test]
async fn a_file_with_bad_rows_reports_each_line_and_writes_nothing() {
    let app = spawn_app().await;
    let csv = "code,parent,level,name_vi\n\
               QNM,,province,Tỉnh Quảng Nam\n\
               QNM.A,QNM,district,Huyện A\n\
               qnm.b,QNM,district,Huyện B\n\
               QNM.C,QNM.ZZ,commune,Xã C\n\
               QNM.D,QNM,galaxy,D\n\
               QNM.A.X,QNM.A,commune,\n";
    let errors = store::units::import(&app.db, parse_csv(csv).unwrap()).await.unwrap().unwrap_err();
    let joined = errors.join("\n");
    for line in [4, 5, 6, 7] {
        assert!(joined.contains(&format!("line {line}:")), "line {line} missing in:\n{joined}");
    }
    assert!(!joined.contains("line 2:") && !joined.contains("line 3:"), "{joined}");
    assert_eq!(unit::Entity::find().count(&app.db).await.unwrap(), 0, "nothing written");
}

#[tokio::test]
async fn public_unit_info_lists_its_forms_and_survey_link() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let res = app.get("/api/v1/units/QNM.TK.AM").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "QNM.TK.AM");
    assert_eq!(body["name_vi"], "Phường An Mỹ");
    assert_eq!(body["parent"], "QNM.TK");
    assert_eq!(body["level"], "commune");
    let forms: Vec<&str> = body["forms"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(forms, ["sipas-2017", "sipas-2023"]);
    assert!(body["survey_url"].as_str().unwrap().ends_with("/s/QNM.TK.AM"));
    for path in ["/api/v1/units/QNM.NOPE", "/api/v1/units/%00", "/api/v1/units/QNM'%20OR%201=1"] {
        error_body(app.get(path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn admins_create_and_update_units_with_every_rule_checked() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let token = app.login_as(Role::Admin, None).await;
    let create = |body: Value| {
        let (app, token) = (&app, &token);
        async move { app.post_as("/api/v1/admin/units", token, &body).await }
    };

    let res = create(json!({"code": "QNM.STC", "parent": "QNM", "level": "department", "name_vi": "Sở Tài chính", "name_en": "Department of Finance"})).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["parent"], "QNM");
    assert_eq!(body["effective_forms"], json!(["sipas-2017", "sipas-2023"]));

    error_body(
        create(json!({"code": "QNM.STC", "parent": "QNM", "level": "department", "name_vi": "again"})).await,
        409,
        "conflict",
    )
    .await;
    let out = error_body(
        create(json!({"code": "bad code", "parent": "QNM.NOPE", "level": "planet", "name_vi": "", "forms": ["sipas-1999"]})).await,
        422,
        "validation_failed",
    )
    .await;
    for field in ["code", "parent", "level", "name_vi", "forms"] {
        assert!(out["fields"][field].is_array(), "{field}: {out}");
    }
    let out = error_body(
        create(json!({"code": "QNM.X", "parent": "QNM.TK.AM", "level": "district", "name_vi": "X"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(out["fields"]["level"].is_array(), "a district cannot sit under a commune: {out}");

    let patch = |code: &'static str, body: Value| {
        let (app, token) = (&app, &token);
        async move { app.patch_as(&format!("/api/v1/admin/units/{code}"), token, &body).await }
    };
    let res = patch("QNM.TK.AM", json!({"name_vi": "Phường An Mỹ mới", "forms": ["sipas-2017"]})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name_vi"], "Phường An Mỹ mới");
    assert_eq!(body["forms"], json!(["sipas-2017"]));
    let res = patch("QNM.TK.AM", json!({"forms": null})).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["forms"], Value::Null, "back to inheriting");

    // A unit cannot move below itself.
    let out = error_body(patch("QNM.TK", json!({"parent": "QNM.TK.AM"})).await, 422, "validation_failed").await;
    assert!(out["fields"]["parent"].is_array(), "{out}");
    // Nor become a level its children cannot sit under.
    let out = error_body(patch("QNM.TK", json!({"level": "commune"})).await, 422, "validation_failed").await;
    assert!(out["fields"]["level"].is_array(), "{out}");
    error_body(patch("QNM.NOPE", json!({"name_vi": "x"})).await, 404, "not_found").await;
    error_body(patch("QNM.TK", json!({"colour": "red"})).await, 400, "bad_request").await;
}

#[tokio::test]
async fn only_admins_change_units() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let body = json!({"code": "QNM.STC", "parent": "QNM", "level": "department", "name_vi": "Sở Tài chính"});
    for (role, unit) in [(Role::Analyst, None), (Role::UnitManager, Some("QNM"))] {
        let token = app.login_as(role, unit).await;
        let res = app.client.post(app.url("/api/v1/admin/units")).bearer_auth(&token).json(&body).send().await.unwrap();
        error_body(res, 403, "forbidden").await;
        let res = app
            .client
            .patch(app.url("/api/v1/admin/units/QNM.TK"))
            .bearer_auth(&token)
            .json(&json!({"name_vi": "x"}))
            .send()
            .await
            .unwrap();
        error_body(res, 403, "forbidden").await;
    }
    let res = app.client.post(app.url("/api/v1/admin/units")).json(&body).send().await.unwrap();
    error_body(res, 401, "unauthorized").await;
    assert!(store::units::by_code(&app.db, "QNM.STC").await.unwrap().is_none());
}
