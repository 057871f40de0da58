//! Reaching citizens: one-time receipt codes (stored only as hashes, deleted when used, no
//! time of use), API keys for offices' software and kiosks, units that require a code,
//! responses flagged as suspicious (kept, but out of the indices), and server secrets.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table("units").add_column(boolean("requires_code").default(false)).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table("responses").add_column(boolean("flagged").default(false)).to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("codes")
                    .if_not_exists()
                    // SHA-256 of the normalised code. A used code is deleted: nothing records
                    // when, or for which response.
                    .col(string_len("code_hash", 64).primary_key())
                    .col(integer("unit_id"))
                    .col(date("expires_on"))
                    .foreign_key(ForeignKey::create().name("fk_codes_unit").from("codes", "unit_id").to("units", "id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(string_len_uniq("key_hash", 64))
                    .col(integer("unit_id"))
                    // `office` (the office's software: codes, invitations) or `kiosk`.
                    .col(string_len("kind", 16))
                    .col(string_len("name", 100))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(boolean("disabled").default(false))
                    .foreign_key(
                        ForeignKey::create().name("fk_api_keys_unit").from("api_keys", "unit_id").to("units", "id"),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("secrets")
                    .if_not_exists()
                    .col(string_len("name", 32).primary_key())
                    .col(string_len("value", 128))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["secrets", "api_keys", "codes"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        manager.alter_table(Table::alter().table("responses").drop_column("flagged").to_owned()).await?;
        manager.alter_table(Table::alter().table("units").drop_column("requires_code").to_owned()).await
    }
}
