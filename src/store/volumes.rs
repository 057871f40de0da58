//! Service volumes: dossiers handled per unit and month, for volume-weighted roll-ups and
//! response rates.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entities::volume;
use crate::index::period::{Grain, Period};

/// Sets the volume of a unit for a month (replacing what was there).
pub async fn set(db: &impl ConnectionTrait, rows: &[(i32, NaiveDate, i64)]) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        let models = chunk.iter().map(|(unit_id, month, dossiers)| volume::ActiveModel {
            unit_id: Set(*unit_id),
            month: Set(Grain::Month.start_of(*month)),
            dossiers: Set(*dossiers),
        });
        volume::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([volume::Column::UnitId, volume::Column::Month])
                    .update_column(volume::Column::Dossiers)
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Volume per unit over the months that overlap `period`.
pub async fn totals(db: &impl ConnectionTrait, period: &Period) -> Result<HashMap<i32, i64>, DbErr> {
    let rows = volume::Entity::find()
        .filter(volume::Column::Month.between(Grain::Month.start_of(period.from), period.to))
        .all(db)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        *out.entry(r.unit_id).or_insert(0) += r.dossiers;
    }
    Ok(out)
}

/// Stored volumes of some units, in month order.
pub async fn list(db: &impl ConnectionTrait, unit_ids: &[i32], period: &Period) -> Result<Vec<volume::Model>, DbErr> {
    volume::Entity::find()
        .filter(volume::Column::UnitId.is_in(unit_ids.to_vec()))
        .filter(volume::Column::Month.between(Grain::Month.start_of(period.from), period.to))
        .order_by_asc(volume::Column::UnitId)
        .order_by_asc(volume::Column::Month)
        .all(db)
        .await
}
