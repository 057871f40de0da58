//! The index maths, pure: figures of one cell from its tally and its form.
//!
//! - Item index = 100 × satisfied / answered ("no answer" leaves the denominator), with a
//!   Wilson score interval.
//! - Group index = unweighted mean of its children's indices (children without answers are
//!   left out); SIPAS = unweighted mean of the top-level groups.
//! - Interval of a group or of SIPAS: Taylor linearisation over respondents. Each leaf group
//!   g is treated, for its variance, as the ratio R_g = Σ satisfied / Σ answered of its
//!   items; a node is the linear combination Σ c_g R_g its means make of them, so with
//!   z_r = Σ_g c_g (S_rg − R_g m_rg) / M_g the variance is n/(n−1) Σ_r z_r², computed from
//!   the tally's moments. The interval is centred on the published value and clamped to
//!   [0, 100]. Tests check it against a seeded bootstrap over respondents.
//! - Suppression: a cell (a unit, a breakdown row, an item) with fewer than k responses
//!   (answers, for items) publishes its count and nothing else.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::tally::{Layout, Tally};
use crate::forms::{Form, Group};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A value with its 95% interval, in percent.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Estimate {
    pub value: f64,
    pub ci95: Option<[f64; 2]>,
    /// Variance of the proportion (0..1 scale), for roll-ups of several cells.
    #[serde(skip)]
    pub variance: Option<f64>,
}

impl Estimate {
    pub fn from_variance(value: f64, variance: Option<f64>) -> Estimate {
        let ci95 = variance.filter(|v| v.is_finite() && *v >= 0.0).map(|v| {
            let half = Z95 * v.sqrt() * 100.0;
            [(value - half).max(0.0), (value + half).min(100.0)]
        });
        Estimate { value, ci95, variance }
    }
}

/// Wilson score interval for `s` successes out of `n`, in percent.
pub fn wilson(s: u64, n: u64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (s, n) = (s as f64, n as f64);
    let p = s / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some([100.0 * (centre - half), 100.0 * (centre + half)])
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ItemFigure {
    pub code: String,
    /// Answers given.
    pub n: u64,
    pub suppressed: bool,
    /// Answers at a satisfied level (for expectations: at a top level).
    pub satisfied: Option<u64>,
    pub value: Option<f64>,
    pub mean_score: Option<f64>,
    /// Answers per level.
    pub distribution: Option<BTreeMap<i16, u64>>,
    pub ci95: Option<[f64; 2]>,
    #[serde(skip)]
    pub variance: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(no_recursion)]
pub struct GroupFigure {
    pub code: String,
    /// Respondents who answered at least one of its items.
    pub n: u64,
    pub suppressed: bool,
    pub value: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupFigure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemFigure>,
    #[serde(skip)]
    pub variance: Option<f64>,
}

/// Distribution of a question outside the index.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct QuestionFigure {
    pub code: String,
    /// Choices made (a multiple-choice answer counts each choice).
    pub n: u64,
    pub suppressed: bool,
    pub distribution: Option<BTreeMap<i16, u64>>,
}

/// Everything published for one cell.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    /// Responses.
    pub n: u64,
    pub suppressed: bool,
    pub index: Option<Estimate>,
    pub groups: Vec<GroupFigure>,
    pub items: Vec<ItemFigure>,
    /// Expectation items: `value` is the share choosing the top levels.
    pub expectations: Vec<ItemFigure>,
    pub questions: Vec<QuestionFigure>,
}

/// Figures of one cell. `k` is the suppression threshold (0 computes everything, for tests
/// and for roll-ups that apply their own threshold).
pub fn compute(form: &Form, layout: &Layout, tally: &Tally, k: u64) -> Figures {
    let n = tally.responses();
    let suppressed = n < k;
    let item = |code: &str| -> Option<ItemFigure> {
        let slot = layout.slot(code)?;
        let counts = tally.counts(layout, code);
        let answered: u64 = counts.iter().sum();
        let satisfied: u64 = slot
            .levels
            .iter()
            .zip(counts)
            .filter(|(l, _)| slot.satisfied.contains(l))
            .map(|(_, c)| c)
            .sum();
        let hidden = suppressed || answered < k || answered == 0;
        let p = (answered > 0).then(|| satisfied as f64 / answered as f64);
        let mean = (answered > 0).then(|| {
            slot.levels.iter().zip(counts).map(|(l, c)| f64::from(*l) * *c as f64).sum::<f64>() / answered as f64
        });
        Some(ItemFigure {
            code: code.to_string(),
            n: answered,
            suppressed: suppressed || answered < k,
            satisfied: (!hidden).then_some(satisfied),
            value: p.filter(|_| !hidden).map(|p| 100.0 * p),
            mean_score: mean.filter(|_| !hidden),
            distribution: (!hidden).then(|| slot.levels.iter().copied().zip(counts.iter().copied()).collect()),
            ci95: if hidden { None } else { wilson(satisfied, answered) },
            variance: p.filter(|_| !hidden).map(|p| p * (1.0 - p) / answered as f64),
        })
    };

    // Raw (unsuppressed) values drive the tree; suppression only hides what is printed.
    let raw = |code: &str| -> Option<f64> {
        let slot = layout.slot(code)?;
        let counts = tally.counts(layout, code);
        let answered: u64 = counts.iter().sum();
        let satisfied: u64 =
            slot.levels.iter().zip(counts).filter(|(l, _)| slot.satisfied.contains(l)).map(|(_, c)| c).sum();
        (answered > 0).then(|| satisfied as f64 / answered as f64)
    };

    let leaf_ratio: Vec<(f64, f64)> = layout
        .leaves
        .iter()
        .map(|leaf| {
            let items = find_group(&form.groups, leaf).map(|g| g.items.as_slice()).unwrap_or(&[]);
            let (mut s, mut m) = (0.0, 0.0);
            for it in items {
                if let Some(slot) = layout.slot(&it.code) {
                    for (l, c) in slot.levels.iter().zip(tally.counts(layout, &it.code)) {
                        m += *c as f64;
                        if slot.satisfied.contains(l) {
                            s += *c as f64;
                        }
                    }
                }
            }
            (if m > 0.0 { s / m } else { 0.0 }, m)
        })
        .collect();

    // Linearised variance of a node whose value is Σ_g c_g R_g over leaf groups.
    let variance = |weights: &[f64]| -> Option<f64> {
        if n < 2 {
            return None;
        }
        let mut sum = 0.0;
        for (g, cg) in weights.iter().enumerate() {
            if *cg == 0.0 || leaf_ratio[g].1 == 0.0 {
                continue;
            }
            for (h, ch) in weights.iter().enumerate() {
                if *ch == 0.0 || leaf_ratio[h].1 == 0.0 {
                    continue;
                }
                let [ss, sm_gh, mm] = tally.moments(layout, g, h);
                let sm_hg = tally.moments(layout, h, g)[1];
                let (rg, mg) = leaf_ratio[g];
                let (rh, mh) = leaf_ratio[h];
                let cross = ss as f64 - rh * sm_gh as f64 - rg * sm_hg as f64 + rg * rh * mm as f64;
                sum += cg * ch * cross / (mg * mh);
            }
        }
        let v = sum * n as f64 / (n as f64 - 1.0);
        Some(v.max(0.0))
    };

    // Returns the node's raw value (0..1) and its leaf weights.
    fn node(
        g: &Group,
        layout: &Layout,
        raw: &dyn Fn(&str) -> Option<f64>,
    ) -> (Option<f64>, Vec<f64>) {
        let mut weights = vec![0.0; layout.leaves.len()];
        if !g.items.is_empty() {
            let values: Vec<f64> = g.items.iter().filter_map(|i| raw(&i.code)).collect();
            if values.is_empty() {
                return (None, weights);
            }
            if let Some(leaf) = layout.leaf_index(&g.code) {
                weights[leaf] = 1.0;
            }
            return (Some(values.iter().sum::<f64>() / values.len() as f64), weights);
        }
        let children: Vec<(f64, Vec<f64>)> =
            g.groups.iter().map(|c| node(c, layout, raw)).filter_map(|(v, w)| v.map(|v| (v, w))).collect();
        if children.is_empty() {
            return (None, weights);
        }
        let share = 1.0 / children.len() as f64;
        for (_, w) in &children {
            for (a, b) in weights.iter_mut().zip(w) {
                *a += share * b;
            }
        }
        (Some(children.iter().map(|(v, _)| v).sum::<f64>() * share), weights)
    }

    fn build(
        g: &Group,
        layout: &Layout,
        tally: &Tally,
        k: u64,
        suppressed: bool,
        raw: &dyn Fn(&str) -> Option<f64>,
        variance: &dyn Fn(&[f64]) -> Option<f64>,
        item: &dyn Fn(&str) -> Option<ItemFigure>,
    ) -> GroupFigure {
        let respondents = tally.group_respondents(layout, &g.code);
        let hidden = suppressed || respondents < k;
        let (value, weights) = node(g, layout, raw);
        let estimate = value.filter(|_| !hidden).map(|v| Estimate::from_variance(100.0 * v, variance(&weights)));
        GroupFigure {
            code: g.code.clone(),
            n: respondents,
            suppressed: hidden,
            value: estimate.as_ref().map(|e| e.value),
            ci95: estimate.as_ref().and_then(|e| e.ci95),
            groups: g.groups.iter().map(|c| build(c, layout, tally, k, suppressed, raw, variance, item)).collect(),
            items: g.items.iter().filter_map(|i| item(&i.code)).collect(),
            variance: estimate.and_then(|e| e.variance),
        }
    }

    let groups: Vec<GroupFigure> =
        form.groups.iter().map(|g| build(g, layout, tally, k, suppressed, &raw, &variance, &item)).collect();

    let root = Group { code: String::new(), title: form.title.clone(), groups: form.groups.clone(), items: vec![] };
    let (index_value, index_weights) = node(&root, layout, &raw);
    let index = index_value
        .filter(|_| !suppressed)
        .map(|v| Estimate::from_variance(100.0 * v, variance(&index_weights)));

    let items = form.index_items().iter().filter_map(|i| item(&i.code)).collect();
    let expectations = form.expectations.iter().filter_map(|e| item(&e.code)).collect();
    let questions = form
        .questions
        .iter()
        .filter_map(|q| {
            let slot = layout.slot(&q.code)?;
            let counts = tally.counts(layout, &q.code);
            let total: u64 = counts.iter().sum();
            let hidden = suppressed || total < k;
            Some(QuestionFigure {
                code: q.code.clone(),
                n: total,
                suppressed: hidden,
                distribution: (!hidden).then(|| slot.levels.iter().copied().zip(counts.iter().copied()).collect()),
            })
        })
        .collect();
    Figures { n, suppressed, index, groups, items, expectations, questions }
}

fn find_group<'a>(groups: &'a [Group], code: &str) -> Option<&'a Group> {
    for g in groups {
        if g.code == code {
            return Some(g);
        }
        if let Some(found) = find_group(&g.groups, code) {
            return Some(found);
        }
    }
    None
}

/// Mixes values of several cells: their weighted mean, with variance Σ w²·var / (Σ w)²
/// (the cells are independent samples). Cells without a value are left out.
fn mix(parts: impl Iterator<Item = (Option<f64>, Option<f64>, f64)>) -> Option<Estimate> {
    let present: Vec<(f64, Option<f64>, f64)> = parts.filter_map(|(v, var, w)| v.map(|v| (v, var, w))).collect();
    let weight: f64 = present.iter().map(|(_, _, w)| w).sum();
    if present.is_empty() || weight <= 0.0 {
        return None;
    }
    let value = present.iter().map(|(v, _, w)| v * w).sum::<f64>() / weight;
    let variance =
        present.iter().map(|(_, var, w)| var.map(|v| v * w * w)).sum::<Option<f64>>().map(|s| s / (weight * weight));
    Some(Estimate::from_variance(value, variance))
}

fn combine_item(code: &str, parts: &[(&ItemFigure, f64)]) -> ItemFigure {
    let e = mix(parts.iter().map(|(i, w)| (i.value, i.variance, *w)));
    ItemFigure {
        code: code.to_string(),
        n: parts.iter().map(|(i, _)| i.n).sum(),
        suppressed: e.is_none(),
        satisfied: None,
        value: e.as_ref().map(|e| e.value),
        mean_score: None,
        distribution: None,
        ci95: e.as_ref().and_then(|e| e.ci95),
        variance: e.and_then(|e| e.variance),
    }
}

fn combine_items(template: &[ItemFigure], parts: &[(&Vec<ItemFigure>, f64)]) -> Vec<ItemFigure> {
    template
        .iter()
        .map(|t| {
            let matching: Vec<(&ItemFigure, f64)> =
                parts.iter().filter_map(|(items, w)| items.iter().find(|i| i.code == t.code).map(|i| (i, *w))).collect();
            combine_item(&t.code, &matching)
        })
        .collect()
}

fn combine_group(template: &GroupFigure, parts: &[(&GroupFigure, f64)]) -> GroupFigure {
    let e = mix(parts.iter().map(|(g, w)| (g.value, g.variance, *w)));
    let groups = template
        .groups
        .iter()
        .map(|t| {
            let children: Vec<(&GroupFigure, f64)> =
                parts.iter().filter_map(|(g, w)| g.groups.iter().find(|c| c.code == t.code).map(|c| (c, *w))).collect();
            combine_group(t, &children)
        })
        .collect();
    let items = combine_items(&template.items, &parts.iter().map(|(g, w)| (&g.items, *w)).collect::<Vec<_>>());
    GroupFigure {
        code: template.code.clone(),
        n: parts.iter().map(|(g, _)| g.n).sum(),
        suppressed: e.is_none(),
        value: e.as_ref().map(|e| e.value),
        ci95: e.as_ref().and_then(|e| e.ci95),
        groups,
        items,
        variance: e.and_then(|e| e.variance),
    }
}

/// Combines the figures of several cells (the children of a unit) into one, value by
/// value: the unweighted mean when the weights are equal, else the weighted mean. The
/// caller leaves suppressed cells out. Counts are summed; distributions are not combined.
pub fn combine(cells: &[(&Figures, f64)]) -> Figures {
    let n = cells.iter().map(|(f, _)| f.n).sum();
    let Some((first, _)) = cells.first() else {
        return Figures { n, suppressed: true, index: None, groups: vec![], items: vec![], expectations: vec![], questions: vec![] };
    };
    let index = mix(cells.iter().map(|(f, w)| (f.index.as_ref().map(|e| e.value), f.index.as_ref().and_then(|e| e.variance), *w)));
    let groups = first
        .groups
        .iter()
        .map(|t| {
            let parts: Vec<(&GroupFigure, f64)> =
                cells.iter().filter_map(|(f, w)| f.groups.iter().find(|g| g.code == t.code).map(|g| (g, *w))).collect();
            combine_group(t, &parts)
        })
        .collect();
    Figures {
        n,
        suppressed: index.is_none(),
        index,
        groups,
        items: combine_items(&first.items, &cells.iter().map(|(f, w)| (&f.items, *w)).collect::<Vec<_>>()),
        expectations: combine_items(&first.expectations, &cells.iter().map(|(f, w)| (&f.expectations, *w)).collect::<Vec<_>>()),
        questions: vec![],
    }
}
