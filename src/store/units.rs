//! The units table.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::entities::unit;
use crate::forms::FormRegistry;
use crate::forms::submission::UnitRef;
use crate::units::import::{self, Existing, UnitRow};
use crate::units::{Level, UnitTree, is_valid_code};

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<unit::Model>, sea_orm::DbErr> {
    unit::Entity::find().order_by_asc(unit::Column::Code).all(db).await
}

pub async fn tree(db: &impl ConnectionTrait) -> Result<UnitTree, sea_orm::DbErr> {
    Ok(UnitTree::new(all(db).await?))
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
    unit::ActiveModel {
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
    .await
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
    txn.commit().await?;
    Ok(Ok(report))
}

pub async fn by_id(db: &impl ConnectionTrait, id: i32) -> Result<Option<unit::Model>, sea_orm::DbErr> {
    unit::Entity::find_by_id(id).one(db).await
}
