//! The unit hierarchy (province -> department/district -> commune/office): codes, levels,
//! the in-memory tree used for access scopes, roll-ups and form inheritance, and the rules
//! every unit obeys whichever way it arrives (API, CSV import, demo).

pub mod admin;
pub mod import;
pub mod restructure;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Lang;
use crate::entities::{unit, unit_change};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Province,
    /// A centrally-run city (thành phố trực thuộc trung ương): a province-level unit.
    City,
    Department,
    /// Until 1 July 2025 (quận, huyện, thị xã, thành phố thuộc tỉnh): kept for history.
    District,
    Commune,
    Ward,
    SpecialZone,
    Office,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Province,
        Level::City,
        Level::Department,
        Level::District,
        Level::Commune,
        Level::Ward,
        Level::SpecialZone,
        Level::Office,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::Department => "department",
            Level::District => "district",
            Level::Commune => "commune",
            Level::Ward => "ward",
            Level::SpecialZone => "special_zone",
            Level::Office => "office",
        }
    }

    pub fn parse(value: &str) -> Option<Level> {
        Self::ALL.into_iter().find(|l| l.as_str() == value)
    }

    /// What the console and the exports show for the code.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Level::Province, Lang::Vi) => "Tỉnh",
            (Level::Province, Lang::En) => "Province",
            (Level::City, Lang::Vi) => "Thành phố trực thuộc trung ương",
            (Level::City, Lang::En) => "Centrally-run city",
            (Level::Department, Lang::Vi) => "Sở, ban, ngành",
            (Level::Department, Lang::En) => "Department",
            (Level::District, Lang::Vi) => "Huyện, thị xã, thành phố",
            (Level::District, Lang::En) => "District",
            // Any commune-level unit; since 2025 wards and the special zone have their own.
            (Level::Commune, Lang::Vi) => "Xã, phường, thị trấn",
            (Level::Commune, Lang::En) => "Commune",
            (Level::Ward, Lang::Vi) => "Phường",
            (Level::Ward, Lang::En) => "Ward",
            (Level::SpecialZone, Lang::Vi) => "Đặc khu",
            (Level::SpecialZone, Lang::En) => "Special zone",
            (Level::Office, Lang::Vi) => "Phòng, đơn vị trực thuộc",
            (Level::Office, Lang::En) => "Office",
        }
    }

    /// The label of a stored level code; the code itself if it is not one.
    pub fn label_of(code: &str, lang: Lang) -> &str {
        Level::parse(code).map_or(code, |l| l.label(lang))
    }

    /// Whether units of the two levels are ranked together: provinces with cities, and the
    /// commune tier (communes, wards, the special zone) as one.
    pub fn peers(self, other: Level) -> bool {
        let group = |l: Level| match l {
            Level::Province | Level::City => 0,
            Level::Department => 1,
            Level::District => 2,
            Level::Commune | Level::Ward | Level::SpecialZone => 3,
            Level::Office => 4,
        };
        group(self) == group(other)
    }

    /// Depth in the hierarchy: a child sits strictly below its parent.
    pub fn rank(self) -> u8 {
        match self {
            Level::Province | Level::City => 0,
            Level::Department | Level::District => 1,
            Level::Commune | Level::Ward | Level::SpecialZone | Level::Office => 2,
        }
    }
}

/// `QNM`, `QNM.TK.AM`: dot-separated segments of A-Z, 0-9, `_` and `-`, at most 64 long.
pub fn is_valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// What a unit must satisfy, as a list of `(field, message)`.
pub fn check_unit(
    code: &str,
    level: &str,
    parent_level: Option<Option<Level>>,
    name_vi: &str,
    name_en: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !is_valid_code(code) {
        problems.push((
            "code",
            "must be dot-separated segments of A-Z, 0-9, _ and - (at most 64 characters), like QNM.TK.AM".to_string(),
        ));
    }
    let level = Level::parse(level);
    if level.is_none() {
        problems.push((
            "level",
            "must be province, city, department, district, commune, ward, special_zone or office".to_string(),
        ));
    }
    match (level, parent_level) {
        (Some(l), Some(Some(_))) if l.rank() == 0 => {
            problems.push(("parent", "a province or city has no parent".to_string()))
        }
        (Some(l), None) if l.rank() != 0 => {
            problems.push(("parent", "only a province or city may have no parent".to_string()))
        }
        (Some(l), Some(Some(p))) if l.rank() <= p.rank() => {
            problems.push(("level", format!("a {} cannot sit under a {}", l.as_str(), p.as_str())))
        }
        _ => {}
    }
    if name_vi.trim().is_empty() || name_vi.chars().count() > 200 {
        problems.push(("name_vi", "must be 1-200 characters".to_string()));
    }
    if name_en.is_some_and(|n| n.chars().count() > 200) {
        problems.push(("name_en", "must be at most 200 characters".to_string()));
    }
    if [code, name_vi, name_en.unwrap_or("")].iter().any(|s| s.chars().any(char::is_control)) {
        problems.push(("name_vi", "must not contain control characters".to_string()));
    }
    problems
}

/// All units in memory, for subtree scopes and inheritance. Units number in the thousands
/// at most, so loading them is cheaper than recursive SQL that differs per database.
#[derive(Clone, Debug, Default)]
pub struct UnitTree {
    units: Vec<unit::Model>,
    by_id: HashMap<i32, usize>,
    by_code: HashMap<String, usize>,
    children: HashMap<i32, Vec<i32>>,
    /// Renames, moves and ends, by date: what `as_at` undoes.
    changes: Vec<unit_change::Model>,
}

impl UnitTree {
    /// The tree with its changes, so that `as_at` can show it as it was.
    pub fn with_changes(units: Vec<unit::Model>, mut changes: Vec<unit_change::Model>) -> UnitTree {
        changes.sort_by_key(|c| (c.effective, c.id));
        UnitTree { changes, ..UnitTree::new(units) }
    }

    pub fn new(mut units: Vec<unit::Model>) -> UnitTree {
        units.sort_by(|a, b| a.code.cmp(&b.code));
        let by_id = units.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
        let by_code = units.iter().enumerate().map(|(i, u)| (u.code.clone(), i)).collect();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for u in &units {
            if let Some(p) = u.parent_id {
                children.entry(p).or_default().push(u.id);
            }
        }
        UnitTree { units, by_id, by_code, children, changes: Vec::new() }
    }

    pub fn all(&self) -> &[unit::Model] {
        &self.units
    }

    pub fn get(&self, id: i32) -> Option<&unit::Model> {
        self.by_id.get(&id).map(|i| &self.units[*i])
    }

    pub fn by_code(&self, code: &str) -> Option<&unit::Model> {
        self.by_code.get(code).map(|i| &self.units[*i])
    }

    /// The units below `id` that still exist: what lists, tables and rankings show.
    pub fn children(&self, id: i32) -> Vec<i32> {
        self.children_all(id).iter().copied().filter(|c| self.is_live(*c)).collect()
    }

    /// Every unit directly below `id`, ended ones included: an ended unit sits under the unit
    /// its responses count for (see `restructure`), so sums over a subtree include it.
    pub fn children_all(&self, id: i32) -> &[i32] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The ended units directly below `id`: its predecessors (merged into it), or units
    /// that ended under it.
    pub fn predecessors(&self, id: i32) -> Vec<i32> {
        self.children_all(id).iter().copied().filter(|c| !self.is_live(*c)).collect()
    }

    /// The ended units whose responses and receipt codes now belong to `id`: its
    /// predecessors, theirs, and so on (an ended unit has nothing live under it).
    pub fn lineage(&self, id: i32) -> Vec<i32> {
        let mut out = self.predecessors(id);
        let mut i = 0;
        while i < out.len() {
            out.extend_from_slice(self.children_all(out[i]));
            i += 1;
        }
        out
    }

    /// Whether a unit still exists (has no end date).
    pub fn is_live(&self, id: i32) -> bool {
        self.get(id).is_some_and(|u| u.valid_to.is_none())
    }

    /// The unit and every unit below it, ended ones included (their responses count here).
    pub fn subtree(&self, id: i32) -> Vec<i32> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            out.extend_from_slice(self.children_all(out[i]));
            i += 1;
        }
        out
    }

    /// Days before which the tree looked different: the day before each change, creation
    /// or end. `as_at` any other day gives the same tree as one of these or as today.
    pub fn snapshot_days(&self) -> Vec<chrono::NaiveDate> {
        let mut days: Vec<chrono::NaiveDate> = self
            .units
            .iter()
            .flat_map(|u| [u.valid_from, u.valid_to])
            .flatten()
            .chain(self.changes.iter().map(|c| c.effective))
            .filter_map(|d| d.pred_opt())
            .collect();
        days.sort();
        days.dedup();
        days
    }

    /// The tree as it stood on `day`: the units that existed then, with the parents and
    /// names they had. Responses of units that had already ended count where they counted
    /// that day (their successor, as today); units created later are in no one's subtree.
    pub fn as_at(&self, day: chrono::NaiveDate) -> AsAt {
        let existed = |u: &unit::Model| u.valid_from.is_none_or(|f| f <= day) && u.valid_to.is_none_or(|t| t > day);
        let ended_before = |u: &unit::Model| u.valid_to.is_some_and(|t| t <= day);
        // The first move or end after the day undoes the parent; the first rename the name.
        let mut parent: HashMap<i32, Option<i32>> = HashMap::new();
        let mut name: HashMap<i32, String> = HashMap::new();
        let mut changes_of: HashMap<i32, Vec<&unit_change::Model>> = HashMap::new();
        for c in self.changes.iter().filter(|c| c.effective > day) {
            changes_of.entry(c.unit_id).or_default().push(c);
        }
        for u in self.units.iter().filter(|u| existed(u)) {
            let later = |kind: &[&str]| {
                changes_of.get(&u.id).and_then(|list| list.iter().find(|c| kind.contains(&c.change.as_str())))
            };
            let p = match later(&["moved", "ended"]) {
                Some(c) => c.old_value.as_deref().and_then(|code| self.by_code(code)).map(|p| p.id),
                None => u.parent_id,
            };
            parent.insert(u.id, p);
            name.insert(
                u.id,
                later(&["renamed"]).and_then(|c| c.old_value.clone()).unwrap_or_else(|| u.name_vi.clone()),
            );
        }
        // A parent that did not exist that day (inconsistent history) makes a root.
        let parent: HashMap<i32, Option<i32>> =
            parent.iter().map(|(id, p)| (*id, p.filter(|p| name.contains_key(p)))).collect();
        let mut members: HashMap<i32, Vec<i32>> = parent.keys().map(|id| (*id, vec![*id])).collect();
        for u in self.units.iter().filter(|u| ended_before(u)) {
            // Up through units that had ended too, to the one that held its responses.
            let mut at = u.parent_id;
            for _ in 0..=self.units.len() {
                match at.and_then(|id| self.get(id)) {
                    Some(p) if ended_before(p) => at = p.parent_id,
                    _ => break,
                }
            }
            if let Some(list) = at.and_then(|id| members.get_mut(&id)) {
                list.push(u.id);
            }
        }
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (id, p) in &parent {
            if let Some(p) = p {
                children.entry(*p).or_default().push(*id);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|id| self.get(*id).map(|u| u.code.clone()));
        }
        AsAt { day, parent, name, members, children }
    }

    /// True when `id` is `ancestor` or lies below it.
    pub fn is_within(&self, id: i32, ancestor: i32) -> bool {
        let mut current = Some(id);
        let mut steps = 0;
        while let Some(c) = current {
            if c == ancestor {
                return true;
            }
            current = self.get(c).and_then(|u| u.parent_id);
            steps += 1;
            if steps > self.units.len() {
                break;
            }
        }
        false
    }

    /// Forms a unit takes: its own list, else its nearest ancestor's, else every form.
    pub fn effective_forms(&self, id: i32, all_forms: &[String]) -> Vec<String> {
        let mut current = self.get(id);
        let mut steps = 0;
        while let Some(u) = current {
            if let Some(list) = u.forms.as_deref() {
                return parse_form_list(list);
            }
            current = u.parent_id.and_then(|p| self.get(p));
            steps += 1;
            if steps > self.units.len() {
                break;
            }
        }
        all_forms.to_vec()
    }
}

/// The tree as it stood on a day (see `UnitTree::as_at`).
#[derive(Clone, Debug)]
pub struct AsAt {
    pub day: chrono::NaiveDate,
    parent: HashMap<i32, Option<i32>>,
    name: HashMap<i32, String>,
    /// A unit and the units already ended into it that day.
    members: HashMap<i32, Vec<i32>>,
    children: HashMap<i32, Vec<i32>>,
}

impl AsAt {
    /// Whether the unit existed that day.
    pub fn existed(&self, id: i32) -> bool {
        self.parent.contains_key(&id)
    }

    pub fn parent(&self, id: i32) -> Option<i32> {
        self.parent.get(&id).copied().flatten()
    }

    pub fn name(&self, id: i32) -> Option<&str> {
        self.name.get(&id).map(String::as_str)
    }

    pub fn children(&self, id: i32) -> &[i32] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The unit and the units below it that day, each followed by those below it (the
    /// order of an indented list).
    pub fn units_below(&self, id: i32) -> Vec<i32> {
        if !self.existed(id) {
            return vec![];
        }
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(u) = stack.pop() {
            if out.len() > self.parent.len() {
                break; // a cycle in an inconsistent history
            }
            out.push(u);
            stack.extend(self.children(u).iter().rev());
        }
        out
    }

    /// Every unit whose responses made up the unit's figures that day: those below it and
    /// those already ended into any of them.
    pub fn subtree(&self, id: i32) -> Vec<i32> {
        self.units_below(id).iter().flat_map(|u| self.members.get(u).cloned().unwrap_or_default()).collect()
    }
}

pub fn parse_form_list(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: i32, code: &str, parent: Option<i32>, forms: Option<&str>) -> unit::Model {
        unit::Model {
            id,
            code: code.into(),
            parent_id: parent,
            level: "commune".into(),
            name_vi: code.into(),
            name_en: None,
            forms: forms.map(String::from),
            requires_code: false,
            valid_from: None,
            valid_to: None,
        }
    }

    #[test]
    fn subtree_scope_and_form_inheritance_follow_the_parents() {
        let tree = UnitTree::new(vec![
            unit(1, "P", None, None),
            unit(2, "P.A", Some(1), Some("f1")),
            unit(3, "P.A.X", Some(2), None),
            unit(4, "P.B", Some(1), None),
        ]);
        let mut sub = tree.subtree(2);
        sub.sort();
        assert_eq!(sub, vec![2, 3]);
        assert!(tree.is_within(3, 1));
        assert!(!tree.is_within(4, 2));
        let all = vec!["f1".to_string(), "f2".to_string()];
        assert_eq!(tree.effective_forms(3, &all), vec!["f1"]);
        assert_eq!(tree.effective_forms(4, &all), all);
    }

    #[test]
    fn codes_follow_the_dotted_pattern() {
        assert!(is_valid_code("QNM.TK.AM"));
        assert!(!is_valid_code("qnm"));
        assert!(!is_valid_code("QNM..TK"));
        assert!(!is_valid_code("QNM.TK\0"));
    }
}
