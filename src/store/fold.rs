//! Folding: a live submission commits its response, its answers and an `unfolded` row
//! (see `responses::insert_group`); the counts of many such responses are added to the
//! tallies later, in one transaction that also deletes their rows. A tally cell that every
//! submission of a unit touches (its month and year, all detail) is then written once per
//! fold instead of once per submission, and the request path does what a plain insert does.
//!
//! Nothing is lost in between: a crash leaves the rows, and the next fold (of any instance)
//! adds them. Folds lock the rows they take, so two instances never add a response twice.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::tallies::{self, CellKey};
use crate::entities::{response, unfolded};
use crate::index::catalog::Catalog;
use crate::index::tally::Tally;

/// Responses taken into one fold transaction at most: a fold on SQLite holds the write lock
/// (submissions wait behind it), so it stays a few tens of milliseconds.
pub const FOLD_MAX: u64 = 512;

/// Ids per read statement (a power of two: one prepared shape per piece size).
const IDS_PER_READ: usize = 256;

/// Adds up to `FOLD_MAX` pending responses to the tallies in one transaction; returns how
/// many it took.
pub async fn fold_some(db: &DatabaseConnection, catalog: &Catalog) -> Result<u64, DbErr> {
    let txn = super::begin_write(db).await?;
    let lock = if db.get_database_backend() == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    // In id order, so that two instances folding at once lock in the same order.
    let taken = txn
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT response_id FROM unfolded ORDER BY response_id LIMIT {FOLD_MAX}{lock}"),
        ))
        .await?;
    let ids: Vec<Uuid> = taken.iter().map(|r| r.try_get("", "response_id")).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }
    let mut deltas: BTreeMap<CellKey, Tally> = BTreeMap::new();
    // Flagged responses join the tallies only when accepted (`accept_flagged`).
    for piece in super::pieces(&ids, IDS_PER_READ) {
        tallies::file_stored(&txn, catalog, response::Column::Id.is_in(piece.to_vec()), &mut deltas).await?;
    }
    tallies::add(&txn, &deltas).await?;
    for piece in super::pieces(&ids, IDS_PER_READ) {
        unfolded::Entity::delete_many().filter(unfolded::Column::ResponseId.is_in(piece.to_vec())).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(ids.len() as u64)
}

/// Adds `deltas`, the counts of the responses `ids` as their writer computed them, and
/// deletes their rows, in one transaction: no answer is read back. `Ok(false)` (nothing
/// done) when some row was gone, folded meanwhile by another instance: then `drain`.
pub async fn fold_known(
    db: &DatabaseConnection,
    ids: &mut [Uuid],
    deltas: &BTreeMap<CellKey, Tally>,
) -> Result<bool, DbErr> {
    // In id order, as `fold_some` locks them.
    ids.sort_unstable();
    let txn = super::begin_write(db).await?;
    let mut deleted = 0;
    for piece in super::pieces(ids, IDS_PER_READ) {
        deleted += unfolded::Entity::delete_many()
            .filter(unfolded::Column::ResponseId.is_in(piece.to_vec()))
            .exec(&txn)
            .await?
            .rows_affected;
    }
    if deleted != ids.len() as u64 {
        txn.rollback().await?;
        return Ok(false);
    }
    tallies::add(&txn, deltas).await?;
    txn.commit().await?;
    Ok(true)
}

/// Up to `n` of the pending ids, smallest first: a row still there a while later is one
/// its instance will not fold (it stopped).
pub async fn sample(db: &DatabaseConnection, n: u64) -> Result<Vec<Uuid>, DbErr> {
    unfolded::Entity::find()
        .select_only()
        .column(unfolded::Column::ResponseId)
        .order_by_asc(unfolded::Column::ResponseId)
        .limit(n)
        .into_tuple()
        .all(db)
        .await
}

/// Folds until nothing is pending; returns how many responses it added.
pub async fn drain(db: &DatabaseConnection, catalog: &Catalog) -> Result<u64, DbErr> {
    let mut total = 0;
    loop {
        let n = fold_some(db, catalog).await?;
        total += n;
        if n < FOLD_MAX {
            return Ok(total);
        }
    }
}
