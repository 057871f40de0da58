//! Database access: plain functions over `&impl ConnectionTrait`, one file per table group.
//! One code path serves SQLite and PostgreSQL; the differences are confined to `connect`,
//! `begin_write` and `begin_snapshot`.

pub mod export_jobs;
pub mod fold;
pub mod forms;
pub mod group_commit;
pub mod plans;
pub mod replica;
pub mod responses;
pub mod secrets;
pub mod sessions;
pub mod tallies;
pub mod throttles;
pub mod units;
pub mod upkeep;
pub mod users;
pub mod volumes;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Splits rows into pieces whose sizes are powers of two, at most `max` (a power of two):
/// multi-row statements then come in a handful of shapes, which the drivers' caches of
/// prepared statements keep and reuse, instead of a new statement for every batch size
/// (each parsed afresh, and the cache full of large ones).
pub fn pieces<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = max.min(1 << rest.len().ilog2());
        let (piece, after) = rest.split_at(n);
        rest = after;
        Some(piece)
    })
}

/// Refreshes the planner's statistics of the tables a bulk load fills (an import, the demo,
/// a tally rebuild): a plan made for the empty tables of before would scan them whole. On
/// SQLite `ANALYZE` samples (`analysis_limit`) instead of reading every index in full.
pub async fn refresh_statistics(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => db.execute_unprepared("ANALYZE responses, answers, tallies").await.map(|_| ()),
        _ => db.execute_unprepared("PRAGMA analysis_limit = 1000; ANALYZE").await.map(|_| ()),
    }
}

/// How long a request waits for a connection before it is answered 503 + Retry-After: a
/// database that is down is retried by the pool until then, so this is also how long a
/// reader waits to learn it is down.
const ACQUIRE: Duration = Duration::from_millis(1500);

/// Opens the pool. SQLite: WAL, `synchronous=FULL` (a 201 survives power loss), foreign
/// keys on, a busy timeout of a few seconds (then 503), and the file created when missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, max_connections, ACQUIRE, BUSY).await
}

/// How long an SQLite writer waits for the write lock before its request is answered 503
/// (another process holding the file, a long import): a few seconds, not half a minute.
const BUSY: Duration = Duration::from_secs(4);

/// The readiness probe's own one-connection pool, so `/readyz` never queues behind the
/// requests that hold the shared pool, and answers within a second.
pub async fn connect_probe(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, 1, Duration::from_secs(1), Duration::from_millis(500)).await
}

async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire: Duration,
    busy: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    // sqlx statement logging stays off: statements must never reach the logs with answers.
    // No idle connection is kept open at start: a pool can be made while the database is
    // down, and fills once it is back.
    opt.sqlx_logging(false)
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(acquire);
    if url.starts_with("sqlite:") {
        opt.map_sqlx_sqlite_opts(move |o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(busy)
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

/// Starts a read-only transaction whose statements all see one snapshot, for a reader that
/// needs several queries to agree (an export's plan and its rows). PostgreSQL: `REPEATABLE
/// READ READ ONLY` (the snapshot is taken by the first statement; read-only transactions
/// never fail to serialise). SQLite: a deferred `BEGIN`, whose first SELECT pins the WAL
/// snapshot until the end; writers (`BEGIN IMMEDIATE`) keep committing meanwhile, since a
/// WAL reader takes no lock they wait for. It holds one pooled connection while it lasts.
pub async fn begin_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    // SQLite has neither setting (sea-orm would only warn): a WAL read transaction already is
    // a snapshot, and nothing in it writes.
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    db.begin_with_options(TransactionOptions {
        isolation_level: postgres.then_some(IsolationLevel::RepeatableRead),
        access_mode: postgres.then_some(AccessMode::ReadOnly),
        sqlite_transaction_mode: None,
    })
    .await
}

/// Liveness of the database for `/readyz`.
/// On SQLite, "ready" means writes are possible: the write lock is taken and given back
/// (held by another process, the probe's short busy timeout fails and `/readyz` says 503).
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        return begin_write(db).await?.rollback().await;
    }
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces_are_powers_of_two_and_cover_every_row_once() {
        let rows: Vec<usize> = (0..1000).collect();
        for n in [0, 1, 2, 3, 45, 511, 512, 1000] {
            let sizes: Vec<usize> = super::pieces(&rows[..n], 256).map(<[usize]>::len).collect();
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= 256), "{n}: {sizes:?}");
            let joined: Vec<usize> = super::pieces(&rows[..n], 256).flatten().copied().collect();
            assert_eq!(joined, rows[..n]);
        }
    }
}
