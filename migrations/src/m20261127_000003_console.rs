//! The console's tables: a CSRF token per session, the audit log, the mail outbox and
//! password-reset tokens.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table("sessions").add_column(string_len("csrf_token", 64).default("")).to_owned(),
            )
            .await?;

        // Who did what: sign-ins, exports, changes. Never the content of responses.
        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(integer_null("user_id"))
                    .col(string_len_null("actor", 254))
                    .col(string_len("action", 32))
                    .col(string_len_null("target", 128))
                    .col(text("details"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(Index::create().name("ix_audit_at").table("audit_log").col("at").to_owned()).await?;

        // Mail waits here until a worker has handed it to SMTP; retries back off.
        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string_len("kind", 32))
                    .col(string_len_null("dedupe_key", 128).unique_key())
                    .col(string_len("recipient", 254))
                    .col(string_len("subject", 300))
                    .col(text("body_text"))
                    .col(text_null("body_html"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .col(timestamp_with_time_zone_null("failed_at"))
                    .col(text_null("last_error"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_outbox_due").table("outbox").col("sent_at").col("next_attempt_at").to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("password_resets")
                    .if_not_exists()
                    // SHA-256 of the emailed token.
                    .col(string_len("token_hash", 64).primary_key())
                    .col(integer("user_id"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(boolean("used").default(false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_resets_user")
                            .from("password_resets", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["password_resets", "outbox", "audit_log"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        manager.alter_table(Table::alter().table("sessions").drop_column("csrf_token").to_owned()).await
    }
}
