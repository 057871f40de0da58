//! The console's unit page tells a unit head the truth: each element against the province's
//! value for that element, only criteria below the province under "lost points" with the
//! differences larger than their uncertainty marked, the months the trend leaves out and
//! why; and its charts and printed report hold up in a real browser
//! (`tests/browser/console-charts.mjs`).

use serde_json::{Value, json};
use sipas::auth::{self, Role};
use sipas::store;

use crate::browser::{node, screenshots, skipped};
use crate::helpers::{PASSWORD, TestApp, between, console_client, spawn_app_with, valid_submission};

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

async fn indices(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app.get_as(&format!("/api/v1/indices?{query}"), token).await;
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

/// The values of an attribute on the elements of one section of a page.
fn attributes(html: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    html.match_indices(&needle).filter_map(|(at, _)| between(&html[at..], &needle, "\"")).collect()
}

/// The part of a page from one marker to the next `<h2`.
fn section<'a>(html: &'a str, marker: &str) -> &'a str {
    let from = html.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let rest = &html[from..];
    let to = rest[1..].find("<h2").map_or(rest.len(), |i| i + 1);
    &rest[..to]
}

#[tokio::test]
async fn each_element_is_compared_with_the_provinces_value_for_that_element() {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    let (client, _) = console_client(&app, Role::Analyst, None).await;
    let province = indices(&app, &token, "unit=QNM&period=2024").await;
    let unit = indices(&app, &token, "unit=QNM.TK.HH&period=2024").await;
    let html = page(&client, &app, "/console/units/QNM.TK.HH?period=2024").await;
    let chart = section(&html, "data-chart=\"elements\"");
    let markers = attributes(chart, "data-reference");
    let groups = province["groups"].as_array().unwrap();
    assert_eq!(markers.len(), groups.len(), "one marker per element: {markers:?}");
    for g in groups {
        let want = format!("{:.1}", g["value"].as_f64().unwrap());
        assert!(markers.contains(&want), "the province's {} ({want}) is marked: {markers:?}", g["code"]);
    }
    // Not the province's overall SIPAS drawn across every element.
    let overall = format!("{:.1}", province["index"]["value"].as_f64().unwrap());
    assert!(!markers.iter().all(|m| *m == overall));
    let values = attributes(chart, "data-value");
    for g in unit["groups"].as_array().unwrap() {
        assert!(values.contains(&format!("{:.1}", g["value"].as_f64().unwrap())), "{values:?}");
    }

    // "Lost points": only criteria below the province, each gap as the API's figures give it,
    // and "clearly below" exactly when the printed interval lies below zero.
    let lost = section(&html, "data-table=\"lost\"");
    let gaps = attributes(lost, "data-gap");
    assert!(!gaps.is_empty(), "Hòa Hương is below the province somewhere");
    let item = |f: &Value, code: &str| {
        f["items"].as_array().unwrap().iter().find(|i| i["code"] == code).unwrap()["value"].as_f64().unwrap()
    };
    for row in lost.split("<tbody data-code=\"").skip(1) {
        let code = row.split('"').next().unwrap();
        let gap: f64 = between(row, "data-gap=\"", "\"").unwrap().parse().unwrap();
        let low: f64 = between(row, "data-low=\"", "\"").unwrap().parse().unwrap();
        let high: f64 = between(row, "data-high=\"", "\"").unwrap().parse().unwrap();
        let clear = between(row, "data-clear=\"", "\"").unwrap() == "true";
        assert!(gap < 0.0, "{code}: only criteria below the province are listed ({gap})");
        assert!((gap - (item(&unit, code) - item(&province, code))).abs() < 0.051, "{code}: {gap}");
        assert!(low <= gap && gap <= high, "{code}: the interval holds the gap");
        assert_eq!(clear, high < 0.0, "{code}: [{low}, {high}] marked {clear}");
        assert!(row.contains(if clear { "Rõ rệt" } else { "Chưa rõ" }), "{code}: the mark is in words");
    }
}

/// 12 responses at each of two communes, every criterion at one level, and none to the
/// complaints element (E): the province's E is withheld.
async fn two_communes() -> TestApp {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.seed_reference_units().await;
    for (unit, level) in [("QNM.TK.AM", 5), ("QNM.HA.MA", 3)] {
        for _ in 0..12 {
            let mut body = valid_submission(unit);
            for (code, v) in body["answers"].as_object_mut().unwrap() {
                *v = if code.starts_with('E') { Value::Null } else { json!(level) };
            }
            assert_eq!(app.submit(&body).await.status(), 201);
        }
    }
    // Four at a third commune: under k everywhere. Six more, without E, at a fourth beside it,
    // so that the two small communes hide each other and Tam Kỳ's other commune stays shown.
    for _ in 0..4 {
        assert_eq!(app.submit(&valid_submission("QNM.TK.HH")).await.status(), 201);
    }
    for _ in 0..6 {
        let mut body = valid_submission("QNM.TK.TT");
        for (code, v) in body["answers"].as_object_mut().unwrap() {
            if code.starts_with('E') {
                *v = Value::Null;
            }
        }
        assert_eq!(app.submit(&body).await.status(), 201);
    }
    app
}

#[tokio::test]
async fn lost_points_lists_only_criteria_below_the_province_and_says_so_when_none_is() {
    let app = two_communes().await;
    let (client, _) = console_client(&app, Role::Analyst, None).await;

    // All 5s: nothing below the province, said in words, no table.
    let html = page(&client, &app, "/console/units/QNM.TK.AM").await;
    let lost = section(&html, "data-section=\"lost\"");
    assert!(lost.contains("Không có tiêu chí nào thấp hơn toàn tỉnh"), "{lost}");
    assert!(!lost.contains("data-gap"));
    // Nobody there answered the complaints criteria: said, not counted as "not below".
    assert!(lost.contains("4 tiêu chí không so sánh được: dưới 10 câu trả lời"), "{lost}");

    // All 3s against a province at 50%: every answered criterion clearly below.
    let html = page(&client, &app, "/console/units/QNM.HA.MA").await;
    let lost = section(&html, "data-table=\"lost\"");
    let clear = attributes(lost, "data-clear");
    assert!(!clear.is_empty() && clear.iter().all(|c| c == "true"), "{clear:?}");
    assert!(attributes(lost, "data-gap").iter().all(|g| g.parse::<f64>().unwrap() < -40.0));

    // The province's complaints element is withheld: its marker shows no value.
    let chart = section(&html, "data-chart=\"elements\"");
    let markers = attributes(chart, "data-reference");
    assert_eq!(markers.len(), 4, "A–D marked, E withheld: {markers:?}");
    assert!(chart.contains("Toàn tỉnh: dưới 10 phiếu"), "{chart}");

    // A commune under k: its elements withheld, no value on its bars, nothing listed.
    let html = page(&client, &app, "/console/units/QNM.TK.HH").await;
    let chart = section(&html, "data-chart=\"elements\"");
    assert!(attributes(chart, "data-value").is_empty(), "withheld bars carry no value");
    assert!(section(&html, "data-section=\"lost\"").contains("dưới 10 phiếu"));

    // The province's own page has nothing to compare with, and says so.
    let html = page(&client, &app, "/console/units/QNM").await;
    assert!(section(&html, "data-section=\"lost\"").contains("không có cấp trên để so sánh"));
}

#[tokio::test]
async fn the_trend_says_why_a_month_has_no_point() {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    let (client, _) = console_client(&app, Role::Analyst, None).await;
    // Tam Thăng: no response in November 2024, fewer than 10 in every other month.
    let html = page(&client, &app, "/console/units/QNM.TK.TT?period=2024").await;
    let note = between(&html, "<ul class=\"chart-note\"", "</ul>").expect("a note under the trend");
    let none = between(&note, "Không có phiếu:", "</li>").unwrap();
    let withheld = between(&note, "Dưới 10 phiếu, không công bố:", "</li>").unwrap();
    assert!(none.contains("2024-11") && !none.contains("2024-02"), "{none}");
    assert!(withheld.contains("2024-02 (1 phiếu)") && !withheld.contains("2024-11"), "{withheld}");
    // In the chart too, at each missing month.
    let chart = section(&html, "data-chart=\"trend\"");
    assert_eq!(attributes(chart, "data-missing").len(), 12, "{chart}");
    // A month with a point is not in the note: Minh An has 10 or more in January.
    let html = page(&client, &app, "/console/units/QNM.HA.MA?period=2024").await;
    let note = between(&html, "<ul class=\"chart-note\"", "</ul>").expect("a note under the trend");
    let withheld = between(&note, "Dưới 10 phiếu, không công bố:", "</li>").unwrap();
    assert!(withheld.contains("2024-02 (5 phiếu)") && !withheld.contains("2024-01"), "{note}");
    // January is withheld only to protect February and March (Q1 minus January would give
    // them): said apart, without its count.
    let protecting = between(&note, "Ẩn để bảo vệ một nhóm khác:", "</li>").unwrap();
    assert!(protecting.contains("2024-01") && !protecting.contains("phiếu"), "{note}");
}

#[tokio::test]
async fn console_charts_fit_phones_and_the_report_prints_with_a_footer_on_every_page() {
    if skipped() {
        return;
    }
    assert!(
        std::process::Command::new("pdftotext").arg("-v").output().is_ok(),
        "install poppler-utils (pdftotext, pdftoppm), or set SIPAS_SKIP_BROWSER=1"
    );
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    // A long address must not stretch the header.
    let email =
        format!("analyst.with.a.rather.long.address-{}@so-noi-vu.quangnam.gov.vn", uuid::Uuid::new_v4().simple());
    store::users::insert(&app.db, &email, auth::hash_password(PASSWORD).unwrap(), Role::Analyst, None).await.unwrap();
    let config = json!({
        "base": app.address,
        "email": email,
        "password": PASSWORD,
        "out": screenshots("console-charts"),
        "pages": [
            ["overview", "/console?period=2024"],
            ["unit", "/console/units/QNM.TK.HH?period=2024"],
            ["unit-small-months", "/console/units/QNM.HA.MA?period=2024"],
            // Last: switching to English sets a cookie for the pages after it.
            ["unit-en", "/console/lang/en?next=%2Fconsole%2Funits%2FQNM.TK.HH%3Fperiod%3D2024"],
        ],
        "report": "/console/units/QNM.TK.HH/report?period=2024",
        "footer": ["Phường Hòa Hương", "2024-01-01 – 2024-12-31", "In ngày"],
        "footer_page": "Trang {n} / {total}",
    });
    let (ok, stdout) = node(&["console-charts.mjs", &config.to_string()]).await;
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or(json!({}));
    let failed: Vec<&Value> =
        results["steps"].as_array().map(|s| s.iter().filter(|s| s["ok"] != true).collect()).unwrap_or_default();
    for s in &failed {
        println!("FAILED {}: {}", s["name"], s["detail"]);
    }
    println!("axe: {}", results["axe"]);
    println!("screenshots and report.pdf in {}", config["out"]);
    assert!(ok && failed.is_empty(), "{} browser steps failed", failed.len());
    for (page, violations) in results["axe"].as_object().unwrap() {
        assert_eq!(violations.as_array().unwrap().len(), 0, "axe on {page}: {violations}");
    }
    assert!(results["pdf"]["pages"].as_u64().unwrap() > 1);
}
