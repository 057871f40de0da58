//! Tallies: per unit, grain (year, month, day), period, form version and detail (respondent
//! type, channel, service, or `*` for all), the counts every published figure needs, kept in
//! the same transaction as each submission. Service volumes per unit and month.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tallies")
                    .if_not_exists()
                    .col(integer("unit_id"))
                    .col(string_len("grain", 1))
                    .col(date("period_start"))
                    .col(string_len("form_id", 64))
                    .col(integer("form_version"))
                    .col(string_len("respondent_type", 16))
                    .col(string_len("channel", 16))
                    .col(string_len("service", 64))
                    .col(big_integer("responses"))
                    .col(blob("data"))
                    .primary_key(
                        Index::create()
                            .col("unit_id")
                            .col("grain")
                            .col("period_start")
                            .col("form_id")
                            .col("form_version")
                            .col("respondent_type")
                            .col("channel")
                            .col("service"),
                    )
                    .foreign_key(
                        ForeignKey::create().name("fk_tallies_unit").from("tallies", "unit_id").to("units", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // Rankings read one period for every unit.
        manager
            .create_index(
                Index::create()
                    .name("ix_tallies_period")
                    .table("tallies")
                    .col("form_id")
                    .col("grain")
                    .col("period_start")
                    .col("respondent_type")
                    .col("channel")
                    .col("service")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("volumes")
                    .if_not_exists()
                    .col(integer("unit_id"))
                    .col(date("month"))
                    .col(big_integer("dossiers"))
                    .primary_key(Index::create().col("unit_id").col("month"))
                    .foreign_key(
                        ForeignKey::create().name("fk_volumes_unit").from("volumes", "unit_id").to("units", "id"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["volumes", "tallies"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
