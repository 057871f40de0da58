//! Figures as the API and the console publish them: gathers tallies for a unit, period,
//! filters, roll-up and breakdown, runs the engine, and passes every cell through the
//! publication gate (`crate::publish`), which alone decides what is withheld. Rankings,
//! trends and the unit table are built from the same pieces.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalog::{Catalog, Versioned};
use super::engine::{self, Estimate, Figures};
use super::period::Period;
use super::tally::Tally;
use crate::entities::unit;
use crate::publish::{Cell, Gate, Publisher};
use crate::store::tallies::{self, ALL, Dim, Selection};
use crate::store::volumes;
use crate::units::UnitTree;

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Filters {
    pub respondent_type: Option<String>,
    pub channel: Option<String>,
    pub service: Option<String>,
}

impl Filters {
    /// The dimension and value filtered on (the query allows one at most).
    pub fn dimension(&self) -> (Option<Dim>, Option<&str>) {
        match (&self.respondent_type, &self.channel, &self.service) {
            (Some(v), _, _) => (Some(Dim::RespondentType), Some(v)),
            (None, Some(v), _) => (Some(Dim::Channel), Some(v)),
            (None, None, Some(v)) => (Some(Dim::Service), Some(v)),
            (None, None, None) => (None, None),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// Every response of the unit and of the units below it.
    Pooled,
    /// Unweighted mean of the direct children with at least k responses (the unit's own
    /// responses are not part of it).
    MeanOfChildren,
    /// Mean of the direct children weighted by their service volume for the period.
    VolumeWeighted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Breakdown {
    RespondentType,
    Channel,
    Service,
    /// Direct children, plus the unit's own responses as `(own)`.
    Unit,
}

impl Breakdown {
    /// The dimension of detail it splits by (none for units).
    pub fn dim(self) -> Option<Dim> {
        match self {
            Breakdown::RespondentType => Some(Dim::RespondentType),
            Breakdown::Channel => Some(Dim::Channel),
            Breakdown::Service => Some(Dim::Service),
            Breakdown::Unit => None,
        }
    }
}

/// Everything a report needs besides the question.
pub struct Context<'a> {
    pub db: &'a sea_orm::DatabaseConnection,
    pub catalog: &'a Catalog,
    pub tree: &'a UnitTree,
    pub publisher: &'a Publisher,
}

impl<'a> Context<'a> {
    /// The context of a request to this instance: it first waits until every submission the
    /// instance acknowledged is in the tallies, so that a figure read after a 201 counts it,
    /// and reads on the replica only if that holds everything the primary has.
    pub async fn settled(state: &'a crate::startup::AppState, tree: &'a UnitTree) -> Context<'a> {
        Context { db: state.figures_db().await, catalog: &state.catalog, tree, publisher: &state.publisher }
    }

    /// The gate for an output about `unit_id` over `periods`, by `dim`.
    async fn gate(
        &self,
        unit_id: i32,
        form: &Versioned,
        periods: &[Period],
        dim: Option<Dim>,
        k: u64,
    ) -> Result<Gate, sea_orm::DbErr> {
        Gate::load(self.publisher, self.db, self.tree, unit_id, &form.form.id, periods, dim, k).await
    }
}

/// Tallies per unit and per value of the dimension kept apart (`*` when none), in the
/// layout of `form`.
struct Gathered {
    by_unit: HashMap<i32, BTreeMap<String, Tally>>,
}

impl Gathered {
    fn pooled(&self, tree: &UnitTree, unit_id: i32) -> BTreeMap<String, Tally> {
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for id in tree.subtree(unit_id) {
            for (key, t) in self.by_unit.get(&id).into_iter().flatten() {
                out.entry(key.clone()).or_insert_with(|| Tally { data: vec![] }).add(t);
            }
        }
        out
    }

    /// The sum over a set of units (a subtree of the tree as at some day).
    fn summed(&self, layout: &crate::index::tally::Layout, units: &[i32]) -> Tally {
        let mut out = Tally::empty(layout);
        for t in units.iter().filter_map(|id| self.by_unit.get(id)).flat_map(BTreeMap::values) {
            out.add(t);
        }
        out
    }

    fn own(&self, unit_id: i32) -> BTreeMap<String, Tally> {
        self.by_unit.get(&unit_id).cloned().unwrap_or_default()
    }
}

async fn gather(
    ctx: &Context<'_>,
    form: &Versioned,
    units: Option<Vec<i32>>,
    period: Period,
    filters: &Filters,
    split: Option<Dim>,
) -> Result<Gathered, sea_orm::DbErr> {
    let selection = Selection {
        form_id: form.form.id.clone(),
        units,
        period,
        respondent_type: filters.respondent_type.clone(),
        channel: filters.channel.clone(),
        service: filters.service.clone(),
        split,
    };
    let mut by_unit: HashMap<i32, BTreeMap<String, Tally>> = HashMap::new();
    for row in tallies::fetch(ctx.db, &selection).await? {
        let key = match split {
            Some(Dim::RespondentType) => row.respondent_type.clone(),
            Some(Dim::Channel) => row.channel.clone(),
            Some(Dim::Service) => row.service.clone(),
            None => ALL.to_string(),
        };
        let tally = if row.form_version == form.form.version {
            row.tally
        } else {
            match ctx.catalog.get(&form.form.id, row.form_version) {
                Some(old) => row.tally.remap(&old.layout, &form.layout),
                None => continue,
            }
        };
        by_unit.entry(row.unit_id).or_default().entry(key).or_insert_with(|| Tally { data: vec![] }).add(&tally);
    }
    Ok(Gathered { by_unit })
}

fn figures(form: &Versioned, tally: Option<&Tally>, k: u64) -> Figures {
    let empty = Tally::empty(&form.layout);
    engine::compute(&form.form, &form.layout, tally.unwrap_or(&empty), k)
}

/// A row of a breakdown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The value of the dimension (`""` = not given), or a unit code (`(own)` = responses
    /// recorded at the unit itself).
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A child used by a roll-up, and its weight.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RollupPart {
    pub unit: String,
    pub n: u64,
    pub used: bool,
    pub weight: Option<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IndexReport {
    pub unit: String,
    pub unit_name: String,
    pub form: String,
    pub form_version: i32,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub period: String,
    pub k: u64,
    pub rollup: Rollup,
    pub filters: Filters,
    #[serde(flatten)]
    pub figures: Figures,
    /// Dossiers handled in the period, when volumes are recorded.
    pub volume: Option<i64>,
    /// Responses per dossier.
    pub response_rate: Option<f64>,
    /// Responses flagged as looking automated in the period: stored, but not counted.
    pub flagged: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<RollupPart>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<BreakdownRow>>,
}

pub struct IndexRequest<'a> {
    pub form: &'a Versioned,
    pub unit: &'a unit::Model,
    pub period: Period,
    pub filters: Filters,
    pub rollup: Rollup,
    pub breakdown: Option<Breakdown>,
    pub k: u64,
}

fn subtree_volume(tree: &UnitTree, volumes: &HashMap<i32, i64>, unit_id: i32) -> Option<i64> {
    let ids = tree.subtree(unit_id);
    let present: Vec<i64> = ids.iter().filter_map(|id| volumes.get(id).copied()).collect();
    (!present.is_empty()).then(|| present.iter().sum())
}

pub async fn index(ctx: &Context<'_>, q: &IndexRequest<'_>) -> Result<IndexReport, sea_orm::DbErr> {
    let unit_id = q.unit.id;
    let split = q.breakdown.and_then(Breakdown::dim);
    let (filtered, value) = q.filters.dimension();
    let gate = ctx.gate(unit_id, q.form, &[q.period], filtered.or(split), q.k).await?;
    fn cell(unit_id: i32, own: bool, period: Period, value: Option<&str>) -> Cell<'_> {
        Cell { unit_id, own, period, value }
    }
    let subtree = ctx.tree.subtree(unit_id);
    let gathered = gather(ctx, q.form, Some(subtree), q.period, &q.filters, split).await?;
    let volumes = volumes::totals(ctx.db, &q.period).await?;

    // The pooled tally of the unit (all split values together).
    let mut total = Tally::empty(&q.form.layout);
    for t in gathered.pooled(ctx.tree, unit_id).values() {
        total.add(t);
    }
    let children: Vec<&unit::Model> = ctx.tree.children(unit_id).iter().filter_map(|c| ctx.tree.get(*c)).collect();
    let mut parts = None;
    let figures_out = match q.rollup {
        Rollup::Pooled => {
            let mut f = figures(q.form, Some(&total), q.k);
            gate.publish(&mut f, &cell(unit_id, false, q.period, value));
            f
        }
        Rollup::MeanOfChildren | Rollup::VolumeWeighted => {
            let mut used = Vec::new();
            let mut described = Vec::new();
            for child in &children {
                let mut t = Tally::empty(&q.form.layout);
                for part in gathered.pooled(ctx.tree, child.id).values() {
                    t.add(part);
                }
                let mut f = figures(q.form, Some(&t), q.k);
                gate.publish(&mut f, &cell(child.id, false, q.period, value));
                let weight = match q.rollup {
                    Rollup::VolumeWeighted => subtree_volume(ctx.tree, &volumes, child.id).map(|v| v as f64),
                    _ => Some(1.0),
                };
                let usable = !f.suppressed && weight.is_some_and(|w| w > 0.0);
                described.push(RollupPart { unit: child.code.clone(), n: f.n, used: usable, weight });
                if usable {
                    used.push((f, weight.unwrap_or(0.0)));
                }
            }
            parts = Some(described);
            let refs: Vec<(&Figures, f64)> = used.iter().map(|(f, w)| (f, *w)).collect();
            engine::combine(&refs)
        }
    };

    let breakdown = match q.breakdown {
        None => None,
        Some(Breakdown::Unit) => {
            let mut rows = Vec::new();
            for child in &children {
                let mut t = Tally::empty(&q.form.layout);
                for part in gathered.pooled(ctx.tree, child.id).values() {
                    t.add(part);
                }
                let mut f = figures(q.form, Some(&t), q.k);
                gate.publish(&mut f, &cell(child.id, false, q.period, value));
                rows.push(BreakdownRow { key: child.code.clone(), name: Some(child.name_vi.clone()), figures: f });
            }
            let mut own = Tally::empty(&q.form.layout);
            for part in gathered.own(unit_id).values() {
                own.add(part);
            }
            if own.responses() > 0 || children.is_empty() {
                let mut f = figures(q.form, Some(&own), q.k);
                gate.publish(&mut f, &cell(unit_id, true, q.period, value));
                rows.push(BreakdownRow { key: "(own)".into(), name: None, figures: f });
            }
            Some(rows)
        }
        Some(_) => {
            let pooled = gathered.pooled(ctx.tree, unit_id);
            Some(
                pooled
                    .iter()
                    .map(|(key, t)| {
                        let mut f = figures(q.form, Some(t), q.k);
                        gate.publish(&mut f, &cell(unit_id, false, q.period, Some(key)));
                        BreakdownRow { key: key.clone(), name: None, figures: f }
                    })
                    .collect(),
            )
        }
    };

    let volume = subtree_volume(ctx.tree, &volumes, unit_id);
    let flagged = crate::store::responses::count_flagged(ctx.db, &ctx.tree.subtree(unit_id), &q.period).await?;
    Ok(IndexReport {
        flagged,
        unit: q.unit.code.clone(),
        unit_name: q.unit.name_vi.clone(),
        form: q.form.form.id.clone(),
        form_version: q.form.form.version,
        from: q.period.from,
        to: q.period.to,
        period: q.period.label(),
        k: q.k,
        rollup: q.rollup,
        filters: q.filters.clone(),
        response_rate: volume.filter(|v| *v > 0).map(|v| total.responses() as f64 / v as f64),
        volume,
        figures: figures_out,
        children: parts,
        breakdown,
    })
}

/// An item where a unit lost most against its reference (the province, or the unit the
/// ranking is within).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WeakItem {
    pub code: String,
    pub value: f64,
    pub reference: f64,
    /// Points below the reference.
    pub gap: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RankingRow {
    pub unit: String,
    pub name: String,
    pub n: u64,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<engine::Withheld>,
    pub value: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    /// 1 = best; equal values share a rank. None when suppressed.
    pub rank: Option<u32>,
    pub previous_n: u64,
    pub previous_value: Option<f64>,
    pub previous_rank: Option<u32>,
    /// Points gained since the previous period.
    pub change: Option<f64>,
    /// Places gained since the previous period.
    pub rank_change: Option<i64>,
    /// What the previous period's figure is built from: `unit` (the unit itself),
    /// `predecessors` (partly or wholly the units merged into it, pooled in today's tree), or
    /// `none` (the unit did not exist then, e.g. created by a split: not comparable).
    pub previous_basis: String,
    /// Up to `weakest` items below the reference, furthest first; empty when none is below.
    pub weakest: Vec<WeakItem>,
    /// How many items had a published value for both the unit and the reference: 0 means
    /// `weakest` is empty because the items are withheld, not because none is below.
    pub items_compared: usize,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Rankings {
    pub form: String,
    pub level: String,
    pub within: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub period: String,
    pub previous_from: chrono::NaiveDate,
    pub previous_to: chrono::NaiveDate,
    pub k: u64,
    pub filters: Filters,
    pub reference: Option<Estimate>,
    pub units: Vec<RankingRow>,
}

pub struct RankingRequest<'a> {
    pub form: &'a Versioned,
    pub level: crate::units::Level,
    pub within: &'a unit::Model,
    pub period: Period,
    pub filters: Filters,
    pub k: u64,
    /// How many weakest items to list per unit.
    pub weakest: usize,
}

fn ranks(values: &[Option<f64>]) -> Vec<Option<u32>> {
    values.iter().map(|v| v.map(|v| 1 + values.iter().filter(|o| o.is_some_and(|o| o > v)).count() as u32)).collect()
}

/// What a unit's figure for `period` is built from (see `RankingRow::previous_basis`).
fn basis(tree: &crate::units::UnitTree, unit: &unit::Model, period: Period) -> &'static str {
    let predecessors = tree
        .lineage(unit.id)
        .iter()
        .any(|p| tree.get(*p).and_then(|p| p.valid_to).is_some_and(|end| end > period.from));
    if predecessors {
        "predecessors"
    } else if unit.valid_from.is_some_and(|from| from > period.from) {
        "none"
    } else {
        "unit"
    }
}

pub async fn rankings(ctx: &Context<'_>, q: &RankingRequest<'_>) -> Result<Rankings, sea_orm::DbErr> {
    let scope = ctx.tree.subtree(q.within.id);
    let targets: Vec<&unit::Model> = scope
        .iter()
        .filter(|id| ctx.tree.is_live(**id))
        .filter_map(|id| ctx.tree.get(*id))
        .filter(|u| crate::units::Level::parse(&u.level).is_some_and(|l| l.peers(q.level)))
        .collect();
    let previous = q.period.previous();
    let (dim, value) = q.filters.dimension();
    let gate = ctx.gate(q.within.id, q.form, &[q.period, previous], dim, q.k).await?;
    let published = |t: &Tally, unit_id: i32, period: Period| {
        let mut f = figures(q.form, Some(t), q.k);
        gate.publish(&mut f, &Cell { unit_id, own: false, period, value });
        f
    };
    let now = gather(ctx, q.form, Some(scope.clone()), q.period, &q.filters, None).await?;
    let before = gather(ctx, q.form, Some(scope), previous, &q.filters, None).await?;
    let pooled = |g: &Gathered, id: i32| -> Tally {
        let mut t = Tally::empty(&q.form.layout);
        for part in g.pooled(ctx.tree, id).values() {
            t.add(part);
        }
        t
    };
    let reference = published(&pooled(&now, q.within.id), q.within.id, q.period);
    let current: Vec<Figures> = targets.iter().map(|u| published(&pooled(&now, u.id), u.id, q.period)).collect();
    let past: Vec<Figures> = targets.iter().map(|u| published(&pooled(&before, u.id), u.id, previous)).collect();
    let value = |f: &Figures| f.index.as_ref().map(|e| e.value);
    let rank_now = ranks(&current.iter().map(value).collect::<Vec<_>>());
    let rank_before = ranks(&past.iter().map(value).collect::<Vec<_>>());

    let mut rows: Vec<RankingRow> = targets
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let f = &current[i];
            let mut weakest: Vec<WeakItem> = f
                .items
                .iter()
                .filter_map(|item| {
                    let r = reference.items.iter().find(|r| r.code == item.code)?.value?;
                    let v = item.value?;
                    Some(WeakItem { code: item.code.clone(), value: v, reference: r, gap: r - v })
                })
                .collect();
            let items_compared = weakest.len();
            weakest.sort_by(|a, b| b.gap.total_cmp(&a.gap));
            weakest.retain(|w| w.gap > 0.0);
            weakest.truncate(q.weakest);
            RankingRow {
                unit: u.code.clone(),
                name: u.name_vi.clone(),
                n: f.n,
                suppressed: f.suppressed,
                withheld: f.withheld,
                value: value(f),
                ci95: f.index.as_ref().and_then(|e| e.ci95),
                rank: rank_now[i],
                previous_n: past[i].n,
                previous_value: value(&past[i]),
                previous_rank: rank_before[i],
                change: value(f).zip(value(&past[i])).map(|(a, b)| a - b),
                rank_change: rank_now[i].zip(rank_before[i]).map(|(a, b)| i64::from(b) - i64::from(a)),
                previous_basis: basis(ctx.tree, u, previous).into(),
                weakest,
                items_compared,
            }
        })
        .collect();
    rows.sort_by(|a, b| match (a.rank, b.rank) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.unit.cmp(&b.unit)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.unit.cmp(&b.unit),
    });
    Ok(Rankings {
        form: q.form.form.id.clone(),
        level: q.level.as_str().to_string(),
        within: q.within.code.clone(),
        from: q.period.from,
        to: q.period.to,
        period: q.period.label(),
        previous_from: previous.from,
        previous_to: previous.to,
        k: q.k,
        filters: q.filters.clone(),
        reference: reference.index,
        units: rows,
    })
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    pub period: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub n: u64,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<engine::Withheld>,
    pub index: Option<Estimate>,
    pub groups: Vec<engine::GroupFigure>,
}

/// A restructuring of the unit within a trend's span: where the series changes what it
/// adds up, so a chart can mark it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrendChange {
    pub effective: chrono::NaiveDate,
    /// `merged_in` (another unit merged into this one), `split_from` (this one was split
    /// off another), `merged_into`, `split_into`, `created`, `renamed`, `moved` or `ended`.
    pub change: String,
    /// The other unit of a merge or split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The other unit's name, the new name, or the new parent's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Trend {
    pub unit: String,
    pub form: String,
    pub interval: String,
    pub k: u64,
    pub filters: Filters,
    pub points: Vec<TrendPoint>,
    /// Restructurings within the span: before a merger the points add up the predecessors.
    pub changes: Vec<TrendChange>,
}

pub async fn trend(
    ctx: &Context<'_>,
    form: &Versioned,
    unit: &unit::Model,
    period: Period,
    quarterly: bool,
    filters: &Filters,
    k: u64,
) -> Result<Trend, sea_orm::DbErr> {
    let subtree = ctx.tree.subtree(unit.id);
    let (dim, value) = filters.dimension();
    let gate = ctx.gate(unit.id, form, &[period], dim, k).await?;
    let mut points = Vec::new();
    for p in period.series(quarterly) {
        let g = gather(ctx, form, Some(subtree.clone()), p, filters, None).await?;
        let mut t = Tally::empty(&form.layout);
        for part in g.pooled(ctx.tree, unit.id).values() {
            t.add(part);
        }
        let mut f = figures(form, Some(&t), k);
        gate.publish(&mut f, &Cell { unit_id: unit.id, own: false, period: p, value });
        for g in &mut f.groups {
            g.items.clear();
            g.groups.iter_mut().for_each(|sub| sub.items.clear());
        }
        points.push(TrendPoint {
            period: p.label(),
            from: p.from,
            to: p.to,
            n: f.n,
            suppressed: f.suppressed,
            withheld: f.withheld,
            index: f.index,
            groups: f.groups,
        });
    }
    let span = points.first().map(|p| p.from).zip(points.last().map(|p| p.to));
    let changes = crate::store::units::history(ctx.db, ctx.tree, unit.id)
        .await?
        .into_iter()
        .filter(|h| span.is_some_and(|(from, to)| (from..=to).contains(&h.effective())))
        .map(|h| {
            use crate::store::units::History;
            let effective = h.effective();
            match h {
                History::From { code, name, split, .. } => TrendChange {
                    effective,
                    change: if split { "split_from" } else { "merged_in" }.into(),
                    unit: Some(code),
                    name: Some(name),
                },
                History::Into { code, name, split, .. } => TrendChange {
                    effective,
                    change: if split { "split_into" } else { "merged_into" }.into(),
                    unit: Some(code),
                    name: Some(name),
                },
                // The new name, or the new parent's; nothing for a creation or an end.
                History::Change { change, new, .. } => {
                    let name = new.filter(|_| matches!(change.as_str(), "renamed" | "moved"));
                    TrendChange { effective, change, unit: None, name }
                }
            }
        })
        .collect();
    Ok(Trend {
        unit: unit.code.clone(),
        form: form.form.id.clone(),
        interval: if quarterly { "quarter" } else { "month" }.into(),
        k,
        filters: filters.clone(),
        points,
        changes,
    })
}

/// A table of units in the tree as it stood on a day.
#[derive(Clone, Copy, Debug)]
pub struct AsAtView {
    pub day: chrono::NaiveDate,
    /// A unit manager's unit: rows that add up units outside it are left out (a former
    /// district can hold communes that now belong elsewhere).
    pub scope: Option<i32>,
}

/// One unit's pooled figures in a table of units.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UnitFigures {
    pub unit: String,
    pub name: String,
    pub level: String,
    pub parent: Option<String>,
    /// Rank by SIPAS among the units of the same level in the table (1 = best).
    pub rank: Option<u32>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Pooled figures of every unit of `within`'s subtree (parents before children), ranked
/// within each level, each row as the publication gate lets it out. With `as_at`, the
/// units, names and parents are those of the tree as it stood that day, and each unit's
/// figures add up what was below it then (None when `within` did not exist that day).
pub async fn unit_table(
    ctx: &Context<'_>,
    form: &Versioned,
    within: &unit::Model,
    period: Period,
    filters: &Filters,
    k: u64,
    as_at: Option<AsAtView>,
) -> Result<Option<Vec<UnitFigures>>, sea_orm::DbErr> {
    let scope = ctx.tree.subtree(within.id);
    let (dim, value) = filters.dimension();
    let gate = ctx.gate(within.id, form, &[period], dim, k).await?;
    if let Some(AsAtView { day, scope }) = as_at {
        let then = ctx.tree.as_at(day);
        let in_scope = |units: &[i32]| scope.is_none_or(|s| units.iter().all(|u| ctx.tree.is_within(*u, s)));
        if !then.existed(within.id) {
            return Ok(None);
        }
        let gathered = gather(ctx, form, Some(then.subtree(within.id)), period, filters, None).await?;
        let mut rows: Vec<UnitFigures> = then
            .units_below(within.id)
            .iter()
            .filter_map(|id| ctx.tree.get(*id))
            .map(|u| (u, then.subtree(u.id)))
            .filter(|(_, units)| in_scope(units))
            .map(|(u, units)| {
                let t = gathered.summed(&form.layout, &units);
                let mut f = figures(form, Some(&t), k);
                gate.publish_units(&mut f, &units, &period, value);
                UnitFigures {
                    unit: u.code.clone(),
                    name: then.name(u.id).unwrap_or(&u.name_vi).to_string(),
                    level: u.level.clone(),
                    parent: then.parent(u.id).and_then(|p| ctx.tree.get(p)).map(|p| p.code.clone()),
                    rank: None,
                    figures: f,
                }
            })
            .collect();
        rank_by_level(&mut rows);
        return Ok(Some(rows));
    }
    let gathered = gather(ctx, form, Some(scope.clone()), period, filters, None).await?;
    let mut rows: Vec<UnitFigures> = scope
        .iter()
        .filter_map(|id| ctx.tree.get(*id))
        .map(|u| {
            let mut t = Tally::empty(&form.layout);
            for part in gathered.pooled(ctx.tree, u.id).values() {
                t.add(part);
            }
            let mut f = figures(form, Some(&t), k);
            gate.publish(&mut f, &Cell { unit_id: u.id, own: false, period, value });
            UnitFigures {
                unit: u.code.clone(),
                name: u.name_vi.clone(),
                level: u.level.clone(),
                parent: u.parent_id.and_then(|p| ctx.tree.get(p)).map(|p| p.code.clone()),
                rank: None,
                figures: f,
            }
        })
        .collect();
    rank_by_level(&mut rows);
    Ok(Some(rows))
}

fn rank_by_level(rows: &mut [UnitFigures]) {
    let mut by_level: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_level.entry(r.level.clone()).or_default().push(i);
    }
    for members in by_level.values() {
        let values: Vec<Option<f64>> =
            members.iter().map(|i| rows[*i].figures.index.as_ref().map(|e| e.value)).collect();
        for (i, rank) in members.iter().zip(ranks(&values)) {
            rows[*i].rank = rank;
        }
    }
}
