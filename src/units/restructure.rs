//! Restructuring plans (issue 11): merge, split, rename, move and end units, each on an
//! effective date, from a CSV file (`sipas units restructure plan.csv [--dry-run]`).
//!
//! Format, one operation per row, header `effective,operation,old,new,name_vi,parent,level`
//! (an eighth column `name_en` is optional):
//! - `merge`: the units in `old` (codes separated by `;`) end and their responses count for
//!   `new`, an existing unit or a new one (then `name_vi`, `parent` and `level` say what it is);
//! - `split`: `old` ends and each row of the same `old` and date names one successor `new`
//!   (existing, or new as for a merge); at least two successors;
//! - `rename`: `old` takes the name `name_vi` (and `name_en`); its code stays (posters print it);
//! - `move`: `old` goes under `parent` (and to `level` when given);
//! - `end`: `old` ends without a successor.
//!
//! The rows apply in order, as one change: every bad row is reported by line and nothing is
//! written unless the whole plan is good. Nothing is deleted and no response changes its unit:
//! an ended unit keeps its responses and is placed under the unit they now count for (its
//! successor after a merge; the successors' nearest common unit after a split; its parent
//! after an end), which is how figures in today's tree follow the lineage. A unit cannot end
//! while a unit under it lives on: the plan must merge, move or end those too.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{Level, UnitTree, check_unit, is_valid_code};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Merge,
    Split,
    Rename,
    Move,
    End,
}

impl Operation {
    fn parse(value: &str) -> Option<Operation> {
        Some(match value {
            "merge" => Operation::Merge,
            "split" => Operation::Split,
            "rename" => Operation::Rename,
            "move" => Operation::Move,
            "end" => Operation::End,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct PlanRow {
    pub line: u64,
    pub effective: NaiveDate,
    pub operation: Operation,
    pub old: Vec<String>,
    pub new: Option<String>,
    pub name_vi: Option<String>,
    pub name_en: Option<String>,
    pub parent: Option<String>,
    pub level: Option<String>,
}

const HEADER: [&str; 7] = ["effective", "operation", "old", "new", "name_vi", "parent", "level"];

/// Parses the CSV text (see `units::import::records`).
pub fn parse_csv(text: &str) -> Result<Vec<PlanRow>, Vec<String>> {
    let with_en: [&str; 8] = ["effective", "operation", "old", "new", "name_vi", "parent", "level", "name_en"];
    let expected = format!("{}[,name_en]", HEADER.join(","));
    let (records, mut errors) = super::import::records(text, &[&HEADER, &with_en], &expected)?;
    let mut rows = Vec::new();
    for (line, record) in records {
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let effective = NaiveDate::parse_from_str(&get(0), "%Y-%m-%d");
        let operation = Operation::parse(&get(1));
        if effective.is_err() {
            errors.push(format!("line {line}: effective: must be a date, YYYY-MM-DD"));
        }
        if operation.is_none() {
            errors.push(format!("line {line}: operation: must be merge, split, rename, move or end"));
        }
        let (Ok(effective), Some(operation)) = (effective, operation) else { continue };
        rows.push(PlanRow {
            line,
            effective,
            operation,
            old: get(2).split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            new: opt(get(3)),
            name_vi: opt(get(4)),
            parent: opt(get(5)),
            level: opt(get(6)),
            name_en: opt(get(7)),
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push("the plan has no rows".into());
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// One change the plan makes, in the order it is made. The dry run prints them; applying
/// performs them in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Create {
        line: u64,
        effective: NaiveDate,
        code: String,
        parent: String,
        level: Level,
        name_vi: String,
        name_en: Option<String>,
    },
    Link {
        line: u64,
        effective: NaiveDate,
        from: String,
        to: String,
        split: bool,
    },
    Rename {
        line: u64,
        effective: NaiveDate,
        code: String,
        from: String,
        to: String,
        name_en: Option<String>,
    },
    Move {
        line: u64,
        effective: NaiveDate,
        code: String,
        from: Option<String>,
        to: String,
        level: Option<Level>,
    },
    /// `under`: the unit its responses count for from now on.
    End {
        line: u64,
        effective: NaiveDate,
        code: String,
        under: Option<String>,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create { line, effective, code, parent, level, name_vi, .. } => {
                write!(f, "line {line}, {effective}: create {code} \"{name_vi}\" ({}) under {parent}", level.as_str())
            }
            Step::Link { line, effective, from, to, split } => {
                let how = if *split { "split off into" } else { "merged into" };
                write!(f, "line {line}, {effective}: {from} {how} {to}")
            }
            Step::Rename { line, effective, code, from, to, .. } => {
                write!(f, "line {line}, {effective}: rename {code} from \"{from}\" to \"{to}\"")
            }
            Step::Move { line, effective, code, from, to, level } => {
                let from = from.as_deref().unwrap_or("(no parent)");
                let level = level.map(|l| format!(", now a {}", l.as_str())).unwrap_or_default();
                write!(f, "line {line}, {effective}: move {code} from under {from} to under {to}{level}")
            }
            Step::End { line, effective, code, under } => match under {
                Some(u) => write!(f, "line {line}, {effective}: end {code}; its responses count under {u} from now on"),
                None => write!(f, "line {line}, {effective}: end {code}"),
            },
        }
    }
}

/// A unit as the plan has left it so far.
#[derive(Clone, Debug)]
struct Sim {
    parent: Option<String>,
    level: Option<Level>,
    name_vi: String,
    live: bool,
    valid_from: Option<NaiveDate>,
}

struct State {
    units: BTreeMap<String, Sim>,
}

impl State {
    fn live(&self, code: &str) -> bool {
        self.units.get(code).is_some_and(|u| u.live)
    }

    /// `code` and the codes above it, nearest first.
    fn ancestors(&self, code: &str) -> Vec<String> {
        let mut out = vec![code.to_string()];
        while let Some(p) = self.units.get(out.last().map_or("", |s| s.as_str())).and_then(|u| u.parent.clone()) {
            if out.contains(&p) || out.len() > self.units.len() {
                break;
            }
            out.push(p);
        }
        out
    }

    /// The nearest unit every one of `codes` lies within.
    fn common_unit(&self, codes: &[String]) -> Option<String> {
        let first = self.ancestors(codes.first()?);
        first.into_iter().find(|a| codes.iter().all(|c| self.ancestors(c).contains(a)))
    }
}

/// Checks the rows against the units as they are and as the rows leave them, in order.
pub fn plan(tree: &UnitTree, rows: &[PlanRow], today: NaiveDate) -> Result<Vec<Step>, Vec<String>> {
    let mut state = State {
        units: tree
            .all()
            .iter()
            .map(|u| {
                let sim = Sim {
                    parent: u.parent_id.and_then(|p| tree.get(p)).map(|p| p.code.clone()),
                    level: Level::parse(&u.level),
                    name_vi: u.name_vi.clone(),
                    live: u.valid_to.is_none(),
                    valid_from: u.valid_from,
                };
                (u.code.clone(), sim)
            })
            .collect(),
    };
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    // Splits end their unit once all its rows are read: (old, date) -> (line, successors).
    let mut splits: BTreeMap<(String, NaiveDate), (u64, Vec<String>)> = BTreeMap::new();
    // Units the plan ends, with the line that ends them.
    let mut ended: HashMap<String, u64> = HashMap::new();

    for row in rows {
        let mut problems = Vec::new();
        let line = row.line;
        if row.effective > today {
            problems
                .push(format!("effective: {} is in the future; apply the plan on or after that day", row.effective));
        }
        for code in &row.old {
            match state.units.get(code) {
                None => problems.push(format!("old: no unit {code}")),
                Some(u) if !u.live => problems.push(format!("old: {code} has already ended")),
                Some(u) if u.valid_from.is_some_and(|f| f >= row.effective) => problems
                    .push(format!("effective: {code} only exists from {}", u.valid_from.unwrap_or(row.effective))),
                _ => {}
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = row.old.iter().find(|c| !seen.insert(c.as_str())) {
            problems.push(format!("old: {dup} is listed twice"));
        }
        let one_old = |problems: &mut Vec<String>| {
            if row.old.len() != 1 {
                problems.push("old: give exactly one unit".to_string());
            }
        };
        // A successor: an existing live unit, or a new one described by the row.
        let successor = |state: &State, problems: &mut Vec<String>| -> Option<(String, Option<Step>)> {
            let Some(new) = row.new.clone() else {
                problems.push("new: give the successor's code".to_string());
                return None;
            };
            if row.old.contains(&new) {
                problems.push(format!("new: {new} is also in old"));
                return None;
            }
            match state.units.get(&new) {
                Some(u) if !u.live => {
                    problems.push(format!("new: {new} has ended"));
                    None
                }
                Some(_) => Some((new, None)),
                None => {
                    let (Some(name_vi), Some(parent), Some(level)) = (&row.name_vi, &row.parent, &row.level) else {
                        problems
                            .push(format!("new: {new} does not exist: give name_vi, parent and level to create it"));
                        return None;
                    };
                    if !is_valid_code(&new) {
                        problems.push(format!("new: {new} is not a valid code"));
                        return None;
                    }
                    if !state.live(parent) || row.old.contains(parent) {
                        problems.push(format!("parent: {parent} is not a unit that lives on"));
                        return None;
                    }
                    let parent_level = state.units.get(parent).and_then(|p| p.level);
                    let found = check_unit(&new, level, Some(parent_level), name_vi, row.name_en.as_deref());
                    if !found.is_empty() {
                        problems.extend(found.into_iter().map(|(f, m)| format!("{f}: {m}")));
                        return None;
                    }
                    let step = Step::Create {
                        line,
                        effective: row.effective,
                        code: new.clone(),
                        parent: parent.clone(),
                        level: Level::parse(level)?,
                        name_vi: name_vi.clone(),
                        name_en: row.name_en.clone(),
                    };
                    Some((new, Some(step)))
                }
            }
        };
        let mut made = Vec::new();
        match row.operation {
            Operation::Merge => {
                if row.old.is_empty() {
                    problems.push("old: give the units that merge".to_string());
                }
                if let Some((new, create)) = successor(&state, &mut problems)
                    && problems.is_empty()
                {
                    made.extend(create);
                    for old in &row.old {
                        let effective = row.effective;
                        made.push(Step::Link { line, effective, from: old.clone(), to: new.clone(), split: false });
                        made.push(Step::End { line, effective, code: old.clone(), under: Some(new.clone()) });
                    }
                }
            }
            Operation::Split => {
                one_old(&mut problems);
                if let Some((new, create)) = successor(&state, &mut problems)
                    && problems.is_empty()
                {
                    made.extend(create);
                    let old = row.old[0].clone();
                    let effective = row.effective;
                    made.push(Step::Link { line, effective, from: old.clone(), to: new.clone(), split: true });
                    splits.entry((old, effective)).or_insert((line, Vec::new())).1.push(new);
                }
            }
            Operation::Rename => {
                one_old(&mut problems);
                if row.new.as_ref().is_some_and(|n| row.old.first() != Some(n)) {
                    problems.push("new: a rename keeps the code (posters print it); leave new empty".to_string());
                }
                match &row.name_vi {
                    Some(name) if name.trim().is_empty() || name.chars().count() > 200 => {
                        problems.push("name_vi: must be 1-200 characters".to_string())
                    }
                    None => problems.push("name_vi: give the new name".to_string()),
                    _ => {}
                }
                if problems.is_empty() {
                    let code = row.old[0].clone();
                    let from = state.units[&code].name_vi.clone();
                    let to = row.name_vi.clone().unwrap_or_default();
                    let (effective, name_en) = (row.effective, row.name_en.clone());
                    made.push(Step::Rename { line, effective, code, from, to, name_en });
                }
            }
            Operation::Move => {
                one_old(&mut problems);
                match &row.parent {
                    None => problems.push("parent: give the new parent".to_string()),
                    Some(p) if !state.live(p) => problems.push(format!("parent: {p} is not a unit that lives on")),
                    Some(p) if row.old.first().is_some_and(|o| state.ancestors(p).contains(o)) => {
                        problems.push(format!("parent: {p} lies within the unit that moves"))
                    }
                    _ => {}
                }
                let level = row.level.as_deref().map(Level::parse);
                if level == Some(None) {
                    problems.push("level: not a level".to_string());
                }
                if problems.is_empty() {
                    let code = row.old[0].clone();
                    let parent = row.parent.clone().unwrap_or_default();
                    let own = level.flatten().or(state.units[&code].level);
                    if let (Some(l), Some(p)) = (own, state.units.get(&parent).and_then(|p| p.level))
                        && l.rank() <= p.rank()
                    {
                        problems.push(format!("level: a {} cannot sit under a {}", l.as_str(), p.as_str()));
                    } else {
                        let from = state.units[&code].parent.clone();
                        let effective = row.effective;
                        made.push(Step::Move { line, effective, code, from, to: parent, level: level.flatten() });
                    }
                }
            }
            Operation::End => {
                if row.old.is_empty() {
                    problems.push("old: give the units that end".to_string());
                }
                if problems.is_empty() {
                    for old in &row.old {
                        let under = state.units[old].parent.clone();
                        made.push(Step::End { line, effective: row.effective, code: old.clone(), under });
                    }
                }
            }
        }
        if !problems.is_empty() {
            errors.extend(problems.into_iter().map(|p| format!("line {line}: {p}")));
            continue;
        }
        for step in made {
            apply_to(&mut state, &step, &mut ended);
            steps.push(step);
        }
    }
    // Splits end their unit under the successors' nearest common unit.
    for ((old, effective), (line, successors)) in splits {
        if successors.len() < 2 {
            errors.push(format!("line {line}: a split of {old} needs at least two successors (one: use merge)"));
            continue;
        }
        let step = Step::End { line, effective, code: old, under: state.common_unit(&successors) };
        apply_to(&mut state, &step, &mut ended);
        steps.push(step);
    }
    // Nothing may live on under a unit that ended.
    let mut orphans: Vec<String> = state
        .units
        .iter()
        .filter(|(_, u)| u.live)
        .filter_map(|(code, u)| {
            let parent = u.parent.as_ref()?;
            let line = ended.get(parent)?;
            Some(format!("line {line}: {parent} ends but {code} under it does not: merge, move or end it too"))
        })
        .collect();
    orphans.sort();
    errors.extend(orphans);
    if errors.is_empty() { Ok(steps) } else { Err(errors) }
}

fn apply_to(state: &mut State, step: &Step, ended: &mut HashMap<String, u64>) {
    match step {
        Step::Create { code, parent, level, name_vi, effective, .. } => {
            let sim = Sim {
                parent: Some(parent.clone()),
                level: Some(*level),
                name_vi: name_vi.clone(),
                live: true,
                valid_from: Some(*effective),
            };
            state.units.insert(code.clone(), sim);
        }
        Step::Link { .. } => {}
        Step::Rename { code, to, .. } => {
            if let Some(u) = state.units.get_mut(code) {
                u.name_vi = to.clone();
            }
        }
        Step::Move { code, to, level, .. } => {
            if let Some(u) = state.units.get_mut(code) {
                u.parent = Some(to.clone());
                u.level = level.or(u.level);
            }
        }
        Step::End { line, code, under, .. } => {
            if let Some(u) = state.units.get_mut(code) {
                u.live = false;
                u.parent = under.clone();
            }
            ended.insert(code.clone(), *line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::unit;

    fn unit(id: i32, code: &str, parent: Option<i32>, level: &str) -> unit::Model {
        unit::Model {
            id,
            code: code.into(),
            parent_id: parent,
            level: level.into(),
            name_vi: format!("Tên {code}"),
            name_en: None,
            forms: None,
            requires_code: false,
            valid_from: None,
            valid_to: None,
        }
    }

    /// P → D (district) → A, B (communes); P → S (department).
    fn tree() -> UnitTree {
        UnitTree::new(vec![
            unit(1, "P", None, "province"),
            unit(2, "P.D", Some(1), "district"),
            unit(3, "P.D.A", Some(2), "commune"),
            unit(4, "P.D.B", Some(2), "commune"),
            unit(5, "P.S", Some(1), "department"),
        ])
    }

    fn rows(csv: &str) -> Vec<PlanRow> {
        parse_csv(&format!("effective,operation,old,new,name_vi,parent,level\n{csv}")).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
    }

    #[test]
    fn a_merge_creates_the_successor_ends_the_predecessors_under_it_and_ends_the_empty_district() {
        let plan = rows("2025-07-01,merge,P.D.A;P.D.B,P.AB,Phường Mới,P,ward\n2025-07-01,end,P.D,,,,\n");
        let steps = plan_ok(&plan);
        let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "line 2, 2025-07-01: create P.AB \"Phường Mới\" (ward) under P",
                "line 2, 2025-07-01: P.D.A merged into P.AB",
                "line 2, 2025-07-01: end P.D.A; its responses count under P.AB from now on",
                "line 2, 2025-07-01: P.D.B merged into P.AB",
                "line 2, 2025-07-01: end P.D.B; its responses count under P.AB from now on",
                "line 3, 2025-07-01: end P.D; its responses count under P from now on",
            ]
        );
    }

    fn plan_ok(rows: &[PlanRow]) -> Vec<Step> {
        plan(&tree(), rows, today()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn plan_err(rows: &[PlanRow]) -> Vec<String> {
        plan(&tree(), rows, today()).expect_err("refused")
    }

    #[test]
    fn a_unit_cannot_end_while_a_unit_under_it_lives_on() {
        let errors = plan_err(&rows("2025-07-01,end,P.D,,,,\n"));
        assert_eq!(
            errors,
            [
                "line 2: P.D ends but P.D.A under it does not: merge, move or end it too",
                "line 2: P.D ends but P.D.B under it does not: merge, move or end it too",
            ]
        );
    }

    #[test]
    fn a_split_ends_its_unit_under_the_successors_common_unit_and_needs_two() {
        let steps = plan_ok(&rows(
            "2025-07-01,split,P.D.A,P.X,Xã X,P,commune\n2025-07-01,split,P.D.A,P.Y,Xã Y,P,commune\n2025-07-01,merge,P.D.B,P.Y,,,\n2025-07-01,end,P.D,,,,\n",
        ));
        assert!(steps.contains(&Step::End {
            line: 2,
            effective: NaiveDate::from_ymd_opt(2025, 7, 1).unwrap(),
            code: "P.D.A".into(),
            under: Some("P".into())
        }));
        let errors = plan_err(&rows("2025-07-01,split,P.D.A,P.X,Xã X,P.D,commune\n"));
        assert_eq!(errors, ["line 2: a split of P.D.A needs at least two successors (one: use merge)"]);
    }

    #[test]
    fn every_bad_row_is_reported_by_line() {
        let errors = plan_err(&rows(
            "2027-01-01,rename,P.S,,Sở Mới,,\n2025-07-01,merge,P.NONE,P.AB,,,\n2025-07-01,move,P.D,,,P.D.A,\n2025-07-01,rename,P.S,P.T,Sở,,\n",
        ));
        assert_eq!(
            errors,
            [
                "line 2: effective: 2027-01-01 is in the future; apply the plan on or after that day",
                "line 3: old: no unit P.NONE",
                "line 3: new: P.AB does not exist: give name_vi, parent and level to create it",
                "line 4: parent: P.D.A lies within the unit that moves",
                "line 5: new: a rename keeps the code (posters print it); leave new empty",
            ]
        );
    }

    #[test]
    fn rows_see_what_earlier_rows_did() {
        // A unit merged away cannot be renamed after; a new unit can take a child at once.
        let errors = plan_err(&rows("2025-07-01,merge,P.D.A,P.D.B,,,\n2025-07-02,rename,P.D.A,,Tên,,\n"));
        assert_eq!(errors, ["line 3: old: P.D.A has already ended"]);
        let steps = plan_ok(&rows("2025-07-01,merge,P.S,P.N,Sở Nội vụ,P,department\n2025-07-01,move,P.D.A,,,P.N,\n"));
        assert_eq!(
            steps.last().map(ToString::to_string).unwrap(),
            "line 3, 2025-07-01: move P.D.A from under P.D to under P.N"
        );
    }
}
