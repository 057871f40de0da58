//! The console's improvement plans: the plans in one's scope and a form to make one (for the
//! unit's managers and admins), a plan's before/after with its verdict, its status and its
//! comments. Every form carries the CSRF token and goes through `plans::service`, as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, check_csrf, error_page, num, page, page_with_status, redirect, t};
use crate::Lang;
use crate::auth::Role;
use crate::error::ApiError;
use crate::plans::service::{self, ListQuery, NewComment, NewPlan, PlanChanges, PlanDetail};
use crate::plans::{Figure, Status, Verdict};
use crate::startup::AppState;

#[derive(Deserialize, Default)]
pub struct ListPage {
    unit: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
pub struct PlanForm {
    csrf: Option<String>,
    unit: Option<String>,
    /// Item codes separated by commas or spaces.
    criteria: Option<String>,
    baseline_period: Option<String>,
    title: Option<String>,
    actions: Option<String>,
    responsible: Option<String>,
    deadline: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ChangeForm {
    csrf: Option<String>,
    status: Option<String>,
    deadline: Option<String>,
    responsible: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct CommentForm {
    csrf: Option<String>,
    body: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DetailPage {
    from: Option<String>,
}

fn csrf_input(c: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(c.who.csrf_token); }
}

fn figure_cell(lang: Lang, f: &Figure) -> Markup {
    html! {
        @if let (Some(v), Some(n)) = (f.value, f.n) {
            (num(Some(v))) br; span.muted { (f.ci95.map_or(String::new(), |[a, b]| format!("{a:.1}–{b:.1}"))) " · n = " (n) }
        } @else {
            span.supp { (t(lang, "không công bố", "withheld")) }
        }
    }
}

fn verdict_cell(lang: Lang, v: Verdict) -> Markup {
    let text = v.label(lang);
    html! {
        @match v {
            Verdict::Improved => strong.good { (text) },
            Verdict::Worse => strong.bad { (text) },
            _ => span.muted { (text) },
        }
    }
}

fn status_label(lang: Lang, s: Status, overdue: bool) -> Markup {
    html! {
        (s.label(lang))
        @if overdue { " " strong.bad { (t(lang, "(quá hạn)", "(overdue)")) } }
    }
}

/// `/console/plans`: the plans of a unit's subtree, and the form to make one.
pub async fn list(state: web::Data<AppState>, c: Console, q: web::Query<ListPage>) -> HttpResponse {
    let form = PlanForm { unit: q.unit.clone(), ..Default::default() };
    list_view(&state, &c, q.unit.as_deref(), &form, None, StatusCode::OK).await.unwrap_or_else(|e| error_page(&c, &e))
}

async fn list_view(
    state: &AppState,
    c: &Console,
    unit: Option<&str>,
    form: &PlanForm,
    notice: Option<Markup>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let lang = c.lang;
    let q = ListQuery { unit: unit.map(str::to_string), status: None, overdue: None };
    let plans = service::list(state, &c.who, &q).await?.plans;
    let writer = c.who.role != Role::Analyst;
    let body = html! {
        @if plans.is_empty() {
            p.muted { (t(lang, "Chưa có kế hoạch khắc phục nào.", "No improvement plan yet.")) }
        } @else {
            div.scroll tabindex="0" { table data-table="plans" {
                thead { tr {
                    th { (t(lang, "Đơn vị", "Unit")) } th { (t(lang, "Kế hoạch", "Plan")) } th { (t(lang, "Tiêu chí", "Criteria")) }
                    th { (t(lang, "Hạn", "Deadline")) } th { (t(lang, "Tình trạng", "Status")) }
                } }
                tbody { @for p in &plans {
                    tr data-plan=(p.id) {
                        td { (p.unit_name) " " span.muted { (p.unit) } }
                        td { a href={ "/console/plans/" (p.id) } { (p.title) } }
                        td { (p.criteria.iter().map(|c| c.code.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (p.deadline) }
                        td { (status_label(lang, p.status, p.overdue)) }
                    }
                } }
            } }
        }
        @if writer {
            h2 { (t(lang, "Lập kế hoạch khắc phục", "Make an improvement plan")) }
            @if let Some(n) = notice { (n) }
            form.stack method="post" action="/console/plans" {
                (csrf_input(c))
                label { (t(lang, "Mã đơn vị", "Unit code")) input name="unit" required value=(form.unit.clone().unwrap_or_default()); }
                label { (t(lang, "Tiêu chí (mã, cách nhau bởi dấu phẩy, ví dụ B3, C2)", "Criteria (codes separated by commas, e.g. B3, C2)"))
                    input name="criteria" required value=(form.criteria.clone().unwrap_or_default()); }
                label { (t(lang, "Kỳ gốc (năm, quý hoặc tháng đã kết thúc, ví dụ 2025-Q2)", "Baseline period (a finished year, quarter or month, e.g. 2025-Q2)"))
                    input name="baseline_period" required value=(form.baseline_period.clone().unwrap_or_default()); }
                label { (t(lang, "Tên kế hoạch", "Title")) input name="title" required maxlength="200" value=(form.title.clone().unwrap_or_default()); }
                label { (t(lang, "Giải pháp", "Actions")) textarea name="actions" required maxlength="4000" rows="4" { (form.actions.clone().unwrap_or_default()) } }
                label { (t(lang, "Người chịu trách nhiệm", "Responsible")) input name="responsible" required maxlength="200" value=(form.responsible.clone().unwrap_or_default()); }
                label { (t(lang, "Hạn hoàn thành", "Deadline")) input type="date" name="deadline" required value=(form.deadline.clone().unwrap_or_default()); }
                button type="submit" { (t(lang, "Lập kế hoạch", "Make the plan")) }
            }
        }
    };
    Ok(page_with_status(c, status, t(lang, "Kế hoạch khắc phục", "Improvement plans"), "/console/plans", body))
}

/// `POST /console/plans`.
pub async fn create(state: web::Data<AppState>, c: Console, f: web::Form<PlanForm>) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let criteria = f
            .criteria
            .as_deref()
            .unwrap_or_default()
            .split([',', ' ', ';'])
            .map(|s| s.trim().to_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let body = NewPlan {
            unit: f.unit.clone().unwrap_or_default().trim().to_string(),
            form: None,
            criteria,
            baseline_period: f.baseline_period.clone().unwrap_or_default(),
            title: f.title.clone().unwrap_or_default(),
            actions: f.actions.clone().unwrap_or_default(),
            responsible: f.responsible.clone().unwrap_or_default(),
            deadline: f.deadline.clone().unwrap_or_default(),
            status: None,
        };
        service::create(&state, &c.who, &body).await
    }
    .await;
    match outcome {
        Ok(made) => redirect(&format!("/console/plans/{}", made.id)),
        Err(e @ (ApiError::Validation { .. } | ApiError::NotFound(_))) => {
            use actix_web::ResponseError;
            let notice = super::explain(c.lang, &e);
            list_view(&state, &c, None, &f, Some(notice), e.status_code()).await.unwrap_or_else(|e| error_page(&c, &e))
        }
        Err(e) => error_page(&c, &e),
    }
}

/// `/console/plans/{id}`: the plan, before and after, its status and comments.
pub async fn detail(
    state: web::Data<AppState>,
    c: Console,
    id: web::Path<String>,
    q: web::Query<DetailPage>,
) -> HttpResponse {
    let from = q.from.as_deref().filter(|s| !s.is_empty());
    match service::detail(&state, &c.who, &id, from).await {
        Ok(d) => detail_page(&c, &d),
        Err(e) => error_page(&c, &e),
    }
}

fn detail_page(c: &Console, d: &PlanDetail) -> HttpResponse {
    let lang = c.lang;
    let p = &d.plan;
    let e = &d.evaluation;
    let writer = c.who.role != Role::Analyst;
    let body = html! {
        p { (p.unit_name) " " span.muted { (p.unit) } " · " (t(lang, "Hạn", "Deadline")) " " (p.deadline) " · "
            (status_label(lang, p.status, p.overdue)) }
        h2 { (t(lang, "Giải pháp", "Actions")) }
        p.pre { (p.actions) }
        p { (t(lang, "Người chịu trách nhiệm: ", "Responsible: ")) (p.responsible) }
        h2 { (t(lang, "Kết quả: trước và sau", "Did it work? Before and after")) }
        p.muted { (t(lang, "Trước: ", "Before: ")) (e.before) " · " (t(lang, "Sau: ", "After: ")) (e.after) ". "
            (t(lang, "Chênh lệch = sau − trước, kèm khoảng tin cậy 95% (Newcombe–Wilson); \"đã cải thiện\" khi cả khoảng trên 0, \"kém đi\" khi cả khoảng dưới 0. Kỳ không đủ phiếu không cho kết luận.",
               "Change = after − before, with its 95% interval (Newcombe–Wilson); improved when the whole interval is above 0, worse when it is below 0. A withheld period gives no verdict.")) }
        table.criteria data-table="changes" {
            thead { tr { th.num { (t(lang, "Trước", "Before")) } th.num { (t(lang, "Sau", "After")) }
                th.num { (t(lang, "Chênh lệch (KTC 95%)", "Change (95% CI)")) } th { (t(lang, "Kết luận", "Verdict")) } } }
            @for ch in &e.changes {
                @let text = p.criteria.iter().find(|x| x.code == ch.code).map(|x| x.text.clone()).unwrap_or_default();
                tbody data-code=(ch.code) data-verdict=(serde_json::to_value(ch.verdict).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) {
                    tr { th scope="rowgroup" colspan="4" { (ch.code) ". " (text) } }
                    tr {
                        td.num { (figure_cell(lang, &ch.before)) }
                        td.num { (figure_cell(lang, &ch.after)) }
                        td.num { @if let (Some(x), Some([lo, hi])) = (ch.change, ch.ci95) {
                            strong { (format!("{x:+.1}")) } br; span.muted { (format!("{lo:+.1} … {hi:+.1}")) } } @else { "–" } }
                        td { (verdict_cell(lang, ch.verdict)) }
                    }
                }
            }
        }
        form method="get" action={ "/console/plans/" (p.id) } {
            label { (t(lang, "So sánh từ ngày (tùy chọn)", "Compare from a date (optional)")) " "
                input type="date" name="from" value=(e.from.map(|d| d.to_string()).unwrap_or_default()); }
            " " button type="submit" { (t(lang, "So sánh", "Compare")) }
        }
        @if writer {
            h2 { (t(lang, "Cập nhật", "Update")) }
            form.stack method="post" action={ "/console/plans/" (p.id) } {
                (csrf_input(c))
                label { (t(lang, "Tình trạng", "Status"))
                    select name="status" { @for s in Status::ALL { option value=(s.as_str()) selected[s == p.status] { (s.label(lang)) } } } }
                label { (t(lang, "Hạn hoàn thành", "Deadline")) input type="date" name="deadline" value=(p.deadline); }
                label { (t(lang, "Người chịu trách nhiệm", "Responsible")) input name="responsible" maxlength="200" value=(p.responsible); }
                button type="submit" { (t(lang, "Lưu", "Save")) }
            }
        }
        h2 { (t(lang, "Góp ý", "Comments")) }
        @for cm in &d.comments {
            div.comment { p.muted { (cm.author) " · " (cm.created_at.format("%Y-%m-%d %H:%M UTC")) } p.pre { (cm.body) } }
        }
        form.stack method="post" action={ "/console/plans/" (p.id) "/comments" } {
            (csrf_input(c))
            label { (t(lang, "Góp ý của bạn", "Your comment")) textarea name="body" required maxlength="2000" rows="3" {} }
            button type="submit" { (t(lang, "Gửi góp ý", "Send the comment")) }
        }
        p { a href="/console/plans" { (t(lang, "← Các kế hoạch", "← All plans")) } }
    };
    page(c, &p.title, "/console/plans", body)
}

/// `POST /console/plans/{id}`: status, deadline, responsible.
pub async fn update(
    state: web::Data<AppState>,
    c: Console,
    id: web::Path<String>,
    f: web::Form<ChangeForm>,
) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        let changes = PlanChanges {
            title: None,
            actions: None,
            responsible: f.responsible.clone().filter(|s| !s.trim().is_empty()),
            deadline: f.deadline.clone().filter(|s| !s.trim().is_empty()),
            status: f.status.clone().filter(|s| !s.trim().is_empty()),
        };
        service::update(&state, &c.who, &id, changes).await
    }
    .await;
    match outcome {
        Ok(_) => redirect(&format!("/console/plans/{id}")),
        Err(e) => {
            super::error_page_back(&c, &e, &format!("/console/plans/{id}"), t(c.lang, "← Kế hoạch", "← The plan"))
        }
    }
}

/// `POST /console/plans/{id}/comments`.
pub async fn comment(
    state: web::Data<AppState>,
    c: Console,
    id: web::Path<String>,
    f: web::Form<CommentForm>,
) -> HttpResponse {
    let outcome = async {
        check_csrf(&c, f.csrf.as_deref())?;
        service::comment(&state, &c.who, &id, &NewComment { body: f.body.clone().unwrap_or_default() }).await
    }
    .await;
    match outcome {
        Ok(_) => redirect(&format!("/console/plans/{id}")),
        Err(e) => {
            super::error_page_back(&c, &e, &format!("/console/plans/{id}"), t(c.lang, "← Kế hoạch", "← The plan"))
        }
    }
}
