//! One anonymous response. No IP, user agent, account, token or time of day: by design.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "responses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub submission_key: String,
    pub body_hash: String,
    pub unit_id: i32,
    pub form_id: String,
    pub form_version: i32,
    pub survey_date: Date,
    pub respondent_type: String,
    pub channel: String,
    pub service: Option<String>,
    pub gender: Option<String>,
    pub age_band: Option<String>,
    pub education: Option<String>,
    pub occupation: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    /// Looked automated (honeypot filled, or sent too fast): kept, but out of the indices.
    pub flagged: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
