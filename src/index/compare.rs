//! Where a unit lost points against a reference that contains it (the province), and
//! whether each loss is larger than its uncertainty. Pure: from published item figures.
//!
//! The unit's respondents are part of the province's, so the two shares are not independent
//! samples. With pooled figures the gap is exactly `p_unit − p_prov = (1 − f)(p_unit −
//! p_rest)`, where `rest` is the province without the unit and `f = n_unit / n_prov`: the
//! unit and the rest are disjoint, so the difference of two independent proportions applies
//! to them. Its 95% interval is Newcombe's hybrid score interval (method 10, from the two
//! Wilson intervals), scaled by `(1 − f)` to be read against the province. A criterion is
//! "clearly below" when that interval lies entirely below zero.
//!
//! Suppression: an item is compared only when the unit's, the province's and the rest's
//! answers each reach k (a withheld figure is never an input, and the rest is never a small
//! cell); the comparison counts the criteria it could not compare, so a page never says
//! "nothing below" when it could not look. Only criteria below the reference are listed.

use serde::Serialize;

use super::engine::{ItemFigure, wilson};

/// A criterion below the reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Loss {
    pub code: String,
    /// The unit's and the reference's item index (percent).
    pub value: f64,
    pub reference: f64,
    /// `value − reference`, in points (negative).
    pub gap: f64,
    /// 95% interval of the gap.
    pub ci95: [f64; 2],
    /// The whole interval is below zero.
    pub clear: bool,
}

/// Newcombe's hybrid score interval for `s1/n1 − s2/n2`, as proportions (0..1).
pub fn newcombe(s1: u64, n1: u64, s2: u64, n2: u64) -> Option<[f64; 2]> {
    let [l1, u1] = wilson(s1, n1)?.map(|x| x / 100.0);
    let [l2, u2] = wilson(s2, n2)?.map(|x| x / 100.0);
    let (p1, p2) = (s1 as f64 / n1 as f64, s2 as f64 / n2 as f64);
    let d = p1 - p2;
    Some([d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(), d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()])
}

/// What comparing a unit with its reference found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Criteria below the reference, clearly-below ones first, then by points lost.
    pub losses: Vec<Loss>,
    /// Criteria compared (below the reference or not).
    pub compared: usize,
    /// Criteria with too few answers (the unit's, the reference's or the rest's) to compare.
    pub not_compared: usize,
}

/// Compares a unit's criteria with the reference's. `unit` and `reference` are pooled
/// figures of the same form, period and filters, the unit's responses being part of the
/// reference's.
pub fn compare(unit: &[ItemFigure], reference: &[ItemFigure], k: u64) -> Comparison {
    let mut out = Comparison::default();
    for u in unit {
        match reference.iter().find(|r| r.code == u.code).and_then(|r| compare_item(u, r, k)) {
            None => out.not_compared += 1,
            Some(loss) => {
                out.compared += 1;
                out.losses.extend(loss);
            }
        }
    }
    out.losses.sort_by(|a, b| b.clear.cmp(&a.clear).then(a.gap.total_cmp(&b.gap)));
    out
}

/// None when the item cannot be compared; Some(None) when it is not below the reference.
fn compare_item(u: &ItemFigure, r: &ItemFigure, k: u64) -> Option<Option<Loss>> {
    let (su, sr) = (u.satisfied?, r.satisfied?);
    let (nu, nr) = (u.n, r.n);
    let rest = nr.checked_sub(nu)?;
    let k = k.max(1);
    if nu < k || nr < k || rest < k || sr < su {
        return None;
    }
    let value = 100.0 * su as f64 / nu as f64;
    let reference = 100.0 * sr as f64 / nr as f64;
    let gap = value - reference;
    if gap >= 0.0 {
        return Some(None);
    }
    let [lo, hi] = newcombe(su, nu, sr - su, rest)?;
    let share = 1.0 - nu as f64 / nr as f64;
    let ci95 = [100.0 * share * lo, 100.0 * share * hi];
    Some(Some(Loss { code: u.code.clone(), value, reference, gap, ci95, clear: ci95[1] < 0.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(code: &str, satisfied: u64, n: u64) -> ItemFigure {
        ItemFigure {
            code: code.into(),
            n,
            suppressed: false,
            satisfied: Some(satisfied),
            value: Some(100.0 * satisfied as f64 / n as f64),
            mean_score: None,
            distribution: None,
            ci95: wilson(satisfied, n),
            variance: None,
        }
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 − 48/80,
        // method 10: 0.0524 to 0.3339.
        let [lo, hi] = newcombe(56, 70, 48, 80).unwrap_or([0.0, 0.0]);
        assert!((lo - 0.0524).abs() < 5e-5 && (hi - 0.3339).abs() < 5e-5, "{lo} {hi}");
        assert_eq!(newcombe(1, 0, 1, 2), None);
    }

    #[test]
    fn a_unit_clearly_worse_is_listed_as_clearly_below() {
        // 30 of 100 satisfied against a province at 700 of 1000 (the rest: 670 of 900).
        let got = compare(&[item("A1", 30, 100)], &[item("A1", 700, 1000)], 10).losses;
        assert_eq!(got.len(), 1);
        let l = &got[0];
        assert!((l.gap - (30.0 - 70.0)).abs() < 1e-9);
        assert!(l.clear && l.ci95[0] <= l.gap && l.gap <= l.ci95[1] && l.ci95[1] < 0.0, "{l:?}");
        // The interval is the unit-vs-rest interval scaled by the rest's share of the province.
        let [lo, hi] = newcombe(30, 100, 670, 900).unwrap_or([0.0, 0.0]);
        assert!((l.ci95[0] - 90.0 * lo).abs() < 1e-9 && (l.ci95[1] - 90.0 * hi).abs() < 1e-9);
    }

    #[test]
    fn a_small_gap_within_the_uncertainty_is_listed_but_not_marked() {
        // 6 of 10 against 70%: ten points below, but ten answers cannot tell.
        let got = compare(&[item("B2", 6, 10)], &[item("B2", 700, 1000)], 10).losses;
        assert_eq!(got.len(), 1);
        assert!(!got[0].clear && got[0].ci95[0] < 0.0 && got[0].ci95[1] > 0.0, "{:?}", got[0]);
    }

    #[test]
    fn criteria_at_or_above_the_reference_are_not_listed() {
        let unit = [item("A1", 90, 100), item("A2", 70, 100)];
        let province = [item("A1", 700, 1000), item("A2", 700, 1000)];
        let got = compare(&unit, &province, 10);
        assert!(got.losses.is_empty() && got.compared == 2 && got.not_compared == 0, "{got:?}");
    }

    #[test]
    fn withheld_figures_and_small_cells_are_never_compared() {
        let nothing = |c: Comparison| c.losses.is_empty() && c.compared == 0 && c.not_compared == 1;
        let mut hidden = item("A1", 3, 9);
        hidden.satisfied = None;
        // The unit under k, the unit withheld, the province withheld, the rest under k.
        assert!(nothing(compare(&[item("A1", 3, 9)], &[item("A1", 700, 1000)], 10)));
        assert!(nothing(compare(&[hidden], &[item("A1", 700, 1000)], 10)));
        let mut province = item("A1", 700, 1000);
        province.satisfied = None;
        assert!(nothing(compare(&[item("A1", 30, 100)], &[province], 10)));
        assert!(nothing(compare(&[item("A1", 30, 100)], &[item("A1", 35, 105)], 10)));
        // The unit is the whole province: nothing to compare with.
        assert!(nothing(compare(&[item("A1", 30, 100)], &[item("A1", 30, 100)], 10)));
    }

    #[test]
    fn clearly_below_comes_first_then_the_largest_loss() {
        let unit = [item("A1", 6, 10), item("A2", 50, 100), item("A3", 60, 100)];
        let province = [item("A1", 700, 1000), item("A2", 700, 1000), item("A3", 700, 1000)];
        let order: Vec<String> = compare(&unit, &province, 10).losses.into_iter().map(|l| l.code).collect();
        // A3 (−10, 100 answers) is clear; A1 (−10, 10 answers) is not.
        assert_eq!(order, ["A2", "A3", "A1"]);
    }
}
