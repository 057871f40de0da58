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
    // At p = 0 (or 1) the bound is exactly 0 (or 100); rounding would miss it by a hair.
    let low = if p == 0.0 { 0.0 } else { 100.0 * (centre - half) };
    let high = if p == 1.0 { 100.0 } else { 100.0 * (centre + half) };
    Some([low, high])
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
    /// Answers per level (JSON object keys are the levels, as text).
    #[schema(value_type = Option<BTreeMap<String, u64>>)]
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
    /// Why the cell is withheld, when the publication gate withholds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// Why a cell is withheld (set by the publication gate; the maths never sets it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Fewer than k responses.
    UnderK,
    /// Shown, it would let a reader work out another group of fewer than k responses.
    ProtectsAnother,
}

/// One cell being computed: its form, tally and threshold.
struct Cell<'a> {
    form: &'a Form,
    layout: &'a Layout,
    tally: &'a Tally,
    k: u64,
    suppressed: bool,
    /// Per leaf group: (Σ satisfied / Σ answered, Σ answered).
    leaf_ratio: Vec<(f64, f64)>,
}

impl Cell<'_> {
    /// (answered, satisfied) of a code.
    fn counts(&self, code: &str) -> Option<(u64, u64)> {
        let slot = self.layout.slot(code)?;
        let counts = self.tally.counts(self.layout, code);
        let answered = counts.iter().sum();
        let satisfied =
            slot.levels.iter().zip(counts).filter(|(l, _)| slot.satisfied.contains(l)).map(|(_, c)| c).sum();
        Some((answered, satisfied))
    }

    /// Unsuppressed share satisfied (0..1): what the tree is built from.
    fn raw(&self, code: &str) -> Option<f64> {
        self.counts(code).filter(|(n, _)| *n > 0).map(|(n, s)| s as f64 / n as f64)
    }

    fn item(&self, code: &str) -> Option<ItemFigure> {
        let slot = self.layout.slot(code)?;
        let counts = self.tally.counts(self.layout, code);
        let (answered, satisfied) = self.counts(code)?;
        let hidden = self.suppressed || answered < self.k || answered == 0;
        let p = satisfied as f64 / answered.max(1) as f64;
        let mean = slot.levels.iter().zip(counts).map(|(l, c)| f64::from(*l) * *c as f64).sum::<f64>()
            / answered.max(1) as f64;
        Some(ItemFigure {
            code: code.to_string(),
            n: answered,
            suppressed: self.suppressed || answered < self.k,
            satisfied: (!hidden).then_some(satisfied),
            value: (!hidden).then_some(100.0 * p),
            mean_score: (!hidden).then_some(mean),
            distribution: (!hidden).then(|| slot.levels.iter().copied().zip(counts.iter().copied()).collect()),
            ci95: if hidden { None } else { wilson(satisfied, answered) },
            variance: (!hidden).then_some(p * (1.0 - p) / answered.max(1) as f64),
        })
    }

    /// Linearised variance (0..1 scale) of a node whose value is Σ_g c_g R_g.
    fn variance(&self, weights: &[f64]) -> Option<f64> {
        let n = self.tally.responses();
        if n < 2 {
            return None;
        }
        let mut sum = 0.0;
        for (g, cg) in weights.iter().enumerate().filter(|(g, c)| **c != 0.0 && self.leaf_ratio[*g].1 > 0.0) {
            for (h, ch) in weights.iter().enumerate().filter(|(h, c)| **c != 0.0 && self.leaf_ratio[*h].1 > 0.0) {
                let [ss, sm_gh, mm] = self.tally.moments(self.layout, g, h);
                let sm_hg = self.tally.moments(self.layout, h, g)[1];
                let ((rg, mg), (rh, mh)) = (self.leaf_ratio[g], self.leaf_ratio[h]);
                let cross = ss as f64 - rh * sm_gh as f64 - rg * sm_hg as f64 + rg * rh * mm as f64;
                sum += cg * ch * cross / (mg * mh);
            }
        }
        Some((sum * n as f64 / (n as f64 - 1.0)).max(0.0))
    }

    /// A node's raw value (0..1) and the weights it gives each leaf group.
    fn node(&self, g: &Group) -> (Option<f64>, Vec<f64>) {
        let mut weights = vec![0.0; self.layout.leaves.len()];
        if !g.items.is_empty() {
            let values: Vec<f64> = g.items.iter().filter_map(|i| self.raw(&i.code)).collect();
            if values.is_empty() {
                return (None, weights);
            }
            if let Some(leaf) = self.layout.leaf_index(&g.code) {
                weights[leaf] = 1.0;
            }
            return (Some(values.iter().sum::<f64>() / values.len() as f64), weights);
        }
        self.mean_of(&g.groups)
    }

    /// The unweighted mean of groups that have a value, and its leaf weights.
    fn mean_of(&self, groups: &[Group]) -> (Option<f64>, Vec<f64>) {
        let mut weights = vec![0.0; self.layout.leaves.len()];
        let children: Vec<(f64, Vec<f64>)> =
            groups.iter().map(|c| self.node(c)).filter_map(|(v, w)| v.map(|v| (v, w))).collect();
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

    fn group(&self, g: &Group) -> GroupFigure {
        let respondents = self.tally.group_respondents(self.layout, &g.code);
        let hidden = self.suppressed || respondents < self.k;
        let (value, weights) = self.node(g);
        let estimate = value.filter(|_| !hidden).map(|v| Estimate::from_variance(100.0 * v, self.variance(&weights)));
        GroupFigure {
            code: g.code.clone(),
            n: respondents,
            suppressed: hidden,
            value: estimate.as_ref().map(|e| e.value),
            ci95: estimate.as_ref().and_then(|e| e.ci95),
            groups: g.groups.iter().map(|c| self.group(c)).collect(),
            items: g.items.iter().filter_map(|i| self.item(&i.code)).collect(),
            variance: estimate.and_then(|e| e.variance),
        }
    }
}

/// Figures of one cell. `k` is the suppression threshold (0 computes everything, for tests
/// and for roll-ups that apply their own threshold).
pub fn compute(form: &Form, layout: &Layout, tally: &Tally, k: u64) -> Figures {
    let n = tally.responses();
    let leaf_ratio = (0..layout.leaves.len())
        .map(|leaf| {
            let (mut satisfied, mut answered) = (0.0, 0.0);
            for slot in layout.leaf_slots(leaf) {
                for (l, c) in slot.levels.iter().zip(&tally.data[slot.offset..slot.offset + slot.levels.len()]) {
                    answered += *c as f64;
                    if slot.satisfied.contains(l) {
                        satisfied += *c as f64;
                    }
                }
            }
            (if answered > 0.0 { satisfied / answered } else { 0.0 }, answered)
        })
        .collect();
    let cell = Cell { form, layout, tally, k, suppressed: n < k, leaf_ratio };

    let (index_value, index_weights) = cell.mean_of(&form.groups);
    let index = index_value
        .filter(|_| !cell.suppressed)
        .map(|v| Estimate::from_variance(100.0 * v, cell.variance(&index_weights)));
    let questions = form
        .questions
        .iter()
        .filter_map(|q| {
            let slot = layout.slot(&q.code)?;
            let counts = tally.counts(layout, &q.code);
            let total: u64 = counts.iter().sum();
            let hidden = cell.suppressed || total < k;
            Some(QuestionFigure {
                code: q.code.clone(),
                n: total,
                suppressed: hidden,
                distribution: (!hidden).then(|| slot.levels.iter().copied().zip(counts.iter().copied()).collect()),
            })
        })
        .collect();
    Figures {
        n,
        suppressed: cell.suppressed,
        index,
        groups: cell.form.groups.iter().map(|g| cell.group(g)).collect(),
        items: form.index_items().iter().filter_map(|i| cell.item(&i.code)).collect(),
        expectations: form.expectations.iter().filter_map(|e| cell.item(&e.code)).collect(),
        questions,
        withheld: None,
    }
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
            let matching: Vec<(&ItemFigure, f64)> = parts
                .iter()
                .filter_map(|(items, w)| items.iter().find(|i| i.code == t.code).map(|i| (i, *w)))
                .collect();
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
        return Figures {
            n,
            suppressed: true,
            index: None,
            groups: vec![],
            items: vec![],
            expectations: vec![],
            questions: vec![],
            withheld: None,
        };
    };
    let index = mix(cells
        .iter()
        .map(|(f, w)| (f.index.as_ref().map(|e| e.value), f.index.as_ref().and_then(|e| e.variance), *w)));
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
        expectations: combine_items(
            &first.expectations,
            &cells.iter().map(|(f, w)| (&f.expectations, *w)).collect::<Vec<_>>(),
        ),
        questions: vec![],
        withheld: None,
    }
}

fn strip_item(i: &mut ItemFigure) {
    i.suppressed = true;
    i.satisfied = None;
    i.value = None;
    i.mean_score = None;
    i.distribution = None;
    i.ci95 = None;
    i.variance = None;
}

fn strip_group(g: &mut GroupFigure) {
    g.suppressed = true;
    g.value = None;
    g.ci95 = None;
    g.variance = None;
    g.groups.iter_mut().for_each(strip_group);
    g.items.iter_mut().for_each(strip_item);
}

impl Figures {
    /// Withholds everything but the counts.
    pub fn strip(&mut self) {
        self.suppressed = true;
        self.index = None;
        self.groups.iter_mut().for_each(strip_group);
        self.items.iter_mut().for_each(strip_item);
        self.expectations.iter_mut().for_each(strip_item);
        for q in &mut self.questions {
            q.suppressed = true;
            q.distribution = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_reference_formula() {
        let [lo, hi] = wilson(400, 564).unwrap_or([0.0, 0.0]);
        assert!((lo - 67.04262337727911).abs() < 1e-9 && (hi - 74.51827294933469).abs() < 1e-9);
        assert_eq!(wilson(0, 0), None);
        let [lo, hi] = wilson(0, 5).unwrap_or([1.0, 1.0]);
        assert!(lo.abs() < 1e-12 && hi > 0.0 && hi < 100.0);
    }
}
