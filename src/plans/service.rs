//! What the API and the console do with plans: list and read within one's scope; unit
//! managers (their units) and admins write; anyone who can see the unit comments. Every
//! input is checked here, every problem listed at once (422), and every change audited.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Change, Figure, Status};
use crate::auth::{Principal, Role};
use crate::entities::{plan, plan_criterion};
use crate::error::{ApiError, FieldErrors};
use crate::index::catalog::Versioned;
use crate::index::period::Period;
use crate::index::report::{self, Context, Filters, Rollup};
use crate::publish::query::{add, pick_unit};
use crate::startup::AppState;
use crate::units::UnitTree;
use crate::{audit, store};

const MAX_CRITERIA: usize = 10;
const MAX_TITLE: usize = 200;
const MAX_ACTIONS: usize = 4000;
const MAX_RESPONSIBLE: usize = 200;
const MAX_COMMENT: usize = 2000;

#[derive(Deserialize, ToSchema)]
pub struct NewPlan {
    /// The unit's code.
    pub unit: String,
    /// Form id; default: the first form the unit takes.
    pub form: Option<String>,
    /// Index item codes of the form (1 to 10), e.g. `["B3", "C2"]`.
    pub criteria: Vec<String>,
    /// The finished calendar year, quarter or month whose figures are the baseline.
    pub baseline_period: String,
    pub title: String,
    /// What will be done.
    pub actions: String,
    /// Who is responsible.
    pub responsible: String,
    /// YYYY-MM-DD, after the baseline period.
    pub deadline: String,
    /// `open` (default), `in_progress`, `done` or `dropped`.
    pub status: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct PlanChanges {
    pub title: Option<String>,
    pub actions: Option<String>,
    pub responsible: Option<String>,
    /// YYYY-MM-DD.
    pub deadline: Option<String>,
    /// `open`, `in_progress`, `done` or `dropped`.
    pub status: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct NewComment {
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct Criterion {
    pub code: String,
    /// The item's text (Vietnamese).
    pub text: String,
    /// Frozen when the plan was made.
    pub baseline: Figure,
}

#[derive(Serialize, ToSchema)]
pub struct PlanView {
    pub id: Uuid,
    pub unit: String,
    pub unit_name: String,
    pub form: String,
    pub title: String,
    pub actions: String,
    pub responsible: String,
    pub deadline: NaiveDate,
    pub status: Status,
    /// Still open or in progress after its deadline.
    pub overdue: bool,
    pub baseline_period: String,
    pub criteria: Vec<Criterion>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Evaluation {
    pub before: String,
    pub after: String,
    /// The chosen date, when the periods were placed from one instead of the deadline.
    pub from: Option<NaiveDate>,
    pub changes: Vec<Change>,
    /// How the verdict is reached.
    pub method: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CommentView {
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanDetail {
    #[serde(flatten)]
    pub plan: PlanView,
    pub evaluation: Evaluation,
    pub comments: Vec<CommentView>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub plans: Vec<PlanView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Plans of this unit and the units below it; default: your unit, or the province.
    pub unit: Option<String>,
    /// `open`, `in_progress`, `done` or `dropped`.
    pub status: Option<String>,
    /// `true`: only plans past their deadline and not done or dropped.
    pub overdue: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetailQuery {
    /// YYYY-MM-DD: compare the period of the baseline's kind from this day with the one
    /// before it, instead of the baseline with the first period after the deadline.
    pub from: Option<String>,
}

pub const METHOD: &str = "after − before, in points, with the 95% Newcombe–Wilson interval for the difference of two independent proportions; improved when the whole interval is above 0, worse when it is below 0, else no clear change; no verdict when either period is withheld by the publication gate or the period after has not ended";

/// Text with control characters taken out (line breaks and tabs kept where `multiline`),
/// trimmed; a problem when empty or longer than `max` characters.
fn text_field(fields: &mut FieldErrors, name: &str, value: &str, max: usize, multiline: bool) -> String {
    let cleaned: String =
        value.chars().filter(|c| !c.is_control() || (multiline && matches!(c, '\n' | '\t'))).collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() {
        add(fields, name, "must not be empty");
    } else if cleaned.chars().count() > max {
        add(fields, name, format!("at most {max} characters"));
    }
    cleaned
}

fn parse_day(fields: &mut FieldErrors, name: &str, value: &str) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok();
    if parsed.is_none() {
        add(fields, name, "must be a date, YYYY-MM-DD");
    }
    parsed
}

fn parse_status(fields: &mut FieldErrors, value: &str) -> Option<Status> {
    let parsed = Status::parse(value);
    if parsed.is_none() {
        add(fields, "status", "must be open, in_progress, done or dropped");
    }
    parsed
}

/// Writing a unit's plans: its managers (within their scope) and admins; analysts read.
fn require_writer(who: &Principal, tree: &UnitTree, unit_id: i32) -> Result<(), ApiError> {
    if who.role == Role::Analyst {
        return Err(ApiError::Forbidden("analysts read and comment on plans; a unit's managers write them".into()));
    }
    who.require_unit(tree, unit_id)
}

fn form_of(state: &AppState, id: &str) -> Option<std::sync::Arc<Versioned>> {
    let f = state.forms.get(id)?;
    state.catalog.get(&f.form.id, f.form.version).cloned()
}

/// The published figures of `codes` at a unit for a period.
pub async fn figures(
    state: &AppState,
    tree: &UnitTree,
    form: &Versioned,
    unit: &crate::entities::unit::Model,
    period: Period,
    codes: &[String],
) -> Result<Vec<Figure>, ApiError> {
    let ctx = Context::settled(state, tree).await;
    let request = report::IndexRequest {
        form,
        unit,
        period,
        filters: Filters::default(),
        rollup: Rollup::Pooled,
        breakdown: None,
        k: state.settings.suppression_k,
    };
    let r = report::index(&ctx, &request).await?;
    let withheld = r.figures.suppressed || r.figures.withheld.is_some();
    Ok(codes
        .iter()
        .map(|c| {
            let item = r.figures.items.iter().find(|i| &i.code == c);
            if withheld { Figure::withheld(period.label()) } else { Figure::of(&period, item) }
        })
        .collect())
}

fn baseline_of(c: &plan_criterion::Model, period: &str) -> Figure {
    match (u64::try_from(c.baseline_n).ok(), c.baseline_satisfied.and_then(|s| u64::try_from(s).ok())) {
        (Some(n), Some(s)) => Figure::shown(period.to_string(), n, s),
        _ => Figure::withheld(period.to_string()),
    }
}

fn item_text(form: Option<&Versioned>, code: &str) -> String {
    form.and_then(|f| f.form.index_items().into_iter().find(|i| i.code == code).map(|i| i.text.vi.clone()))
        .unwrap_or_default()
}

pub fn view(
    state: &AppState,
    tree: &UnitTree,
    p: &plan::Model,
    criteria: &[plan_criterion::Model],
    today: NaiveDate,
) -> PlanView {
    let unit = tree.get(p.unit_id);
    let form = form_of(state, &p.form_id);
    let status = Status::parse(&p.status).unwrap_or(Status::Open);
    PlanView {
        id: p.id,
        unit: unit.map(|u| u.code.clone()).unwrap_or_default(),
        unit_name: unit.map(|u| u.name_vi.clone()).unwrap_or_default(),
        form: p.form_id.clone(),
        title: p.title.clone(),
        actions: p.actions.clone(),
        responsible: p.responsible.clone(),
        deadline: p.deadline,
        status,
        overdue: status.is_active() && p.deadline < today,
        baseline_period: p.baseline_period.clone(),
        criteria: criteria
            .iter()
            .map(|c| Criterion {
                code: c.code.clone(),
                text: item_text(form.as_deref(), &c.code),
                baseline: baseline_of(c, &p.baseline_period),
            })
            .collect(),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// Before and after for each criterion of a plan.
pub async fn evaluate(
    state: &AppState,
    tree: &UnitTree,
    p: &plan::Model,
    criteria: &[plan_criterion::Model],
    chosen: Option<NaiveDate>,
) -> Result<Evaluation, ApiError> {
    let baseline = Period::parse(&p.baseline_period).ok_or_else(|| ApiError::internal("a plan's baseline period"))?;
    let (before, after) = super::periods(&baseline, p.deadline, chosen);
    let codes: Vec<String> = criteria.iter().map(|c| c.code.clone()).collect();
    let unit = tree.get(p.unit_id).ok_or_else(|| ApiError::NotFound("the plan's unit is gone".into()))?;
    let today = crate::vietnam_today();
    let changes = match form_of(state, &p.form_id) {
        None => Vec::new(),
        Some(form) => {
            let after_figures = if after.from <= today {
                figures(state, tree, &form, unit, after, &codes).await?
            } else {
                codes.iter().map(|_| Figure::withheld(after.label())).collect()
            };
            let before_figures = match chosen {
                None => criteria.iter().map(|c| baseline_of(c, &p.baseline_period)).collect(),
                Some(_) => figures(state, tree, &form, unit, before, &codes).await?,
            };
            codes
                .iter()
                .zip(before_figures.into_iter().zip(after_figures))
                .map(|(code, (b, a))| super::judge(code, b, a, after.to < today))
                .collect()
        }
    };
    Ok(Evaluation { before: before.label(), after: after.label(), from: chosen, changes, method: METHOD })
}

async fn load(state: &AppState, tree: &UnitTree, who: &Principal, id: &str) -> Result<store::plans::Full, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no plan {id}")))?;
    let full = store::plans::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("no plan {id}")))?;
    // Out of scope reads as missing: a plan's existence says which unit has a problem.
    if !who.can_see(tree, full.plan.unit_id) {
        return Err(ApiError::NotFound(format!("no plan {id}")));
    }
    Ok(full)
}

/// Plans of a unit and the units below it.
pub async fn list(state: &AppState, who: &Principal, q: &ListQuery) -> Result<PlanList, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let root = pick_unit(&tree, who, q.unit.as_deref())?;
    let mut fields = FieldErrors::new();
    let status = q.status.as_deref().and_then(|s| parse_status(&mut fields, s));
    let overdue = match q.overdue.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            add(&mut fields, "overdue", "must be true or false");
            false
        }
    };
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let today = crate::vietnam_today();
    let plans = store::plans::list(&state.db, &tree.subtree(root.id))
        .await?
        .iter()
        .map(|(p, c)| view(state, &tree, p, c, today))
        .filter(|v| status.is_none_or(|s| v.status == s) && (!overdue || v.overdue))
        .collect();
    Ok(PlanList { plans })
}

/// Make a plan: the baseline of each criterion is frozen as published now.
pub async fn create(state: &AppState, who: &Principal, body: &NewPlan) -> Result<PlanView, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let unit = tree.by_code(&body.unit).ok_or_else(|| ApiError::NotFound(format!("no unit {}", body.unit)))?.clone();
    require_writer(who, &tree, unit.id)?;
    let today = crate::vietnam_today();
    let mut fields = FieldErrors::new();
    if unit.valid_to.is_some_and(|d| d <= today) {
        add(&mut fields, "unit", "this unit has ended: plans are made by the unit its work went to");
    }
    let taken = tree.effective_forms(unit.id, &state.forms.ids());
    let form_id = body.form.clone().or_else(|| taken.first().cloned()).unwrap_or_default();
    let form = form_of(state, &form_id);
    if form.is_none() {
        add(&mut fields, "form", format!("unknown form {form_id:?}"));
    }
    let items: Vec<String> =
        form.as_ref().map(|f| f.form.index_items().iter().map(|i| i.code.clone()).collect()).unwrap_or_default();
    let mut codes: Vec<String> = Vec::new();
    if body.criteria.is_empty() || body.criteria.len() > MAX_CRITERIA {
        add(&mut fields, "criteria", format!("name 1 to {MAX_CRITERIA} criteria"));
    }
    for (i, c) in body.criteria.iter().take(MAX_CRITERIA).enumerate() {
        if form.is_some() && !items.contains(c) {
            add(&mut fields, &format!("criteria[{i}]"), "not an index item of the form");
        } else if codes.contains(c) {
            add(&mut fields, &format!("criteria[{i}]"), "named twice");
        } else {
            codes.push(c.clone());
        }
    }
    let baseline = Period::parse(&body.baseline_period).filter(|p| !p.label().contains(".."));
    match baseline {
        None => add(&mut fields, "baseline_period", "must be a year (2025), a quarter (2025-Q2) or a month (2025-03)"),
        Some(p) if p.to >= today => {
            add(&mut fields, "baseline_period", "must have ended: a baseline is a finished period")
        }
        Some(_) => {}
    }
    let title = text_field(&mut fields, "title", &body.title, MAX_TITLE, false);
    let actions = text_field(&mut fields, "actions", &body.actions, MAX_ACTIONS, true);
    let responsible = text_field(&mut fields, "responsible", &body.responsible, MAX_RESPONSIBLE, false);
    let deadline = parse_day(&mut fields, "deadline", &body.deadline);
    if let (Some(d), Some(b)) = (deadline, baseline)
        && (d <= b.to || d > today + chrono::TimeDelta::days(5 * 366))
    {
        add(&mut fields, "deadline", "must be after the baseline period and within five years");
    }
    let status = body.status.as_deref().map_or(Some(Status::Open), |s| parse_status(&mut fields, s));
    let (Some(form), Some(baseline), Some(deadline), Some(status), true) =
        (form, baseline, deadline, status, fields.is_empty())
    else {
        return Err(ApiError::validation(fields));
    };

    let frozen = figures(state, &tree, &form, &unit, baseline, &codes).await?;
    let now = Utc::now();
    let id = Uuid::new_v4();
    let model = plan::Model {
        id,
        unit_id: unit.id,
        form_id: form.form.id.clone(),
        title,
        actions,
        responsible,
        deadline,
        status: status.as_str().to_string(),
        baseline_period: baseline.label(),
        created_by: Some(who.user_id),
        created_at: now,
        updated_at: now,
    };
    let criteria: Vec<plan_criterion::Model> = codes
        .iter()
        .zip(&frozen)
        .map(|(code, f)| plan_criterion::Model {
            plan_id: id,
            code: code.clone(),
            baseline_n: f.n.map_or(0, |n| n as i64),
            baseline_satisfied: f.satisfied.map(|s| s as i64),
            baseline_value: f.value,
            baseline_low: f.ci95.map(|c| c[0]),
            baseline_high: f.ci95.map(|c| c[1]),
        })
        .collect();
    store::plans::create(&state.db, model.clone(), criteria.clone()).await?;
    audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "plan_created",
        Some(&unit.code),
        serde_json::json!({"plan": id, "criteria": codes, "baseline_period": baseline.label(), "deadline": deadline}),
    )
    .await?;
    Ok(view(state, &tree, &model, &criteria, today))
}

/// A plan, its criteria before and after, and its comments.
pub async fn detail(state: &AppState, who: &Principal, id: &str, from: Option<&str>) -> Result<PlanDetail, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let full = load(state, &tree, who, id).await?;
    let mut fields = FieldErrors::new();
    let chosen = from.and_then(|f| parse_day(&mut fields, "from", f));
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let evaluation = evaluate(state, &tree, &full.plan, &full.criteria, chosen).await?;
    let comments = full
        .comments
        .into_iter()
        .map(|c| CommentView { author: c.author, body: c.body, created_at: c.created_at })
        .collect();
    let plan = view(state, &tree, &full.plan, &full.criteria, crate::vietnam_today());
    Ok(PlanDetail { plan, evaluation, comments })
}

/// Change a plan's text, deadline or status (its criteria and baseline stay as made).
pub async fn update(state: &AppState, who: &Principal, id: &str, b: PlanChanges) -> Result<PlanView, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let full = load(state, &tree, who, id).await?;
    require_writer(who, &tree, full.plan.unit_id)?;
    let mut fields = FieldErrors::new();
    let changes = store::plans::Changes {
        title: b.title.as_deref().map(|v| text_field(&mut fields, "title", v, MAX_TITLE, false)),
        actions: b.actions.as_deref().map(|v| text_field(&mut fields, "actions", v, MAX_ACTIONS, true)),
        responsible: b
            .responsible
            .as_deref()
            .map(|v| text_field(&mut fields, "responsible", v, MAX_RESPONSIBLE, false)),
        deadline: b.deadline.as_deref().and_then(|v| parse_day(&mut fields, "deadline", v)),
        status: b.status.as_deref().and_then(|v| parse_status(&mut fields, v)).map(|s| s.as_str().to_string()),
    };
    let baseline = Period::parse(&full.plan.baseline_period);
    if let (Some(d), Some(p)) = (changes.deadline, baseline)
        && (d <= p.to || d > crate::vietnam_today() + chrono::TimeDelta::days(5 * 366))
    {
        add(&mut fields, "deadline", "must be after the baseline period and within five years");
    }
    let changed: Vec<&str> = [
        ("title", changes.title.is_some()),
        ("actions", changes.actions.is_some()),
        ("responsible", changes.responsible.is_some()),
        ("deadline", changes.deadline.is_some()),
        ("status", changes.status.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if changed.is_empty() && fields.is_empty() {
        add(&mut fields, "body", "change at least one of title, actions, responsible, deadline and status");
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let details = serde_json::json!({
        "plan": full.plan.id, "changed": changed, "status": changes.status, "deadline": changes.deadline,
    });
    let unit_code = tree.get(full.plan.unit_id).map(|u| u.code.clone());
    let updated = store::plans::update(&state.db, full.plan, changes).await?;
    audit::record(&state.db, Some((who.user_id, &who.email)), "plan_updated", unit_code.as_deref(), details).await?;
    Ok(view(state, &tree, &updated, &full.criteria, crate::vietnam_today()))
}

/// Comment on a plan (anyone who can see its unit).
pub async fn comment(state: &AppState, who: &Principal, id: &str, body: &NewComment) -> Result<CommentView, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let full = load(state, &tree, who, id).await?;
    let mut fields = FieldErrors::new();
    let text = text_field(&mut fields, "body", &body.body, MAX_COMMENT, true);
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let c = store::plans::comment(&state.db, full.plan.id, (who.user_id, &who.email), text).await?;
    let unit_code = tree.get(full.plan.unit_id).map(|u| u.code.clone());
    audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "plan_commented",
        unit_code.as_deref(),
        serde_json::json!({"plan": full.plan.id}),
    )
    .await?;
    Ok(CommentView { author: c.author, body: c.body, created_at: c.created_at })
}
