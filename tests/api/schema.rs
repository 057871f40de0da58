//! Anonymity by construction: the response tables can only hold what this list allows.
//! Adding a column to them (an IP, a user agent, a timestamp, an account, a token...) must
//! be a deliberate act that changes this test.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::helpers::spawn_app;

const RESPONSE_COLUMNS: [&str; 16] = [
    "age_band",
    "body_hash",
    "channel",
    "comment",
    "education",
    // Looked automated: kept, but out of the indices (no identifying value).
    "flagged",
    "form_id",
    "form_version",
    "gender",
    "id",
    "occupation",
    "respondent_type",
    "service",
    "submission_key",
    "survey_date",
    "unit_id",
];
const ANSWER_COLUMNS: [&str; 3] = ["item_code", "response_id", "value"];

async fn columns(db: &sea_orm::DatabaseConnection, table: &str) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            format!("SELECT name AS c, type AS t FROM pragma_table_info('{table}')")
        }
        _ => format!(
            "SELECT column_name::text AS c, data_type::text AS t FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
    };
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    let mut out: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.try_get::<String>("", "c").unwrap(), r.try_get::<String>("", "t").unwrap().to_lowercase()))
        .collect();
    out.sort();
    out
}

async fn tables(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT name AS n FROM sqlite_master WHERE type = 'table'".to_string(),
        _ => "SELECT table_name::text AS n FROM information_schema.tables WHERE table_schema = current_schema()"
            .to_string(),
    };
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    rows.iter().map(|r| r.try_get::<String>("", "n").unwrap()).collect()
}

#[tokio::test]
async fn response_tables_have_no_identifying_columns() {
    let app = spawn_app().await;
    let responses = columns(&app.db, "responses").await;
    let names: Vec<&str> = responses.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, RESPONSE_COLUMNS, "responses gained or lost a column");
    let answers = columns(&app.db, "answers").await;
    let names: Vec<&str> = answers.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ANSWER_COLUMNS, "answers gained or lost a column");

    // The survey date is a date: no time of day can be stored in it (SQLite declares
    // sea-query's `date_text`, holding `YYYY-MM-DD`).
    let date_type = &responses.iter().find(|(c, _)| c == "survey_date").unwrap().1;
    assert!(date_type == "date" || date_type == "date_text", "{date_type}");
}

#[tokio::test]
async fn no_other_table_points_at_a_response() {
    let app = spawn_app().await;
    for table in tables(&app.db).await {
        if table == "answers" || table == "responses" {
            continue;
        }
        let cols = columns(&app.db, &table).await;
        if table == "unfolded" {
            // Responses stored but not yet in the tallies: their id alone, nothing beside
            // it, and only until the next fold (`rows_wait_to_be_folded_only_briefly`).
            let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
            assert_eq!(names, ["response_id"], "unfolded gained a column");
            continue;
        }
        let linking = |c: &str| c.contains("response_id") || c.contains("submission") || c == "answer_id";
        assert!(!cols.iter().any(|(c, _)| linking(c)), "{table} links to responses: {cols:?}");
    }
}
