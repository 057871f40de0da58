//! Accounts (admins only): list, create, change role, unit or disabled flag.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::auth::users::{NewUser, UserChange, change_user, create_user};
use crate::entities::user;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;
use crate::units::UnitTree;

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i32,
    pub email: String,
    pub role: String,
    pub unit: Option<String>,
    pub disabled: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub fn view(tree: &UnitTree, u: &user::Model) -> UserView {
    UserView {
        id: u.id,
        email: u.email.clone(),
        role: u.role.clone(),
        unit: u.unit_id.and_then(|id| tree.get(id)).map(|u| u.code.clone()),
        disabled: u.disabled,
        created_at: u.created_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// Every account.
#[utoipa::path(get, path = "/api/v1/admin/users", operation_id = "listUsers", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let users = store::users::all(&state.db).await?.iter().map(|u| view(&tree, u)).collect();
    Ok(HttpResponse::Ok().json(UserList { users }))
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/admin/users", operation_id = "createUser", tag = "admin", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = UserView), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let created = create_user(&state, &who, &body).await?;
    let tree = store::units::tree(&state.db).await?;
    Ok(HttpResponse::Created().json(view(&tree, &created)))
}

/// Change an account's role, unit or disabled flag (disabling ends its sessions).
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", operation_id = "updateUser", tag = "admin", security(("bearer" = [])),
    params(("id" = i32, Path)), request_body = UserChange,
    responses((status = 200, body = UserView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i32>,
    body: web::Json<UserChange>,
) -> Result<HttpResponse, ApiError> {
    let updated = change_user(&state, &who, *id, &body).await?;
    let tree = store::units::tree(&state.db).await?;
    Ok(HttpResponse::Ok().json(view(&tree, &updated)))
}
