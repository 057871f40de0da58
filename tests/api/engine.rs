//! The index maths on the reference data set, without HTTP or SQL: every expected figure to
//! 1e-9, and the linearised intervals of groups and SIPAS against a seeded bootstrap.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sipas::forms::loader::{BUILTIN, parse};
use sipas::index::engine::{self, Figures};
use sipas::index::tally::{Layout, Tally};

use crate::helpers::fixture;

/// One response of the reference file.
pub struct RefResponse {
    pub unit: String,
    pub date: String,
    pub respondent_type: String,
    pub answers: Vec<(String, i16)>,
}

pub struct Reference {
    pub expected: Value,
    pub responses: Vec<RefResponse>,
    pub parents: HashMap<String, String>,
}

pub fn reference() -> Reference {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let responses = std::fs::read_to_string(fixture("responses.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let answers = v["answers"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, a)| a.as_i64().map(|a| (k.clone(), a as i16)))
                .collect();
            RefResponse {
                unit: v["unit"].as_str().unwrap().to_string(),
                date: v["date"].as_str().unwrap().to_string(),
                respondent_type: v["respondent_type"].as_str().unwrap().to_string(),
                answers,
            }
        })
        .collect();
    let parents = std::fs::read_to_string(fixture("units.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (!cols[1].is_empty()).then(|| (cols[0].to_string(), cols[1].to_string()))
        })
        .collect();
    Reference { expected, responses, parents }
}

impl Reference {
    pub fn within(&self, unit: &str, ancestor: &str) -> bool {
        let mut current = Some(unit.to_string());
        while let Some(c) = current {
            if c == ancestor {
                return true;
            }
            current = self.parents.get(&c).cloned();
        }
        false
    }
}

/// Compares figures with an expected entry of expected.json.
pub fn assert_matches(label: &str, fig: &Value, want: &Value) {
    let close = |a: &Value, b: &Value, what: &str| {
        let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{label} {what}: got {a}, want {b}");
    };
    assert_eq!(fig["n"], want["n"], "{label} n");
    close(&fig["index"]["value"], &want["index"], "index");
    for g in fig["groups"].as_array().unwrap() {
        let code = g["code"].as_str().unwrap();
        close(&g["value"], &want["elements"][code], &format!("element {code}"));
    }
    for item in fig["items"].as_array().unwrap() {
        let code = item["code"].as_str().unwrap();
        let w = &want["items"][code];
        assert_eq!(item["n"], w["n"], "{label} {code} n");
        assert_eq!(item["satisfied"], w["satisfied"], "{label} {code} satisfied");
        close(&item["value"], &w["value"], &format!("{code} value"));
        close(&item["mean_score"], &w["mean_score"], &format!("{code} mean_score"));
        close(&item["ci95"][0], &w["ci95"][0], &format!("{code} ci95 low"));
        close(&item["ci95"][1], &w["ci95"][1], &format!("{code} ci95 high"));
    }
}

fn form() -> sipas::forms::Form {
    parse(BUILTIN[0].0, BUILTIN[0].1).unwrap().form
}

fn pooled(r: &Reference, layout: &Layout, unit: &str, keep: &dyn Fn(&RefResponse) -> bool) -> Tally {
    let mut t = Tally::empty(layout);
    for resp in r.responses.iter().filter(|x| r.within(&x.unit, unit) && keep(x)) {
        t.add(&layout.tally_one(&resp.answers));
    }
    t
}

#[test]
fn engine_reproduces_every_expected_figure() {
    let r = reference();
    let form = form();
    let layout = Layout::for_form(&form);
    type Keep = Box<dyn Fn(&RefResponse) -> bool>;
    let sets: [(&str, Keep); 3] = [
        ("pooled", Box::new(|x| x.date.starts_with("2024"))),
        ("q1_pooled", Box::new(|x| x.date.as_str() >= "2024-01-01" && x.date.as_str() <= "2024-03-31")),
        ("organization_pooled", Box::new(|x| x.date.starts_with("2024") && x.respondent_type == "organization")),
    ];
    for (set, keep) in &sets {
        for (unit, want) in r.expected[set].as_object().unwrap() {
            let figures = engine::compute(&form, &layout, &pooled(&r, &layout, unit, keep), 0);
            assert_matches(&format!("{set} {unit}"), &serde_json::to_value(&figures).unwrap(), want);
        }
    }
}

#[test]
fn engine_reproduces_mean_of_children() {
    let r = reference();
    let form = form();
    let layout = Layout::for_form(&form);
    let k = r.expected["k"].as_u64().unwrap();
    for (unit, want) in r.expected["mean_of_children"].as_object().unwrap() {
        let children: Vec<String> = r.parents.iter().filter(|(_, p)| *p == unit).map(|(c, _)| c.clone()).collect();
        let figures: Vec<Figures> = children
            .iter()
            .map(|c| engine::compute(&form, &layout, &pooled(&r, &layout, c, &|x| x.date.starts_with("2024")), k))
            .filter(|f| !f.suppressed)
            .collect();
        let parts: Vec<(&Figures, f64)> = figures.iter().map(|f| (f, 1.0)).collect();
        let combined = engine::combine(&parts);
        let got = combined.index.unwrap().value;
        assert!((got - want.as_f64().unwrap()).abs() < 1e-9, "{unit}: {got} vs {want}");
    }
}

#[test]
fn linearised_intervals_agree_with_a_seeded_bootstrap() {
    let r = reference();
    let form = form();
    let layout = Layout::for_form(&form);
    let sample: Vec<Tally> =
        r.responses.iter().filter(|x| x.date.starts_with("2024")).map(|x| layout.tally_one(&x.answers)).collect();
    let mut total = Tally::empty(&layout);
    sample.iter().for_each(|t| total.add(t));
    let figures = engine::compute(&form, &layout, &total, 0);

    let mut rng = StdRng::seed_from_u64(20240101);
    let replicates = 1000;
    let mut index = Vec::new();
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); figures.groups.len()];
    for _ in 0..replicates {
        let mut t = Tally::empty(&layout);
        for _ in 0..sample.len() {
            t.add(&sample[rng.random_range(0..sample.len())]);
        }
        let f = engine::compute(&form, &layout, &t, 0);
        index.push(f.index.unwrap().value);
        for (i, g) in f.groups.iter().enumerate() {
            groups[i].push(g.value.unwrap());
        }
    }
    let sd = |xs: &[f64]| {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0)).sqrt()
    };
    let se = |ci: [f64; 2]| (ci[1] - ci[0]) / 2.0 / engine::Z95;
    let check = |label: &str, linearised: f64, bootstrap: f64| {
        let ratio = linearised / bootstrap;
        println!("{label}: linearised SE {linearised:.4}, bootstrap SE {bootstrap:.4}, ratio {ratio:.3}");
        assert!((0.85..1.15).contains(&ratio), "{label}: linearised {linearised} vs bootstrap {bootstrap}");
    };
    check("SIPAS", se(figures.index.as_ref().unwrap().ci95.unwrap()), sd(&index));
    for (i, g) in figures.groups.iter().enumerate() {
        check(&g.code, se(g.ci95.unwrap()), sd(&groups[i]));
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Random responses to the 2017 form: each item a level or no answer.
    fn responses() -> impl Strategy<Value = Vec<Vec<Option<i16>>>> {
        prop::collection::vec(prop::collection::vec(prop::option::weighted(0.85, 1i16..=5), 22), 0..60)
    }

    fn tally(layout: &Layout, codes: &[String], data: &[Vec<Option<i16>>]) -> Tally {
        let mut t = Tally::empty(layout);
        for r in data {
            let answers: Vec<(String, i16)> =
                codes.iter().zip(r).filter_map(|(c, v)| v.map(|v| (c.clone(), v))).collect();
            t.add(&layout.tally_one(&answers));
        }
        t
    }

    fn within(v: f64) -> bool {
        (0.0..=100.0).contains(&v)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn indices_stay_within_0_and_100_and_counts_add_up(data in responses(), k in 0u64..15) {
            let form = form();
            let layout = Layout::for_form(&form);
            let codes: Vec<String> = form.index_items().iter().map(|i| i.code.clone()).collect();
            let f = engine::compute(&form, &layout, &tally(&layout, &codes, &data), k);
            prop_assert_eq!(f.n, data.len() as u64);
            for (i, item) in f.items.iter().enumerate() {
                let answered = data.iter().filter(|r| r[i].is_some()).count() as u64;
                prop_assert_eq!(item.n, answered);
                if let Some(dist) = &item.distribution {
                    prop_assert_eq!(dist.values().sum::<u64>(), answered);
                }
                if let (Some(v), Some([lo, hi])) = (item.value, item.ci95) {
                    prop_assert!(within(v) && within(lo) && within(hi) && lo <= v && v <= hi);
                }
                prop_assert_eq!(item.suppressed, f.n < k || answered < k);
                if item.suppressed {
                    prop_assert!(item.value.is_none() && item.distribution.is_none() && item.satisfied.is_none());
                }
            }
            for g in &f.groups {
                if let Some(v) = g.value {
                    prop_assert!(within(v));
                    let [lo, hi] = g.ci95.unwrap_or([v, v]);
                    prop_assert!(within(lo) && within(hi) && lo <= v + 1e-9 && v <= hi + 1e-9);
                }
                prop_assert!(g.n <= f.n);
            }
            match &f.index {
                Some(e) => prop_assert!(within(e.value) && !f.suppressed),
                None => prop_assert!(f.suppressed || f.items.iter().all(|i| i.n == 0)),
            }
            prop_assert_eq!(f.suppressed, f.n < k);
        }

        #[test]
        fn merging_tallies_equals_tallying_everything(a in responses(), b in responses()) {
            let form = form();
            let layout = Layout::for_form(&form);
            let codes: Vec<String> = form.index_items().iter().map(|i| i.code.clone()).collect();
            let mut merged = tally(&layout, &codes, &a);
            merged.add(&tally(&layout, &codes, &b));
            let all: Vec<Vec<Option<i16>>> = a.iter().chain(&b).cloned().collect();
            prop_assert_eq!(&merged, &tally(&layout, &codes, &all));
            prop_assert_eq!(Tally::decode(&merged.encode()), Some(merged));
        }
    }
}
