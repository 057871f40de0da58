//! Responses stored but not yet added to the tallies. A live submission commits its
//! response, its answers and one row here; the tallies of many such responses are then
//! added in one later transaction that deletes their rows (see `store::fold`). A crash in
//! between loses nothing: the rows say what is still to add. Only the response's id is
//! kept, and only until it is folded.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(Table::create().table("unfolded").if_not_exists().col(pk_uuid("response_id")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("unfolded").to_owned()).await
    }
}
