//! Tallies: the counts a cell of responses needs for every figure the engine publishes,
//! as one flat vector of integers whose layout follows the form. Merging two cells is
//! element-wise addition, so a unit's figure over any set of cells is a sum of tallies.
//!
//! Layout, for a form version:
//! `[responses | per answerable code: count per level | per group (pre-order): respondents
//! who answered at least one of its items | leaf-group moments: SS, SM, MM (L×L each)]`
//! where, for respondent r and leaf group g, S_rg is the number of satisfied answers and
//! m_rg the number of answers given in g; SS[g][h] = Σ_r S_rg·S_rh, SM[g][h] = Σ_r S_rg·m_rh,
//! MM[g][h] = Σ_r m_rg·m_rh. The moments are what the interval of a group or of the index
//! needs (see `engine`), and they cost 3·L² numbers instead of one per pair of items.

use std::collections::HashMap;

use crate::forms::{AnswerKind, Form, Group};

/// Where each figure lives in a tally of one form version.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Answerable codes in form order: (code, kind, level values, offset of the first count).
    pub codes: Vec<CodeSlot>,
    by_code: HashMap<String, usize>,
    /// Every group of the index tree in pre-order, with its slot.
    pub groups: Vec<String>,
    group_offset: usize,
    /// Leaf groups (those holding items), in tree order.
    pub leaves: Vec<String>,
    /// For each index item, the position of its leaf group in `leaves`.
    leaf_of_item: HashMap<String, usize>,
    /// For each group, the items it contains at any depth (for "answered at least one").
    items_under: Vec<Vec<String>>,
    /// For each leaf group, the positions of its items in `codes`.
    leaf_slots: Vec<Vec<usize>>,
    moments_offset: usize,
    pub len: usize,
}

#[derive(Clone, Debug)]
pub struct CodeSlot {
    pub code: String,
    pub kind: AnswerKind,
    pub levels: Vec<i16>,
    /// Levels that count as satisfied (index items) or as top levels (expectations).
    pub satisfied: Vec<i16>,
    pub offset: usize,
}

impl Layout {
    pub fn for_form(form: &Form) -> Layout {
        let mut codes = Vec::new();
        let mut offset = 1;
        for (code, kind, scale) in form.answerables() {
            let scale = form.scales.get(scale);
            let levels: Vec<i16> = scale.map(|s| s.levels.iter().map(|l| l.value).collect()).unwrap_or_default();
            let satisfied = scale.map(|s| s.satisfied.clone()).unwrap_or_default();
            let n = levels.len();
            codes.push(CodeSlot { code: code.to_string(), kind, levels, satisfied, offset });
            offset += n;
        }
        let by_code = codes.iter().enumerate().map(|(i, c)| (c.code.clone(), i)).collect();

        let mut groups = Vec::new();
        let mut items_under = Vec::new();
        let mut leaves = Vec::new();
        let mut leaf_of_item = HashMap::new();
        fn walk(
            gs: &[Group],
            groups: &mut Vec<String>,
            items_under: &mut Vec<Vec<String>>,
            leaves: &mut Vec<String>,
            leaf_of_item: &mut HashMap<String, usize>,
        ) {
            for g in gs {
                groups.push(g.code.clone());
                let slot = items_under.len();
                items_under.push(Vec::new());
                if !g.items.is_empty() {
                    for item in &g.items {
                        leaf_of_item.insert(item.code.clone(), leaves.len());
                    }
                    leaves.push(g.code.clone());
                    items_under[slot] = g.items.iter().map(|i| i.code.clone()).collect();
                }
                let before = items_under.len();
                walk(&g.groups, groups, items_under, leaves, leaf_of_item);
                let below: Vec<String> = items_under[before..].iter().flatten().cloned().collect();
                items_under[slot].extend(below);
            }
        }
        walk(&form.groups, &mut groups, &mut items_under, &mut leaves, &mut leaf_of_item);
        let group_offset = offset;
        let moments_offset = group_offset + groups.len();
        let len = moments_offset + 3 * leaves.len() * leaves.len();
        let mut leaf_slots = vec![Vec::new(); leaves.len()];
        for (i, slot) in codes.iter().enumerate() {
            if let Some(leaf) = leaf_of_item.get(&slot.code) {
                leaf_slots[*leaf].push(i);
            }
        }
        Layout {
            codes,
            by_code,
            groups,
            group_offset,
            leaves,
            leaf_of_item,
            items_under,
            leaf_slots,
            moments_offset,
            len,
        }
    }

    /// The items of a leaf group.
    pub fn leaf_slots(&self, leaf: usize) -> impl Iterator<Item = &CodeSlot> {
        self.leaf_slots.get(leaf).into_iter().flatten().map(|i| &self.codes[*i])
    }

    pub fn slot(&self, code: &str) -> Option<&CodeSlot> {
        self.by_code.get(code).map(|i| &self.codes[*i])
    }

    fn level_index(&self, code: &str, value: i16) -> Option<usize> {
        let slot = self.slot(code)?;
        slot.levels.iter().position(|l| *l == value).map(|p| slot.offset + p)
    }

    pub fn group_index(&self, code: &str) -> Option<usize> {
        self.groups.iter().position(|g| g == code)
    }

    pub fn leaf_index(&self, code: &str) -> Option<usize> {
        self.leaves.iter().position(|g| g == code)
    }

    /// Offsets of SS[g][h], SM[g][h], MM[g][h].
    pub fn moment_offsets(&self, g: usize, h: usize) -> [usize; 3] {
        let l = self.leaves.len();
        let base = self.moments_offset + g * l + h;
        [base, base + l * l, base + 2 * l * l]
    }

    /// The tally of one response: `answers` are (code, level) pairs as stored.
    pub fn tally_one(&self, answers: &[(String, i16)]) -> Tally {
        let mut data = vec![0u64; self.len];
        data[0] = 1;
        let l = self.leaves.len();
        let mut satisfied = vec![0u64; l];
        let mut answered = vec![0u64; l];
        let mut answered_codes = std::collections::HashSet::new();
        for (code, value) in answers {
            let Some(i) = self.level_index(code, *value) else {
                continue;
            };
            data[i] += 1;
            answered_codes.insert(code.as_str());
            if let (Some(leaf), Some(slot)) = (self.leaf_of_item.get(code), self.slot(code)) {
                answered[*leaf] += 1;
                if slot.satisfied.contains(value) {
                    satisfied[*leaf] += 1;
                }
            }
        }
        for (gi, items) in self.items_under.iter().enumerate() {
            if items.iter().any(|c| answered_codes.contains(c.as_str())) {
                data[self.group_offset + gi] = 1;
            }
        }
        for g in 0..l {
            for h in 0..l {
                let [ss, sm, mm] = self.moment_offsets(g, h);
                data[ss] = satisfied[g] * satisfied[h];
                data[sm] = satisfied[g] * answered[h];
                data[mm] = answered[g] * answered[h];
            }
        }
        Tally { data }
    }
}

/// Counts of a cell, laid out by a `Layout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub data: Vec<u64>,
}

impl Tally {
    pub fn empty(layout: &Layout) -> Tally {
        Tally { data: vec![0; layout.len] }
    }

    pub fn responses(&self) -> u64 {
        self.data.first().copied().unwrap_or(0)
    }

    pub fn add(&mut self, other: &Tally) {
        if self.data.len() < other.data.len() {
            self.data.resize(other.data.len(), 0);
        }
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
    }

    /// Counts per level of `code`, in the scale's order.
    pub fn counts<'a>(&'a self, layout: &Layout, code: &str) -> &'a [u64] {
        match layout.slot(code) {
            Some(s) => &self.data[s.offset..s.offset + s.levels.len()],
            None => &[],
        }
    }

    pub fn group_respondents(&self, layout: &Layout, group: &str) -> u64 {
        layout.group_index(group).map_or(0, |i| self.data[layout.group_offset + i])
    }

    pub fn moments(&self, layout: &Layout, g: usize, h: usize) -> [u64; 3] {
        let [a, b, c] = layout.moment_offsets(g, h);
        [self.data[a], self.data[b], self.data[c]]
    }

    /// Re-expresses a tally of another version of the form in `to`'s layout, matching items
    /// and groups by code (what is not in both is dropped).
    pub fn remap(&self, from: &Layout, to: &Layout) -> Tally {
        let mut out = Tally::empty(to);
        out.data[0] = self.responses();
        for slot in &to.codes {
            let Some(src) = from.slot(&slot.code) else {
                continue;
            };
            for (i, level) in slot.levels.iter().enumerate() {
                if let Some(j) = src.levels.iter().position(|l| l == level) {
                    out.data[slot.offset + i] = self.data[src.offset + j];
                }
            }
        }
        for (i, g) in to.groups.iter().enumerate() {
            if let Some(j) = from.group_index(g) {
                out.data[to.group_offset + i] = self.data[from.group_offset + j];
            }
        }
        for (g, gc) in to.leaves.iter().enumerate() {
            for (h, hc) in to.leaves.iter().enumerate() {
                if let (Some(fg), Some(fh)) = (from.leaf_index(gc), from.leaf_index(hc)) {
                    let src = from.moment_offsets(fg, fh);
                    let dst = to.moment_offsets(g, h);
                    for k in 0..3 {
                        out.data[dst[k]] = self.data[src[k]];
                    }
                }
            }
        }
        out
    }

    /// Compact storage: LEB128 varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 8);
        for v in &self.data {
            let mut v = *v;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Tally> {
        let mut data = Vec::with_capacity(bytes.len());
        let mut value = 0u64;
        let mut shift = 0;
        for b in bytes {
            if shift >= 64 {
                return None;
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                data.push(value);
                value = 0;
                shift = 0;
            } else {
                shift += 7;
            }
        }
        (shift == 0).then_some(Tally { data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::loader::{BUILTIN, parse};

    fn form() -> Form {
        parse(BUILTIN[0].0, BUILTIN[0].1).map(|f| f.form).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_response_counts_levels_groups_and_moments() {
        let form = form();
        let layout = Layout::for_form(&form);
        let t = layout.tally_one(&[("A1".into(), 5), ("A2".into(), 2), ("B1".into(), 4)]);
        assert_eq!(t.responses(), 1);
        assert_eq!(t.counts(&layout, "A1"), &[0, 0, 0, 0, 1]);
        assert_eq!(t.counts(&layout, "A2"), &[0, 1, 0, 0, 0]);
        assert_eq!(t.group_respondents(&layout, "A"), 1);
        assert_eq!(t.group_respondents(&layout, "C"), 0);
        let (a, b) = (layout.leaf_index("A").unwrap_or(9), layout.leaf_index("B").unwrap_or(9));
        // A: 1 satisfied of 2 answered; B: 1 of 1.
        assert_eq!(t.moments(&layout, a, a), [1, 2, 4]);
        assert_eq!(t.moments(&layout, a, b), [1, 1, 2]);
        assert_eq!(t.moments(&layout, b, a), [1, 2, 2]);
    }

    #[test]
    fn encoding_round_trips_and_merging_adds() {
        let form = form();
        let layout = Layout::for_form(&form);
        let mut t = layout.tally_one(&[("A1".into(), 5), ("E4".into(), 1)]);
        t.add(&layout.tally_one(&[("A1".into(), 4)]));
        t.data[3] = 300_000;
        assert_eq!(Tally::decode(&t.encode()), Some(t.clone()));
        assert_eq!(t.responses(), 2);
        assert_eq!(Tally::decode(&[0x80]), None, "truncated varint");
    }
}
