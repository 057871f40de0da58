//! Server secrets kept in the database, so that every process of a deployment shares them
//! and a restart does not invalidate pages already served.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::entities::secret;

/// The named secret, created at random the first time it is asked for.
pub async fn get_or_create(db: &impl ConnectionTrait, name: &str) -> Result<Vec<u8>, DbErr> {
    let fresh = crate::auth::new_token().0;
    secret::Entity::insert(secret::ActiveModel { name: Set(name.to_string()), value: Set(fresh) })
        .on_conflict(OnConflict::column(secret::Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    let row = secret::Entity::find_by_id(name.to_string()).one(db).await?;
    row.map(|r| r.value.into_bytes()).ok_or_else(|| DbErr::RecordNotFound(name.to_string()))
}
