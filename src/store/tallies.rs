//! The tallies table. Every submission adds its counts to 17 cells inside its own
//! transaction: its day (with full detail), and its month and its year under each of the 8
//! combinations of detail and `*` (all). So a figure for any period, filter and breakdown
//! reads a handful of rows per unit and never the raw answers.
//!
//! Concurrency: on PostgreSQL missing cells are first inserted empty, then all cells of the
//! change are read `FOR UPDATE` in key order, merged, and written back in one multi-row
//! upsert. On SQLite `BEGIN IMMEDIATE` already serialises writers: read, merge, upsert.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entities::tally;
use crate::index::period::{Grain, Period, Span};
use crate::index::tally::Tally;

/// Detail value meaning "all".
pub const ALL: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub unit_id: i32,
    pub grain: Grain,
    pub period_start: NaiveDate,
    pub form_id: String,
    pub form_version: i32,
    pub respondent_type: String,
    pub channel: String,
    /// `""` when no service was given.
    pub service: String,
}

/// What a response is filed under.
#[derive(Clone, Debug)]
pub struct Filing<'a> {
    pub unit_id: i32,
    pub date: NaiveDate,
    pub form_id: &'a str,
    pub form_version: i32,
    pub respondent_type: &'a str,
    pub channel: &'a str,
    pub service: Option<&'a str>,
}

/// The 17 cells one response counts in.
pub fn cells_of(f: &Filing) -> Vec<CellKey> {
    let service = f.service.unwrap_or("");
    let key = |grain: Grain, rt: &str, ch: &str, sv: &str| CellKey {
        unit_id: f.unit_id,
        grain,
        period_start: grain.start_of(f.date),
        form_id: f.form_id.to_string(),
        form_version: f.form_version,
        respondent_type: rt.to_string(),
        channel: ch.to_string(),
        service: sv.to_string(),
    };
    let mut out = vec![key(Grain::Day, f.respondent_type, f.channel, service)];
    for grain in [Grain::Month, Grain::Year] {
        for rt in [f.respondent_type, ALL] {
            for ch in [f.channel, ALL] {
                for sv in [service, ALL] {
                    out.push(key(grain, rt, ch, sv));
                }
            }
        }
    }
    out
}

fn grain_of(s: &str) -> Grain {
    match s {
        "y" => Grain::Year,
        "m" => Grain::Month,
        _ => Grain::Day,
    }
}

fn model(k: &CellKey, t: &Tally) -> tally::ActiveModel {
    tally::ActiveModel {
        unit_id: Set(k.unit_id),
        grain: Set(k.grain.as_str().to_string()),
        period_start: Set(k.period_start),
        form_id: Set(k.form_id.clone()),
        form_version: Set(k.form_version),
        respondent_type: Set(k.respondent_type.clone()),
        channel: Set(k.channel.clone()),
        service: Set(k.service.clone()),
        responses: Set(i64::try_from(t.responses()).unwrap_or(i64::MAX)),
        data: Set(t.encode()),
    }
}

fn key_of(m: &tally::Model) -> CellKey {
    CellKey {
        unit_id: m.unit_id,
        grain: grain_of(&m.grain),
        period_start: m.period_start,
        form_id: m.form_id.clone(),
        form_version: m.form_version,
        respondent_type: m.respondent_type.clone(),
        channel: m.channel.clone(),
        service: m.service.clone(),
    }
}

const ROWS_PER_STATEMENT: usize = 256;

fn columns() -> [tally::Column; 8] {
    [
        tally::Column::UnitId,
        tally::Column::Grain,
        tally::Column::PeriodStart,
        tally::Column::FormId,
        tally::Column::FormVersion,
        tally::Column::RespondentType,
        tally::Column::Channel,
        tally::Column::Service,
    ]
}

/// Adds `deltas` to the stored cells, inside the caller's write transaction.
pub async fn add(txn: &impl ConnectionTrait, deltas: &BTreeMap<CellKey, Tally>) -> Result<(), DbErr> {
    let keys: Vec<&CellKey> = deltas.keys().collect();
    // SQLite's write transaction excludes every other writer: a cell missing now stays
    // missing until the upsert below writes it.
    let sqlite = txn.get_database_backend() == sea_orm::DbBackend::Sqlite;
    for chunk in super::pieces(&keys, ROWS_PER_STATEMENT) {
        // 1. Make sure every cell exists (empty), so that it can be locked.
        if !sqlite {
            let empty = Tally { data: vec![] };
            tally::Entity::insert_many(chunk.iter().map(|k| model(k, &empty)))
                .on_conflict(OnConflict::columns(columns()).do_nothing().to_owned())
                .exec_without_returning(txn)
                .await?;
        }
        // 2. Lock and read them in key order.
        let stored = read_for_update(txn, chunk).await?;
        // 3. Write back the sums.
        let rows = chunk.iter().map(|k| {
            let mut sum = stored.get(*k).cloned().unwrap_or(Tally { data: vec![] });
            if let Some(d) = deltas.get(*k) {
                sum.add(d);
            }
            model(k, &sum)
        });
        tally::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns(columns())
                    .update_columns([tally::Column::Responses, tally::Column::Data])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Reads the cells of `keys`, locked (`FOR UPDATE` on PostgreSQL, in key order; SQLite's
/// write transaction already excludes other writers). The keys are a `VALUES` list joined
/// to the table's primary key: one cheap plan whatever their number, where an `OR` of
/// hundreds of eight-column conditions cost SQLite more to plan than to run.
async fn read_for_update(txn: &impl ConnectionTrait, keys: &[&CellKey]) -> Result<HashMap<CellKey, Tally>, DbErr> {
    use sea_orm::{DbBackend, Statement, Value};
    let backend = txn.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let mut values: Vec<Value> = Vec::with_capacity(keys.len() * 8);
    let mut rows = Vec::with_capacity(keys.len());
    for k in keys {
        let first = values.len();
        let slots: Vec<String> =
            (1..=8).map(|i| if postgres { format!("${}", first + i) } else { "?".to_string() }).collect();
        rows.push(format!("({})", slots.join(", ")));
        values.extend([
            k.unit_id.into(),
            k.grain.as_str().into(),
            k.period_start.into(),
            k.form_id.clone().into(),
            k.form_version.into(),
            k.respondent_type.clone().into(),
            k.channel.clone().into(),
            k.service.clone().into(),
        ]);
    }
    let lock = if postgres {
        " ORDER BY t.unit_id, t.grain, t.period_start, t.form_id, t.form_version, t.respondent_type, t.channel, \
         t.service FOR UPDATE OF t"
    } else {
        ""
    };
    let sql = format!(
        "SELECT t.unit_id, t.grain, t.period_start, t.form_id, t.form_version, t.respondent_type, t.channel, \
         t.service, t.data FROM (VALUES {}) AS k JOIN tallies t ON t.unit_id = k.column1 AND t.grain = k.column2 \
         AND t.period_start = k.column3 AND t.form_id = k.column4 AND t.form_version = k.column5 \
         AND t.respondent_type = k.column6 AND t.channel = k.column7 AND t.service = k.column8{lock}",
        rows.join(", ")
    );
    let mut out = HashMap::with_capacity(keys.len());
    for row in txn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
        let grain: String = row.try_get("", "grain")?;
        let key = CellKey {
            unit_id: row.try_get("", "unit_id")?,
            grain: grain_of(&grain),
            period_start: row.try_get("", "period_start")?,
            form_id: row.try_get("", "form_id")?,
            form_version: row.try_get("", "form_version")?,
            respondent_type: row.try_get("", "respondent_type")?,
            channel: row.try_get("", "channel")?,
            service: row.try_get("", "service")?,
        };
        let data: Vec<u8> = row.try_get("", "data")?;
        out.insert(key, Tally::decode(&data).unwrap_or(Tally { data: vec![] }));
    }
    Ok(out)
}

/// Writes cells that do not exist yet (a rebuild), in multi-row inserts.
pub async fn insert_fresh(txn: &impl ConnectionTrait, cells: &BTreeMap<CellKey, Tally>) -> Result<(), DbErr> {
    let all: Vec<(&CellKey, &Tally)> = cells.iter().collect();
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        tally::Entity::insert_many(chunk.iter().map(|(k, t)| model(k, t))).exec_without_returning(txn).await?;
    }
    Ok(())
}

pub async fn delete_all(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    tally::Entity::delete_many().exec(txn).await.map(|_| ())
}

/// Every stored cell, for comparisons in tests and checks.
pub async fn snapshot(db: &impl ConnectionTrait) -> Result<BTreeMap<CellKey, Tally>, DbErr> {
    Ok(tally::Entity::find()
        .all(db)
        .await?
        .iter()
        .filter(|m| m.responses > 0)
        .map(|m| (key_of(m), Tally::decode(&m.data).unwrap_or(Tally { data: vec![] })))
        .collect())
}

/// A dimension of detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    RespondentType,
    Channel,
    Service,
}

/// What to read: a form, some units (all when `None`), a period, optional filters, and
/// optionally one dimension to keep apart (a breakdown).
#[derive(Clone, Debug)]
pub struct Selection {
    pub form_id: String,
    pub units: Option<Vec<i32>>,
    pub period: Period,
    pub respondent_type: Option<String>,
    pub channel: Option<String>,
    pub service: Option<String>,
    pub split: Option<Dim>,
}

/// A stored cell as read for a selection: its unit, form version, detail, and counts.
#[derive(Clone, Debug)]
pub struct Row {
    pub unit_id: i32,
    pub form_version: i32,
    pub respondent_type: String,
    pub channel: String,
    pub service: String,
    pub tally: Tally,
}

/// The cells that make up a selection: whole years and months from their `*`-rolled rows,
/// leftover days from the detailed day rows (filtered here). Two queries at most.
pub async fn fetch(db: &impl ConnectionTrait, s: &Selection) -> Result<Vec<Row>, DbErr> {
    let mut buckets = Condition::any();
    let mut days = Condition::any();
    let mut has_buckets = false;
    let mut has_days = false;
    for span in s.period.spans() {
        match span {
            Span::Year(start) | Span::Month(start) => {
                let grain = if matches!(span, Span::Year(_)) { Grain::Year } else { Grain::Month };
                buckets = buckets.add(
                    Condition::all()
                        .add(tally::Column::Grain.eq(grain.as_str()))
                        .add(tally::Column::PeriodStart.eq(start)),
                );
                has_buckets = true;
            }
            Span::Days(from, to) => {
                days = days.add(tally::Column::PeriodStart.between(from, to));
                has_days = true;
            }
        }
    }
    let unit_filter = |c: Condition| match &s.units {
        Some(ids) => c.add(tally::Column::UnitId.is_in(ids.clone())),
        None => c,
    };
    let detail = |col: tally::Column, filter: &Option<String>, dim: Dim| -> Condition {
        match (filter, s.split == Some(dim)) {
            (Some(v), _) => Condition::all().add(col.eq(v.clone())),
            (None, true) => Condition::all().add(col.ne(ALL)),
            (None, false) => Condition::all().add(col.eq(ALL)),
        }
    };
    let mut rows = Vec::new();
    if has_buckets {
        let cond = unit_filter(
            Condition::all()
                .add(tally::Column::FormId.eq(s.form_id.clone()))
                .add(buckets)
                .add(detail(tally::Column::RespondentType, &s.respondent_type, Dim::RespondentType))
                .add(detail(tally::Column::Channel, &s.channel, Dim::Channel))
                .add(detail(tally::Column::Service, &s.service, Dim::Service)),
        );
        rows.extend(read(db, cond).await?);
    }
    if has_days {
        let mut cond = Condition::all()
            .add(tally::Column::FormId.eq(s.form_id.clone()))
            .add(tally::Column::Grain.eq(Grain::Day.as_str()))
            .add(days);
        if let Some(v) = &s.respondent_type {
            cond = cond.add(tally::Column::RespondentType.eq(v.clone()));
        }
        if let Some(v) = &s.channel {
            cond = cond.add(tally::Column::Channel.eq(v.clone()));
        }
        if let Some(v) = &s.service {
            cond = cond.add(tally::Column::Service.eq(v.clone()));
        }
        // Day rows carry full detail: fold the dimensions that are not kept apart.
        for mut row in read(db, unit_filter(cond)).await? {
            if s.respondent_type.is_none() && s.split != Some(Dim::RespondentType) {
                row.respondent_type = ALL.into();
            }
            if s.channel.is_none() && s.split != Some(Dim::Channel) {
                row.channel = ALL.into();
            }
            if s.service.is_none() && s.split != Some(Dim::Service) {
                row.service = ALL.into();
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn read(db: &impl ConnectionTrait, cond: Condition) -> Result<Vec<Row>, DbErr> {
    let rows: Vec<(i32, i32, String, String, String, Vec<u8>)> = tally::Entity::find()
        .select_only()
        .columns([
            tally::Column::UnitId,
            tally::Column::FormVersion,
            tally::Column::RespondentType,
            tally::Column::Channel,
            tally::Column::Service,
            tally::Column::Data,
        ])
        .filter(cond)
        .filter(tally::Column::Responses.gt(0))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(unit_id, form_version, respondent_type, channel, service, data)| Row {
            unit_id,
            form_version,
            respondent_type,
            channel,
            service,
            tally: Tally::decode(&data).unwrap_or(Tally { data: vec![] }),
        })
        .collect())
}

/// Recomputes every tally from the raw answers, unit by unit (memory stays flat), in one
/// write transaction. Returns (responses read, cells written).
pub async fn rebuild(
    db: &sea_orm::DatabaseConnection,
    catalog: &crate::index::catalog::Catalog,
) -> Result<(u64, usize), DbErr> {
    use crate::entities::{response, unit};
    let txn = super::begin_write(db).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // No response is stored or folded while the tallies are recounted: what is counted
        // here and what a fold would add must not overlap (SQLite's write lock already
        // excludes both).
        txn.execute_unprepared("LOCK TABLE responses IN SHARE MODE").await?;
        txn.execute_unprepared("LOCK TABLE unfolded IN EXCLUSIVE MODE").await?;
    }
    // Everything pending is counted below.
    crate::entities::unfolded::Entity::delete_many().exec(&txn).await?;
    delete_all(&txn).await?;
    let unit_ids: Vec<i32> = unit::Entity::find().select_only().column(unit::Column::Id).into_tuple().all(&txn).await?;
    let (mut responses, mut cells) = (0u64, 0usize);
    for unit_id in unit_ids {
        let mut out: BTreeMap<CellKey, Tally> = BTreeMap::new();
        responses += file_stored(&txn, catalog, response::Column::UnitId.eq(unit_id), &mut out).await?;
        cells += out.len();
        insert_fresh(&txn, &out).await?;
    }
    txn.commit().await?;
    super::refresh_statistics(db).await?;
    Ok((responses, cells))
}

/// Adds the counts of the stored responses that `filter` picks (flagged ones left out) to
/// `out`, reading them and their answers in one query; returns how many it read.
pub async fn file_stored(
    db: &impl ConnectionTrait,
    catalog: &crate::index::catalog::Catalog,
    filter: impl sea_orm::sea_query::IntoCondition,
    out: &mut BTreeMap<CellKey, Tally>,
) -> Result<u64, DbErr> {
    use crate::entities::{answer, response};
    type Line = (uuid::Uuid, i32, NaiveDate, String, i32, String, String, Option<String>, String, i16);
    let lines: Vec<Line> = answer::Entity::find()
        .inner_join(response::Entity)
        .select_only()
        .column(response::Column::Id)
        .column(response::Column::UnitId)
        .column(response::Column::SurveyDate)
        .column(response::Column::FormId)
        .column(response::Column::FormVersion)
        .column(response::Column::RespondentType)
        .column(response::Column::Channel)
        .column(response::Column::Service)
        .column(answer::Column::ItemCode)
        .column(answer::Column::Value)
        .filter(filter)
        .filter(response::Column::Flagged.eq(false))
        .order_by_asc(response::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut read = 0;
    for one in lines.chunk_by(|a, b| a.0 == b.0) {
        let first = &one[0];
        let answers: Vec<(String, i16)> = one.iter().map(|l| (l.8.clone(), l.9)).collect();
        let filing = Filing {
            unit_id: first.1,
            date: first.2,
            form_id: &first.3,
            form_version: first.4,
            respondent_type: &first.5,
            channel: &first.6,
            service: first.7.as_deref(),
        };
        file(out, catalog, &filing, &answers)?;
        read += 1;
    }
    Ok(read)
}

/// Adds one response's counts to the cells it belongs to.
pub fn file(
    out: &mut BTreeMap<CellKey, Tally>,
    catalog: &crate::index::catalog::Catalog,
    filing: &Filing,
    answers: &[(String, i16)],
) -> Result<(), DbErr> {
    let version = catalog
        .get(filing.form_id, filing.form_version)
        .ok_or_else(|| DbErr::Custom(format!("form {} v{} is not recorded", filing.form_id, filing.form_version)))?;
    let one = version.layout.tally_one(answers);
    for key in cells_of(filing) {
        out.entry(key).or_insert_with(|| Tally { data: vec![] }).add(&one);
    }
    Ok(())
}

/// Responses per unit, month and value of `dim` (or `*` when none) for one form and year:
/// the counts the publication gate decides from. Summed over form versions.
pub async fn month_counts(
    db: &impl ConnectionTrait,
    form_id: &str,
    units: &[i32],
    year: i32,
    dim: Option<Dim>,
) -> Result<Vec<(i32, u32, String, u64)>, DbErr> {
    use chrono::Datelike;
    let (Some(first), Some(last)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 1)) else {
        return Ok(vec![]);
    };
    let detail = |col: tally::Column, d: Dim| {
        if dim == Some(d) { col.ne(ALL) } else { col.eq(ALL) }
    };
    let value = match dim {
        Some(Dim::RespondentType) => tally::Column::RespondentType,
        Some(Dim::Channel) => tally::Column::Channel,
        Some(Dim::Service) => tally::Column::Service,
        None => tally::Column::RespondentType,
    };
    let rows: Vec<(i32, NaiveDate, String, i64)> = tally::Entity::find()
        .select_only()
        .columns([tally::Column::UnitId, tally::Column::PeriodStart])
        .column(value)
        .column(tally::Column::Responses)
        .filter(tally::Column::FormId.eq(form_id))
        .filter(tally::Column::Grain.eq(Grain::Month.as_str()))
        .filter(tally::Column::PeriodStart.between(first, last))
        .filter(tally::Column::UnitId.is_in(units.iter().copied()))
        .filter(detail(tally::Column::RespondentType, Dim::RespondentType))
        .filter(detail(tally::Column::Channel, Dim::Channel))
        .filter(detail(tally::Column::Service, Dim::Service))
        .filter(tally::Column::Responses.gt(0))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(u, start, v, n)| (u, start.month(), v, u64::try_from(n).unwrap_or(0))).collect())
}

/// Responses per unit for one form and year (from the year rows): enough to tell whether
/// anything the gate decided from has changed, at a fraction of `month_counts`' rows.
pub async fn year_totals(
    db: &impl ConnectionTrait,
    form_id: &str,
    units: &[i32],
    year: i32,
) -> Result<Vec<(i32, i64)>, DbErr> {
    let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else { return Ok(vec![]) };
    let mut rows: Vec<(i32, i64)> = tally::Entity::find()
        .select_only()
        .columns([tally::Column::UnitId, tally::Column::Responses])
        .filter(tally::Column::FormId.eq(form_id))
        .filter(tally::Column::Grain.eq(Grain::Year.as_str()))
        .filter(tally::Column::PeriodStart.eq(first))
        .filter(tally::Column::UnitId.is_in(units.iter().copied()))
        .filter(tally::Column::RespondentType.eq(ALL))
        .filter(tally::Column::Channel.eq(ALL))
        .filter(tally::Column::Service.eq(ALL))
        .filter(tally::Column::Responses.gt(0))
        .into_tuple()
        .all(db)
        .await?;
    rows.sort_unstable();
    Ok(rows)
}
