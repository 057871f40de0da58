//! Server-rendered pages. Every page is self-contained: inline CSS allowed by its hash in the
//! Content-Security-Policy, no script, no external request, usable with JavaScript off.

pub mod charts;
pub mod console;
pub mod page_cache;
pub mod survey;

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use crate::Lang;

/// The public pages' stylesheet: mobile first, tap targets of at least 44 px (the quiet "no
/// answer" 32 px). A scale's levels are a row (`.o.r`) or a column (`.o.c`, see
/// `survey::side_by_side`); the scroll padding keeps a focused question clear of the
/// progress bar stuck to the bottom.
pub const CSS: &str = "\
html{scroll-padding-bottom:3.5rem}\
body{margin:0;font:16px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#1a1a1a;background:#f3f5f7}\
main{max-width:42rem;margin:auto;padding:1rem .75rem}\
h1{font-size:1.3rem;margin:.2rem 0 .6rem}\
h2{font-size:1.1rem;margin:1.4rem 0 .5rem;color:#0a4a80}\
.u{margin:0;color:#444;font-weight:600}\
.l{float:right}\
fieldset{border:0;margin:0 0 .7rem;padding:.7rem .5rem;background:#fff;border-radius:8px}\
legend{font-weight:600;padding:0;float:left;width:100%;margin-bottom:.4rem}\
.pn{display:block;font-size:.85rem;color:#444}\
.o{display:flex;gap:.25rem;clear:both}\
.o label{border:1px solid #aab4be;border-radius:6px;min-height:44px}\
.o input{width:1.4rem;height:1.4rem;margin:0;flex:none}\
.r label{flex:1 1 0;min-width:0;display:flex;flex-direction:column;align-items:center;gap:.2rem;text-align:center;padding:.35rem .1rem;font-size:.8rem;line-height:1.25}\
.c{flex-direction:column}\
.c label{display:flex;align-items:center;gap:.6rem;padding:.1rem .6rem}\
.o label:has(input:checked){background:#e1effb;border-color:#0a5fb4}\
.na{display:inline-flex;align-items:center;gap:.4rem;margin-top:.35rem;min-height:32px;padding:0 .3rem;font-size:.85rem;color:#444}\
.na input{width:1.1rem;height:1.1rem;margin:0}\
fieldset:not(:has(input:checked)) .na{display:none}\
#pg{position:sticky;bottom:0;margin:0;padding:.5rem .8rem;background:#0a4a80;color:#fff;font-size:.9rem;font-weight:600;border-radius:8px 8px 0 0}\
.f label{display:block;margin:.6rem 0 .2rem;font-weight:600}\
select,textarea{width:100%;font:inherit;padding:.5rem;box-sizing:border-box;border:1px solid #8a96a3;border-radius:6px}\
.e{color:#a4001d;font-weight:600;margin:.2rem 0;clear:both}\
.x{border:2px solid #a4001d}\
.s{background:#fff;border:2px solid #a4001d;border-radius:8px;padding:.2rem .8rem}\
button{width:100%;min-height:52px;margin:1rem 0;font:inherit;font-size:1.1rem;font-weight:600;background:#0a5fb4;color:#fff;border:0;border-radius:8px}\
a{color:#0a55a0}\
.n{font-size:.9rem;color:#444}\
.hp{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}\
#st{font-weight:600;padding:.6rem .8rem;border-radius:8px;background:#fff;border:2px solid #0a5fb4}\
#st.ok{border-color:#1b7f3b;color:#145c2b}#st.wait{border-color:#a4001d;color:#7a0016}";

fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes())))
}

/// The policy of every page: only the inline stylesheet above, this site's own script and
/// service worker, forms and requests to this site.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'self'; connect-src 'self'; worker-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        style_hash()
    )
}

/// The survey page's script (progressive enhancement: the page works without it).
pub const SURVEY_JS: &str = include_str!("assets/survey.js");
/// The service worker that keeps the survey page for offline reopening (`__VERSION__` is
/// filled in with [`asset_version`]).
const SERVICE_WORKER_JS: &str = include_str!("assets/sw.js");

/// A short hash of everything a kept survey page depends on in this build: the release, the
/// stylesheet, the script and the worker. It names the worker's cache and the script's URL,
/// so a new release installs a new worker (the bytes of sw.js change), which deletes the
/// caches of the old one, and no phone runs an old script under a new page.
pub fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        for part in [env!("CARGO_PKG_VERSION"), CSS, SURVEY_JS, SERVICE_WORKER_JS] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
    })
}

/// Where the survey page loads its script from (versioned, see [`asset_version`]).
pub fn survey_js_url() -> String {
    format!("/s/app.js?v={}", asset_version())
}

pub async fn survey_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SURVEY_JS)
}

pub async fn service_worker_js() -> HttpResponse {
    static BODY: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        // A worker runs under its own script's policy: the app-wide `default-src 'none'`
        // would forbid its fetch() of the pages it keeps, and every later visit would fail.
        .insert_header(("Content-Security-Policy", "default-src 'none'; connect-src 'self'"))
        .body(BODY.get_or_init(|| SERVICE_WORKER_JS.replace("__VERSION__", asset_version())).as_str())
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// A whole HTML document: the head (with `css` inline, allowed by its hash, and optionally
/// the survey script), then `body`.
pub fn document(lang: Lang, title: &str, css: &str, script: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                style { (PreEscaped(css)) }
                @if script { script src=(survey_js_url()) defer {} }
            }
            body { (body) }
        }
    }
}

/// A public page.
pub fn page(lang: Lang, title: &str, body: Markup) -> Markup {
    document(lang, title, CSS, false, html! { main { (body) } })
}

/// The survey page, with its script.
pub fn page_with_script(lang: Lang, title: &str, body: Markup) -> Markup {
    document(lang, title, CSS, true, html! { main { (body) } })
}

pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", content_security_policy()))
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string())
}

/// People's pages answer errors with pages, not the API's JSON: the console with its error
/// page, the survey and kiosk with a plain one. `None` for the API's addresses.
pub fn error_page_for(req: &actix_web::HttpRequest, error: &crate::error::ApiError) -> Option<HttpResponse> {
    let path = req.path();
    if path == "/console" || path.starts_with("/console/") {
        return Some(console::bare_error_page(console::lang_of(req), error));
    }
    if !(path.starts_with("/s/") || path.starts_with("/k/")) {
        return None;
    }
    let lang = Lang::from_param(req.query_string().contains("lang=en").then_some("en"));
    use crate::error::ApiError;
    use actix_web::ResponseError;
    let vi = lang == Lang::Vi;
    let (title, text) = match error {
        ApiError::NotFound(_) => return Some(not_found(lang)),
        ApiError::Unavailable => {
            if vi {
                (
                    "Hệ thống tạm thời gián đoạn",
                    "Dịch vụ đang tạm thời gián đoạn. Vui lòng thử lại sau ít phút.".to_string(),
                )
            } else {
                (
                    "Briefly unavailable",
                    "The service is briefly unavailable. Please try again in a few minutes.".to_string(),
                )
            }
        }
        ApiError::RequestTimeout => {
            if vi {
                ("Kết nối quá chậm", "Trang gửi đến quá chậm nên chưa được nhận. Vui lòng gửi lại.".to_string())
            } else {
                (
                    "Connection too slow",
                    "What you sent arrived too slowly and was not received. Please send it again.".to_string(),
                )
            }
        }
        ApiError::TooManyRequests(seconds) => {
            if vi {
                (
                    "Vui lòng thử lại sau",
                    format!("Có quá nhiều yêu cầu trong thời gian ngắn. Hãy thử lại sau {seconds} giây."),
                )
            } else {
                (
                    "Please try again later",
                    format!("Too many requests in a short time. Try again in {seconds} seconds."),
                )
            }
        }
        ApiError::Internal(reference) => {
            if vi {
                ("Lỗi hệ thống", format!("Đã xảy ra lỗi hệ thống (mã tham chiếu {reference}). Vui lòng thử lại sau."))
            } else {
                ("System error", format!("A system error occurred (reference {reference}). Please try again later."))
            }
        }
        _ => {
            if vi {
                (
                    "Đường dẫn không hợp lệ",
                    "Đường dẫn này không đúng. Vui lòng quét lại mã QR hoặc mở lại liên kết.".to_string(),
                )
            } else {
                (
                    "Invalid address",
                    "This address is not right. Please scan the QR code again or reopen the link.".to_string(),
                )
            }
        }
    };
    Some(respond(error.status_code(), page(lang, title, html! { h1 { (title) } p { (text) } })))
}

/// A plain page for a missing unit or form.
pub fn not_found(lang: Lang) -> HttpResponse {
    let (title, text) = match lang {
        Lang::Vi => (
            "Không tìm thấy",
            "Không tìm thấy đơn vị hoặc phiếu khảo sát này. Vui lòng kiểm tra lại đường dẫn hoặc mã QR.",
        ),
        Lang::En => ("Not found", "This unit or survey does not exist. Please check the link or QR code."),
    };
    respond(StatusCode::NOT_FOUND, page(lang, title, html! { h1 { (title) } p { (text) } }))
}

/// Whether a path is a page people read (survey, kiosk, console) rather than the API.
fn is_page(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/") || path.starts_with("/s/") || path.starts_with("/k/")
}

/// Middleware: an error answered as the API's JSON on a people's page (the database down
/// before the handler could render anything, a body too slow, a bug) becomes a page in the
/// reader's language with the same status and Retry-After. Handlers that can do better
/// (the survey keeping the citizen's answers) answer HTML themselves and pass untouched.
pub async fn pages_not_json(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use crate::error::ApiError;
    use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
    let res = next.call(req).await?.map_into_boxed_body();
    let json = res.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // The faults of the service or its dependencies (5xx), a body too slow (408), too many
    // requests (429); other 4xx keep the answers their handlers chose.
    let fault = matches!(res.status().as_u16(), 408 | 429 | 500..);
    if !json || !is_page(res.request().path()) || !fault {
        return Ok(res);
    }
    let status = res.status();
    let retry_after = res.headers().get(RETRY_AFTER).cloned();
    let (req, res) = res.into_parts();
    let body = actix_web::body::to_bytes(res.into_body()).await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = parsed["message"].as_str().unwrap_or_default().to_string();
    let error = match status.as_u16() {
        503 => ApiError::Unavailable,
        408 => ApiError::RequestTimeout,
        429 => {
            ApiError::TooManyRequests(retry_after.as_ref().and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(60))
        }
        _ => ApiError::Internal(
            message.split("reference ").nth(1).map_or(String::new(), |r| r.trim_end_matches(')').to_string()),
        ),
    };
    let mut page = error_page_for(&req, &error).unwrap_or_else(|| HttpResponse::build(status).body(body));
    *page.status_mut() = status;
    if let Some(v) = retry_after {
        page.headers_mut().insert(RETRY_AFTER, v);
    }
    Ok(actix_web::dev::ServiceResponse::new(req, page))
}
