//! Taking in a submission: the one use-case the API, the survey pages and the kiosk call.

use crate::error::ApiError;
use crate::forms::submission::{self, Problems, SubmissionBody};
use crate::startup::AppState;
use crate::store;
use crate::store::responses::Stored;
use crate::vietnam_today;

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
    // An enrolled kiosk stands at the counter and needs no receipt code; its cookie, checked
    // by the kiosk page, is what says so, whatever channel the body names.
    let code_exempt = origin.kiosk.is_some();
    match submission::validate(body, unit.as_ref(), &state.forms, vietnam_today(), None, code_exempt) {
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
