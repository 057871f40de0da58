//! The public survey page `/s/{unit_code}`: the unit's form in Vietnamese (`?lang=en` for
//! English), one question per row with large tap targets, texts without item codes, nothing
//! chosen in advance (no answer is the default; a quiet "no answer" undoes a choice), and
//! numbered parts with the number of questions and the time up front.
//! The POST goes through the same validation as the API; on a problem the page comes back
//! with inline messages and every answer kept. With JavaScript on, `survey.js` keeps the
//! answers on the phone and queues the submission until the server acknowledges it.
//!
//! The kiosk page `/k/{unit_code}` is the same form on an enrolled counter tablet: it resets
//! after each response, keeps nothing to go back to, and is limited per device.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{not_found, page, page_cache, respond};
use crate::Lang;
use crate::error::ApiError;
use crate::forms::submission::{AnswerValue, Problems, SubmissionBody};
use crate::forms::{AnswerKind, DemographicKey, LoadedForm, Scale, Text};
use crate::startup::AppState;
use crate::store;
use crate::store::responses::Stored;
use crate::submit::{Origin, accept};

#[derive(Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
    form: Option<String>,
    /// A receipt code carried by an invitation link.
    code: Option<String>,
    /// A kiosk key, once, to enrol this tablet.
    enroll: Option<String>,
    /// Set after a kiosk response: the blank form opens with a thank-you.
    thanks: Option<String>,
    /// The code of the ended unit whose poster or link led here.
    tu: Option<String>,
}

/// Which page: a citizen's own phone, or a counter kiosk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Survey,
    Kiosk,
}

impl Mode {
    fn base(self) -> &'static str {
        match self {
            Mode::Survey => "/s/",
            Mode::Kiosk => "/k/",
        }
    }
}

pub const KIOSK_COOKIE: &str = "sipas_kiosk";

/// What the citizen has entered so far, to render the form again.
#[derive(Default)]
struct Entered {
    /// The kiosk's previous person has just been thanked.
    thanked: bool,
    submission_id: Uuid,
    respondent_type: Option<String>,
    values: HashMap<String, Vec<String>>,
    problems: Problems,
}

impl Entered {
    fn has(&self, field: &str, value: &str) -> bool {
        self.values.get(field).is_some_and(|v| v.iter().any(|x| x == value))
    }
    fn first(&self, field: &str) -> &str {
        self.values.get(field).and_then(|v| v.first()).map_or("", String::as_str)
    }
}

struct Context {
    lang: Lang,
    mode: Mode,
    unit_code: String,
    unit_name: String,
    form: std::sync::Arc<LoadedForm>,
    other_forms: Vec<(String, Text)>,
    requires_code: bool,
    /// The signed time the page is served (minimum fill time).
    token: String,
    /// The former name the citizen came by (an old poster of a merged office).
    formerly: Option<String>,
}

fn t(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

/// Loads the unit and picks the form (`?form=`, else the first the unit takes).
async fn context(state: &AppState, mode: Mode, code: &str, query: &PageQuery) -> Result<Option<Context>, ApiError> {
    let lang = Lang::from_param(query.lang.as_deref());
    let (_, tree) = state.units.recent(&state.db).await?;
    let Some(unit) = tree.by_code(code).cloned() else {
        return Ok(None);
    };
    let unit_ref = crate::forms::submission::UnitRef {
        id: unit.id,
        code: unit.code.clone(),
        forms: tree.effective_forms(unit.id, &state.forms.ids()),
        requires_code: unit.requires_code,
    };
    let wanted = query.form.as_deref().or(unit_ref.forms.first().map(String::as_str));
    let Some(form) = wanted.filter(|w| unit_ref.forms.iter().any(|f| f == w)).and_then(|w| state.forms.get(w)) else {
        return Ok(None);
    };
    let other_forms = unit_ref
        .forms
        .iter()
        .filter(|f| **f != form.form.id)
        .filter_map(|f| state.forms.get(f))
        .map(|f| (f.form.id.clone(), f.form.title.clone()))
        .collect();
    let unit_name = match lang {
        Lang::En => unit.name_en.clone().unwrap_or(unit.name_vi.clone()),
        Lang::Vi => unit.name_vi.clone(),
    };
    let token = crate::reach::limits::form_token(&state.form_secret, chrono::Utc::now().timestamp_millis());
    Ok(Some(Context {
        lang,
        mode,
        unit_code: unit.code,
        unit_name,
        form: form.clone(),
        other_forms,
        requires_code: unit_ref.requires_code && mode == Mode::Survey,
        token,
        formerly: None,
    }))
}

/// The survey form.
#[utoipa::path(get, path = "/s/{unit_code}", operation_id = "showSurveyPage", tag = "public",
    params(("unit_code" = String, Path), ("lang" = Option<String>, Query, description = "`en` for English"),
           ("form" = Option<String>, Query, description = "form id when the unit takes several"),
           ("code" = Option<String>, Query, description = "a receipt code, as in an invitation link")),
    responses((status = 200, description = "The survey page", content_type = "text/html"),
              (status = 404, description = "Unknown unit", content_type = "text/html")))]
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (generation, tree) = state.units.recent(&state.db).await?;
    if tree.by_code(&path).is_none_or(|u| u.valid_to.is_some())
        && let Some(page) = moved(&state, &path, &query).await?
    {
        return Ok(page);
    }
    // The plain page, the same for everyone but for its submission id and token, is
    // rendered and compressed once (see `page_cache`); one with a receipt code or a former
    // unit's name in it is rendered for its request.
    let lang = Lang::from_param(query.lang.as_deref());
    let cacheable = query.code.is_none() && query.tu.is_none() && page_cache::accepts_gzip(&req);
    let token = || crate::reach::limits::form_token(&state.form_secret, chrono::Utc::now().timestamp_millis());
    let form_key = query.form.as_deref().unwrap_or("");
    if cacheable && let Some(page) = state.pages.get(generation, &path, form_key, lang) {
        return Ok(gzip_page(&page, &token()));
    }
    let Some(mut ctx) = context(&state, Mode::Survey, &path, &query).await? else {
        return Ok(not_found(lang));
    };
    // Came by an old poster: say what the office is called now.
    if let Some(old) = query.tu.as_deref()
        && let Some(former) = store::units::by_code(&state.db, old).await?
        && former.valid_to.is_some()
    {
        ctx.formerly = Some(match ctx.lang {
            Lang::En => former.name_en.unwrap_or(former.name_vi),
            Lang::Vi => former.name_vi,
        });
    }
    if cacheable {
        ctx.token = page_cache::TOKEN_SLOT.to_string();
        let slots = Entered { submission_id: Uuid::max(), ..Default::default() };
        if let Some(page) = page_cache::Page::new(&render_form(&ctx, &slots).into_string()) {
            let page = std::sync::Arc::new(page);
            state.pages.put(generation, &path, form_key, lang, page.clone());
            return Ok(gzip_page(&page, &token()));
        }
        ctx.token = token();
    }
    let mut entered = Entered { submission_id: Uuid::new_v4(), ..Default::default() };
    if let Some(code) = query.code.as_deref().filter(|c| c.len() <= 32) {
        entered.values.insert("code".into(), vec![code.to_string()]);
    }
    Ok(respond(StatusCode::OK, render_form(&ctx, &entered)))
}

/// A cached survey page with a new submission id and this request's token, compressed.
fn gzip_page(page: &page_cache::Page, token: &str) -> HttpResponse {
    let mut response = respond(StatusCode::OK, html! {});
    response
        .headers_mut()
        .insert(actix_web::http::header::CONTENT_ENCODING, actix_web::http::header::HeaderValue::from_static("gzip"));
    response
        .headers_mut()
        .insert(actix_web::http::header::VARY, actix_web::http::header::HeaderValue::from_static("accept-encoding"));
    response.set_body(actix_web::body::BoxBody::new(page.gzip(&Uuid::new_v4().to_string(), token)))
}

/// The address of a unit that has ended (an old QR poster, an old link): a merged unit's
/// leads to its successor's survey, a split unit's lets the citizen choose, one that ended
/// without a successor says so. `None` for a unit that exists.
async fn moved(state: &AppState, code: &str, query: &PageQuery) -> Result<Option<HttpResponse>, ApiError> {
    let Some(old) = store::units::by_code(&state.db, code).await?.filter(|u| u.valid_to.is_some()) else {
        return Ok(None);
    };
    let lang = Lang::from_param(query.lang.as_deref());
    // What the link carried (language, a receipt code) goes along.
    let mut extra = String::new();
    if lang == Lang::En {
        extra.push_str("&lang=en");
    }
    if let Some(c) = query.code.as_deref().filter(|c| c.len() <= 32) {
        extra.push_str("&code=");
        extra.extend(form_urlencoded::byte_serialize(c.as_bytes()));
    }
    let name = |u: &crate::entities::unit::Model| match lang {
        Lang::En => u.name_en.clone().unwrap_or(u.name_vi.clone()),
        Lang::Vi => u.name_vi.clone(),
    };
    Ok(Some(match store::units::successor(&state.db, &old).await? {
        store::units::Successor::Live(now) => super::see_other(&format!("/s/{}?tu={}{extra}", now.code, old.code)),
        store::units::Successor::Split(units) => {
            let body = html! {
                p.u { (name(&old)) }
                h1 { (t(lang, "Đơn vị này đã được chia tách", "This office has been split")) }
                p { (t(lang, "Vui lòng chọn nơi anh/chị vừa làm thủ tục:", "Please choose where you were served:")) }
                ul { @for u in &units { li { a href=(format!("/s/{}?tu={}{extra}", u.code, old.code)) { (name(u)) } } } }
            };
            respond(StatusCode::OK, page(lang, t(lang, "Chọn đơn vị", "Choose the office"), body))
        }
        store::units::Successor::Ended => {
            let body = html! {
                p.u { (name(&old)) }
                h1 { (t(lang, "Đơn vị này không còn hoạt động", "This office no longer exists")) }
                p { (t(lang, "Không còn nhận ý kiến cho đơn vị này.", "It no longer takes responses.")) }
            };
            respond(StatusCode::GONE, page(lang, t(lang, "Không còn hoạt động", "No longer exists"), body))
        }
    }))
}

/// Submit the survey form (form-encoded); same rules as `POST /api/v1/responses`.
#[utoipa::path(post, path = "/s/{unit_code}", operation_id = "submitSurveyPage", tag = "public",
    params(("unit_code" = String, Path), ("lang" = Option<String>, Query)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "One field per item code, plus submission_id, form, respondent_type, service, comment and demographics"),
    responses((status = 201, description = "Thank-you page: stored", content_type = "text/html"),
              (status = 200, description = "Thank-you page: this submission was already stored", content_type = "text/html"),
              (status = 422, description = "The form again with inline messages", content_type = "text/html")))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let origin = Origin { client: state.limits.client(&req), kiosk: None, office: None };
    handle(&state, Mode::Survey, &origin, &path, &query, body).await
}

async fn handle(
    state: &AppState,
    mode: Mode,
    origin: &Origin,
    unit: &str,
    query: &PageQuery,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let values = fields_of(&body.map_err(crate::error::body_error)?);
    let form_id = values.get("form").and_then(|v| v.first()).cloned();
    let query = PageQuery {
        lang: query.lang.clone(),
        form: form_id.or(query.form.clone()),
        code: None,
        enroll: None,
        thanks: None,
        tu: None,
    };
    let lang = Lang::from_param(query.lang.as_deref());
    let ctx = match context(state, mode, unit, &query).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Ok(not_found(lang)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => return Ok(kept(lang, mode, unit, &values, &e)),
        Err(e) => return Err(e),
    };
    let mut entered = Entered {
        thanked: false,
        // A tampered or missing id only loses retry protection.
        submission_id: values
            .get("submission_id")
            .and_then(|v| v.first())
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(Uuid::new_v4),
        respondent_type: values.get("respondent_type").and_then(|v| v.first()).cloned(),
        values,
        problems: Problems::default(),
    };
    let form = &ctx.form;
    let respondent_type = match (&form.form.respondent_types[..], &entered.respondent_type) {
        ([only], _) => only.as_str().to_string(),
        (_, Some(rt)) => rt.clone(),
        (_, None) => String::new(),
    };
    let mut answers = std::collections::BTreeMap::new();
    for (code, kind, _) in form.form.answerables() {
        let given: Vec<&String> = entered.values.get(code).into_iter().flatten().filter(|v| !v.is_empty()).collect();
        if given.is_empty() {
            continue;
        }
        // Something that is not a number can only come from a tampered form: i64::MIN is
        // off every scale and is reported as such.
        let parse = |s: &String| s.parse::<i64>().unwrap_or(i64::MIN);
        // Two values for a one-level item come only from a tampered form: sent on as a list,
        // validation refuses them (keeping the first would hide the other).
        let value = match (kind, &given[..]) {
            (AnswerKind::Question { multiple: true }, _) | (_, [_, _, ..]) => {
                AnswerValue::Many(given.into_iter().map(parse).collect())
            }
            _ => AnswerValue::One(parse(given[0])),
        };
        answers.insert(code.to_string(), Some(value));
    }
    let demographics = DemographicKey::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), Some(entered.first(k.as_str()).to_string())))
        .collect();
    let text = |k: &str| Some(entered.first(k).to_string()).filter(|s| !s.is_empty());
    let submission = SubmissionBody {
        submission_id: entered.submission_id,
        unit: ctx.unit_code.clone(),
        form: form.form.id.clone(),
        respondent_type,
        channel: if mode == Mode::Kiosk { "kiosk" } else { "online" }.into(),
        answers,
        demographics: Some(demographics),
        service: text("service"),
        comment: text("comment"),
        code: text("code"),
        form_token: text("t"),
        website: text("website"),
    };
    let thanks = |replayed: bool, changed: bool| match mode {
        // The kiosk forgets at once: a redirect, so going back never shows these answers.
        Mode::Kiosk => super::see_other(&format!(
            "/k/{}?thanks=1{}",
            ctx.unit_code,
            if ctx.lang == Lang::En { "&lang=en" } else { "" }
        )),
        Mode::Survey => {
            respond(if replayed { StatusCode::OK } else { StatusCode::CREATED }, render_thanks(&ctx, changed))
        }
    };
    match accept(state, &submission, origin).await {
        Ok(Ok(Stored::Created(_))) => Ok(thanks(false, false)),
        Ok(Ok(Stored::Replayed(_))) => Ok(thanks(true, false)),
        Ok(Err(problems)) => {
            entered.problems = problems;
            Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, render_form(&ctx, &entered)))
        }
        // The same page was sent again with other answers (back button): the first answers
        // stand, and the citizen is told so.
        Err(ApiError::IdempotencyMismatch) => Ok(thanks(true, true)),
        Err(ApiError::TooManyRequests(seconds)) => Ok(too_many(&ctx, seconds)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
            Ok(kept(ctx.lang, mode, &ctx.unit_code, &entered.values, &e))
        }
        Err(e) => Err(e),
    }
}

fn fields_of(body: &[u8]) -> HashMap<String, Vec<String>> {
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        values.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    values
}

/// The service could not store the response (the database is down, or a fault): a page
/// that says so and keeps every answer, as hidden fields of a form that sends them again.
/// Nothing was stored, so sending again is safe; the submission id makes it idempotent.
fn kept(lang: Lang, mode: Mode, unit: &str, values: &HashMap<String, Vec<String>>, error: &ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let mut fields: Vec<(&String, &String)> =
        values.iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k, v))).collect();
    fields.sort();
    let action = format!("{}{}{}", mode.base(), unit, if lang == Lang::En { "?lang=en" } else { "" });
    let body = html! {
        h1 { (t(lang, "Phiếu chưa gửi được", "Your form has not been sent yet")) }
        p { (t(lang,
            "Hệ thống đang tạm thời gián đoạn nên phiếu của bạn chưa được ghi nhận. Câu trả lời của bạn vẫn được giữ trên trang này: vui lòng bấm “Gửi lại” sau ít phút.",
            "The service is briefly unavailable, so your form was not recorded. Your answers are kept on this page: please press “Send again” in a few minutes.")) }
        form method="post" action=(action) {
            @for (name, value) in &fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { (t(lang, "Gửi lại", "Send again")) }
        }
    };
    let mut res = respond(error.status_code(), page(lang, t(lang, "Chưa gửi được", "Not sent yet"), body));
    res.headers_mut()
        .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("5"));
    res
}

/// 429 as a page, with Retry-After.
fn too_many(ctx: &Context, seconds: u64) -> HttpResponse {
    let lang = ctx.lang;
    let body = html! {
        p.u { (ctx.unit_name) }
        h1 { (t(lang, "Vui lòng thử lại sau ít phút", "Please try again in a few minutes")) }
        p { (t(lang, "Có quá nhiều phiếu được gửi từ cùng một nơi trong thời gian ngắn. Hãy thử lại sau ", "Too many forms were sent from the same place in a short time. Try again in ")) (seconds) (t(lang, " giây.", " seconds.")) }
    };
    let mut res = respond(StatusCode::TOO_MANY_REQUESTS, page(lang, t(lang, "Thử lại sau", "Try again later"), body));
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&seconds.to_string()) {
        res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
    }
    res
}

/// The kiosk: enrolled tablets only (`?enroll=KEY` once, then a cookie).
pub async fn kiosk(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let lang = Lang::from_param(query.lang.as_deref());
    if let Some(key) = query.enroll.as_deref() {
        let Some(device) = kiosk_device(&state, key, &path).await? else { return Ok(not_enrolled(lang)) };
        let cookie = actix_web::cookie::Cookie::build(KIOSK_COOKIE, key.to_string())
            .path(format!("/k/{}", path.as_str()))
            .http_only(true)
            .secure(state.settings.cookie_secure)
            .same_site(actix_web::cookie::SameSite::Strict)
            .max_age(actix_web::cookie::time::Duration::days(3650))
            .finish();
        let mut res =
            super::see_other(&format!("/k/{}{}", path.as_str(), if lang == Lang::En { "?lang=en" } else { "" }));
        let _ = res.add_cookie(&cookie);
        let _ = device;
        return Ok(res);
    }
    let key = req.cookie(KIOSK_COOKIE).map(|c| c.value().to_string()).unwrap_or_default();
    if kiosk_device(&state, &key, &path).await?.is_none() {
        return Ok(not_enrolled(lang));
    }
    let Some(ctx) = context(&state, Mode::Kiosk, &path, &query).await? else { return Ok(not_found(lang)) };
    let entered = Entered { submission_id: Uuid::new_v4(), thanked: query.thanks.is_some(), ..Default::default() };
    Ok(respond(StatusCode::OK, render_form(&ctx, &entered)))
}

pub async fn kiosk_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let key = req.cookie(KIOSK_COOKIE).map(|c| c.value().to_string()).unwrap_or_default();
    let lang = Lang::from_param(query.lang.as_deref());
    let device = match kiosk_device(&state, &key, &path).await {
        Ok(Some(device)) => device,
        Ok(None) => return Ok(not_enrolled(lang)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
            let values = fields_of(&body.map_err(crate::error::body_error)?);
            return Ok(kept(lang, Mode::Kiosk, &path, &values, &e));
        }
        Err(e) => return Err(e),
    };
    let origin = Origin { client: state.limits.client(&req), kiosk: Some(device), office: None };
    handle(&state, Mode::Kiosk, &origin, &path, &query, body).await
}

/// The enrolled kiosk (its key's id) when `key` is a kiosk key of this unit.
async fn kiosk_device(state: &AppState, key: &str, unit_code: &str) -> Result<Option<i32>, ApiError> {
    let Some(k) = crate::reach::keys::verify(&state.db, key, crate::reach::keys::KeyKind::Kiosk).await? else {
        return Ok(None);
    };
    let unit = store::units::by_code(&state.db, unit_code).await?;
    Ok(unit.filter(|u| u.id == k.unit_id).map(|_| k.id))
}

fn not_enrolled(lang: Lang) -> HttpResponse {
    let body = html! {
        h1 { (t(lang, "Máy chưa được đăng ký làm kiosk", "This tablet is not set up as a kiosk")) }
        p { (t(lang, "Cán bộ quản trị mở liên kết đăng ký kiosk của đơn vị trên máy này.", "An administrator opens the unit's kiosk enrolment link on this tablet.")) }
    };
    respond(StatusCode::FORBIDDEN, page(lang, t(lang, "Kiosk", "Kiosk"), body))
}

fn href(ctx: &Context, lang: Lang) -> String {
    let mut url = format!("{}{}", ctx.mode.base(), ctx.unit_code);
    let mut params = Vec::new();
    if lang == Lang::En {
        params.push("lang=en".to_string());
    }
    if !ctx.other_forms.is_empty() {
        params.push(format!("form={}", ctx.form.form.id));
    }
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    url
}

fn render_form(ctx: &Context, e: &Entered) -> Markup {
    let lang = ctx.lang;
    let f = &ctx.form.form;
    let other_lang = match lang {
        Lang::Vi => (Lang::En, "English"),
        Lang::En => (Lang::Vi, "Tiếng Việt"),
    };
    let problems = &e.problems.0;
    let questions = f.answerables().len();
    let minutes = crate::reach::invitations::minutes_to_answer(f);
    // The parts of the page, numbered so that a long form says how far the citizen is.
    let parts = f.groups.len() + usize::from(!f.expectations.is_empty()) + usize::from(!f.questions.is_empty()) + 1;
    let part =
        |n: usize, title: &str| html! { h2 { span.pn { (t(lang, "Phần ", "Part ")) (n) "/" (parts) } " " (title) } };
    let body = html! {
        a.l href=(href(ctx, other_lang.0)) lang=(other_lang.0.code()) { (other_lang.1) }
        p.u { (ctx.unit_name) }
        @if let Some(former) = &ctx.formerly {
            p.n { (former) (t(lang, " nay là ", " is now ")) (ctx.unit_name) "." }
        }
        h1 { (f.title.get(lang)) }
        p.n { (t(lang,
            "Phiếu không ghi tên: không hỏi họ tên, số điện thoại hay số hồ sơ. Câu nào không muốn trả lời, cứ để trống.",
            "This survey is anonymous: no name, phone or case number is asked. Leave blank any question you prefer to skip.")) }
        p.n #size { (questions) (t(lang, " câu hỏi, khoảng ", " questions, about ")) (minutes) (t(lang, " phút.", " minutes.")) }
        @for (id, title) in &ctx.other_forms {
            p.n { (t(lang, "Phiếu khác: ", "Other form: ")) a href={ (ctx.mode.base()) (ctx.unit_code) "?form=" (id) @if lang == Lang::En { "&lang=en" } } { (title.get(lang)) } }
        }
        @if !problems.is_empty() {
            div.s role="alert" id="errors" {
                p.e { (t(lang, "Vui lòng kiểm tra lại:", "Please check:")) }
                ul { @for (field, problem) in problems {
                    li { a href={ "#" (anchor(field)) } { (field_label(ctx, field)) } ": " (problem.message(lang)) }
                } }
            }
        }
        @if e.thanked {
            p #st.ok role="status" { (t(lang, "Cảm ơn anh/chị! Ý kiến đã được ghi nhận. Mời người tiếp theo.", "Thank you! Your answers have been received. Next person, please.")) }
        }
        form method="post" action=(href(ctx, lang)) autocomplete=[(ctx.mode == Mode::Kiosk).then_some("off")]
            data-unit=[(ctx.mode == Mode::Survey).then_some(&ctx.unit_code)] data-form=(f.id)
            data-rt=[(f.respondent_types.len() == 1).then(|| f.respondent_types[0].as_str())]
            data-multi=(f.questions.iter().filter(|q| q.multiple).map(|q| q.code.as_str()).collect::<Vec<_>>().join(" "))
            data-ok=(t(lang, "Ý kiến của anh/chị đã được ghi nhận. Cảm ơn!", "Your answers have been received. Thank you!"))
            data-wait=(t(lang, "Chưa gửi được vì mất kết nối. Phiếu được giữ trên máy và sẽ tự gửi lại khi có mạng.", "Not sent yet: no connection. The answers are kept on this phone and will be sent when it is back."))
            data-sending=(t(lang, "Đang gửi…", "Sending…")) {
            // The two values that differ per request, side by side (see `page_cache`).
            input type="hidden" name="submission_id" value=(e.submission_id);
            input type="hidden" name="t" value=(ctx.token);
            input type="hidden" name="form" value=(f.id);
            div.hp aria-hidden="true" { label { "Website" input name="website" tabindex="-1" autocomplete="off"; } }
            // An invitation link's code travels along even where codes are optional, so the
            // one-time link is used up by the response it opened.
            @if !ctx.requires_code && !e.first("code").is_empty() {
                input type="hidden" name="code" value=(e.first("code"));
            }
            @if ctx.requires_code {
                fieldset.f.x[e.problems.for_field("code").is_some()] {
                    label for="code" { (t(lang, "Mã in trên phiếu hẹn trả kết quả", "The code printed on your receipt")) }
                    (error_line(ctx, e, "code"))
                    input id="code" name="code" value=(e.first("code")) required autocomplete="off" autocapitalize="characters" spellcheck="false" placeholder="ABCD-EFGH-K" maxlength="16";
                }
            }
            @if f.respondent_types.len() > 1 {
                (choice_row(ctx, e, "respondent_type", t(lang, "Anh/chị trả lời với tư cách", "You are answering as"),
                    &f.respondent_types.iter().map(|r| (r.as_str().to_string(), r.label(lang).to_string())).collect::<Vec<_>>(), false, false))
            }
            @for (i, group) in f.groups.iter().enumerate() {
                (part(i + 1, group.title.get(lang)))
                @for sub in &group.groups {
                    p.u { (sub.title.get(lang)) }
                    @for item in &sub.items { (scale_row(ctx, e, &item.code, &item.text, &item.scale, false)) }
                }
                @for item in &group.items { (scale_row(ctx, e, &item.code, &item.text, &item.scale, false)) }
            }
            @if !f.expectations.is_empty() {
                (part(f.groups.len() + 1, t(lang, "Mong đợi cải thiện (không bắt buộc)", "Where you expect improvement (optional)")))
                @for item in &f.expectations { (scale_row(ctx, e, &item.code, &item.text, &item.scale, false)) }
            }
            @if !f.questions.is_empty() {
                (part(parts - 1, t(lang, "Câu hỏi khác (không bắt buộc)", "Other questions (optional)")))
                @for q in &f.questions { (scale_row(ctx, e, &q.code, &q.text, &q.scale, q.multiple)) }
            }
            (part(parts, t(lang, "Thông tin thêm (không bắt buộc)", "About you (optional)")))
            fieldset.f {
                @if !f.fields.is_empty() {
                    (select(ctx, e, "service", t(lang, "Lĩnh vực thủ tục đã làm", "Field of the procedure"),
                        &f.fields.iter().map(|c| (c.code.clone(), c.text.get(lang).to_string())).collect::<Vec<_>>()))
                }
                @for d in &f.demographics {
                    (select(ctx, e, d.key.as_str(), d.title.get(lang),
                        &d.options.iter().map(|c| (c.code.clone(), c.text.get(lang).to_string())).collect::<Vec<_>>()))
                }
                @if let Some(c) = &f.comment {
                    label for="comment" { (c.prompt.get(lang)) }
                    (error_line(ctx, e, "comment"))
                    // Browsers count UTF-16 units: a decomposed Vietnamese letter takes up to
                    // three. The server counts letters after NFC and says when it is too long.
                    textarea id="comment" name="comment" rows="4" maxlength=(c.max_chars * 3) { (e.first("comment")) }
                }
            }
            // With a script, how many questions are answered so far (survey.js fills it in).
            p #pg hidden data-of=(t(lang, "Đã trả lời {x}/{n} câu · còn {left}", "Answered {x} of {n} · {left} left")) {}
            button type="submit" { (t(lang, "Gửi ý kiến", "Send")) }
        }
        // Next to the button while sending; alone at the top once the form is hidden.
        @if !e.thanked { p #st role="status" aria-live="polite" hidden {} }
    };
    let title = format!("{} – {}", t(lang, "Khảo sát", "Survey"), ctx.unit_name);
    match ctx.mode {
        Mode::Survey => super::page_with_script(lang, &title, body),
        Mode::Kiosk => page(lang, &title, body),
    }
}

fn anchor(field: &str) -> String {
    let name = field.strip_prefix("answers.").or(field.strip_prefix("demographics.")).unwrap_or(field);
    format!("q-{name}")
}

fn field_label(ctx: &Context, field: &str) -> String {
    let name = field.strip_prefix("answers.").unwrap_or(field);
    match item_text(&ctx.form.form, name) {
        Some(text) => text.get(ctx.lang).to_string(),
        None => match (field, ctx.lang) {
            ("respondent_type", Lang::Vi) => "Đối tượng".into(),
            ("answers", Lang::Vi) => "Câu trả lời".into(),
            ("comment", Lang::Vi) => "Ý kiến".into(),
            ("code", Lang::Vi) => "Mã phiếu hẹn".into(),
            ("service", Lang::Vi) => "Lĩnh vực".into(),
            _ => name.to_string(),
        },
    }
}

/// The text of the question `code` asks.
fn item_text<'a>(form: &'a crate::forms::Form, code: &str) -> Option<&'a Text> {
    let items = form.groups.iter().flat_map(|g| g.groups.iter().flat_map(|s| &s.items).chain(&g.items));
    items
        .chain(&form.expectations)
        .find(|i| i.code == code)
        .map(|i| &i.text)
        .or_else(|| form.questions.iter().find(|q| q.code == code).map(|q| &q.text))
}

fn error_line(ctx: &Context, e: &Entered, field: &str) -> Markup {
    html! { @if let Some(p) = e.problems.for_field(field) { p.e id=(anchor(field)) { (p.message(ctx.lang)) } } }
}

/// One question on a scale: its text (citizens never see the item code), the levels with
/// their labels and, for a single choice, a quiet "no answer" to undo a tap; or check boxes
/// (multiple choice), which undo themselves.
fn scale_row(ctx: &Context, e: &Entered, code: &str, text: &Text, scale_name: &str, multiple: bool) -> Markup {
    let Some(scale) = ctx.form.form.scales.get(scale_name) else {
        return html! {};
    };
    choice_row(ctx, e, code, text.get(ctx.lang), &options(scale, ctx.lang), !multiple, multiple)
}

/// Whether the levels fit side by side on a 320 px phone, so that the scale reads as one
/// row; otherwise they are listed one under the other. A box is a fifth of ~290 px for
/// five levels: its longest word must fit (about 34 characters shared by the levels).
fn side_by_side(options: &[(String, String)]) -> bool {
    let widest = 34 / options.len().max(1);
    options.len() <= 5
        && options.iter().all(|(_, l)| l.chars().count() <= 20 && l.split(' ').all(|w| w.chars().count() <= widest))
}

fn options(scale: &Scale, lang: Lang) -> Vec<(String, String)> {
    scale.levels.iter().map(|l| (l.value.to_string(), l.label.get(lang).to_string())).collect()
}

/// Rows are the bulk of the page, so they are written by hand without attribute quotes:
/// names and values are form codes and levels (A-Z, 0-9, `_`, `.`, `-`), which HTML allows
/// unquoted. Texts are escaped.
fn choice_row(
    ctx: &Context,
    e: &Entered,
    name: &str,
    legend: &str,
    options: &[(String, String)],
    no_answer: bool,
    multiple: bool,
) -> Markup {
    use std::fmt::Write;
    let lang = ctx.lang;
    let problem = e.problems.for_field(&format!("answers.{name}")).or_else(|| e.problems.for_field(name));
    let nothing_chosen = !e.values.get(name).is_some_and(|v| v.iter().any(|x| !x.is_empty()));
    let kind = if multiple { "checkbox" } else { "radio" };
    let mut out = String::with_capacity(600);
    // Only a row with a problem needs an anchor for the summary's link.
    match problem {
        Some(_) => {
            let _ = write!(out, "<fieldset id={} class=x>", anchor(name));
        }
        None => out.push_str("<fieldset>"),
    }
    let _ = write!(out, "<legend>{}</legend>", escape(legend));
    if let Some(p) = problem {
        let _ = write!(out, "<p class=e>{}</p>", escape(&p.message(lang)));
    }
    out.push_str(if side_by_side(options) { "<div class=\"o r\">" } else { "<div class=\"o c\">" });
    for (value, label) in options {
        let checked = if e.has(name, value) { " checked" } else { "" };
        let _ = write!(out, "<label><input type={kind} name={name} value={value}{checked}>{}</label>", escape(label));
    }
    out.push_str("</div>");
    // Nothing chosen is no answer. This small radio undoes a choice without a script; it
    // shows once something is chosen (CSS), and is checked only when the citizen chose it.
    if no_answer && !multiple {
        let checked = if e.has(name, "") && nothing_chosen { " checked" } else { "" };
        let _ = write!(
            out,
            "<label class=na><input type=radio name={name} value=\"\"{checked}>{}</label>",
            t(lang, "Không trả lời", "No answer")
        );
    }
    out.push_str("</fieldset>");
    PreEscaped(out)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = maud::Escaper::new(&mut out).write_str(text);
    out
}

fn select(ctx: &Context, e: &Entered, name: &str, label: &str, options: &[(String, String)]) -> Markup {
    let chosen = e.first(name);
    html! {
        label for=(name) { (label) }
        @if let Some(p) = e.problems.for_field(name).or_else(|| e.problems.for_field(&format!("demographics.{name}"))) {
            p.e id=(anchor(name)) { (p.message(ctx.lang)) }
        }
        select id=(name) name=(name) {
            option value="" { "—" }
            @for (value, text) in options {
                option value=(value) selected[chosen == value] { (text) }
            }
        }
    }
}

fn render_thanks(ctx: &Context, changed_after_sending: bool) -> Markup {
    let lang = ctx.lang;
    let body = html! {
        p.u { (ctx.unit_name) }
        h1 { (t(lang, "Cảm ơn anh/chị!", "Thank you!")) }
        @if changed_after_sending {
            p.s { (t(lang,
                "Phiếu này đã được gửi trước đó; các thay đổi sau khi gửi không được ghi nhận.",
                "This form had already been sent; changes made after sending were not recorded.")) }
        }
        p { (t(lang,
            "Ý kiến của anh/chị đã được ghi nhận. Phiếu không ghi tên và được dùng để cải thiện chất lượng phục vụ.",
            "Your answers have been received. They are anonymous and are used to improve the service.")) }
        p { a href=(href(ctx, lang)) { (t(lang, "Trả lời phiếu mới", "Answer again for another visit")) } }
    };
    page(lang, t(lang, "Cảm ơn", "Thank you"), body)
}
