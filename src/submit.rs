//! Taking in a submission: the one use-case the API, the survey pages and the kiosk call.

use crate::error::ApiError;
use crate::forms::submission::{self, Problems, SubmissionBody};
use crate::startup::AppState;
use crate::store;
use crate::store::responses::Stored;
use crate::vietnam_today;

/// Where a submission comes from, as the server verified it (never as the body says): it
/// decides which limit applies and what is checked.
pub struct Origin {
    /// The client address as a limiter key (never stored).
    pub client: String,
    /// The enrolled kiosk device it came from (its cookie).
    pub kiosk: Option<i32>,
    /// The unit whose office software's key came with it (`X-Api-Key`).
    pub office: Option<i32>,
}

impl Origin {
    /// A post to the API: an office key, when one is sent, must be valid (401 otherwise).
    pub async fn of_api(state: &AppState, req: &actix_web::HttpRequest) -> Result<Origin, ApiError> {
        let office = match req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
            None => None,
            Some(key) => Some(
                crate::reach::keys::verify(&state.db, key, crate::reach::keys::KeyKind::Office)
                    .await?
                    .ok_or_else(|| ApiError::Unauthorized("unknown or disabled API key".into()))?
                    .unit_id,
            ),
        };
        Ok(Origin { client: state.limits.client(req), kiosk: None, office })
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
        state.limits.code_attempt(&state.db, &origin.client).await?;
    }
    // A unit that has ended (an old poster, a page cached before a merger): the response
    // counts for its successor from the effective date, and the old unit's receipt codes
    // stay valid there. A split unit's citizen chooses among the successors.
    let mut body = std::borrow::Cow::Borrowed(body);
    // The unit named, from the cached tree (one read of its generation); an ended one is
    // replaced by its successor.
    let tree = state.units.tree(&state.db).await?;
    let mut found = tree.by_code(&body.unit).cloned();
    if let Some(old) = found.as_ref().filter(|u| u.valid_to.is_some()) {
        let problem = match store::units::successor(&state.db, old).await? {
            store::units::Successor::Live(now) => {
                body.to_mut().unit = now.code.clone();
                found = Some(now);
                None
            }
            store::units::Successor::Split(units) => {
                Some(submission::Problem::UnitSplit(units.into_iter().map(|u| u.code).collect()))
            }
            store::units::Successor::Ended => Some(submission::Problem::UnitEnded),
        };
        if let Some(problem) = problem {
            let mut problems = Problems::default();
            problems.0.push(("unit".into(), problem));
            return Ok(Err(problems));
        }
    }
    let unit = found.map(|u| submission::UnitRef {
        id: u.id,
        forms: tree.effective_forms(u.id, &state.forms.ids()),
        code: u.code,
        requires_code: u.requires_code,
    });
    let mut code_units = Vec::new();
    if let Some(u) = &unit
        && body.code.as_deref().is_some_and(|c| !c.trim().is_empty())
    {
        code_units = tree.lineage(u.id);
    }
    let body = body.as_ref();
    // An enrolled kiosk stands at the counter and needs no receipt code; its cookie, checked
    // by the kiosk page, is what says so, whatever channel the body names.
    let code_exempt = origin.kiosk.is_some();
    match submission::validate(body, unit.as_ref(), &state.forms, vietnam_today(), None, code_exempt) {
        Ok(mut valid) => {
            valid.code_units = code_units;
            // Bots skip the page: a post with neither a survey page's signed token nor the
            // key of the unit's (or an ancestor's) office software is stored, but flagged
            // like a filled honeypot, out of the indices until an administrator accepts it.
            let vouched = match origin.office {
                Some(office) => tree.is_within(valid.unit_id, office),
                None => false,
            };
            valid.flagged = crate::reach::limits::suspicious(
                &state.form_secret,
                state.settings.min_fill_seconds,
                body.website.as_deref(),
                body.form_token.as_deref(),
                !vouched,
            );
            match state.writer.store(valid).await {
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
