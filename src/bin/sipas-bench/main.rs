//! Benchmarks: loads N synthetic responses (22 answers each) across a three-level tree of
//! 300 units, then either times the rankings of every commune for one year read from
//! tallies against the same figures recomputed by scanning the raw answers (`--mode index`),
//! or streams the microdata export as CSV and XLSX (`--mode exports`, in a fresh process
//! with `--reuse` so that peak memory is the export's). Prints figures; asserts nothing.
//! Run through `scripts/bench-indices.sh` and `scripts/bench-exports.sh`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sipas::config::{Secret, Settings};
use sipas::forms::submission::ValidSubmission;
use sipas::forms::{Channel, RespondentType};
use sipas::index::engine;
use sipas::index::period::Period;
use sipas::index::report::{self, Context, Filters, RankingRequest};
use sipas::index::tally::Tally;
use sipas::startup::{AppState, prepare};
use sipas::store;
use sipas::units::Level;
use sipas::units::import::UnitRow;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    responses: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// `index`, `exports`, `load` (only load the data), `national` (the country's tree and a
    /// year of `--responses` filed into tallies), or for `scripts/bench-ingest.sh`:
    /// `ingest` (post to a running service), `sqlite-ceiling`, `pgbench-script`.
    #[arg(long, default_value = "index")]
    mode: String,
    /// Keep the responses already in the database instead of loading new ones.
    #[arg(long)]
    reuse: bool,
    /// `get`: the paths to request, at random (comma-separated), e.g. `/healthz`.
    #[arg(long, default_value = "/healthz")]
    paths: String,
    /// `ingest`: the service's address (host:port), or several, comma-separated (instances
    /// of one service: the connections are dealt out among them).
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: String,
    /// `ingest`: concurrent connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// A streaming replica for the reads of figures (`--mode reads`), as the service's
    /// `read_database_url`.
    #[arg(long)]
    read_database_url: Option<String>,
    /// `ingest` and `sqlite-ceiling`: how long to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

mod ingest;
mod national;

/// The ingest modes: nothing is loaded, the service (or the ceiling) writes.
async fn ingest_main(args: &Args) -> anyhow::Result<()> {
    use sea_orm::{Database, EntityTrait, QuerySelect};
    let db = Database::connect(&args.database_url).await?;
    let ids: Vec<i32> = sipas::entities::unit::Entity::find()
        .select_only()
        .column(sipas::entities::unit::Column::Id)
        .into_tuple()
        .all(&db)
        .await?;
    db.close().await?;
    anyhow::ensure!(!ids.is_empty(), "no units: run with --mode load --responses 0 first");
    let label = format!("{} connections", args.connections);
    match args.mode.as_str() {
        "ingest" => {
            let codes: Vec<String> = units()
                .into_iter()
                .filter(|u| u.level == "commune" || u.level == "department")
                .map(|u| u.code)
                .collect();
            ingest::http(&args.target, &args.database_url, &codes, args.connections, args.seconds)
                .await?
                .print(&format!("service, {label}"));
        }
        "sqlite-ceiling" => {
            let path = args.database_url.trim_start_matches("sqlite://");
            let path = path.split('?').next().unwrap_or(path);
            ingest::sqlite_ceiling(path, &ids, args.seconds).await?.print("raw SQLite loop, one writer");
        }
        _ => print!("{}", ingest::pgbench_script(&ids)),
    }
    Ok(())
}

const CODES: [&str; 22] = [
    "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6", "D1", "D2", "D3", "E1",
    "E2", "E3", "E4",
];

fn units() -> Vec<UnitRow> {
    let mut rows = vec![row("BTR", None, "province", "Tỉnh Bến Tre (dữ liệu thử)")];
    for d in 1..=5 {
        rows.push(row(&format!("BTR.S{d:02}"), Some("BTR"), "department", &format!("Sở {d}")));
    }
    for h in 1..=14 {
        let district = format!("BTR.H{h:02}");
        rows.push(row(&district, Some("BTR"), "district", &format!("Huyện {h}")));
        for x in 1..=20 {
            rows.push(row(&format!("{district}.X{x:02}"), Some(&district), "commune", &format!("Xã {h}-{x}")));
        }
    }
    rows
}

pub(crate) fn row(code: &str, parent: Option<&str>, level: &str, name: &str) -> UnitRow {
    UnitRow {
        line: 0,
        code: code.into(),
        parent: parent.map(String::from),
        level: level.into(),
        name_vi: name.into(),
        name_en: None,
    }
}

pub(crate) fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The rankings of the communes within `within` as the API makes them: 2025 with the year
/// before, intervals, the three weakest items, the gate at k = 10.
pub(crate) async fn rank_communes(
    state: &AppState,
    tree: &sipas::units::UnitTree,
    form: &sipas::index::catalog::Versioned,
    within: &sipas::entities::unit::Model,
    period: Period,
) -> anyhow::Result<report::Rankings> {
    let ctx = Context::settled(state, tree).await;
    let request =
        RankingRequest { form, level: Level::Commune, within, period, filters: Filters::default(), k: 10, weakest: 3 };
    Ok(report::rankings(&ctx, &request).await?)
}

/// One indices report as the API makes it: the tree read, the figures computed and gated.
pub(crate) async fn index_once(
    state: &AppState,
    form: &sipas::index::catalog::Versioned,
    unit: &sipas::entities::unit::Model,
    period: Period,
    breakdown: Option<report::Breakdown>,
) -> anyhow::Result<()> {
    let tree = store::units::tree(&state.db).await?;
    let ctx = Context::settled(state, &tree).await;
    let request = report::IndexRequest {
        form,
        unit,
        period,
        filters: Filters::default(),
        rollup: report::Rollup::Pooled,
        breakdown,
        k: 10,
    };
    report::index(&ctx, &request).await?;
    Ok(())
}

pub(crate) fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) struct Generator {
    pub(crate) rng: StdRng,
    pub(crate) quality: HashMap<i32, f64>,
    pub(crate) targets: Vec<i32>,
    pub(crate) start: NaiveDate,
}

impl Generator {
    pub(crate) fn next(&mut self) -> ValidSubmission {
        let unit_id = self.targets[self.rng.random_range(0..self.targets.len())];
        let q = self.quality.get(&unit_id).copied().unwrap_or(0.7);
        let mut answers = Vec::with_capacity(22);
        for code in CODES {
            if self.rng.random_bool(0.05) {
                continue;
            }
            let v = if self.rng.random_bool(q) {
                4 + i16::from(self.rng.random_bool(0.4))
            } else {
                self.rng.random_range(1..=3)
            };
            answers.push((code.to_string(), v));
        }
        let services = ["ho_tich", "chung_thuc", "dat_dai", "xay_dung", "kinh_doanh", "khac"];
        ValidSubmission {
            submission_id: Uuid::new_v4(),
            unit_id,
            form_id: "sipas-2017".into(),
            form_version: 1,
            respondent_type: if self.rng.random_bool(0.8) {
                RespondentType::Citizen
            } else {
                RespondentType::Organization
            },
            channel: Channel::ALL[self.rng.random_range(0..Channel::ALL.len())],
            survey_date: self.start + TimeDelta::days(self.rng.random_range(0..731)),
            service: self.rng.random_bool(0.7).then(|| services[self.rng.random_range(0..services.len())].to_string()),
            demographics: BTreeMap::new(),
            comment: None,
            answers,
            body_hash: String::new(),
            code_hash: None,
            code_units: Vec::new(),
            flagged: false,
        }
    }
}

/// The same rankings values computed from a GROUP BY over the raw answers.
async fn raw_scan(state: &AppState, period: &Period, ids: &[i32]) -> anyhow::Result<HashMap<i32, f64>> {
    let db = &state.db;
    let backend = db.get_database_backend();
    let (from, to) = (period.from.to_string(), period.to.to_string());
    let date = |d: &str| match backend {
        DbBackend::Postgres => format!("DATE '{d}'"),
        _ => format!("'{d}'"),
    };
    let counts = db
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT r.unit_id AS u, a.item_code AS c, a.value AS v, COUNT(*) AS n FROM answers a \
                 JOIN responses r ON r.id = a.response_id WHERE r.form_id = 'sipas-2017' \
                 AND r.survey_date BETWEEN {} AND {} GROUP BY r.unit_id, a.item_code, a.value",
                date(&from),
                date(&to)
            ),
        ))
        .await?;
    let responses = db
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT unit_id AS u, COUNT(*) AS n FROM responses WHERE form_id = 'sipas-2017' \
                 AND survey_date BETWEEN {} AND {} GROUP BY unit_id",
                date(&from),
                date(&to)
            ),
        ))
        .await?;
    let version = state.catalog.get("sipas-2017", 1).ok_or_else(|| anyhow::anyhow!("no form"))?;
    let layout = &version.layout;
    let mut tallies: HashMap<i32, Tally> = HashMap::new();
    for r in &responses {
        let (u, n): (i32, i64) = (r.try_get("", "u")?, r.try_get("", "n")?);
        tallies.entry(u).or_insert_with(|| Tally::empty(layout)).data[0] = n as u64;
    }
    for r in &counts {
        let (u, c, v, n): (i32, String, i16, i64) =
            (r.try_get("", "u")?, r.try_get("", "c")?, r.try_get("", "v")?, r.try_get("", "n")?);
        if let Some(slot) = layout.slot(&c)
            && let Some(p) = slot.levels.iter().position(|l| *l == v)
        {
            tallies.entry(u).or_insert_with(|| Tally::empty(layout)).data[slot.offset + p] += n as u64;
        }
    }
    Ok(ids
        .iter()
        .filter_map(|id| {
            let f = engine::compute(&version.form, layout, tallies.get(id)?, 0);
            Some((*id, f.index?.value))
        })
        .collect())
}

pub(crate) async fn database_size(state: &AppState, url: &str) -> anyhow::Result<f64> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let size: u64 =
            ["", "-wal"].iter().filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok()).map(|m| m.len()).sum();
        return Ok(size as f64 / 1024.0 / 1024.0);
    }
    let row = state
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT pg_database_size(current_database()) AS s"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no size"))?;
    Ok(row.try_get::<i64>("", "s")? as f64 / 1024.0 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == "get" {
        let paths: Vec<String> = args.paths.split(',').map(String::from).collect();
        let run = ingest::get(&args.target, &paths, args.connections, args.seconds).await?;
        let what = match paths.as_slice() {
            [one] => one.clone(),
            many => format!("{} … ({} paths at random)", many[0], many.len()),
        };
        run.print(&format!("GET {what}, {} connections", args.connections));
        return Ok(());
    }
    if matches!(args.mode.as_str(), "ingest" | "sqlite-ceiling" | "pgbench-script") {
        return ingest_main(&args).await;
    }
    let settings = Settings {
        database_url: Secret::new(args.database_url.clone()),
        read_database_url: args.read_database_url.clone().map(Secret::new),
        ..Settings::default()
    };
    let state = prepare(&settings).await?;
    let backend = if args.database_url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" };
    if args.mode == "national" {
        return national::run(&state, &args, backend).await;
    }
    store::units::import(&state.db, units()).await?.map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let tree = store::units::tree(&state.db).await?;
    let targets: Vec<i32> =
        tree.all().iter().filter(|u| u.level == "commune" || u.level == "department").map(|u| u.id).collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let quality = targets.iter().map(|id| (*id, rng.random_range(0.5..0.95))).collect();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).ok_or_else(|| anyhow::anyhow!("date"))?;
    let mut generator = Generator { rng, quality, targets, start };

    let existing =
        store::responses::count_in(&state.db, &tree.subtree(tree.by_code("BTR").map_or(0, |u| u.id))).await?;
    if args.reuse && existing > 0 {
        if args.mode == "exports" {
            return exports(&state, &tree, existing, backend).await;
        }
        if args.mode == "reads" {
            return reads(&state, &tree, &args).await;
        }
        anyhow::bail!("--reuse is for --mode exports and --mode reads");
    }
    println!("sipas {} benchmark on {backend}: {} responses, {} units", args.mode, args.responses, tree.all().len());
    let started = Instant::now();
    let mut loaded = 0;
    while loaded < args.responses {
        let batch: Vec<ValidSubmission> = (0..20_000.min(args.responses - loaded)).map(|_| generator.next()).collect();
        let with_ids: Vec<(Uuid, &ValidSubmission)> = batch.iter().map(|s| (Uuid::new_v4(), s)).collect();
        let txn = store::begin_write(&state.db).await?;
        store::responses::insert_without_tallies(&txn, &with_ids).await?;
        txn.commit().await?;
        loaded += batch.len();
    }
    let load = started.elapsed();
    let started = Instant::now();
    let (responses, cells) = store::tallies::rebuild(&state.db, &state.catalog).await?;
    let rebuild = started.elapsed();
    println!(
        "  load (bulk inserts): {:.1} s, {:.0} responses/s; tallies rebuild: {:.1} s for {responses} responses, {cells} cells",
        load.as_secs_f64(),
        args.responses as f64 / load.as_secs_f64(),
        rebuild.as_secs_f64()
    );

    if args.mode == "load" {
        return Ok(());
    }
    if args.mode == "exports" {
        return exports(&state, &tree, args.responses as u64, backend).await;
    }

    // The live path: one submission = response + answers + its 17 tally cells, committed.
    let mut writes = Vec::new();
    for _ in 0..300 {
        let mut s = generator.next();
        s.survey_date = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or(s.survey_date);
        let t = Instant::now();
        store::responses::insert(&state.db, &state.catalog, &s).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        writes.push(t.elapsed());
    }
    println!("  one submission with its tallies, committed: median {:.2} ms (300 in a row)", ms(median(writes)));

    let form = state.catalog.get("sipas-2017", 1).ok_or_else(|| anyhow::anyhow!("no form"))?.clone();
    let period = Period::year(2025).ok_or_else(|| anyhow::anyhow!("period"))?;
    let mut timings = Vec::new();
    let mut result = None;
    for _ in 0..9 {
        let t = Instant::now();
        let tree = store::units::tree(&state.db).await?;
        let root = tree.by_code("BTR").ok_or_else(|| anyhow::anyhow!("root"))?.clone();
        let r = rank_communes(&state, &tree, &form, &root, period).await?;
        timings.push(t.elapsed());
        result = Some((r, tree));
    }
    let (rankings, tree) = result.ok_or_else(|| anyhow::anyhow!("no run"))?;
    println!(
        "  first rankings call, the publication gate deciding the province's lattices (2025 and 2024): {:.1} ms",
        ms(timings[0])
    );
    let from_tallies = median(timings.clone());
    println!(
        "  rankings of {} communes for 2025 (with 2024, intervals, weakest items), from tallies: median {:.1} ms, min {:.1} ms",
        rankings.units.len(),
        ms(from_tallies),
        ms(timings.iter().min().copied().unwrap_or_default())
    );

    let ids: Vec<i32> = rankings.units.iter().filter_map(|r| tree.by_code(&r.unit).map(|u| u.id)).collect();
    let t = Instant::now();
    let now = raw_scan(&state, &period, &ids).await?;
    let _before = raw_scan(&state, &period.previous(), &ids).await?;
    let scan = t.elapsed();
    let max_diff = rankings
        .units
        .iter()
        .filter_map(|r| Some((r.value?, now.get(&tree.by_code(&r.unit)?.id)?)))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("  same SIPAS values by scanning raw answers (both years): {:.0} ms", ms(scan));
    println!(
        "  ratio: {:.0}x faster from tallies; largest difference in SIPAS between the two: {max_diff:.1e}",
        scan.as_secs_f64() / from_tallies.as_secs_f64()
    );
    // The indices API's work (one report, gate included) for the province by unit, a
    // commune, and a commune by channel: cached decisions, then right after a new response
    // (which makes the gate decide the province's lattices again).
    let commune = tree.by_code("BTR.H01.X01").ok_or_else(|| anyhow::anyhow!("commune"))?.clone();
    let root = tree.by_code("BTR").ok_or_else(|| anyhow::anyhow!("root"))?.clone();
    for (label, unit, breakdown) in [
        ("province, breakdown=unit", &root, Some(report::Breakdown::Unit)),
        ("a commune", &commune, None),
        ("a commune, breakdown=channel", &commune, Some(report::Breakdown::Channel)),
    ] {
        let mut cached = Vec::new();
        for _ in 0..9 {
            let t = Instant::now();
            index_once(&state, &form, unit, period, breakdown).await?;
            cached.push(t.elapsed());
        }
        let mut fresh = Vec::new();
        for _ in 0..3 {
            let mut s = generator.next();
            s.survey_date = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or(s.survey_date);
            store::responses::insert(&state.db, &state.catalog, &s).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = Instant::now();
            index_once(&state, &form, unit, period, breakdown).await?;
            fresh.push(t.elapsed());
        }
        println!(
            "  indices of {label}, 2025: median {:.1} ms cached; {:.0} ms right after a new response (median of 3)",
            ms(median(cached)),
            ms(median(fresh))
        );
    }

    // One more response, so that every lattice below is decided afresh and timed.
    let mut s = generator.next();
    s.survey_date = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or(s.survey_date);
    store::responses::insert(&state.db, &state.catalog, &s).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("  what the publication gate withholds (each lattice decided afresh after a new response):");
    for line in sipas::publish::cost(&state, 2025).await? {
        println!("    {line}");
    }
    println!(
        "  database size: {:.0} MiB; peak memory of this process: {:.0} MiB",
        database_size(&state, &args.database_url).await?,
        peak_memory_mib()
    );
    Ok(())
}

/// Streams the microdata of every response (CSV, then XLSX) into a sink, as the HTTP
/// handler does, and reports rows per second and the process's peak memory.
async fn exports(state: &AppState, tree: &sipas::units::UnitTree, responses: u64, backend: &str) -> anyhow::Result<()> {
    use sipas::export::files::{stream_csv, stream_xlsx};
    use sipas::export::microdata;
    let root = tree.by_code("BTR").ok_or_else(|| anyhow::anyhow!("no data: run with --mode load first"))?;
    let request = microdata::Request {
        form_id: "sipas-2017".into(),
        within: root.id,
        // A calendar year: the gate publishes calendar periods only.
        period: Period::year(2025).ok_or_else(|| anyhow::anyhow!("period"))?,
        filters: Filters::default(),
        column: sipas::store::tallies::Dim::RespondentType,
        k: 10,
        comments: true,
    };
    let form = state.catalog.get("sipas-2017", 1).ok_or_else(|| anyhow::anyhow!("no form"))?.clone();
    println!(
        "sipas export benchmark on {backend}: microdata of {responses} responses, peak memory at start {:.0} MiB",
        peak_memory_mib()
    );
    for format in ["csv", "xlsx"] {
        let started = Instant::now();
        // Where the HTTP handler reads it: the replica when one is set and current.
        let snapshot = microdata::Snapshot::open(state.figures_db().await, &state.publisher, tree, &request).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
        let sink = tokio::spawn(async move {
            let mut bytes = 0usize;
            while let Some(chunk) = rx.recv().await {
                bytes += chunk.map(|c| c.len()).unwrap_or(0);
            }
            bytes
        });
        let rows = if format == "csv" {
            stream_csv(snapshot, &request, &form, &tx, &std::sync::atomic::AtomicU64::new(0)).await?
        } else {
            stream_xlsx(snapshot, &request, &form, &tx, &std::sync::atomic::AtomicU64::new(0)).await?
        };
        drop(tx);
        let bytes = sink.await?;
        let took = started.elapsed().as_secs_f64();
        println!(
            "  {format}: {rows} rows, {:.0} MiB, {took:.1} s, {:.0} rows/s; peak memory so far {:.0} MiB",
            bytes as f64 / 1024.0 / 1024.0,
            rows as f64 / took,
            peak_memory_mib()
        );
    }
    Ok(())
}

/// `--mode reads --reuse`: the rankings of the communes for 2025 and the microdata export,
/// read where the service reads figures (the replica of `--read-database-url` when it is
/// current, else the primary). `scripts/bench-replica.sh` counts in both servers' logs where
/// the statements went.
async fn reads(state: &AppState, tree: &sipas::units::UnitTree, args: &Args) -> anyhow::Result<()> {
    // The monitor's first look decides whether the replica is current.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let form = state.catalog.get("sipas-2017", 1).ok_or_else(|| anyhow::anyhow!("no form"))?.clone();
    let period = Period::year(2025).ok_or_else(|| anyhow::anyhow!("period"))?;
    let root = tree.by_code("BTR").ok_or_else(|| anyhow::anyhow!("no data: run with --mode load first"))?.clone();
    let mut timings = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        rank_communes(state, tree, &form, &root, period).await?;
        timings.push(t.elapsed());
    }
    let where_ = if args.read_database_url.is_some() { "replica" } else { "primary" };
    println!(
        "reads of figures where the service reads them ({where_}): rankings of 280 communes, 2025: first {:.0} ms, median {:.1} ms",
        ms(timings[0]),
        ms(median(timings))
    );
    let existing = store::responses::count_in(state.figures_db().await, &tree.subtree(root.id)).await?;
    exports(state, tree, existing, where_).await?;
    println!("replica as /readyz shows it: {}", serde_json::to_string(&state.reads.status())?);
    Ok(())
}
