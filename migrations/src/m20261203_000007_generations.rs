//! Generations: a counter per cached table group, raised in the same transaction as every
//! change to it, so that each instance of the service can keep the group in memory and
//! reload it only when another instance (or itself) changed it. One row: `units`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("generations")
                    .if_not_exists()
                    .col(string_len("name", 32).primary_key())
                    .col(big_integer("value"))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("generations")
                    .columns(["name", "value"])
                    .values_panic(["units".into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("generations").to_owned()).await
    }
}
