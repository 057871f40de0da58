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
