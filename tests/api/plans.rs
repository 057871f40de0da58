//! Improvement plans: who may make, change, close and comment on them; the baseline frozen
//! when a plan is made; the before/after verdict on data built so the answer is known
//! (improved, worse, no clear change, withheld); bad input refused with nothing stored.

use chrono::NaiveDate;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::store;

use crate::helpers::*;

/// Stores `n` responses at `unit` on `date`, `satisfied` of them answering each of `codes`
/// at 4 (satisfied) and the rest at 2, as writers store them.
async fn store_at(app: &TestApp, unit: &str, date: &str, n: usize, answers: &[(&str, usize)]) {
    let unit = unit_id(app, unit).await;
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let subs: Vec<_> = (0..n)
        .map(|i| {
            let mut s = stored_submission(unit);
            s.survey_date = day;
            s.answers = answers.iter().map(|(code, sat)| (code.to_string(), if i < *sat { 4 } else { 2 })).collect();
            s
        })
        .collect();
    let refs: Vec<_> = subs.iter().collect();
    let outcomes = store::responses::insert_group(&app.db, &app.state.catalog, &refs, false).await.unwrap();
    assert!(outcomes.iter().all(|o| o.is_ok()));
}

fn plan_body(unit: &str, criteria: &[&str], baseline: &str, deadline: &str) -> Value {
    json!({
        "unit": unit,
        "criteria": criteria,
        "baseline_period": baseline,
        "title": "Rút ngắn thời gian chờ",
        "actions": "Bố trí thêm một quầy vào sáng thứ Hai.\nNiêm yết thời gian trả kết quả.",
        "responsible": "Phó Chủ tịch UBND phường",
        "deadline": deadline,
    })
}

async fn plans_stored(app: &TestApp) -> u64 {
    sipas::entities::plan::Entity::find().count(&app.db).await.unwrap()
}

async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    let res = app.post_as("/api/v1/plans", token, body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

fn change_of<'a>(detail: &'a Value, code: &str) -> &'a Value {
    detail["evaluation"]["changes"].as_array().unwrap().iter().find(|c| c["code"] == code).unwrap()
}

#[tokio::test]
async fn the_verdict_says_improved_worse_no_change_or_nothing_as_the_figures_do() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    // Before (2025-Q1): B1 50%, B2 80%, B3 60% of 100. After (2025-Q3): 85%, 50%, 62%.
    store_at(&app, "QNM.TK.AM", "2025-02-10", 100, &[("B1", 50), ("B2", 80), ("B3", 60)]).await;
    store_at(&app, "QNM.TK.AM", "2025-08-10", 100, &[("B1", 85), ("B2", 50), ("B3", 62)]).await;
    // 2026-Q1: five responses only, under k.
    store_at(&app, "QNM.TK.AM", "2026-02-10", 5, &[("B1", 5), ("B2", 5), ("B3", 5)]).await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;

    let plan = create(&app, &manager, &plan_body("QNM.TK.AM", &["B1", "B2", "B3"], "2025-Q1", "2025-06-30")).await;
    let b1 = plan["criteria"].as_array().unwrap().iter().find(|c| c["code"] == "B1").unwrap().clone();
    assert_eq!(b1["baseline"]["n"], 100);
    assert_eq!(b1["baseline"]["value"], 50.0);
    assert!(b1["text"].as_str().is_some_and(|t| !t.is_empty()));

    let id = plan["id"].as_str().unwrap();
    let res = app.get_as(&format!("/api/v1/plans/{id}"), &manager).await;
    assert_eq!(res.status(), 200);
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["evaluation"]["before"], "2025-Q1");
    assert_eq!(detail["evaluation"]["after"], "2025-Q3", "the first whole quarter from the deadline");
    let improved = change_of(&detail, "B1");
    assert_eq!(improved["verdict"], "improved", "{improved}");
    assert!((improved["change"].as_f64().unwrap() - 35.0).abs() < 1e-9);
    assert!(improved["ci95"][0].as_f64().unwrap() > 0.0);
    assert_eq!(change_of(&detail, "B2")["verdict"], "worse");
    let same = change_of(&detail, "B3");
    assert_eq!(same["verdict"], "no_clear_change");
    assert!(same["ci95"][0].as_f64().unwrap() < 0.0 && same["ci95"][1].as_f64().unwrap() > 0.0);

    // From a chosen date: 2026-Q1 (five responses) against 2025-Q4 (none): withheld, and
    // the withheld side shows neither its count nor its value.
    let res = app.get_as(&format!("/api/v1/plans/{id}?from=2026-01-01"), &manager).await;
    let detail: Value = res.json().await.unwrap();
    assert_eq!(
        (&detail["evaluation"]["before"], &detail["evaluation"]["after"]),
        (&json!("2025-Q4"), &json!("2026-Q1"))
    );
    for code in ["B1", "B2", "B3"] {
        let c = change_of(&detail, code);
        assert_eq!(c["verdict"], "withheld", "{c}");
        assert!(c["change"].is_null() && c["ci95"].is_null());
        assert!(c["after"]["withheld"] == true && c["after"]["n"].is_null() && c["after"]["value"].is_null(), "{c}");
    }
    assert!(detail.to_string().find("\"n\":5").is_none(), "the small group's count is not shown: {detail}");

    // A plan whose deadline places the period after on the small quarter: withheld too.
    let late = create(&app, &manager, &plan_body("QNM.TK.AM", &["B1"], "2025-Q1", "2025-12-20")).await;
    let res = app.get_as(&format!("/api/v1/plans/{}", late["id"].as_str().unwrap()), &manager).await;
    let detail: Value = res.json().await.unwrap();
    assert_eq!(change_of(&detail, "B1")["verdict"], "withheld");
    assert!(detail["evaluation"]["method"].as_str().is_some_and(|m| m.contains("Newcombe")));
}

#[tokio::test]
async fn the_baseline_stays_as_it_was_when_the_plan_was_made() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    store_at(&app, "QNM.TK.AM", "2025-02-10", 40, &[("C1", 20)]).await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    let plan = create(&app, &manager, &plan_body("QNM.TK.AM", &["C1"], "2025-Q1", "2025-05-31")).await;
    assert_eq!(plan["criteria"][0]["baseline"]["value"], 50.0);
    // Late paper forms of the baseline quarter arrive afterwards, all satisfied.
    store_at(&app, "QNM.TK.AM", "2025-03-01", 60, &[("C1", 60)]).await;
    let res = app.get_as(&format!("/api/v1/plans/{}", plan["id"].as_str().unwrap()), &manager).await;
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["criteria"][0]["baseline"]["n"], 40);
    assert_eq!(detail["criteria"][0]["baseline"]["value"], 50.0);
    assert_eq!(change_of(&detail, "C1")["before"]["value"], 50.0);
    // Its live figure has moved: the frozen one is what the plan is judged against.
    let res = app.get_as("/api/v1/indices?unit=QNM.TK.AM&period=2025-Q1", &manager).await;
    let live: Value = res.json().await.unwrap();
    let c1 = live["items"].as_array().unwrap().iter().find(|i| i["code"] == "C1").unwrap();
    assert_eq!(c1["n"], 100);
}

#[tokio::test]
async fn each_role_may_do_what_its_place_allows_and_every_change_is_audited() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    store_at(&app, "QNM.TK.AM", "2025-02-10", 30, &[("A1", 10)]).await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    let district = app.login_as(Role::UnitManager, Some("QNM.TK")).await;
    let elsewhere = app.login_as(Role::UnitManager, Some("QNM.HA")).await;
    let analyst = app.login_as(Role::Analyst, None).await;
    let admin = app.login_as(Role::Admin, None).await;
    let body = plan_body("QNM.TK.AM", &["A1"], "2025-Q1", "2025-06-30");

    // Made by the unit's manager, the district's (the unit is in its scope) and an admin;
    // refused to an analyst and to a manager of another district, with nothing stored.
    let plan = create(&app, &manager, &body).await;
    create(&app, &district, &body).await;
    create(&app, &admin, &body).await;
    error_body(app.post_as("/api/v1/plans", &analyst, &body).await, 403, "forbidden").await;
    error_body(app.post_as("/api/v1/plans", &elsewhere, &body).await, 403, "forbidden").await;
    assert_eq!(plans_stored(&app).await, 3);

    let id = plan["id"].as_str().unwrap();
    let path = format!("/api/v1/plans/{id}");
    // Read by all in scope; to a manager elsewhere it does not exist.
    for token in [&manager, &district, &analyst, &admin] {
        assert_eq!(app.get_as(&path, token).await.status(), 200);
    }
    error_body(app.get_as(&path, &elsewhere).await, 404, "not_found").await;
    let listed: Value = app.get_as("/api/v1/plans?unit=QNM", &analyst).await.json().await.unwrap();
    assert_eq!(listed["plans"].as_array().unwrap().len(), 3);
    let theirs: Value = app.get_as("/api/v1/plans", &elsewhere).await.json().await.unwrap();
    assert_eq!(theirs["plans"].as_array().unwrap().len(), 0);
    error_body(app.get_as("/api/v1/plans?unit=QNM.TK", &elsewhere).await, 403, "forbidden").await;

    // Updated and closed by its manager; an analyst may not.
    let res = app.patch_as(&path, &manager, &json!({"status": "in_progress", "responsible": "Chủ tịch UBND"})).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!((&v["status"], &v["responsible"]), (&json!("in_progress"), &json!("Chủ tịch UBND")));
    error_body(app.patch_as(&path, &analyst, &json!({"status": "done"})).await, 403, "forbidden").await;
    error_body(app.patch_as(&path, &elsewhere, &json!({"status": "done"})).await, 404, "not_found").await;
    let res = app.patch_as(&path, &manager, &json!({"status": "done"})).await;
    assert_eq!(res.status(), 200);

    // Comments: analysts, admins and the unit's managers.
    for token in [&analyst, &admin, &manager] {
        let res =
            app.post_as(&format!("{path}/comments"), token, &json!({"body": "Đề nghị báo cáo kết quả quý III."})).await;
        assert_eq!(res.status(), 201);
    }
    error_body(app.post_as(&format!("{path}/comments"), &elsewhere, &json!({"body": "x"})).await, 404, "not_found")
        .await;
    let detail: Value = app.get_as(&path, &manager).await.json().await.unwrap();
    assert_eq!(detail["status"], "done");
    assert_eq!(detail["overdue"], false);
    assert_eq!(detail["comments"].as_array().unwrap().len(), 3);

    let audit: Value = app.get_as("/api/v1/admin/audit?limit=100", &admin).await.json().await.unwrap();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "plan_created").count(), 3, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "plan_updated").count(), 2, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "plan_commented").count(), 3, "{actions:?}");

    // Overdue: active past the deadline. The district's plan is open with a 2025 deadline.
    let overdue: Value = app.get_as("/api/v1/plans?unit=QNM&overdue=true", &admin).await.json().await.unwrap();
    let overdue = overdue["plans"].as_array().unwrap();
    assert_eq!(overdue.len(), 2);
    assert!(overdue.iter().all(|p| p["overdue"] == true && p["id"] != plan["id"]));
}

#[tokio::test]
async fn bad_plans_are_refused_field_by_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    let ok = plan_body("QNM.TK.AM", &["A1"], "2025-Q1", "2025-06-30");
    let with = |key: &str, value: Value| {
        let mut b = ok.clone();
        b[key] = value;
        b
    };
    let cases = [
        (with("criteria", json!([])), "criteria"),
        (with("criteria", json!(["Z9"])), "criteria[0]"),
        (with("criteria", json!(["A1", "A1"])), "criteria[1]"),
        (with("criteria", json!(["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2"])), "criteria"),
        (with("baseline_period", json!("2025-13")), "baseline_period"),
        (with("baseline_period", json!("2999")), "baseline_period"),
        (with("deadline", json!("2025-02-30")), "deadline"),
        (with("deadline", json!("2025-03-31")), "deadline"),
        (with("title", json!("  \u{0007} ")), "title"),
        (with("actions", json!("x".repeat(4001))), "actions"),
        (with("status", json!("finished")), "status"),
        (with("form", json!("nope")), "form"),
    ];
    for (body, field) in cases {
        let e = error_body(app.post_as("/api/v1/plans", &manager, &body).await, 422, "validation_failed").await;
        assert!(e["fields"][field].is_array(), "{field}: {e}");
    }
    error_body(app.post_as("/api/v1/plans", &manager, &with("unit", json!("NOPE"))).await, 404, "not_found").await;
    error_body(app.post_as("/api/v1/plans", &manager, &json!({"unit": 5})).await, 400, "bad_request").await;
    let res = app
        .client
        .post(app.url("/api/v1/plans"))
        .bearer_auth(&manager)
        .header("content-type", "application/json")
        .body("{\"unit\": ")
        .send()
        .await
        .unwrap();
    error_body(res, 400, "bad_request").await;
    assert_eq!(plans_stored(&app).await, 0);

    // Control characters are taken out of what is kept; line breaks of the actions stay.
    let plan = create(&app, &manager, &with("title", json!("Quầy\u{0000} mới\u{001b}[31m"))).await;
    assert_eq!(plan["title"], "Quầy mới[31m");
    assert!(plan["actions"].as_str().unwrap().contains('\n'));
    let path = format!("/api/v1/plans/{}", plan["id"].as_str().unwrap());
    error_body(app.patch_as(&path, &manager, &json!({})).await, 422, "validation_failed").await;
    error_body(app.patch_as(&path, &manager, &json!({"deadline": "2024-01-01"})).await, 422, "validation_failed").await;
    error_body(app.get_as(&format!("{path}?from=soon"), &manager).await, 422, "validation_failed").await;
    error_body(app.get_as("/api/v1/plans/not-a-uuid", &manager).await, 404, "not_found").await;
    error_body(
        app.post_as(&format!("{path}/comments"), &manager, &json!({"body": ""})).await,
        422,
        "validation_failed",
    )
    .await;
    error_body(app.get("/api/v1/plans").await, 401, "unauthorized").await;
    assert_eq!(plans_stored(&app).await, 1);
}

#[tokio::test]
async fn the_console_makes_a_plan_shows_its_verdict_and_refuses_what_the_api_refuses() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    store_at(&app, "QNM.TK.AM", "2025-02-10", 100, &[("B1", 50)]).await;
    store_at(&app, "QNM.TK.AM", "2025-08-10", 100, &[("B1", 85)]).await;
    let (client, _) = console_client(&app, Role::UnitManager, Some("QNM.TK.AM")).await;
    let page = client.get(app.url("/console/plans")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Chưa có kế hoạch"), "{page}");
    let csrf = csrf_of(&page);
    let form = |title: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("unit", "QNM.TK.AM".to_string()),
            ("criteria", "b1".to_string()),
            ("baseline_period", "2025-Q1".to_string()),
            ("title", title.to_string()),
            ("actions", "Thêm quầy tiếp nhận.".to_string()),
            ("responsible", "Chủ tịch UBND phường".to_string()),
            ("deadline", "2025-06-30".to_string()),
        ]
    };
    // An empty title: the form comes back with the message and what was typed.
    let res = client.post(app.url("/console/plans")).form(&form("")).send().await.unwrap();
    assert_eq!(res.status(), 422);
    let again = res.text().await.unwrap();
    assert!(again.contains("Thêm quầy tiếp nhận.") && again.contains("2025-Q1"), "{again}");
    assert_eq!(plans_stored(&app).await, 0);
    // Without the CSRF token: refused.
    let mut forged = form("Giả mạo");
    forged[0].1 = "wrong".into();
    let res = client.post(app.url("/console/plans")).form(&forged).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(plans_stored(&app).await, 0);

    let res = client.post(app.url("/console/plans")).form(&form("Rút ngắn thời gian chờ")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let detail = client.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(detail.contains("data-code=\"B1\" data-verdict=\"improved\""), "{detail}");
    assert!(detail.contains("Đã cải thiện") && detail.contains("+35.0"), "{detail}");

    // Status and a comment through their forms.
    let csrf = csrf_of(&detail);
    let res = client.post(app.url(&to)).form(&[("csrf", csrf.as_str()), ("status", "done")]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = client
        .post(app.url(&format!("{to}/comments")))
        .form(&[("csrf", csrf.as_str()), ("body", "Đã bố trí quầy thứ hai.")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let detail = client.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(detail.contains("Đã bố trí quầy thứ hai.") && detail.contains("Đã hoàn thành"), "{detail}");

    // An analyst reads and comments, and has no form to make or change a plan.
    let (analyst, _) = console_client(&app, Role::Analyst, None).await;
    let list = analyst.get(app.url("/console/plans")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("Rút ngắn thời gian chờ") && !list.contains("name=\"baseline_period\""), "{list}");
    let seen = analyst.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(!seen.contains("name=\"status\""));
    let csrf = csrf_of(&seen);
    let res = analyst.post(app.url(&to)).form(&[("csrf", csrf.as_str()), ("status", "open")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let list = client.get(app.url("/console/plans")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("Đã hoàn thành"), "the analyst changed nothing: {list}");
}
