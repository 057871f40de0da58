//! The survey pages in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/*.mjs`), with axe-core and Lighthouse. Needs `chromium` and
//! `tests/browser/node_modules` (`.ci/run` installs both); set SIPAS_SKIP_BROWSER=1 to
//! leave these tests out on a machine without them.

use std::path::PathBuf;
use std::process::Command;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{answer, code, response};

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

async fn answers(app: &TestApp, r: &response::Model) -> usize {
    answer::Entity::find().filter(answer::Column::ResponseId.eq(r.id)).all(&app.db).await.unwrap().len()
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
    assert_eq!(answers(&app, &am[0]).await, 21, "E3 was answered, then undone with \"no answer\"");
    assert_eq!(sipas::store::responses::count_in(&app.db, &[am[0].unit_id]).await.unwrap(), 1);
    let hh = count(&app, "QNM.TK.HH").await;
    assert_eq!((hh.len(), hh[0].respondent_type.as_str()), (1, "organization"));
    assert!(code::Entity::find().all(&app.db).await.unwrap().is_empty(), "the code is used up");
    assert_eq!(count(&app, "QNM.HA.MA").await.len(), 1, "offline then online: exactly one response");
    let tt = count(&app, "QNM.TK.TT").await;
    assert_eq!(tt.len(), 1, "the plain form, without a script");
    assert_eq!(answers(&app, &tt[0]).await, 21, "A1 undone without a script");
    let snv = count(&app, "QNM.SNV").await;
    assert_eq!((snv.len(), snv[0].channel.as_str()), (1, "kiosk"));
}

#[tokio::test]
async fn lighthouse_scores_the_survey_kiosk_and_console_pages_on_the_mobile_profile() {
    if skipped() {
        return;
    }
    let app = spawn_app_with(|_| {}).await;
    app.import_reference().await;
    let admin = app.login_as(Role::Admin, None).await;
    let kiosk: Value = app
        .post_as("/api/v1/admin/units/QNM.SNV/keys", &admin, &json!({"kind": "kiosk", "name": "Quầy 1"}))
        .await
        .json()
        .await
        .unwrap();
    let enroll = kiosk["enroll_url"].as_str().unwrap();
    let kiosk_cookie = format!("sipas_kiosk={}", &enroll[enroll.find("enroll=").unwrap() + 7..]);
    let session = format!("sipas_session={admin}");
    // A finished background export, for its progress page.
    let job: Value = app
        .post_as("/api/v1/exports/microdata.csv/jobs?within=QNM&period=2024", &admin, &Value::Null)
        .await
        .json()
        .await
        .unwrap();
    let job_page = format!("/console/exports/jobs/{}", job["id"].as_str().unwrap());
    for _ in 0..200 {
        let now: Value = app
            .get_as(&format!("/api/v1/exports/jobs/{}", job["id"].as_str().unwrap()), &admin)
            .await
            .json()
            .await
            .unwrap();
        if now["state"] == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Both forms (the 2023 one is the long page, with every part and "no answer"), the
    // kiosk, and the console pages a unit head reads most.
    for (name, path, cookie) in [
        ("lighthouse", "/s/QNM.TK.AM", ""),
        ("lighthouse-2023", "/s/QNM.TK.AM?form=sipas-2023", ""),
        ("lighthouse-kiosk", "/k/QNM.SNV", kiosk_cookie.as_str()),
        ("lighthouse-console", "/console?period=2024", session.as_str()),
        ("lighthouse-unit", "/console/units/QNM.TK.AM?period=2024", session.as_str()),
        ("lighthouse-rankings", "/console/rankings?period=2024&level=commune", session.as_str()),
        ("lighthouse-exports", "/console/exports", session.as_str()),
        ("lighthouse-export-job", job_page.as_str(), session.as_str()),
    ] {
        let url = format!("{}{path}", app.address);
        // The page must be the one asked for, not the sign-in page or "not enrolled".
        let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = plain.get(&url).header("cookie", cookie).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} with the cookie Lighthouse sends");
        let out = screenshots(name);
        let mut args = vec!["lighthouse.mjs", &url, &out];
        if !cookie.is_empty() {
            args.push(cookie);
        }
        let (ok, stdout) = node(&args).await;
        assert!(ok, "lighthouse failed:\n{stdout}");
        let scores: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
        println!("lighthouse {path} (report in {out}/lighthouse.json): {scores}");
        assert_eq!(scores["formFactor"], "mobile");
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{out}/lighthouse.json")).unwrap()).unwrap();
        assert_eq!(report["finalDisplayedUrl"].as_str(), Some(url.as_str()), "{path} was redirected");
        // Accessibility is a property of the page: it must be perfect. Performance depends on
        // the machine, so it is printed (and recorded in the closing note), not asserted.
        assert_eq!(scores["accessibility"], 100, "{path}: {scores}");
        assert!(scores["performance"].as_u64().is_some());
    }
}

#[tokio::test]
async fn the_service_worker_serves_reloads_other_units_offline_reopening_and_updates() {
    if skipped() {
        return;
    }
    let app = spawn_app_with(|_| {}).await;
    app.seed_reference_units().await;
    let config = json!({ "base": app.address, "out": screenshots("offline") });
    let (ok, stdout) = node(&["offline.mjs", &config.to_string()]).await;
    println!("{stdout}");
    assert!(ok, "browser steps failed:\n{stdout}");
    // Sent after a reload, then two people from the kept page offline: three responses.
    assert_eq!(count(&app, "QNM.TK.AM").await.len(), 3, "reload, then twice offline");
    assert_eq!(count(&app, "QNM.HA.MA").await.len(), 1, "another unit in a new tab");
    assert_eq!(count(&app, "QNM.TK.TT").await.len(), 1, "after the update");
}

#[tokio::test]
async fn the_survey_reads_well_on_narrow_phones_in_both_forms_and_languages() {
    if skipped() {
        return;
    }
    let app = spawn_app_with(|_| {}).await;
    app.seed_reference_units().await;
    let config = json!({ "base": app.address, "out": screenshots("phones") });
    let (ok, stdout) = node(&["phones.mjs", &config.to_string()]).await;
    println!("{stdout}");
    assert!(ok, "browser steps failed:\n{stdout}");
}
