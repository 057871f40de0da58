//! Background export jobs and their files (`export_jobs`, `export_chunks`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entities::{export_chunk, export_job};

pub struct NewJob<'a> {
    pub id: Uuid,
    pub user_id: i32,
    pub kind: &'a str,
    pub format: &'a str,
    pub unit_code: &'a str,
    pub period: &'a str,
    pub file_name: &'a str,
    pub rows_total: u64,
}

pub async fn create(
    db: &impl ConnectionTrait,
    job: NewJob<'_>,
    now: DateTime<Utc>,
) -> Result<export_job::Model, DbErr> {
    export_job::ActiveModel {
        id: Set(job.id),
        user_id: Set(job.user_id),
        kind: Set(job.kind.into()),
        format: Set(job.format.into()),
        unit_code: Set(job.unit_code.chars().take(64).collect()),
        period: Set(job.period.chars().take(32).collect()),
        file_name: Set(job.file_name.chars().take(200).collect()),
        state: Set("running".into()),
        rows_done: Set(0),
        rows_total: Set(i64::try_from(job.rows_total).unwrap_or(i64::MAX)),
        bytes: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        error: Set(None),
    }
    .insert(db)
    .await
}

/// The job, if it is `user`'s (another's job is as good as missing).
pub async fn get(db: &impl ConnectionTrait, id: Uuid, user: i32) -> Result<Option<export_job::Model>, DbErr> {
    export_job::Entity::find_by_id(id).filter(export_job::Column::UserId.eq(user)).one(db).await
}

/// `user`'s latest jobs, newest first.
pub async fn list(db: &impl ConnectionTrait, user: i32, limit: u64) -> Result<Vec<export_job::Model>, DbErr> {
    export_job::Entity::find()
        .filter(export_job::Column::UserId.eq(user))
        .order_by_desc(export_job::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
}

/// Records progress of a running job; false when it is no longer running (cancelled, or
/// given up as interrupted), which tells the writer to stop.
pub async fn progress(
    db: &impl ConnectionTrait,
    id: Uuid,
    rows: u64,
    bytes: u64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = export_job::Entity::update_many()
        .col_expr(export_job::Column::RowsDone, Expr::value(i64::try_from(rows).unwrap_or(i64::MAX)))
        .col_expr(export_job::Column::Bytes, Expr::value(i64::try_from(bytes).unwrap_or(i64::MAX)))
        .col_expr(export_job::Column::UpdatedAt, Expr::value(now))
        .filter(export_job::Column::Id.eq(id))
        .filter(export_job::Column::State.eq("running"))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Moves a running job to `state` (`done`, `failed`, `cancelled`); false when it was not
/// running any more. A job that did not end `done` loses its file.
pub async fn finish(
    db: &impl ConnectionTrait,
    id: Uuid,
    state: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = export_job::Entity::update_many()
        .col_expr(export_job::Column::State, Expr::value(state))
        .col_expr(export_job::Column::Error, Expr::value(error.map(|e| e.chars().take(200).collect::<String>())))
        .col_expr(export_job::Column::UpdatedAt, Expr::value(now))
        .col_expr(export_job::Column::FinishedAt, Expr::value(Some(now)))
        .filter(export_job::Column::Id.eq(id))
        .filter(export_job::Column::State.eq("running"))
        .exec(db)
        .await?;
    if state != "done" {
        delete_file(db, id).await?;
    }
    Ok(res.rows_affected == 1)
}

pub async fn add_chunk(db: &impl ConnectionTrait, id: Uuid, seq: i32, data: Vec<u8>) -> Result<(), DbErr> {
    export_chunk::ActiveModel { job_id: Set(id), seq: Set(seq), data: Set(data) }.insert(db).await.map(|_| ())
}

/// Chunk `seq` of a job's file, if there is one.
pub async fn chunk(db: &impl ConnectionTrait, id: Uuid, seq: i32) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(export_chunk::Entity::find_by_id((id, seq)).one(db).await?.map(|c| c.data))
}

pub async fn delete_file(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    export_chunk::Entity::delete_many().filter(export_chunk::Column::JobId.eq(id)).exec(db).await.map(|_| ())
}

/// Deletes a job and its file.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    delete_file(db, id).await?;
    export_job::Entity::delete_by_id(id).exec(db).await.map(|_| ())
}

/// Housekeeping: a running job whose writer stopped giving news since `stale` (its instance
/// stopped) is failed and loses its partial file; a job that ended before `expired` is
/// deleted with its file. Returns (interrupted, deleted).
pub async fn sweep(
    db: &impl ConnectionTrait,
    stale: DateTime<Utc>,
    expired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(usize, usize), DbErr> {
    let stopped: Vec<Uuid> = export_job::Entity::find()
        .select_only()
        .column(export_job::Column::Id)
        .filter(export_job::Column::State.eq("running"))
        .filter(export_job::Column::UpdatedAt.lt(stale))
        .into_tuple()
        .all(db)
        .await?;
    for id in &stopped {
        finish(db, *id, "failed", Some("interrupted: the service stopped while preparing it"), now).await?;
    }
    let old: Vec<Uuid> = export_job::Entity::find()
        .select_only()
        .column(export_job::Column::Id)
        .filter(export_job::Column::FinishedAt.lt(expired))
        .into_tuple()
        .all(db)
        .await?;
    for id in &old {
        delete(db, *id).await?;
    }
    Ok((stopped.len(), old.len()))
}
