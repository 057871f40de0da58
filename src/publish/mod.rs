//! The publication gate: the one place that decides which figures may leave the service.
//!
//! Every output that shows a figure (indices and their breakdowns, rankings, trends,
//! console pages, the printed report, exports, digests and alerts) computes its cells with
//! the pure engine (`index::engine`, exact and unaware of who reads) and then passes each
//! cell through [`Gate::publish`]. Whether a cell is shown is decided on the publication
//! lattice of its province, form, calendar year and breakdown dimension (`lattice`), from
//! the counts of the whole lattice and never from the query, so that every query, page,
//! export and email agrees on it. The typed query the gate answers (unit, calendar period,
//! one breakdown, k) is parsed once at the edge by `query`.

pub mod lattice;
pub mod query;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use chrono::Datelike;
use sea_orm::DbErr;

use crate::index::engine::{Figures, Withheld};
use crate::index::period::Period;
use crate::store::tallies::{self, Dim};
use crate::units::UnitTree;
use lattice::{Input, Node, Pattern, Reason};

/// One cell as an output names it.
#[derive(Clone, Debug)]
pub struct Cell<'a> {
    pub unit_id: i32,
    /// Only the unit's own responses (a parent's "(own)" row).
    pub own: bool,
    pub period: Period,
    /// The value of the gate's dimension, or all of them.
    pub value: Option<&'a str>,
}

/// Patterns already decided, by province, form, year, k and dimension, with a fingerprint
/// of the tree and of each unit's responses in the year: a new response anywhere in the
/// lattice decides again.
#[derive(Default)]
pub struct Publisher {
    cache: Mutex<HashMap<Key, (u64, Arc<Decided>)>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    root: i32,
    form: String,
    year: i32,
    k: u64,
    dim: Option<DimKey>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum DimKey {
    RespondentType,
    Channel,
    Service,
}

fn dim_key(d: Dim) -> DimKey {
    match d {
        Dim::RespondentType => DimKey::RespondentType,
        Dim::Channel => DimKey::Channel,
        Dim::Service => DimKey::Service,
    }
}

/// One decided lattice.
pub struct Decided {
    pattern: Pattern,
    /// Unit id → index in the lattice.
    units: HashMap<i32, usize>,
    /// The dimension's values, in lattice order (value i is lattice value i + 1).
    values: Vec<String>,
    /// Every node by the set of units it adds up (sorted lattice indices).
    nodes: HashMap<Vec<usize>, Node>,
}

impl Decided {
    /// Why a node's cell at a lattice time and a value of the dimension (or all) is withheld.
    fn answer(&self, node: Node, t: usize, value: Option<&str>) -> Option<Withheld> {
        let v = match value {
            None => 0,
            Some(value) => match self.values.binary_search_by(|x| x.as_str().cmp(value)) {
                Ok(i) => i + 1,
                // No response has this value in the year: an empty cell, nothing to hide.
                Err(_) => return None,
            },
        };
        match self.pattern.decide(node, t, v)? {
            Reason::UnderK => Some(Withheld::UnderK),
            Reason::ProtectsAnother => Some(Withheld::ProtectsAnother),
        }
    }

    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Per unit level: cells with responses, withheld under k, withheld to protect another.
    pub fn by_level(&self, tree: &UnitTree) -> std::collections::BTreeMap<String, [usize; 3]> {
        let mut out: std::collections::BTreeMap<String, [usize; 3]> = Default::default();
        let counts = self.pattern.hidden_by_unit();
        for (id, i) in &self.units {
            let Some(unit) = tree.get(*id) else { continue };
            let row = out.entry(unit.level.clone()).or_default();
            for (total, c) in row.iter_mut().zip(counts[*i]) {
                *total += c;
            }
        }
        out
    }
}

/// What the gate costs: for every province and form, for `year`, per breakdown dimension
/// and unit level, how many cells with responses are withheld under k and how many to
/// protect another group. `sipas withheld` and `scripts/withheld.sh` print it.
pub async fn cost(state: &crate::startup::AppState, year: i32) -> Result<Vec<String>, DbErr> {
    let tree = crate::store::units::tree(&state.db).await?;
    let k = state.settings.suppression_k;
    let mut lines =
        vec![format!("year {year}, k = {k}: cells with responses / withheld under k / withheld to protect another")];
    for root in tree.all().iter().filter(|u| u.parent_id.is_none()) {
        for form in state.forms.ids() {
            for (label, dim) in [
                ("all respondents", None),
                ("by respondent type", Some(Dim::RespondentType)),
                ("by channel", Some(Dim::Channel)),
                ("by service", Some(Dim::Service)),
            ] {
                let started = std::time::Instant::now();
                let decided = state.publisher.decided(&state.db, &tree, root.id, &form, year, k, dim).await?;
                let levels = decided.by_level(&tree);
                if levels.values().all(|c| c[0] == 0) {
                    continue;
                }
                lines.push(format!(
                    "{} ({}), {form}, {label}: decided in {:.0} ms",
                    root.code,
                    root.name_vi,
                    started.elapsed().as_secs_f64() * 1e3
                ));
                let mut levels: Vec<(String, [usize; 3])> = levels.into_iter().collect();
                levels.sort_by_key(|(l, _)| crate::units::Level::parse(l).map_or(99, |l| l.rank()));
                for (level, [cells, under, protect]) in levels {
                    let pct = |x: usize| if cells == 0 { 0.0 } else { 100.0 * x as f64 / cells as f64 };
                    lines.push(format!(
                        "  {level:<10} {cells:>6} cells  {under:>6} under k ({:.1}%)  {protect:>6} protecting ({:.1}%)",
                        pct(under),
                        pct(protect)
                    ));
                }
            }
        }
    }
    Ok(lines)
}

/// The lattice time of a calendar period, with its year.
pub fn lattice_time(p: &Period) -> Option<(i32, usize)> {
    // The label is `2024`, `2024-Q1`, `2024-03`, or `from..to` for anything else.
    let label = p.label();
    let t = match label.len() {
        4 => 0,
        7 if label.contains("-Q") => lattice::quarter_time((p.from.month() - 1) / 3 + 1),
        7 => lattice::month_time(p.from.month()),
        _ => return None,
    };
    Some((p.from.year(), t))
}

/// The lattice's nodes by the units they add up: today's subtrees and own responses, and
/// the subtrees of the tree as it stood the day before each restructuring that are none of
/// those (the groups an "as at" reader sees).
fn nodes_of(
    tree: &UnitTree,
    ids: &[i32],
    index: &HashMap<i32, usize>,
    parent: &[Option<usize>],
) -> (HashMap<Vec<usize>, Node>, Vec<Vec<usize>>) {
    let set = |units: Vec<i32>| {
        let mut v: Vec<usize> = units.iter().filter_map(|id| index.get(id).copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut nodes = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        nodes.insert(set(tree.subtree(*id)), Node::Subtree(i));
        if parent.contains(&Some(i)) {
            nodes.entry(vec![i]).or_insert(Node::Own(i));
        }
    }
    let mut groups = Vec::new();
    for day in tree.snapshot_days() {
        let then = tree.as_at(day);
        for id in ids.iter().filter(|id| then.existed(**id)) {
            let units = set(then.subtree(*id));
            if !units.is_empty() && !nodes.contains_key(&units) {
                nodes.insert(units.clone(), Node::Group(groups.len()));
                groups.push(units);
            }
        }
    }
    (nodes, groups)
}

/// The top of the tree that holds `unit_id`.
pub fn root_of(tree: &UnitTree, unit_id: i32) -> i32 {
    let mut id = unit_id;
    while let Some(p) = tree.get(id).and_then(|u| u.parent_id) {
        id = p;
    }
    id
}

impl Publisher {
    /// The decided lattice for a province, form, year, k and dimension.
    #[allow(clippy::too_many_arguments)]
    pub async fn decided(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        tree: &UnitTree,
        root: i32,
        form: &str,
        year: i32,
        k: u64,
        dim: Option<Dim>,
    ) -> Result<Arc<Decided>, DbErr> {
        let ids = tree.subtree(root);
        let index: HashMap<i32, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let parent: Vec<Option<usize>> =
            ids.iter().map(|id| tree.get(*id).and_then(|u| u.parent_id).and_then(|p| index.get(&p).copied())).collect();
        // What the decision depends on: the tree and each unit's responses in the year (several
        // form versions give several rows). One row per unit: cheap enough for every request.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        ids.hash(&mut hasher);
        parent.hash(&mut hasher);
        // Former trees (for "as at" readers) change with validity and history.
        for id in &ids {
            tree.get(*id).map(|u| (u.valid_from, u.valid_to)).hash(&mut hasher);
        }
        tree.snapshot_days().hash(&mut hasher);
        tallies::year_totals(db, form, &ids, year).await?.hash(&mut hasher);
        let fingerprint = hasher.finish();
        let key = Key { root, form: form.to_string(), year, k, dim: dim.map(dim_key) };
        if let Some((f, d)) = self.cache.lock().map_err(|_| DbErr::Custom("gate cache poisoned".into()))?.get(&key)
            && *f == fingerprint
        {
            return Ok(d.clone());
        }
        let (nodes, groups) = nodes_of(tree, &ids, &index, &parent);
        let cached = |d: Option<Dim>, pattern: Pattern, values: Vec<String>| {
            if pattern.unresolved > 0 {
                tracing::warn!(unresolved = pattern.unresolved, "publication audit left groups it could not protect");
            }
            let decided = Arc::new(Decided { pattern, units: index.clone(), values, nodes: nodes.clone() });
            let mut cache = self.cache.lock().map_err(|_| DbErr::Custom("gate cache poisoned".into()))?;
            if cache.len() > 10_000 {
                cache.clear();
            }
            let key = Key { root, form: form.to_string(), year, k, dim: d.map(dim_key) };
            cache.insert(key, (fingerprint, decided.clone()));
            Ok::<_, DbErr>(decided)
        };
        let read = |d: Option<Dim>| input(db, form, &ids, &index, &parent, &groups, year, k, d);
        if groups.is_empty() {
            // A dimension's lattice keeps the "all" cells as the lattice without one decided.
            let all = match dim {
                Some(_) => Some(Box::pin(self.decided(db, tree, root, form, year, k, None)).await?),
                None => None,
            };
            let (input, values) = read(dim).await?;
            return cached(dim, Pattern::decide_all(input, all.as_ref().map(|d| &d.pattern)), values);
        }
        // Former subtrees' "all" cells are read by every lattice of the year: all four are
        // decided together, then the former subtrees across them.
        let (input, none_values) = read(None).await?;
        let mut none = Pattern::decide_all(input, None);
        let mut patterns = Vec::new();
        let mut values = Vec::new();
        for d in [Dim::RespondentType, Dim::Channel, Dim::Service] {
            let (input, v) = read(Some(d)).await?;
            patterns.push(Pattern::decide_all(input, Some(&none)));
            values.push((d, v));
        }
        lattice::decide_former(&mut none, &mut patterns);
        let mut asked = cached(None, none, none_values)?;
        for (pattern, (d, v)) in patterns.into_iter().zip(values) {
            let decided = cached(Some(d), pattern, v)?;
            if dim.is_some_and(|x| dim_key(x) == dim_key(d)) {
                asked = decided;
            }
        }
        Ok(asked)
    }
}

/// One lattice's input: the tree, former subtrees and the year's counts by unit, month and
/// the dimension's value, with the values in order.
#[allow(clippy::too_many_arguments)]
async fn input(
    db: &impl sea_orm::ConnectionTrait,
    form: &str,
    ids: &[i32],
    index: &HashMap<i32, usize>,
    parent: &[Option<usize>],
    groups: &[Vec<usize>],
    year: i32,
    k: u64,
    dim: Option<Dim>,
) -> Result<(Input, Vec<String>), DbErr> {
    let counts = tallies::month_counts(db, form, ids, year, dim).await?;
    let mut values: Vec<String> = counts.iter().map(|(_, _, v, _)| v.clone()).collect();
    values.sort();
    values.dedup();
    if dim.is_none() {
        values.clear();
    }
    let mut input = Input::new(parent.to_vec(), values.len(), k);
    input.groups = groups.to_vec();
    for (unit, month, value, n) in &counts {
        let (Some(u), Some(v)) =
            (index.get(unit), if dim.is_some() { values.binary_search(value).ok() } else { Some(0) })
        else {
            continue;
        };
        let a = input.atom(*u, *month, v);
        input.atoms[a] += n;
    }
    Ok((input, values))
}

/// The gate for one output: a province, form, k and at most one dimension, with the
/// lattices of the years the output touches.
pub struct Gate {
    pub k: u64,
    dim: Option<Dim>,
    years: HashMap<i32, Arc<Decided>>,
}

impl Gate {
    /// Loads the decisions for every year of `periods`.
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        publisher: &Publisher,
        db: &impl sea_orm::ConnectionTrait,
        tree: &UnitTree,
        unit_id: i32,
        form: &str,
        periods: &[Period],
        dim: Option<Dim>,
        k: u64,
    ) -> Result<Gate, DbErr> {
        let root = root_of(tree, unit_id);
        let mut years = HashMap::new();
        for p in periods {
            for year in p.from.year()..=p.to.year() {
                if let std::collections::hash_map::Entry::Vacant(e) = years.entry(year) {
                    e.insert(publisher.decided(db, tree, root, form, year, k, dim).await?);
                }
            }
        }
        Ok(Gate { k, dim, years })
    }

    pub fn dim(&self) -> Option<Dim> {
        self.dim
    }

    /// The values of the gate's dimension that have responses in `year`.
    pub fn values(&self, year: i32) -> &[String] {
        self.years.get(&year).map_or(&[], |d| d.values.as_slice())
    }

    /// Why a cell is withheld, or None when it may be shown.
    pub fn decide(&self, cell: &Cell) -> Option<Withheld> {
        let Some((year, t)) = lattice_time(&cell.period) else {
            return Some(Withheld::ProtectsAnother);
        };
        let Some(decided) = self.years.get(&year) else {
            return Some(Withheld::ProtectsAnother);
        };
        let Some(u) = decided.units.get(&cell.unit_id).copied() else {
            return Some(Withheld::ProtectsAnother);
        };
        let node = if cell.own { Node::Own(u) } else { Node::Subtree(u) };
        decided.answer(node, t, cell.value)
    }

    /// Why the sum of some units' responses (a subtree of the tree as it stood on some day)
    /// is withheld, or None. A set that is no node of the lattice is withheld.
    pub fn decide_units(&self, units: &[i32], period: &Period, value: Option<&str>) -> Option<Withheld> {
        let Some((year, t)) = lattice_time(period) else {
            return Some(Withheld::ProtectsAnother);
        };
        let Some(decided) = self.years.get(&year) else {
            return Some(Withheld::ProtectsAnother);
        };
        let mut set: Vec<usize> = units.iter().filter_map(|id| decided.units.get(id).copied()).collect();
        set.sort_unstable();
        set.dedup();
        let Some(node) = decided.nodes.get(&set).copied().filter(|_| set.len() == units.len()) else {
            return Some(Withheld::ProtectsAnother);
        };
        decided.answer(node, t, value)
    }

    /// `publish` for the sum of some units (see `decide_units`).
    pub fn publish_units(&self, figures: &mut Figures, units: &[i32], period: &Period, value: Option<&str>) {
        if let Some(why) = self.decide_units(units, period, value) {
            figures.strip();
            figures.withheld = Some(why);
        } else if figures.suppressed && figures.n > 0 {
            figures.withheld = Some(Withheld::UnderK);
        }
    }

    /// Withholds what the lattice hides; the figures of a shown cell pass unchanged.
    pub fn publish(&self, figures: &mut Figures, cell: &Cell) {
        if let Some(why) = self.decide(cell) {
            figures.strip();
            figures.withheld = Some(why);
        } else if figures.suppressed && figures.n > 0 {
            figures.withheld = Some(Withheld::UnderK);
        }
    }
}

/// Respondents' comments for a unit's cell, only when the gate shows that cell (None when
/// it is withheld): undated, in the order of their text, so that none is placed in time
/// more finely than the cell.
pub async fn comments(
    ctx: &crate::index::report::Context<'_>,
    q: &query::Parsed,
    unit: &crate::entities::unit::Model,
    limit: u64,
) -> Result<Option<Vec<String>>, DbErr> {
    let (dim, value) = q.filters.dimension();
    let gate = Gate::load(ctx.publisher, ctx.db, ctx.tree, unit.id, &q.form.form.id, &[q.period], dim, q.k).await?;
    if gate.decide(&Cell { unit_id: unit.id, own: false, period: q.period, value }).is_some() {
        return Ok(None);
    }
    let ids = ctx.tree.subtree(unit.id);
    crate::store::responses::comments(ctx.db, &ids, &q.form.form.id, &q.period, &q.filters, limit).await.map(Some)
}
