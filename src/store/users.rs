//! Admin accounts.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::auth::Role;
use crate::entities::user;

pub async fn by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::Email.eq(email.to_lowercase())).one(db).await
}

pub async fn insert(
    db: &impl ConnectionTrait,
    email: &str,
    password_hash: String,
    role: Role,
    unit_id: Option<i32>,
) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        email: Set(email.to_lowercase()),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_string()),
        unit_id: Set(unit_id),
        disabled: Set(false),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    user::Entity::find().count(db).await
}
