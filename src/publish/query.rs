//! The typed query every figure-bearing output answers, parsed once at the edge: the unit
//! (within the caller's scope), the form, a calendar period the lattice protects, at most
//! one breakdown dimension, and k. Every problem is listed at once (422).

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Role};
use crate::entities::unit;
use crate::error::{ApiError, FieldErrors};
use crate::forms::{Channel, RespondentType};
use crate::index::catalog::Versioned;
use crate::index::period::Period;
use crate::index::report::{Breakdown, Filters, Rollup};
use crate::startup::AppState;
use crate::units::UnitTree;

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
    #[param(pattern = "^(citizen|organization)$")]
    pub respondent_type: Option<String>,
    /// `in_person`, `online`, `kiosk`, `phone` or `paper`.
    #[param(pattern = "^(in_person|online|kiosk|phone|paper)$")]
    pub channel: Option<String>,
    /// A field code of the form.
    pub service: Option<String>,
    /// Suppression threshold; never below the configured one.
    pub k: Option<String>,
}

pub struct Parsed {
    pub form: std::sync::Arc<Versioned>,
    pub unit: unit::Model,
    pub period: Period,
    pub filters: Filters,
    pub k: u64,
}

pub fn add(fields: &mut FieldErrors, field: &str, message: impl Into<String>) {
    fields.entry(field.to_string()).or_default().push(message.into());
}

/// The unit a query is about: the one named, else the caller's own, else the root.
pub fn pick_unit(tree: &UnitTree, who: &Principal, code: Option<&str>) -> Result<unit::Model, ApiError> {
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

/// The optional `as_at` day of a table of units in the tree as it stood (empty: today's).
pub fn parse_as_at(value: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let mut fields = FieldErrors::new();
            parse_date(&mut fields, "as_at", s).map(Some).ok_or_else(|| ApiError::validation(fields))
        }
    }
}

fn parse_date(fields: &mut FieldErrors, name: &str, value: &str) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
    if parsed.is_none() {
        add(fields, name, "must be a date, YYYY-MM-DD");
    }
    parsed
}

pub fn parse_common(
    state: &AppState,
    tree: &UnitTree,
    who: &Principal,
    unit_code: Option<&str>,
    q: &Common,
    periods: Periods,
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
                Some((f, t)) => Period::new(f, t).filter(|p| match periods {
                    Periods::Calendar if p.label().contains("..") => {
                        add(fields, "period", CALENDAR_ONLY);
                        false
                    }
                    Periods::Months if p.series(false).iter().any(|m| m.label().contains("..")) => {
                        add(
                            fields,
                            "period",
                            "from and to must cover whole months (from the 1st to a month's last day)",
                        );
                        false
                    }
                    _ => true,
                }),
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
    if [&filters.respondent_type, &filters.channel, &filters.service].iter().filter(|f| f.is_some()).count() > 1 {
        add(fields, "filters", ONE_DIMENSION);
    }
    Ok(form.zip(period).map(|(form, period)| Parsed { form, unit, period, filters, k }))
}

const CALENDAR_ONLY: &str = "from and to must span one calendar year, quarter or month (period=2024, 2024-Q1 or 2024-03): figures are published for those only, since two other ranges could differ by a small group";
const ONE_DIMENSION: &str = "one breakdown at a time: give at most one of respondent_type, channel and service (crossed, they would single out small groups)";

/// Which periods an output may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Periods {
    /// One calendar year, quarter or month: a cell of the lattice.
    Calendar,
    /// A run of whole months (a trend: each point is a month or a quarter).
    Months,
}

/// `pooled` (default), `mean_of_children` or `volume_weighted`.
pub fn parse_rollup(value: Option<&str>, fields: &mut FieldErrors) -> Rollup {
    match value {
        None | Some("pooled") => Rollup::Pooled,
        Some("mean_of_children") => Rollup::MeanOfChildren,
        Some("volume_weighted") => Rollup::VolumeWeighted,
        Some(_) => {
            add(fields, "rollup", "must be pooled, mean_of_children or volume_weighted");
            Rollup::Pooled
        }
    }
}

/// A breakdown, checked against the filter: one dimension at a time (a filter with a
/// breakdown by units is fine).
pub fn parse_breakdown(value: Option<&str>, filters: &Filters, fields: &mut FieldErrors) -> Option<Breakdown> {
    let b = match value {
        None => None,
        Some("respondent_type") => Some(Breakdown::RespondentType),
        Some("channel") => Some(Breakdown::Channel),
        Some("service") => Some(Breakdown::Service),
        Some("unit") => Some(Breakdown::Unit),
        Some(_) => {
            add(fields, "breakdown", "must be respondent_type, channel, service or unit");
            return None;
        }
    };
    let dim = filters.dimension().0;
    if let (Some(d), Some(split)) = (dim, b.and_then(Breakdown::dim))
        && d != split
    {
        add(fields, "breakdown", ONE_DIMENSION);
    }
    b
}
