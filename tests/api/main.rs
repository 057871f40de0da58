#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: each boots the real application on port 0 against its own fresh
//! database: SQLite in a temporary folder by default, PostgreSQL when `TEST_DATABASE_URL`
//! is set (one database per test, dropped afterwards).

mod helpers;
mod indices;
mod instances;

mod access;
mod adversary;
mod auth;
mod browser;
mod cli;
mod console;
mod console_charts;
mod console_text;
mod email;
mod engine;
mod export_jobs;
mod export_snapshot;
mod exports;
mod forms;
mod gate;
mod group_commit;
mod ops;
mod plans;
mod reach;
mod replica;
mod restructure;
mod schema;
mod submissions;
mod survey_page;
mod units;
