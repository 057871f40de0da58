//! The survey pages in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/*.mjs`), with axe-core and Lighthouse. Needs `chromium` and
//! `tests/browser/node_modules` (`.ci/run` installs both); set SIPAS_SKIP_BROWSER=1 to
//! leave these tests out on a machine without them.

use std::path::PathBuf;
use std::process::Command;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{code, response};

use crate::helpers::{TestApp, spawn_app_with};

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub(crate) fn skipped() -> bool {
    if std::env::var("SIPAS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("browser tests skipped: SIPAS_SKIP_BROWSER=1");
        return true;
    }
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() || std::env::var("CHROMIUM").is_ok(),
        "install Debian's chromium (apt-get install chromium), or set SIPAS_SKIP_BROWSER=1"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "run: (cd tests/browser && npm ci), or set SIPAS_SKIP_BROWSER=1"
    );
    false
}

/// Runs a node script off the test's runtime: the application's database pool lives on that
/// runtime and must keep serving while the browser talks to it.
pub(crate) async fn node(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || Command::new("node").args(&args).current_dir(browser_dir()).output())
        .await
        .expect("join")
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout)
}

pub(crate) fn screenshots(name: &str) -> String {
    let dir = std::env::var("SIPAS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("sipas-screenshots"));
    let db = if std::env::var("TEST_DATABASE_URL").is_ok() { "postgres" } else { "sqlite" };
    dir.join(db).join(name).display().to_string()
}

async fn count(app: &TestApp, unit: &str) -> Vec<response::Model> {
    let id = sipas::store::units::by_code(&app.db, unit).await.unwrap().unwrap().id;
    response::Entity::find().filter(response::Column::UnitId.eq(id)).all(&app.db).await.unwrap()
}

#[tokio::test]
async fn the_survey_works_in_chromium_on_a_phone_online_offline_with_codes_and_at_a_kiosk() {
    if skipped() {
        return;
    }
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    assert_eq!(
        app.patch_as("/api/v1/admin/units/QNM.TK.HH", &admin, &json!({"requires_code": true})).await.status(),
        200
    );
    let issued: Value =
        app.post_as("/api/v1/units/QNM.TK.HH/codes", &admin, &json!({"count": 1})).await.json().await.unwrap();
    let kiosk: Value = app
        .post_as("/api/v1/admin/units/QNM.SNV/keys", &admin, &json!({"kind": "kiosk", "name": "Máy tính bảng quầy 1"}))
        .await
        .json()
        .await
        .unwrap();
    let enroll = kiosk["enroll_url"].as_str().unwrap();
    let config = json!({
        "base": app.address,
        "code": issued["codes"][0],
        "kiosk": &enroll[enroll.find("/k/").unwrap()..],
        "out": screenshots("survey"),
    });
    let (ok, stdout) = node(&["survey.mjs", &config.to_string()]).await;
    println!("{stdout}");
    assert!(ok, "browser steps failed:\n{stdout}");

    let am = count(&app, "QNM.TK.AM").await;
    assert_eq!(am.len(), 1);
    assert_eq!(
        (am[0].service.as_deref(), am[0].comment.as_deref()),
        (Some("ho_tich"), Some("Cán bộ hướng dẫn rất tận tình."))
    );
    assert!(!am[0].flagged);
    assert_eq!(sipas::store::responses::count_in(&app.db, &[am[0].unit_id]).await.unwrap(), 1);
    let hh = count(&app, "QNM.TK.HH").await;
    assert_eq!((hh.len(), hh[0].respondent_type.as_str()), (1, "organization"));
    assert!(code::Entity::find().all(&app.db).await.unwrap().is_empty(), "the code is used up");
    assert_eq!(count(&app, "QNM.HA.MA").await.len(), 1, "offline then online: exactly one response");
    assert_eq!(count(&app, "QNM.TK.TT").await.len(), 1, "the plain form, without a script");
    let snv = count(&app, "QNM.SNV").await;
    assert_eq!((snv.len(), snv[0].channel.as_str()), (1, "kiosk"));
}

#[tokio::test]
async fn lighthouse_scores_the_survey_page_on_the_mobile_profile() {
    if skipped() {
        return;
    }
    let app = spawn_app_with(|_| {}).await;
    app.seed_reference_units().await;
    let url = format!("{}/s/QNM.TK.AM", app.address);
    let out = screenshots("lighthouse");
    let (ok, stdout) = node(&["lighthouse.mjs", &url, &out]).await;
    assert!(ok, "lighthouse failed:\n{stdout}");
    let scores: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    println!("lighthouse (report in {out}/lighthouse.json): {scores}");
    assert_eq!(scores["formFactor"], "mobile");
    // Accessibility is a property of the page: it must be perfect. Performance depends on
    // the machine, so it is printed (and recorded in the closing note), not asserted.
    assert_eq!(scores["accessibility"], 100, "{scores}");
    assert!(scores["performance"].as_u64().is_some());
}
