//! Improvement plans (kế hoạch khắc phục): a unit's plan against criteria where it lost
//! points, with each criterion's baseline frozen when the plan was made, and the comments
//! analysts and admins leave on it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("plans")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(integer("unit_id"))
                    .col(string_len("form_id", 64))
                    .col(string_len("title", 200))
                    .col(text("actions"))
                    .col(string_len("responsible", 200))
                    .col(date("deadline"))
                    // open, in_progress, done, dropped
                    .col(string_len("status", 16))
                    // A calendar year, quarter or month: `2025`, `2025-Q2`, `2025-03`.
                    .col(string_len("baseline_period", 16))
                    .col(integer_null("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(ForeignKey::create().name("fk_plans_unit").from("plans", "unit_id").to("units", "id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plans_user")
                            .from("plans", "created_by")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager.create_index(Index::create().name("ix_plans_unit").table("plans").col("unit_id").to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table("plan_criteria")
                    .if_not_exists()
                    .col(uuid("plan_id"))
                    .col(string_len("code", 16))
                    // The baseline as it was published when the plan was made: answers, and
                    // (when the gate showed the cell) answers at a satisfied level and the
                    // 95% interval, in percent.
                    .col(big_integer("baseline_n"))
                    .col(big_integer_null("baseline_satisfied"))
                    .col(double_null("baseline_value"))
                    .col(double_null("baseline_low"))
                    .col(double_null("baseline_high"))
                    .primary_key(Index::create().col("plan_id").col("code"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plan_criteria_plan")
                            .from("plan_criteria", "plan_id")
                            .to("plans", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("plan_comments")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(uuid("plan_id"))
                    .col(integer_null("user_id"))
                    .col(string_len("author", 254))
                    .col(text("body"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plan_comments_plan")
                            .from("plan_comments", "plan_id")
                            .to("plans", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plan_comments_user")
                            .from("plan_comments", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_plan_comments_plan").table("plan_comments").col("plan_id").to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["plan_comments", "plan_criteria", "plans"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
