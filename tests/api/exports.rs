//! Exports: the indices table in CSV, XLSX and JSON equals the API; microdata is complete,
//! anonymised and streamed.

use std::collections::{HashMap, HashSet};

use calamine::{Data, DataType, Reader, Xlsx};
use serde_json::{Value, json};
use sipas::auth::Role;

use crate::helpers::{TestApp, error_body, spawn_app};

async fn api(app: &TestApp, token: &str, unit: &str, query: &str) -> Value {
    app.get_as(&format!("/api/v1/indices?unit={unit}&{query}"), token).await.json().await.unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs {b}");
}

#[tokio::test]
async fn the_indices_table_in_every_format_equals_the_api() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    for query in ["period=2024", "period=2024-Q1", "period=2024&respondent_type=organization"] {
        let json: Value =
            app.get_as(&format!("/api/v1/exports/indices.json?within=QNM&{query}"), &token).await.json().await.unwrap();
        let csv = app.get_as(&format!("/api/v1/exports/indices.csv?within=QNM&{query}"), &token).await;
        assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with('\u{feff}'), "BOM for Excel");
        let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let csv_rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let xlsx = app
            .get_as(&format!("/api/v1/exports/indices.xlsx?within=QNM&{query}"), &token)
            .await
            .bytes()
            .await
            .unwrap();
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).unwrap();
        assert_eq!(book.sheet_names(), ["Đơn vị", "Nhóm", "Tiêu chí", "Thông tin", "Câu hỏi"]);
        let units_sheet = book.worksheet_range("Đơn vị").unwrap();
        let items_sheet = book.worksheet_range("Tiêu chí").unwrap();

        let units = json["units"].as_array().unwrap();
        assert_eq!(units.len(), 9);
        assert_eq!(csv_rows.len(), 9);
        for (i, u) in units.iter().enumerate() {
            let code = u["unit"].as_str().unwrap();
            let want = api(&app, &token, code, query).await;
            assert_eq!(u["n"], want["n"], "{query} {code}");
            if u["suppressed"] == true && want["suppressed"] == false {
                // Complementary suppression: a sibling is under k and would otherwise be
                // recoverable from the parent's row.
                let parent = u["parent"].as_str().unwrap();
                let hidden_sibling =
                    units.iter().any(|s| s["parent"] == parent && s["unit"] != code && s["n"].as_u64().unwrap() < 10);
                assert!(hidden_sibling, "{query} {code} suppressed without a small sibling");
                assert!(u["index"].is_null() && u["items"][0]["value"].is_null());
                continue;
            }
            assert_eq!(u["suppressed"], want["suppressed"], "{query} {code}");
            let row = &csv_rows[i];
            let col = |name: &str| header.iter().position(|h| h == name).unwrap();
            assert_eq!(&row[col("unit")], code);
            assert_eq!(&row[col("n")], want["n"].to_string());
            // Under a row of headings and a row of codes.
            let xrow = i + 2;
            let cell =
                |sheet: &calamine::Range<Data>, r: usize, c: usize| sheet.get((r, c)).cloned().unwrap_or(Data::Empty);
            assert_eq!(cell(&units_sheet, xrow, 0), Data::String(code.into()));
            match want["index"]["value"].as_f64() {
                Some(v) => {
                    close(u["index"]["value"].as_f64().unwrap(), v, "json index");
                    close(row[col("sipas")].parse().unwrap(), v, "csv index");
                    close(cell(&units_sheet, xrow, 7).as_f64().unwrap(), v, "xlsx index");
                    for g in want["groups"].as_array().unwrap() {
                        let gc = g["code"].as_str().unwrap();
                        close(row[col(gc)].parse().unwrap(), g["value"].as_f64().unwrap(), "csv group");
                    }
                    for item in want["items"].as_array().unwrap() {
                        let ic = item["code"].as_str().unwrap();
                        close(row[col(ic)].parse().unwrap(), item["value"].as_f64().unwrap(), "csv item");
                        assert_eq!(&row[col(&format!("{ic}_n"))], item["n"].to_string());
                        let j = u["items"].as_array().unwrap().iter().find(|x| x["code"] == ic).unwrap();
                        assert_eq!(j, item, "json item {ic}");
                    }
                }
                None => {
                    assert!(
                        u["index"].is_null()
                            && row[col("sipas")].is_empty()
                            && cell(&units_sheet, xrow, 7) == Data::Empty
                    );
                }
            }
        }
        if query.contains("organization") {
            // STP has 8 organisations (< k) and the province none of its own: SNV, the
            // smallest sibling, is withheld too, or STP would be the province minus the rest.
            let snv = units.iter().find(|u| u["unit"] == "QNM.SNV").unwrap();
            assert_eq!(snv["suppressed"], true);
        }
        // The items sheet: one row per unit and item, with the API's counts.
        let first = api(&app, &token, "QNM", query).await;
        assert_eq!(cell_str(&items_sheet, 2, 1), "A1");
        assert_eq!(items_sheet.get((2, 2)).and_then(DataType::as_f64), first["items"][0]["n"].as_f64());
    }
}

fn cell_str(sheet: &calamine::Range<Data>, r: usize, c: usize) -> String {
    sheet.get((r, c)).map(|d| d.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn csv_cells_cannot_become_formulas() {
    let app = spawn_app().await;
    app.import_reference().await;
    let admin = app.login_as(Role::Admin, None).await;
    let res = app
        .patch_as("/api/v1/admin/units/QNM.TK.AM", &admin, &json!({"name_vi": "=HYPERLINK(\"http://x\",\"y\")"}))
        .await;
    assert_eq!(res.status(), 200);
    let csv = app.get_as("/api/v1/exports/indices.csv?within=QNM&period=2024", &admin).await.text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK"), "neutralised");
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains("\"=HYPERLINK"));
}

/// A microdata CSV as its header and rows.
fn parse_csv(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    (header, reader.records().map(Result::unwrap).collect())
}

#[tokio::test]
async fn microdata_has_a_row_per_response_and_protects_small_groups() {
    let app = spawn_app().await;
    app.import_reference().await;
    // Demographics at An My in May: twelve alike, ten others alike, and one rare combination.
    let mut lines = String::new();
    for i in 0..23 {
        let demo = match i {
            0..12 => {
                json!({"gender": "female", "age_band": "26-34", "education": "university", "occupation": "public"})
            }
            12..22 => json!({"gender": "male", "age_band": "35-49", "education": "secondary", "occupation": "farmer"}),
            _ => json!({"gender": "female", "age_band": "60+", "education": "primary", "occupation": "farmer"}),
        };
        lines.push_str(&format!(
            "{}\n",
            json!({"submission_id": uuid::Uuid::new_v4(), "unit": "QNM.TK.AM", "form": "sipas-2017", "respondent_type": "citizen",
                   "channel": "online", "date": "2024-05-06", "answers": {"A1": 5}, "comment": "Rất tốt", "demographics": demo})
        ));
    }
    sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    let token = app.login_as(Role::Analyst, None).await;
    let csv = app.get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024", &token).await.text().await.unwrap();
    let (header, rows) = parse_csv(&csv);
    assert!(!header.contains(&"comment".to_string()), "no comments unless asked");
    assert!(!header.iter().any(|h| h == "id" || h == "date" || h == "month"), "no response id, no exact date");
    // No row is dropped: a dropped row would be a published figure minus the file.
    assert_eq!(rows.len(), 623);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let quasi = [
        "unit",
        "unit_covers",
        "period",
        "respondent_type",
        "channel",
        "service",
        "gender",
        "age_band",
        "education",
        "occupation",
    ];
    // k-anonymity over every quasi-identifier together.
    let mut classes: HashMap<Vec<String>, usize> = HashMap::new();
    for r in &rows {
        *classes.entry(quasi.iter().map(|q| r[col(q)].to_string()).collect()).or_default() += 1;
    }
    let small: Vec<_> = classes.iter().filter(|(_, n)| **n < 10).collect();
    assert!(small.is_empty(), "classes under k: {small:?}");
    // Each group is coarsened as a whole: one period grain and the same breakdown columns for
    // all its rows, so relabelled rows look like the parent's own.
    let mut grain: HashMap<String, HashSet<(usize, bool, bool)>> = HashMap::new();
    for r in &rows {
        let shape = (r[col("period")].len(), r[col("channel")] == *"*", r[col("respondent_type")] == *"*");
        grain.entry(r[col("unit")].to_string()).or_default().insert(shape);
    }
    assert!(grain.values().all(|s| s.len() == 1), "{grain:?}");
    assert!(rows.iter().all(|r| r[col("channel")] == *"*" && r[col("service")] == *"*"), "one breakdown column");
    let demo: Vec<[String; 4]> = rows
        .iter()
        .filter(|r| !r[col("gender")].is_empty())
        .map(|r| ["gender", "age_band", "education", "occupation"].map(|c| r[col(c)].to_string()))
        .collect();
    assert_eq!(demo.len(), 23);
    assert_eq!(demo.iter().filter(|d| d[3] == "public").count(), 12, "a combination shared by k rows is kept");
    assert!(!demo.iter().any(|d| d[1] == "60+"), "the rare one is coarsened");
    assert_eq!(demo.iter().filter(|d| d[0] == "*").count(), 11, "and takes the next-smallest combination with it");
    // Answers as given.
    assert!(rows.iter().all(|r| r[col("A1")].is_empty() || (1..=5).contains(&r[col("A1")].parse::<i32>().unwrap())));

    // In Q1, Tam Thang has 7 responses (< k): its rows carry an ancestor's code, and none is lost.
    let q1 = app.get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024-Q1", &token).await.text().await.unwrap();
    assert!(!q1.contains("QNM.TK.TT"));
    assert_eq!(parse_csv(&q1).1.len(), 154);
    // A breakdown by channel instead of respondent type.
    let by_channel =
        app.get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024&breakdown=channel", &token).await.text().await;
    let (h, rows_c) = parse_csv(&by_channel.unwrap());
    let at = |n: &str| h.iter().position(|x| x == n).unwrap();
    assert!(rows_c.iter().all(|r| r[at("respondent_type")] == *"*"));
    assert!(rows_c.iter().any(|r| r[at("channel")] != *"*"), "channels shown where the gate shows them");

    let with = app
        .get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024&comments=true", &token)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(with.matches("Rất tốt").count(), 23);

    // XLSX holds the same rows, and says how it was coarsened.
    let xlsx = app.get_as("/api/v1/exports/microdata.xlsx?within=QNM&period=2024", &token).await.bytes().await.unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    let sheet = book.worksheet_range("Phiếu 1").unwrap();
    assert_eq!(sheet.height(), 625, "two heading rows and 623 responses");
    assert!(book.worksheet_range("Thông tin").is_ok());

    for bad in ["breakdown=age", "breakdown=respondent_type&channel=online"] {
        let url = format!("/api/v1/exports/microdata.csv?within=QNM&period=2024&{bad}");
        let out = error_body(app.get_as(&url, &token).await, 422, "validation_failed").await;
        assert!(out["fields"]["breakdown"].is_array(), "{bad}: {out}");
    }
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK.AM")).await;
    let url = "/api/v1/exports/microdata.csv?within=QNM.TK.AM&period=2024";
    error_body(app.get_as(url, &manager).await, 403, "forbidden").await;
    let out = error_body(
        app.get_as("/api/v1/exports/microdata.csv?within=QNM&comments=maybe", &token).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(out["fields"]["comments"].is_array());
    error_body(app.get_as("/api/v1/exports/microdata.pdf?within=QNM", &token).await, 404, "not_found").await;
}

/// A download whose client reads its headers and then nothing more: the server's socket
/// buffer fills, and the export holds its snapshot connection until the client goes.
async fn stalled_download(app: &TestApp, token: &str, query: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.address.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /api/v1/exports/microdata.csv?{query} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 512];
    let n = stream.read(&mut head).await.unwrap();
    (stream, String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn slow_downloads_never_starve_submissions_and_each_user_has_two_at_most() {
    // Six connections: three download slots, three left for everything else.
    let app = crate::helpers::spawn_app_with(|s| s.max_db_connections = 6).await;
    app.import_reference().await;
    // Long comments make the file (about 14 MB) far larger than the sockets' buffers.
    let comment = "Cán bộ hướng dẫn tận tình, nhưng phải chờ lâu. ".repeat(40);
    let mut lines = String::new();
    for i in 0..6000 {
        let answers: serde_json::Map<String, Value> = ["A1", "A2", "A3", "A4", "B1", "B2", "C1", "C2", "D1", "E1"]
            .iter()
            .map(|c| (c.to_string(), json!(1 + i % 5)))
            .collect();
        lines.push_str(&format!(
            "{}\n",
            json!({"submission_id": uuid::Uuid::new_v4(), "unit": "QNM.TK.AM", "form": "sipas-2017", "respondent_type": "citizen",
                   "channel": "online", "date": format!("2024-{:02}-10", 1 + i % 12), "answers": answers, "comment": comment})
        ));
    }
    sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    let (admin, analyst) = (app.login_as(Role::Admin, None).await, app.login_as(Role::Analyst, None).await);
    let query = "within=QNM&period=2024&comments=true";
    let mut held = Vec::new();
    for token in [&admin, &admin, &analyst] {
        let (stream, status) = stalled_download(&app, token, query).await;
        assert!(status.contains("200"), "{status}");
        held.push(stream);
    }
    assert_eq!(app.state.exports.available(), 0, "three stalled downloads hold the three slots");

    // The same user's third download is refused at once; another user's waits 2 s at most.
    let res = app.get_as(&format!("/api/v1/exports/microdata.csv?{query}"), &admin).await;
    assert!(res.headers().contains_key("retry-after"));
    error_body(res, 429, "too_many_requests").await;
    let started = std::time::Instant::now();
    let res = app.get_as(&format!("/api/v1/exports/microdata.csv?{query}"), &analyst).await;
    assert!(res.headers().contains_key("retry-after"), "{} {:?}", res.status(), app.state.exports.available());
    error_body(res, 503, "service_unavailable").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());

    // Submissions and sign-ins go on, with the connections the downloads may not take.
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(app.submit(&crate::helpers::valid_submission("QNM.TK.AM")).await.status(), 201);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
    assert_eq!(app.get_as("/api/v1/auth/me", &analyst).await.status(), 200);

    // Clients that go away give their slots back; a full download then ends complete.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.state.exports.available() < 3 {
        assert!(std::time::Instant::now() < deadline, "slots still held after the clients left");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let res = app.get_as(&format!("/api/v1/exports/microdata.csv?{query}"), &admin).await;
    assert_eq!(res.status(), 200);
    let (_, rows) = parse_csv(&res.text().await.unwrap());
    assert_eq!(rows.len(), 600 + 6000, "the reference's 2024 and the 6,000 added");
}
