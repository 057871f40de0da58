//! Improvement plans over the API; what they do is `plans::service`, shared with the console.

use actix_web::{HttpResponse, web};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::plans::service::{
    self, CommentView, DetailQuery, ListQuery, NewComment, NewPlan, PlanChanges, PlanDetail, PlanList, PlanView,
};
use crate::startup::AppState;

/// Plans of a unit and the units below it.
#[utoipa::path(get, path = "/api/v1/plans", operation_id = "listPlans", tag = "admin", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = PlanList), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state, &who, &q).await?))
}

/// Make a plan: the baseline of each criterion is frozen as published now.
#[utoipa::path(post, path = "/api/v1/plans", operation_id = "createPlan", tag = "admin", security(("bearer" = [])),
    request_body = NewPlan,
    responses((status = 201, body = PlanView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewPlan>,
) -> Result<HttpResponse, ApiError> {
    let made = service::create(&state, &who, &body).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("/api/v1/plans/{}", made.id))).json(made))
}

/// A plan, its criteria before and after, and its comments.
#[utoipa::path(get, path = "/api/v1/plans/{id}", operation_id = "getPlan", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The plan's id"), DetailQuery),
    responses((status = 200, body = PlanDetail), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<String>,
    q: web::Query<DetailQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::detail(&state, &who, &id, q.from.as_deref()).await?))
}

/// Change a plan's text, deadline or status (its criteria and baseline stay as made).
#[utoipa::path(patch, path = "/api/v1/plans/{id}", operation_id = "updatePlan", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The plan's id")),
    request_body = PlanChanges,
    responses((status = 200, body = PlanView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<PlanChanges>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::update(&state, &who, &id, body.into_inner()).await?))
}

/// Comment on a plan (anyone who can see its unit).
#[utoipa::path(post, path = "/api/v1/plans/{id}/comments", operation_id = "commentPlan", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The plan's id")),
    request_body = NewComment,
    responses((status = 201, body = CommentView), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn comment(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<NewComment>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(service::comment(&state, &who, &id, &body).await?))
}
