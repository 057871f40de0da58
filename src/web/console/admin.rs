//! Administration pages: units, service volumes, users and the audit log. Everyone reads
//! what their role allows; only admins change anything. Every form carries the CSRF token
//! and goes through the same checks as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, check_csrf, error_page, page, page_with_status, redirect, t};
use crate::auth::Role;
use crate::auth::users::{NewUser, UserChange, change_user, create_user};
use crate::error::ApiError;
use crate::index::period::Period;
use crate::startup::AppState;
use crate::units::Level;
use crate::units::admin::{CreateUnit, UpdateUnit, create_unit, update_unit};
use crate::{audit, imports, store};

fn csrf_input(c: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(c.who.csrf_token); }
}

fn problems(c: &Console, e: &ApiError) -> Markup {
    super::explain(c.lang, e)
}

fn status_of(e: &ApiError) -> StatusCode {
    use actix_web::ResponseError;
    e.status_code()
}

#[derive(Deserialize, Default)]
pub struct UnitForm {
    csrf: Option<String>,
    code: Option<String>,
    parent: Option<String>,
    level: Option<String>,
    name_vi: Option<String>,
    name_en: Option<String>,
    forms: Option<String>,
    requires_code: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn units_view(
    state: &AppState,
    c: &Console,
    notice: Option<Markup>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let visible: Vec<_> = tree.all().iter().filter(|u| c.who.can_see(&tree, u.id)).collect();
    let depth = |mut id: i32| {
        let mut d = 0;
        while let Some(p) = tree.get(id).and_then(|u| u.parent_id) {
            d += 1;
            id = p;
        }
        d
    };
    let body = html! {
        @if let Some(n) = notice { (n) }
        div.scroll { table {
            thead { tr { th { (t(lang, "Mã", "Code")) } th { (t(lang, "Tên", "Name")) } th { (t(lang, "Cấp", "Level")) } th { (t(lang, "Phiếu", "Forms")) } th { (t(lang, "Thao tác", "Actions")) } } }
            tbody { @for u in &visible {
                tr {
                    td { (u.code) }
                    td { (format!("{}{}", "— ".repeat(depth(u.id)), u.name_vi)) @if let Some(en) = &u.name_en { br; span.muted { (en) } } }
                    td { (Level::label_of(&u.level, lang)) }
                    td { (tree.effective_forms(u.id, &state.forms.ids()).join(", ")) }
                    td { a href={ "/console/units/" (u.code) } { (t(lang, "Chỉ số", "Figures")) } " · "
                        a href={ "/console/units/" (u.code) "/poster" } { (t(lang, "Áp phích QR", "QR poster")) }
                        @if c.who.role == Role::Admin { " · " a href={ "/console/admin/units/" (u.code) "/edit" } { (t(lang, "Sửa", "Edit")) } } }
                }
            } }
        } }
        @if c.who.role == Role::Admin {
            h2 { (t(lang, "Thêm đơn vị", "Add a unit")) }
            form.filters method="post" action="/console/admin/units" {
                (csrf_input(c))
                label { (t(lang, "Mã (vd. QNM.TK.AM)", "Code (e.g. QNM.TK.AM)")) input name="code" required; }
                label { (t(lang, "Đơn vị cấp trên", "Parent")) select name="parent" { option value="" { "—" } @for u in &visible { option value=(u.code) { (u.code) } } } }
                label { (t(lang, "Cấp", "Level")) select name="level" { @for l in Level::ALL { option value=(l.as_str()) { (l.label(lang)) } } } }
                label { (t(lang, "Tên tiếng Việt", "Vietnamese name")) input name="name_vi" required; }
                label { (t(lang, "Tên tiếng Anh", "English name")) input name="name_en"; }
                button type="submit" { (t(lang, "Thêm", "Add")) }
            }
            p.muted { (t(lang, "Nhập hàng loạt: ", "Bulk import: ")) code { "sipas units import units.csv" } }
        }
    };
    Ok(page_with_status(c, status, t(lang, "Đơn vị", "Units"), "/console/admin/units", body))
}

pub async fn units(state: web::Data<AppState>, c: Console) -> HttpResponse {
    units_view(&state, &c, None, StatusCode::OK).await.unwrap_or_else(|e| error_page(&c, &e))
}

pub async fn create(state: web::Data<AppState>, c: Console, f: web::Form<UnitForm>) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let body = CreateUnit {
            code: blank(&f.code).unwrap_or_default(),
            parent: blank(&f.parent),
            level: blank(&f.level).unwrap_or_default(),
            name_vi: blank(&f.name_vi).unwrap_or_default(),
            name_en: blank(&f.name_en),
            forms: None,
        };
        create_unit(&state, &c.who, &body).await
    }
    .await;
    match outcome {
        Ok(u) => redirect(&format!("/console/admin/units#{}", u.code)),
        Err(e) => {
            units_view(&state, &c, Some(problems(&c, &e)), status_of(&e)).await.unwrap_or_else(|e| error_page(&c, &e))
        }
    }
}

async fn edit_view(
    state: &AppState,
    c: &Console,
    code: &str,
    notice: Option<Markup>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    c.who.require_admin()?;
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let u = tree.by_code(code).ok_or_else(|| ApiError::NotFound("no such unit".into()))?;
    let parent = u.parent_id.and_then(|p| tree.get(p)).map(|p| p.code.clone()).unwrap_or_default();
    let body = html! {
        @if let Some(n) = notice { (n) }
        form.filters method="post" action={ "/console/admin/units/" (u.code) } {
            (csrf_input(c))
            label { (t(lang, "Đơn vị cấp trên", "Parent")) select name="parent" { option value="" { "—" }
                @for p in tree.all() { option value=(p.code) selected[p.code == parent] { (p.code) } } } }
            label { (t(lang, "Cấp", "Level")) select name="level" { @for l in Level::ALL { option value=(l.as_str()) selected[l.as_str() == u.level] { (l.label(lang)) } } } }
            label { (t(lang, "Tên tiếng Việt", "Vietnamese name")) input name="name_vi" value=(u.name_vi) required; }
            label { (t(lang, "Tên tiếng Anh", "English name")) input name="name_en" value=(u.name_en.clone().unwrap_or_default()); }
            label { (t(lang, "Phiếu (để trống: theo cấp trên)", "Forms (empty: as the parent)")) input name="forms" value=(u.forms.clone().unwrap_or_default()) placeholder="sipas-2017,sipas-2023"; }
            label { (t(lang, "Yêu cầu mã phiếu hẹn", "Require a receipt code"))
                select name="requires_code" { option value="false" selected[!u.requires_code] { (t(lang, "Không", "No")) } option value="true" selected[u.requires_code] { (t(lang, "Có", "Yes")) } } }
            button type="submit" { (t(lang, "Lưu", "Save")) }
        }
    };
    Ok(page_with_status(c, status, &format!("{} {}", t(lang, "Sửa", "Edit"), u.code), "/console/admin/units", body))
}

pub async fn edit(state: web::Data<AppState>, c: Console, path: web::Path<String>) -> HttpResponse {
    edit_view(&state, &c, &path, None, StatusCode::OK).await.unwrap_or_else(|e| error_page(&c, &e))
}

pub async fn update(
    state: web::Data<AppState>,
    c: Console,
    path: web::Path<String>,
    f: web::Form<UnitForm>,
) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let forms = blank(&f.forms).map(|l| crate::units::parse_form_list(&l));
        let body = UpdateUnit {
            parent: blank(&f.parent),
            level: blank(&f.level),
            name_vi: blank(&f.name_vi),
            name_en: Some(blank(&f.name_en)),
            forms: Some(forms),
            requires_code: Some(f.requires_code.as_deref() == Some("true")),
        };
        update_unit(&state, &c.who, &path, &body).await
    }
    .await;
    match outcome {
        Ok(u) => redirect(&format!("/console/admin/units#{}", u.code)),
        Err(e) => edit_view(&state, &c, &path, Some(problems(&c, &e)), status_of(&e))
            .await
            .unwrap_or_else(|e| error_page(&c, &e)),
    }
}

#[derive(Deserialize, Default)]
pub struct VolumeForm {
    csrf: Option<String>,
    unit: Option<String>,
    month: Option<String>,
    dossiers: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct YearQuery {
    year: Option<i32>,
}

async fn volumes_view(
    state: &AppState,
    c: &Console,
    year: i32,
    notice: Option<Markup>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let visible: Vec<_> = tree.all().iter().filter(|u| c.who.can_see(&tree, u.id)).collect();
    let ids: Vec<i32> = visible.iter().map(|u| u.id).collect();
    let period = Period::year(year).ok_or_else(|| ApiError::field("year", "not a year"))?;
    let rows = store::volumes::list(&state.db, &ids, &period).await?;
    let body = html! {
        @if let Some(n) = notice { (n) }
        form.filters method="get" action="/console/admin/volumes" {
            label { (t(lang, "Năm", "Year")) input type="number" name="year" value=(year) min="2000" max="2100"; }
            button type="submit" { (t(lang, "Xem", "Show")) }
        }
        @if c.who.role == Role::Admin {
            h2 { (t(lang, "Ghi số hồ sơ đã giải quyết", "Record dossiers handled")) }
            form.filters method="post" action="/console/admin/volumes" {
                (csrf_input(c))
                label { (t(lang, "Đơn vị", "Unit")) select name="unit" { @for u in &visible { option value=(u.code) { (u.code) " – " (u.name_vi) } } } }
                label { (t(lang, "Tháng", "Month")) input type="month" name="month" required; }
                label { (t(lang, "Số hồ sơ", "Dossiers")) input type="number" name="dossiers" min="0" required; }
                button type="submit" { (t(lang, "Lưu", "Save")) }
            }
            p.muted { (t(lang, "Nhập hàng loạt: ", "Bulk import: ")) code { "sipas volumes import volumes.csv" } }
        }
        div.scroll { table {
            thead { tr { th { (t(lang, "Đơn vị", "Unit")) } th { (t(lang, "Tháng", "Month")) } th.num { (t(lang, "Số hồ sơ", "Dossiers")) } } }
            tbody { @for r in &rows {
                tr { td { (tree.get(r.unit_id).map(|u| u.code.clone()).unwrap_or_default()) } td { (r.month.format("%Y-%m")) } td.num { (r.dossiers) } }
            } }
        } }
    };
    Ok(page_with_status(c, status, t(lang, "Khối lượng dịch vụ", "Service volumes"), "/console/admin/volumes", body))
}

pub async fn volumes(state: web::Data<AppState>, c: Console, q: web::Query<YearQuery>) -> HttpResponse {
    let year = q.year.unwrap_or_else(|| chrono::Datelike::year(&crate::vietnam_today()));
    volumes_view(&state, &c, year, None, StatusCode::OK).await.unwrap_or_else(|e| error_page(&c, &e))
}

pub async fn set_volume(state: web::Data<AppState>, c: Console, f: web::Form<VolumeForm>) -> HttpResponse {
    let year = chrono::Datelike::year(&crate::vietnam_today());
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        c.who.require_admin()?;
        let tree = store::units::tree(&state.db).await?;
        let row = imports::parse_volume(&tree, f.unit.as_deref(), f.month.as_deref(), f.dossiers.as_deref())
            .map_err(|p| ApiError::field("volume", p.join("; ")))?;
        store::volumes::set(&state.db, &[row]).await?;
        audit::record(
            &state.db,
            Some((c.who.user_id, &c.who.email)),
            "volumes_set",
            f.unit.as_deref(),
            serde_json::json!({"month": f.month, "dossiers": f.dossiers}),
        )
        .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match outcome {
        Ok(()) => redirect("/console/admin/volumes"),
        Err(e) => volumes_view(&state, &c, year, Some(problems(&c, &e)), status_of(&e))
            .await
            .unwrap_or_else(|e| error_page(&c, &e)),
    }
}

#[derive(Deserialize, Default)]
pub struct UserForm {
    csrf: Option<String>,
    email: Option<String>,
    role: Option<String>,
    unit: Option<String>,
    password: Option<String>,
    disabled: Option<String>,
}

async fn users_view(
    state: &AppState,
    c: &Console,
    notice: Option<Markup>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    c.who.require_admin()?;
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let users = store::users::all(&state.db).await?;
    let body = html! {
        @if let Some(n) = notice { (n) }
        div.scroll { table {
            thead { tr { th { (t(lang, "Thư điện tử", "Email")) } th { (t(lang, "Vai trò / đơn vị", "Role / unit")) } th { (t(lang, "Ngày tạo", "Created")) } } }
            tbody { @for u in &users {
                @let unit = u.unit_id.and_then(|id| tree.get(id)).map(|x| x.code.clone()).unwrap_or_default();
                tr {
                    td { (u.email) @if u.disabled { " " span.supp { (t(lang, "(đã khóa)", "(disabled)")) } } }
                    td { form method="post" action={ "/console/admin/users/" (u.id) } {
                        (csrf_input(c))
                        select name="role" aria-label=(t(lang, "Vai trò", "Role")) { @for r in Role::ALL { option value=(r.as_str()) selected[u.role == r.as_str()] { (r.label(lang)) } } }
                        " "
                        select name="unit" aria-label=(t(lang, "Đơn vị", "Unit")) { option value="" { "—" } @for x in tree.all() { option value=(x.code) selected[x.code == unit] { (x.code) } } }
                        " "
                        select name="disabled" aria-label=(t(lang, "Trạng thái", "Status")) {
                            option value="false" selected[!u.disabled] { (t(lang, "hoạt động", "active")) }
                            option value="true" selected[u.disabled] { (t(lang, "khóa", "disabled")) }
                        }
                        " " button type="submit" { (t(lang, "Lưu", "Save")) }
                    } }
                    td.muted { (u.created_at.format("%Y-%m-%d")) }
                }
            } }
        } }
        h2 { (t(lang, "Thêm người dùng", "Add a user")) }
        form.filters method="post" action="/console/admin/users" {
            (csrf_input(c))
            label { (t(lang, "Thư điện tử", "Email")) input type="email" name="email" required; }
            label { (t(lang, "Vai trò", "Role")) select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r.label(lang)) } } } }
            label { (t(lang, "Đơn vị (lãnh đạo đơn vị)", "Unit (unit managers)")) select name="unit" { option value="" { "—" } @for x in tree.all() { option value=(x.code) { (x.code) } } } }
            label { (t(lang, "Mật khẩu ban đầu", "First password")) input type="password" name="password" minlength="15" required autocomplete="new-password"; }
            button type="submit" { (t(lang, "Thêm", "Add")) }
        }
        p.muted { (t(lang, "Người dùng tự đặt lại mật khẩu qua \"Quên mật khẩu\".", "Users reset their own passwords through \"Forgot your password\".")) }
    };
    Ok(page_with_status(c, status, t(lang, "Người dùng", "Users"), "/console/admin/users", body))
}

pub async fn users(state: web::Data<AppState>, c: Console) -> HttpResponse {
    users_view(&state, &c, None, StatusCode::OK).await.unwrap_or_else(|e| error_page(&c, &e))
}

pub async fn create_account(state: web::Data<AppState>, c: Console, f: web::Form<UserForm>) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let body = NewUser {
            email: blank(&f.email).unwrap_or_default(),
            role: blank(&f.role).unwrap_or_default(),
            unit: blank(&f.unit),
            password: f.password.clone().unwrap_or_default(),
        };
        create_user(&state, &c.who, &body).await
    }
    .await;
    match outcome {
        Ok(_) => redirect("/console/admin/users"),
        Err(e) => {
            users_view(&state, &c, Some(problems(&c, &e)), status_of(&e)).await.unwrap_or_else(|e| error_page(&c, &e))
        }
    }
}

pub async fn change_account(
    state: web::Data<AppState>,
    c: Console,
    path: web::Path<i32>,
    f: web::Form<UserForm>,
) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let body = UserChange {
            role: blank(&f.role),
            unit: Some(blank(&f.unit).unwrap_or_default()),
            disabled: f.disabled.as_deref().map(|d| d == "true"),
        };
        change_user(&state, &c.who, *path, &body).await
    }
    .await;
    match outcome {
        Ok(_) => redirect("/console/admin/users"),
        Err(e) => {
            users_view(&state, &c, Some(problems(&c, &e)), status_of(&e)).await.unwrap_or_else(|e| error_page(&c, &e))
        }
    }
}

pub async fn audit_log(state: web::Data<AppState>, c: Console, q: web::Query<audit::AuditQuery>) -> HttpResponse {
    let lang = c.lang;
    match audit::entries(&state, &c.who, &q).await {
        Err(e) => error_page(&c, &e),
        Ok(rows) => {
            let body = html! {
                form.filters method="get" action="/console/admin/audit" {
                    label { (t(lang, "Hành động", "Action")) select name="action" {
                        option value="" { (t(lang, "Tất cả", "All")) }
                        @for (code, _, _) in audit::ACTIONS { option value=(code) selected[q.action.as_deref() == Some(code)] { (audit::action_label(code, lang)) } }
                    } }
                    label { (t(lang, "Từ ngày", "From")) input type="date" name="from" value=(q.from.clone().unwrap_or_default()); }
                    label { (t(lang, "Đến ngày", "To")) input type="date" name="to" value=(q.to.clone().unwrap_or_default()); }
                    button type="submit" { (t(lang, "Lọc", "Filter")) }
                }
                p { a href="/api/v1/admin/audit.csv" { (t(lang, "Tải CSV", "Download CSV")) } }
                div.scroll tabindex="0" role="region" aria-label=(t(lang, "Nhật ký", "Audit log")) { table {
                    thead { tr { th { (t(lang, "Thời điểm (giờ Việt Nam, UTC+7)", "When (Vietnam time, UTC+7)")) } th { (t(lang, "Người", "Who")) } th { (t(lang, "Hành động", "Action")) } th { (t(lang, "Đối tượng", "Target")) } } }
                    // The details get a full-width row of their own, readable on a phone.
                    tbody { @for r in &rows {
                        @let details = details_text(lang, &r.details);
                        tr.lead[!details.is_empty()] { td { ((r.at + chrono::TimeDelta::hours(7)).format("%Y-%m-%d %H:%M:%S")) } td { (r.actor.clone().unwrap_or_default()) } td { (audit::action_label(&r.action, lang)) } td { (r.target.clone().unwrap_or_default()) } }
                        @if !details.is_empty() { tr.sub { td.muted colspan="4" { (t(lang, "Chi tiết: ", "Details: ")) (details) } } }
                    } }
                } }
            };
            page(&c, t(lang, "Nhật ký", "Audit log"), "/console/admin/audit", body)
        }
    }
}

/// An audit entry's details as a reader sees them: known keys and codes by their labels,
/// empty filters left out. What the table does not know is shown as stored.
fn details_text(lang: crate::Lang, details: &str) -> String {
    use crate::forms::{Channel, RespondentType};
    use serde_json::Value;
    let key = |k: &str| -> String {
        let (vi, en) = match k {
            "via" => ("qua", "via"),
            "export" => ("bảng", "table"),
            "format" => ("định dạng", "format"),
            "within" => ("đơn vị", "unit"),
            "period" => ("kỳ", "period"),
            "k" => ("ngưỡng ẩn", "threshold"),
            "rows" => ("số dòng", "rows"),
            "comments" => ("kèm ý kiến", "with comments"),
            "count" => ("số lượng", "count"),
            "month" => ("tháng", "month"),
            "dossiers" => ("số hồ sơ", "dossiers"),
            "respondent_type" => ("đối tượng", "respondents"),
            "channel" => ("kênh", "channel"),
            "service" => ("lĩnh vực", "field"),
            "role" => ("vai trò", "role"),
            "name" => ("tên", "name"),
            _ => return k.to_string(),
        };
        t(lang, vi, en).to_string()
    };
    let value = |v: &Value| -> String {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => t(lang, if *b { "có" } else { "không" }, if *b { "yes" } else { "no" }).to_string(),
            other => other.to_string(),
        };
        let label = match text.as_str() {
            "console" => Some(t(lang, "bảng điều khiển", "console")),
            "api" => Some("API"),
            "indices" => Some(t(lang, "bảng chỉ số", "indices table")),
            "microdata" => Some(t(lang, "dữ liệu phiếu", "microdata")),
            code => Channel::parse(code)
                .map(|c| c.label(lang))
                .or_else(|| RespondentType::parse(code).map(|r| r.label(lang)))
                .or_else(|| Role::parse(code).map(|r| r.label(lang))),
        };
        label.map_or(text, str::to_string)
    };
    fn pairs(v: &Value, out: &mut Vec<(String, Value)>) {
        if let Value::Object(map) = v {
            for (k, v) in map {
                match v {
                    Value::Null => {}
                    Value::Object(_) => pairs(v, out),
                    _ => out.push((k.clone(), v.clone())),
                }
            }
        }
    }
    let Ok(parsed) = serde_json::from_str::<Value>(details) else { return details.to_string() };
    let mut out = Vec::new();
    pairs(&parsed, &mut out);
    out.iter().map(|(k, v)| format!("{}: {}", key(k), value(v))).collect::<Vec<_>>().join("; ")
}
