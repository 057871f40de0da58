//! Receipt codes, invitations and API keys for a unit. Codes and invitations are for an
//! admin, the unit's manager, or the office's own software with the unit's `office` key
//! (`X-Api-Key`); keys are created by admins.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::entities::unit;
use crate::error::ApiError;
use crate::reach::keys::{self, KeyKind};
use crate::reach::{codes, invitations};
use crate::startup::AppState;
use crate::{audit, store};

/// Who may act for a unit: (user id, email) of a signed-in user, or None for an office key.
async fn unit_caller(
    req: &HttpRequest,
    state: &AppState,
    code: &str,
) -> Result<(unit::Model, Option<(i32, String)>), ApiError> {
    let unit =
        store::units::by_code(&state.db, code).await?.ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        let key = keys::verify(&state.db, key, KeyKind::Office)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or disabled API key".into()))?;
        if key.unit_id != unit.id {
            return Err(ApiError::Forbidden("this key belongs to another unit".into()));
        }
        return Ok((unit, None));
    }
    let who = Principal::extract(req).await?;
    let tree = store::units::tree(&state.db).await?;
    match who.role {
        Role::Admin => {}
        Role::UnitManager => who.require_unit(&tree, unit.id)?,
        Role::Analyst => return Err(ApiError::Forbidden("analysts read; they do not issue codes".into())),
    }
    Ok((unit, Some((who.user_id, who.email))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// How many codes (1 to 1000).
    pub count: u32,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedCodes {
    pub unit: String,
    /// Printed on receipts; each unlocks one response. Shown only now.
    pub codes: Vec<String>,
    /// Last valid day.
    pub expires_on: chrono::NaiveDate,
    /// The survey address to print beside them.
    pub survey_url: String,
}

/// Issue one-time receipt codes for a unit.
#[utoipa::path(post, path = "/api/v1/units/{unit_code}/codes", operation_id = "issueCodes", tag = "admin",
    params(("unit_code" = String, Path), ("X-Api-Key" = Option<String>, Header, description = "the unit's office key, instead of a session")),
    request_body = CodeRequest, security(("bearer" = [])),
    responses((status = 201, body = IssuedCodes), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn issue_codes(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (unit, actor) = unit_caller(&req, &state, &path).await?;
    if !(1..=1000).contains(&body.count) {
        return Err(ApiError::field("count", "must be 1 to 1000"));
    }
    let expires_on = codes::expiry(crate::vietnam_today(), state.settings.code_validity_days);
    let issued = codes::issue(&state.db, unit.id, body.count as usize, expires_on).await?;
    let actor_ref = actor.as_ref().map(|(id, e)| (*id, e.as_str()));
    audit::record(
        &state.db,
        actor_ref,
        "codes_issued",
        Some(&unit.code),
        json!({"count": issued.len(), "by_key": actor.is_none()}),
    )
    .await?;
    Ok(HttpResponse::Created().json(IssuedCodes {
        survey_url: crate::reach::qr::survey_url(&state.settings, &unit.code),
        unit: unit.code,
        codes: issued,
        expires_on,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    /// Addresses to invite (at most 500); used to send, then forgotten.
    pub emails: Vec<String>,
}

/// Email one-time survey links (each with its own receipt code) to a list of addresses.
#[utoipa::path(post, path = "/api/v1/units/{unit_code}/invitations", operation_id = "sendInvitations", tag = "admin",
    params(("unit_code" = String, Path), ("X-Api-Key" = Option<String>, Header, description = "the unit's office key, instead of a session")),
    request_body = InvitationRequest, security(("bearer" = [])),
    responses((status = 202, description = "Queued in the outbox"), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let (unit, actor) = unit_caller(&req, &state, &path).await?;
    let queued =
        invitations::send(&state, &unit, &body.emails, actor.as_ref().map(|(id, e)| (*id, e.as_str()))).await?;
    Ok(HttpResponse::Accepted().json(json!({"queued": queued})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// `office` (codes and invitations) or `kiosk` (a counter tablet).
    pub kind: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewKey {
    pub id: i32,
    pub unit: String,
    pub kind: String,
    pub name: String,
    /// Shown only now. A kiosk is enrolled by opening `enroll_url` on the tablet.
    pub key: String,
    pub enroll_url: Option<String>,
}

/// Create an API key for a unit (admin).
#[utoipa::path(post, path = "/api/v1/admin/units/{unit_code}/keys", operation_id = "createOfficeKey", tag = "admin", security(("bearer" = [])),
    params(("unit_code" = String, Path)), request_body = KeyRequest,
    responses((status = 201, body = NewKey), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_key(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<String>,
    body: web::Json<KeyRequest>,
) -> Result<HttpResponse, ApiError> {
    who.require_admin()?;
    let unit =
        store::units::by_code(&state.db, &path).await?.ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    let kind = KeyKind::parse(&body.kind).ok_or_else(|| ApiError::field("kind", "must be office or kiosk"))?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::field("name", "must be 1-100 characters"));
    }
    let (key, model) = keys::create(&state.db, unit.id, kind, name).await?;
    audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "key_created",
        Some(&unit.code),
        json!({"kind": kind.as_str(), "name": name}),
    )
    .await?;
    let base = state.settings.public_base_url.trim_end_matches('/');
    Ok(HttpResponse::Created().json(NewKey {
        id: model.id,
        enroll_url: (kind == KeyKind::Kiosk).then(|| format!("{base}/k/{}?enroll={key}", unit.code)),
        unit: unit.code,
        kind: kind.as_str().into(),
        name: model.name,
        key,
    }))
}
