//! `POST /api/v1/responses`: the anonymous submission. 201 only once the response and all
//! its answers are committed; a retry with the same `submission_id` and body gets 200 and
//! the same id; with another body, 422 `idempotency_mismatch`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Lang;
use crate::error::ApiError;
use crate::forms::submission::SubmissionBody;
use crate::startup::AppState;
use crate::store::responses::Stored;
use crate::submit::{Origin, accept};

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub submission_id: Uuid,
}

/// Submit one anonymous response.
#[utoipa::path(post, path = "/api/v1/responses", operation_id = "submitResponse", tag = "public",
    request_body = SubmissionBody,
    params(("X-Api-Key" = Option<String>, Header, description = "an office key: vouches for submissions to its unit and the units below; without it (or a survey page's form_token) a submission is stored but flagged")),
    responses(
        (status = 201, description = "Stored durably", body = Accepted),
        (status = 200, description = "Replay of a stored submission; nothing new stored", body = Accepted),
        (status = 400, description = "Malformed JSON or wrong types", body = crate::error::ErrorBody),
        (status = 401, description = "An X-Api-Key that is unknown or disabled", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 422, description = "Breaks a rule (every failing field listed), or idempotency_mismatch", body = crate::error::ErrorBody),
        (status = 429, description = "Too many submissions from this address: wait Retry-After seconds", body = crate::error::ErrorBody),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<SubmissionBody>,
) -> Result<HttpResponse, ApiError> {
    let origin = Origin::of_api(&state, &req).await?;
    match accept(&state, &body, &origin).await? {
        Ok(Stored::Created(id)) => Ok(HttpResponse::Created().json(Accepted { id, submission_id: body.submission_id })),
        Ok(Stored::Replayed(id)) => Ok(HttpResponse::Ok().json(Accepted { id, submission_id: body.submission_id })),
        Err(problems) => Err(ApiError::validation(problems.to_fields(Lang::En))),
    }
}
