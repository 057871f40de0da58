//! Throttles shared by every instance of the service: one token bucket per key (a keyed
//! hash of an address or a typed email, never the address itself), kept as the time in
//! milliseconds at which the bucket is full again. A row whose time has passed says nothing
//! and is deleted by the housekeeping.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("throttles")
                    .if_not_exists()
                    .col(string_len("key", 64).primary_key())
                    .col(big_integer("full_at_ms"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("throttles").to_owned()).await
    }
}
