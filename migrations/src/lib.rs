//! The database schema of sipas as portable sea-orm migrations: the same SeaQuery statements
//! build it on SQLite and on PostgreSQL. Migrations are append-only once released.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_core;
mod m20261127_000002_tallies;
mod m20261127_000003_console;
mod m20261127_000004_reach;
mod m20261202_000005_flagged_index;
mod m20261203_000006_unit_history;
mod m20261203_000007_generations;
mod m20261203_000008_unfolded;
mod m20261203_000009_throttles;
mod m20261204_000010_export_jobs;
mod m20261205_000011_plans;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_core::Migration),
            Box::new(m20261127_000002_tallies::Migration),
            Box::new(m20261127_000003_console::Migration),
            Box::new(m20261127_000004_reach::Migration),
            Box::new(m20261202_000005_flagged_index::Migration),
            Box::new(m20261203_000006_unit_history::Migration),
            Box::new(m20261203_000007_generations::Migration),
            Box::new(m20261203_000008_unfolded::Migration),
            Box::new(m20261203_000009_throttles::Migration),
            Box::new(m20261204_000010_export_jobs::Migration),
            Box::new(m20261205_000011_plans::Migration),
        ]
    }
}
