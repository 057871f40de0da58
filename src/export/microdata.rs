//! Anonymised microdata: one row per response, streamed page by page so memory stays flat,
//! all read from one snapshot of the database (`Snapshot`), so a file taken while
//! submissions arrive is the database as it was at one instant.
//!
//! The file lets a reader count rows by group, period, one breakdown and demographics, so
//! every such count is made a figure the publication gate shows (`publish`), decided on the
//! snapshot's own counts:
//! - rows are published in groups that are cells of the lattice: a unit's whole subtree, or
//!   only its own responses when it and each child with responses are shown on their own;
//!   every row of a group carries the group's label, so rows of a small child relabelled as
//!   its parent cannot be told from the parent's own;
//! - each group's period is the finest of month, quarter and the export's period whose cells
//!   the gate shows for that group, whole (never per row);
//! - one breakdown column (respondent type by default, or the filtered one) keeps its values
//!   when every cell of the group × period × value is shown; otherwise it is `*` for the
//!   group; the other breakdown columns are always `*` (crossed, they would be cells no
//!   table publishes);
//! - demographics are not on the lattice: each combination must be shared by at least k rows
//!   of the same group, period and breakdown value, else education and occupation become
//!   `*`, then all four; a leftover under k takes the next-smallest combinations with it, so
//!   no row is dropped (a dropped row would be a shown cell minus the file);
//! - a group the gate withholds (and the whole file, when the export's unit is withheld)
//!   has no rows; comments only when asked for; rows never carry the response id.
//!
//! Unit managers may not download microdata (`export::files`): they serve the
//! citizens whose rows these are, and could recognise them by what they know of the visit.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, StreamTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::Cell;
use crate::entities::response;
use crate::forms::{AnswerKind, DemographicKey};
use crate::index::catalog::Versioned;
use crate::index::period::Period;
use crate::index::report::Filters;
use crate::publish::{self, Gate, Publisher};
use crate::store::tallies::Dim;
use crate::units::UnitTree;

const PAGE: u64 = 1000;

pub struct Request {
    pub form_id: String,
    /// The unit whose subtree is exported.
    pub within: i32,
    pub period: Period,
    pub filters: Filters,
    /// The breakdown column that may keep its values when no filter is given.
    pub column: Dim,
    pub k: u64,
    pub comments: bool,
}

type Demo = [Option<String>; 4];

/// How finely a group's rows are placed in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    Month,
    Quarter,
    /// The export's own period.
    Whole,
}

/// One group of rows, as the file labels it.
#[derive(Clone, Debug)]
pub struct Group {
    pub code: String,
    pub name: String,
    /// Only the unit's own responses (its children have groups of their own).
    pub own: bool,
    pub grain: Grain,
    /// The breakdown column that keeps its values in this group, if any.
    pub column: Option<Dim>,
    pub rows: u64,
    /// Rows whose demographics were coarsened.
    pub coarsened: u64,
}

/// What each unit and demographic combination is published as.
pub struct Plan {
    /// Unit id → its group; units without a group are withheld.
    group_of: HashMap<i32, usize>,
    pub groups: Vec<Group>,
    /// (group, period label, breakdown value, demographics) → what is shown.
    demo: HashMap<(usize, String, String, Demo), Demo>,
    period: Period,
    pub rows: u64,
}

fn scope_filter(r: &Request, units: &[i32]) -> Condition {
    // Flagged responses are out of the indices, and out of the microdata too.
    let mut c = Condition::all()
        .add(response::Column::Flagged.eq(false))
        .add(response::Column::FormId.eq(r.form_id.clone()))
        .add(response::Column::UnitId.is_in(units.to_vec()))
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

/// The value of a breakdown dimension for a response, as the tallies spell it.
fn value_of(dim: Dim, respondent_type: &str, channel: &str, service: Option<&str>) -> String {
    match dim {
        Dim::RespondentType => respondent_type.to_string(),
        Dim::Channel => channel.to_string(),
        Dim::Service => service.unwrap_or_default().to_string(),
    }
}

/// The label of the sub-period of `within` that holds `date` at `grain`.
fn period_label(grain: Grain, within: &Period, date: NaiveDate) -> String {
    match grain {
        Grain::Month => format!("{}-{:02}", date.year(), date.month()),
        Grain::Quarter => format!("{}-Q{}", date.year(), (date.month() - 1) / 3 + 1),
        Grain::Whole => within.label(),
    }
}

/// What a row can be told apart by, in the order the plan counts and the rows read them.
const QUASI_IDENTIFIERS: [response::Column; 9] = [
    response::Column::UnitId,
    response::Column::SurveyDate,
    response::Column::RespondentType,
    response::Column::Channel,
    response::Column::Service,
    response::Column::Gender,
    response::Column::AgeBand,
    response::Column::Education,
    response::Column::Occupation,
];

/// Responses of the export counted by unit, month (its first day), breakdown values and
/// demographics.
type Counted = (i32, NaiveDate, String, String, Option<String>, Demo, u64);

async fn counts<C: ConnectionTrait + StreamTrait>(db: &C, r: &Request, units: &[i32]) -> Result<Vec<Counted>, DbErr> {
    use futures_util::TryStreamExt;
    type Row = (
        i32,
        NaiveDate,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let grouped = QUASI_IDENTIFIERS.into_iter().fold(
        response::Entity::find()
            .select_only()
            .columns(QUASI_IDENTIFIERS)
            .column_as(response::Column::Id.count(), "n")
            .filter(scope_filter(r, units)),
        |q, c| q.group_by(c),
    );
    // Streamed and added up by month, the finest period a row is labelled with: by day there
    // is nearly a group per response, and the driver's rows of them all, held at once, were
    // 50 MB of a 50,000-row export.
    type Key = (i32, NaiveDate, String, String, Option<String>, Demo);
    let mut by_month: HashMap<Key, u64> = HashMap::new();
    let mut rows = grouped.into_tuple::<Row>().stream(db).await?;
    while let Some((u, d, rt, ch, sv, g, a, e, o, n)) = rows.try_next().await? {
        let month = d.with_day(1).unwrap_or(d);
        *by_month.entry((u, month, rt, ch, sv, [g, a, e, o])).or_default() += n.max(0) as u64;
    }
    Ok(by_month.into_iter().map(|((u, m, rt, ch, sv, demo), n)| (u, m, rt, ch, sv, demo, n)).collect())
}

/// Decides the groups, their periods and columns, and the demographics, on the gate's
/// lattices decided from the same snapshot.
pub async fn plan<C: ConnectionTrait + StreamTrait>(
    db: &C,
    publisher: &Publisher,
    tree: &UnitTree,
    r: &Request,
) -> Result<Plan, DbErr> {
    let units = tree.subtree(r.within);
    let counted = counts(db, r, &units).await?;
    let (filter_dim, filter_value) = r.filters.dimension();
    let periods = [r.period];
    // The gate of the rows as they are (all respondents, or the filtered value) and, without
    // a filter, the gate of the breakdown column.
    let gate = Gate::load(publisher, db, tree, r.within, &r.form_id, &periods, filter_dim, r.k).await?;
    let column_gate = match filter_dim {
        Some(_) => None,
        None => Some(Gate::load(publisher, db, tree, r.within, &r.form_id, &periods, Some(r.column), r.k).await?),
    };
    let shown = |unit_id: i32, own: bool, period: Period| {
        gate.decide(&publish::Cell { unit_id, own, period, value: filter_value }).is_none()
    };

    let mut own_n: HashMap<i32, u64> = HashMap::new();
    for c in &counted {
        *own_n.entry(c.0).or_default() += c.6;
    }
    let subtree_n = |id: i32| -> u64 { tree.subtree(id).iter().map(|u| own_n.get(u).copied().unwrap_or(0)).sum() };

    // The groups: split a unit into its own responses and its children's subtrees only when
    // each of those is shown (or empty); otherwise the whole subtree is one group.
    let mut nodes: Vec<(i32, bool)> = Vec::new();
    if subtree_n(r.within) > 0 && shown(r.within, false, r.period) {
        let mut stack = vec![r.within];
        while let Some(u) = stack.pop() {
            let children: Vec<i32> = tree.children_all(u).iter().copied().filter(|c| subtree_n(*c) > 0).collect();
            let own = own_n.get(&u).copied().unwrap_or(0);
            let split = !children.is_empty()
                && (own == 0 || shown(u, true, r.period))
                && children.iter().all(|c| shown(*c, false, r.period));
            if split {
                if own > 0 {
                    nodes.push((u, true));
                }
                stack.extend(children);
            } else {
                nodes.push((u, false));
            }
        }
    }
    let mut group_of = HashMap::new();
    let mut groups = Vec::new();
    for (g, (u, own)) in nodes.iter().enumerate() {
        let members = if *own { vec![*u] } else { tree.subtree(*u) };
        for m in members {
            group_of.insert(m, g);
        }
        let unit = tree.get(*u);
        let column = filter_dim.or(Some(r.column));
        // The finest grain whose cells are all shown, with the breakdown column if it can
        // keep its values there, else without it.
        let grains: Vec<(Grain, Vec<Period>)> =
            [(Grain::Month, r.period.series(false)), (Grain::Quarter, r.period.series(true))]
                .into_iter()
                .filter(|(_, ps)| ps.iter().all(|p| publish::lattice_time(p).is_some()) && ps.len() > 1)
                .chain([(Grain::Whole, vec![r.period])])
                .collect();
        let column_ok = |ps: &[Period]| match &column_gate {
            None => true,
            Some(cg) => ps.iter().all(|p| {
                cg.values(p.from.year())
                    .iter()
                    .all(|v| cg.decide(&publish::Cell { unit_id: *u, own: *own, period: *p, value: Some(v) }).is_none())
            }),
        };
        let none_ok = |ps: &[Period]| ps.iter().all(|p| shown(*u, *own, *p));
        let (grain, column) = grains
            .iter()
            .find(|(_, ps)| none_ok(ps) && column_ok(ps))
            .map(|(g, _)| (*g, column))
            .or_else(|| grains.iter().find(|(_, ps)| none_ok(ps)).map(|(g, _)| (*g, None)))
            .unwrap_or((Grain::Whole, None));
        groups.push(Group {
            code: unit.map(|u| u.code.clone()).unwrap_or_default(),
            name: unit.map(|u| u.name_vi.clone()).unwrap_or_default(),
            own: *own,
            grain,
            column,
            rows: 0,
            coarsened: 0,
        });
    }

    // Demographics: k-anonymous within each group × period × breakdown value.
    let mut classes: BTreeMap<(usize, String, String), BTreeMap<Demo, u64>> = BTreeMap::new();
    let mut rows = 0;
    for (u, day, rt, ch, sv, demo, n) in &counted {
        let Some(g) = group_of.get(u).copied() else { continue };
        let group = &mut groups[g];
        group.rows += n;
        rows += n;
        let t = period_label(group.grain, &r.period, *day);
        let v = group.column.map(|d| value_of(d, rt, ch, sv.as_deref())).unwrap_or_else(|| "*".into());
        *classes.entry((g, t, v)).or_default().entry(demo.clone()).or_default() += n;
    }
    let mut demo = HashMap::new();
    for ((g, t, v), combos) in classes {
        for (from, (to, n)) in coarsen(&combos, r.k) {
            if from != to {
                groups[g].coarsened += n;
            }
            demo.insert((g, t.clone(), v.clone(), from), to);
        }
    }
    Ok(Plan { group_of, groups, demo, period: r.period, rows })
}

/// Demographic combinations of one class made k-anonymous: a combination shared by fewer
/// than k rows loses education and occupation, then everything; a leftover of fully
/// coarsened rows under k takes the next-smallest shown combinations with it.
fn coarsen(combos: &BTreeMap<Demo, u64>, k: u64) -> BTreeMap<Demo, (Demo, u64)> {
    let star = || Some("*".to_string());
    let partial_of = |d: &Demo| -> Demo { [d[0].clone(), d[1].clone(), star(), star()] };
    let none: Demo = [star(), star(), star(), star()];
    let mut shown: BTreeMap<Demo, Demo> = BTreeMap::new();
    let mut partial: BTreeMap<Demo, u64> = BTreeMap::new();
    for (d, n) in combos {
        if *n >= k {
            shown.insert(d.clone(), d.clone());
        } else {
            *partial.entry(partial_of(d)).or_default() += n;
        }
    }
    for d in combos.keys() {
        if !shown.contains_key(d) {
            let p = partial_of(d);
            shown.insert(d.clone(), if partial[&p] >= k { p } else { none.clone() });
        }
    }
    // The leftover: while fully coarsened rows are fewer than k, coarsen the smallest
    // shown combination as well.
    loop {
        let mut sizes: BTreeMap<Demo, u64> = BTreeMap::new();
        for (d, n) in combos {
            *sizes.entry(shown[d].clone()).or_default() += n;
        }
        let left = sizes.get(&none).copied().unwrap_or(0);
        if left == 0 || left >= k {
            break;
        }
        let Some((smallest, _)) = sizes.iter().filter(|(d, _)| **d != none).min_by_key(|(d, n)| (**n, (*d).clone()))
        else {
            break;
        };
        let smallest = smallest.clone();
        for to in shown.values_mut() {
            if *to == smallest {
                *to = none.clone();
            }
        }
    }
    combos.iter().map(|(d, n)| (d.clone(), (shown[d].clone(), *n))).collect()
}

/// The column names for a form.
pub fn header(form: &Versioned, comments: bool) -> Vec<String> {
    let mut h: Vec<String> = ["unit", "unit_name", "unit_covers", "period", "respondent_type", "channel", "service"]
        .iter()
        .map(|s| s.to_string())
        .collect();
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
                "unit_covers" => "Phạm vi (own: phiếu của riêng đơn vị; subtree: cả đơn vị trực thuộc)".into(),
                "period" => "Kỳ khảo sát".into(),
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
    if let Some(Cell::Text(code)) = row.get_mut(4)
        && let Some(r) = RespondentType::parse(code)
    {
        *code = r.label(crate::Lang::Vi).to_string();
    }
    if let Some(Cell::Text(code)) = row.get_mut(5)
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
    pub async fn open(
        db: &DatabaseConnection,
        publisher: &Publisher,
        tree: &UnitTree,
        request: &Request,
    ) -> Result<Snapshot, DbErr> {
        let txn = crate::store::begin_snapshot(db).await?;
        let plan = plan(&txn, publisher, tree, request).await?;
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
        // Only the units with a group: the others are withheld.
        let mut units: Vec<i32> = plan.group_of.keys().copied().collect();
        units.sort_unstable();
        let heads = response::Entity::find()
            .select_only()
            .column(response::Column::Id)
            .columns(QUASI_IDENTIFIERS)
            .column(response::Column::Comment)
            .column_as(Expr::cust(ANSWERS), "answers")
            .filter(scope_filter(request, &units))
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
        let g = *self.plan.group_of.get(&r.unit_id)?;
        let group = &self.plan.groups[g];
        let t = period_label(group.grain, &self.plan.period, r.survey_date);
        let star = || Cell::Text("*".into());
        let shows = |d: Dim| group.column == Some(d);
        let v = group.column.map(|d| value_of(d, &r.respondent_type, &r.channel, r.service.as_deref()));
        let demo: Demo = [r.gender.clone(), r.age_band.clone(), r.education.clone(), r.occupation.clone()];
        let key = (g, t.clone(), v.unwrap_or_else(|| "*".into()), demo);
        let shown = self.plan.demo.get(&key).cloned().unwrap_or_default();
        let mut row = vec![
            Cell::Text(group.code.clone()),
            Cell::Text(group.name.clone()),
            Cell::Text(if group.own { "own" } else { "subtree" }.into()),
            Cell::Text(t),
            if shows(Dim::RespondentType) { Cell::Text(r.respondent_type.clone()) } else { star() },
            if shows(Dim::Channel) { Cell::Text(r.channel.clone()) } else { star() },
            if shows(Dim::Service) { Cell::Text(r.service.clone().unwrap_or_default()) } else { star() },
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

/// The workbook's "Thông tin" sheet: how the file was coarsened, group by group.
pub fn xlsx_info(
    book: &mut rust_xlsxwriter::Workbook,
    groups: &[Group],
    k: u64,
    period: &Period,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let sheet = book.add_worksheet().set_name("Thông tin")?;
    let notes = [
        format!("Kỳ: {}. Ngưỡng k = {k} phiếu.", period.label()),
        "Mỗi nhóm phiếu là một ô mà các bảng chỉ số được phép công bố: đơn vị cùng các đơn vị trực thuộc (subtree), \
         hoặc chỉ phiếu của riêng đơn vị (own). Phiếu của đơn vị trực thuộc quá ít phiếu mang mã của đơn vị cấp trên."
            .to_string(),
        "Kỳ của một nhóm là tháng, quý hoặc cả kỳ xuất: mức chi tiết nhất mà mọi ô của nhóm đều được công bố.".to_string(),
        "Chỉ một cột phân tổ (đối tượng, kênh hoặc lĩnh vực) giữ giá trị, ở những nhóm mà mọi giá trị đều được công bố; \
         các cột còn lại là *."
            .to_string(),
        format!(
            "Nhân khẩu học: tổ hợp có ít hơn {k} phiếu trong cùng nhóm, kỳ và giá trị phân tổ được gộp \
             (trình độ và nghề nghiệp thành *, rồi cả bốn). Không phiếu nào bị bỏ."
        ),
    ];
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (r, note) in notes.iter().enumerate() {
        sheet.write_string(r as u32, 0, note)?;
    }
    let top = notes.len() as u32 + 1;
    let columns = [
        ("Mã đơn vị", "unit"),
        ("Tên đơn vị", "unit_name"),
        ("Phạm vi", "unit_covers"),
        ("Kỳ", "grain"),
        ("Cột phân tổ giữ giá trị", "breakdown"),
        ("Số phiếu", "rows"),
        ("Phiếu có nhân khẩu học đã gộp", "coarsened"),
    ];
    for (c, (heading, code)) in columns.iter().enumerate() {
        sheet.write_string_with_format(top, c as u16, *heading, &bold)?;
        sheet.write_string(top + 1, c as u16, *code)?;
    }
    sheet.set_column_width(0, 14)?;
    sheet.set_column_width(1, 30)?;
    for (i, g) in groups.iter().enumerate() {
        let r = top + 2 + i as u32;
        let grain = match g.grain {
            Grain::Month => "tháng",
            Grain::Quarter => "quý",
            Grain::Whole => "cả kỳ",
        };
        let column = match g.column {
            Some(Dim::RespondentType) => "respondent_type",
            Some(Dim::Channel) => "channel",
            Some(Dim::Service) => "service",
            None => "*",
        };
        sheet.write_string(r, 0, &g.code)?;
        sheet.write_string(r, 1, &g.name)?;
        sheet.write_string(r, 2, if g.own { "own" } else { "subtree" })?;
        sheet.write_string(r, 3, grain)?;
        sheet.write_string(r, 4, column)?;
        sheet.write_number(r, 5, g.rows as f64)?;
        sheet.write_number(r, 6, g.coarsened as f64)?;
    }
    Ok(())
}
