//! The route table, in one place, and the OpenAPI document generated from the handlers.

pub mod admin;
pub mod public;

use actix_web::{HttpRequest, HttpResponse, Resource, web};
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::web as pages;
use crate::web::console;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, patch, post};
    cfg.service(resource("/healthz", "GET").route(get().to(public::health::healthz)))
        // Browsers ask for it on every page; an empty answer keeps their consoles clean.
        .service(resource("/favicon.ico", "GET").route(get().to(favicon)))
        .service(resource("/readyz", "GET").route(get().to(public::health::readyz)))
        .service(resource("/api/openapi.json", "GET").route(get().to(openapi_json)))
        // Public: no login.
        .service(resource("/api/v1/forms", "GET").route(get().to(public::forms::list)))
        .service(resource("/api/v1/forms/{form_id}", "GET").route(get().to(public::forms::get)))
        .service(resource("/api/v1/units/{unit_code}", "GET").route(get().to(public::units::get)))
        .service(resource("/api/v1/responses", "POST").route(post().to(public::responses::submit)))
        .service(resource("/api/v1/units/{unit_code}/qr.svg", "GET").route(get().to(public::units::qr_svg)))
        .service(resource("/api/v1/units/{unit_code}/qr.png", "GET").route(get().to(public::units::qr_png)))
        .service(resource("/api/v1/units/{unit_code}/codes", "POST").route(post().to(admin::reach::issue_codes)))
        .service(resource("/api/v1/units/{unit_code}/invitations", "POST").route(post().to(admin::reach::invite)))
        .service(resource("/api/v1/admin/units/{unit_code}/keys", "POST").route(post().to(admin::reach::create_key)))
        .service(resource("/s/app.js", "GET").route(get().to(pages::survey_js)))
        .service(resource("/s/sw.js", "GET").route(get().to(pages::service_worker_js)))
        .service(
            resource("/s/{unit_code}", "GET, POST")
                .route(get().to(pages::survey::show))
                .route(post().to(pages::survey::submit)),
        )
        .service(
            resource("/k/{unit_code}", "GET, POST")
                .route(get().to(pages::survey::kiosk))
                .route(post().to(pages::survey::kiosk_submit)),
        )
        // Admin: bearer token or session cookie.
        .service(resource("/api/v1/auth/login", "POST").route(post().to(admin::auth::login)))
        .service(resource("/api/v1/auth/logout", "POST").route(post().to(admin::auth::logout)))
        .service(resource("/api/v1/auth/me", "GET").route(get().to(admin::auth::me)))
        .service(resource("/api/v1/auth/password-reset", "POST").route(post().to(admin::auth::request_reset)))
        .service(resource("/api/v1/auth/password-reset/confirm", "POST").route(post().to(admin::auth::confirm_reset)))
        .service(
            resource("/api/v1/admin/units", "GET, POST")
                .route(get().to(admin::units::list))
                .route(post().to(admin::units::create)),
        )
        .service(
            resource("/api/v1/admin/units/{unit_code}", "GET, PATCH")
                .route(get().to(admin::units::get))
                .route(patch().to(admin::units::update)),
        )
        .service(resource("/api/v1/indices", "GET").route(get().to(admin::indices::indices)))
        .service(resource("/api/v1/rankings", "GET").route(get().to(admin::indices::rankings)))
        .service(resource("/api/v1/trends", "GET").route(get().to(admin::indices::trends)))
        .service(
            resource("/api/v1/plans", "GET, POST")
                .route(get().to(admin::plans::list))
                .route(post().to(admin::plans::create)),
        )
        .service(
            resource("/api/v1/plans/{id}", "GET, PATCH")
                .route(get().to(admin::plans::get))
                .route(patch().to(admin::plans::update)),
        )
        .service(resource("/api/v1/plans/{id}/comments", "POST").route(post().to(admin::plans::comment)))
        .service(resource("/api/v1/exports/indices.{format}", "GET").route(get().to(admin::exports::indices)))
        .service(resource("/api/v1/exports/microdata.{format}", "GET").route(get().to(admin::exports::microdata)))
        .service(
            resource("/api/v1/exports/microdata.{format}/jobs", "POST").route(post().to(admin::exports::start_job)),
        )
        .service(resource("/api/v1/exports/jobs", "GET").route(get().to(admin::exports::list_jobs)))
        .service(
            resource("/api/v1/exports/jobs/{id}", "GET, DELETE")
                .route(get().to(admin::exports::get_job))
                .route(web::delete().to(admin::exports::cancel_job)),
        )
        .service(resource("/api/v1/exports/jobs/{id}/file", "GET").route(get().to(admin::exports::job_file)))
        .service(
            resource("/api/v1/admin/users", "GET, POST")
                .route(get().to(admin::users::list))
                .route(post().to(admin::users::create)),
        )
        .service(resource("/api/v1/admin/users/{id}", "PATCH").route(patch().to(admin::users::update)))
        .service(resource("/api/v1/admin/audit", "GET").route(get().to(admin::audit::list)))
        .service(resource("/api/v1/admin/audit.csv", "GET").route(get().to(admin::audit::csv)))
        .service(
            resource("/api/v1/admin/volumes", "GET, PUT")
                .route(get().to(admin::volumes::list))
                .route(web::put().to(admin::volumes::set)),
        )
        // The console: HTML pages behind a session cookie.
        .service(resource("/console", "GET").route(get().to(console::pages::overview)))
        .service(
            resource("/console/login", "GET, POST")
                .route(get().to(console::login::login_page))
                .route(post().to(console::login::login)),
        )
        .service(resource("/console/logout", "POST").route(post().to(console::login::logout)))
        .service(
            resource("/console/forgot", "GET, POST")
                .route(get().to(console::login::forgot_page))
                .route(post().to(console::login::forgot)),
        )
        .service(
            resource("/console/reset/{token}", "GET, POST")
                .route(get().to(console::login::reset_page))
                .route(post().to(console::login::reset)),
        )
        .service(resource("/console/lang/{lang}", "GET").route(get().to(console::login::lang)))
        .service(resource("/console/rankings", "GET").route(get().to(console::pages::rankings)))
        .service(resource("/console/units/{unit_code}", "GET").route(get().to(console::pages::unit_page)))
        .service(resource("/console/units/{unit_code}/report", "GET").route(get().to(console::pages::unit_report)))
        .service(resource("/console/units/{unit_code}/poster", "GET").route(get().to(console::pages::poster)))
        .service(
            resource("/console/plans", "GET, POST")
                .route(get().to(console::plans::list))
                .route(post().to(console::plans::create)),
        )
        .service(
            resource("/console/plans/{id}", "GET, POST")
                .route(get().to(console::plans::detail))
                .route(post().to(console::plans::update)),
        )
        .service(resource("/console/plans/{id}/comments", "POST").route(post().to(console::plans::comment)))
        .service(resource("/console/exports", "GET").route(get().to(console::pages::exports)))
        .service(resource("/console/exports/indices.{format}", "GET").route(get().to(console::pages::export_indices)))
        .service(
            resource("/console/exports/microdata.{format}", "GET").route(get().to(console::pages::export_microdata)),
        )
        .service(resource("/console/exports/jobs", "POST").route(post().to(console::pages::start_export_job)))
        .service(resource("/console/exports/jobs/{id}", "GET").route(get().to(console::pages::export_job)))
        .service(
            resource("/console/exports/jobs/{id}/cancel", "POST").route(post().to(console::pages::cancel_export_job)),
        )
        .service(resource("/console/exports/jobs/{id}/file", "GET").route(get().to(console::pages::export_job_file)))
        .service(
            resource("/console/admin/units", "GET, POST")
                .route(get().to(console::admin::units))
                .route(post().to(console::admin::create)),
        )
        .service(resource("/console/admin/units/{unit_code}/edit", "GET").route(get().to(console::admin::edit)))
        .service(resource("/console/admin/units/{unit_code}", "POST").route(post().to(console::admin::update)))
        .service(
            resource("/console/admin/volumes", "GET, POST")
                .route(get().to(console::admin::volumes))
                .route(post().to(console::admin::set_volume)),
        )
        .service(
            resource("/console/admin/users", "GET, POST")
                .route(get().to(console::admin::users))
                .route(post().to(console::admin::create_account)),
        )
        .service(resource("/console/admin/users/{id}", "POST").route(post().to(console::admin::change_account)))
        .service(resource("/console/admin/audit", "GET").route(get().to(console::admin::audit_log)))
        .default_service(web::to(not_found));
}

/// A resource that answers a wrong method with the common error and an `Allow` header
/// naming the methods it has (given beside its routes, and checked against them by
/// `tests/api/ops.rs`).
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| method_not_allowed(req, allow)))
}

async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let error = ApiError::MethodNotAllowed(format!("{} is not allowed here; this address takes {allow}", req.method()));
    let mut res = crate::error::for_request(error, &req).error_response();
    res.headers_mut().insert(actix_web::http::header::ALLOW, actix_web::http::header::HeaderValue::from_static(allow));
    res
}

async fn favicon() -> HttpResponse {
    HttpResponse::NoContent().insert_header(("Cache-Control", "public, max-age=86400")).finish()
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    Err(crate::error::for_request(ApiError::NotFound("no such endpoint".into()), &req))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sipas",
        description = "Continuous SIPAS satisfaction surveys and indices for Vietnamese public administrative units.",
        license(name = "MIT")
    ),
    paths(
        public::health::healthz,
        public::health::readyz,
        openapi_json,
        public::forms::list,
        public::forms::get,
        public::units::get,
        public::responses::submit,
        public::units::qr_svg,
        public::units::qr_png,
        admin::reach::issue_codes,
        admin::reach::invite,
        admin::reach::create_key,
        pages::survey::show,
        pages::survey::submit,
        admin::auth::login,
        admin::auth::logout,
        admin::auth::me,
        admin::auth::request_reset,
        admin::auth::confirm_reset,
        admin::units::list,
        admin::units::create,
        admin::units::get,
        admin::units::update,
        admin::indices::indices,
        admin::indices::rankings,
        admin::indices::trends,
        admin::plans::list,
        admin::plans::create,
        admin::plans::get,
        admin::plans::update,
        admin::plans::comment,
        admin::exports::indices,
        admin::exports::microdata,
        admin::exports::start_job,
        admin::exports::list_jobs,
        admin::exports::get_job,
        admin::exports::cancel_job,
        admin::exports::job_file,
        admin::users::list,
        admin::users::create,
        admin::users::update,
        admin::audit::list,
        admin::audit::csv,
        admin::volumes::list,
        admin::volumes::set,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth, &CommonErrors),
    tags(
        (name = "public", description = "Open to anyone: forms, units, submissions, survey pages"),
        (name = "admin", description = "Needs a bearer token from /api/v1/auth/login"),
        (name = "operations", description = "Health and the API description"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The error answers every handler can give because they come from shared machinery (the
/// extractors, the sign-in check, the database connection), added to each operation that
/// can give them unless it documents them itself: 400 for a query, path or body that does
/// not parse; 401 where a token is needed; 404 where a path names something; 408, 413 and
/// 415 for bodies; 422 where fields are validated; 503 wherever the database is used.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let no_database = path == "/healthz" || path == "/api/openapi.json";
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                let html = op.responses.responses.values().any(|r| match r {
                    utoipa::openapi::RefOr::T(r) => r.content.contains_key("text/html"),
                    _ => false,
                });
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
                let in_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
                // A unit named in the query that does not exist is a 404 like one in the path.
                let names_unit = params
                    .iter()
                    .any(|p| p.parameter_in == ParameterIn::Query && matches!(p.name.as_str(), "unit" | "within"));
                let body = op.request_body.is_some();
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |status: &str, yes: bool, description: &str| {
                    if !yes || op.responses.responses.contains_key(status) {
                        return;
                    }
                    let content = if html {
                        ContentBuilder::new().build()
                    } else {
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build()
                    };
                    let kind = if html { "text/html" } else { "application/json" };
                    let response = ResponseBuilder::new().description(description).content(kind, content).build();
                    op.responses.responses.insert(status.to_string(), response.into());
                };
                add("400", in_path || in_query || body, "A query string, path or body that does not parse");
                add("401", secured, "No valid bearer token or session");
                add("404", in_path || names_unit, "Nothing by that name");
                add("408", body, "The body arrived too slowly");
                add("413", body, "The body is larger than 64 KiB");
                add("415", body && !html, "The body is not in the documented media type");
                add("422", (in_query || body) && !html, "Fields failed validation (see `fields`)");
                add("503", !no_database, "The database cannot be reached: retry after Retry-After");
            }
        }
    }
}

/// The OpenAPI 3.1 description of every endpoint.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapiJson", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
