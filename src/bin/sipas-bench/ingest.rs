//! Ingest benchmark parts: a load generator that posts unique submissions to a running
//! service over keep-alive HTTP/1.1 connections (a plain client, so that it costs little of
//! the machine it shares with the service), and the ceiling it is compared with on SQLite:
//! one writer doing the same inserts, one transaction each, with WAL and synchronous=FULL.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{ConnectOptions, Connection};
use sea_orm::{ConnectionTrait, Database, Statement};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use super::CODES;

/// What one timed run measured.
pub struct Run {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub created: u64,
    pub other_2xx: u64,
    pub non_2xx: u64,
    pub stored: u64,
}

impl Run {
    pub fn print(&self, label: &str) {
        println!(
            "{label}: {:.0}/s p50 {:.1} ms p99 {:.1} ms; 201 {} other 2xx {} non-2xx {}; rows stored {}",
            self.per_second, self.p50_ms, self.p99_ms, self.created, self.other_2xx, self.non_2xx, self.stored
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn count_responses(database_url: &str) -> anyhow::Result<u64> {
    let db = Database::connect(database_url).await?;
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM responses"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    let n: i64 = row.try_get("", "n")?;
    db.close().await?;
    Ok(n as u64)
}

/// Reads one survey page to get its signed token: the load then posts as a citizen who
/// filled the page in (the service must be run with a short `min_fill_seconds`).
async fn form_token(addr: &str, unit: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET /s/{unit} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut page = Vec::new();
    stream.read_to_end(&mut page).await?;
    let page = String::from_utf8_lossy(&page);
    let marker = "name=\"t\" value=\"";
    let start = page.find(marker).ok_or_else(|| anyhow::anyhow!("no form token on /s/{unit}"))? + marker.len();
    let end = page[start..].find('"').ok_or_else(|| anyhow::anyhow!("unterminated token"))?;
    Ok(page[start..start + end].to_string())
}

fn body(rng: &mut StdRng, unit: &str, token: &str) -> String {
    let mut answers = String::new();
    for (i, code) in CODES.iter().enumerate() {
        if i > 0 {
            answers.push(',');
        }
        answers.push_str(&format!("\"{code}\":{}", rng.random_range(1..=5)));
    }
    let respondent = if rng.random_bool(0.8) { "citizen" } else { "organization" };
    let channel = ["in_person", "online", "phone"][rng.random_range(0..3)];
    format!(
        "{{\"submission_id\":\"{}\",\"unit\":\"{unit}\",\"form\":\"sipas-2017\",\"respondent_type\":\"{respondent}\",\
         \"channel\":\"{channel}\",\"form_token\":\"{token}\",\"answers\":{{{answers}}}}}",
        Uuid::new_v4()
    )
}

/// Sends one request on a kept-alive connection and reads the status line and body.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow::anyhow!("bad status"))?;
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// Sends the requests `next` makes (given the connection's random generator) on
/// `connections` kept-alive connections until `seconds` have passed; returns each
/// request's latency and status (0: the connection broke and was opened again), and the
/// time taken.
async fn drive(
    addr: &str,
    connections: usize,
    seconds: f64,
    next: impl Fn(&mut StdRng) -> String + Clone + Send + 'static,
) -> anyhow::Result<(Vec<Duration>, Vec<u16>, f64)> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Several instances (comma-separated): the connections are dealt out among them.
    let addrs: Vec<String> = addr.split(',').map(str::to_string).collect();
    for c in 0..connections {
        let (addr, next) = (addrs[c % addrs.len()].clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64 ^ u64::from(std::process::id()));
            let mut stream = TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::new();
            let (mut latencies, mut statuses) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let request = next(&mut rng);
                let t = Instant::now();
                let status = match exchange(&mut stream, request.as_bytes(), &mut buf).await {
                    Ok(s) => s,
                    Err(_) => {
                        stream = TcpStream::connect(&addr).await?;
                        stream.set_nodelay(true)?;
                        0
                    }
                };
                latencies.push(t.elapsed());
                statuses.push(status);
            }
            anyhow::Ok((latencies, statuses))
        }));
    }
    let (mut latencies, mut statuses) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, s) = t.await??;
        latencies.extend(l);
        statuses.extend(s);
    }
    latencies.sort();
    Ok((latencies, statuses, started.elapsed().as_secs_f64()))
}

/// Posts unique submissions to `units` at random from `connections` connections for
/// `seconds`, and counts the rows the database gained meanwhile.
pub async fn http(
    addr: &str,
    database_url: &str,
    units: &[String],
    connections: usize,
    seconds: f64,
) -> anyhow::Result<Run> {
    // One token serves every instance: they share the signing secret (in the database).
    let first = addr.split(',').next().unwrap_or(addr);
    let token = form_token(first, &units[0]).await?;
    // The token must be older than the service's min_fill_seconds (the script sets 1).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = count_responses(database_url).await?;
    let (host, units) = (first.to_string(), units.to_vec());
    let (latencies, statuses, elapsed) = drive(addr, connections, seconds, move |rng| {
        let unit = &units[rng.random_range(0..units.len())];
        let json = body(rng, unit, &token);
        format!(
            "POST /api/v1/responses HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}",
            json.len()
        )
    })
    .await?;
    let created = statuses.iter().filter(|s| **s == 201).count() as u64;
    let ok = statuses.iter().filter(|s| (200..300).contains(*s)).count() as u64;
    Ok(Run {
        per_second: ok as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        created,
        other_2xx: ok - created,
        non_2xx: statuses.len() as u64 - ok,
        stored: count_responses(database_url).await? - before,
    })
}

/// GETs `paths`, at random, from `connections` kept-alive connections for `seconds`, asking
/// for gzip as phones do.
pub async fn get(addr: &str, paths: &[String], connections: usize, seconds: f64) -> anyhow::Result<Run> {
    let (host, paths) = (addr.to_string(), paths.to_vec());
    let (latencies, statuses, elapsed) = drive(addr, connections, seconds, move |rng| {
        let path = &paths[rng.random_range(0..paths.len())];
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n")
    })
    .await?;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    Ok(Run {
        per_second: ok as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        created: 0,
        other_2xx: ok,
        non_2xx: statuses.len() as u64 - ok,
        stored: 0,
    })
}

/// The SQLite ceiling: one connection, one transaction per response (the response row and
/// its 22 answers in one multi-row insert), WAL and synchronous=FULL, as the service opens
/// the file. Writes into the same tables of the same file as the service.
pub async fn sqlite_ceiling(path: &str, unit_ids: &[i32], seconds: f64) -> anyhow::Result<Run> {
    let before = count_responses(&format!("sqlite://{path}")).await?;
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let answers_sql = format!(
        "INSERT INTO answers (response_id, item_code, value) VALUES {}",
        (0..CODES.len()).map(|_| "(?, ?, ?)").collect::<Vec<_>>().join(", ")
    );
    let mut rng = StdRng::seed_from_u64(11);
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    while Instant::now() < deadline {
        let t = Instant::now();
        let id = Uuid::new_v4();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sea_orm::sqlx::query(
            "INSERT INTO responses (id, submission_key, body_hash, unit_id, form_id, form_version, survey_date, \
             respondent_type, channel, flagged) VALUES (?, ?, ?, ?, 'sipas-2017', 1, '2026-12-01', 'citizen', \
             'online', 0)",
        )
        .bind(id)
        .bind(hex::encode(Uuid::new_v4().as_bytes()))
        .bind(hex::encode(Uuid::new_v4().as_bytes()))
        .bind(unit_ids[rng.random_range(0..unit_ids.len())])
        .execute(&mut *tx)
        .await?;
        // Built from constants only: 22 placeholders.
        let mut q = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(answers_sql.clone()));
        for code in CODES {
            q = q.bind(id).bind(code).bind(rng.random_range(1i16..=5));
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    conn.close().await?;
    latencies.sort();
    let n = latencies.len() as u64;
    Ok(Run {
        per_second: n as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        created: n,
        other_2xx: 0,
        non_2xx: 0,
        stored: count_responses(&format!("sqlite://{path}")).await? - before,
    })
}

/// The pgbench script with the same inserts: one response and its 22 answers per
/// transaction, into the same tables as the service, at a random unit of `unit_ids`; as one
/// statement (the answers selected from the inserted response), run prepared: the plainest
/// and fastest way to do it, so the highest ceiling.
pub fn pgbench_script(unit_ids: &[i32]) -> String {
    let (lo, hi) = (unit_ids.iter().min().copied().unwrap_or(1), unit_ids.iter().max().copied().unwrap_or(1));
    let codes: Vec<String> = CODES.iter().map(|c| format!("'{c}'")).collect();
    format!(
        "\\set u random({lo}, {hi})\n\
         BEGIN;\n\
         WITH r AS (INSERT INTO responses (id, submission_key, body_hash, unit_id, form_id, form_version, \
         survey_date, respondent_type, channel, flagged) VALUES (gen_random_uuid(), md5(random()::text) || \
         md5(random()::text), md5(random()::text) || md5(random()::text), :u, 'sipas-2017', 1, DATE '2026-12-01', \
         'citizen', 'online', false) RETURNING id) \
         INSERT INTO answers (response_id, item_code, value) SELECT r.id, c, (random() * 4)::int2 + 1 \
         FROM r, unnest(ARRAY[{}]) AS c;\n\
         END;\n",
        codes.join(", ")
    )
}
