//! Service volumes (dossiers per unit and month): read within one's scope, set by admins.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, FieldErrors};
use crate::imports::parse_volume;
use crate::index::period::Period;
use crate::startup::AppState;
use crate::store;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VolumeQuery {
    /// Unit code: its volumes and those of the units below it.
    pub unit: Option<String>,
    /// `2024`, `2024-Q1` or `2024-03`; default: this year.
    pub period: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VolumeEntry {
    pub unit: String,
    /// `YYYY-MM`.
    pub month: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub dossiers: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VolumeList {
    /// 1 to 10,000 entries when sent (the body's 64 KiB limit comes first).
    pub volumes: Vec<VolumeEntry>,
}

/// Recorded volumes.
#[utoipa::path(get, path = "/api/v1/admin/volumes", operation_id = "listVolumes", tag = "admin", security(("bearer" = [])),
    params(VolumeQuery),
    responses((status = 200, body = VolumeList), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<VolumeQuery>,
) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let root = match (&q.unit, who.unit_id) {
        (Some(code), _) => tree.by_code(code).ok_or_else(|| ApiError::NotFound(format!("no unit {code}")))?,
        (None, Some(id)) => tree.get(id).ok_or_else(|| ApiError::NotFound("your unit is gone".into()))?,
        (None, None) => tree
            .all()
            .iter()
            .find(|u| u.parent_id.is_none())
            .ok_or_else(|| ApiError::NotFound("no units yet".into()))?,
    };
    who.require_unit(&tree, root.id)?;
    let period = match &q.period {
        Some(p) => Period::parse(p).ok_or_else(|| ApiError::field("period", "must be 2024, 2024-Q1 or 2024-03"))?,
        None => Period::year(chrono::Datelike::year(&crate::vietnam_today()))
            .ok_or_else(|| ApiError::internal("no current year"))?,
    };
    let rows = store::volumes::list(&state.db, &tree.subtree(root.id), &period).await?;
    let volumes = rows
        .into_iter()
        .map(|r| VolumeEntry {
            unit: tree.get(r.unit_id).map(|u| u.code.clone()).unwrap_or_default(),
            month: r.month.format("%Y-%m").to_string(),
            dossiers: r.dossiers,
        })
        .collect();
    Ok(HttpResponse::Ok().json(VolumeList { volumes }))
}

/// Record volumes (admin): each entry replaces the unit's figure for that month.
#[utoipa::path(put, path = "/api/v1/admin/volumes", operation_id = "setVolume", tag = "admin", security(("bearer" = [])),
    request_body = VolumeList,
    responses((status = 200, body = VolumeList), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn set(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<VolumeList>,
) -> Result<HttpResponse, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let mut rows = Vec::new();
    if body.volumes.is_empty() || body.volumes.len() > 10_000 {
        fields.insert("volumes".into(), vec!["list 1 to 10000 entries".into()]);
    }
    for (i, v) in body.volumes.iter().enumerate() {
        let dossiers = v.dossiers.to_string();
        match parse_volume(&tree, Some(&v.unit), Some(&v.month), Some(&dossiers)) {
            Ok(row) => rows.push(row),
            Err(problems) => {
                for p in problems {
                    let (field, message) = p.split_once(": ").unwrap_or(("entry", &p));
                    fields.entry(format!("volumes[{i}].{field}")).or_default().push(message.to_string());
                }
            }
        }
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    store::volumes::set(&state.db, &rows).await?;
    let units: Vec<&str> = body.volumes.iter().map(|v| v.unit.as_str()).collect();
    crate::audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "volumes_set",
        None,
        serde_json::json!({"entries": rows.len(), "units": units}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(body.into_inner()))
}
