//! The audit log: who signed in (or failed to), exported what with which filters and how many
//! rows, and changed units, volumes and users. Never the content of a response.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::Value;

use crate::entities::audit;

/// Records an event. `actor` is (user id, email) when someone is signed in.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<(i32, &str)>,
    action: &str,
    target: Option<&str>,
    details: Value,
) -> Result<(), DbErr> {
    audit::ActiveModel {
        at: Set(Utc::now()),
        user_id: Set(actor.map(|a| a.0)),
        actor: Set(actor.map(|a| a.1.chars().take(254).collect())),
        action: Set(action.to_string()),
        target: Set(target.map(|t| t.chars().take(128).collect())),
        details: Set(details.to_string()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// Audit entries, newest first, optionally of one action, within dates.
pub async fn list(
    db: &impl ConnectionTrait,
    action: Option<&str>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    limit: u64,
) -> Result<Vec<audit::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut q = audit::Entity::find().order_by_desc(audit::Column::Id).limit(limit);
    if let Some(a) = action {
        q = q.filter(audit::Column::Action.eq(a));
    }
    // Dates are Vietnam's: a local day starts at 17:00 UTC the day before.
    let start = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc() - chrono::TimeDelta::hours(7));
    if let Some(t) = from.and_then(start) {
        q = q.filter(audit::Column::At.gte(t));
    }
    if let Some(t) = to.and_then(|d| start(d + chrono::TimeDelta::days(1))) {
        q = q.filter(audit::Column::At.lt(t));
    }
    q.all(db).await
}
