//! Core tables: forms, units, anonymous responses and their answers, admin users, sessions.
//!
//! Privacy invariant: `responses` and `answers` hold no IP, user agent, account, token or
//! time of day. The survey date is a DATE; the idempotency key is kept only as a hash.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("forms")
                    .if_not_exists()
                    .col(string_len("id", 64))
                    .col(integer("version"))
                    .col(string_len("content_hash", 64))
                    .col(text("definition"))
                    .primary_key(Index::create().col("id").col("version"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("units")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(string_len_uniq("code", 64))
                    .col(integer_null("parent_id"))
                    .col(string_len("level", 16))
                    .col(string_len("name_vi", 200))
                    .col(string_len_null("name_en", 200))
                    // Comma-separated form ids; NULL inherits the parent's (root: every form).
                    .col(string_len_null("forms", 200))
                    .foreign_key(
                        ForeignKey::create().name("fk_units_parent").from("units", "parent_id").to("units", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("ix_units_parent").table("units").col("parent_id").to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("responses")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    // SHA-256 of the client's submission_id: enough to answer a retry, useless
                    // to anyone holding the id.
                    .col(string_len_uniq("submission_key", 64))
                    .col(string_len("body_hash", 64))
                    .col(integer("unit_id"))
                    .col(string_len("form_id", 64))
                    .col(integer("form_version"))
                    .col(date("survey_date"))
                    .col(string_len("respondent_type", 16))
                    .col(string_len("channel", 16))
                    .col(string_len_null("service", 64))
                    .col(string_len_null("gender", 16))
                    .col(string_len_null("age_band", 16))
                    .col(string_len_null("education", 32))
                    .col(string_len_null("occupation", 32))
                    .col(text_null("comment"))
                    .foreign_key(
                        ForeignKey::create().name("fk_responses_unit").from("responses", "unit_id").to("units", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_responses_form")
                            .from_tbl("responses")
                            .from_col("form_id")
                            .from_col("form_version")
                            .to_tbl("forms")
                            .to_col("id")
                            .to_col("version"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_responses_unit_date")
                    .table("responses")
                    .col("unit_id")
                    .col("survey_date")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("answers")
                    .if_not_exists()
                    .col(uuid("response_id"))
                    .col(string_len("item_code", 32))
                    .col(small_integer("value"))
                    .primary_key(Index::create().col("response_id").col("item_code").col("value"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_answers_response")
                            .from("answers", "response_id")
                            .to("responses", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("users")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(string_len_uniq("email", 254))
                    .col(string_len("password_hash", 200))
                    .col(string_len("role", 16))
                    .col(integer_null("unit_id"))
                    .col(boolean("disabled").default(false))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(ForeignKey::create().name("fk_users_unit").from("users", "unit_id").to("units", "id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .if_not_exists()
                    // SHA-256 of the bearer token; the token itself is never stored.
                    .col(string_len("token_hash", 64).primary_key())
                    .col(integer("user_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from("sessions", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sessions", "users", "answers", "responses", "units", "forms"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
