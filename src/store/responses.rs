//! Responses and their answers. A submission is one transaction: the response row plus all
//! its answers in one multi-row insert. The client's `submission_id` is kept only as a
//! SHA-256 key, enough to recognise a retry.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, SqlErr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::tallies::{self, CellKey, Filing};
use crate::entities::{answer, response, unfolded};
use crate::error::ApiError;
use crate::forms::DemographicKey;
use crate::forms::submission::ValidSubmission;
use crate::index::catalog::Catalog;
use crate::index::tally::Tally;

/// Rows per multi-row insert: well under SQLite's and PostgreSQL's bind-parameter limits.
const ANSWER_ROWS_PER_INSERT: usize = 2048;
const RESPONSE_ROWS_PER_INSERT: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Newly committed.
    Created(Uuid),
    /// The same submission arrived before; nothing new was stored.
    Replayed(Uuid),
}

pub fn submission_key(submission_id: &Uuid) -> String {
    hex::encode(Sha256::digest(submission_id.as_bytes()))
}

/// The tally changes a set of new responses makes.
pub fn deltas<'a>(
    catalog: &Catalog,
    subs: impl IntoIterator<Item = &'a ValidSubmission>,
) -> Result<BTreeMap<CellKey, Tally>, DbErr> {
    let mut out = BTreeMap::new();
    // Flagged responses stay out of the indices.
    for s in subs.into_iter().filter(|s| !s.flagged) {
        let filing = Filing {
            unit_id: s.unit_id,
            date: s.survey_date,
            form_id: &s.form_id,
            form_version: s.form_version,
            respondent_type: s.respondent_type.as_str(),
            channel: s.channel.as_str(),
            service: s.service.as_deref(),
        };
        tallies::file(&mut out, catalog, &filing, &s.answers)?;
    }
    Ok(out)
}

/// Stores one submission durably with its tallies, or recognises a retry of it.
pub async fn insert(db: &DatabaseConnection, catalog: &Catalog, s: &ValidSubmission) -> Result<Stored, ApiError> {
    let changes = deltas(catalog, [s])?;
    let key = submission_key(&s.submission_id);
    // A second attempt only happens when a concurrent twin won the unique key: it then
    // finds the twin's row and answers as a replay.
    for _ in 0..2 {
        let txn = super::begin_write(db).await?;
        if let Some(existing) = find_by_key(&txn, &key).await? {
            txn.rollback().await?;
            return replay(existing, s);
        }
        // The code is used up in the same transaction as the response is stored: either both
        // happen or neither does.
        if let Some(code_hash) = &s.code_hash
            && !crate::reach::codes::consume(&txn, code_hash, s.unit_id, &s.code_units, s.survey_date).await?
        {
            txn.rollback().await?;
            return Err(ApiError::CodeRejected);
        }
        let id = Uuid::new_v4();
        let written = match insert_rows(&txn, &[(id, s)]).await {
            Ok(()) => tallies::add(&txn, &changes).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                txn.commit().await?;
                return Ok(Stored::Created(id));
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let existing = find_by_key(db, &key).await?;
    existing.map_or_else(|| Err(ApiError::internal("submission key vanished")), |e| replay(e, s))
}

/// Stores a group of live submissions at once (see `group_commit`): on PostgreSQL without
/// receipt codes as one statement (`AT_ONCE`), else in one transaction. One outcome per
/// submission, in order, once the commit happened. `Err` means the group as a whole failed
/// and nothing of it was stored; the caller then stores them one by one.
///
/// The responses go in first with `ON CONFLICT (submission_key) DO NOTHING`: the unique key
/// itself tells a retry apart, with no look-up before (a look-up planned while the table was
/// small scanned it whole). With `fold_later` their tallies are added later by a fold
/// (`store::fold`), and each fresh response leaves an `unfolded` row in the same
/// transaction; without, they are added in this transaction.
pub async fn insert_group(
    db: &DatabaseConnection,
    catalog: &Catalog,
    subs: &[&ValidSubmission],
    fold_later: bool,
) -> Result<Vec<Result<Stored, ApiError>>, DbErr> {
    let mut outcomes: Vec<Option<Result<Stored, ApiError>>> = subs.iter().map(|_| None).collect();
    // The same submission twice in one group (a retry sent while the first was queued): the
    // later one is answered after the commit, as a retry of the stored first.
    let mut in_group = std::collections::HashSet::new();
    let mut twins = Vec::new();
    let mut candidates: Vec<(usize, Uuid, &ValidSubmission)> = Vec::with_capacity(subs.len());
    for (i, s) in subs.iter().enumerate() {
        if in_group.insert(s.submission_id) {
            candidates.push((i, Uuid::new_v4(), s));
        } else {
            twins.push(i);
        }
    }
    let rows: Vec<(Uuid, &ValidSubmission)> = candidates.iter().map(|(_, id, s)| (*id, *s)).collect();
    let at_once = fold_later
        && db.get_database_backend() == sea_orm::DbBackend::Postgres
        && subs.iter().all(|s| s.code_hash.is_none());
    if at_once {
        let inserted = insert_at_once(db, &rows).await?;
        for (i, id, _) in &candidates {
            if inserted.contains(id) {
                outcomes[*i] = Some(Ok(Stored::Created(*id)));
            }
        }
        answer_earlier(db, &candidates, &inserted, &mut outcomes).await?;
    } else {
        insert_in_transaction(db, catalog, &candidates, &rows, fold_later, &mut outcomes).await?;
    }
    for i in twins {
        outcomes[i] = Some(insert(db, catalog, subs[i]).await);
    }
    Ok(outcomes.into_iter().map(|o| o.unwrap_or_else(|| Err(ApiError::internal("no outcome")))).collect())
}

type Outcomes = Vec<Option<Result<Stored, ApiError>>>;

/// The group in a transaction of several statements: receipt codes are used up in it, and
/// on SQLite the tallies are added in it.
async fn insert_in_transaction(
    db: &DatabaseConnection,
    catalog: &Catalog,
    candidates: &[(usize, Uuid, &ValidSubmission)],
    rows: &[(Uuid, &ValidSubmission)],
    fold_later: bool,
    outcomes: &mut Outcomes,
) -> Result<(), DbErr> {
    let txn = super::begin_write(db).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The group's statements are the same few shapes every time with hundreds of
        // parameters: planning each afresh for its values cost more than running them.
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan").await?;
    }
    let mut inserted = std::collections::HashSet::with_capacity(rows.len());
    for piece in super::pieces(rows, RESPONSE_ROWS_PER_INSERT) {
        inserted.extend(insert_responses(&txn, piece, true).await?);
    }
    let mut kept: Vec<(Uuid, &ValidSubmission)> = Vec::with_capacity(rows.len());
    let mut refused: Vec<Uuid> = Vec::new();
    for (i, id, s) in candidates {
        if !inserted.contains(id) {
            // Stored before: answered as a replay (or a mismatch) below.
            continue;
        }
        // The code is used up in the same transaction as the response is stored.
        if let Some(code_hash) = &s.code_hash
            && !crate::reach::codes::consume(&txn, code_hash, s.unit_id, &s.code_units, s.survey_date).await?
        {
            outcomes[*i] = Some(Err(ApiError::CodeRejected));
            refused.push(*id);
            continue;
        }
        outcomes[*i] = Some(Ok(Stored::Created(*id)));
        kept.push((*id, *s));
    }
    if !refused.is_empty() {
        response::Entity::delete_many().filter(response::Column::Id.is_in(refused)).exec(&txn).await?;
    }
    answer_earlier(&txn, candidates, &inserted, outcomes).await?;
    insert_answers(&txn, &kept).await?;
    if !fold_later {
        tallies::add(&txn, &deltas(catalog, kept.iter().map(|(_, s)| *s))?).await?;
    }
    let pending: Vec<unfolded::ActiveModel> = kept
        .iter()
        .filter(|(_, s)| fold_later && !s.flagged)
        .map(|(id, _)| unfolded::ActiveModel { response_id: Set(*id) })
        .collect();
    for piece in super::pieces(&pending, RESPONSE_ROWS_PER_INSERT) {
        unfolded::Entity::insert_many(piece.to_vec()).exec_without_returning(&txn).await?;
    }
    txn.commit().await
}

/// Answers the candidates that were not inserted: stored before, a replay or a mismatch.
async fn answer_earlier(
    db: &impl ConnectionTrait,
    candidates: &[(usize, Uuid, &ValidSubmission)],
    inserted: &std::collections::HashSet<Uuid>,
    outcomes: &mut Outcomes,
) -> Result<(), DbErr> {
    let earlier: Vec<String> = candidates
        .iter()
        .filter(|(_, id, _)| !inserted.contains(id))
        .map(|(_, _, s)| submission_key(&s.submission_id))
        .collect();
    if earlier.is_empty() {
        return Ok(());
    }
    let found: Vec<(String, Uuid, String)> = response::Entity::find()
        .select_only()
        .column(response::Column::SubmissionKey)
        .column(response::Column::Id)
        .column(response::Column::BodyHash)
        .filter(response::Column::SubmissionKey.is_in(earlier))
        .into_tuple()
        .all(db)
        .await?;
    let found: std::collections::HashMap<String, (Uuid, String)> =
        found.into_iter().map(|(key, id, hash)| (key, (id, hash))).collect();
    for (i, id, s) in candidates {
        if !inserted.contains(id) {
            outcomes[*i] = Some(match found.get(&submission_key(&s.submission_id)) {
                Some(existing) => replay(existing.clone(), s),
                None => Err(ApiError::internal("submission key vanished")),
            });
        }
    }
    Ok(())
}

/// The responses, their answers and their `unfolded` rows as one PostgreSQL statement,
/// each column bound as one array: one round trip and one commit for the group, the same
/// prepared statement whatever its size (a transaction of five statements, with a value
/// bound per cell, took 3 ms for a group of two and capped ingest at 1,300/s). A response
/// whose submission key is stored already is skipped, and so are its answers; a row the
/// database refuses fails the statement, and with it the whole group (nothing stored).
const AT_ONCE: &str = "WITH r AS (
    INSERT INTO responses (id, submission_key, body_hash, unit_id, form_id, form_version, survey_date,
        respondent_type, channel, service, gender, age_band, education, occupation, comment, flagged)
    SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::varchar[], $4::int4[], $5::varchar[], $6::int4[],
        $7::date[], $8::varchar[], $9::varchar[], $10::varchar[], $11::varchar[], $12::varchar[],
        $13::varchar[], $14::varchar[], $15::text[], $16::bool[])
    ON CONFLICT (submission_key) DO NOTHING
    RETURNING id, flagged
), a AS (
    INSERT INTO answers (response_id, item_code, value)
    SELECT x.response_id, x.item_code, x.value
    FROM unnest($17::uuid[], $18::varchar[], $19::int2[]) AS x(response_id, item_code, value)
    JOIN r ON r.id = x.response_id
), u AS (
    INSERT INTO unfolded (response_id) SELECT id FROM r WHERE NOT flagged
)
SELECT id FROM r";

async fn insert_at_once(
    db: &DatabaseConnection,
    rows: &[(Uuid, &ValidSubmission)],
) -> Result<std::collections::HashSet<Uuid>, DbErr> {
    use sea_orm::sqlx;
    let n = rows.len();
    let text = |f: &dyn Fn(&ValidSubmission) -> String| rows.iter().map(|(_, s)| f(s)).collect::<Vec<_>>();
    let maybe = |f: &dyn Fn(&ValidSubmission) -> Option<String>| rows.iter().map(|(_, s)| f(s)).collect::<Vec<_>>();
    let demo = |k: DemographicKey| maybe(&|s| s.demographics.get(&k).cloned());
    let (mut answer_ids, mut codes, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (id, s) in rows {
        for (code, value) in &s.answers {
            answer_ids.push(*id);
            codes.push(code.clone());
            values.push(*value);
        }
    }
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let mut dates = Vec::with_capacity(n);
    let (mut units, mut versions, mut flagged) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (_, s) in rows {
        dates.push(s.survey_date);
        units.push(s.unit_id);
        versions.push(s.form_version);
        flagged.push(s.flagged);
    }
    let stored: Vec<(Uuid,)> = sqlx::query_as(AT_ONCE)
        .bind(&ids)
        .bind(text(&|s| submission_key(&s.submission_id)))
        .bind(text(&|s| s.body_hash.clone()))
        .bind(&units)
        .bind(text(&|s| s.form_id.clone()))
        .bind(&versions)
        .bind(&dates)
        .bind(text(&|s| s.respondent_type.as_str().to_string()))
        .bind(text(&|s| s.channel.as_str().to_string()))
        .bind(maybe(&|s| s.service.clone()))
        .bind(demo(DemographicKey::Gender))
        .bind(demo(DemographicKey::AgeBand))
        .bind(demo(DemographicKey::Education))
        .bind(demo(DemographicKey::Occupation))
        .bind(maybe(&|s| s.comment.clone()))
        .bind(&flagged)
        .bind(&answer_ids)
        .bind(&codes)
        .bind(&values)
        .fetch_all(db.get_postgres_connection_pool())
        .await
        .map_err(|e| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e.into())))?;
    Ok(stored.into_iter().map(|(id,)| id).collect())
}

fn replay(existing: (Uuid, String), s: &ValidSubmission) -> Result<Stored, ApiError> {
    if existing.1 == s.body_hash { Ok(Stored::Replayed(existing.0)) } else { Err(ApiError::IdempotencyMismatch) }
}

async fn find_by_key(db: &impl ConnectionTrait, key: &str) -> Result<Option<(Uuid, String)>, DbErr> {
    response::Entity::find()
        .select_only()
        .column(response::Column::Id)
        .column(response::Column::BodyHash)
        .filter(response::Column::SubmissionKey.eq(key))
        .into_tuple()
        .one(db)
        .await
}

/// Outcome of a batch import.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub created: usize,
    pub already_present: usize,
}

/// Stores many submissions inside the caller's transaction (imports, demo data). A
/// submission already stored with the same content is skipped; with other content it is an
/// error naming its position in `subs`.
pub async fn insert_batch(
    txn: &impl ConnectionTrait,
    catalog: &Catalog,
    subs: &[ValidSubmission],
) -> Result<Result<BatchReport, Vec<(usize, String)>>, DbErr> {
    let mut report = BatchReport::default();
    let mut conflicts = Vec::new();
    let mut fresh: Vec<(Uuid, &ValidSubmission)> = Vec::new();
    for (chunk_no, chunk) in subs.chunks(RESPONSE_ROWS_PER_INSERT).enumerate() {
        let keys: Vec<String> = chunk.iter().map(|s| submission_key(&s.submission_id)).collect();
        let found: Vec<(String, String)> = response::Entity::find()
            .select_only()
            .column(response::Column::SubmissionKey)
            .column(response::Column::BodyHash)
            .filter(response::Column::SubmissionKey.is_in(keys.clone()))
            .into_tuple()
            .all(txn)
            .await?;
        let found: std::collections::HashMap<String, String> = found.into_iter().collect();
        for (i, (s, key)) in chunk.iter().zip(keys).enumerate() {
            let position = chunk_no * RESPONSE_ROWS_PER_INSERT + i;
            match found.get(&key) {
                Some(hash) if *hash == s.body_hash => report.already_present += 1,
                Some(_) => conflicts.push((position, "submission_id already used with a different body".to_string())),
                None => fresh.push((Uuid::new_v4(), s)),
            }
        }
    }
    let mut keys = std::collections::HashSet::new();
    for (i, s) in subs.iter().enumerate() {
        if !keys.insert(s.submission_id) {
            conflicts.push((i, "submission_id appears twice in the batch".to_string()));
        }
    }
    if !conflicts.is_empty() {
        return Ok(Err(conflicts));
    }
    for chunk in fresh.chunks(RESPONSE_ROWS_PER_INSERT) {
        insert_rows(txn, chunk).await?;
    }
    tallies::add(txn, &deltas(catalog, fresh.iter().map(|(_, s)| *s))?).await?;
    report.created = fresh.len();
    Ok(Ok(report))
}

/// Inserts responses and their answers without touching the tallies: only for bulk loads
/// (the benchmark) that run `tallies::rebuild` afterwards.
pub async fn insert_without_tallies(
    txn: &impl ConnectionTrait,
    subs: &[(Uuid, &ValidSubmission)],
) -> Result<(), DbErr> {
    for chunk in subs.chunks(RESPONSE_ROWS_PER_INSERT) {
        insert_rows(txn, chunk).await?;
    }
    Ok(())
}

/// Inserts responses and then all their answers, as multi-row inserts.
async fn insert_rows(txn: &impl ConnectionTrait, subs: &[(Uuid, &ValidSubmission)]) -> Result<(), DbErr> {
    for piece in super::pieces(subs, RESPONSE_ROWS_PER_INSERT) {
        insert_responses(txn, piece, false).await?;
    }
    insert_answers(txn, subs).await
}

async fn insert_answers(txn: &impl ConnectionTrait, subs: &[(Uuid, &ValidSubmission)]) -> Result<(), DbErr> {
    let answers: Vec<answer::ActiveModel> = subs
        .iter()
        .flat_map(|(id, s)| {
            s.answers.iter().map(move |(code, value)| answer::ActiveModel {
                response_id: Set(*id),
                item_code: Set(code.clone()),
                value: Set(*value),
            })
        })
        .collect();
    for piece in super::pieces(&answers, ANSWER_ROWS_PER_INSERT) {
        answer::Entity::insert_many(piece.to_vec()).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Inserts response rows; with `skip_stored`, a row whose submission key is already stored
/// is left out instead of failing the statement. Returns the ids inserted.
async fn insert_responses(
    txn: &impl ConnectionTrait,
    subs: &[(Uuid, &ValidSubmission)],
    skip_stored: bool,
) -> Result<Vec<Uuid>, DbErr> {
    let rows = subs.iter().map(|(id, s)| {
        let demo = |k: DemographicKey| Set(s.demographics.get(&k).cloned());
        response::ActiveModel {
            id: Set(*id),
            submission_key: Set(submission_key(&s.submission_id)),
            body_hash: Set(s.body_hash.clone()),
            unit_id: Set(s.unit_id),
            form_id: Set(s.form_id.clone()),
            form_version: Set(s.form_version),
            survey_date: Set(s.survey_date),
            respondent_type: Set(s.respondent_type.as_str().to_string()),
            channel: Set(s.channel.as_str().to_string()),
            service: Set(s.service.clone()),
            gender: demo(DemographicKey::Gender),
            age_band: demo(DemographicKey::AgeBand),
            education: demo(DemographicKey::Education),
            occupation: demo(DemographicKey::Occupation),
            comment: Set(s.comment.clone()),
            flagged: Set(s.flagged),
        }
    });
    if !skip_stored {
        response::Entity::insert_many(rows).exec_without_returning(txn).await?;
        return Ok(subs.iter().map(|(id, _)| *id).collect());
    }
    let inserted = response::Entity::insert_many(rows)
        .on_conflict(sea_orm::sea_query::OnConflict::column(response::Column::SubmissionKey).do_nothing().to_owned())
        .exec_with_returning_keys(txn)
        .await;
    match inserted {
        Ok(ids) => Ok(ids),
        Err(DbErr::RecordNotInserted) => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// Responses recorded at any of `unit_ids`.
pub async fn count_in(db: &impl ConnectionTrait, unit_ids: &[i32]) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    response::Entity::find().filter(response::Column::UnitId.is_in(unit_ids.to_vec())).count(db).await
}

/// Comments of a selection of responses (the latest `limit`), in the order of their text:
/// no date and no order that would date them finer than the cell they are shown with. Only
/// the publication gate calls this, for a cell it shows.
pub async fn comments(
    db: &impl ConnectionTrait,
    unit_ids: &[i32],
    form_id: &str,
    period: &crate::index::period::Period,
    filters: &crate::index::report::Filters,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::QueryOrder;
    let mut q = response::Entity::find()
        .select_only()
        .column(response::Column::SurveyDate)
        .column(response::Column::Comment)
        .filter(response::Column::UnitId.is_in(unit_ids.to_vec()))
        .filter(response::Column::FormId.eq(form_id))
        .filter(response::Column::SurveyDate.between(period.from, period.to))
        .filter(response::Column::Comment.is_not_null())
        .filter(response::Column::Flagged.eq(false));
    if let Some(v) = &filters.respondent_type {
        q = q.filter(response::Column::RespondentType.eq(v.clone()));
    }
    if let Some(v) = &filters.channel {
        q = q.filter(response::Column::Channel.eq(v.clone()));
    }
    if let Some(v) = &filters.service {
        q = q.filter(response::Column::Service.eq(v.clone()));
    }
    let rows: Vec<(chrono::NaiveDate, Option<String>)> =
        q.order_by_desc(response::Column::SurveyDate).limit(limit).into_tuple().all(db).await?;
    let mut out: Vec<String> = rows.into_iter().filter_map(|(_, c)| c).collect();
    out.sort();
    Ok(out)
}

/// Flagged responses at some units in a period (they are out of the indices).
pub async fn count_flagged(
    db: &impl ConnectionTrait,
    unit_ids: &[i32],
    period: &crate::index::period::Period,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    response::Entity::find()
        .filter(response::Column::UnitId.is_in(unit_ids.to_vec()))
        .filter(response::Column::SurveyDate.between(period.from, period.to))
        .filter(response::Column::Flagged.eq(true))
        .count(db)
        .await
}

/// Accepts the flagged responses of some units after review: they join the indices.
pub async fn accept_flagged(db: &DatabaseConnection, catalog: &Catalog, unit_ids: &[i32]) -> Result<usize, DbErr> {
    use sea_orm::QueryOrder;
    let txn = super::begin_write(db).await?;
    let flagged = response::Entity::find()
        .filter(response::Column::UnitId.is_in(unit_ids.to_vec()))
        .filter(response::Column::Flagged.eq(true))
        .order_by_asc(response::Column::Id)
        .all(&txn)
        .await?;
    let mut changes = BTreeMap::new();
    for r in &flagged {
        let answers: Vec<(String, i16)> = answer::Entity::find()
            .filter(answer::Column::ResponseId.eq(r.id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|a| (a.item_code, a.value))
            .collect();
        let filing = Filing {
            unit_id: r.unit_id,
            date: r.survey_date,
            form_id: &r.form_id,
            form_version: r.form_version,
            respondent_type: &r.respondent_type,
            channel: &r.channel,
            service: r.service.as_deref(),
        };
        tallies::file(&mut changes, catalog, &filing, &answers)?;
    }
    response::Entity::update_many()
        .col_expr(response::Column::Flagged, sea_orm::sea_query::Expr::value(false))
        .filter(response::Column::UnitId.is_in(unit_ids.to_vec()))
        .filter(response::Column::Flagged.eq(true))
        .exec(&txn)
        .await?;
    tallies::add(&txn, &changes).await?;
    txn.commit().await?;
    Ok(flagged.len())
}
