//! `--mode national`: the country's tree since 1 July 2025 (34 provinces, 3,321 communes and
//! wards, 17 departments in each province) and one year of `--responses` responses (10
//! million by default in the script), filed straight into the tallies province by province:
//! rankings and indices read only the tallies, so the raw rows are not written (at 22
//! answers each they would be 220 million rows; their cost is the ingest benchmark's).
//! Prints the tallies' size and the latency of rankings and indices at that scale.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sipas::index::period::Period;
use sipas::index::report;
use sipas::index::tally::Tally;
use sipas::startup::AppState;
use sipas::store;
use sipas::store::tallies::CellKey;

use crate::{Args, Generator, database_size, index_once, median, ms, peak_memory_mib, rank_communes, row};

const PROVINCES: usize = 34;
const COMMUNES: usize = 3_321;
const DEPARTMENTS: usize = 17;

fn tree() -> Vec<sipas::units::import::UnitRow> {
    let mut rows = Vec::new();
    for p in 0..PROVINCES {
        let code = format!("P{:02}", p + 1);
        rows.push(row(&code, None, "province", &format!("Tỉnh {}", p + 1)));
        for d in 1..=DEPARTMENTS {
            rows.push(row(&format!("{code}.S{d:02}"), Some(&code), "department", &format!("Sở {d}")));
        }
        // 3,321 communes over 34 provinces: the first 23 have 98, the others 97.
        let communes = COMMUNES / PROVINCES + usize::from(p < COMMUNES % PROVINCES);
        for x in 1..=communes {
            rows.push(row(&format!("{code}.X{x:03}"), Some(&code), "commune", &format!("Xã {}-{x}", p + 1)));
        }
    }
    rows
}

pub async fn run(state: &AppState, args: &Args, backend: &str) -> anyhow::Result<()> {
    store::units::import(&state.db, tree()).await?.map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let units = store::units::tree(&state.db).await?;
    let provinces: Vec<_> = units.all().iter().filter(|u| u.level == "province").cloned().collect();
    let targets_of = |p: i32| -> Vec<i32> { units.subtree(p).into_iter().filter(|u| *u != p).collect() };
    let all_targets: usize = provinces.iter().map(|p| targets_of(p.id).len()).sum();
    println!(
        "sipas national benchmark on {backend}: {} provinces, {} units, {} responses in 2025",
        provinces.len(),
        units.all().len(),
        args.responses
    );
    let year = NaiveDate::from_ymd_opt(2025, 1, 1).ok_or_else(|| anyhow::anyhow!("date"))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let started = Instant::now();
    let mut filed = 0usize;
    for p in &provinces {
        let targets = targets_of(p.id);
        // Each unit's share of the year's responses, as many for a ward as for a department.
        let n = args.responses * targets.len() / all_targets;
        let quality = targets.iter().map(|id| (*id, rng.random_range(0.5..0.95))).collect();
        let seed = rng.random();
        let mut generator = Generator { rng: StdRng::seed_from_u64(seed), quality, targets, start: year };
        let mut cells: BTreeMap<CellKey, Tally> = BTreeMap::new();
        let mut left = n;
        while left > 0 {
            let batch: Vec<_> = (0..left.min(50_000))
                .map(|_| {
                    let mut s = generator.next();
                    s.survey_date = year + TimeDelta::days(generator.rng.random_range(0..365));
                    s
                })
                .collect();
            left -= batch.len();
            for (key, t) in store::responses::deltas(&state.catalog, &batch)? {
                cells.entry(key).or_insert_with(|| Tally { data: vec![] }).add(&t);
            }
        }
        let txn = store::begin_write(&state.db).await?;
        store::tallies::add(&txn, &cells).await?;
        txn.commit().await?;
        filed += n;
    }
    store::refresh_statistics(&state.db).await?;
    let took = started.elapsed().as_secs_f64();
    let cells: i64 = state
        .db
        .query_one_raw(Statement::from_string(state.db.get_database_backend(), "SELECT COUNT(*) AS n FROM tallies"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("count"))?
        .try_get("", "n")?;
    let size = match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let row = state
                .db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT pg_total_relation_size('tallies')::bigint AS s",
                ))
                .await?
                .ok_or_else(|| anyhow::anyhow!("size"))?;
            row.try_get::<i64>("", "s")? as f64 / 1024.0 / 1024.0
        }
        // Nothing else of size is in the file: the units and the forms are a few hundred KiB.
        _ => database_size(state, &args.database_url).await?,
    };
    println!(
        "  {filed} responses filed in {took:.0} s; tallies: {cells} cells, {size:.0} MiB ({:.0} bytes a cell, {:.1} cells a unit)",
        size * 1024.0 * 1024.0 / cells as f64,
        cells as f64 / units.all().len() as f64
    );

    let form = state.catalog.get("sipas-2017", 1).ok_or_else(|| anyhow::anyhow!("no form"))?.clone();
    let period = Period::year(2025).ok_or_else(|| anyhow::anyhow!("period"))?;
    let rankings = |within: sipas::entities::unit::Model| {
        let (form, units) = (&form, &units);
        async move {
            let t = Instant::now();
            let r = rank_communes(state, units, form, &within, period).await?;
            anyhow::Ok((t.elapsed(), r.units.len()))
        }
    };
    // First call per province: the publication gate decides its lattices; then cached.
    let (mut first, mut again, mut ranked) = (Vec::new(), Vec::new(), 0);
    for p in &provinces {
        let (t, n) = rankings(p.clone()).await?;
        first.push(t);
        ranked += n;
        again.push(rankings(p.clone()).await?.0);
    }
    println!(
        "  rankings of a province's communes for 2025 (with 2024, intervals, weakest items), over the 34 provinces ({ranked} communes ranked): \
         first call median {:.0} ms, max {:.0} ms; cached median {:.1} ms, max {:.1} ms",
        ms(median(first.clone())),
        ms(first.iter().max().copied().unwrap_or_default()),
        ms(median(again.clone())),
        ms(again.iter().max().copied().unwrap_or_default())
    );
    let province = provinces[0].clone();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        index_once(state, &form, &province, period, Some(report::Breakdown::Unit)).await?;
        times.push(t.elapsed());
    }
    println!(
        "  indices of a province by unit ({} units), 2025: median {:.0} ms",
        units.subtree(province.id).len(),
        ms(median(times))
    );
    println!("  peak memory of this process: {:.0} MiB", peak_memory_mib());
    Ok(())
}
