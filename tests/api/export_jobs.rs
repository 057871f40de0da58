//! Exports prepared in the background: the job's file is the download's, byte for byte;
//! progress is reported; a job can be cancelled mid-way (its partial file deleted), is only
//! its owner's, is audited, fails visibly when its instance stopped, and is deleted a day
//! after it ended.

use std::time::{Duration, Instant};

use calamine::Reader;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::Value;
use sipas::auth::Role;
use sipas::store;
use sipas::store::responses::Stored;

use crate::helpers::*;

/// Stores `n` responses at An My dated 30 Nov 2026, as writers store them.
async fn store_responses(app: &TestApp, n: usize) {
    let unit = unit_id(app, "QNM.TK.AM").await;
    let mut left = n;
    while left > 0 {
        let subs: Vec<_> = (0..left.min(2000)).map(|_| stored_submission(unit)).collect();
        let refs: Vec<_> = subs.iter().collect();
        let outcomes = store::responses::insert_group(&app.db, &app.state.catalog, &refs, false).await.unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Stored::Created(_)))));
        left -= subs.len();
    }
}

async fn wait_until_ended(app: &TestApp, token: &str, id: &str) -> Value {
    let t = Instant::now();
    loop {
        let res = app.get_as(&format!("/api/v1/exports/jobs/{id}"), token).await;
        assert_eq!(res.status(), 200);
        let job: Value = res.json().await.unwrap();
        if job["state"] != "running" {
            return job;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the job never ended: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn chunks(app: &TestApp) -> u64 {
    sipas::entities::export_chunk::Entity::find().count(&app.db).await.unwrap()
}

async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let rows = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT details FROM audit_log WHERE action = '{action}' ORDER BY id"),
        ))
        .await
        .unwrap();
    rows.iter().map(|r| serde_json::from_str(&r.try_get::<String>("", "details").unwrap()).unwrap()).collect()
}

#[tokio::test]
async fn a_background_export_makes_the_downloads_file_with_progress_and_only_for_its_owner() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    let query = "within=QNM&period=2024&comments=true";
    let direct = app.get_as(&format!("/api/v1/exports/microdata.csv?{query}"), &token).await.bytes().await.unwrap();

    let res = app.post_as(&format!("/api/v1/exports/microdata.csv/jobs?{query}"), &token, &Value::Null).await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let started: Value = res.json().await.unwrap();
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/exports/jobs/{id}"));
    assert_eq!(started["rows_total"], 600);
    let job = wait_until_ended(&app, &token, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!((job["rows_done"].clone(), job["percent"].clone()), (600.into(), 100.into()));
    assert!(job["seconds_left"].is_null());
    assert_eq!(job["bytes"].as_u64().unwrap(), direct.len() as u64);
    assert!(job["expires_at"].is_string());

    // The file is the download's, byte for byte.
    let file = job["download"].as_str().unwrap().to_string();
    let res = app.get_as(&file, &token).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("sipas-microdata-QNM-2024.csv"));
    assert_eq!(res.bytes().await.unwrap(), direct);

    // Audited: the export with its job, and the download.
    assert!(audited(&app, "export").await.iter().any(|d| d["job"] == id.as_str() && d["rows"] == 600));
    assert_eq!(audited(&app, "export_downloaded").await.len(), 1);

    // Listed for its owner; another analyst sees nothing of it.
    let list: Value = app.get_as("/api/v1/exports/jobs", &token).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let other = app.login_as(Role::Analyst, None).await;
    let list: Value = app.get_as("/api/v1/exports/jobs", &other).await.json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
    for res in [
        app.get_as(&format!("/api/v1/exports/jobs/{id}"), &other).await,
        app.get_as(&file, &other).await,
        app.client.delete(app.url(&format!("/api/v1/exports/jobs/{id}"))).bearer_auth(&other).send().await.unwrap(),
    ] {
        error_body(res, 404, "not_found").await;
    }
    assert_eq!(app.get(&format!("/api/v1/exports/jobs/{id}")).await.status(), 401);

    // Refused as the download is: a unit manager, a format, a bad period, a bad id.
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    let res = app.post_as("/api/v1/exports/microdata.csv/jobs?within=QNM.TK.AM", &manager, &Value::Null).await;
    error_body(res, 403, "forbidden").await;
    let res = app.post_as("/api/v1/exports/microdata.pdf/jobs", &token, &Value::Null).await;
    error_body(res, 404, "not_found").await;
    let res = app.post_as("/api/v1/exports/microdata.csv/jobs?period=2024-13", &token, &Value::Null).await;
    error_body(res, 422, "validation_failed").await;
    let res = app.get_as("/api/v1/exports/jobs/not-a-uuid", &token).await;
    assert!([400, 404].contains(&res.status().as_u16()));

    // Deleting an ended job deletes its file.
    let res = app.client.delete(app.url(&format!("/api/v1/exports/jobs/{id}"))).bearer_auth(&token).send().await;
    assert_eq!(res.unwrap().status(), 204);
    assert_eq!(chunks(&app).await, 0);
    error_body(app.get_as(&file, &token).await, 404, "not_found").await;
}

#[tokio::test]
async fn an_xlsx_job_is_a_workbook_of_every_row() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Admin, None).await;
    let res = app.post_as("/api/v1/exports/microdata.xlsx/jobs?within=QNM&period=2024", &token, &Value::Null).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let job = wait_until_ended(&app, &token, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    let bytes = app.get_as(job["download"].as_str().unwrap(), &token).await.bytes().await.unwrap();
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("Phiếu 1").unwrap();
    assert_eq!(sheet.height(), 602, "two heading rows and 600 responses");
}

#[tokio::test]
async fn a_job_cancelled_while_it_runs_stops_and_leaves_no_file() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    store_responses(&app, 20_000).await;
    let token = app.login_as(Role::Analyst, None).await;
    // A workbook of 20,000 rows takes seconds: long enough to be cancelled mid-way.
    let res = app.post_as("/api/v1/exports/microdata.xlsx/jobs?within=QNM&period=2026", &token, &Value::Null).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let res = app.client.delete(app.url(&format!("/api/v1/exports/jobs/{id}"))).bearer_auth(&token).send().await;
    assert_eq!(res.unwrap().status(), 204);
    let job: Value = app.get_as(&format!("/api/v1/exports/jobs/{id}"), &token).await.json().await.unwrap();
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(job["download"].is_null());
    let res = app.get_as(&format!("/api/v1/exports/jobs/{id}/file"), &token).await;
    error_body(res, 409, "conflict").await;
    // The writer stops (its slot is given back: two more jobs start, the per-user limit)
    // and nothing of its file remains, nor is written later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(chunks(&app).await, 0);
    let job: Value = app.get_as(&format!("/api/v1/exports/jobs/{id}"), &token).await.json().await.unwrap();
    assert_eq!(job["state"], "cancelled", "a cancelled job came back: {job}");
    assert_eq!(audited(&app, "export_cancelled").await.len(), 1);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = app.post_as("/api/v1/exports/microdata.csv/jobs?within=QNM&period=2026", &token, &Value::Null).await;
        assert_eq!(res.status(), 202, "the cancelled job still holds its slot");
        ids.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    for id in ids {
        let job = wait_until_ended(&app, &token, &id).await;
        assert_eq!((job["state"].clone(), job["rows_done"].clone()), ("done".into(), 20_000.into()));
        let csv = app.get_as(job["download"].as_str().unwrap(), &token).await.text().await.unwrap();
        assert_eq!(csv.lines().count(), 20_001, "a file of more than one chunk, whole");
        assert!(job["bytes"].as_u64().unwrap() > 1 << 20, "{job}");
    }
}

#[tokio::test]
async fn a_job_whose_instance_stopped_reads_as_failed_and_old_files_are_deleted() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let token = app.login_as(Role::Analyst, None).await;
    let me: Value = app.get_as("/api/v1/auth/me", &token).await.json().await.unwrap();
    let user = me["user_id"].as_i64().unwrap() as i32;
    let now = chrono::Utc::now();
    let job = |id| store::export_jobs::NewJob {
        id,
        user_id: user,
        kind: "microdata",
        format: "csv",
        unit_code: "QNM",
        period: "2026",
        file_name: "sipas-microdata-QNM-2026.csv",
        rows_total: 100,
    };
    // Started three minutes ago and silent since: its instance stopped.
    let (stopped, old, fresh) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    store::export_jobs::create(&app.db, job(stopped), now - chrono::TimeDelta::minutes(3)).await.unwrap();
    store::export_jobs::add_chunk(&app.db, stopped, 0, b"unit,period\n".to_vec()).await.unwrap();
    let seen: Value = app.get_as(&format!("/api/v1/exports/jobs/{stopped}"), &token).await.json().await.unwrap();
    assert_eq!(seen["state"], "failed", "{seen}");
    assert!(seen["error"].as_str().unwrap().contains("interrupted"));
    // Finished 25 hours ago, and one finished now.
    for (id, at) in [(old, now - chrono::TimeDelta::hours(25)), (fresh, now)] {
        store::export_jobs::create(&app.db, job(id), at).await.unwrap();
        store::export_jobs::add_chunk(&app.db, id, 0, b"unit,period\n".to_vec()).await.unwrap();
        store::export_jobs::finish(&app.db, id, "done", None, at).await.unwrap();
    }
    use sipas::export::jobs::{KEEP, STALE};
    let swept = store::export_jobs::sweep(&app.db, now - STALE, now - KEEP, now).await.unwrap();
    assert_eq!(swept, (1, 1));
    let states: Vec<Value> = app.get_as("/api/v1/exports/jobs", &token).await.json::<Vec<Value>>().await.unwrap();
    let by_id = |id: uuid::Uuid| states.iter().find(|j| j["id"] == id.to_string()).cloned();
    assert_eq!(by_id(stopped).unwrap()["state"], "failed");
    assert!(by_id(old).is_none(), "a day-old file was kept");
    assert_eq!(by_id(fresh).unwrap()["state"], "done");
    assert_eq!(chunks(&app).await, 1, "only the fresh job keeps its file");
}

#[tokio::test]
async fn the_console_prepares_a_file_in_the_background_with_a_progress_page() {
    let app = spawn_app().await;
    app.import_reference().await;
    let (client, _) = console_client(&app, Role::Analyst, None).await;
    let page = client.get(app.url("/console/exports")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    assert!(page.contains(r#"action="/console/exports/jobs""#), "no background form");
    // Without the form's token: refused, nothing started.
    let res = client
        .post(app.url("/console/exports/jobs"))
        .form(&[("within", "QNM"), ("period", "2024"), ("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .post(app.url("/console/exports/jobs"))
        .form(&[("csrf", csrf.as_str()), ("within", "QNM"), ("period", "2024"), ("form", ""), ("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/console/exports/jobs/"), "{to}");
    let t = Instant::now();
    let page = loop {
        let res = client.get(app.url(&to)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let refresh = res.headers().get("refresh").is_some();
        let page = res.text().await.unwrap();
        assert!(page.contains("<progress"), "no progress bar");
        if page.contains("/file") {
            assert!(!refresh, "a finished job's page keeps reloading");
            break page;
        }
        assert!(refresh, "a running job's page does not reload itself");
        assert!(t.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("600 / 600"), "{page}");
    let file = client.get(app.url(&format!("{to}/file"))).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.text().await.unwrap().lines().count(), 601);
    // The exports page lists it; a bad job address is a page, not a crash.
    let page = client.get(app.url("/console/exports")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&to), "the job is not listed");
    let res = client.get(app.url("/console/exports/jobs/nonsense")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("<html"));
}
