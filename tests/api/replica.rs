//! A real streaming replica: a private primary cluster, `pg_basebackup -R` of it started on
//! another port, and the service given both. Reads of figures go to the replica once it has
//! replayed what the primary had; a replica that stops replaying or stops altogether only
//! sends them back to the primary, and `/readyz` says how far behind it is.
//!
//! PostgreSQL lane only (`TEST_DATABASE_URL` set); there it needs the server's programs
//! (`initdb`, `pg_ctl`, `pg_basebackup`) and fails without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use sipas::auth::Role;
use sipas::config::Secret;

use crate::helpers::*;

fn bindir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("pg_basebackup").exists()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    versions.pop().expect("PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) under /usr/lib/postgresql")
}

/// Two clusters in a temporary folder owned by the `postgres` user (the server refuses to
/// run as root): a primary and its streaming replica. Stopped and deleted when dropped.
struct Clusters {
    base: PathBuf,
    bin: PathBuf,
    primary_port: u16,
    replica_port: u16,
}

fn as_postgres(bin: &Path, program: &str) -> Command {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    };
    cmd.current_dir("/");
    cmd
}

fn run(mut cmd: Command) {
    let out = cmd.output().expect("run a PostgreSQL program");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Clusters {
    fn start() -> Clusters {
        let bin = bindir();
        let mut mktemp = as_postgres(Path::new("/usr/bin"), "mktemp");
        mktemp.args(["-d", "/tmp/sipas-replica.XXXXXX"]);
        let out = mktemp.output().expect("mktemp");
        let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let c = Clusters { base, bin, primary_port: free_port(), replica_port: free_port() };
        let mut initdb = as_postgres(&c.bin, "initdb");
        initdb.arg("-D").arg(c.base.join("primary")).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb);
        c.pg_ctl("primary", c.primary_port, "start");
        let mut backup = as_postgres(&c.bin, "pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-p", &c.primary_port.to_string(), "-U", "postgres", "-R", "-X", "stream"])
            .args(["-c", "fast", "-D"])
            .arg(c.base.join("replica"));
        run(backup);
        c.pg_ctl("replica", c.replica_port, "start");
        c
    }

    fn pg_ctl(&self, which: &str, port: u16, action: &str) {
        let mut cmd = as_postgres(&self.bin, "pg_ctl");
        cmd.arg("-D").arg(self.base.join(which)).arg("-w").args(["-t", "60"]);
        if action == "start" {
            // fsync off: durability is not what this test is about, and it is faster.
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off \
                 -c max_connections=60 -c hot_standby_feedback=on -c log_statement=all",
                self.base.display()
            );
            cmd.arg("-l").arg(self.base.join(format!("{which}.log"))).args(["-o", &opts, "start"]);
        } else {
            cmd.args(["-m", "immediate", "stop"]);
        }
        run(cmd);
    }

    fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }
}

impl Drop for Clusters {
    fn drop(&mut self) {
        for which in ["replica", "primary"] {
            if self.base.join(which).join("postmaster.pid").exists() {
                let mut cmd = as_postgres(&self.bin, "pg_ctl");
                cmd.arg("-D").arg(self.base.join(which)).args(["-m", "immediate", "-w", "stop"]);
                let _ = cmd.output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Statements of `which` server that read `table` so far, from its log (both servers log
/// every statement: the statistics views would only say so after idle connections flush).
fn reads(clusters: &Clusters, which: &str, table: &str) -> usize {
    let log = std::fs::read_to_string(clusters.base.join(format!("{which}.log"))).unwrap_or_default();
    let quoted = format!("\"{table}\"");
    log.lines()
        .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:"))
        .filter(|l| l.contains(&quoted) && l.contains("SELECT"))
        .filter(|l| !["INSERT", "UPDATE", "DELETE"].iter().any(|w| l.contains(w)))
        .count()
}

/// Waits until `check` holds of `/readyz`'s replica detail (10 s at most).
async fn replica_becomes(app: &TestApp, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let res = app.get("/readyz").await;
        assert_eq!(res.status(), 200, "a replica's state never makes the service unready");
        let body: Value = res.json().await.unwrap();
        if check(&body["replica"]) {
            return body["replica"].clone();
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the replica never became {what}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn n(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app.get_as(query, token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["n"].clone()
}

#[tokio::test]
async fn figures_are_read_on_a_caught_up_replica_and_from_the_primary_when_it_lags_or_is_down() {
    if std::env::var("TEST_DATABASE_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("replica test: PostgreSQL lane only (TEST_DATABASE_URL unset)");
        return;
    }
    let clusters = Clusters::start();
    let primary_url = Clusters::url(clusters.primary_port);
    let replica_url = Clusters::url(clusters.replica_port);
    let app = spawn_app_at(&primary_url, |s| s.read_database_url = Some(Secret::new(replica_url.clone()))).await;
    let replica = Database::connect(&replica_url).await.unwrap();
    replica_becomes(&app, "up", |r| r["state"] == "up").await;

    app.seed_reference_units().await;
    let token = app.login_as(Role::Admin, None).await;
    let year = chrono::Datelike::year(&sipas::vietnam_today());
    let query = format!("/api/v1/indices?unit=QNM.TK.AM&period={year}");
    for _ in 0..12 {
        assert_eq!(app.submit(&valid_submission("QNM.TK.AM")).await.status(), 201);
    }

    // Read at once: the replica is waited for, so the figure counts every 201.
    let (on_replica, on_primary) = (reads(&clusters, "replica", "tallies"), reads(&clusters, "primary", "tallies"));
    assert_eq!(n(&app, &token, &query).await, 12);
    assert!(reads(&clusters, "replica", "tallies") > on_replica, "the figure was not read on the replica");
    assert_eq!(reads(&clusters, "primary", "tallies"), on_primary, "the figure was read on the primary");

    // An export reads its rows on the replica and writes its audit entry on the primary.
    let (on_replica, on_primary) = (reads(&clusters, "replica", "answers"), reads(&clusters, "primary", "answers"));
    let res = app.get_as(&format!("/api/v1/exports/microdata.csv?within=QNM.TK&period={year}"), &token).await;
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 13, "a header and 12 rows: {csv}");
    assert!(reads(&clusters, "replica", "answers") > on_replica, "the export did not read on the replica");
    assert_eq!(reads(&clusters, "primary", "answers"), on_primary, "the export read on the primary");
    let audited = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*)::bigint FROM audit_log WHERE action = 'export'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(audited, 1);

    // Replay paused: the replica falls behind, says so, and reads go to the primary, whose
    // figure is current.
    replica.execute_unprepared("SELECT pg_wal_replay_pause()").await.unwrap();
    for _ in 0..12 {
        assert_eq!(app.submit(&valid_submission("QNM.TK.AM")).await.status(), 201);
    }
    let on_primary = reads(&clusters, "primary", "tallies");
    assert_eq!(n(&app, &token, &query).await, 24, "a lagging replica's figure was served");
    assert!(reads(&clusters, "primary", "tallies") > on_primary, "the primary was not read");
    let lagging = replica_becomes(&app, "lagging", |r| r["state"] == "lagging").await;
    assert!(lagging["lag_seconds"].as_f64().unwrap() > 1.0, "{lagging}");
    assert!(lagging["behind_bytes"].as_i64().unwrap() > 0, "{lagging}");
    replica.execute_unprepared("SELECT pg_wal_replay_resume()").await.unwrap();
    let up = replica_becomes(&app, "up again", |r| r["state"] == "up").await;
    assert!(up["lag_seconds"].as_f64().unwrap() <= 1.0, "{up}");

    // Replica stopped: figures still come, from the primary, and /readyz stays ready.
    clusters.pg_ctl("replica", clusters.replica_port, "stop");
    assert_eq!(n(&app, &token, &query).await, 24);
    replica_becomes(&app, "down", |r| r["state"] == "down" && r["lag_seconds"].is_null()).await;
    assert_eq!(n(&app, &token, &query).await, 24);

    // Back: reads return to it.
    clusters.pg_ctl("replica", clusters.replica_port, "start");
    replica_becomes(&app, "up after its restart", |r| r["state"] == "up").await;
    let on_replica = reads(&clusters, "replica", "tallies");
    assert_eq!(n(&app, &token, &query).await, 24);
    assert!(reads(&clusters, "replica", "tallies") > on_replica, "reads did not return to the replica");
}

#[tokio::test]
async fn a_replica_is_refused_beside_sqlite() {
    let mut settings = sipas::config::Settings {
        read_database_url: Some(Secret::new("postgres://postgres@127.0.0.1:5432/postgres")),
        ..sipas::config::Settings::default()
    };
    let err = settings.check().unwrap_err().to_string();
    assert!(err.contains("read_database_url (SIPAS_READ_DATABASE_URL)"), "{err}");
    settings.database_url = Secret::new("postgres://postgres@127.0.0.1:5432/postgres");
    settings.read_database_url = Some(Secret::new("sqlite://replica.db"));
    assert!(settings.check().is_err());
    settings.read_database_url = Some(Secret::new("postgres://postgres@127.0.0.1:5433/postgres"));
    settings.check().unwrap();
}
