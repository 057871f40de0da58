//! Form definitions as JSON.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::forms::{Form, RespondentType, Text};
use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
pub struct FormSummary {
    pub id: String,
    pub version: i32,
    pub title: Text,
    pub respondent_types: Vec<RespondentType>,
    /// Number of items in the index.
    pub items: usize,
    pub content_hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct FormList {
    pub forms: Vec<FormSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct FormDefinition {
    #[serde(flatten)]
    pub form: Form,
    pub content_hash: String,
}

/// Every form this service takes.
#[utoipa::path(get, path = "/api/v1/forms", operation_id = "listForms", tag = "public",
    responses((status = 200, body = FormList)))]
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let forms = state
        .forms
        .all()
        .map(|f| FormSummary {
            id: f.form.id.clone(),
            version: f.form.version,
            title: f.form.title.clone(),
            respondent_types: f.form.respondent_types.clone(),
            items: f.form.index_items().len(),
            content_hash: f.content_hash.clone(),
        })
        .collect();
    HttpResponse::Ok().json(FormList { forms })
}

/// One form's definition: index tree (groups with their items), scales, other questions.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}", operation_id = "getForm", tag = "public",
    params(("form_id" = String, Path, description = "e.g. sipas-2017")),
    responses((status = 200, body = FormDefinition), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let f = state.forms.get(&path).ok_or_else(|| ApiError::NotFound("no such form".into()))?;
    Ok(HttpResponse::Ok().json(FormDefinition { form: f.form.clone(), content_hash: f.content_hash.clone() }))
}
