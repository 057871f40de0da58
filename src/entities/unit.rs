use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "units")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub code: String,
    pub parent_id: Option<i32>,
    pub level: String,
    pub name_vi: String,
    pub name_en: Option<String>,
    pub forms: Option<String>,
    /// Submissions need a one-time receipt code.
    pub requires_code: bool,
    /// First day of existence (None: since before the service's records).
    pub valid_from: Option<Date>,
    /// First day it no longer exists (None: it still does). An ended unit sits under the
    /// unit its responses now count for.
    pub valid_to: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
