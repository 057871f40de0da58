//! The web console for unit heads and provincial analysts: sign-in, the province overview,
//! rankings, unit pages with a printable report, exports, and administration of units,
//! volumes, users and the audit log. Server-rendered, Vietnamese by default (English by a
//! cookie), no script; every form POST carries the session's CSRF token.

pub mod admin;
pub mod login;
pub mod pages;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload};
use base64::Engine;
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use crate::Lang;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, FieldErrors};

pub const LANG_COOKIE: &str = "sipas_lang";

pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#1a1a1a;background:#f5f6f8}\
header.top{display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center;padding:.6rem 1rem;background:#0b3d6b;color:#fff}\
header.top a{color:#fff;text-decoration:none}\
header.top nav{display:flex;flex-wrap:wrap;gap:.2rem .9rem}\
header.top nav a[aria-current]{text-decoration:underline;font-weight:600}\
.brand{font-weight:700;font-size:1.1rem}\
.who{margin-left:auto;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;font-size:.9rem;min-width:0}\
.who span{overflow-wrap:anywhere}\
.who button{background:none;border:1px solid #fff;color:#fff;border-radius:4px;padding:.2rem .5rem;font:inherit;cursor:pointer}\
main{max-width:72rem;margin:auto;padding:1rem}\
h1{font-size:1.4rem;margin:.3rem 0 .8rem}\
h2{font-size:1.15rem;margin:1.4rem 0 .5rem}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.7rem}\
.card{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:.7rem .9rem}\
.card .v{font-size:1.6rem;font-weight:700}\
.muted{color:#555;font-size:.88rem}\
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}\
th,td{border-bottom:1px solid #e1e5ea;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef1f5}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
.scroll{overflow-x:auto}\
table.criteria tbody th{background:none;font-weight:400;border-bottom:0;padding-bottom:0}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem .8rem;align-items:end;background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:.6rem .8rem;margin:.6rem 0}\
label{display:flex;flex-direction:column;font-size:.85rem;gap:.15rem}\
input,select,textarea{font:inherit;padding:.35rem .45rem;border:1px solid #8a96a3;border-radius:4px;min-height:2.2rem}\
button,.button{font:inherit;padding:.4rem .9rem;border-radius:4px;border:1px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}\
.error{background:#fdecea;border:1px solid #b3261e;color:#7a1711;border-radius:6px;padding:.5rem .8rem}\
.ok{background:#e7f4ea;border:1px solid #2e7d32;border-radius:6px;padding:.5rem .8rem}\
.supp{color:#555;font-style:italic}\
.chartbox{max-width:30rem}\
svg.chart{display:block;width:100%;height:auto;background:#fff;border:1px solid #d8dde3;border-radius:8px;margin:.4rem 0;font-family:inherit}\
.chart-note{margin:.2rem 0 .6rem;padding-left:1.2rem;color:#444;font-size:.85rem;list-style:none}\
.narrow{max-width:26rem;margin:3rem auto;background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:1.2rem}\
.narrow form{display:flex;flex-direction:column;gap:.7rem}\
blockquote{margin:.4rem 0;padding:.4rem .8rem;background:#fff;border-left:4px solid #8a96a3}\
.print-note{display:none}\
.poster{text-align:center;max-width:46rem}.poster h1{font-size:2rem}.poster .big{font-size:1.4rem;font-weight:600}\
.poster .qr svg{width:min(12cm,80vw);height:auto}.poster .url{font-size:1.6rem;font-family:monospace}\
@page{size:A4;margin:14mm 14mm 18mm}\
.cards.wide{grid-template-columns:repeat(auto-fit,minmax(15rem,1fr))}\
@media (max-width:40rem){.who{margin-left:0}th,td{padding:.3rem .25rem}main{padding:.75rem .5rem}table.criteria{font-size:.82rem}}\
@media print{header.top,form.filters,.noprint{display:none}body{background:#fff;font-size:10.5pt}main{max-width:none;padding:0}\
.print-note{display:block}svg.chart{border:0}h1,h2,h3{break-after:avoid}\
.keep,.chartbox,.chart-note,.cards,.card,blockquote,tr,thead,table.criteria tbody{break-inside:avoid}thead{display:table-header-group}\
.scroll{overflow:visible}table{break-inside:auto}p.muted{orphans:3;widows:3}}";

fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes())))
}

pub fn t(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

pub fn lang_of(req: &HttpRequest) -> Lang {
    Lang::from_param(req.cookie(LANG_COOKIE).as_ref().map(|c| c.value()))
}

/// A signed-in console user; anyone else is sent to the sign-in page.
pub struct Console {
    pub who: Principal,
    pub lang: Lang,
    /// The path asked for, to come back to after switching language.
    pub path: String,
}

impl FromRequest for Console {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Console, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let lang = lang_of(req);
        let path = req.uri().path_and_query().map_or("/console".into(), |p| p.as_str().to_string());
        Box::pin(async move {
            match principal.await {
                Ok(who) => Ok(Console { who, lang, path }),
                Err(ApiError::Unauthorized(_)) => {
                    let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
                    let to = format!("/console/login?next={next}");
                    Err(actix_web::error::InternalError::from_response("sign in", redirect(&to)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
    }
}

pub use crate::web::see_other as redirect;

pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    respond_with_hash(status, markup, style_hash())
}

/// A page whose style is the console's CSS followed by `extra` (see `document_styled`).
pub fn respond_styled(status: StatusCode, markup: Markup, extra: &str) -> HttpResponse {
    let css = format!("{CSS}{extra}");
    respond_with_hash(status, markup, &base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes())))
}

fn respond_with_hash(status: StatusCode, markup: Markup, hash: &str) -> HttpResponse {
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp))
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string())
}

pub fn document(lang: Lang, title: &str, body: Markup) -> Markup {
    crate::web::document(lang, &format!("{title} – SIPAS"), CSS, false, body)
}

/// A document with CSS of its own after the console's (a printed report's footer), served
/// with `respond_styled` so the policy allows exactly that style.
pub fn document_styled(lang: Lang, title: &str, extra: &str, body: Markup) -> Markup {
    crate::web::document(lang, &format!("{title} – SIPAS"), &format!("{CSS}{extra}"), false, body)
}

/// `s` as a CSS string literal; anything but letters, digits and plain punctuation is
/// escaped, so no name can end the string or the style element.
pub fn css_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        if ch.is_alphanumeric() || " .,:;()/·–-".contains(ch) {
            out.push(ch);
        } else {
            out.push_str(&format!("\\{:x} ", u32::from(ch)));
        }
    }
    out.push('"');
    out
}

/// A console page with its navigation.
pub fn page(c: &Console, title: &str, active: &str, body: Markup) -> HttpResponse {
    page_with_status(c, StatusCode::OK, title, active, body)
}

pub fn page_with_status(c: &Console, status: StatusCode, title: &str, active: &str, body: Markup) -> HttpResponse {
    let lang = c.lang;
    let mut nav = vec![
        ("/console", t(lang, "Tổng quan", "Overview")),
        ("/console/rankings", t(lang, "Xếp hạng", "Rankings")),
        ("/console/exports", t(lang, "Xuất dữ liệu", "Exports")),
        ("/console/admin/units", t(lang, "Đơn vị", "Units")),
        ("/console/admin/volumes", t(lang, "Khối lượng", "Volumes")),
    ];
    if c.who.role == Role::Admin {
        nav.push(("/console/admin/users", t(lang, "Người dùng", "Users")));
        nav.push(("/console/admin/audit", t(lang, "Nhật ký", "Audit log")));
    }
    let other = match lang {
        Lang::Vi => ("en", "English"),
        Lang::En => ("vi", "Tiếng Việt"),
    };
    let next: String = form_urlencoded::byte_serialize(c.path.as_bytes()).collect();
    let role = match c.who.role {
        Role::Admin => t(lang, "quản trị", "admin"),
        Role::Analyst => t(lang, "phân tích", "analyst"),
        Role::UnitManager => t(lang, "lãnh đạo đơn vị", "unit manager"),
    };
    let body = html! {
        header.top {
            a.brand href="/console" { "SIPAS" }
            nav aria-label=(t(lang, "Chức năng", "Sections")) {
                @for (href, label) in &nav {
                    a href=(href) aria-current=[(*href == active).then_some("page")] { (label) }
                }
            }
            div.who {
                span { (c.who.email) " (" (role) ")" }
                a href={ "/console/lang/" (other.0) "?next=" (next) } lang=(other.0) { (other.1) }
                form method="post" action="/console/logout" {
                    input type="hidden" name="csrf" value=(c.who.csrf_token);
                    button type="submit" { (t(lang, "Đăng xuất", "Sign out")) }
                }
            }
        }
        main { h1 { (title) } (body) }
    };
    respond(status, document(lang, title, body))
}

/// The console's answer to an error: a page rather than JSON.
pub fn error_page(c: &Console, error: &ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let status = error.status_code();
    let body = html! {
        p.error role="alert" { (error.to_string()) }
        @if let ApiError::Validation { fields, .. } = error { (field_list(fields)) }
        p { a href="/console" { (t(c.lang, "Về trang tổng quan", "Back to the overview")) } }
    };
    page_with_status(c, status, t(c.lang, "Không thực hiện được", "That did not work"), "", body)
}

pub fn field_list(fields: &FieldErrors) -> Markup {
    html! { ul.error { @for (f, ms) in fields { li { strong { (f) } ": " (ms.join("; ")) } } } }
}

/// Rejects a form whose CSRF token is not the session's.
pub fn check_csrf(c: &Console, sent: Option<&str>) -> Result<(), ApiError> {
    if sent.is_some_and(|s| crate::auth::csrf_ok(&c.who, s)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this form has expired: reload the page and try again".into()))
    }
}

pub fn num(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

pub fn suppressed_note(lang: Lang, k: u64) -> String {
    match lang {
        Lang::Vi => format!("dưới {k} phiếu"),
        Lang::En => format!("fewer than {k} responses"),
    }
}
