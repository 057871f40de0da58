//! The audit log: who signed in (or failed to), exported what with which filters and how many
//! rows, and changed units, volumes and users. Never the content of a response. Admins read
//! it through `entries`, over the API and in the console alike.

use chrono::{NaiveDate, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::Lang;
use crate::auth::Principal;
use crate::entities::audit;
use crate::error::ApiError;
use crate::startup::AppState;

/// Every action the log records, with what a reader sees for it (Vietnamese, English). The
/// code stays in the database, the API and the CSV; people read the label.
pub const ACTIONS: [(&str, &str, &str); 20] = [
    ("login", "Đăng nhập", "Signed in"),
    ("login_failed", "Đăng nhập không thành công", "Failed sign-in"),
    ("logout", "Đăng xuất", "Signed out"),
    ("password_reset_requested", "Yêu cầu đặt lại mật khẩu", "Asked for a password reset"),
    ("password_reset", "Đặt lại mật khẩu", "Reset the password"),
    ("export", "Xuất dữ liệu", "Exported data"),
    ("export_cancelled", "Hủy tệp xuất đang chuẩn bị", "Cancelled a background export"),
    ("export_downloaded", "Tải tệp xuất đã chuẩn bị", "Downloaded a prepared export"),
    ("unit_created", "Thêm đơn vị", "Added a unit"),
    ("unit_updated", "Sửa đơn vị", "Changed a unit"),
    ("units_restructured", "Sắp xếp lại đơn vị", "Restructured units"),
    ("volumes_set", "Ghi số hồ sơ đã giải quyết", "Recorded dossiers handled"),
    ("user_created", "Thêm người dùng", "Added a user"),
    ("user_updated", "Sửa người dùng", "Changed a user"),
    ("codes_issued", "Cấp mã phiếu hẹn", "Issued receipt codes"),
    ("key_created", "Tạo khóa truy cập", "Created an access key"),
    ("invitations_sent", "Gửi thư mời khảo sát", "Sent survey invitations"),
    ("plan_created", "Lập kế hoạch khắc phục", "Made an improvement plan"),
    ("plan_updated", "Sửa kế hoạch khắc phục", "Changed an improvement plan"),
    ("plan_commented", "Góp ý kế hoạch khắc phục", "Commented on an improvement plan"),
];

/// The label of an action code; the code itself for one this table does not know.
pub fn action_label(code: &str, lang: Lang) -> &str {
    ACTIONS.iter().find(|(c, _, _)| *c == code).map_or(code, |(_, vi, en)| match lang {
        Lang::Vi => vi,
        Lang::En => en,
    })
}

/// Records an event. `actor` is (user id, email) when someone is signed in.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<(i32, &str)>,
    action: &str,
    target: Option<&str>,
    details: Value,
) -> Result<(), DbErr> {
    // A new action needs its label, or the console shows the code (caught by any test).
    debug_assert!(ACTIONS.iter().any(|(c, _, _)| *c == action), "audit action {action:?} has no label in ACTIONS");
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

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `login`, `login_failed`, `logout`, `export`, `unit_created`, ...
    pub action: Option<String>,
    /// First day, YYYY-MM-DD (Vietnam's calendar); empty means none, as a blank form sends.
    #[param(pattern = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD; empty means none.
    #[param(pattern = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub to: Option<String>,
    /// At most this many entries, newest first (default 500, 1 to 100000).
    #[param(minimum = 1, maximum = 100_000)]
    pub limit: Option<u64>,
}

pub async fn entries(state: &AppState, who: &Principal, q: &AuditQuery) -> Result<Vec<audit::Model>, ApiError> {
    who.require_admin()?;
    let date = |field: &str, v: &Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ApiError::field(field, "must be YYYY-MM-DD")))
            .transpose()
    };
    let (from, to) = (date("from", &q.from)?, date("to", &q.to)?);
    let limit = q.limit.unwrap_or(500);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 100000"));
    }
    Ok(list(&state.db, q.action.as_deref().filter(|a| !a.is_empty()), from, to, limit).await?)
}
