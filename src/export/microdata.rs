//! Anonymised microdata: one row per response, streamed page by page so memory stays flat,
//! all read from one snapshot of the database (`Snapshot`), so a file taken while
//! submissions arrive is the database as it was at one instant.
//!
//! What keeps a row from singling anyone out:
//! - the survey date is given as its month;
//! - a unit with fewer than k responses in the export is reported as its nearest ancestor
//!   that has k (rows of a scope under k are withheld altogether);
//! - demographics are published only for combinations shared by at least k rows of the
//!   same (reported) unit: otherwise education and occupation become `*`, and if gender and
//!   age band are still rarer than k, they become `*` too;
//! - comments only when asked for, and rows never carry the response id.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::Cell;
use crate::entities::response;
use crate::forms::{AnswerKind, DemographicKey};
use crate::index::catalog::Versioned;
use crate::index::period::Period;
use crate::index::report::Filters;
use crate::units::UnitTree;

const PAGE: u64 = 1000;

pub struct Request {
    pub form_id: String,
    pub units: Vec<i32>,
    pub period: Period,
    pub filters: Filters,
    pub k: u64,
    pub comments: bool,
}

type Demo = [Option<String>; 4];

/// What each unit and demographic combination is published as.
pub struct Plan {
    /// Reported (code, name) per unit; `None` when withheld.
    unit_label: HashMap<i32, Option<(String, String)>>,
    demo: HashMap<(String, Demo), Demo>,
    pub rows: u64,
}

fn scope_filter(r: &Request) -> Condition {
    // Flagged responses are out of the indices, and out of the microdata too.
    let mut c = Condition::all()
        .add(response::Column::Flagged.eq(false))
        .add(response::Column::FormId.eq(r.form_id.clone()))
        .add(response::Column::UnitId.is_in(r.units.clone()))
        .add(response::Column::SurveyDate.between(r.period.from, r.period.to));
    if let Some(v) = &r.filters.respondent_type {
        c = c.add(response::Column::RespondentType.eq(v.clone()));
    }
    if let Some(v) = &r.filters.channel {
        c = c.add(response::Column::Channel.eq(v.clone()));
    }
    if let Some(v) = &r.filters.service {
        c = c.add(response::Column::Service.eq(v.clone()));
    }
    c
}

pub async fn plan(db: &impl ConnectionTrait, tree: &UnitTree, r: &Request) -> Result<Plan, DbErr> {
    type Key = (i32, Option<String>, Option<String>, Option<String>, Option<String>);
    type Counted = (i32, Option<String>, Option<String>, Option<String>, Option<String>, i64);
    let counts: Vec<Counted> = response::Entity::find()
        .select_only()
        .column(response::Column::UnitId)
        .column(response::Column::Gender)
        .column(response::Column::AgeBand)
        .column(response::Column::Education)
        .column(response::Column::Occupation)
        .column_as(response::Column::Id.count(), "n")
        .filter(scope_filter(r))
        .group_by(response::Column::UnitId)
        .group_by(response::Column::Gender)
        .group_by(response::Column::AgeBand)
        .group_by(response::Column::Education)
        .group_by(response::Column::Occupation)
        .into_tuple()
        .all(db)
        .await?;
    let counts: Vec<(Key, u64)> =
        counts.into_iter().map(|(u, g, a, e, o, n)| ((u, g, a, e, o), n.max(0) as u64)).collect();

    // Units: responses per unit, pooled over its subtree within the export.
    let mut own: HashMap<i32, u64> = HashMap::new();
    for ((u, ..), n) in &counts {
        *own.entry(*u).or_default() += n;
    }
    let in_scope: std::collections::HashSet<i32> = r.units.iter().copied().collect();
    let pooled = |id: i32| -> u64 {
        tree.subtree(id).iter().filter(|u| in_scope.contains(u)).map(|u| own.get(u).copied().unwrap_or(0)).sum()
    };
    let mut unit_label = HashMap::new();
    for id in own.keys() {
        let mut current = Some(*id);
        let mut label = None;
        while let Some(c) = current.filter(|c| in_scope.contains(c)) {
            if pooled(c) >= r.k {
                label = tree.get(c).map(|u| (u.code.clone(), u.name_vi.clone()));
                break;
            }
            current = tree.get(c).and_then(|u| u.parent_id);
        }
        unit_label.insert(*id, label);
    }

    // Demographics, counted per reported unit.
    let mut full: HashMap<(String, Demo), u64> = HashMap::new();
    let mut partial: HashMap<(String, Option<String>, Option<String>), u64> = HashMap::new();
    let mut rows = 0;
    for ((u, g, a, e, o), n) in &counts {
        let Some(Some((code, _))) = unit_label.get(u) else { continue };
        rows += n;
        *full.entry((code.clone(), [g.clone(), a.clone(), e.clone(), o.clone()])).or_default() += n;
        *partial.entry((code.clone(), g.clone(), a.clone())).or_default() += n;
    }
    let star = || Some("*".to_string());
    let demo = full
        .iter()
        .map(|((code, d), n)| {
            let shown = if *n >= r.k {
                d.clone()
            } else if partial.get(&(code.clone(), d[0].clone(), d[1].clone())).copied().unwrap_or(0) >= r.k {
                [d[0].clone(), d[1].clone(), star(), star()]
            } else {
                [star(), star(), star(), star()]
            };
            ((code.clone(), d.clone()), shown)
        })
        .collect();
    Ok(Plan { unit_label, demo, rows })
}

/// The column names for a form.
pub fn header(form: &Versioned, comments: bool) -> Vec<String> {
    let mut h: Vec<String> =
        ["unit", "unit_name", "month", "respondent_type", "channel", "service"].iter().map(|s| s.to_string()).collect();
    h.extend(DemographicKey::ALL.iter().map(|k| k.as_str().to_string()));
    h.extend(form.form.answerables().iter().map(|(c, _, _)| c.to_string()));
    if comments {
        h.push("comment".into());
    }
    h
}

/// The columns of `header` with the heading people read in a workbook (Vietnamese).
pub fn headings(form: &Versioned, comments: bool) -> Vec<(String, String)> {
    let f = &form.form;
    let text = |code: &str| -> Option<String> {
        let items = f.index_items();
        let found = items.iter().map(|i| (&i.code, &i.text)).chain(f.expectations.iter().map(|i| (&i.code, &i.text)));
        let found = found.chain(f.questions.iter().map(|q| (&q.code, &q.text)));
        found.into_iter().find(|(c, _)| c.as_str() == code).map(|(_, t)| format!("{code}. {}", t.vi))
    };
    header(form, comments)
        .into_iter()
        .map(|code| {
            let heading = match code.as_str() {
                "unit" => "Mã đơn vị".to_string(),
                "unit_name" => "Tên đơn vị".into(),
                "month" => "Tháng khảo sát".into(),
                "respondent_type" => "Đối tượng".into(),
                "channel" => "Kênh".into(),
                "service" => "Lĩnh vực".into(),
                "comment" => "Ý kiến".into(),
                other => DemographicKey::parse(other)
                    .and_then(|k| f.demographics.iter().find(|d| d.key == k))
                    .map(|d| d.title.vi.clone())
                    .or_else(|| text(other))
                    .unwrap_or_else(|| other.to_string()),
            };
            (heading, code)
        })
        .collect()
}

/// A row for people (the workbook): respondent type and channel in Vietnamese words; the CSV
/// keeps the codes. Their columns are fixed by `header`.
pub fn in_words(mut row: Vec<Cell>) -> Vec<Cell> {
    use crate::forms::{Channel, RespondentType};
    if let Some(Cell::Text(code)) = row.get_mut(3)
        && let Some(r) = RespondentType::parse(code)
    {
        *code = r.label(crate::Lang::Vi).to_string();
    }
    if let Some(Cell::Text(code)) = row.get_mut(4)
        && let Some(c) = Channel::parse(code)
    {
        *code = c.label(crate::Lang::Vi).to_string();
    }
    row
}

/// A response as the export reads it, its answers folded into one `code:value,...` text.
#[derive(Debug, FromQueryResult)]
struct Head {
    id: Uuid,
    unit_id: i32,
    survey_date: NaiveDate,
    respondent_type: String,
    channel: String,
    service: Option<String>,
    gender: Option<String>,
    age_band: Option<String>,
    education: Option<String>,
    occupation: Option<String>,
    comment: Option<String>,
    answers: Option<String>,
}

/// The answers of a response, read in the same statement as the response. `string_agg`
/// exists under this name in PostgreSQL and SQLite (3.44+; the bundled one is newer).
const ANSWERS: &str = r#"(SELECT string_agg(item_code || ':' || CAST(value AS TEXT), ',') FROM answers WHERE answers.response_id = "responses"."id")"#;

/// `A1:5,Q2:1,Q2:3` as (code, value) pairs, by code and value; anything else is an error,
/// never a blank answer.
fn parse_answers(id: Uuid, folded: Option<&str>) -> Result<Vec<(String, i16)>, DbErr> {
    let mut out = Vec::with_capacity(24);
    for pair in folded.unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let parsed = pair.rsplit_once(':').and_then(|(code, v)| Some((code.to_string(), v.parse::<i16>().ok()?)));
        out.push(parsed.ok_or_else(|| DbErr::Custom(format!("unreadable answer {pair:?} of response {id}")))?);
    }
    out.sort();
    Ok(out)
}

type Stream<'a, T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, DbErr>> + Send + 'a>>;

/// One export's view of the database: a read-only transaction (`store::begin_snapshot`) in
/// which the plan is counted and the rows are read, so both see the same responses, each
/// with all its answers, however many are submitted meanwhile. Reading responses and
/// answers as two statements on two connections gave two snapshots, and the rows of a
/// response committed between them lost their answers.
pub struct Snapshot {
    txn: DatabaseTransaction,
    pub plan: Plan,
}

impl Snapshot {
    /// Opens the transaction and counts the plan in it.
    pub async fn open(db: &DatabaseConnection, tree: &UnitTree, request: &Request) -> Result<Snapshot, DbErr> {
        let txn = crate::store::begin_snapshot(db).await?;
        let plan = plan(&txn, tree, request).await?;
        Ok(Snapshot { txn, plan })
    }

    /// The rows, page by page.
    pub async fn pages<'a>(&'a self, request: &'a Request, form: &'a Versioned) -> Result<Pages<'a>, DbErr> {
        Pages::new(&self.txn, request, &self.plan, form).await
    }

    /// Ends the transaction (read-only: nothing to keep, but the end is checked).
    pub async fn close(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

/// Rows in pages of a thousand responses, read by one statement in response id order with
/// each response's answers folded in: one stream, because a transaction's connection serves
/// one stream at a time; one line per response, so the database sorts responses, not
/// answers. The order says nothing about time.
pub struct Pages<'a> {
    request: &'a Request,
    plan: &'a Plan,
    form: &'a Versioned,
    heads: Stream<'a, Head>,
    done: bool,
}

impl<'a> Pages<'a> {
    async fn new(
        txn: &'a DatabaseTransaction,
        request: &'a Request,
        plan: &'a Plan,
        form: &'a Versioned,
    ) -> Result<Pages<'a>, DbErr> {
        let heads = response::Entity::find()
            .select_only()
            .columns([
                response::Column::Id,
                response::Column::UnitId,
                response::Column::SurveyDate,
                response::Column::RespondentType,
                response::Column::Channel,
                response::Column::Service,
                response::Column::Gender,
                response::Column::AgeBand,
                response::Column::Education,
                response::Column::Occupation,
                response::Column::Comment,
            ])
            .column_as(Expr::cust(ANSWERS), "answers")
            .filter(scope_filter(request))
            .order_by_asc(response::Column::Id)
            .into_model::<Head>()
            .stream(txn)
            .await?;
        Ok(Pages { request, plan, form, heads: Box::pin(heads), done: false })
    }

    pub async fn next(&mut self) -> Result<Option<Vec<Vec<Cell>>>, DbErr> {
        if self.done {
            return Ok(None);
        }
        use futures_util::StreamExt;
        let mut rows = Vec::with_capacity(PAGE as usize);
        while rows.len() < PAGE as usize {
            let Some(head) = self.heads.next().await.transpose()? else {
                self.done = true;
                break;
            };
            let answers = parse_answers(head.id, head.answers.as_deref())?;
            rows.extend(self.row(&head, &answers));
        }
        Ok(if rows.is_empty() && self.done { None } else { Some(rows) })
    }

    /// The published row of one response (None when its unit is withheld).
    fn row(&self, r: &Head, answers: &[(String, i16)]) -> Option<Vec<Cell>> {
        let (code, name) = self.plan.unit_label.get(&r.unit_id)?.as_ref()?;
        let demo: Demo = [r.gender.clone(), r.age_band.clone(), r.education.clone(), r.occupation.clone()];
        let shown = self.plan.demo.get(&(code.clone(), demo)).cloned().unwrap_or_default();
        let mut row = vec![
            Cell::Text(code.clone()),
            Cell::Text(name.clone()),
            Cell::Text(month(r.survey_date)),
            Cell::Text(r.respondent_type.clone()),
            Cell::Text(r.channel.clone()),
            Cell::Text(r.service.clone().unwrap_or_default()),
        ];
        row.extend(shown.into_iter().map(|d| Cell::Text(d.unwrap_or_default())));
        for (code, kind, _) in self.form.form.answerables() {
            let values: Vec<i16> = answers.iter().filter(|(c, _)| c == code).map(|(_, v)| *v).collect();
            row.push(match (values.as_slice(), kind) {
                ([], _) => Cell::Empty,
                ([v], AnswerKind::IndexItem | AnswerKind::Expectation | AnswerKind::Question { multiple: false }) => {
                    Cell::Integer(i64::from(*v))
                }
                (vs, _) => Cell::Text(vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(";")),
            });
        }
        if self.request.comments {
            row.push(Cell::Text(r.comment.clone().unwrap_or_default()));
        }
        Some(row)
    }
}

fn month(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}
