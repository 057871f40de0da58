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

pub struct Reference {
    pub expected: Value,
    /// (unit, date, respondent_type, answers)
    pub responses: Vec<(String, String, String, Vec<(String, i16)>)>,
    pub parents: HashMap<String, String>,
}

pub fn reference() -> Reference {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
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
            (
                v["unit"].as_str().unwrap().to_string(),
                v["date"].as_str().unwrap().to_string(),
                v["respondent_type"].as_str().unwrap().to_string(),
                answers,
            )
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
    Reference {
        expected,
        responses,
        parents,
    }
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
        close(
            &g["value"],
            &want["elements"][code],
            &format!("element {code}"),
        );
    }
    for item in fig["items"].as_array().unwrap() {
        let code = item["code"].as_str().unwrap();
        let w = &want["items"][code];
        assert_eq!(item["n"], w["n"], "{label} {code} n");
        assert_eq!(
            item["satisfied"], w["satisfied"],
            "{label} {code} satisfied"
        );
        close(&item["value"], &w["value"], &format!("{code} value"));
        close(
            &item["mean_score"],
            &w["mean_score"],
            &format!("{code} mean_score"),
        );
        close(&item["ci95"][0], &w["ci95"][0], &format!("{code} ci95 low"));
        close(
            &item["ci95"][1],
            &w["ci95"][1],
            &format!("{code} ci95 high"),
        );
    }
}

fn form() -> sipas::forms::Form {
    parse(BUILTIN[0].0, BUILTIN[0].1).unwrap().form
}

fn pooled(
    r: &Reference,
    layout: &Layout,
    unit: &str,
    keep: &dyn Fn(&(String, String, String, Vec<(String, i16)>)) -> bool,
) -> Tally {
    let mut t = Tally::empty(layout);
    for resp in r
        .responses
        .iter()
        .filter(|x| r.within(&x.0, unit) && keep(x))
    {
        t.add(&layout.tally_one(&resp.3));
    }
    t
}

#[test]
fn engine_reproduces_every_expected_figure() {
    let r = reference();
    let form = form();
    let layout = Layout::for_form(&form);
    type Keep = Box<dyn Fn(&(String, String, String, Vec<(String, i16)>)) -> bool>;
    let sets: [(&str, Keep); 3] = [
        ("pooled", Box::new(|x| x.1.starts_with("2024"))),
        (
            "q1_pooled",
            Box::new(|x| x.1.as_str() >= "2024-01-01" && x.1.as_str() <= "2024-03-31"),
        ),
        (
            "organization_pooled",
            Box::new(|x| x.1.starts_with("2024") && x.2 == "organization"),
        ),
    ];
    for (set, keep) in &sets {
        for (unit, want) in r.expected[set].as_object().unwrap() {
            let figures = engine::compute(&form, &layout, &pooled(&r, &layout, unit, keep), 0);
            assert_matches(
                &format!("{set} {unit}"),
                &serde_json::to_value(&figures).unwrap(),
                want,
            );
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
        let children: Vec<String> = r
            .parents
            .iter()
            .filter(|(_, p)| *p == unit)
            .map(|(c, _)| c.clone())
            .collect();
        let figures: Vec<Figures> = children
            .iter()
            .map(|c| {
                engine::compute(
                    &form,
                    &layout,
                    &pooled(&r, &layout, c, &|x| x.1.starts_with("2024")),
                    k,
                )
            })
            .filter(|f| !f.suppressed)
            .collect();
        let parts: Vec<(&Figures, f64)> = figures.iter().map(|f| (f, 1.0)).collect();
        let combined = engine::combine(&parts);
        let got = combined.index.unwrap().value;
        assert!(
            (got - want.as_f64().unwrap()).abs() < 1e-9,
            "{unit}: {got} vs {want}"
        );
    }
}

#[test]
fn linearised_intervals_agree_with_a_seeded_bootstrap() {
    let r = reference();
    let form = form();
    let layout = Layout::for_form(&form);
    let sample: Vec<Tally> = r
        .responses
        .iter()
        .filter(|x| x.1.starts_with("2024"))
        .map(|x| layout.tally_one(&x.3))
        .collect();
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
        println!(
            "{label}: linearised SE {linearised:.4}, bootstrap SE {bootstrap:.4}, ratio {ratio:.3}"
        );
        assert!(
            (0.85..1.15).contains(&ratio),
            "{label}: linearised {linearised} vs bootstrap {bootstrap}"
        );
    };
    check(
        "SIPAS",
        se(figures.index.as_ref().unwrap().ci95.unwrap()),
        sd(&index),
    );
    for (i, g) in figures.groups.iter().enumerate() {
        check(&g.code, se(g.ci95.unwrap()), sd(&groups[i]));
    }
}
