//! Sign in and out. A session is stored server-side (token hash, idle and absolute expiry);
//! the token is returned once, in the body and as an HttpOnly cookie.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpResponse, web};
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{self, Principal, Role, SESSION_COOKIE};
use crate::error::{ApiError, FieldErrors};
use crate::startup::AppState;
use crate::store;

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[validate(email(message = "must be an email address"), length(max = 254, message = "too long"))]
    pub email: String,
    #[validate(length(min = 1, max = 1024, message = "must be 1-1024 characters"))]
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

fn session_cookie(state: &AppState, value: String, max_age: CookieDuration) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.settings.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .finish()
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "admin", request_body = LoginBody,
    responses((status = 200, body = LoginResult),
              (status = 401, description = "Wrong email or password", body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn login(state: web::Data<AppState>, body: web::Json<LoginBody>) -> Result<HttpResponse, ApiError> {
    body.validate().map_err(validation_errors)?;
    let user = store::users::by_email(&state.db, &body.email).await?;
    let password = body.password.clone();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok =
        web::block(move || auth::verify_password(&password, stored.as_deref())).await.map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => return Err(ApiError::Unauthorized("wrong email or password".into())),
    };
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role stored"))?;
    let now = Utc::now();
    let expires_at = now + TimeDelta::hours(state.settings.session_absolute_hours);
    store::sessions::delete_expired(&state.db, now).await?;
    let (token, hash) = auth::new_token();
    store::sessions::insert(&state.db, hash.clone(), user.id, now, expires_at).await?;
    tracing::info!(user_id = user.id, "signed in");
    let cookie = session_cookie(&state, token.clone(), CookieDuration::hours(state.settings.session_absolute_hours));
    Ok(HttpResponse::Ok().cookie(cookie).json(LoginResult {
        token,
        expires_at,
        user: Principal { user_id: user.id, email: user.email, role, unit_id: user.unit_id, token_hash: hash },
    }))
}

/// Sign out: the session is deleted server-side, so the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "admin", security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    store::sessions::delete(&state.db, &who.token_hash).await?;
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
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    let unit = match who.unit_id {
        Some(id) => store::units::by_id(&state.db, id).await?.map(|u| u.code),
        None => None,
    };
    Ok(HttpResponse::Ok().json(Me { user: who, unit }))
}
