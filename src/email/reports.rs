//! What the worker sends on its own: a weekly digest to each unit_manager (Monday from
//! 07:00, Vietnam time) and an alert when a unit's SIPAS for the current calendar month is below
//! `alert_threshold` with at least k responses (checked daily, at most one a week per unit
//! and manager). Messages are in Vietnamese, then English. Dedupe keys make every run
//! idempotent, also across processes.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc, Weekday};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{Mail, enqueue};
use crate::entities::{unit, user};
use crate::index::period::Period;
use crate::index::report::{self, Context, Filters, IndexReport, IndexRequest, Rollup};
use crate::startup::AppState;
use crate::store;

/// The calendar month of `today` (so far), and the month before. Calendar months, not a
/// rolling 30 days: the publication gate protects calendar periods only, and two rolling
/// windows a day apart would differ by that day's few responses.
fn windows(today: NaiveDate) -> (Period, Period) {
    let first = today.with_day(1).unwrap_or(today);
    let now =
        Period::parse(&format!("{}-{:02}", first.year(), first.month())).unwrap_or(Period { from: first, to: today });
    (now, now.previous())
}

async fn figures(state: &AppState, unit: &unit::Model, period: Period) -> anyhow::Result<Option<IndexReport>> {
    let tree = store::units::tree(&state.db).await?;
    let Some(form_id) = tree.effective_forms(unit.id, &state.forms.ids()).into_iter().next() else { return Ok(None) };
    let Some(form) = state.forms.get(&form_id).and_then(|f| state.catalog.get(&f.form.id, f.form.version)) else {
        return Ok(None);
    };
    let ctx = Context::settled(state, &tree).await;
    let request = IndexRequest {
        form,
        unit,
        period,
        filters: Filters::default(),
        rollup: Rollup::Pooled,
        breakdown: None,
        k: state.settings.suppression_k,
    };
    Ok(Some(report::index(&ctx, &request).await?))
}

fn value(r: &IndexReport) -> Option<f64> {
    r.figures.index.as_ref().map(|e| e.value)
}

fn week_key(today: NaiveDate) -> String {
    let w = today.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The digest of one unit for one manager.
pub async fn digest(
    state: &AppState,
    manager: &user::Model,
    unit: &unit::Model,
    today: NaiveDate,
) -> anyhow::Result<Mail> {
    let (now, before) = windows(today);
    let current = figures(state, unit, now).await?;
    let previous = figures(state, unit, before).await?;
    let k = state.settings.suppression_k;
    let link = format!("{}/console/units/{}", state.settings.public_base_url.trim_end_matches('/'), unit.code);
    let mut vi = format!("Đơn vị: {} ({})\nTháng này ({} – {}):\n", unit.name_vi, unit.code, now.from, now.to);
    let mut en = format!(
        "Unit: {} ({})\nThis month ({} – {}):\n",
        unit.name_en.as_deref().unwrap_or(&unit.name_vi),
        unit.code,
        now.from,
        now.to
    );
    match current.as_ref().filter(|r| !r.figures.suppressed) {
        Some(r) => {
            let ci = r
                .figures
                .index
                .as_ref()
                .and_then(|e| e.ci95)
                .map_or(String::new(), |[lo, hi]| format!(" ({lo:.1}–{hi:.1})"));
            let v = value(r).unwrap_or(0.0);
            vi.push_str(&format!("  SIPAS {v:.1}{ci}, {} phiếu\n", r.figures.n));
            en.push_str(&format!("  SIPAS {v:.1}{ci}, {} responses\n", r.figures.n));
            if let Some(p) = previous.as_ref().and_then(value) {
                vi.push_str(&format!("  So với tháng trước ({p:.1}): {:+.1} điểm\n", v - p));
                en.push_str(&format!("  Against the month before ({p:.1}): {:+.1} points\n", v - p));
            }
            for g in &r.figures.groups {
                let title = state
                    .forms
                    .get(&r.form)
                    .and_then(|f| f.form.groups.iter().find(|x| x.code == g.code).map(|x| x.title.clone()));
                let shown = g.value.map_or("–".to_string(), |v| format!("{v:.1}"));
                if let Some(t) = title {
                    vi.push_str(&format!("  {} {}: {shown}\n", g.code, t.vi));
                    en.push_str(&format!("  {} {}: {shown}\n", g.code, t.en));
                }
            }
        }
        None => {
            let protects = current.as_ref().and_then(|r| r.figures.withheld)
                == Some(crate::index::engine::Withheld::ProtectsAnother);
            if protects {
                vi.push_str("  Số liệu được ẩn để bảo vệ một nhóm khác.\n");
                en.push_str("  Withheld to protect another group.\n");
            } else {
                let n = current.as_ref().map_or(0, |r| r.figures.n);
                vi.push_str(&format!("  Chưa đủ {k} phiếu để công bố số liệu ({n} phiếu).\n"));
                en.push_str(&format!("  Fewer than {k} responses: no figure is published ({n} responses).\n"));
            }
        }
    }
    let text = format!("{vi}\nXem chi tiết: {link}\n\n---\n\n{en}\nDetails: {link}\n");
    Ok(Mail {
        kind: "digest",
        dedupe_key: Some(format!("digest:{}:{}", manager.id, week_key(today))),
        to: manager.email.clone(),
        subject: format!("[SIPAS] Bản tin tuần – {} / Weekly digest", unit.name_vi),
        text,
        html: None,
    })
}

async fn managers(state: &AppState) -> anyhow::Result<Vec<(user::Model, unit::Model)>> {
    let users = user::Entity::find()
        .filter(user::Column::Role.eq("unit_manager"))
        .filter(user::Column::Disabled.eq(false))
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for u in users {
        if let Some(unit) = match u.unit_id {
            Some(id) => store::units::by_id(&state.db, id).await?,
            None => None,
        } {
            out.push((u, unit));
        }
    }
    Ok(out)
}

/// Queues this week's digest for every unit_manager. Returns how many were new.
pub async fn enqueue_digests(state: &AppState, today: NaiveDate) -> anyhow::Result<usize> {
    let mut queued = 0;
    for (manager, unit) in managers(state).await? {
        queued += usize::from(enqueue(&state.db, digest(state, &manager, &unit, today).await?).await?);
    }
    Ok(queued)
}

/// Queues an alert to the managers of every unit whose current month falls below the threshold.
pub async fn enqueue_alerts(state: &AppState, today: NaiveDate) -> anyhow::Result<usize> {
    let threshold = state.settings.alert_threshold;
    let (now, _) = windows(today);
    let mut queued = 0;
    for (manager, unit) in managers(state).await? {
        let Some(r) = figures(state, &unit, now).await? else { continue };
        let Some(v) = value(&r).filter(|v| !r.figures.suppressed && *v < threshold) else { continue };
        let link = format!("{}/console/units/{}", state.settings.public_base_url.trim_end_matches('/'), unit.code);
        let text = format!(
            "Chỉ số SIPAS của {name} trong tháng này ({from} – {to}) là {v:.1}, dưới ngưỡng {threshold:.1} ({n} phiếu).\n\
             Xem các tiêu chí bị mất điểm: {link}\n\n---\n\n\
             The SIPAS of {name} this month ({from} – {to}) is {v:.1}, below the threshold of {threshold:.1} ({n} responses).\n\
             See which criteria lost points: {link}\n",
            name = unit.name_vi,
            from = now.from,
            to = now.to,
            n = r.figures.n,
        );
        let mail = Mail {
            kind: "alert",
            dedupe_key: Some(format!("alert:{}:{}:{}", unit.id, manager.id, week_key(today))),
            to: manager.email.clone(),
            subject: format!(
                "[SIPAS] Cảnh báo: {} dưới {threshold:.0} điểm / Alert: below {threshold:.0}",
                unit.name_vi
            ),
            text,
            html: None,
        };
        queued += usize::from(enqueue(&state.db, mail).await?);
    }
    Ok(queued)
}

/// Called by the worker on every round; does the day's work once from 07:00 local time.
/// `last` remembers the day done (dedupe keys make repeats harmless; this saves the work).
pub async fn schedule(state: &AppState, now: DateTime<Utc>, last: &mut Option<NaiveDate>) -> anyhow::Result<()> {
    let local = now + TimeDelta::hours(7);
    let today = local.date_naive();
    if local.hour() < 7 || *last == Some(today) {
        return Ok(());
    }
    *last = Some(today);
    if today.weekday() == Weekday::Mon {
        enqueue_digests(state, today).await?;
    }
    enqueue_alerts(state, today).await?;
    Ok(())
}
