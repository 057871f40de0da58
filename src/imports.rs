//! Bulk imports keyed in by staff: paper responses (JSON Lines, with their survey `date`)
//! and service volumes (CSV). Each file is validated whole, like the API validates one
//! body, and written in one transaction, or not at all, with every problem by line.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::Lang;
use crate::forms::submission::{self, SubmissionBody, UnitRef};
use crate::startup::AppState;
use crate::store;
use crate::store::responses::BatchReport;

/// One line of a paper import: a submission body plus the date written on the form.
#[derive(Deserialize)]
struct PaperLine {
    date: Option<Value>,
    #[serde(flatten)]
    body: SubmissionBody,
    /// What the body does not take: a flattened struct passes unknown fields over silently,
    /// so they are caught here and refused.
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// Imports responses: each line is a submission body plus `date` (YYYY-MM-DD).
pub async fn responses_jsonl(state: &AppState, text: &str) -> anyhow::Result<Result<BatchReport, Vec<String>>> {
    let today = crate::vietnam_today();
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    let mut lines_of = Vec::new();
    let mut units: HashMap<String, Option<UnitRef>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // Straight from the text into the body: a `Value` first would keep the last of two
        // equal keys and hide a duplicate answer.
        let PaperLine { date, body, unknown } = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) if e.is_syntax() || e.is_eof() => {
                errors.push(format!("line {line_no}: not JSON: {e}"));
                continue;
            }
            Err(e) => {
                errors.push(format!("line {line_no}: {e}"));
                continue;
            }
        };
        if let Some(field) = unknown.keys().next() {
            errors.push(format!("line {line_no}: unknown field `{field}`"));
            continue;
        }
        let date = match date.as_ref().and_then(Value::as_str).map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d")) {
            Some(Ok(d)) => d,
            _ => {
                errors.push(format!("line {line_no}: date: must be the survey date, YYYY-MM-DD"));
                continue;
            }
        };
        if !units.contains_key(&body.unit) {
            let unit = store::units::unit_ref(&state.db, &body.unit, &state.forms).await?;
            units.insert(body.unit.clone(), unit);
        }
        let unit = units.get(&body.unit).and_then(Option::as_ref);
        // Paper forms keyed in by an administrator: no receipt code to check.
        match submission::validate(&body, unit, &state.forms, today, Some(date), true) {
            Ok(v) => {
                valid.push(v);
                lines_of.push(line_no);
            }
            Err(problems) => {
                for (field, messages) in problems.to_fields(Lang::En) {
                    errors.push(format!("line {line_no}: {field}: {}", messages.join("; ")));
                }
            }
        }
    }
    if valid.is_empty() && errors.is_empty() {
        errors.push("the file has no responses".into());
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let txn = store::begin_write(&state.db).await?;
    match store::responses::insert_batch(&txn, &state.catalog, &valid).await? {
        Ok(report) => {
            txn.commit().await?;
            if report.created > 0
                && let Err(e) = store::refresh_statistics(&state.db).await
            {
                tracing::warn!("refreshing statistics after an import failed: {e}");
            }
            Ok(Ok(report))
        }
        Err(conflicts) => {
            txn.rollback().await?;
            Ok(Err(conflicts.into_iter().map(|(i, m)| format!("line {}: {m}", lines_of[i])).collect()))
        }
    }
}

/// Imports volumes: CSV with the header `unit,month,dossiers` (month as YYYY-MM).
pub async fn volumes_csv(db: &DatabaseConnection, text: &str) -> anyhow::Result<Result<usize, Vec<String>>> {
    let tree = store::units::tree(db).await?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut errors = Vec::new();
    match reader.headers() {
        Ok(h) if h.iter().collect::<Vec<_>>() == ["unit", "month", "dossiers"] => {}
        _ => {
            return Ok(Err(vec!["line 1: the header must be unit,month,dossiers".into()]));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {}: {e}", e.position().map_or(0, |p| p.line())));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        match parse_volume(&tree, record.get(0), record.get(1), record.get(2)) {
            Ok(row) => rows.push(row),
            Err(problems) => errors.extend(problems.into_iter().map(|p| format!("line {line}: {p}"))),
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let txn = store::begin_write(db).await?;
    store::volumes::set(&txn, &rows).await?;
    txn.commit().await?;
    Ok(Ok(rows.len()))
}

/// One volume entry, checked: a known unit, a month `YYYY-MM`, a count 0..=1e9.
pub fn parse_volume(
    tree: &crate::units::UnitTree,
    unit: Option<&str>,
    month: Option<&str>,
    dossiers: Option<&str>,
) -> Result<(i32, NaiveDate, i64), Vec<String>> {
    let mut problems = Vec::new();
    let unit = unit.and_then(|u| tree.by_code(u));
    if unit.is_none() {
        problems.push("unit: no such unit".to_string());
    }
    let month = month.and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
    if month.is_none() {
        problems.push("month: must be YYYY-MM".to_string());
    }
    let dossiers = dossiers.and_then(|d| d.parse::<i64>().ok()).filter(|d| (0..=1_000_000_000).contains(d));
    if dossiers.is_none() {
        problems.push("dossiers: must be a whole number from 0 to 1000000000".to_string());
    }
    match (unit, month, dossiers) {
        (Some(u), Some(m), Some(d)) => Ok((u.id, m, d)),
        _ => Err(problems),
    }
}
