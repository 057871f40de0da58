//! Sign in and out. A session is stored server-side (token hash, idle and absolute expiry);
//! the token is returned once, in the body and as an HttpOnly cookie.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::audit;
use crate::auth::{self, Principal, session_cookie};
use crate::error::{ApiError, FieldErrors};
use crate::startup::AppState;
use crate::store;

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[validate(email(message = "must be an email address"), length(max = 254, message = "too long"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[validate(length(min = 1, max = 1024, message = "must be 1-1024 characters"))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResult {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
    pub user: Principal,
}

/// Turns `validator` errors into the common field map.
pub fn validation_errors(errors: validator::ValidationErrors) -> ApiError {
    let mut fields = FieldErrors::new();
    for (field, errs) in errors.field_errors() {
        let messages =
            errs.iter().map(|e| e.message.as_ref().map_or_else(|| e.code.to_string(), |m| m.to_string())).collect();
        fields.insert(field.to_string(), messages);
    }
    ApiError::validation(fields)
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "admin", request_body = LoginBody,
    responses((status = 200, body = LoginResult),
              (status = 401, description = "Wrong email or password", body = crate::error::ErrorBody),
              (status = 429, description = "Too many attempts from this address", body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.sign_in(&state.db, &state.limits.client(&req)).await?;
    body.validate().map_err(validation_errors)?;
    let signed = auth::sign_in(&state, &body.email, &body.password, "api").await?;
    let cookie =
        session_cookie(&state, signed.token.clone(), CookieDuration::hours(state.settings.session_absolute_hours));
    Ok(HttpResponse::Ok().cookie(cookie).json(LoginResult {
        token: signed.token,
        expires_at: signed.expires_at,
        user: signed.principal,
    }))
}

/// Sign out: the session is deleted server-side, so the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "admin", security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    store::sessions::delete(&state.db, &who.token_hash).await?;
    audit::record(&state.db, Some((who.user_id, &who.email)), "logout", None, serde_json::json!({})).await?;
    let cookie = session_cookie(&state, String::new(), CookieDuration::ZERO);
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: Principal,
    /// A unit_manager's unit.
    pub unit: Option<String>,
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/auth/me", operation_id = "me", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    let unit = match who.unit_id {
        Some(id) => store::units::by_id(&state.db, id).await?.map(|u| u.code),
        None => None,
    };
    Ok(HttpResponse::Ok().json(Me { user: who, unit }))
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[validate(email(message = "must be an email address"), length(max = 254, message = "too long"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// Ask for a password-reset link by email. Always 202: the answer does not tell whether
/// the address has an account.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", operation_id = "requestPasswordReset", tag = "admin", request_body = ResetRequest,
    responses((status = 202, description = "A link was sent if the address has an account"),
              (status = 429, description = "Too many requests from this address or for this email: wait Retry-After seconds", body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn request_reset(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    body.validate().map_err(validation_errors)?;
    auth::reset::request(&state, &state.limits.client(&req), &body.email).await?;
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({"message": "if this address has an account, a link is on its way"})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    /// At least 15 characters, not a common password.
    #[schema(min_length = 15, max_length = 128)]
    pub password: String,
}

/// Set a new password with the emailed token (once, within the hour); every session of the
/// account ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", operation_id = "confirmPasswordReset", tag = "admin", request_body = ResetConfirm,
    responses((status = 204, description = "Password changed"), (status = 422, body = crate::error::ErrorBody)))]
pub async fn confirm_reset(
    state: web::Data<AppState>,
    body: web::Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    auth::reset::confirm(&state, &body.token, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}
