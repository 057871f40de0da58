//! Throttles every instance shares, for the limits that guard secrets (receipt codes,
//! passwords, reset links): a guesser spreading attempts over several instances gets no more
//! than one instance would give. One row per key holds a token bucket as GCRA does: the time
//! at which the bucket is full again. `burst` attempts at once, then one per `period/burst`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

/// A limit: `burst` attempts, refilled one by one over `period_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub burst: u32,
    pub period_ms: i64,
}

/// Counts one attempt on each of `buckets` (key, limit) at `now_ms`, in one transaction:
/// `Ok(Err(seconds))` when one of them is empty (then nothing is counted), with the seconds
/// until an attempt is allowed again.
pub async fn hit(db: &DatabaseConnection, buckets: &[(&str, Bucket)], now_ms: i64) -> Result<Result<(), u64>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let (p1, p2) = if postgres { ("$1", "$2") } else { ("?", "?") };
    let txn = super::begin_write(db).await?;
    if postgres {
        // A crash may forget the last few attempts counted; no request waits for a log
        // flush to count one.
        txn.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
    }
    let mut updates = Vec::with_capacity(buckets.len());
    for (key, b) in buckets {
        let burst = i64::from(b.burst.max(1));
        let interval = (b.period_ms / burst).max(1);
        let tolerance = interval * (burst - 1);
        // The row exists before it is locked, so two first attempts at once both count.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO throttles (key, full_at_ms) VALUES ({p1}, 0) ON CONFLICT (key) DO NOTHING"),
            [Value::from(*key)],
        ))
        .await?;
        let lock = if postgres { " FOR UPDATE" } else { "" };
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT full_at_ms FROM throttles WHERE key = {p1}{lock}"),
                [Value::from(*key)],
            ))
            .await?;
        let full_at: i64 = row.map(|r| r.try_get("", "full_at_ms")).transpose()?.unwrap_or(0);
        let full_at = full_at.max(now_ms);
        if full_at - now_ms > tolerance {
            txn.rollback().await?;
            let wait_ms = full_at - now_ms - tolerance;
            return Ok(Err(u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000).max(1)));
        }
        updates.push((*key, full_at + interval));
    }
    for (key, full_at) in updates {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("UPDATE throttles SET full_at_ms = {p1} WHERE key = {p2}"),
            [Value::from(full_at), Value::from(key)],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(Ok(()))
}

/// Deletes the buckets that are full again: they say nothing a missing row does not.
pub async fn sweep(db: &DatabaseConnection, now_ms: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let p1 = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM throttles WHERE full_at_ms < {p1}"),
            [Value::from(now_ms)],
        ))
        .await?;
    Ok(done.rows_affected())
}
