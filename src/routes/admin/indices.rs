//! Indices, rankings and trends (signed in; a unit_manager only within its subtree).
//! The query is parsed by `publish::query`; every problem is listed at once (422).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::{ApiError, FieldErrors};
use crate::index::report::{self, Context};
pub use crate::publish::query::Common;
use crate::publish::query::{Periods, add, parse_breakdown, parse_common, parse_rollup};
use crate::startup::AppState;
use crate::store;
use crate::units::Level;

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
    let parsed = parse_common(&state, &tree, &who, q.unit.as_deref(), &common, Periods::Calendar, &mut fields)?;
    let rollup = parse_rollup(q.rollup.as_deref(), &mut fields);
    let filters = parsed.as_ref().map(|p| p.filters.clone()).unwrap_or_default();
    let breakdown = parse_breakdown(q.breakdown.as_deref(), &filters, &mut fields);
    let (Some(p), true) = (parsed, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let ctx = Context::settled(&state, &tree).await;
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
    let parsed = parse_common(&state, &tree, &who, q.within.as_deref(), &common, Periods::Calendar, &mut fields)?;
    let level = match q.level.as_deref() {
        Some(l) => {
            let level = Level::parse(l);
            if level.is_none() {
                add(
                    &mut fields,
                    "level",
                    "must be province, city, department, district, commune, ward, special_zone or office",
                );
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
    let ctx = Context::settled(&state, &tree).await;
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
    let parsed = parse_common(&state, &tree, &who, q.unit.as_deref(), &common, Periods::Months, &mut fields)?;
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
    let ctx = Context::settled(&state, &tree).await;
    let trend = report::trend(&ctx, &p.form, &p.unit, p.period, quarterly, &p.filters, p.k).await?;
    Ok(HttpResponse::Ok().json(trend))
}
