//! Database access: plain functions over `&impl ConnectionTrait`, one file per table group.
//! One code path serves SQLite and PostgreSQL; the differences are confined to `connect`
//! and `begin_write`.

pub mod forms;
pub mod responses;
pub mod secrets;
pub mod sessions;
pub mod tallies;
pub mod units;
pub mod users;
pub mod volumes;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// Opens the pool. SQLite: WAL, `synchronous=FULL` (a 201 survives power loss), foreign
/// keys on, a generous busy timeout, and the file created when missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    // sqlx statement logging stays off: statements must never reach the logs with answers.
    opt.sqlx_logging(false)
        .max_connections(max_connections.max(1))
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        opt.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
        });
    }
    Database::connect(opt).await
}

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
/// first, so concurrent writers queue on the busy timeout instead of failing with
/// "database is locked" when a read lock cannot be upgraded.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Liveness of the database for `/readyz`.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
