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

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<user::Model>, DbErr> {
    use sea_orm::QueryOrder;
    user::Entity::find().order_by_asc(user::Column::Email).all(db).await
}

pub async fn by_id(db: &impl ConnectionTrait, id: i32) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Changes role, unit or the disabled flag; disabling also ends every session.
pub async fn update(
    db: &impl ConnectionTrait,
    current: user::Model,
    role: Role,
    unit_id: Option<i32>,
    disabled: bool,
) -> Result<user::Model, DbErr> {
    let id = current.id;
    let mut active: user::ActiveModel = current.into();
    active.role = Set(role.as_str().to_string());
    active.unit_id = Set(unit_id);
    active.disabled = Set(disabled);
    let updated = active.update(db).await?;
    if disabled {
        use crate::entities::session;
        session::Entity::delete_many().filter(session::Column::UserId.eq(id)).exec(db).await?;
    }
    Ok(updated)
}
