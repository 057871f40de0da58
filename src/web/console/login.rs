//! Sign-in, sign-out, forgotten password and language. Forms shown before a session exists
//! are protected by a double-submit cookie (a random value in a SameSite=Strict cookie that
//! the form must repeat).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, LANG_COOKIE, check_csrf, document, lang_of, redirect, respond, t};
use crate::auth::{self, session_cookie};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::{Lang, audit, store};

const FORM_COOKIE: &str = "sipas_form";

fn form_cookie(state: &AppState, value: &str) -> Cookie<'static> {
    Cookie::build(FORM_COOKIE, value.to_string())
        .path("/console")
        .http_only(true)
        .secure(state.settings.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::hours(2))
        .finish()
}

fn form_ok(req: &HttpRequest, sent: &str) -> bool {
    req.cookie(FORM_COOKIE).is_some_and(|c| !sent.is_empty() && c.value() == sent)
}

/// Browsers keep a `Secure` cookie only over HTTPS (or from this machine itself), so with
/// `cookie_secure` on, a console reached over plain http on a LAN can never sign anyone in:
/// the form cookie and the session are dropped. Says so, and how to fix it, instead of "the
/// form expired". The scheme is actix's view (X-Forwarded-Proto / Forwarded when a proxy sets
/// them); trusting it from anyone is harmless here, as it only picks which message to show.
fn plain_http_problem(state: &AppState, req: &HttpRequest, lang: Lang) -> Option<&'static str> {
    let info = req.connection_info();
    let host = info
        .host()
        .rsplit_once(':')
        .map_or(info.host(), |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { info.host() });
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost");
    (state.settings.cookie_secure && info.scheme() == "http" && !local).then(|| {
        t(
            lang,
            "Không đăng nhập được qua http:// không mã hóa: máy chủ đang đặt cookie_secure = true, nên trình duyệt \
             bỏ cookie của biểu mẫu và của phiên đăng nhập. Cách sửa: mở bảng điều khiển qua https:// (đặt máy chủ \
             sau một proxy HTTPS), hoặc nếu chỉ dùng trong mạng nội bộ, khởi động lại máy chủ với \
             SIPAS_COOKIE_SECURE=false (hoặc cookie_secure = false trong tệp cấu hình).",
            "Signing in cannot work over plain http://: the server sets cookie_secure = true, so the browser drops \
             the form's and the session's cookies. To fix it, open the console over https:// (put the server behind \
             an HTTPS proxy), or, for use on a local network only, restart the server with SIPAS_COOKIE_SECURE=false \
             (or cookie_secure = false in the configuration file).",
        )
    })
}

/// What to say when a form's cookie did not come back.
fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> &'static str {
    plain_http_problem(state, req, lang)
        .unwrap_or_else(|| t(lang, "Biểu mẫu đã hết hạn, vui lòng thử lại.", "The form expired; please try again."))
}

/// Only paths inside the console: never an open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/console".to_string(),
    }
}

fn narrow(lang: Lang, title: &str, body: Markup) -> Markup {
    document(lang, title, html! { main { div.narrow { h1 { (title) } (body) } } })
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_form(lang: Lang, token: &str, next: &str, email: &str, error: Option<&str>) -> Markup {
    narrow(
        lang,
        t(lang, "Đăng nhập SIPAS", "Sign in to SIPAS"),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/console/login" {
                input type="hidden" name="form" value=(token);
                input type="hidden" name="next" value=(next);
                label { (t(lang, "Thư điện tử", "Email")) input type="email" name="email" value=(email) required autocomplete="username"; }
                label { (t(lang, "Mật khẩu", "Password")) input type="password" name="password" required autocomplete="current-password"; }
                button type="submit" { (t(lang, "Đăng nhập", "Sign in")) }
            }
            p.muted { a href="/console/forgot" { (t(lang, "Quên mật khẩu?", "Forgot your password?")) } }
        },
    )
}

pub async fn login_page(state: web::Data<AppState>, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let lang = lang_of(&req);
    let token = auth::new_token().0;
    let problem = plain_http_problem(&state, &req, lang);
    let mut res = respond(StatusCode::OK, login_form(lang, &token, &safe_next(q.next.as_deref()), "", problem));
    let _ = res.add_cookie(&form_cookie(&state, &token));
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    form: String,
    next: Option<String>,
    email: String,
    password: String,
}

pub async fn login(state: web::Data<AppState>, req: HttpRequest, f: web::Form<LoginForm>) -> HttpResponse {
    let lang = lang_of(&req);
    let next = safe_next(f.next.as_deref());
    let again = |status, message: &str| {
        let token = auth::new_token().0;
        let mut res = respond(status, login_form(lang, &token, &next, &f.email, Some(message)));
        let _ = res.add_cookie(&form_cookie(&state, &token));
        res
    };
    if !form_ok(&req, &f.form) {
        return again(StatusCode::FORBIDDEN, expired(&state, &req, lang));
    }
    let limited = match state.limits.sign_in(&state.db, &state.limits.client(&req)).await {
        Ok(()) => None,
        Err(ApiError::TooManyRequests(seconds)) => Some(seconds),
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    if let Some(seconds) = limited {
        let mut res = again(
            StatusCode::TOO_MANY_REQUESTS,
            t(lang, "Quá nhiều lần đăng nhập, vui lòng thử lại sau.", "Too many attempts; try again later."),
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&seconds.to_string()) {
            res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return res;
    }
    if f.email.len() > 254 || f.password.len() > 1024 {
        return again(StatusCode::UNPROCESSABLE_ENTITY, t(lang, "Thông tin quá dài.", "That is too long."));
    }
    match auth::sign_in(&state, &f.email, &f.password, "console").await {
        Ok(signed) => {
            let cookie =
                session_cookie(&state, signed.token, CookieDuration::hours(state.settings.session_absolute_hours));
            let mut res = redirect(&next);
            let _ = res.add_cookie(&cookie);
            res
        }
        Err(ApiError::Unauthorized(_)) => {
            again(StatusCode::UNAUTHORIZED, t(lang, "Sai thư điện tử hoặc mật khẩu.", "Wrong email or password."))
        }
        Err(e) => again(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

pub async fn logout(state: web::Data<AppState>, c: Console, f: web::Form<CsrfForm>) -> Result<HttpResponse, ApiError> {
    check_csrf(&c, f.csrf.as_deref())?;
    store::sessions::delete(&state.db, &c.who.token_hash).await?;
    audit::record(
        &state.db,
        Some((c.who.user_id, &c.who.email)),
        "logout",
        None,
        serde_json::json!({"via": "console"}),
    )
    .await?;
    let mut res = redirect("/console/login");
    let _ = res.add_cookie(&session_cookie(&state, String::new(), CookieDuration::ZERO));
    Ok(res)
}

pub async fn lang(req: HttpRequest, path: web::Path<String>, q: web::Query<NextQuery>) -> HttpResponse {
    let code = if path.as_str() == "en" { "en" } else { "vi" };
    let mut res = redirect(&safe_next(q.next.as_deref()));
    let cookie =
        Cookie::build(LANG_COOKIE, code).path("/").same_site(SameSite::Lax).max_age(CookieDuration::days(365)).finish();
    let _ = res.add_cookie(&cookie);
    let _ = req;
    res
}

fn forgot_form(lang: Lang, token: &str, done: bool, error: Option<&str>) -> Markup {
    narrow(
        lang,
        t(lang, "Quên mật khẩu", "Forgotten password"),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if done {
                p.ok role="status" { (t(lang,
                    "Nếu địa chỉ này có tài khoản, một liên kết đặt lại mật khẩu đã được gửi (hiệu lực 60 phút).",
                    "If this address has an account, a reset link is on its way (valid for 60 minutes).")) }
            }
            form method="post" action="/console/forgot" {
                input type="hidden" name="form" value=(token);
                label { (t(lang, "Thư điện tử", "Email")) input type="email" name="email" required; }
                button type="submit" { (t(lang, "Gửi liên kết", "Send a link")) }
            }
            p.muted { a href="/console/login" { (t(lang, "Đăng nhập", "Sign in")) } }
        },
    )
}

pub async fn forgot_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = auth::new_token().0;
    let lang = lang_of(&req);
    let problem = plain_http_problem(&state, &req, lang);
    let mut res = respond(StatusCode::OK, forgot_form(lang, &token, false, problem));
    let _ = res.add_cookie(&form_cookie(&state, &token));
    res
}

#[derive(Deserialize)]
pub struct ForgotForm {
    form: String,
    email: String,
}

pub async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    f: web::Form<ForgotForm>,
) -> Result<HttpResponse, ApiError> {
    let lang = lang_of(&req);
    if !form_ok(&req, &f.form) {
        let token = auth::new_token().0;
        let page = forgot_form(lang, &token, false, Some(expired(&state, &req, lang)));
        let mut res = respond(StatusCode::FORBIDDEN, page);
        let _ = res.add_cookie(&form_cookie(&state, &token));
        return Ok(res);
    }
    if f.email.len() <= 254 && f.email.contains('@') {
        auth::reset::request(&state, &state.limits.client(&req), &f.email).await?;
    }
    let token = auth::new_token().0;
    let mut res = respond(StatusCode::OK, forgot_form(lang, &token, true, None));
    let _ = res.add_cookie(&form_cookie(&state, &token));
    Ok(res)
}

fn reset_form(lang: Lang, token: &str, reset: &str, error: Option<&str>) -> Markup {
    narrow(
        lang,
        t(lang, "Đặt mật khẩu mới", "Choose a new password"),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action={ "/console/reset/" (reset) } {
                input type="hidden" name="form" value=(token);
                label { (t(lang, "Mật khẩu mới (ít nhất 15 ký tự, nên là một cụm vài từ)", "New password (at least 15 characters: a phrase of a few words is easiest)"))
                    input type="password" name="password" minlength="15" required autocomplete="new-password"; }
                button type="submit" { (t(lang, "Lưu", "Save")) }
            }
        },
    )
}

pub async fn reset_page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let token = auth::new_token().0;
    let lang = lang_of(&req);
    let mut res = respond(StatusCode::OK, reset_form(lang, &token, &path, plain_http_problem(&state, &req, lang)));
    let _ = res.add_cookie(&form_cookie(&state, &token));
    res
}

#[derive(Deserialize)]
pub struct ResetForm {
    form: String,
    password: String,
}

pub async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<ResetForm>,
) -> HttpResponse {
    let lang = lang_of(&req);
    if !form_ok(&req, &f.form) {
        let token = auth::new_token().0;
        let page = reset_form(lang, &token, &path, Some(expired(&state, &req, lang)));
        let mut res = respond(StatusCode::FORBIDDEN, page);
        let _ = res.add_cookie(&form_cookie(&state, &token));
        return res;
    }
    let outcome = auth::reset::confirm(&state, &path, &f.password).await;
    match outcome {
        Ok(()) => respond(
            StatusCode::OK,
            narrow(
                lang,
                t(lang, "Đã đổi mật khẩu", "Password changed"),
                html! {
                    p.ok { (t(lang, "Mật khẩu mới đã được lưu. Mọi phiên đăng nhập cũ đã kết thúc.", "Your new password is saved; every earlier session has ended.")) }
                    p { a.button href="/console/login" { (t(lang, "Đăng nhập", "Sign in")) } }
                },
            ),
        ),
        Err(e) => {
            use actix_web::ResponseError;
            let token = auth::new_token().0;
            let message = match &e {
                ApiError::Validation { fields, .. } => fields.values().flatten().cloned().collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            let mut res = respond(e.status_code(), reset_form(lang, &token, &path, Some(&message)));
            let _ = res.add_cookie(&form_cookie(&state, &token));
            res
        }
    }
}
