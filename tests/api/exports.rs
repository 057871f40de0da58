//! Exports: the indices table in CSV, XLSX and JSON equals the API; microdata is complete,
//! anonymised and streamed.

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

#[tokio::test]
async fn microdata_has_a_row_per_response_and_protects_small_groups() {
    let app = spawn_app().await;
    app.import_reference().await;
    // Demographics: twelve alike at An My, and one rare combination.
    let mut lines = String::new();
    for i in 0..13 {
        let occupation = if i == 12 { "farmer" } else { "public" };
        lines.push_str(&format!(
            "{}\n",
            json!({"submission_id": uuid::Uuid::new_v4(), "unit": "QNM.TK.AM", "form": "sipas-2017", "respondent_type": "citizen",
                   "channel": "online", "date": "2024-05-06", "answers": {"A1": 5}, "comment": "Rất tốt",
                   "demographics": {"gender": "female", "age_band": "26-34", "education": "university", "occupation": occupation}})
        ));
    }
    sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    let token = app.login_as(Role::Analyst, None).await;
    let csv = app.get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024", &token).await.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(!header.contains(&"comment".to_string()), "no comments unless asked");
    assert!(!header.iter().any(|h| h == "id" || h == "date"), "no response id, no exact date");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 613);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    assert!(rows.iter().all(|r| r[col("month")].len() == 7), "months only");
    let demo: Vec<(String, String, String, String)> = rows
        .iter()
        .filter(|r| !r[col("gender")].is_empty())
        .map(|r| {
            (
                r[col("gender")].to_string(),
                r[col("age_band")].to_string(),
                r[col("education")].to_string(),
                r[col("occupation")].to_string(),
            )
        })
        .collect();
    assert_eq!(demo.len(), 13);
    assert_eq!(demo.iter().filter(|d| d.3 == "public").count(), 12, "a combination shared by k rows is kept");
    assert_eq!(
        demo.iter().filter(|d| d.3 == "*" && d.2 == "*" && d.0 == "female").count(),
        1,
        "the rare one is coarsened"
    );
    assert!(!demo.iter().any(|d| d.3 == "farmer"));
    // Answers as given: the first reference response (line 1) answered A1 with 5.
    assert!(rows.iter().all(|r| r[col("A1")].is_empty() || (1..=5).contains(&r[col("A1")].parse::<i32>().unwrap())));

    // In Q1, Tam Thang has 7 responses (< k): its rows are reported as its district's.
    let q1 = app.get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024-Q1", &token).await.text().await.unwrap();
    assert!(!q1.contains("QNM.TK.TT"));
    assert_eq!(q1.lines().count() - 1, 154);

    let with = app
        .get_as("/api/v1/exports/microdata.csv?within=QNM&period=2024&comments=true", &token)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(with.matches("Rất tốt").count(), 13);

    // XLSX holds the same rows.
    let xlsx = app.get_as("/api/v1/exports/microdata.xlsx?within=QNM&period=2024", &token).await.bytes().await.unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    let sheet = book.worksheet_range("Phiếu 1").unwrap();
    assert_eq!(sheet.height(), 615, "two heading rows and 613 responses");

    let out = error_body(
        app.get_as("/api/v1/exports/microdata.csv?within=QNM&comments=maybe", &token).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(out["fields"]["comments"].is_array());
    error_body(app.get_as("/api/v1/exports/microdata.pdf?within=QNM", &token).await, 404, "not_found").await;
}
