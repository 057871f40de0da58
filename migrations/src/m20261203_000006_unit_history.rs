//! Units with a history (issue 11): a validity period on every unit, predecessor/successor
//! links from merges and splits, and a log of renames, moves and ends with their effective
//! dates. Nothing is deleted and no response changes its unit: an ended unit stays, placed
//! under the unit its responses now count for (see `units::restructure`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager.alter_table(Table::alter().table("units").add_column(date_null("valid_from")).to_owned()).await?;
        manager.alter_table(Table::alter().table("units").add_column(date_null("valid_to")).to_owned()).await?;

        manager
            .create_table(
                Table::create()
                    .table("unit_links")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(integer("predecessor_id"))
                    .col(integer("successor_id"))
                    .col(date("effective"))
                    // `merge` (the predecessor's responses count for the successor) or `split`.
                    .col(string_len("kind", 8))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_unit_links_pred")
                            .from("unit_links", "predecessor_id")
                            .to("units", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_unit_links_succ")
                            .from("unit_links", "successor_id")
                            .to("units", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        for column in ["predecessor_id", "successor_id"] {
            manager
                .create_index(
                    Index::create().name(format!("ix_unit_links_{column}")).table("unit_links").col(column).to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("unit_changes")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(integer("unit_id"))
                    .col(date("effective"))
                    // `created`, `renamed`, `moved`, `ended`.
                    .col(string_len("change", 16))
                    .col(text_null("old_value"))
                    .col(text_null("new_value"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_unit_changes_unit")
                            .from("unit_changes", "unit_id")
                            .to("units", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("ix_unit_changes_unit").table("unit_changes").col("unit_id").to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("unit_changes").to_owned()).await?;
        manager.drop_table(Table::drop().table("unit_links").to_owned()).await?;
        manager.alter_table(Table::alter().table("units").drop_column("valid_to").to_owned()).await?;
        manager.alter_table(Table::alter().table("units").drop_column("valid_from").to_owned()).await
    }
}
