//! The one error type of the HTTP layer and its one JSON shape:
//! `{"error": snake_case_code, "message": text, "fields": {field: [messages]}}`.
//! 400 could not parse; 422 parsed but breaks a rule; 500 never carries its cause (it is
//! logged once, with a reference the client can quote).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error};
use sea_orm::{DbErr, SqlErr};
use serde::Serialize;
use utoipa::ToSchema;

/// Every failing field with its messages, keyed like `answers.B3` or `comment`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Validation { message: String, fields: FieldErrors },
    #[error("this submission_id was already used with a different body")]
    IdempotencyMismatch,
    /// The receipt code is unknown, used or expired (reported as a field error).
    #[error("1 field failed validation")]
    CodeRejected,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request arrived too slowly: send it again at a normal pace")]
    RequestTimeout,
    #[error("too many requests, retry in {0} seconds")]
    TooManyRequests(u64),
    #[error("the service is temporarily unavailable, retry shortly")]
    Unavailable,
    #[error("internal error (reference {0})")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `validation_failed`.
    pub error: String,
    pub message: String,
    /// Failing fields with their messages; empty unless the request broke field rules.
    pub fields: FieldErrors,
}

impl ApiError {
    pub fn validation(fields: FieldErrors) -> ApiError {
        let n = fields.len();
        ApiError::Validation {
            message: format!("{n} field{} failed validation", if n == 1 { "" } else { "s" }),
            fields,
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), vec![message.into()]);
        ApiError::validation(fields)
    }

    /// Logs the cause once under a short reference and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        tracing::error!(reference = %reference, "internal error: {cause}");
        ApiError::Internal(reference)
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::IdempotencyMismatch => "idempotency_mismatch",
            ApiError::CodeRejected => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let fields = match self {
            ApiError::Validation { fields, .. } => fields.clone(),
            ApiError::CodeRejected => FieldErrors::from([(
                "code".to_string(),
                vec!["this code is unknown, already used or expired".to_string()],
            )]),
            _ => FieldErrors::new(),
        };
        ErrorBody { error: self.code().into(), message: self.to_string(), fields }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } | ApiError::IdempotencyMismatch | ApiError::CodeRejected => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyRequests(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

/// Whether an error says the database cannot be reached or went away mid-request (rather
/// than that a statement was wrong): those are 503 + Retry-After, never 500. A connection
/// reset, an end of file, a closed pool, PostgreSQL shutting down (SQLSTATE class 08 and
/// 57P0x), and SQLite's busy or locked database.
pub fn connection_lost(err: &DbErr) -> bool {
    use sea_orm::sqlx;
    let sqlx_error = match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            code.starts_with("08") || code.starts_with("57P0") || code == "5" || code == "6" || code == "517"
        }
        _ => false,
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> ApiError {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return ApiError::Conflict("a record with this key already exists".into());
        }
        if connection_lost(&err) {
            tracing::warn!("database unavailable: {err}");
            return ApiError::Unavailable;
        }
        ApiError::internal(err)
    }
}

/// Turns actix's JSON extractor errors into the common shape: 413 over the limit, 415 for
/// another content type, 400 for anything that does not parse into the expected types.
pub fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError as E;
    let api = match &err {
        E::Overflow { limit } => ApiError::PayloadTooLarge(*limit),
        E::OverflowKnownLength { limit, .. } => ApiError::PayloadTooLarge(*limit),
        E::ContentType => ApiError::UnsupportedMediaType("send the body as application/json".into()),
        E::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        E::Payload(error::PayloadError::Overflow) => ApiError::PayloadTooLarge(crate::startup::MAX_BODY_BYTES),
        E::Payload(p) if timed_out(p) => ApiError::RequestTimeout,
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    };
    api.into()
}

pub fn form_error(err: error::UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        error::UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge(crate::startup::MAX_BODY_BYTES),
        error::UrlencodedError::Payload(p) if timed_out(&p) => ApiError::RequestTimeout,
        error::UrlencodedError::ContentType => {
            ApiError::UnsupportedMediaType("send the form as application/x-www-form-urlencoded".into())
        }
        other => ApiError::BadRequest(format!("invalid form: {other}")),
    };
    for_request(api, req)
}

pub fn query_error(err: error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    for_request(ApiError::BadRequest(format!("invalid query string: {err}")), req)
}

pub fn path_error(err: error::PathError, req: &HttpRequest) -> actix_web::Error {
    for_request(ApiError::BadRequest(format!("invalid path: {err}")), req)
}

/// The error as the asker reads it: a page on the console's and the survey's addresses,
/// the common JSON shape everywhere else.
pub fn for_request(api: ApiError, req: &HttpRequest) -> actix_web::Error {
    match crate::web::error_page_for(req, &api) {
        Some(page) => error::InternalError::from_response(api, page).into(),
        None => api.into(),
    }
}

/// The body did not arrive in time (`startup::deadline` ends it with a timed-out error).
fn timed_out(p: &error::PayloadError) -> bool {
    matches!(p, error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// For handlers that read the raw body (`Result<web::Bytes, actix_web::Error>`): 413 over
/// the limit, 400 otherwise, in the common shape.
pub fn body_error(err: actix_web::Error) -> ApiError {
    match err.as_error::<error::PayloadError>() {
        Some(error::PayloadError::Overflow) => ApiError::PayloadTooLarge(crate::startup::MAX_BODY_BYTES),
        Some(p) if timed_out(p) => ApiError::RequestTimeout,
        _ => ApiError::BadRequest("could not read the request body".into()),
    }
}
