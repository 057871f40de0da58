//! Server-side sessions, keyed by the SHA-256 of the bearer token.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::entities::{session, user};

pub async fn insert(
    db: &impl ConnectionTrait,
    token_hash: String,
    user_id: i32,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    csrf_token: String,
) -> Result<(), DbErr> {
    session::ActiveModel {
        token_hash: Set(token_hash),
        user_id: Set(user_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
        csrf_token: Set(csrf_token),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn find(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<(session::Model, user::Model)>, DbErr> {
    let Some(s) = session::Entity::find_by_id(token_hash.to_string()).one(db).await? else {
        return Ok(None);
    };
    let u = user::Entity::find_by_id(s.user_id).one(db).await?;
    Ok(u.map(|u| (s, u)))
}

pub async fn touch(db: &impl ConnectionTrait, token_hash: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, sea_orm::sea_query::Expr::value(now))
        .filter(session::Column::TokenHash.eq(token_hash))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn delete(db: &impl ConnectionTrait, token_hash: &str) -> Result<(), DbErr> {
    session::Entity::delete_by_id(token_hash.to_string()).exec(db).await.map(|_| ())
}

/// Sessions past their absolute expiry are useless; drop them at login time.
pub async fn delete_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<(), DbErr> {
    session::Entity::delete_many().filter(session::Column::ExpiresAt.lt(now)).exec(db).await.map(|_| ())
}
