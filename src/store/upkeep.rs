//! Planner statistics and dead rows on a PostgreSQL server whose autovacuum is off (it is
//! off on the machines this was measured on): nothing else would refresh them. A statement
//! prepared while a table was nearly empty keeps a plan that reads it whole, and ingest on a
//! fresh database fell from 2,000 to under 400 submissions/s within a minute until an
//! `ANALYZE`; every fold leaves dead tally versions (40,000 after 5,000 submissions) that
//! only a `VACUUM` removes. Where autovacuum is on, the server does this and the task only
//! reads the counters.
//!
//! The thresholds are autovacuum's defaults: analyse after 50 + 10 % of a table's rows
//! changed, vacuum after 50 + 20 % are dead. Several instances may each start the same
//! `ANALYZE`; the second one waits and does a cheap repeat, which is harmless.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};

/// How often the statistics are looked at: often enough that a fresh table is analysed
/// seconds after it filled, cheap (a read of the server's counters).
const EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, FromQueryResult)]
struct Due {
    relname: String,
    vacuum: bool,
    analyze: bool,
}

/// The service's tables that need a `VACUUM` or an `ANALYZE` and that autovacuum leaves
/// alone (off for the server, or for the table).
const DUE: &str = "SELECT relname, vacuum, \"analyze\" FROM ( \
       SELECT s.relname::text AS relname, \
         s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0) AS vacuum, \
         s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) AS analyze \
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
       WHERE (current_setting('autovacuum') = 'off' OR c.reloptions @> ARRAY['autovacuum_enabled=false']) \
         AND s.schemaname = current_schema() \
     ) t WHERE vacuum OR \"analyze\" ORDER BY relname";

/// One look: vacuums and analyses what is due; returns the tables it touched.
pub async fn once(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(vec![]);
    }
    let due = Due::find_by_statement(Statement::from_string(DbBackend::Postgres, DUE)).all(db).await?;
    let mut touched = Vec::new();
    for t in due {
        // The name comes from the server's catalogue, quoted as an identifier all the same.
        let table = format!("\"{}\"", t.relname.replace('"', "\"\""));
        let sql = match (t.vacuum, t.analyze) {
            (true, true) => format!("VACUUM (ANALYZE) {table}"),
            (true, false) => format!("VACUUM {table}"),
            _ => format!("ANALYZE {table}"),
        };
        db.execute_unprepared(&sql).await?;
        touched.push(t.relname);
    }
    Ok(touched)
}

/// Looks every `EVERY` on `runtime`, for as long as the process runs; a failure (the
/// database away) is logged and the next look tries again.
pub fn spawn(db: DatabaseConnection, runtime: &tokio::runtime::Handle) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            match once(&db).await {
                Ok(touched) if !touched.is_empty() => tracing::debug!(tables = ?touched, "statistics refreshed"),
                Ok(_) => {}
                Err(e) => tracing::warn!("refreshing the planner's statistics failed: {e}"),
            }
        }
    });
}
