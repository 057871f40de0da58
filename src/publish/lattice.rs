//! The publication lattice of one province, one calendar year and one breakdown dimension,
//! and the decision of which of its cells may be shown.
//!
//! Cells: a node of the unit tree (a unit's subtree, or a parent's own responses, or a group
//! of units that was a subtree in the tree as it stood before a restructuring) × a time
//! (the year, its quarters, its months) × a value of the dimension (or all of them).
//! Relations: subtree = own + children's subtrees; year = Σ quarters; quarter = Σ months;
//! all = Σ values; a former subtree crosses today's tree (it is the audit's to judge).
//! Atoms, the finest cells: own unit × month × value.
//!
//! The decision is a property of the cell, the same whatever query asks for it:
//! 1. primary: a cell with 0 < n < k is hidden;
//! 2. remainder rule in every relation, repeated until nothing changes: where the whole is
//!    known, the hidden parts hold 0 or at least k responses and are never a single part
//!    (a single hidden part is the whole minus the shown ones); where the whole is hidden,
//!    some part with responses is hidden too (else the whole is the sum of shown parts);
//!    the next-smallest shown part is hidden until that holds;
//! 3. audit: exact linear elimination of what the shown cells tell about the atoms of the
//!    hidden ones; any hidden cell, or any group a reader could name (a node × a range of
//!    months × a value) with fewer than k responses, that is determined makes the smallest
//!    shown cell overlapping it hidden too, and 2–3 run again. Relations that cross (units ×
//!    months × values) are where the remainder rule alone fails; the audit is the judge.

/// Times of a year: 0 = the year, 1..=4 quarters, 5..=16 months.
pub const TIMES: usize = 17;

pub fn month_time(month: u32) -> usize {
    4 + month as usize
}

pub fn quarter_time(quarter: u32) -> usize {
    quarter as usize
}

/// The months (1..=12) a time covers.
fn months_of(t: usize) -> std::ops::RangeInclusive<u32> {
    match t {
        0 => 1..=12,
        1..=4 => (3 * t as u32 - 2)..=(3 * t as u32),
        _ => (t as u32 - 4)..=(t as u32 - 4),
    }
}

/// Why a cell is withheld.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Fewer than k responses.
    UnderK,
    /// Shown, it would let a reader work out another, smaller group.
    ProtectsAnother,
}

/// A node of the unit tree: a unit's whole subtree, or only a parent's own responses, or a
/// former subtree (`Input::groups`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Subtree(usize),
    Own(usize),
    Group(usize),
}

/// The tree (units by index, parents before children) and the atoms' counts.
pub struct Input {
    pub parent: Vec<Option<usize>>,
    /// Values of the dimension; 0 for "all only".
    pub values: usize,
    /// Responses per atom, at `atom(unit, month, value)`.
    pub atoms: Vec<u64>,
    pub k: u64,
    /// Sets of units (sorted) that were subtrees of the tree as it stood on some day and are
    /// no node of today's: a reader of the tree "as at" that day sees their sums.
    pub groups: Vec<Vec<usize>>,
}

impl Input {
    pub fn new(parent: Vec<Option<usize>>, values: usize, k: u64) -> Input {
        let atoms = vec![0; parent.len() * 12 * values.max(1)];
        Input { parent, values, atoms, k, groups: Vec::new() }
    }

    /// Index of an atom: `value` counts from 0 (ignored when the dimension is "all only").
    pub fn atom(&self, unit: usize, month: u32, value: usize) -> usize {
        (unit * 12 + (month as usize - 1)) * self.values.max(1) + value
    }
}

/// The decision for every cell of one lattice.
pub struct Pattern {
    units: usize,
    values: usize,
    children: Vec<Vec<usize>>,
    groups: Vec<Vec<usize>>,
    pub k: u64,
    sizes: Vec<u64>,
    hidden: Vec<Option<Reason>>,
    /// Cells this stage may not hide (the "all" cells, decided once for every dimension).
    fixed: Vec<bool>,
    atoms: Vec<u64>,
    /// Groups the audit found determined and could not protect (should stay empty).
    pub unresolved: usize,
}

impl Pattern {
    fn vv(&self) -> usize {
        self.values + 1
    }

    fn cell(&self, node: Node, t: usize, v: usize) -> usize {
        let n = match node {
            Node::Subtree(u) => 2 * u,
            Node::Own(u) if self.children[u].is_empty() => 2 * u,
            Node::Own(u) => 2 * u + 1,
            Node::Group(g) => 2 * self.units + g,
        };
        (n * TIMES + t) * self.vv() + v
    }

    fn valid(&self, cell: usize) -> bool {
        // Former subtrees are decided apart, after the rest (`decide_former`).
        let n = cell / self.vv() / TIMES;
        n < 2 * self.units && (n.is_multiple_of(2) || !self.children[n / 2].is_empty())
    }

    /// The decision for a cell; `value` 0 is "all", 1.. the dimension's values.
    pub fn decide(&self, node: Node, t: usize, value: usize) -> Option<Reason> {
        self.hidden[self.cell(node, t, value)]
    }

    pub fn size(&self, node: Node, t: usize, value: usize) -> u64 {
        self.sizes[self.cell(node, t, value)]
    }

    fn subtree(&self, u: usize) -> Vec<usize> {
        let mut out = vec![u];
        let mut i = 0;
        while i < out.len() {
            out.extend(self.children[out[i]].iter().copied());
            i += 1;
        }
        out
    }

    fn units_of(&self, cell: usize) -> Vec<usize> {
        let n = cell / self.vv() / TIMES;
        if n >= 2 * self.units {
            self.groups[n - 2 * self.units].clone()
        } else if n % 2 == 1 {
            vec![n / 2]
        } else {
            self.subtree(n / 2)
        }
    }

    /// The atoms of some units over some months, of one value (0 = all values).
    fn atoms_at(&self, units: &[usize], months: std::ops::RangeInclusive<u32>, v: usize) -> Vec<usize> {
        let va = self.values.max(1);
        let mut out = Vec::new();
        for u in units {
            for m in months.clone() {
                let base = (u * 12 + (m as usize - 1)) * va;
                if v == 0 {
                    out.extend(base..base + va);
                } else {
                    out.push(base + v - 1);
                }
            }
        }
        out
    }

    /// The atoms a cell adds up.
    fn atoms_of(&self, cell: usize) -> Vec<usize> {
        let t = (cell / self.vv()) % TIMES;
        self.atoms_at(&self.units_of(cell), months_of(t), cell % self.vv())
    }

    /// Every node: each unit's subtree, and the own responses of each unit with children.
    fn nodes(&self) -> Vec<Node> {
        let mut out = Vec::new();
        for u in 0..self.units {
            out.push(Node::Subtree(u));
            if !self.children[u].is_empty() {
                out.push(Node::Own(u));
            }
        }
        out
    }

    fn relations(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out = Vec::new();
        for u in 0..self.units {
            for t in 0..TIMES {
                for v in 0..self.vv() {
                    if !self.children[u].is_empty() {
                        let mut parts = vec![self.cell(Node::Own(u), t, v)];
                        parts.extend(self.children[u].iter().map(|c| self.cell(Node::Subtree(*c), t, v)));
                        out.push((self.cell(Node::Subtree(u), t, v), parts));
                    }
                }
            }
        }
        for node_of in self.nodes() {
            for v in 0..self.vv() {
                out.push((self.cell(node_of, 0, v), (1..=4).map(|q| self.cell(node_of, q, v)).collect()));
                for q in 1..=4u32 {
                    let parts = months_of(q as usize).map(|m| self.cell(node_of, month_time(m), v)).collect();
                    out.push((self.cell(node_of, quarter_time(q), v), parts));
                }
            }
            if self.values > 0 {
                for t in 0..TIMES {
                    let parts = (1..=self.values).map(|v| self.cell(node_of, t, v)).collect();
                    out.push((self.cell(node_of, t, 0), parts));
                }
            }
        }
        out
    }

    /// Hides the smallest shown part with responses that this stage may hide.
    fn hide_smallest(&mut self, parts: &[usize]) -> bool {
        let pick = parts
            .iter()
            .copied()
            .filter(|p| self.hidden[*p].is_none() && self.sizes[*p] > 0 && !self.fixed[*p])
            .min_by_key(|p| (self.sizes[*p], *p));
        match pick {
            Some(p) => {
                self.hidden[p] = Some(Reason::ProtectsAnother);
                true
            }
            None => false,
        }
    }

    fn remainder_rule(&mut self, relations: &[(usize, Vec<usize>)]) {
        loop {
            let mut changed = false;
            for (whole, parts) in relations {
                let hidden: Vec<usize> =
                    parts.iter().copied().filter(|p| self.hidden[*p].is_some() && self.sizes[*p] > 0).collect();
                let sum: u64 = hidden.iter().map(|p| self.sizes[*p]).sum();
                if self.hidden[*whole].is_none() {
                    if hidden.len() == 1 || (sum > 0 && sum < self.k) {
                        if self.hide_smallest(parts) {
                            changed = true;
                        } else if !self.fixed[*whole] && self.sizes[*whole] > 0 {
                            self.hidden[*whole] = Some(Reason::ProtectsAnother);
                            changed = true;
                        }
                    }
                } else if hidden.is_empty() && self.sizes[*whole] > 0 && self.hide_smallest(parts) {
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// What the shown cells tell about the atoms of hidden ones: each such atom's variable
    /// (`usize::MAX` for an atom in no hidden cell, taken as known) and the span of the
    /// shown cells' equations over those variables. None when nothing is hidden.
    fn shown_span(&self, relations: &[(usize, Vec<usize>)]) -> Option<(Vec<usize>, Basis)> {
        let cells = self.sizes.len();
        let mut var = vec![usize::MAX; self.atoms.len()];
        let mut vars = 0;
        for c in (0..cells).filter(|c| self.valid(*c) && self.hidden[*c].is_some()) {
            for a in self.atoms_of(c) {
                if var[a] == usize::MAX {
                    var[a] = vars;
                    vars += 1;
                }
            }
        }
        if vars == 0 {
            return None;
        }
        let mut basis = Basis::new(vars);
        // A shown whole whose parts are all shown adds nothing to what the parts tell: its
        // equation is their sum. Leaving it out keeps the elimination small (parts are
        // finer cells, so every left-out cell is a sum of cells kept).
        let mut implied = vec![false; cells];
        for (whole, parts) in relations {
            if self.hidden[*whole].is_none() && parts.iter().all(|p| self.hidden[*p].is_none()) {
                implied[*whole] = true;
            }
        }
        // Finest rows first: a coarse row then reduces through their pivots to little, where
        // inserting the province's rows first would fill every later row.
        let mut rows: Vec<Vec<usize>> = (0..cells)
            .filter(|c| self.valid(*c) && self.hidden[*c].is_none() && !implied[*c])
            .map(|c| self.atoms_of(c).into_iter().filter(|a| var[*a] != usize::MAX).map(|a| var[a]).collect())
            .filter(|row: &Vec<usize>| !row.is_empty())
            .collect();
        rows.sort_by_key(Vec::len);
        for row in &rows {
            basis.insert(row);
        }
        Some((var, basis))
    }

    /// Groups (as atom lists) that the shown cells determine and must not.
    fn audit(&self, relations: &[(usize, Vec<usize>)]) -> Vec<Vec<usize>> {
        let Some((var, mut basis)) = self.shown_span(relations) else {
            return vec![];
        };
        let determined = |atoms: &[usize], basis: &mut Basis| {
            let row: Vec<usize> = atoms.iter().filter(|a| var[**a] != usize::MAX).map(|a| var[*a]).collect();
            !row.is_empty() && basis.determines(&row)
        };
        self.protected().into_iter().filter(|atoms| determined(atoms, &mut basis)).collect()
    }

    /// What no reader may work out (as atom lists): every hidden cell with responses, and
    /// every group a reader could name with fewer than k responses: a node × a run of months
    /// × a value (or all); a former subtree is named by the tree "as at" a day before a
    /// restructuring.
    fn protected(&self) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = (0..self.sizes.len())
            .filter(|c| self.valid(*c) && self.hidden[*c].is_some() && self.sizes[*c] > 0)
            .map(|c| self.atoms_of(c))
            .collect();
        for node in self.nodes().into_iter().chain((0..self.groups.len()).map(Node::Group)) {
            let units = match node {
                Node::Own(u) => vec![u],
                Node::Subtree(u) => self.subtree(u),
                Node::Group(g) => self.groups[g].clone(),
            };
            for v in 0..self.vv() {
                let per_month: Vec<Vec<usize>> = (1..=12).map(|m| self.atoms_at(&units, m..=m, v)).collect();
                let counts: Vec<u64> = per_month.iter().map(|a| a.iter().map(|x| self.atoms[*x]).sum()).collect();
                for from in 0..12 {
                    let mut n = 0;
                    let mut atoms = Vec::new();
                    for to in from..12 {
                        n += counts[to];
                        atoms.extend(per_month[to].iter().copied());
                        if n >= self.k {
                            break;
                        }
                        if n > 0 {
                            out.push(atoms.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// Hides the smallest shown cell with responses overlapping `atoms`, else an empty one
    /// (a shown zero tells as much as a count), else one of another value at the same units
    /// and months (the "all" cell minus the other values pins a value down), else any other;
    /// the cell hidden, None when none may be.
    fn widen(&mut self, atoms: &[usize]) -> Option<usize> {
        let va = self.values.max(1);
        let set: std::collections::HashSet<usize> = atoms.iter().copied().collect();
        let places: std::collections::HashSet<usize> = atoms.iter().map(|a| a / va).collect();
        let pick = (0..self.sizes.len())
            .filter(|c| self.valid(*c) && self.hidden[*c].is_none() && !self.fixed[*c])
            .map(|c| {
                let cell = self.atoms_of(c);
                // Last, any other cell: what pins the group down may sit elsewhere in the tree.
                let tier = if cell.iter().any(|a| set.contains(a)) {
                    0
                } else if cell.iter().any(|a| places.contains(&(a / va))) {
                    1
                } else {
                    2
                };
                (tier, self.sizes[c] == 0, self.sizes[c], c)
            })
            .min()
            .map(|(_, _, _, c)| c);
        if let Some(c) = pick {
            self.hidden[c] = Some(Reason::ProtectsAnother);
        }
        pick
    }

    /// Decides every cell. `all_hidden`, for a dimension's lattice, is the decision already
    /// taken for the "all" cells (by the lattice without a dimension): those are kept as
    /// they are, so that every dimension agrees on them.
    pub fn decide_all(input: Input, all_hidden: Option<&Pattern>) -> Pattern {
        let units = input.parent.len();
        let mut children = vec![Vec::new(); units];
        for (u, p) in input.parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(u);
            }
        }
        let vv = input.values + 1;
        let cells = (2 * units + input.groups.len()) * TIMES * vv;
        let mut pattern = Pattern {
            units,
            values: input.values,
            children,
            groups: input.groups,
            k: input.k,
            sizes: vec![0; cells],
            hidden: vec![None; cells],
            fixed: vec![false; cells],
            atoms: input.atoms,
            unresolved: 0,
        };
        for c in 0..cells {
            if pattern.valid(c) {
                pattern.sizes[c] = pattern.atoms_of(c).iter().map(|a| pattern.atoms[*a]).sum();
            }
        }
        // Withheld until `decide_former` decides them.
        for c in 2 * units * TIMES * vv..cells {
            pattern.hidden[c] = Some(Reason::ProtectsAnother);
        }
        for c in 0..cells {
            if !pattern.valid(c) {
                continue;
            }
            let n = pattern.sizes[c];
            if n > 0 && n < pattern.k {
                pattern.hidden[c] = Some(Reason::UnderK);
            }
        }
        if let Some(all) = all_hidden.filter(|_| input.values > 0) {
            for node in pattern.nodes() {
                for t in 0..TIMES {
                    let c = pattern.cell(node, t, 0);
                    pattern.hidden[c] = all.decide(node, t, 0);
                    pattern.fixed[c] = true;
                }
            }
        }
        let relations = pattern.relations();
        for _ in 0..cells {
            pattern.remainder_rule(&relations);
            let found = pattern.audit(&relations);
            if found.is_empty() {
                break;
            }
            // One cell for each group found, but not for a group that overlaps one already
            // widened in this round (that cell may have protected both): the audit is the
            // costly part, and one cell per audit took minutes on a 300-unit province.
            // Groups, not the hidden cells, mark what is taken: a hidden cell can be a
            // province's, overlapping everything, and then only one group a round was fixed.
            let mut touched = std::collections::HashSet::new();
            let mut widened = false;
            for atoms in &found {
                if atoms.iter().any(|a| touched.contains(a)) {
                    continue;
                }
                if pattern.widen(atoms).is_some() {
                    touched.extend(atoms.iter().copied());
                    widened = true;
                }
            }
            if !widened {
                pattern.unresolved = found.len();
                break;
            }
        }
        pattern
    }

    /// What deciding former subtrees needs from this lattice once its own cells are decided.
    fn former(&mut self) -> Former {
        for g in 0..self.groups.len() {
            for t in 0..TIMES {
                for v in 0..self.vv() {
                    let c = self.cell(Node::Group(g), t, v);
                    self.sizes[c] = self.atoms_of(c).iter().map(|a| self.atoms[*a]).sum();
                }
            }
        }
        let relations = self.relations();
        let (var, mut basis) =
            self.shown_span(&relations).unwrap_or_else(|| (vec![usize::MAX; self.atoms.len()], Basis::new(0)));
        let mut state = Former { var, basis: Basis::new(0), secrets: Vec::new() };
        state.secrets = self
            .protected()
            .iter()
            .map(|atoms| basis.remainder(&state.project(atoms)))
            .filter(|r| !r.is_empty())
            .collect();
        state.basis = basis;
        state
    }

    /// The equation a former subtree's cell adds to what is shown (normalised), or None when
    /// what is shown determines it already.
    fn former_row(&self, state: &mut Former, g: usize, t: usize, v: usize) -> Option<Vec<(usize, u64)>> {
        let atoms = self.atoms_of(self.cell(Node::Group(g), t, v));
        let rest = state.basis.remainder(&state.project(&atoms));
        let inv = inverse(rest.first()?.1);
        Some(rest.iter().map(|(col, x)| (*col, mul(*x, inv))).collect())
    }

    fn set_former(&mut self, g: usize, t: usize, v: usize, decision: Option<Reason>) {
        let c = self.cell(Node::Group(g), t, v);
        self.hidden[c] = decision;
    }

    /// Per unit (lattice index): its cells with responses (subtree and own, every time and
    /// value), those hidden under k, and those hidden to protect another group.
    pub fn hidden_by_unit(&self) -> Vec<[usize; 3]> {
        let mut out = vec![[0; 3]; self.units];
        let unit_cells = 2 * self.units * TIMES * self.vv();
        for c in (0..unit_cells).filter(|c| self.valid(*c) && self.sizes[*c] > 0) {
            let u = c / self.vv() / TIMES / 2;
            out[u][0] += 1;
            match self.hidden[c] {
                Some(Reason::UnderK) => out[u][1] += 1,
                Some(Reason::ProtectsAnother) => out[u][2] += 1,
                None => {}
            }
        }
        out
    }
}

/// One lattice's shown equations and the remainders of what must stay unknown, while the
/// cells of former subtrees are decided one by one.
struct Former {
    var: Vec<usize>,
    basis: Basis,
    secrets: Vec<Vec<(usize, u64)>>,
}

impl Former {
    fn project(&self, atoms: &[usize]) -> Vec<usize> {
        atoms.iter().filter(|a| self.var[**a] != usize::MAX).map(|a| self.var[*a]).collect()
    }

    /// A secret becomes known exactly when its remainder is a multiple of the new row.
    fn tells(&self, row: &[(usize, u64)]) -> bool {
        self.secrets
            .iter()
            .any(|s| s.len() == row.len() && s.iter().zip(row).all(|((a, x), (b, y))| a == b && *x == mul(s[0].1, *y)))
    }

    fn accept(&mut self, row: Vec<(usize, u64)>) {
        let pivot = row[0].0;
        for s in self.secrets.iter_mut() {
            if let Ok(i) = s.binary_search_by_key(&pivot, |(col, _)| *col) {
                let f = s[i].1;
                *s = subtract(s, f, &row);
            }
        }
        self.secrets.retain(|s| !s.is_empty());
        self.basis.rows[pivot] = Some(row);
    }
}

/// Decides the cells of former subtrees (the tree "as at" a day before a restructuring) once
/// every lattice of the year has decided its own cells: `none`, without a dimension, and
/// `dims`, one per dimension. Cell by cell, years first, a cell is shown when it is empty or
/// has k responses and, added to what is shown, lets no reader work out anything protected
/// (exact elimination again, kept incremental); its "all" cell must tell nothing in any of
/// the lattices, since each reads it. Today's cells never change for it: an "as at" reader
/// costs today's readers nothing.
pub fn decide_former(none: &mut Pattern, dims: &mut [Pattern]) {
    if none.groups.is_empty() {
        return;
    }
    let mut states: Vec<Former> = std::iter::once(none.former()).chain(dims.iter_mut().map(Pattern::former)).collect();
    let k = none.k;
    for t in 0..TIMES {
        for g in 0..none.groups.len() {
            let n = none.sizes[none.cell(Node::Group(g), t, 0)];
            let decision = if n > 0 && n < k {
                Some(Reason::UnderK)
            } else {
                let mut rows = vec![none.former_row(&mut states[0], g, t, 0)];
                for (i, p) in dims.iter().enumerate() {
                    rows.push(p.former_row(&mut states[i + 1], g, t, 0));
                }
                if rows.iter().zip(&states).any(|(r, s)| r.as_ref().is_some_and(|r| s.tells(r))) {
                    Some(Reason::ProtectsAnother)
                } else {
                    for (row, state) in rows.into_iter().zip(states.iter_mut()) {
                        if let Some(row) = row {
                            state.accept(row);
                        }
                    }
                    None
                }
            };
            none.set_former(g, t, 0, decision);
            for p in dims.iter_mut() {
                p.set_former(g, t, 0, decision);
            }
        }
    }
    for (p, state) in dims.iter_mut().zip(states.iter_mut().skip(1)) {
        for t in 0..TIMES {
            for g in 0..p.groups.len() {
                for v in 1..p.vv() {
                    let n = p.sizes[p.cell(Node::Group(g), t, v)];
                    let decision = if n > 0 && n < k {
                        Some(Reason::UnderK)
                    } else {
                        match p.former_row(state, g, t, v) {
                            Some(row) if state.tells(&row) => Some(Reason::ProtectsAnother),
                            Some(row) => {
                                state.accept(row);
                                None
                            }
                            None => None,
                        }
                    };
                    p.set_former(g, t, v, decision);
                }
            }
        }
    }
}

/// A row space over GF(p), p = 2^61 − 1, kept in echelon form with sparse rows. Rows here
/// are 0/1 sums: a vector in their span over the rationals is in it over GF(p), so a group
/// the rationals determine is found; the reverse error (found only modulo p) would hide
/// more, never less.
struct Basis {
    /// pivot column → row (sorted columns, values), 1 at the pivot.
    rows: Vec<Option<Vec<(usize, u64)>>>,
    scratch: Vec<u64>,
}

const P: u64 = (1 << 61) - 1;

fn mul(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64
}

fn inverse(a: u64) -> u64 {
    let (mut base, mut exp, mut acc) = (a, P - 2, 1u64);
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    acc
}

impl Basis {
    fn new(columns: usize) -> Basis {
        Basis { rows: vec![None; columns], scratch: vec![0; columns] }
    }

    /// Reduces the 0/1 vector with ones at `ones`; leaves the remainder in `scratch` and
    /// returns its non-zero columns.
    fn reduce(&mut self, ones: &[usize]) -> Vec<usize> {
        let mut touched: std::collections::BTreeSet<usize> = ones.iter().copied().collect();
        for c in ones {
            self.scratch[*c] = 1;
        }
        let mut left = Vec::new();
        while let Some(c) = touched.pop_first() {
            let f = self.scratch[c];
            if f == 0 {
                continue;
            }
            match &self.rows[c] {
                Some(row) => {
                    for (col, val) in row {
                        let s = &mut self.scratch[*col];
                        *s = (*s + P - mul(f, *val)) % P;
                        if *col != c {
                            touched.insert(*col);
                        }
                    }
                }
                None => left.push(c),
            }
        }
        left
    }

    fn insert(&mut self, ones: &[usize]) {
        let left = self.reduce(ones);
        if let Some(pivot) = left.iter().copied().find(|c| self.scratch[*c] != 0) {
            let inv = inverse(self.scratch[pivot]);
            let row: Vec<(usize, u64)> =
                left.iter().filter(|c| self.scratch[**c] != 0).map(|c| (*c, mul(self.scratch[*c], inv))).collect();
            self.rows[pivot] = Some(row);
        }
        for c in left {
            self.scratch[c] = 0;
        }
    }

    /// The remainder of a 0/1 vector once reduced: sorted (column, value), without zeros;
    /// its columns are pivots of no row.
    fn remainder(&mut self, ones: &[usize]) -> Vec<(usize, u64)> {
        let left = self.reduce(ones);
        let mut out: Vec<(usize, u64)> =
            left.iter().filter(|c| self.scratch[**c] != 0).map(|c| (*c, self.scratch[*c])).collect();
        for c in left {
            self.scratch[c] = 0;
        }
        out.sort_unstable();
        out
    }

    fn determines(&mut self, ones: &[usize]) -> bool {
        let left = self.reduce(ones);
        let zero = left.iter().all(|c| self.scratch[*c] == 0);
        for c in left {
            self.scratch[c] = 0;
        }
        zero
    }
}

/// `a − f·b` for sorted sparse vectors over GF(p), without zeros.
fn subtract(a: &[(usize, u64)], f: u64, b: &[(usize, u64)]) -> Vec<(usize, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let (col, x) = match (a.get(i), b.get(j)) {
            (Some(&(ca, xa)), Some(&(cb, xb))) if ca == cb => {
                i += 1;
                j += 1;
                (ca, (xa + P - mul(f, xb)) % P)
            }
            (Some(&(ca, xa)), Some(&(cb, _))) if ca < cb => {
                i += 1;
                (ca, xa)
            }
            (Some(&(ca, xa)), None) => {
                i += 1;
                (ca, xa)
            }
            (_, Some(&(cb, xb))) => {
                j += 1;
                (cb, (P - mul(f, xb)) % P)
            }
            (None, None) => break,
        };
        if x != 0 {
            out.push((col, x));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parent with children; counts per (unit, month).
    fn lattice(parent: Vec<Option<usize>>, counts: &[(usize, u32, u64)], k: u64) -> Pattern {
        let mut input = Input::new(parent, 0, k);
        for (u, m, n) in counts {
            let a = input.atom(*u, *m, 0);
            input.atoms[a] += n;
        }
        Pattern::decide_all(input, None)
    }

    #[test]
    fn a_small_month_takes_another_with_it_and_the_year_stays() {
        // One unit: 30 responses in January..November, 1 in December.
        let mut counts: Vec<(usize, u32, u64)> = (1..=11).map(|m| (0, m, 10 + u64::from(m))).collect();
        counts.push((0, 12, 1));
        let p = lattice(vec![None], &counts, 10);
        assert_eq!(p.decide(Node::Subtree(0), month_time(12), 0), Some(Reason::UnderK));
        assert_eq!(p.decide(Node::Subtree(0), 0, 0), None, "the year is shown");
        // Q4 minus October and November would give December: one of them goes too.
        let q4_parts = [10, 11].map(|m| p.decide(Node::Subtree(0), month_time(m), 0));
        assert!(q4_parts.iter().any(Option::is_some), "{q4_parts:?}");
        assert_eq!(p.unresolved, 0);
    }

    #[test]
    fn a_child_hidden_in_one_relation_is_hidden_in_all() {
        // Parent with 4 own, children with 25, 14 and 6 responses, all in March.
        let p = lattice(vec![None, Some(0), Some(0), Some(0)], &[(0, 3, 4), (1, 3, 25), (2, 3, 14), (3, 3, 6)], 10);
        let child = |u| p.decide(Node::Subtree(u), 0, 0);
        assert_eq!(child(3), Some(Reason::UnderK));
        // The parent's own 4 and the child's 6 make 10: enough together, and two parts.
        assert_eq!(p.decide(Node::Own(0), 0, 0), Some(Reason::UnderK));
        assert_eq!(child(1), None);
        assert_eq!(child(2), None);
        // The same decision for the child's March and Q1 (the same responses).
        assert_eq!(p.decide(Node::Subtree(3), month_time(3), 0), Some(Reason::UnderK));
        assert_eq!(p.decide(Node::Subtree(3), quarter_time(1), 0), Some(Reason::UnderK));
        assert_eq!(p.unresolved, 0);
    }

    #[test]
    fn the_elimination_finds_a_difference_and_not_an_overlap() {
        let mut b = Basis::new(3);
        b.insert(&[0, 1, 2]);
        assert!(!b.determines(&[2]));
        b.insert(&[0, 1]);
        assert!(b.determines(&[2]));
        assert!(!b.determines(&[1]));
        assert!(b.determines(&[0, 1, 2]));
    }
}
