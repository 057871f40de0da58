//! Indices, rankings and trends (signed in; a unit_manager only within its subtree).
//! Every query parameter is checked and every problem listed at once (422).

use actix_web::{HttpResponse, web};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Role};
use crate::entities::unit;
use crate::error::{ApiError, FieldErrors};
use crate::forms::{Channel, RespondentType};
use crate::index::catalog::Versioned;
use crate::index::period::Period;
use crate::index::report::{self, Breakdown, Context, Filters, Rollup};
use crate::startup::AppState;
use crate::store;
use crate::units::{Level, UnitTree};

/// Parameters shared by indices, rankings and trends.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Common {
    /// Form id; default: the first form the unit takes.
    pub form: Option<String>,
    /// `2024`, `2024-Q1` or `2024-03`; or give `from` and `to`. Default: this year.
    pub period: Option<String>,
    /// First day, YYYY-MM-DD (Vietnam's calendar).
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD.
    pub to: Option<String>,
    /// `citizen` or `organization`.
    pub respondent_type: Option<String>,
    /// `in_person`, `online`, `kiosk`, `phone` or `paper`.
    pub channel: Option<String>,
    /// A field code of the form.
    pub service: Option<String>,
    /// Suppression threshold; never below the configured one.
    pub k: Option<String>,
}

pub(crate) struct Parsed {
    pub form: std::sync::Arc<Versioned>,
    pub unit: unit::Model,
    pub period: Period,
    pub filters: Filters,
    pub k: u64,
}

pub(crate) fn add(fields: &mut FieldErrors, field: &str, message: impl Into<String>) {
    fields.entry(field.to_string()).or_default().push(message.into());
}

/// The unit a query is about: the one named, else the caller's own, else the root.
fn pick_unit(tree: &UnitTree, who: &Principal, code: Option<&str>) -> Result<unit::Model, ApiError> {
    let unit = match code {
        Some(code) => tree.by_code(code).ok_or_else(|| ApiError::NotFound(format!("no unit {code}")))?,
        None => match (who.role, who.unit_id) {
            (Role::UnitManager, Some(id)) => {
                tree.get(id).ok_or_else(|| ApiError::NotFound("your unit is gone".into()))?
            }
            _ => tree
                .all()
                .iter()
                .find(|u| u.parent_id.is_none())
                .ok_or_else(|| ApiError::NotFound("there are no units yet".into()))?,
        },
    };
    who.require_unit(tree, unit.id)?;
    Ok(unit.clone())
}

fn parse_date(fields: &mut FieldErrors, name: &str, value: &str) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
    if parsed.is_none() {
        add(fields, name, "must be a date, YYYY-MM-DD");
    }
    parsed
}

pub(crate) fn parse_common(
    state: &AppState,
    tree: &UnitTree,
    who: &Principal,
    unit_code: Option<&str>,
    q: &Common,
    fields: &mut FieldErrors,
) -> Result<Option<Parsed>, ApiError> {
    let unit = pick_unit(tree, who, unit_code)?;
    let taken = tree.effective_forms(unit.id, &state.forms.ids());
    let form_id = q.form.clone().or_else(|| taken.first().cloned()).unwrap_or_default();
    let form = state.forms.get(&form_id).and_then(|f| state.catalog.get(&f.form.id, f.form.version)).cloned();
    if form.is_none() {
        add(fields, "form", format!("unknown form {form_id:?}"));
    }

    let period = match (&q.period, &q.from, &q.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            add(fields, "period", "give either period or from and to, not both");
            None
        }
        (Some(p), None, None) => {
            let parsed = Period::parse(p);
            if parsed.is_none() {
                add(fields, "period", "must be a year (2024), a quarter (2024-Q1) or a month (2024-03)");
            }
            parsed
        }
        (None, Some(from), Some(to)) => {
            let (from, to) = (parse_date(fields, "from", from), parse_date(fields, "to", to));
            match from.zip(to) {
                Some((f, t)) if f > t => {
                    add(fields, "to", "must not be before from");
                    None
                }
                Some((f, t)) if (t - f).num_days() > 366 * 20 => {
                    add(fields, "to", "a period spans at most 20 years");
                    None
                }
                Some((f, t)) => Period::new(f, t),
                None => None,
            }
        }
        (None, Some(_), None) => {
            add(fields, "to", "is needed with from");
            None
        }
        (None, None, Some(_)) => {
            add(fields, "from", "is needed with to");
            None
        }
        (None, None, None) => Period::year(crate::vietnam_today().year()),
    };

    if q.respondent_type.as_deref().is_some_and(|r| RespondentType::parse(r).is_none()) {
        add(fields, "respondent_type", "must be citizen or organization");
    }
    if q.channel.as_deref().is_some_and(|c| Channel::parse(c).is_none()) {
        add(fields, "channel", "must be in_person, online, kiosk, phone or paper");
    }
    if let (Some(service), Some(form)) = (q.service.as_deref(), &form)
        && !form.form.fields.iter().any(|f| f.code == service)
    {
        add(fields, "service", "not one of the form's fields");
    }
    let floor = state.settings.suppression_k;
    let k = match q.k.as_deref().map(str::parse::<u64>) {
        None => floor,
        Some(Ok(k)) if (floor..=1_000_000).contains(&k) => k,
        Some(_) => {
            add(fields, "k", format!("must be a whole number from {floor} (the configured threshold) up"));
            floor
        }
    };
    let filters =
        Filters { respondent_type: q.respondent_type.clone(), channel: q.channel.clone(), service: q.service.clone() };
    Ok(form.zip(period).map(|(form, period)| Parsed { form, unit, period, filters, k }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IndexQuery {
    /// Unit code; default: your unit, or the province.
    pub unit: Option<String>,
    /// `pooled` (default), `mean_of_children` or `volume_weighted`.
    pub rollup: Option<String>,
    /// `respondent_type`, `channel`, `service` or `unit` (direct children).
    pub breakdown: Option<String>,
}

/// SIPAS, its groups and items, with counts, intervals and suppression.
#[utoipa::path(get, path = "/api/v1/indices", operation_id = "indices", tag = "admin", security(("bearer" = [])),
    params(IndexQuery, Common),
    responses((status = 200, body = report::IndexReport), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn indices(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<IndexQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let parsed = parse_common(&state, &tree, &who, q.unit.as_deref(), &common, &mut fields)?;
    let rollup = match q.rollup.as_deref() {
        None | Some("pooled") => Rollup::Pooled,
        Some("mean_of_children") => Rollup::MeanOfChildren,
        Some("volume_weighted") => Rollup::VolumeWeighted,
        Some(_) => {
            add(&mut fields, "rollup", "must be pooled, mean_of_children or volume_weighted");
            Rollup::Pooled
        }
    };
    let breakdown = match q.breakdown.as_deref() {
        None => None,
        Some("respondent_type") => Some(Breakdown::RespondentType),
        Some("channel") => Some(Breakdown::Channel),
        Some("service") => Some(Breakdown::Service),
        Some("unit") => Some(Breakdown::Unit),
        Some(_) => {
            add(&mut fields, "breakdown", "must be respondent_type, channel, service or unit");
            None
        }
    };
    let (Some(p), true) = (parsed, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let ctx = Context { db: &state.db, catalog: &state.catalog, tree: &tree };
    let request = report::IndexRequest {
        form: &p.form,
        unit: &p.unit,
        period: p.period,
        filters: p.filters,
        rollup,
        breakdown,
        k: p.k,
    };
    Ok(HttpResponse::Ok().json(report::index(&ctx, &request).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RankingQuery {
    /// Rank the units of this level (default: the level just below `within`).
    pub level: Option<String>,
    /// Rank within this unit's subtree; default: your unit, or the province.
    pub within: Option<String>,
    /// How many weakest items to list per unit (default 3).
    pub weakest: Option<String>,
}

/// Units of one level ranked by SIPAS, with the change against the previous period of the
/// same length and each unit's weakest items against the reference.
#[utoipa::path(get, path = "/api/v1/rankings", operation_id = "rankings", tag = "admin", security(("bearer" = [])),
    params(RankingQuery, Common),
    responses((status = 200, body = report::Rankings), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn rankings(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<RankingQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let parsed = parse_common(&state, &tree, &who, q.within.as_deref(), &common, &mut fields)?;
    let level = match q.level.as_deref() {
        Some(l) => {
            let level = Level::parse(l);
            if level.is_none() {
                add(&mut fields, "level", "must be province, department, district, commune or office");
            }
            level
        }
        None => parsed.as_ref().and_then(|p| {
            let below = tree.children(p.unit.id).first().and_then(|c| tree.get(*c));
            below.and_then(|u| Level::parse(&u.level)).or(Level::parse(&p.unit.level))
        }),
    };
    let weakest = match q.weakest.as_deref().map(str::parse::<usize>) {
        None => 3,
        Some(Ok(n)) if n <= 50 => n,
        Some(_) => {
            add(&mut fields, "weakest", "must be a whole number from 0 to 50");
            3
        }
    };
    let (Some(p), Some(level), true) = (parsed, level, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let ctx = Context { db: &state.db, catalog: &state.catalog, tree: &tree };
    let request = report::RankingRequest {
        form: &p.form,
        level,
        within: &p.unit,
        period: p.period,
        filters: p.filters,
        k: p.k,
        weakest,
    };
    Ok(HttpResponse::Ok().json(report::rankings(&ctx, &request).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// Unit code; default: your unit, or the province.
    pub unit: Option<String>,
    /// `month` (default) or `quarter`.
    pub interval: Option<String>,
}

/// A unit's SIPAS and groups month by month or quarter by quarter.
#[utoipa::path(get, path = "/api/v1/trends", operation_id = "trends", tag = "admin", security(("bearer" = [])),
    params(TrendQuery, Common),
    responses((status = 200, body = report::Trend), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn trends(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<TrendQuery>,
    common: web::Query<Common>,
) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let parsed = parse_common(&state, &tree, &who, q.unit.as_deref(), &common, &mut fields)?;
    let quarterly = match q.interval.as_deref() {
        None | Some("month") => false,
        Some("quarter") => true,
        Some(_) => {
            add(&mut fields, "interval", "must be month or quarter");
            false
        }
    };
    if parsed.as_ref().is_some_and(|p| p.period.series(quarterly).len() > 240) {
        add(&mut fields, "period", "a trend has at most 240 points");
    }
    let (Some(p), true) = (parsed, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let ctx = Context { db: &state.db, catalog: &state.catalog, tree: &tree };
    let trend = report::trend(&ctx, &p.form, &p.unit, p.period, quarterly, &p.filters, p.k).await?;
    Ok(HttpResponse::Ok().json(trend))
}
