//! Unit administration. Everyone signed in reads the units in their scope (a unit_manager
//! its own subtree, 403 elsewhere); only admins create and change units.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::entities::unit;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;
use crate::units::admin::{CreateUnit, UpdateUnit, create_unit, update_unit};
use crate::units::{UnitTree, parse_form_list};

#[derive(Serialize, ToSchema)]
pub struct UnitView {
    pub code: String,
    pub parent: Option<String>,
    pub level: String,
    pub name_vi: String,
    pub name_en: Option<String>,
    /// Forms set on this unit; `null` inherits from the parent.
    pub forms: Option<Vec<String>>,
    /// Forms the unit takes after inheritance.
    pub effective_forms: Vec<String>,
    pub requires_code: bool,
    /// First day of the unit, when it was created by a restructuring.
    pub valid_from: Option<chrono::NaiveDate>,
    /// The day it ended (merged, split or ended); its responses then count under `parent`.
    pub valid_to: Option<chrono::NaiveDate>,
}

fn view(tree: &UnitTree, u: &unit::Model, all_forms: &[String]) -> UnitView {
    UnitView {
        code: u.code.clone(),
        parent: u.parent_id.and_then(|p| tree.get(p)).map(|p| p.code.clone()),
        level: u.level.clone(),
        name_vi: u.name_vi.clone(),
        name_en: u.name_en.clone(),
        forms: u.forms.as_deref().map(parse_form_list),
        effective_forms: tree.effective_forms(u.id, all_forms),
        requires_code: u.requires_code,
        valid_from: u.valid_from,
        valid_to: u.valid_to,
    }
}

#[derive(Serialize, ToSchema)]
pub struct UnitList {
    pub units: Vec<UnitView>,
}

/// Units in the caller's scope, ordered by code.
#[utoipa::path(get, path = "/api/v1/admin/units", operation_id = "listUnits", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UnitList), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let all_forms = state.forms.ids();
    let units = tree.all().iter().filter(|u| who.can_see(&tree, u.id)).map(|u| view(&tree, u, &all_forms)).collect();
    Ok(HttpResponse::Ok().json(UnitList { units }))
}

/// One unit.
#[utoipa::path(get, path = "/api/v1/admin/units/{unit_code}", operation_id = "getUnitAdmin", tag = "admin", security(("bearer" = [])),
    params(("unit_code" = String, Path)),
    responses((status = 200, body = UnitView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tree = store::units::tree(&state.db).await?;
    let u = tree.by_code(&path).ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    who.require_unit(&tree, u.id)?;
    Ok(HttpResponse::Ok().json(view(&tree, u, &state.forms.ids())))
}

/// Create a unit (admin).
#[utoipa::path(post, path = "/api/v1/admin/units", operation_id = "createUnit", tag = "admin", security(("bearer" = [])),
    request_body = CreateUnit,
    responses((status = 201, body = UnitView), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<CreateUnit>,
) -> Result<HttpResponse, ApiError> {
    let created = create_unit(&state, &who, &body).await?;
    let tree = store::units::tree(&state.db).await?;
    Ok(HttpResponse::Created().json(view(&tree, &created, &state.forms.ids())))
}

/// Change a unit (admin): names, level, parent (no cycles), forms.
#[utoipa::path(patch, path = "/api/v1/admin/units/{unit_code}", operation_id = "updateUnit", tag = "admin", security(("bearer" = [])),
    params(("unit_code" = String, Path)), request_body = UpdateUnit,
    responses((status = 200, body = UnitView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateUnit>,
) -> Result<HttpResponse, ApiError> {
    let updated = update_unit(&state, &who, &path, &body).await?;
    let tree = store::units::tree(&state.db).await?;
    Ok(HttpResponse::Ok().json(view(&tree, &updated, &state.forms.ids())))
}
