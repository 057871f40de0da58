//! A PostgreSQL streaming replica for reads (`read_database_url`): console pages, indices,
//! rankings, trends and exports read there; every write, and everything a request must see
//! exactly (sessions, codes, the unit tree), stays on the primary.
//!
//! A read goes to the replica only once the replica has replayed everything the primary had
//! committed when the request began (its WAL position), waiting `CATCH_UP` at most; otherwise
//! it goes to the primary. So a figure read after a 201 counts it, on any instance, and a
//! replica that is down, stopped replaying, or far behind only moves its reads back to the
//! primary. A monitor samples both every second for `/readyz` and to skip a replica that is
//! known to be unusable without trying it first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};
use serde::Serialize;

/// How long a read waits for the replica to replay what the primary had when it began.
pub const CATCH_UP: Duration = Duration::from_secs(1);
/// How often the monitor samples the replica and the primary.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What `/readyz` shows of the replica.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Status {
    /// `up` (reads go there), `lagging` (more than `CATCH_UP` behind: reads go to the
    /// primary), `down` (unreachable or not a standby) or `starting` (not sampled yet).
    pub state: &'static str,
    /// The replica holds everything the primary had this many seconds ago at most; none
    /// when down.
    pub lag_seconds: Option<f64>,
    /// WAL bytes the primary has that the replica has not replayed yet.
    pub behind_bytes: Option<i64>,
}

struct Replica {
    db: DatabaseConnection,
    /// The monitor's own connection, so sampling never queues behind exports.
    probe: DatabaseConnection,
    status: Mutex<Status>,
}

impl Replica {
    /// A status is replaced whole, so a panic elsewhere cannot leave it half-written.
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where reads go. Cheap to clone; without a replica every read goes to the primary.
#[derive(Clone, Default)]
pub struct Reads {
    replica: Option<Arc<Replica>>,
}

impl Reads {
    /// Opens the replica's pools (without connecting: a replica that is down at start only
    /// sends reads to the primary until it is back) and starts the monitor.
    pub async fn connect(
        url: Option<&str>,
        max_connections: u32,
        primary: &DatabaseConnection,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Reads, DbErr> {
        let Some(url) = url else { return Ok(Reads::default()) };
        let replica = Arc::new(Replica {
            db: open(url, max_connections).await?,
            probe: open(url, 1).await?,
            status: Mutex::new(Status { state: "starting", lag_seconds: None, behind_bytes: None }),
        });
        runtime.spawn(monitor(Arc::downgrade(&replica), primary.clone()));
        Ok(Reads { replica: Some(replica) })
    }

    /// The replica's state, when one is configured.
    pub fn status(&self) -> Option<Status> {
        self.replica.as_ref().map(|r| r.status().clone())
    }

    /// The connection a read should use: the replica when it has caught up with the primary
    /// as of now, else the primary.
    pub async fn pick<'a>(&'a self, primary: &'a DatabaseConnection) -> &'a DatabaseConnection {
        let Some(replica) = &self.replica else { return primary };
        if replica.status().state != "up" {
            return primary;
        }
        match caught_up(primary, &replica.db).await {
            Ok(true) => &replica.db,
            Ok(false) => {
                tracing::debug!("replica behind, reading from the primary");
                primary
            }
            Err(e) => {
                tracing::warn!("replica unusable, reading from the primary: {e}");
                primary
            }
        }
    }
}

/// A pool whose sessions refuse writes even if the server were a primary (a promoted or
/// misconfigured replica): no write can reach it through the service.
async fn open(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .connect_timeout(Duration::from_secs(2))
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy(true);
    opt.map_sqlx_postgres_opts(|o| o.options([("default_transaction_read_only", "on")]));
    Database::connect(opt).await
}

async fn position(db: &DatabaseConnection, sql: &str) -> Result<Option<i64>, DbErr> {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    row.map_or(Ok(None), |r| r.try_get_by_index::<Option<i64>>(0))
}

/// The primary's flushed position: every acknowledged commit is behind it, and the replica
/// is only ever sent what is flushed (a write position would make reads wait for records
/// of asynchronous commits that matter to no figure).
const PRIMARY_AT: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint";
/// Waits (at most `CATCH_UP`) until the replica has replayed the primary's current position.
async fn caught_up(primary: &DatabaseConnection, replica: &DatabaseConnection) -> Result<bool, DbErr> {
    let target = position(primary, PRIMARY_AT).await?.unwrap_or(i64::MAX);
    let until = Instant::now() + CATCH_UP;
    loop {
        match replayed(replica).await?.map(|(done, _)| done) {
            Some(done) if done >= target => return Ok(true),
            None => return Ok(false),
            Some(_) if Instant::now() >= until => return Ok(false),
            Some(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Samples the primary's position, then the replica's, every second, until the service
/// drops its `Reads`.
async fn monitor(replica: std::sync::Weak<Replica>, primary: DatabaseConnection) {
    loop {
        let Some(r) = replica.upgrade() else { return };
        let status = match (position(&primary, PRIMARY_AT).await, replayed(&r.probe).await) {
            (Ok(Some(at)), Ok(Some((done, age)))) => judge(at, done, age),
            (Err(e), _) => {
                tracing::debug!("primary position unknown: {e}");
                r.status().clone()
            }
            (_, Err(e)) => {
                tracing::debug!("replica unreachable: {e}");
                Status { state: "down", lag_seconds: None, behind_bytes: None }
            }
            _ => Status { state: "down", lag_seconds: None, behind_bytes: None },
        };
        let before = std::mem::replace(&mut *r.status(), status.clone());
        if before.state != status.state {
            tracing::info!(state = status.state, lag_seconds = ?status.lag_seconds, "replica state changed");
        }
        drop(r);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// The replica's replay position and the age of the last transaction it replayed (by the
/// primary's commit time); none when it is not a standby.
async fn replayed(db: &DatabaseConnection) -> Result<Option<(i64, f64)>, DbErr> {
    let sql = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, \
        COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8 WHERE pg_is_in_recovery()";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    match row {
        Some(r) => Ok(r.try_get_by_index::<Option<i64>>(0)?.map(|p| (p, r.try_get_by_index::<f64>(1).unwrap_or(0.0)))),
        None => Ok(None),
    }
}

/// A replica that has replayed the primary's position (sampled just before) is not behind.
/// Otherwise it holds everything the primary committed up to the last transaction it
/// replayed, so that transaction's age bounds how stale it is (an idle primary with one
/// unreplayed write makes this an overestimate, never an underestimate).
fn judge(primary_at: i64, replayed: i64, replay_age: f64) -> Status {
    let lag = if replayed >= primary_at { 0.0 } else { replay_age.max(0.0) };
    let state = if lag > CATCH_UP.as_secs_f64() { "lagging" } else { "up" };
    Status { state, lag_seconds: Some((lag * 10.0).round() / 10.0), behind_bytes: Some((primary_at - replayed).max(0)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_behind_by_the_age_of_its_last_replayed_transaction_unless_it_has_everything() {
        assert_eq!(judge(400, 400, 30.0), Status { state: "up", lag_seconds: Some(0.0), behind_bytes: Some(0) });
        // A standby sampled after the primary may be ahead of that sample.
        assert_eq!(judge(400, 450, 3.0).behind_bytes, Some(0));
        let behind = judge(400, 300, 0.44);
        assert_eq!((behind.state, behind.lag_seconds, behind.behind_bytes), ("up", Some(0.4), Some(100)));
        let further = judge(400, 300, 3.0);
        assert_eq!((further.state, further.lag_seconds), ("lagging", Some(3.0)));
    }
}
