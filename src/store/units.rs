//! The units table.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::entities::unit;
use crate::forms::FormRegistry;
use crate::forms::submission::UnitRef;
use crate::units::import::{self, Existing, UnitRow};
use crate::units::restructure;
use crate::units::{Level, UnitTree, is_valid_code};

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<unit::Model>, sea_orm::DbErr> {
    unit::Entity::find().order_by_asc(unit::Column::Code).all(db).await
}

pub async fn tree(db: &impl ConnectionTrait) -> Result<UnitTree, sea_orm::DbErr> {
    let changes = crate::entities::unit_change::Entity::find().all(db).await?;
    Ok(UnitTree::with_changes(all(db).await?, changes))
}

/// Looks a unit up by code; a code that cannot be valid is not sent to the database.
pub async fn by_code(db: &impl ConnectionTrait, code: &str) -> Result<Option<unit::Model>, sea_orm::DbErr> {
    if !is_valid_code(code) {
        return Ok(None);
    }
    unit::Entity::find().filter(unit::Column::Code.eq(code)).one(db).await
}

/// The unit a submission names, with the forms it takes after inheritance.
pub async fn unit_ref(
    db: &impl ConnectionTrait,
    code: &str,
    forms: &FormRegistry,
) -> Result<Option<UnitRef>, sea_orm::DbErr> {
    match by_code(db, code).await? {
        Some(unit) => ref_of(db, &unit, forms).await.map(Some),
        None => Ok(None),
    }
}

/// The same for a unit already loaded.
pub async fn ref_of(
    db: &impl ConnectionTrait,
    unit: &unit::Model,
    forms: &FormRegistry,
) -> Result<UnitRef, sea_orm::DbErr> {
    // Walk up to the nearest ancestor that lists its forms (a handful of steps at most).
    let mut list = unit.forms.clone();
    let mut parent = unit.parent_id;
    let mut steps = 0;
    while list.is_none() && steps < 16 {
        let Some(pid) = parent else { break };
        let Some(p) = unit::Entity::find_by_id(pid).one(db).await? else {
            break;
        };
        list = p.forms;
        parent = p.parent_id;
        steps += 1;
    }
    let forms = match list {
        Some(l) => crate::units::parse_form_list(&l),
        None => forms.ids(),
    };
    Ok(UnitRef { id: unit.id, code: unit.code.clone(), forms, requires_code: unit.requires_code })
}

pub struct NewUnit {
    pub code: String,
    pub parent_id: Option<i32>,
    pub level: Level,
    pub name_vi: String,
    pub name_en: Option<String>,
    pub forms: Option<String>,
}

pub async fn insert(db: &impl ConnectionTrait, u: NewUnit) -> Result<unit::Model, sea_orm::DbErr> {
    let created = unit::ActiveModel {
        code: Set(u.code),
        parent_id: Set(u.parent_id),
        level: Set(u.level.as_str().to_string()),
        name_vi: Set(u.name_vi),
        name_en: Set(u.name_en),
        forms: Set(u.forms),
        requires_code: Set(false),
        ..Default::default()
    }
    .insert(db)
    .await?;
    touch(db).await?;
    Ok(created)
}

/// Marks the unit tree changed, inside the change's transaction: every instance's cached
/// tree (`UnitCache`) is then reloaded on its next use. Every write to units calls it.
pub async fn touch(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    LOCAL_CHANGES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    db.execute_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        "UPDATE generations SET value = value + 1 WHERE name = 'units'",
    ))
    .await
    .map(|_| ())
}

/// The unit tree's generation (see `touch`).
pub async fn generation(db: &impl ConnectionTrait) -> Result<i64, sea_orm::DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT value FROM generations WHERE name = 'units'",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("the units generation".into()))?;
    row.try_get("", "value")
}

/// The unit tree, kept in memory by one instance and reloaded when its generation moved (a
/// change here or in another instance): a look-up costs one read of one row.
#[derive(Default)]
pub struct UnitCache {
    current: std::sync::Mutex<Option<Cached>>,
}

struct Cached {
    generation: i64,
    local: u64,
    checked: std::time::Instant,
    tree: std::sync::Arc<UnitTree>,
}

/// Changes made by this process: `recent` sees them at once, others' within `RECENT`.
static LOCAL_CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How stale `UnitCache::recent` may be: pages, which a submission checks exactly again.
const RECENT: std::time::Duration = std::time::Duration::from_secs(1);

impl UnitCache {
    /// The tree as it is now: what a submission is stored against.
    pub async fn tree(&self, db: &impl ConnectionTrait) -> Result<std::sync::Arc<UnitTree>, sea_orm::DbErr> {
        Ok(self.load(db).await?.1)
    }

    /// The tree as it was at most a second ago, with its generation, for pages: under load
    /// the generation is read once a second, not once a request. A change made by this
    /// process shows at once; one made by another instance (or the CLI) within a second.
    pub async fn recent(&self, db: &impl ConnectionTrait) -> Result<(i64, std::sync::Arc<UnitTree>), sea_orm::DbErr> {
        if let Ok(current) = self.current.lock()
            && let Some(c) = current.as_ref()
            && c.checked.elapsed() < RECENT
            && c.local == LOCAL_CHANGES.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok((c.generation, c.tree.clone()));
        }
        self.load(db).await
    }

    async fn load(&self, db: &impl ConnectionTrait) -> Result<(i64, std::sync::Arc<UnitTree>), sea_orm::DbErr> {
        // Read before the tree: a tree loaded after a later change is only ever labelled
        // older than it is, and so reloaded once more, never kept stale.
        let checked = std::time::Instant::now();
        let local = LOCAL_CHANGES.load(std::sync::atomic::Ordering::SeqCst);
        let generation = generation(db).await?;
        if let Ok(mut current) = self.current.lock()
            && let Some(c) = current.as_mut()
            && c.generation == generation
        {
            c.checked = checked;
            c.local = local;
            return Ok((generation, c.tree.clone()));
        }
        let tree = std::sync::Arc::new(tree(db).await?);
        if let Ok(mut current) = self.current.lock() {
            *current = Some(Cached { generation, local, checked, tree: tree.clone() });
        }
        Ok((generation, tree))
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Upserts the rows in one write transaction; on any problem nothing is written and every
/// problem is returned with its line.
pub async fn import(db: &DatabaseConnection, rows: Vec<UnitRow>) -> anyhow::Result<Result<ImportReport, Vec<String>>> {
    let txn = super::begin_write(db).await?;
    let stored = all(&txn).await?;
    let tree = UnitTree::new(stored.clone());
    let existing: Vec<Existing> = stored
        .iter()
        .map(|u| Existing {
            code: u.code.clone(),
            parent: u.parent_id.and_then(|p| tree.get(p)).map(|p| p.code.clone()),
            level: Level::parse(&u.level),
        })
        .collect();
    let rows = match import::plan(rows, &existing) {
        Ok(rows) => rows,
        Err(errors) => {
            txn.rollback().await?;
            return Ok(Err(errors));
        }
    };
    let mut report = ImportReport::default();
    let mut ids: std::collections::HashMap<String, i32> = stored.iter().map(|u| (u.code.clone(), u.id)).collect();
    for row in rows {
        // Parents come first, so the parent's id is known by now.
        let parent_id = row.parent.as_ref().and_then(|p| ids.get(p).copied());
        match tree.by_code(&row.code) {
            Some(current) => {
                let same = current.parent_id == parent_id
                    && current.level == row.level
                    && current.name_vi == row.name_vi
                    && current.name_en == row.name_en;
                if same {
                    report.unchanged += 1;
                    continue;
                }
                let mut active: unit::ActiveModel = current.clone().into();
                active.parent_id = Set(parent_id);
                active.level = Set(row.level);
                active.name_vi = Set(row.name_vi);
                active.name_en = Set(row.name_en);
                active.update(&txn).await?;
                report.updated += 1;
            }
            None => {
                let level = Level::parse(&row.level).unwrap_or(Level::Office);
                let created = insert(
                    &txn,
                    NewUnit {
                        code: row.code.clone(),
                        parent_id,
                        level,
                        name_vi: row.name_vi,
                        name_en: row.name_en,
                        forms: None,
                    },
                )
                .await?;
                ids.insert(row.code, created.id);
                report.created += 1;
            }
        }
    }
    touch(&txn).await?;
    txn.commit().await?;
    Ok(Ok(report))
}

pub async fn by_id(db: &impl ConnectionTrait, id: i32) -> Result<Option<unit::Model>, sea_orm::DbErr> {
    unit::Entity::find_by_id(id).one(db).await
}

/// Checks a restructuring plan against the units as stored and, unless `dry_run`, applies it
/// in one write transaction with an audit entry: all or nothing.
pub async fn restructure(
    db: &DatabaseConnection,
    rows: &[restructure::PlanRow],
    today: chrono::NaiveDate,
    dry_run: bool,
) -> anyhow::Result<Result<Vec<restructure::Step>, Vec<String>>> {
    use crate::entities::{unit_change, unit_link};
    use restructure::Step;
    let txn = super::begin_write(db).await?;
    let stored = all(&txn).await?;
    let tree = UnitTree::new(stored.clone());
    let steps = match restructure::plan(&tree, rows, today) {
        Ok(steps) => steps,
        Err(errors) => {
            txn.rollback().await?;
            return Ok(Err(errors));
        }
    };
    if dry_run {
        txn.rollback().await?;
        return Ok(Ok(steps));
    }
    let mut units: std::collections::HashMap<String, unit::Model> =
        stored.into_iter().map(|u| (u.code.clone(), u)).collect();
    let id_of = |units: &std::collections::HashMap<String, unit::Model>, code: &str| {
        units.get(code).map(|u| u.id).ok_or_else(|| anyhow::anyhow!("unit {code} vanished during the plan"))
    };
    let change =
        |unit_id: i32, effective, change: &str, old: Option<String>, new: Option<String>| unit_change::ActiveModel {
            unit_id: Set(unit_id),
            effective: Set(effective),
            change: Set(change.to_string()),
            old_value: Set(old),
            new_value: Set(new),
            ..Default::default()
        };
    for step in &steps {
        match step {
            Step::Create { effective, code, parent, level, name_vi, name_en, .. } => {
                let created = unit::ActiveModel {
                    code: Set(code.clone()),
                    parent_id: Set(Some(id_of(&units, parent)?)),
                    level: Set(level.as_str().to_string()),
                    name_vi: Set(name_vi.clone()),
                    name_en: Set(name_en.clone()),
                    forms: Set(None),
                    requires_code: Set(false),
                    valid_from: Set(Some(*effective)),
                    valid_to: Set(None),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
                change(created.id, *effective, "created", None, Some(parent.clone())).insert(&txn).await?;
                units.insert(code.clone(), created);
            }
            Step::Link { effective, from, to, split, .. } => {
                unit_link::ActiveModel {
                    predecessor_id: Set(id_of(&units, from)?),
                    successor_id: Set(id_of(&units, to)?),
                    effective: Set(*effective),
                    kind: Set(if *split { "split" } else { "merge" }.to_string()),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
            }
            Step::Rename { effective, code, from, to, name_en, .. } => {
                let current = units.get(code).cloned().ok_or_else(|| anyhow::anyhow!("unit {code} vanished"))?;
                let mut active: unit::ActiveModel = current.into();
                active.name_vi = Set(to.clone());
                if name_en.is_some() {
                    active.name_en = Set(name_en.clone());
                }
                let updated = active.update(&txn).await?;
                change(updated.id, *effective, "renamed", Some(from.clone()), Some(to.clone())).insert(&txn).await?;
                units.insert(code.clone(), updated);
            }
            Step::Move { effective, code, from, to, level, .. } => {
                let current = units.get(code).cloned().ok_or_else(|| anyhow::anyhow!("unit {code} vanished"))?;
                let mut active: unit::ActiveModel = current.into();
                active.parent_id = Set(Some(id_of(&units, to)?));
                if let Some(l) = level {
                    active.level = Set(l.as_str().to_string());
                }
                let updated = active.update(&txn).await?;
                change(updated.id, *effective, "moved", from.clone(), Some(to.clone())).insert(&txn).await?;
                units.insert(code.clone(), updated);
            }
            Step::End { effective, code, under, .. } => {
                let current = units.get(code).cloned().ok_or_else(|| anyhow::anyhow!("unit {code} vanished"))?;
                let old_parent =
                    current.parent_id.and_then(|p| units.values().find(|u| u.id == p)).map(|u| u.code.clone());
                let mut active: unit::ActiveModel = current.into();
                active.valid_to = Set(Some(*effective));
                active.parent_id = Set(match under {
                    Some(u) => Some(id_of(&units, u)?),
                    None => None,
                });
                let updated = active.update(&txn).await?;
                change(updated.id, *effective, "ended", old_parent, under.clone()).insert(&txn).await?;
                units.insert(code.clone(), updated);
            }
        }
    }
    let count = |f: fn(&Step) -> bool| steps.iter().filter(|s| f(s)).count();
    let details = serde_json::json!({
        "rows": rows.len(),
        "created": count(|s| matches!(s, Step::Create { .. })),
        "ended": count(|s| matches!(s, Step::End { .. })),
        "renamed": count(|s| matches!(s, Step::Rename { .. })),
        "moved": count(|s| matches!(s, Step::Move { .. })),
        "links": count(|s| matches!(s, Step::Link { .. })),
    });
    crate::audit::record(&txn, None, "units_restructured", None, details).await?;
    touch(&txn).await?;
    txn.commit().await?;
    Ok(Ok(steps))
}

/// What became of a unit that ended: the live unit its survey now belongs to (after one or
/// more merges), the live units it was split into, or nothing.
#[derive(Debug)]
pub enum Successor {
    Live(unit::Model),
    Split(Vec<unit::Model>),
    Ended,
}

pub async fn successor(db: &impl ConnectionTrait, unit: &unit::Model) -> Result<Successor, sea_orm::DbErr> {
    use crate::entities::unit_link;
    let mut current = unit.clone();
    for _ in 0..32 {
        if current.valid_to.is_none() {
            return Ok(Successor::Live(current));
        }
        let links = unit_link::Entity::find().filter(unit_link::Column::PredecessorId.eq(current.id)).all(db).await?;
        let ids: Vec<i32> = links.iter().map(|l| l.successor_id).collect();
        let next =
            unit::Entity::find().filter(unit::Column::Id.is_in(ids)).order_by_asc(unit::Column::Code).all(db).await?;
        match next.as_slice() {
            [] => return Ok(Successor::Ended),
            [one] => current = one.clone(),
            many => return Ok(Successor::Split(many.to_vec())),
        }
    }
    Ok(Successor::Ended)
}

/// One event in a unit's lineage, for the console.
#[derive(Debug, Clone)]
pub enum History {
    /// Another unit merged into this one (or this one was split off from it).
    From { effective: chrono::NaiveDate, code: String, name: String, split: bool },
    /// This unit merged into another (or was split into it).
    Into { effective: chrono::NaiveDate, code: String, name: String, split: bool },
    /// Created, renamed, moved or ended, with the values before and after.
    Change { effective: chrono::NaiveDate, change: String, old: Option<String>, new: Option<String> },
}

impl History {
    pub fn effective(&self) -> chrono::NaiveDate {
        match self {
            History::From { effective, .. } | History::Into { effective, .. } | History::Change { effective, .. } => {
                *effective
            }
        }
    }
}

/// A unit's lineage: its predecessors, its successors and its own changes, by date.
pub async fn history(db: &impl ConnectionTrait, tree: &UnitTree, unit_id: i32) -> Result<Vec<History>, sea_orm::DbErr> {
    use crate::entities::{unit_change, unit_link};
    let named = |id: i32| tree.get(id).map_or((String::new(), String::new()), |u| (u.code.clone(), u.name_vi.clone()));
    let mut out = Vec::new();
    for l in unit_link::Entity::find().filter(unit_link::Column::SuccessorId.eq(unit_id)).all(db).await? {
        let (code, name) = named(l.predecessor_id);
        out.push(History::From { effective: l.effective, code, name, split: l.kind == "split" });
    }
    for l in unit_link::Entity::find().filter(unit_link::Column::PredecessorId.eq(unit_id)).all(db).await? {
        let (code, name) = named(l.successor_id);
        out.push(History::Into { effective: l.effective, code, name, split: l.kind == "split" });
    }
    // Parents are stored by code: show their names.
    let name_of = |v: Option<String>, change: &str| match change {
        "created" | "moved" | "ended" => v.map(|code| tree.by_code(&code).map_or(code, |u| u.name_vi.clone())),
        _ => v,
    };
    for c in unit_change::Entity::find().filter(unit_change::Column::UnitId.eq(unit_id)).all(db).await? {
        let (old, new) = (name_of(c.old_value, &c.change), name_of(c.new_value, &c.change));
        out.push(History::Change { effective: c.effective, change: c.change, old, new });
    }
    out.sort_by_key(History::effective);
    Ok(out)
}
