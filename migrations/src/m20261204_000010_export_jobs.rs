//! Exports prepared in the background: the job (whose, what, how far) and its file, kept in
//! the database in chunks so any instance can serve the download, and deleted with the job
//! a day after it finished.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("export_jobs")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(integer("user_id"))
                    .col(string_len("kind", 16))
                    .col(string_len("format", 8))
                    .col(string_len("unit_code", 64))
                    .col(string_len("period", 32))
                    .col(string_len("file_name", 200))
                    // queued, running, done, failed, cancelled
                    .col(string_len("state", 16))
                    .col(big_integer("rows_done").default(0))
                    .col(big_integer("rows_total").default(0))
                    .col(big_integer("bytes").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(string_len_null("error", 200))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_export_jobs_user")
                            .from("export_jobs", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("ix_export_jobs_user").table("export_jobs").col("user_id").to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("export_chunks")
                    .if_not_exists()
                    .col(uuid("job_id"))
                    .col(integer("seq"))
                    .col(blob("data"))
                    .primary_key(Index::create().col("job_id").col("seq"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_export_chunks_job")
                            .from("export_chunks", "job_id")
                            .to("export_jobs", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["export_chunks", "export_jobs"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
