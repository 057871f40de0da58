//! `POST /api/v1/responses`: the anonymous submission. 201 only once the response and all
//! its answers are committed; a retry with the same `submission_id` and body gets 200 and
//! the same id; with another body, 422 `idempotency_mismatch`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::forms::submission::{self, Problems, SubmissionBody};
use crate::startup::AppState;
use crate::store;
use crate::store::responses::Stored;
use crate::{Lang, vietnam_today};

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub submission_id: Uuid,
}

/// Where a submission comes from: it decides which limit applies and what is checked.
pub struct Origin {
    /// The client address as a limiter key (never stored).
    pub client: String,
    /// The enrolled kiosk device it came from.
    pub kiosk: Option<i32>,
    /// Sent from a survey page, which always carries its signed token.
    pub page: bool,
}

impl Origin {
    pub fn of(state: &AppState, req: &actix_web::HttpRequest) -> Origin {
        Origin { client: state.limits.client(req), kiosk: None, page: false }
    }
}

/// Validates and stores a submission: the one path the API and the survey pages share.
/// `Ok(Err(problems))` means the body broke rules; nothing was stored.
pub async fn accept(
    state: &AppState,
    body: &SubmissionBody,
    origin: &Origin,
) -> Result<Result<Stored, Problems>, ApiError> {
    match origin.kiosk {
        Some(device) => state.limits.kiosk(device),
        None => state.limits.submission(&origin.client),
    }
    .map_err(ApiError::TooManyRequests)?;
    if body.code.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        state.limits.code_attempt(&origin.client).map_err(ApiError::TooManyRequests)?;
    }
    let unit = store::units::unit_ref(&state.db, &body.unit, &state.forms).await?;
    match submission::validate(body, unit.as_ref(), &state.forms, vietnam_today(), None) {
        Ok(mut valid) => {
            valid.flagged = crate::reach::limits::suspicious(
                &state.form_secret,
                state.settings.min_fill_seconds,
                body.website.as_deref(),
                body.form_token.as_deref(),
                origin.page,
            );
            match store::responses::insert(&state.db, &state.catalog, &valid).await {
                Err(ApiError::CodeRejected) => {
                    let mut problems = Problems::default();
                    problems.0.push(("code".into(), submission::Problem::CodeUnknown));
                    Ok(Err(problems))
                }
                other => other.map(Ok),
            }
        }
        Err(problems) => Ok(Err(problems)),
    }
}

/// Submit one anonymous response.
#[utoipa::path(post, path = "/api/v1/responses", operation_id = "submitResponse", tag = "public",
    request_body = SubmissionBody,
    responses(
        (status = 201, description = "Stored durably", body = Accepted),
        (status = 200, description = "Replay of a stored submission; nothing new stored", body = Accepted),
        (status = 400, description = "Malformed JSON or wrong types", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 422, description = "Breaks a rule (every failing field listed), or idempotency_mismatch", body = crate::error::ErrorBody),
        (status = 429, description = "Too many submissions from this address: wait Retry-After seconds", body = crate::error::ErrorBody),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<SubmissionBody>,
) -> Result<HttpResponse, ApiError> {
    let origin = Origin::of(&state, &req);
    match accept(&state, &body, &origin).await? {
        Ok(Stored::Created(id)) => Ok(HttpResponse::Created().json(Accepted { id, submission_id: body.submission_id })),
        Ok(Stored::Replayed(id)) => Ok(HttpResponse::Ok().json(Accepted { id, submission_id: body.submission_id })),
        Err(problems) => Err(ApiError::validation(problems.to_fields(Lang::En))),
    }
}
