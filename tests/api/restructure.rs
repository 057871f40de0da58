//! Two-tier local government (issue 11): restructuring plans (merge, split, rename, move,
//! end) applied all or nothing, figures that follow the lineage, old posters and receipt
//! codes that keep working, on SQLite and PostgreSQL.

use chrono::NaiveDate;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{response, unit, unit_link};
use sipas::units::restructure::{Step, parse_csv};

use crate::helpers::{TestApp, error_body, spawn_app, valid_submission};

const HEADER: &str = "effective,operation,old,new,name_vi,parent,level\n";

/// Quảng Nam's communes as merged on 1 July 2025 (Nghị quyết 1659/NQ-UBTVQH15): An Mỹ into
/// phường Tam Kỳ, Hòa Hương and Tam Thăng into new wards, Minh An renamed Hội An and moved
/// up once the districts are gone, the Department of Justice merged into Home Affairs.
const MERGER: &str = "2025-07-01,merge,QNM.TK.AM,QNM.TAMKY,Phường Tam Kỳ,QNM,ward
2025-07-01,merge,QNM.TK.HH;QNM.TK.TT,QNM.HUONGTRA,Phường Hương Trà,QNM,ward
2025-07-01,end,QNM.TK,,,,
2025-07-01,rename,QNM.HA.MA,,Phường Hội An,,
2025-07-01,move,QNM.HA.MA,,,QNM,ward
2025-07-01,end,QNM.HA,,,,
2025-07-01,merge,QNM.STP,QNM.SNV,,,
";

fn today() -> NaiveDate {
    sipas::vietnam_today()
}

async fn restructure(app: &TestApp, plan: &str, dry_run: bool) -> Result<Vec<Step>, Vec<String>> {
    let rows = parse_csv(&format!("{HEADER}{plan}"))?;
    sipas::store::units::restructure(&app.db, &rows, today(), dry_run).await.unwrap()
}

async fn indices(app: &TestApp, token: &str, unit: &str, period: &str) -> Value {
    let res = app.get_as(&format!("/api/v1/indices?unit={unit}&period={period}"), token).await;
    assert_eq!(res.status(), 200, "{unit} {period}");
    res.json().await.unwrap()
}

async fn units_of_responses(app: &TestApp) -> Vec<i32> {
    let mut ids: Vec<i32> =
        response::Entity::find().all(&app.db).await.unwrap().into_iter().map(|r| r.unit_id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_merger_keeps_every_response_and_figures_follow_the_lineage() {
    let app = spawn_app().await;
    app.import_reference().await;
    let analyst = app.login_as(Role::Analyst, None).await;
    let before = indices(&app, &analyst, "QNM", "2024").await;
    let district = indices(&app, &analyst, "QNM.TK", "2024").await;
    let held = units_of_responses(&app).await;

    // The dry run says what would change and changes nothing.
    let steps = restructure(&app, MERGER, true).await.unwrap();
    let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert!(text.contains(&"line 3, 2025-07-01: QNM.TK.TT merged into QNM.HUONGTRA".to_string()), "{text:#?}");
    assert!(
        text.contains(&"line 5, 2025-07-01: rename QNM.HA.MA from \"Phường Minh An\" to \"Phường Hội An\"".to_string())
    );
    assert_eq!(unit::Entity::find().count(&app.db).await.unwrap(), 9, "a dry run creates nothing");
    assert_eq!(unit_link::Entity::find().count(&app.db).await.unwrap(), 0);

    restructure(&app, MERGER, false).await.unwrap();
    assert_eq!(units_of_responses(&app).await, held, "no stored response changed its unit");
    assert_eq!(unit::Entity::find().count(&app.db).await.unwrap(), 11, "two wards created, nothing deleted");
    assert_eq!(unit_link::Entity::find().count(&app.db).await.unwrap(), 4);

    // The province's 2024 is the same in today's tree; the new ward's 2024 is its
    // predecessors' pooled, the ended district's communes' figures now sit under the wards.
    let after = indices(&app, &analyst, "QNM", "2024").await;
    assert_eq!(after["n"], before["n"]);
    assert_eq!(after["index"], before["index"], "the province stays comparable");
    let huong_tra = indices(&app, &analyst, "QNM.HUONGTRA", "2024").await;
    assert_eq!(huong_tra["n"], 110 + 29, "Hòa Hương and Tam Thăng pooled");
    let tam_ky = indices(&app, &analyst, "QNM.TAMKY", "2024").await;
    assert_eq!(tam_ky["n"], 139);
    assert_eq!(
        tam_ky["n"].as_u64().unwrap() + huong_tra["n"].as_u64().unwrap() + 53,
        district["n"].as_u64().unwrap(),
        "the old district's communes and its own office: nothing lost"
    );

    // Rankings and tables list what exists today: no ended unit.
    let res = app.get_as("/api/v1/rankings?within=QNM&period=2024&level=ward", &analyst).await;
    assert_eq!(res.status(), 200);
    let rankings: Value = res.json().await.unwrap();
    let mut ranked: Vec<&str> =
        rankings["units"].as_array().unwrap().iter().map(|u| u["unit"].as_str().unwrap()).collect();
    ranked.sort();
    assert_eq!(ranked, ["QNM.HA.MA", "QNM.HUONGTRA", "QNM.TAMKY"], "{rankings}");
    let table = indices(&app, &analyst, "QNM", "2024").await;
    assert!(!table.to_string().contains("QNM.TK.AM"), "ended units are not listed");

    // A submission to an old address counts for the successor.
    let res = app.submit(&valid_submission("QNM.TK.HH")).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let new_ward = sipas::store::units::by_code(&app.db, "QNM.HUONGTRA").await.unwrap().unwrap();
    let stored = units_of_responses(&app).await;
    assert_eq!(stored.iter().filter(|u| **u == new_ward.id).count(), 1, "stored at Hương Trà");

    // The merge is audited.
    let admin = app.login_as(Role::Admin, None).await;
    let audit: Value = app.get_as("/api/v1/admin/audit?action=units_restructured", &admin).await.json().await.unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit[0]["details"]["created"], 2);
    assert_eq!(audit[0]["details"]["ended"], 6);
}

#[tokio::test]
async fn old_posters_lead_to_the_successor_and_old_receipt_codes_stay_valid() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    let issued: Value =
        app.post_as("/api/v1/units/QNM.TK.AM/codes", &admin, &json!({"count": 1})).await.json().await.unwrap();
    let code = issued["codes"][0].as_str().unwrap().to_string();
    restructure(&app, MERGER, false).await.unwrap();

    // The QR poster's address: a redirect to the successor, which names the old office.
    let res = app.get(&format!("/s/QNM.TK.AM?code={code}")).await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("/s/QNM.TAMKY?tu=QNM.TK.AM&code={code}"));
    let page = app.get(&to).await.text().await.unwrap();
    assert!(page.contains("Phường An Mỹ nay là Phường Tam Kỳ"), "{page}");

    // The code printed on a receipt before the merger unlocks one response, once.
    let mut body = valid_submission("QNM.TK.AM");
    body["code"] = json!(code);
    assert_eq!(app.submit(&body).await.status(), 201);
    let mut again = valid_submission("QNM.TAMKY");
    again["code"] = json!(code);
    let res = app.submit(&again).await;
    let err = error_body(res, 422, "validation_failed").await;
    assert!(err["fields"]["code"].is_array(), "{err}");
}

#[tokio::test]
async fn a_split_unit_lets_the_citizen_choose_and_a_bad_plan_changes_nothing() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    // One good row and two bad ones: refused whole, every bad row named.
    let errors = restructure(
        &app,
        "2025-07-01,rename,QNM.SNV,,Sở Nội vụ mới,,\n2025-07-01,merge,QNM.NOPE,QNM.TAMKY,Phường Tam Kỳ,QNM,ward\n2025-07-01,end,QNM.TK,,,,\n",
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(errors[0], "line 3: old: no unit QNM.NOPE");
    assert!(errors.iter().any(|e| e.starts_with("line 4: QNM.TK ends but QNM.TK.AM under it does not")), "{errors:?}");
    let snv = sipas::store::units::by_code(&app.db, "QNM.SNV").await.unwrap().unwrap();
    assert_eq!(snv.name_vi, "Sở Nội vụ", "the good row was not applied either");

    restructure(
        &app,
        "2025-07-01,split,QNM.TK.TT,QNM.TK.TT1,Xã Tam Thăng 1,QNM.TK,commune\n2025-07-01,split,QNM.TK.TT,QNM.TK.TT2,Xã Tam Thăng 2,QNM.TK,commune\n",
        false,
    )
    .await
    .unwrap();
    let page = app.get("/s/QNM.TK.TT").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("/s/QNM.TK.TT1?tu=QNM.TK.TT") && page.contains("/s/QNM.TK.TT2?tu=QNM.TK.TT"), "{page}");
    let err = error_body(app.submit(&valid_submission("QNM.TK.TT")).await, 422, "validation_failed").await;
    let message = err["fields"]["unit"][0].as_str().unwrap();
    assert!(message.contains("QNM.TK.TT1") && message.contains("QNM.TK.TT2"), "{message}");
    assert_eq!(app.response_count().await, 0);
}

/// The demo is today's Đà Nẵng with its history: Quảng Nam's 2024 responses count in the
/// city's and in the new wards' 2024 figures, the old poster of Phường An Mỹ leads to Phường
/// Tam Kỳ, and the 2026 rankings list today's wards.
#[tokio::test]
async fn the_demo_is_da_nang_with_quang_nams_history_flowing_into_it() {
    let app = spawn_app().await;
    let report = sipas::demo::seed(&app.state, 3000, 11).await.unwrap();
    assert_eq!(report.units_created, 73);
    let analyst = app.login_as(Role::Analyst, None).await;
    let tree = sipas::store::units::tree(&app.db).await.unwrap();
    let count_2024 = |ids: Vec<i32>| {
        let db = app.db.clone();
        async move {
            use sea_orm::{ColumnTrait, QueryFilter};
            response::Entity::find()
                .filter(response::Column::UnitId.is_in(ids))
                .filter(response::Column::FormId.eq("sipas-2017"))
                .filter(response::Column::Flagged.eq(false))
                .filter(response::Column::SurveyDate.between(
                    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                    NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
                ))
                .count(&db)
                .await
                .unwrap()
        }
    };
    let city = tree.by_code("DN").unwrap();
    let all_2024 = count_2024(tree.all().iter().map(|u| u.id).collect()).await;
    assert!(all_2024 > 500, "{all_2024}");
    assert_eq!(indices(&app, &analyst, "DN", "2024").await["n"], all_2024, "Quảng Nam's 2024 is in today's city");
    let tam_ky = tree.by_code("DN.TAMKY").unwrap();
    let predecessors: Vec<String> =
        tree.lineage(tam_ky.id).iter().map(|id| tree.get(*id).unwrap().code.clone()).collect();
    assert_eq!(predecessors.len(), 3, "{predecessors:?}");
    let n = count_2024(tree.lineage(tam_ky.id)).await;
    assert_eq!(indices(&app, &analyst, "DN.TAMKY", "2024").await["n"], n, "Tam Kỳ's 2024 is its three wards'");
    assert!(tree.by_code("QNM").unwrap().valid_to.is_some() && city.valid_to.is_none());
    let res = app.get("/s/QNM.TK.AM").await;
    assert_eq!(res.headers()["location"], "/s/DN.TAMKY?tu=QNM.TK.AM");
    // 2026 against 2025, whose first half is the predecessors'.
    let this_year = 2026;
    let rankings: Value = app
        .get_as(&format!("/api/v1/rankings?within=DN&period={this_year}&level=ward"), &analyst)
        .await
        .json()
        .await
        .unwrap();
    let ranked = rankings["units"].as_array().unwrap();
    assert_eq!(ranked.len(), 13, "the commune tier today: 11 wards, Xã Hòa Vang, Đặc khu Hoàng Sa: {rankings}");
    assert!(ranked.iter().all(|u| u["unit"].as_str().unwrap().starts_with("DN.")), "{rankings}");
    // This year against last year: last year's first half comes from the predecessors.
    let tam_ky = ranked.iter().find(|u| u["unit"] == "DN.TAMKY").unwrap();
    assert_eq!(tam_ky["previous_basis"], "predecessors", "{tam_ky}");
    let (console, _) = crate::helpers::console_client(&app, Role::Analyst, None).await;
    let page = console.get(app.url(&format!("/console/rankings?period={this_year}&level=ward"))).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("so với các đơn vị tiền thân"), "the console says how it compares");
}

/// The indices table's rows as (unit, name, parent, n, index, withheld), sorted.
async fn table(app: &TestApp, token: &str, query: &str) -> Vec<(String, String, Value, Value, Value, Value)> {
    let res = app.get_as(&format!("/api/v1/exports/indices.json?{query}"), token).await;
    assert_eq!(res.status(), 200, "{query}");
    let body: Value = res.json().await.unwrap();
    let mut rows: Vec<_> = body["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (s("unit"), s("name"), u["parent"].clone(), u["n"].clone(), u["index"].clone(), u["withheld"].clone())
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test]
async fn the_tree_as_at_a_day_before_the_merger_is_the_tree_as_it_was() {
    let app = spawn_app().await;
    app.import_reference().await;
    let analyst = app.login_as(Role::Analyst, None).await;
    let before = table(&app, &analyst, "within=QNM&period=2024").await;
    assert_eq!(before.len(), 9, "{before:#?}");
    restructure(&app, MERGER, false).await.unwrap();

    // The day before: the same units, names, parents and figures as before the plan (the
    // district adds up its communes again, Minh An has its old name and parent).
    let then = table(&app, &analyst, "within=QNM&period=2024&as_at=2025-06-30").await;
    assert_eq!(then, before, "the tree as at 30 June 2025 is the tree as it was");
    let minh_an = then.iter().find(|r| r.0 == "QNM.HA.MA").unwrap();
    assert_eq!((minh_an.1.as_str(), &minh_an.2), ("Phường Minh An", &json!("QNM.HA")));
    // Any earlier day gives the same tree; today's tree has the wards and not the district's sum.
    assert_eq!(table(&app, &analyst, "within=QNM&period=2024&as_at=2020-01-01").await, before);
    let now = table(&app, &analyst, "within=QNM&period=2024").await;
    let tk_now = now.iter().find(|r| r.0 == "QNM.TK").map(|r| r.3.clone());
    let tk_then = then.iter().find(|r| r.0 == "QNM.TK").map(|r| r.3.clone());
    assert_ne!(tk_now, tk_then, "today the ended district holds only its own office's responses");
    let later = table(&app, &analyst, "within=QNM&period=2024&as_at=2025-07-01").await;
    let codes: Vec<&str> = later.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(codes, ["QNM", "QNM.HA.MA", "QNM.HUONGTRA", "QNM.SNV", "QNM.TAMKY"], "only what existed that day");

    // The file says which tree it is; a unit that did not exist that day, or a bad day, is refused.
    let res = app.get_as("/api/v1/exports/indices.csv?within=QNM&period=2024&as_at=2025-06-30", &analyst).await;
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("as-at-2025-06-30"));
    for bad in ["within=QNM.HUONGTRA&as_at=2025-06-30", "within=QNM&as_at=30/06/2025", "within=QNM&as_at=2025-02-30"] {
        let res = app.get_as(&format!("/api/v1/exports/indices.json?period=2024&{bad}"), &analyst).await;
        assert!(error_body(res, 422, "validation_failed").await["fields"]["as_at"].is_array(), "{bad}");
    }

    // A unit manager of a ward sees no former unit that held communes now elsewhere.
    let ward = app.login_as(Role::UnitManager, Some("QNM.HUONGTRA")).await;
    let res = app.get_as("/api/v1/exports/indices.json?within=QNM.TK&period=2024&as_at=2025-06-30", &ward).await;
    assert_eq!(res.status(), 403, "the ended district is not the ward's");

    // The trend of the new ward marks the merger, and the console draws it.
    let trend: Value = app.get_as("/api/v1/trends?unit=QNM.HUONGTRA&period=2025", &analyst).await.json().await.unwrap();
    let changes = trend["changes"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> =
        changes.iter().map(|c| (c["change"].as_str().unwrap(), c["effective"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("merged_in", "2025-07-01"), ("merged_in", "2025-07-01"), ("created", "2025-07-01")]);
    let none: Value = app.get_as("/api/v1/trends?unit=QNM.HUONGTRA&period=2024", &analyst).await.json().await.unwrap();
    assert_eq!(none["changes"], json!([]), "no change within 2024");
    let (console, _) = crate::helpers::console_client(&app, Role::Analyst, None).await;
    let page = console.get(app.url("/console/units/QNM.HUONGTRA?period=2025")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("data-break=\"2025-07\""), "a rule before July 2025");
    assert!(html.contains("01/07/2025: Phường Hòa Hương (QNM.TK.HH), Xã Tam Thăng (QNM.TK.TT) sáp nhập vào"), "{html}");
    // The ended district's page shows it as it stood on its last day, with its communes.
    let page = console.get(app.url("/console/units/QNM.TK?period=2024")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Như tại ngày 30/06/2025") && html.contains("QNM.TK.AM"), "{html}");
    let n_then = tk_then.unwrap().as_u64().unwrap();
    assert!(html.contains(&format!("<td class=\"num\">{n_then}</td>")), "the district's 2024 as it was: {n_then}");
}

/// What a province analyst sees of the merger in the demo, in Chromium on a phone (390 px)
/// and a desk screen (1366 px): a merged ward's page (the trend marked where its
/// predecessors end, its history), the ended province of Quảng Nam as it stood on its last
/// day, and the city's rankings against the predecessors. Screenshots in
/// `target/screenshots/lineage`.
#[tokio::test]
async fn the_lineage_pages_read_well_on_a_phone_and_a_desk_screen() {
    if crate::browser::skipped() {
        return;
    }
    let app = crate::helpers::spawn_app_with(|s| s.cookie_secure = false).await;
    sipas::demo::seed(&app.state, 3000, 11).await.unwrap();
    let email = format!("analyst-{}@sonoivu.danang.gov.vn", uuid::Uuid::new_v4().simple());
    let hash = sipas::auth::hash_password(crate::helpers::PASSWORD).unwrap();
    sipas::store::users::insert(&app.db, &email, hash, Role::Analyst, None).await.unwrap();
    let config = json!({
        "base": app.address,
        "email": email,
        "password": crate::helpers::PASSWORD,
        "out": crate::browser::screenshots("lineage"),
        "widths": [390, 1366],
        "pages": [
            ["merged-ward", "/console/units/DN.TAMKY?period=2025"],
            ["former-province", "/console/units/QNM?period=2024"],
            ["city-as-at", "/console/units/DN?period=2024&as_at=2025-06-30"],
        ],
        "expect": {
            "merged-ward": ["Lịch sử đơn vị", "┆ 01/07/2025:", "sáp nhập vào; số liệu trước đó cộng các đơn vị tiền thân"],
            "former-province": ["Đơn vị này đã kết thúc từ ngày 01/07/2025", "Như tại ngày 30/06/2025", "Thành phố Tam Kỳ"],
            "city-as-at": ["Như tại ngày 30/06/2025", "Quận Hải Châu"],
        },
    });
    let (ok, stdout) = crate::browser::node(&["console-charts.mjs", &config.to_string()]).await;
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or(json!({}));
    let failed: Vec<&Value> =
        results["steps"].as_array().map(|s| s.iter().filter(|s| s["ok"] != true).collect()).unwrap_or_default();
    for s in &failed {
        println!("FAILED {}: {}", s["name"], s["detail"]);
    }
    println!("screenshots in {}", config["out"]);
    assert!(ok && failed.is_empty(), "{} browser steps failed", failed.len());
    for (page, violations) in results["axe"].as_object().unwrap() {
        assert_eq!(violations.as_array().unwrap().len(), 0, "axe on {page}: {violations}");
    }
}
