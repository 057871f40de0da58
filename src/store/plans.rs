//! Improvement plans, their frozen baselines and their comments.

use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use uuid::Uuid;

use crate::entities::{plan, plan_comment, plan_criterion};

/// A plan with its criteria and comments.
pub struct Full {
    pub plan: plan::Model,
    pub criteria: Vec<plan_criterion::Model>,
    pub comments: Vec<plan_comment::Model>,
}

/// Stores a new plan and its criteria' baselines in one transaction.
pub async fn create(
    db: &DatabaseConnection,
    new: plan::Model,
    criteria: Vec<plan_criterion::Model>,
) -> Result<(), DbErr> {
    let txn = super::begin_write(db).await?;
    plan::ActiveModel::from(new).insert(&txn).await?;
    for c in criteria {
        plan_criterion::ActiveModel::from(c).insert(&txn).await?;
    }
    txn.commit().await
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Full>, DbErr> {
    let Some(plan) = plan::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let criteria = plan_criterion::Entity::find()
        .filter(plan_criterion::Column::PlanId.eq(id))
        .order_by_asc(plan_criterion::Column::Code)
        .all(db)
        .await?;
    let comments = plan_comment::Entity::find()
        .filter(plan_comment::Column::PlanId.eq(id))
        .order_by_asc(plan_comment::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(Some(Full { plan, criteria, comments }))
}

/// Plans of these units, newest deadline last, with their criteria.
pub async fn list(
    db: &impl ConnectionTrait,
    units: &[i32],
) -> Result<Vec<(plan::Model, Vec<plan_criterion::Model>)>, DbErr> {
    let mut out = Vec::new();
    for chunk in units.chunks(500) {
        let plans = plan::Entity::find().filter(plan::Column::UnitId.is_in(chunk.to_vec())).all(db).await?;
        let ids: Vec<Uuid> = plans.iter().map(|p| p.id).collect();
        let mut criteria = Vec::new();
        for ids in ids.chunks(500) {
            criteria.extend(
                plan_criterion::Entity::find()
                    .filter(plan_criterion::Column::PlanId.is_in(ids.to_vec()))
                    .order_by_asc(plan_criterion::Column::Code)
                    .all(db)
                    .await?,
            );
        }
        for p in plans {
            let mine = criteria.iter().filter(|c| c.plan_id == p.id).cloned().collect();
            out.push((p, mine));
        }
    }
    out.sort_by(|(a, _), (b, _)| a.deadline.cmp(&b.deadline).then(a.created_at.cmp(&b.created_at)));
    Ok(out)
}

/// The changes a plan's author may make; None leaves a field as it is.
#[derive(Default)]
pub struct Changes {
    pub title: Option<String>,
    pub actions: Option<String>,
    pub responsible: Option<String>,
    pub deadline: Option<NaiveDate>,
    pub status: Option<String>,
}

pub async fn update(db: &impl ConnectionTrait, current: plan::Model, c: Changes) -> Result<plan::Model, DbErr> {
    let mut active: plan::ActiveModel = current.into();
    if let Some(v) = c.title {
        active.title = Set(v);
    }
    if let Some(v) = c.actions {
        active.actions = Set(v);
    }
    if let Some(v) = c.responsible {
        active.responsible = Set(v);
    }
    if let Some(v) = c.deadline {
        active.deadline = Set(v);
    }
    if let Some(v) = c.status {
        active.status = Set(v);
    }
    active.updated_at = Set(Utc::now());
    active.update(db).await
}

pub async fn comment(
    db: &impl ConnectionTrait,
    plan_id: Uuid,
    author: (i32, &str),
    body: String,
) -> Result<plan_comment::Model, DbErr> {
    plan_comment::ActiveModel {
        id: Set(Uuid::new_v4()),
        plan_id: Set(plan_id),
        user_id: Set(Some(author.0)),
        author: Set(author.1.chars().take(254).collect()),
        body: Set(body),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}
