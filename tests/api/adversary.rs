//! The anonymity adversary of issue 9: everything a role can read, combined by exact linear
//! algebra. It collects every answer distribution the indices API shows a signed-in analyst
//! for a small province (every unit, every calendar range of whole months, every filter and
//! breakdown), writes each shown cell as a linear equation over the atoms of the data set
//! (own unit × month × respondent type × channel), and checks with exact rational elimination
//! that no small group (0 < n < k responses) of the lattice is determined by the shown ones.
//!
//! Today's service fails it (year minus January–November, parent minus children, all minus
//! one filter value): it is ignored until the publication gate lands, and run with
//! `cargo test --test api adversary -- --ignored`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures_util::StreamExt;
use serde_json::Value;
use sipas::auth::Role;

use crate::helpers::{TestApp, spawn_app};

const K: u64 = 10;
const UNITS: [&str; 4] = ["TP", "TP.A", "TP.B", "TP.C"];
const TYPES: [&str; 2] = ["citizen", "organization"];
const CHANNELS: [&str; 2] = ["in_person", "online"];

/// An atom: (own unit index, month 1..=12, respondent type index, channel index).
type Atom = (usize, u32, usize, usize);

fn atom_index(a: Atom) -> usize {
    ((a.0 * 12 + (a.1 as usize - 1)) * 2 + a.2) * 2 + a.3
}
const ATOMS: usize = 4 * 12 * 2 * 2;

/// The small province: a parent with 4 responses of its own and children with 25,
/// 14 and 6; the first child has three organisations and a single December response.
fn data() -> Vec<(Atom, i64)> {
    let mut out = Vec::new();
    for (u, n) in [(0usize, 4usize), (1, 25), (2, 14), (3, 6)] {
        for i in 0..n {
            let month = if u == 1 && i == n - 1 { 12 } else { ((i * 5 + u * 3) % 11) as u32 + 1 };
            let rt = usize::from(u == 1 && i < 3 || u == 2 && i < 2);
            let ch = (i + u) % 2;
            let a1 = ((i * 3 + u) % 5) as i64 + 1;
            out.push(((u, month, rt, ch), a1));
        }
    }
    out
}

fn last_day(month: u32) -> u32 {
    match month {
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

async fn seed(app: &TestApp) {
    let csv = "code,parent,level,name_vi\nTP,,province,Tỉnh Thử\nTP.A,TP,commune,Xã A\nTP.B,TP,commune,Xã B\nTP.C,TP,commune,Xã C\n";
    let rows = sipas::units::import::parse_csv(csv).unwrap();
    sipas::store::units::import(&app.db, rows).await.unwrap().unwrap();
    let mut lines = String::new();
    for (i, ((u, month, rt, ch), a1)) in data().into_iter().enumerate() {
        let answers: BTreeMap<String, i64> =
            ["A1", "B1", "C1", "D1", "E1"].iter().map(|c| (c.to_string(), if *c == "A1" { a1 } else { 4 })).collect();
        let line = serde_json::json!({
            "submission_id": uuid::Uuid::from_u128(0x5150_0000 + i as u128),
            "unit": UNITS[u], "form": "sipas-2017", "respondent_type": TYPES[rt], "channel": CHANNELS[ch],
            "date": format!("2025-{month:02}-{:02}", 1 + (i as u32 % 28)), "answers": answers,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let report = sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    assert_eq!(report.created as usize, data().len());
}

/// A shown cell: the atoms it adds up.
#[derive(Clone)]
struct Cell {
    atoms: Vec<bool>,
}

/// The atoms of some units' own responses, months `from..=to`, and filters.
fn select(units: &[usize], from: u32, to: u32, rt: Option<usize>, ch: Option<usize>) -> Vec<bool> {
    let mut v = vec![false; ATOMS];
    for &u in units {
        for m in from..=to {
            for t in 0..2 {
                for c in 0..2 {
                    if rt.is_none_or(|r| r == t) && ch.is_none_or(|x| x == c) {
                        v[atom_index((u, m, t, c))] = true;
                    }
                }
            }
        }
    }
    v
}

/// `select` in the flat province: a commune is itself, the province its subtree or its own.
fn flat(unit: usize, own_only: bool, from: u32, to: u32, rt: Option<usize>, ch: Option<usize>) -> Vec<bool> {
    let units: Vec<usize> = if unit == 0 && !own_only { vec![0, 1, 2, 3] } else { vec![unit] };
    select(&units, from, to, rt, ch)
}

/// What a reader can name: each unit code and the atom units its subtree adds up (the
/// province first, its own responses being unit 0's). A merged ward adds up its
/// predecessors.
struct Layout(Vec<(&'static str, Vec<usize>)>);

impl Layout {
    fn flat() -> Layout {
        Layout(vec![("TP", vec![0, 1, 2, 3]), ("TP.A", vec![1]), ("TP.B", vec![2]), ("TP.C", vec![3])])
    }

    fn units_of(&self, code: &str) -> Option<&[usize]> {
        self.0.iter().find(|(c, _)| *c == code).map(|(_, u)| u.as_slice())
    }
}

/// The A1 distribution of a reply's figures, when shown.
fn shown(figures: &Value) -> bool {
    figures["items"].as_array().into_iter().flatten().any(|i| i["code"] == "A1" && i["distribution"].is_object())
}

/// Every query the analyst may make here, with the cells each reply shows.
async fn collect(app: &TestApp, token: &str) -> Vec<Cell> {
    collect_in(app, token, &Layout::flat()).await
}

async fn collect_in(app: &TestApp, token: &str, layout: &Layout) -> Vec<Cell> {
    let mut queries = Vec::new();
    for (u, (code, _)) in layout.0.iter().enumerate() {
        for from in 1..=12u32 {
            for to in from..=12u32 {
                for filter in [
                    None,
                    Some(("respondent_type", 0)),
                    Some(("respondent_type", 1)),
                    Some(("channel", 0)),
                    Some(("channel", 1)),
                ] {
                    let mut breakdowns = vec![None, Some("respondent_type"), Some("channel")];
                    if u == 0 {
                        breakdowns.push(Some("unit"));
                    }
                    for b in breakdowns {
                        if filter.is_some_and(|(f, _)| Some(f) == b) {
                            continue;
                        }
                        queries.push((u, *code, from, to, filter, b));
                    }
                }
            }
        }
    }
    let replies = futures_util::stream::iter(queries)
        .map(|(u, code, from, to, filter, b)| async move {
            let mut url =
                format!("/api/v1/indices?unit={code}&from=2025-{from:02}-01&to=2025-{to:02}-{:02}", last_day(to));
            if let Some((f, i)) = filter {
                let value = if f == "channel" { CHANNELS[i] } else { TYPES[i] };
                url.push_str(&format!("&{f}={value}"));
            }
            if let Some(b) = b {
                url.push_str(&format!("&breakdown={b}"));
            }
            let res = app.get_as(&url, token).await;
            // A range the lattice does not protect may be refused: it shows nothing.
            let status = res.status().as_u16();
            assert!(status == 200 || status == 422, "{url}: {status}");
            let body: Value = if status == 200 { res.json().await.unwrap() } else { Value::Null };
            (u, from, to, filter, b, body)
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut cells = Vec::new();
    for (u, from, to, filter, b, body) in replies {
        let rt = filter.and_then(|(f, i)| (f == "respondent_type").then_some(i));
        let ch = filter.and_then(|(f, i)| (f == "channel").then_some(i));
        let units = &layout.0[u].1;
        if shown(&body) {
            cells.push(Cell { atoms: select(units, from, to, rt, ch) });
        }
        for row in body["breakdown"].as_array().into_iter().flatten() {
            if !shown(row) {
                continue;
            }
            let key = row["key"].as_str().unwrap_or_default();
            let atoms = match b {
                Some("unit") if key == "(own)" => select(&[0], from, to, rt, ch),
                Some("unit") => match layout.units_of(key) {
                    Some(child) => select(child, from, to, rt, ch),
                    None => panic!("a breakdown row the layout does not know: {key}"),
                },
                Some("respondent_type") => select(units, from, to, TYPES.iter().position(|t| *t == key), ch),
                Some("channel") => select(units, from, to, rt, CHANNELS.iter().position(|c| *c == key)),
                _ => continue,
            };
            cells.push(Cell { atoms });
        }
    }
    cells
}

/// The months a period label of the microdata names (`2025`, `2025-Q2`, `2025-05`).
fn label_months(label: &str) -> std::ops::RangeInclusive<u32> {
    match label.split_once('-') {
        None => 1..=12,
        Some((_, q)) if q.starts_with('Q') => {
            let q: u32 = q[1..].parse().unwrap();
            (3 * q - 2)..=(3 * q)
        }
        Some((_, m)) => {
            let m: u32 = m.parse().unwrap();
            m..=m
        }
    }
}

/// Every microdata file the analyst may download here (each unit, each calendar year, quarter
/// and month, each breakdown column and each filter), as the classes a reader can count: for
/// each group of rows, every combination of its period labels and shown breakdown values,
/// empty ones included (an empty class is a figure too: zero).
async fn collect_microdata(app: &TestApp, token: &str) -> Vec<Cell> {
    let mut periods = vec!["2025".to_string()];
    periods.extend((1..=4).map(|q| format!("2025-Q{q}")));
    periods.extend((1..=12).map(|m| format!("2025-{m:02}")));
    let mut queries = Vec::new();
    for code in UNITS {
        for period in &periods {
            for extra in [
                "breakdown=respondent_type",
                "breakdown=channel",
                "respondent_type=citizen",
                "respondent_type=organization",
                "channel=in_person",
                "channel=online",
            ] {
                queries.push(format!("/api/v1/exports/microdata.csv?within={code}&period={period}&{extra}"));
            }
        }
    }
    // Two at a time: what one user may have under way (a third is 429, `export::permits`).
    let files = futures_util::stream::iter(queries)
        .map(|url| async move {
            let res = app.get_as(&url, token).await;
            assert_eq!(res.status(), 200, "{url}");
            (url, res.text().await.unwrap())
        })
        .buffer_unordered(sipas::export::permits::PER_USER as usize)
        .collect::<Vec<_>>()
        .await;
    let mut cells = Vec::new();
    for (url, text) in files {
        let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let filter_rt = TYPES.iter().position(|t| url.contains(&format!("respondent_type={t}")));
        let filter_ch = CHANNELS.iter().position(|c| url.contains(&format!("channel={c}")));
        // Group (unit, own) → its period labels seen and whether each breakdown is shown.
        let mut groups: BTreeMap<(usize, bool), (BTreeSet<String>, bool, bool)> = BTreeMap::new();
        for r in reader.records() {
            let r = r.unwrap();
            let unit = UNITS.iter().position(|u| *u == &r[col("unit")]).unwrap();
            let entry = groups.entry((unit, &r[col("unit_covers")] == "own")).or_default();
            entry.0.insert(r[col("period")].to_string());
            entry.1 = &r[col("respondent_type")] != "*";
            entry.2 = &r[col("channel")] != "*";
        }
        let period = url.split("period=").nth(1).unwrap().split('&').next().unwrap();
        for ((unit, own), (labels, rt_shown, ch_shown)) in groups {
            // Every label of the group's grain within the export's period.
            let grain = labels.iter().next().unwrap().len();
            let all_labels: Vec<String> = match grain {
                4 => vec![period.to_string()],
                7 if labels.iter().next().unwrap().contains('Q') => (1..=4)
                    .map(|q| format!("2025-Q{q}"))
                    .filter(|l| label_months(period).contains(label_months(l).start()))
                    .collect(),
                _ => (1..=12)
                    .map(|m| format!("2025-{m:02}"))
                    .filter(|l| label_months(period).contains(label_months(l).start()))
                    .collect(),
            };
            let rts: Vec<Option<usize>> = if rt_shown { vec![Some(0), Some(1)] } else { vec![filter_rt] };
            let chs: Vec<Option<usize>> = if ch_shown { vec![Some(0), Some(1)] } else { vec![filter_ch] };
            for label in &all_labels {
                let ms = label_months(label);
                for rt in &rts {
                    for ch in &chs {
                        cells.push(Cell { atoms: flat(unit, own, *ms.start(), *ms.end(), *rt, *ch) });
                    }
                }
            }
        }
    }
    cells
}

/// Exact rationals, enough for 0/1 systems of this size.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Q(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Q(s * n / g, s * d / g)
    }
    fn is_zero(self) -> bool {
        self.0 == 0
    }
    fn sub_mul(self, f: Q, x: Q) -> Q {
        // self − f·x
        Q::new(self.0 * f.1 * x.1 - f.0 * x.0 * self.1, self.1 * f.1 * x.1)
    }
    fn div(self, d: Q) -> Q {
        Q::new(self.0 * d.1, self.1 * d.0)
    }
}

/// A row space in reduced echelon form: pivot column → row with 1 at the pivot.
#[derive(Default)]
struct Span {
    rows: Vec<(usize, Vec<Q>)>,
}

impl Span {
    fn reduce(&self, v: &[bool]) -> Vec<Q> {
        let mut v: Vec<Q> = v.iter().map(|b| Q(i128::from(*b), 1)).collect();
        for (pivot, row) in &self.rows {
            let f = v[*pivot];
            if !f.is_zero() {
                for (x, r) in v.iter_mut().zip(row) {
                    if !r.is_zero() {
                        *x = x.sub_mul(f, *r);
                    }
                }
            }
        }
        v
    }
    fn insert(&mut self, v: &[bool]) {
        let r = self.reduce(v);
        let Some(pivot) = r.iter().position(|x| !x.is_zero()) else { return };
        let p = r[pivot];
        let r: Vec<Q> = r.into_iter().map(|x| x.div(p)).collect();
        // Keep the basis reduced: clear the new pivot from the other rows.
        for (_, row) in &mut self.rows {
            let f = row[pivot];
            if !f.is_zero() {
                for (x, n) in row.iter_mut().zip(&r) {
                    if !n.is_zero() {
                        *x = x.sub_mul(f, *n);
                    }
                }
            }
        }
        self.rows.push((pivot, r));
    }
    fn determines(&self, v: &[bool]) -> bool {
        self.reduce(v).iter().all(|x| x.is_zero())
    }
}

/// Every small group a reader could name (a unit's subtree or own responses, a range of
/// months, up to one value of each breakdown) that some combination of shown cells pins down.
fn determined_small_groups(shown: &[Cell]) -> Vec<String> {
    let mut span = Span::default();
    let mut seen = HashSet::new();
    for c in shown {
        if seen.insert(c.atoms.clone()) {
            span.insert(&c.atoms);
        }
    }
    let mut counts = vec![0u64; ATOMS];
    for (a, _) in data() {
        counts[atom_index(a)] += 1;
    }
    let mut out = Vec::new();
    for (u, code) in UNITS.iter().enumerate() {
        for own_only in [false, true] {
            if own_only && u != 0 {
                continue;
            }
            for from in 1..=12u32 {
                for to in from..=12u32 {
                    for rt in [None, Some(0), Some(1)] {
                        for ch in [None, Some(0), Some(1)] {
                            let v = flat(u, own_only, from, to, rt, ch);
                            let n: u64 = v.iter().zip(&counts).filter(|(b, _)| **b).map(|(_, c)| c).sum();
                            if n > 0 && n < K && span.determines(&v) {
                                out.push(format!(
                                    "{code}{} months {from}-{to} type {rt:?} channel {ch:?}: {n} responses",
                                    if own_only { " (own)" } else { "" }
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_elimination_finds_a_remainder_and_misses_what_is_not_pinned() {
    // Year and January–November shown: December is determined. Two overlapping cells alone
    // determine neither part.
    let year = Cell { atoms: flat(1, false, 1, 12, None, None) };
    let jan_nov = Cell { atoms: flat(1, false, 1, 11, None, None) };
    let mut span = Span::default();
    span.insert(&year.atoms);
    assert!(!span.determines(&flat(1, false, 12, 12, None, None)));
    span.insert(&jan_nov.atoms);
    assert!(span.determines(&flat(1, false, 12, 12, None, None)));
    assert!(!span.determines(&flat(1, false, 11, 12, None, None)));
    assert!(span.determines(&flat(1, false, 1, 12, None, None)));
}

#[tokio::test]
async fn no_small_group_is_determined_by_what_an_analyst_can_read() {
    let app = spawn_app().await;
    seed(&app).await;
    let token = app.login_as(Role::Analyst, None).await;
    let shown = collect(&app, &token).await;
    // The province's year is well above k: it must be shown, or the check proves nothing.
    let whole = select(&[0, 1, 2, 3], 1, 12, None, None);
    assert!(shown.iter().any(|c| c.atoms == whole), "the province's year is shown");
    let found = determined_small_groups(&shown);
    assert!(
        found.is_empty(),
        "{} small groups are determined by {} shown cells, for example:\n{}",
        found.len(),
        shown.len(),
        found.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The same, with every microdata file the analyst may download added to the tables.
#[tokio::test]
async fn microdata_with_the_tables_determines_no_small_group() {
    let app = spawn_app().await;
    seed(&app).await;
    let token = app.login_as(Role::Analyst, None).await;
    let mut shown = collect(&app, &token).await;
    let tables = shown.len();
    let files = collect_microdata(&app, &token).await;
    // The province's year comes out of the file as one class at least: it is not empty.
    assert!(!files.is_empty(), "the files have rows");
    shown.extend(files);
    let found = determined_small_groups(&shown);
    assert!(
        found.is_empty(),
        "{} small groups are determined by {tables} table cells and {} file classes, for example:\n{}",
        found.len(),
        shown.len() - tables,
        found.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The lattice's own decisions on random trees and data, judged by the same elimination:
/// every cell it shows (every node × year, quarter, month × value of a dimension or all)
/// as an equation; no hidden cell and no nameable group under k may be determined.
mod random {
    use proptest::prelude::*;
    use sipas::publish::lattice::{Input, Node, Pattern, TIMES};

    use super::Span;

    fn months(t: usize) -> std::ops::RangeInclusive<u32> {
        match t {
            0 => 1..=12,
            1..=4 => (3 * t as u32 - 2)..=(3 * t as u32),
            _ => (t as u32 - 4)..=(t as u32 - 4),
        }
    }

    #[derive(Debug)]
    struct Case {
        parent: Vec<Option<usize>>,
        values: usize,
        atoms: Vec<u64>,
        k: u64,
        /// Former subtrees (the tree "as at" an earlier day): sets that cross today's tree.
        groups: Vec<Vec<usize>>,
    }

    impl Case {
        fn atom(&self, u: usize, m: u32, v: usize) -> usize {
            (u * 12 + (m as usize - 1)) * self.values + v
        }
        fn units(&self, node: Node) -> Vec<usize> {
            match node {
                Node::Own(u) => vec![u],
                Node::Group(g) => self.groups[g].clone(),
                Node::Subtree(u) => {
                    let mut out = vec![u];
                    let mut i = 0;
                    while i < out.len() {
                        let here = out[i];
                        out.extend((0..self.parent.len()).filter(|c| self.parent[*c] == Some(here)));
                        i += 1;
                    }
                    out
                }
            }
        }
        /// Atoms of a node, months and value (0 = all).
        fn select(&self, node: Node, ms: std::ops::RangeInclusive<u32>, v: usize) -> Vec<bool> {
            let mut out = vec![false; self.atoms.len()];
            for u in self.units(node) {
                for m in ms.clone() {
                    for x in 0..self.values {
                        if v == 0 || v == x + 1 {
                            out[self.atom(u, m, x)] = true;
                        }
                    }
                }
            }
            out
        }
        fn nodes(&self) -> Vec<Node> {
            let mut out = Vec::new();
            for u in 0..self.parent.len() {
                out.push(Node::Subtree(u));
                if self.parent.contains(&Some(u)) {
                    out.push(Node::Own(u));
                }
            }
            out.extend((0..self.groups.len()).map(Node::Group));
            out
        }
        fn n(&self, v: &[bool]) -> u64 {
            v.iter().zip(&self.atoms).filter(|(b, _)| **b).map(|(_, n)| n).sum()
        }
    }

    fn case() -> impl Strategy<Value = Case> {
        (2usize..6, 2usize..4, 5u64..11).prop_flat_map(|(units, values, k)| {
            let parents = (1..units).map(|i| (0..i).prop_map(Some).boxed()).collect::<Vec<_>>();
            let atoms =
                prop::collection::vec(prop_oneof![6 => Just(0u64), 3 => 1u64..4, 1 => 4u64..15], units * 12 * values);
            // Up to two former subtrees: random sets of two or more units.
            let groups = prop::collection::vec(prop::collection::btree_set(0..units, 2..=units), 0..3);
            (parents, atoms, groups).prop_map(move |(p, atoms, groups)| {
                let mut parent = vec![None];
                parent.extend(p);
                let groups = groups.into_iter().map(|g| g.into_iter().collect()).collect();
                Case { parent, values, atoms, k, groups }
            })
        })
    }

    fn decide(c: &Case) -> Pattern {
        let mut none = {
            let mut input = Input::new(c.parent.clone(), 0, c.k);
            input.groups.clone_from(&c.groups);
            for u in 0..c.parent.len() {
                for m in 1..=12 {
                    let a = input.atom(u, m, 0);
                    input.atoms[a] = (0..c.values).map(|v| c.atoms[c.atom(u, m, v)]).sum();
                }
            }
            Pattern::decide_all(input, None)
        };
        let mut input = Input::new(c.parent.clone(), c.values, c.k);
        input.atoms.clone_from(&c.atoms);
        input.groups.clone_from(&c.groups);
        let mut p = Pattern::decide_all(input, Some(&none));
        sipas::publish::lattice::decide_former(&mut none, std::slice::from_mut(&mut p));
        p
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn nothing_small_is_determined_on_random_provinces(c in case()) {
            let p = decide(&c);
            prop_assert_eq!(p.unresolved, 0, "the lattice's own audit left groups");
            let mut span = Span::default();
            let mut hidden = Vec::new();
            for node in c.nodes() {
                for t in 0..TIMES {
                    for v in 0..=c.values {
                        let atoms = c.select(node, months(t), v);
                        match (node, p.decide(node, t, v)) {
                            (_, None) => span.insert(&atoms),
                            // A former subtree withheld only because showing it would add to
                            // what is shown: nothing small behind it (those are under k).
                            (Node::Group(_), Some(sipas::publish::lattice::Reason::ProtectsAnother)) => {}
                            _ => hidden.push(atoms),
                        }
                    }
                }
            }
            // A hidden empty cell, pinned down, tells that nobody is in it: nothing to protect.
            for h in hidden.iter().filter(|h| c.n(h) > 0) {
                prop_assert!(!span.determines(h), "a hidden cell of {} responses is determined: {:?}", c.n(h),
                    h.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect::<Vec<_>>());
            }
            for node in c.nodes() {
                for from in 1..=12u32 {
                    for to in from..=12u32 {
                        for v in 0..=c.values {
                            let g = c.select(node, from..=to, v);
                            let n = c.n(&g);
                            prop_assert!(!(n > 0 && n < c.k && span.determines(&g)),
                                "{node:?} months {from}-{to} value {v}: {n} responses determined");
                        }
                    }
                }
            }
        }
    }
}

/// After a merger: Xã B (14 responses) and Xã C (6, under k) merge into a new ward. The ward's
/// figures are B and C pooled, and B's and C's stay readable by their codes: the lineage
/// relation (ward = B + C) is in the lattice, so C is not the ward minus B.
#[tokio::test]
async fn a_small_predecessor_is_not_the_successor_minus_the_others() {
    let app = spawn_app().await;
    seed(&app).await;
    let plan = "effective,operation,old,new,name_vi,parent,level\n2025-12-31,merge,TP.B;TP.C,TP.BC,Phường BC,TP,ward\n";
    let rows = sipas::units::restructure::parse_csv(plan).unwrap();
    sipas::store::units::restructure(&app.db, &rows, sipas::vietnam_today(), false).await.unwrap().unwrap();
    let token = app.login_as(Role::Analyst, None).await;
    let layout = Layout(vec![
        ("TP", vec![0, 1, 2, 3]),
        ("TP.A", vec![1]),
        ("TP.B", vec![2]),
        ("TP.C", vec![3]),
        ("TP.BC", vec![2, 3]),
    ]);
    let shown = collect_in(&app, &token, &layout).await;
    // Something of the lineage is shown (the ward's year, or Xã B's), or the check proves nothing.
    let is_shown = |units: &[usize]| shown.iter().any(|c| c.atoms == select(units, 1, 12, None, None));
    assert!(is_shown(&[2, 3]) || is_shown(&[2]), "the ward's year or Xã B's is shown");
    assert!(!is_shown(&[3]), "Xã C (6 responses) is withheld");
    let found = determined_small_groups(&shown);
    assert!(
        found.is_empty(),
        "{} small groups determined, for example:\n{}",
        found.len(),
        found[..found.len().min(15)].join("\n")
    );
}

/// The cells of the indices table of the tree as it stood on `day`: every calendar period
/// of 2025 with every filter, each shown row as the atoms its former subtree adds up.
async fn collect_as_at(app: &TestApp, token: &str, day: &str, layout: &Layout) -> Vec<Cell> {
    let mut periods: Vec<(String, u32, u32)> = vec![("2025".into(), 1, 12)];
    periods.extend((1..=4u32).map(|q| (format!("2025-Q{q}"), 3 * q - 2, 3 * q)));
    periods.extend((1..=12u32).map(|m| (format!("2025-{m:02}"), m, m)));
    let mut cells = Vec::new();
    for (period, from, to) in periods {
        for filter in [
            None,
            Some(("respondent_type", 0)),
            Some(("respondent_type", 1)),
            Some(("channel", 0)),
            Some(("channel", 1)),
        ] {
            let mut url = format!("/api/v1/exports/indices.json?within=TP&period={period}&as_at={day}");
            if let Some((f, i)) = filter {
                url.push_str(&format!("&{f}={}", if f == "channel" { CHANNELS[i] } else { TYPES[i] }));
            }
            let res = app.get_as(&url, token).await;
            assert_eq!(res.status(), 200, "{url}");
            let body: Value = res.json().await.unwrap();
            let rt = filter.and_then(|(f, i)| (f == "respondent_type").then_some(i));
            let ch = filter.and_then(|(f, i)| (f == "channel").then_some(i));
            for row in body["units"].as_array().into_iter().flatten().filter(|r| shown(r)) {
                let code = row["unit"].as_str().unwrap_or_default();
                let units = layout.units_of(code).unwrap_or_else(|| panic!("a row the layout does not know: {code}"));
                cells.push(Cell { atoms: select(units, from, to, rt, ch) });
            }
        }
    }
    cells
}

/// A district (no office of its own) held Xã B (14 responses) and Xã C (6, under k) until the
/// end of 2025, when C merged with Xã A into a ward and B moved up. The tree as at 30 December
/// 2025 shows the district as B + C: shown beside B, it would give C. The former district
/// is a group of the lattice, decided after today's cells, so it is shown only when what
/// is shown already determines it.
#[tokio::test]
async fn a_former_district_is_not_differenced_against_todays_tree() {
    let app = spawn_app().await;
    seed(&app).await;
    let tp = sipas::store::units::by_code(&app.db, "TP").await.unwrap().unwrap();
    let district = sipas::store::units::NewUnit {
        code: "TP.D".into(),
        parent_id: Some(tp.id),
        level: sipas::units::Level::District,
        name_vi: "Huyện D".into(),
        name_en: None,
        forms: None,
    };
    sipas::store::units::insert(&app.db, district).await.unwrap();
    let header = "effective,operation,old,new,name_vi,parent,level\n";
    for plan in [
        "2025-01-01,move,TP.B,,,TP.D,commune\n2025-01-01,move,TP.C,,,TP.D,commune\n",
        "2025-12-31,merge,TP.A;TP.C,TP.AC,Phường AC,TP,ward\n2025-12-31,move,TP.B,,,TP,commune\n2025-12-31,end,TP.D,,,,\n",
    ] {
        let rows = sipas::units::restructure::parse_csv(&format!("{header}{plan}")).unwrap();
        sipas::store::units::restructure(&app.db, &rows, sipas::vietnam_today(), false).await.unwrap().unwrap();
    }
    let token = app.login_as(Role::Analyst, None).await;
    let today = Layout(vec![
        ("TP", vec![0, 1, 2, 3]),
        ("TP.A", vec![1]),
        ("TP.B", vec![2]),
        ("TP.C", vec![3]),
        ("TP.AC", vec![1, 3]),
    ]);
    let shown_cells = collect_in(&app, &token, &today).await;
    let then = Layout(vec![
        ("TP", vec![0, 1, 2, 3]),
        ("TP.A", vec![1]),
        ("TP.D", vec![2, 3]),
        ("TP.B", vec![2]),
        ("TP.C", vec![3]),
    ]);
    let former = collect_as_at(&app, &token, "2025-12-30", &then).await;
    let is_shown = |cells: &[Cell], units: &[usize]| cells.iter().any(|c| c.atoms == select(units, 1, 12, None, None));
    assert!(is_shown(&former, &[0, 1, 2, 3]), "the as-at table shows the province's year");
    let mut all = shown_cells.clone();
    all.extend(former.iter().cloned());
    let found = determined_small_groups(&all);
    assert!(
        found.is_empty(),
        "{} small groups determined, for example:\n{}",
        found.len(),
        found[..found.len().min(15)].join("\n")
    );
    // The district's year (B + C = 20) is safe beside today's cells and is shown: the gate
    // withholds a former subtree only where it would tell (a gate that let every former
    // cell of k or more out lets 12 small groups be worked out here).
    assert!(is_shown(&former, &[2, 3]), "the district's year is shown");
}
