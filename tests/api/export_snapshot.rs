//! A microdata export taken while submissions arrive is one consistent snapshot: every row
//! of the file is a response of the database with all its answers, every response committed
//! before the export is in it, and the file holds exactly the rows its audit entry counts.
//! A read that fails half-way ends the transfer with an error, never as a clean file.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use calamine::{Data, Reader, Xlsx};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{answer, audit, response};

use crate::helpers::{TestApp, spawn_app, valid_submission};

const UNITS: [&str; 3] = ["QNM.TK.AM", "QNM.TK.HH", "QNM.SNV"];
const ITEMS: [&str; 22] = [
    "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6", "D1", "D2", "D3", "E1",
    "E2", "E3", "E4",
];

/// Answers that differ from one response to the next, so a row cannot match by chance.
fn answers(seed: u64) -> serde_json::Map<String, Value> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ITEMS
        .iter()
        .map(|c| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (c.to_string(), json!((x >> 33) % 5 + 1))
        })
        .collect()
}

/// A submission as the survey page posts it: dated today by the server.
fn submission(seed: u64) -> Value {
    let mut body = valid_submission(UNITS[(seed % 3) as usize]);
    body["answers"] = Value::Object(answers(seed));
    body["channel"] = json!(if seed.is_multiple_of(2) { "online" } else { "kiosk" });
    body
}

/// Seeds `n` responses dated `date` in one import.
async fn seed(app: &TestApp, n: u64, date: &str) {
    let mut lines = String::new();
    for i in 0..n {
        let mut body = submission(1_000_000 + i);
        body["date"] = json!(date);
        body["respondent_type"] = json!(if i.is_multiple_of(4) { "organization" } else { "citizen" });
        lines.push_str(&format!("{body}\n"));
    }
    let report = sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    assert_eq!(report.created as u64, n);
}

/// Every response of the database as the file shows it (each answer column), counted: two
/// responses may look alike.
async fn database_rows(app: &TestApp, columns: &[String]) -> HashMap<Vec<String>, usize> {
    let mut values: HashMap<uuid::Uuid, HashMap<String, Vec<i16>>> = HashMap::new();
    for a in answer::Entity::find().order_by_asc(answer::Column::Value).all(&app.db).await.unwrap() {
        values.entry(a.response_id).or_default().entry(a.item_code).or_default().push(a.value);
    }
    let mut out = HashMap::new();
    for r in response::Entity::find().all(&app.db).await.unwrap() {
        // The file labels groups and coarsens period and breakdowns; its answers are exact
        // (random, so they tell responses apart).
        let mut row = Vec::new();
        let given = values.remove(&r.id).unwrap_or_default();
        for c in columns {
            let v = given.get(c).map(|vs| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(";"));
            row.push(v.unwrap_or_default());
        }
        *out.entry(row).or_default() += 1;
    }
    out
}

/// The answer columns of a header (after the demographics).
fn answer_columns(header: &[String]) -> Vec<String> {
    let first = header.iter().position(|h| h == "occupation").unwrap() + 1;
    header[first..].iter().filter(|h| *h != "comment").cloned().collect()
}

/// Picks the compared columns out of a file's row, in `database_rows` order.
fn key(header: &[String], row: &[String], columns: &[String]) -> Vec<String> {
    let at = |name: &str| row[header.iter().position(|h| h == name).unwrap()].clone();
    let mut k: Vec<String> = Vec::new();
    k.extend(columns.iter().map(|c| at(c)));
    k
}

fn xlsx_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("Phiếu 1").unwrap();
    let text = |d: &Data| match d {
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        Data::Empty => String::new(),
        other => other.to_string(),
    };
    let mut rows = sheet.rows().skip(1).map(|r| r.iter().map(text).collect::<Vec<String>>());
    let header = rows.next().unwrap();
    (header, rows.collect())
}

/// The row count the audit log recorded for the latest export.
async fn audited_rows(app: &TestApp) -> u64 {
    let last = audit::Entity::find().order_by_desc(audit::Column::Id).all(&app.db).await.unwrap();
    let entry = last.iter().find(|e| e.action == "export").unwrap();
    let details: Value = serde_json::from_str(&entry.details).unwrap();
    details["rows"].as_u64().unwrap()
}

#[tokio::test]
async fn a_microdata_export_under_concurrent_submissions_equals_the_database() {
    let app = Arc::new(spawn_app().await);
    app.seed_reference_units().await;
    // The server dates online submissions; seed on the same day so one period holds all.
    assert_eq!(app.submit(&submission(0)).await.status(), 201);
    let today = response::Entity::find().one(&app.db).await.unwrap().unwrap().survey_date;
    seed(&app, 3000, &today.format("%Y-%m-%d").to_string()).await;
    let token = app.login_as(Role::Analyst, None).await;

    // Submitters keep going for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for task in 0..6u64 {
        let (app, stop, submitted) = (app.clone(), stop.clone(), submitted.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let res = app.submit(&submission(task * 100_000 + i)).await;
                assert_eq!(res.status(), 201, "submissions keep being accepted during an export");
                submitted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while submitted.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let url = format!("/api/v1/exports/microdata.{{}}?within=QNM&period={}", today.format("%Y"));
    let mut during = 0;
    for (round, format) in ["csv", "xlsx", "csv", "xlsx"].iter().enumerate() {
        let submitted_before = submitted.load(Ordering::Relaxed);
        let before = database_rows(&app, &[]).await.values().sum::<usize>();
        let res = app.get_as(&url.replace("{}", format), &token).await;
        assert_eq!(res.status(), 200);
        let bytes = res.bytes().await.expect("a complete transfer");
        let (header, rows) = if *format == "csv" {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            let rows = reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect();
            (header, rows)
        } else {
            xlsx_rows(&bytes)
        };
        let columns = answer_columns(&header);
        assert_eq!(columns.len(), ITEMS.len(), "the items of the form: {columns:?}");
        during += submitted.load(Ordering::Relaxed) - submitted_before;
        let audited = audited_rows(&app).await;
        let after = database_rows(&app, &columns).await;
        let total_after: usize = after.values().sum();

        // Every row is a response of the database, answers included, and none twice.
        let mut left = after.clone();
        let mut strangers = Vec::new();
        for row in &rows {
            let k = key(&header, row, &columns);
            match left.get_mut(&k) {
                Some(n) if *n > 0 => *n -= 1,
                _ => strangers.push(k),
            }
        }
        assert!(
            strangers.is_empty(),
            "round {round} ({format}): {} of {} rows are no response of the database, e.g. {:?}",
            strangers.len(),
            rows.len(),
            strangers[0]
        );
        assert!(
            (before..=total_after).contains(&rows.len()),
            "round {round} ({format}): {} rows, {before} responses before and {total_after} after",
            rows.len()
        );
        // The plan (coarsening, the audited count) saw the same responses as the rows.
        assert_eq!(audited, rows.len() as u64, "round {round} ({format}): the audit entry counts the file's rows");
    }
    assert!(during > 0, "submissions arrived while the exports ran");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    // The file of a quiet database is the database, to the last response.
    let res = app.get_as(&url.replace("{}", "csv"), &token).await;
    let text = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let columns = answer_columns(&header);
    let mut file: HashMap<Vec<String>, usize> = HashMap::new();
    for r in reader.records() {
        let row: Vec<String> = r.unwrap().iter().map(String::from).collect();
        *file.entry(key(&header, &row, &columns)).or_default() += 1;
    }
    assert_eq!(file, database_rows(&app, &columns).await);
}

/// How a download ended, and how many bytes came before.
async fn ending(mut res: reqwest::Response) -> (&'static str, usize) {
    let mut received = 0;
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => return ("a clean end", received),
            Err(_) => return ("an error", received),
        }
    }
}

/// The read breaks half-way: on SQLite an answer the reader cannot decode (its columns are
/// not typed), on PostgreSQL the export's server process killed while the client reads.
#[tokio::test]
async fn a_microdata_export_that_fails_half_way_does_not_end_as_a_complete_file() {
    let app = spawn_app().await;
    let sqlite = app.db.get_database_backend() == sea_orm::DbBackend::Sqlite;
    app.seed_reference_units().await;
    assert_eq!(app.submit(&submission(0)).await.status(), 201);
    let today = response::Entity::find().one(&app.db).await.unwrap().unwrap().survey_date;
    // PostgreSQL: more rows than the export buffers ahead of a client that stops reading.
    seed(&app, if sqlite { 3000 } else { 20_000 }, &today.format("%Y-%m-%d").to_string()).await;
    let token = app.login_as(Role::Analyst, None).await;
    let url = |format: &str| format!("/api/v1/exports/microdata.{format}?within=QNM&period={}", today.format("%Y"));
    if sqlite {
        // The response that comes last in the export's order gets an unreadable answer.
        let last = response::Entity::find().order_by_desc(response::Column::Id).one(&app.db).await.unwrap().unwrap();
        let sql = "UPDATE answers SET value = 'x' WHERE response_id = ? AND item_code = 'A1'";
        app.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, [last.id.into()]))
            .await
            .unwrap();
        for format in ["csv", "xlsx"] {
            let res = app.get_as(&url(format), &token).await;
            assert_eq!(res.status(), 200, "the failure comes after the headers were sent");
            let (ended, received) = ending(res).await;
            assert_eq!(ended, "an error", "{format}: a broken export must not end like a file ({received} bytes)");
            if format == "csv" {
                assert!(received > 100_000, "the CSV broke half-way, after {received} bytes of rows");
            }
        }
    } else {
        // Long comments make the file (about 30 MB) far larger than every buffer on the way.
        let sql = "UPDATE responses SET comment = repeat('Cán bộ hướng dẫn tận tình. ', 60)";
        app.db.execute_unprepared(sql).await.unwrap();
        let mut res = app.get_as(&format!("{}&comments=true", url("csv")), &token).await;
        assert_eq!(res.status(), 200);
        assert!(res.chunk().await.unwrap().is_some(), "the header line");
        // The client has stopped reading: the export waits on it, its statement still open.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let killed = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%string_agg(item_code%'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(killed, 1, "the export's statement was running");
        let (ended, received) = ending(res).await;
        assert_eq!(ended, "an error", "a broken export must not end like a file ({received} bytes)");
    }
    // And the service keeps serving.
    assert_eq!(app.submit(&submission(1)).await.status(), 201);
}
