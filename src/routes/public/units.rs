//! Public information about a unit: its name and the forms it takes.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::forms::Text;
use crate::startup::AppState;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct PublicForm {
    pub id: String,
    pub version: i32,
    pub title: Text,
}

#[derive(Serialize, ToSchema)]
pub struct PublicUnit {
    pub code: String,
    pub name_vi: String,
    pub name_en: Option<String>,
    pub level: String,
    pub parent: Option<String>,
    pub forms: Vec<PublicForm>,
    /// The survey page citizens open (QR codes point here).
    pub survey_url: String,
}

/// A unit's public information and the form(s) it takes.
#[utoipa::path(get, path = "/api/v1/units/{unit_code}", operation_id = "getUnit", tag = "public",
    params(("unit_code" = String, Path, description = "e.g. QNM.TK.AM")),
    responses((status = 200, body = PublicUnit), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such unit".into());
    let unit = store::units::by_code(&state.db, &path).await?.ok_or_else(not_found)?;
    let unit_ref = store::units::ref_of(&state.db, &unit, &state.forms).await?;
    let parent = match unit.parent_id {
        Some(pid) => store::units::by_id(&state.db, pid).await?.map(|p| p.code),
        None => None,
    };
    let forms = unit_ref
        .forms
        .iter()
        .filter_map(|id| state.forms.get(id))
        .map(|f| PublicForm { id: f.form.id.clone(), version: f.form.version, title: f.form.title.clone() })
        .collect();
    let base = state.settings.public_base_url.trim_end_matches('/');
    Ok(HttpResponse::Ok().json(PublicUnit {
        survey_url: format!("{base}/s/{}", unit.code),
        code: unit.code,
        name_vi: unit.name_vi,
        name_en: unit.name_en,
        level: unit.level,
        parent,
        forms,
    }))
}

/// The QR code of a unit's survey address, as SVG.
#[utoipa::path(get, path = "/api/v1/units/{unit_code}/qr.svg", operation_id = "unitQrSvg", tag = "public", params(("unit_code" = String, Path)),
    responses((status = 200, description = "SVG", content_type = "image/svg+xml"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn qr_svg(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let unit =
        store::units::by_code(&state.db, &path).await?.ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    let svg = crate::reach::qr::svg(&crate::reach::qr::survey_url(&state.settings, &unit.code), 320)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(svg))
}

/// The same as PNG.
#[utoipa::path(get, path = "/api/v1/units/{unit_code}/qr.png", operation_id = "unitQrPng", tag = "public", params(("unit_code" = String, Path)),
    responses((status = 200, description = "PNG", content_type = "image/png"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn qr_png(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let unit =
        store::units::by_code(&state.db, &path).await?.ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    let png = crate::reach::qr::png(&crate::reach::qr::survey_url(&state.settings, &unit.code), 600)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("image/png").insert_header(("Cache-Control", "public, max-age=3600")).body(png))
}
