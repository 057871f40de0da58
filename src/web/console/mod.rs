//! The web console for unit heads and provincial analysts: sign-in, the province overview,
//! rankings, unit pages with a printable report, exports, and administration of units,
//! volumes, users and the audit log. Server-rendered, Vietnamese by default (English by a
//! cookie), no script; every form POST carries the session's CSRF token.

pub mod admin;
pub mod login;
pub mod pages;
pub mod plans;

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
.notice{background:#fff4d6;border-left:4px solid #b07a00;padding:.5rem .8rem}\
td.d1{padding-left:1.4em}td.d2{padding-left:2.6em}td.d3{padding-left:3.8em}td.d4{padding-left:5em}\
tr.lead td{border-bottom:0}tr.sub td{padding-top:0;font-size:.85rem}tr.sub ul{margin:.1rem 0 0;padding-left:1.1rem}\
.chartbox{max-width:30rem}\
progress{width:100%;max-width:30rem;height:1.2rem}\
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
form.stack{display:flex;flex-direction:column;gap:.6rem;max-width:36rem}.good{color:#1b5e20}.bad{color:#b3261e}\
.pre{white-space:pre-wrap}.comment{border-bottom:1px solid #e1e5ea}\
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
        ("/console/plans", t(lang, "Kế hoạch", "Plans")),
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
    let role = c.who.role.label(lang);
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
    error_page_back(c, error, "/console", t(c.lang, "Về trang tổng quan", "Back to the overview"))
}

/// The same, with a way back to the page the request came from.
pub fn error_page_back(c: &Console, error: &ApiError, back: &str, back_label: &str) -> HttpResponse {
    use actix_web::ResponseError;
    let body = html! {
        (explain(c.lang, error))
        p { a href=(back) { (back_label) } }
    };
    page_with_status(c, error.status_code(), t(c.lang, "Không thực hiện được", "That did not work"), "", body)
}

/// An error met before the console knows who is asking (a malformed query string, an
/// unknown address): the same explanation on a page without the navigation.
pub fn bare_error_page(lang: Lang, error: &ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let title = t(lang, "Không thực hiện được", "That did not work");
    let body = html! {
        main.narrow {
            h1 { (title) }
            (explain(lang, error))
            p { a href="/console" { (t(lang, "Về trang tổng quan", "Back to the overview")) } }
        }
    };
    respond(error.status_code(), document(lang, title, body))
}

/// What went wrong and how to put it right, in the reader's language. The API's messages are
/// English and for programs; people read these.
pub fn explain(lang: Lang, error: &ApiError) -> Markup {
    let (what, fix): (String, &str) = match error {
        ApiError::Validation { .. } | ApiError::CodeRejected => (
            t(lang, "Có ô nhập chưa đúng:", "Some fields are not right:").into(),
            t(lang, "Sửa các ô trên rồi thử lại.", "Correct the fields above and try again."),
        ),
        ApiError::Forbidden(m) if m == FORM_EXPIRED => (
            t(lang, "Biểu mẫu đã hết hạn.", "This form has expired.").into(),
            t(lang, "Tải lại trang rồi thử lại.", "Reload the page and try again."),
        ),
        ApiError::Forbidden(_) => (
            t(lang, "Tài khoản của bạn không được xem hoặc làm việc này.", "Your account may not see or do this.")
                .into(),
            t(
                lang,
                "Chọn một đơn vị thuộc phạm vi của bạn, hoặc đề nghị quản trị viên cấp quyền.",
                "Choose a unit within your scope, or ask an administrator for access.",
            ),
        ),
        ApiError::NotFound(_) => (
            t(lang, "Không tìm thấy đơn vị hoặc trang này.", "This unit or page does not exist.").into(),
            t(lang, "Kiểm tra lại mã đơn vị hoặc đường dẫn.", "Check the unit code or the address."),
        ),
        ApiError::Unauthorized(_) => (
            t(lang, "Phiên đăng nhập đã hết.", "Your session has ended.").into(),
            t(lang, "Đăng nhập lại.", "Sign in again."),
        ),
        ApiError::Conflict(_) => (
            t(lang, "Đã có một bản ghi với mã này.", "A record with this key already exists.").into(),
            t(lang, "Dùng một mã khác.", "Use another code."),
        ),
        ApiError::TooManyRequests(seconds) => (
            match lang {
                Lang::Vi => format!("Quá nhiều yêu cầu trong thời gian ngắn; thử lại sau {seconds} giây."),
                Lang::En => format!("Too many requests in a short time; try again in {seconds} seconds."),
            },
            t(lang, "Đợi một lát rồi thử lại.", "Wait a moment and try again."),
        ),
        ApiError::Unavailable => (
            t(lang, "Dịch vụ tạm thời gián đoạn.", "The service is briefly unavailable.").into(),
            t(lang, "Thử lại sau ít phút.", "Try again in a few minutes."),
        ),
        ApiError::Internal(reference) => (
            match lang {
                Lang::Vi => format!("Lỗi hệ thống (mã tham chiếu {reference})."),
                Lang::En => format!("Internal error (reference {reference})."),
            },
            t(lang, "Báo quản trị viên kèm mã tham chiếu.", "Tell an administrator, quoting the reference."),
        ),
        _ => (
            t(lang, "Yêu cầu không hợp lệ.", "The request is not valid.").into(),
            t(lang, "Kiểm tra lại đường dẫn hoặc các ô đã nhập.", "Check the address or what you entered."),
        ),
    };
    html! {
        div.error role="alert" {
            p { strong { (what) } }
            @if let ApiError::Validation { fields, .. } = error { (field_list(lang, fields)) }
            p { (fix) }
        }
    }
}

/// Failing fields by their names on the page, each with what it takes.
pub fn field_list(lang: Lang, fields: &FieldErrors) -> Markup {
    html! { ul { @for (f, ms) in fields {
        @let (label, hint) = field_help(lang, f);
        li { strong { (label) } ": " @if let Some(h) = hint { (h) } @else { (ms.join("; ")) } }
    } } }
}

/// A field's name as the console's forms call it, and what it takes. `None` for a field this
/// table does not know: its (English) message is shown instead.
fn field_help(lang: Lang, field: &str) -> (String, Option<&'static str>) {
    let (vi, en, hint_vi, hint_en) = match field {
        "period" => (
            "Kỳ",
            "Period",
            "nhập một năm (2025), một quý (2025-Q1) hoặc một tháng (2025-03); để trống là năm nay.",
            "enter a year (2025), a quarter (2025-Q1) or a month (2025-03); empty means this year.",
        ),
        "from" | "to" => (
            if field == "from" { "Từ ngày" } else { "Đến ngày" },
            if field == "from" { "From" } else { "To" },
            "nhập cả hai ngày dạng NNNN-TT-NN, ngày đầu không sau ngày cuối, không quá 20 năm.",
            "give both dates as YYYY-MM-DD, the first not after the last, at most 20 years apart.",
        ),
        "form" => ("Phiếu", "Form", "chọn một phiếu trong danh sách.", "choose a form from the list."),
        "respondent_type" => ("Đối tượng", "Respondents", "chọn trong danh sách.", "choose from the list."),
        "channel" => ("Kênh", "Channel", "chọn trong danh sách.", "choose from the list."),
        "service" => ("Lĩnh vực", "Field", "chọn một lĩnh vực của phiếu này.", "choose one of this form's fields."),
        "level" => ("Cấp", "Level", "chọn trong danh sách.", "choose from the list."),
        "comments" => ("Kèm ý kiến", "With comments", "chọn Có hoặc Không.", "choose Yes or No."),
        "k" => (
            "Ngưỡng ẩn số liệu",
            "Suppression threshold",
            "nhập một số nguyên không nhỏ hơn ngưỡng đã cấu hình.",
            "enter a whole number no smaller than the configured threshold.",
        ),
        _ => return (field.to_string(), None),
    };
    (t(lang, vi, en).to_string(), Some(t(lang, hint_vi, hint_en)))
}

const FORM_EXPIRED: &str = "this form has expired: reload the page and try again";

/// Rejects a form whose CSRF token is not the session's.
pub fn check_csrf(c: &Console, sent: Option<&str>) -> Result<(), ApiError> {
    if sent.is_some_and(|s| crate::auth::csrf_ok(&c.who, s)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(FORM_EXPIRED.into()))
    }
}

pub fn num(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

/// Why a figure is not shown, as the publication gate said: too few responses, or hidden
/// so that another, smaller group cannot be worked out from it.
pub fn withheld_note(lang: Lang, why: Option<crate::index::engine::Withheld>, k: u64) -> String {
    match (why, lang) {
        (Some(crate::index::engine::Withheld::ProtectsAnother), Lang::Vi) => "ẩn để bảo vệ một nhóm khác".into(),
        (Some(crate::index::engine::Withheld::ProtectsAnother), Lang::En) => "withheld to protect another group".into(),
        (_, Lang::Vi) => format!("ẩn: dưới {k} phiếu"),
        (_, Lang::En) => format!("withheld: under {k} responses"),
    }
}

pub fn suppressed_note(lang: Lang, k: u64) -> String {
    match lang {
        Lang::Vi => format!("dưới {k} phiếu"),
        Lang::En => format!("fewer than {k} responses"),
    }
}
