//! The console's reading pages: overview, rankings, a unit's page and its printable report,
//! and the exports page.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, error_page, error_page_back, num, page, suppressed_note, t, withheld_note};
use crate::Lang;
use crate::auth::Role;
use crate::entities::unit;
use crate::error::{ApiError, FieldErrors};
use crate::export::files::{self, ExportQuery};
use crate::forms::{Channel, RespondentType, Text};
use crate::index::compare;
use crate::index::engine::{Figures, ItemFigure};
use crate::index::report::{self, Breakdown, Context, IndexReport, IndexRequest, Rollup};
use crate::publish::query::{Common, Parsed, Periods, parse_common};
use crate::startup::AppState;
use crate::store;
use crate::units::{Level, UnitTree};
use crate::web::charts::{self, Bar, Point};

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(flatten)]
    common: Common,
    level: Option<String>,
    /// A unit's page: also list the units below it as they stood on this day.
    as_at: Option<String>,
}

/// The filter bar: form, period, respondent type, channel and field.
fn filters(c: &Console, state: &AppState, action: &str, p: &Parsed, extra: Markup) -> Markup {
    let lang = c.lang;
    let f = &p.filters;
    html! {
        form.filters method="get" action=(action) {
            label { (t(lang, "Phiếu", "Form"))
                select name="form" { @for lf in state.forms.all() {
                    option value=(lf.form.id) selected[lf.form.id == p.form.form.id] { (lf.form.id) }
                } }
            }
            label { (t(lang, "Kỳ (2024, 2024-Q1, 2024-03)", "Period (2024, 2024-Q1, 2024-03)"))
                @let label = p.period.label();
                input type="text" name="period" value=(if label.contains("..") { "" } else { &label }) size="10" pattern="[0-9]{4}(-Q[1-4]|-[0-9]{2})?";
            }
            label { (t(lang, "Đối tượng", "Respondents"))
                select name="respondent_type" {
                    option value="" { (t(lang, "Tất cả", "All")) }
                    @for r in RespondentType::ALL { option value=(r.as_str()) selected[f.respondent_type.as_deref() == Some(r.as_str())] { (r.label(lang)) } }
                }
            }
            label { (t(lang, "Kênh", "Channel"))
                select name="channel" {
                    option value="" { (t(lang, "Tất cả", "All")) }
                    @for ch in Channel::ALL { option value=(ch.as_str()) selected[f.channel.as_deref() == Some(ch.as_str())] { (ch.label(lang)) } }
                }
            }
            label { (t(lang, "Lĩnh vực", "Field"))
                select name="service" {
                    option value="" { (t(lang, "Tất cả", "All")) }
                    @for s in &p.form.form.fields { option value=(s.code) selected[f.service.as_deref() == Some(s.code.as_str())] { (s.text.get(lang)) } }
                }
            }
            (extra)
            button type="submit" { (t(lang, "Xem", "Show")) }
        }
    }
}

/// Empty select values mean "all": drop them before the shared parser sees them.
fn clean(mut q: Common) -> Common {
    for v in [
        &mut q.form,
        &mut q.period,
        &mut q.from,
        &mut q.to,
        &mut q.respondent_type,
        &mut q.channel,
        &mut q.service,
        &mut q.k,
    ] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        }
    }
    q
}

async fn parse(
    state: &AppState,
    c: &Console,
    tree: &UnitTree,
    unit: Option<&str>,
    q: Common,
) -> Result<Parsed, ApiError> {
    let mut fields = FieldErrors::new();
    let parsed = parse_common(state, tree, &c.who, unit, &clean(q), Periods::Calendar, &mut fields)?;
    match (parsed, fields.is_empty()) {
        (Some(p), true) => Ok(p),
        _ => Err(ApiError::validation(fields)),
    }
}

async fn index(
    state: &AppState,
    tree: &UnitTree,
    p: &Parsed,
    unit: &unit::Model,
    breakdown: Option<Breakdown>,
) -> Result<IndexReport, ApiError> {
    let ctx = Context::settled(state, tree).await;
    let request = IndexRequest {
        form: &p.form,
        unit,
        period: p.period,
        filters: p.filters.clone(),
        rollup: Rollup::Pooled,
        breakdown,
        k: p.k,
    };
    Ok(report::index(&ctx, &request).await?)
}

fn group_title(p: &Parsed, code: &str, lang: Lang) -> String {
    fn find<'a>(gs: &'a [crate::forms::Group], code: &str) -> Option<&'a Text> {
        gs.iter().find_map(|g| if g.code == code { Some(&g.title) } else { find(&g.groups, code) })
    }
    find(&p.form.form.groups, code).map_or(code.to_string(), |t| t.get(lang).to_string())
}

fn item_text(p: &Parsed, code: &str, lang: Lang) -> String {
    p.form.form.index_items().iter().find(|i| i.code == code).map_or(String::new(), |i| i.text.get(lang).to_string())
}

fn headline(c: &Console, p: &Parsed, f: &Figures) -> Markup {
    let lang = c.lang;
    html! {
        div.cards {
            div.card {
                div.muted { "SIPAS" }
                @if let Some(e) = &f.index {
                    div.v { (num(Some(e.value))) }
                    div.muted { (t(lang, "KTC 95%: ", "95% CI: ")) (e.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) }
                } @else {
                    div.v.supp { "–" }
                    div.muted.supp { (withheld_note(lang, f.withheld, p.k)) }
                }
                div.muted { (f.n) " " (t(lang, "phiếu", "responses")) }
            }
            @for g in &f.groups {
                div.card {
                    div.muted { (g.code) ". " (group_title(p, &g.code, lang)) }
                    div.v { (num(g.value)) }
                    div.muted { (g.n) " " (t(lang, "phiếu", "responses")) }
                }
            }
        }
    }
}

/// The monthly trend, and under it the months without a point and why: no response, fewer
/// than k (withheld), or no answer to any criterion.
fn trend_chart(c: &Console, trend: &report::Trend) -> Markup {
    let lang = c.lang;
    let why = |p: &report::TrendPoint| match (p.n, p.withheld, p.suppressed) {
        (0, _, _) => "–",
        (_, Some(crate::index::engine::Withheld::ProtectsAnother), _) => "†",
        (_, _, true) => "*",
        _ => "○",
    };
    let points: Vec<Point> = trend
        .points
        .iter()
        .map(|p| Point { label: p.period.clone(), value: p.index.as_ref().map(|e| e.value), mark: why(p) })
        .collect();
    // A rule before the first point on or after each change.
    let mut breaks: Vec<usize> = trend
        .changes
        .iter()
        .filter_map(|ch| trend.points.iter().position(|p| p.to >= ch.effective))
        .filter(|i| *i > 0)
        .collect();
    breaks.dedup();
    // Changes of one kind on one day in one line (a ward made of five communes).
    let mut grouped: Vec<(chrono::NaiveDate, &str, String)> = Vec::new();
    for ch in &trend.changes {
        let other = match (&ch.name, &ch.unit) {
            (Some(n), Some(c)) => format!("{n} ({c})"),
            (Some(n), None) => n.clone(),
            _ => String::new(),
        };
        match grouped.last_mut() {
            Some((day, change, others)) if *day == ch.effective && *change == ch.change => {
                others.push_str(", ");
                others.push_str(&other);
            }
            _ => grouped.push((ch.effective, &ch.change, other)),
        }
    }
    let missing = |mark: &str| -> Vec<&report::TrendPoint> {
        trend.points.iter().filter(|p| p.index.is_none() && why(p) == mark).collect()
    };
    let (none, withheld, unanswered, protecting) = (missing("–"), missing("*"), missing("○"), missing("†"));
    let months = |ps: &[&report::TrendPoint]| ps.iter().map(|p| p.period.as_str()).collect::<Vec<_>>().join(", ");
    let counted = |ps: &[&report::TrendPoint]| {
        ps.iter()
            .map(|p| format!("{} ({} {})", p.period, p.n, t(lang, "phiếu", "responses")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let withheld_title = match lang {
        Lang::Vi => format!("Dưới {} phiếu, không công bố:", trend.k),
        Lang::En => format!("Fewer than {} responses, withheld:", trend.k),
    };
    html! { div.keep {
        div data-chart="trend" { (charts::line(t(lang, "Diễn biến SIPAS theo tháng", "SIPAS month by month"), &points, &breaks)) }
        @if !trend.changes.is_empty() {
            ul.chart-note data-note="changes" { @for (day, change, others) in &grouped { li { "┆ " (change_line(lang, *day, change, others)) } } }
        }
        @if points.iter().any(|p| p.value.is_none()) {
            ul.chart-note {
                @if !none.is_empty() { li { "– " (t(lang, "Không có phiếu:", "No responses:")) " " (months(&none)) } }
                @if !withheld.is_empty() { li { "* " (withheld_title) " " (counted(&withheld)) } }
                @if !protecting.is_empty() {
                    li { "† " (t(lang, "Ẩn để bảo vệ một nhóm khác:", "Withheld to protect another group:")) " " (months(&protecting)) }
                }
                @if !unanswered.is_empty() {
                    li { "○ " (t(lang, "Không ai trả lời các tiêu chí:", "No answer to any criterion:")) " " (counted(&unanswered)) }
                }
            }
        }
    } }
}

/// A restructuring marked on a trend chart, in the reader's language.
fn change_line(lang: Lang, day: chrono::NaiveDate, change: &str, other: &str) -> String {
    let date = day.format("%d/%m/%Y");
    let vi = lang == Lang::Vi;
    match change {
        "merged_in" if vi => format!("{date}: {other} sáp nhập vào; số liệu trước đó cộng các đơn vị tiền thân"),
        "merged_in" => format!("{date}: {other} merged in; figures before add up the predecessors"),
        "split_from" if vi => format!("{date}: tách ra từ {other}"),
        "split_from" => format!("{date}: split off {other}"),
        "merged_into" if vi => format!("{date}: sáp nhập vào {other}"),
        "merged_into" => format!("{date}: merged into {other}"),
        "split_into" if vi => format!("{date}: chia tách thành {other}"),
        "split_into" => format!("{date}: split into {other}"),
        "renamed" if vi => format!("{date}: đổi tên thành {other}"),
        "renamed" => format!("{date}: renamed {other}"),
        "created" if vi => format!("{date}: thành lập"),
        "created" => format!("{date}: created"),
        "moved" if vi => format!("{date}: chuyển trực thuộc {other}"),
        "moved" => format!("{date}: moved under {other}"),
        _ if vi => format!("{date}: kết thúc"),
        _ => format!("{date}: ended"),
    }
}

/// `/console`: the overview of one's scope (the province, or one's unit).
pub async fn overview(state: web::Data<AppState>, c: Console, q: web::Query<PageQuery>) -> HttpResponse {
    match overview_inner(&state, &c, q.into_inner()).await {
        Ok(r) => r,
        Err(e) => error_page(&c, &e),
    }
}

async fn overview_inner(state: &AppState, c: &Console, q: PageQuery) -> Result<HttpResponse, ApiError> {
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    if tree.all().is_empty() {
        return Ok(page(
            c,
            t(lang, "Tổng quan", "Overview"),
            "/console",
            html! { p { (t(lang, "Chưa có đơn vị nào.", "There are no units yet.")) } },
        ));
    }
    let p = parse(state, c, &tree, None, q.common).await?;
    let unit = p.unit.clone();
    let r = index(state, &tree, &p, &unit, Some(Breakdown::Unit)).await?;
    let ctx = Context::settled(state, &tree).await;
    let trend = report::trend(&ctx, &p.form, &unit, p.period, false, &p.filters, p.k).await?;
    let rows = r.breakdown.clone().unwrap_or_default();
    let mut bars: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: row.name.clone().unwrap_or_else(|| t(lang, "(tại đơn vị)", "(own office)").to_string()),
            value: row.figures.index.as_ref().map(|e| e.value),
            ci: row.figures.index.as_ref().and_then(|e| e.ci95),
            note: withheld_note(lang, row.figures.withheld, p.k),
        })
        .collect();
    bars.sort_by(|a, b| b.value.unwrap_or(-1.0).total_cmp(&a.value.unwrap_or(-1.0)));
    let body = html! {
        (filters(c, state, "/console", &p, html! {}))
        p.muted { (unit.name_vi) " · " (p.period.from) " – " (p.period.to) " · "
            (t(lang, "Số liệu đo lường tại địa phương, không phải SIPAS chính thức của Bộ Nội vụ.", "Local measurement, not the Ministry's official SIPAS.")) }
        (headline(c, &p, &r.figures))
        h2 { (t(lang, "Diễn biến", "Trend")) }
        (trend_chart(c, &trend))
        h2 { (t(lang, "Các đơn vị trực thuộc", "Units below")) }
        (charts::bars(t(lang, "SIPAS theo đơn vị", "SIPAS by unit"), &bars, r.figures.index.as_ref().map(|e| (t(lang, "Chung", "All"), e.value))))
        (unit_rows(c, &p, &rows))
        h2 { (t(lang, "Tiêu chí thấp nhất", "Weakest criteria")) }
        (lowest_table(c, &p, &r.figures))
    };
    Ok(page(c, t(lang, "Tổng quan", "Overview"), "/console", body))
}

fn unit_rows(c: &Console, p: &Parsed, rows: &[report::BreakdownRow]) -> Markup {
    let lang = c.lang;
    html! {
        div.scroll tabindex="0" { table {
            thead { tr { th { (t(lang, "Đơn vị", "Unit")) } th.num { (t(lang, "Phiếu", "Responses")) } th.num { "SIPAS" } th.num { (t(lang, "KTC 95%", "95% CI")) } } }
            tbody { @for row in rows {
                tr {
                    td { @if row.key == "(own)" { (t(lang, "(phiếu tại chính đơn vị)", "(the unit's own office)")) } @else {
                        a href={ "/console/units/" (row.key) } { (row.name.clone().unwrap_or_default()) } " " span.muted { (row.key) } } }
                    td.num { (row.figures.n) }
                    @if let Some(e) = &row.figures.index {
                        td.num { (num(Some(e.value))) }
                        td.num { (e.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) }
                    } @else {
                        td.num.supp colspan="2" { (withheld_note(lang, row.figures.withheld, p.k)) }
                    }
                }
            } }
        } }
    }
}

/// The scope's lowest criteria (the overview has no reference above it).
fn lowest_table(c: &Console, p: &Parsed, f: &Figures) -> Markup {
    let lang = c.lang;
    let mut items: Vec<&ItemFigure> = f.items.iter().filter(|i| i.value.is_some()).collect();
    items.sort_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)));
    items.truncate(5);
    if items.is_empty() {
        return html! { p.supp { (suppressed_note(lang, p.k)) } };
    }
    html! {
        div.scroll tabindex="0" { table {
            thead { tr { th { (t(lang, "Tiêu chí", "Criterion")) } th.num { (t(lang, "Trả lời", "Answers")) } th.num { (t(lang, "Chỉ số", "Index")) }
                th.num { (t(lang, "KTC 95%", "95% CI")) } } }
            tbody { @for i in &items {
                tr { td { (i.code) ". " (item_text(p, &i.code, lang)) } td.num { (i.n) } td.num { (num(i.value)) }
                    td.num { (i.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) } }
            } }
        } }
    }
}

/// How many criteria below the province the unit page lists (the most certain first).
const LOSSES_SHOWN: usize = 5;

/// "Lost points": the criteria below the province (same form, period and filters), with the
/// 95% interval of each gap and whether the gap is larger than its uncertainty
/// (`index::compare`). `reference` is None on the province's own page.
fn lost_section(c: &Console, p: &Parsed, f: &Figures, reference: Option<&Figures>) -> Markup {
    let lang = c.lang;
    let Some(reference) = reference else {
        return html! { p.muted { (t(lang, "Đây là cấp tỉnh: không có cấp trên để so sánh.", "This is the province: there is nothing above it to compare with.")) } };
    };
    if f.suppressed {
        return html! { p.supp { (t(lang, "Không so sánh được: ", "Nothing to compare: ")) (suppressed_note(lang, p.k)) "." } };
    }
    let found = compare::compare(&f.items, &reference.items, p.k);
    let not_compared = html! {
        @if found.not_compared > 0 {
            p.muted { (found.not_compared) (match lang {
                Lang::Vi => format!(" tiêu chí không so sánh được: dưới {} câu trả lời ở đơn vị hoặc ở phần còn lại của tỉnh.", p.k),
                Lang::En => format!(" criteria not compared: fewer than {} answers at the unit or in the rest of the province.", p.k),
            }) }
        }
    };
    if found.compared == 0 {
        return html! { p.supp { (t(lang, "Không so sánh được tiêu chí nào.", "No criterion could be compared.")) } (not_compared) };
    }
    let losses = found.losses;
    if losses.is_empty() {
        return html! { p { (t(lang, "Không có tiêu chí nào thấp hơn toàn tỉnh trong kỳ này.", "No criterion is below the province in this period.")) } (not_compared) };
    }
    let rest = losses.get(LOSSES_SHOWN..).unwrap_or_default();
    let rest_clear = rest.iter().filter(|l| l.clear).count();
    html! {
        p.muted { (t(lang,
            "Chỉ các tiêu chí thấp hơn toàn tỉnh (cùng kỳ, cùng bộ lọc). Chênh lệch = đơn vị − toàn tỉnh, kèm khoảng tin cậy 95%; \"rõ rệt\" khi cả khoảng nằm dưới 0 (so sánh đơn vị với phần còn lại của tỉnh, khoảng Newcombe–Wilson).",
            "Only criteria below the province (same period, same filters). Gap = unit − province, with its 95% interval; \"clear\" when the whole interval is below 0 (the unit against the rest of the province, Newcombe–Wilson interval)."
        )) }
        // A criterion's text on a row of its own, its figures on the next: four narrow columns
        // that fit a 320 px phone.
        table.criteria data-table="lost" {
            thead { tr { th.num { (t(lang, "Đơn vị", "Unit")) } th.num { (t(lang, "Toàn tỉnh", "Province")) }
                th.num { (t(lang, "Chênh lệch (KTC 95%)", "Gap (95% CI)")) } th { (t(lang, "Khác biệt", "Difference")) } } }
            @for l in losses.iter().take(LOSSES_SHOWN) {
                tbody data-code=(l.code) data-gap=(format!("{:.2}", l.gap)) data-low=(format!("{:.2}", l.ci95[0])) data-high=(format!("{:.2}", l.ci95[1])) data-clear=(l.clear) {
                    tr { th scope="rowgroup" colspan="4" { (l.code) ". " (item_text(p, &l.code, lang)) } }
                    tr {
                        td.num { (num(Some(l.value))) }
                        td.num { (num(Some(l.reference))) }
                        td.num { strong { (format!("{:+.1}", l.gap)) } br; span.muted { (format!("{:+.1} … {:+.1}", l.ci95[0], l.ci95[1])) } }
                        @if l.clear { td { strong { (t(lang, "Rõ rệt", "Clear")) } } } @else { td.muted { (t(lang, "Chưa rõ", "Within uncertainty")) } }
                    }
                }
            }
        }
        @if !rest.is_empty() {
            p.muted { (t(lang, "Và ", "And ")) (rest.len()) (t(lang, " tiêu chí khác thấp hơn toàn tỉnh", " more criteria below the province"))
                @if rest_clear > 0 { " (" (rest_clear) (t(lang, " rõ rệt)", " clear)")) } @else { (t(lang, " trong giới hạn sai số", " within their uncertainty")) }
                (t(lang, ": xem bảng tất cả tiêu chí.", ": see the table of all criteria.")) }
        }
        (not_compared)
    }
}

/// `/console/rankings`: units of one level ranked.
pub async fn rankings(state: web::Data<AppState>, c: Console, q: web::Query<PageQuery>) -> HttpResponse {
    match rankings_inner(&state, &c, q.into_inner()).await {
        Ok(r) => r,
        Err(e) => error_page(&c, &e),
    }
}

async fn rankings_inner(state: &AppState, c: &Console, q: PageQuery) -> Result<HttpResponse, ApiError> {
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let p = parse(state, c, &tree, None, q.common).await?;
    let level = match q.level.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => Level::parse(l).ok_or_else(|| ApiError::field("level", "unknown level"))?,
        None => tree
            .children(p.unit.id)
            .first()
            .and_then(|c| tree.get(*c))
            .and_then(|u| Level::parse(&u.level))
            .unwrap_or(Level::Commune),
    };
    let ctx = Context::settled(state, &tree).await;
    let request = report::RankingRequest {
        form: &p.form,
        level,
        within: &p.unit,
        period: p.period,
        filters: p.filters.clone(),
        k: p.k,
        weakest: 3,
    };
    let r = report::rankings(&ctx, &request).await?;
    let level_select = html! {
        label { (t(lang, "Cấp", "Level"))
            select name="level" { @for l in Level::ALL { option value=(l.as_str()) selected[l == level] { (l.label(lang)) } } }
        }
    };
    let bars: Vec<Bar> = r
        .units
        .iter()
        .map(|u| Bar { label: u.name.clone(), value: u.value, ci: u.ci95, note: withheld_note(lang, u.withheld, p.k) })
        .collect();
    let body = html! {
        (filters(c, state, "/console/rankings", &p, level_select))
        p.muted { (p.period.from) " – " (p.period.to) " · " (t(lang, "so với", "against")) " " (r.previous_from) " – " (r.previous_to) }
        (charts::bars(t(lang, "Xếp hạng SIPAS", "SIPAS ranking"), &bars, r.reference.as_ref().map(|e| (t(lang, "Toàn tỉnh", "Province"), e.value))))
        div.scroll { table {
            thead { tr {
                th.num { "#" } th { (t(lang, "Đơn vị", "Unit")) } th.num { (t(lang, "Phiếu", "Responses")) } th.num { "SIPAS" }
                th.num { (t(lang, "KTC 95%", "95% CI")) } th.num { (t(lang, "Thay đổi", "Change")) } th.num { (t(lang, "Bậc", "Places")) }
            } }
            // The weakest criteria get a full-width row under their unit's: read on a phone
            // without squeezing the figures.
            tbody { @for u in &r.units {
                tr.lead[u.value.is_some()] {
                    td.num { (u.rank.map_or("–".into(), |r| r.to_string())) }
                    td { a href={ "/console/units/" (u.unit) } { (u.name) } }
                    td.num { (u.n) }
                    @if u.value.is_some() {
                        td.num { (num(u.value)) }
                        td.num { (u.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) }
                        td.num {
                            (u.change.map_or("–".into(), |c| format!("{c:+.1}")))
                            // A change against a unit that did not exist is built from its
                            // predecessors, or not comparable: say which.
                            @match u.previous_basis.as_str() {
                                "predecessors" => { br; span.muted { (t(lang, "so với các đơn vị tiền thân", "against its predecessors")) } }
                                "none" => { br; span.muted { (t(lang, "đơn vị mới: không so sánh", "new unit: not comparable")) } }
                                _ => {}
                            }
                        }
                        td.num { (u.rank_change.map_or("–".into(), |c| format!("{c:+}"))) }
                    } @else {
                        td.supp colspan="4" { (withheld_note(lang, u.withheld, p.k)) }
                    }
                }
                @if u.value.is_some() {
                    tr.sub { td colspan="7" { span.muted { (t(lang, "Tiêu chí yếu nhất: ", "Weakest criteria: ")) } (weakest_cell(lang, &p, u)) } }
                }
            } }
        } }
        p.muted { (t(lang, "Tiêu chí yếu nhất: tối đa ba tiêu chí thấp hơn mức chung của ", "Weakest criteria: up to three criteria furthest below the figure for "))
            (p.unit.name_vi) (t(lang, " nhiều nhất; trong ngoặc là mã tiêu chí và số điểm chênh lệch.", "; in brackets the criterion's code and the gap in points.")) }
    };
    Ok(page(c, t(lang, "Xếp hạng", "Rankings"), "/console/rankings", body))
}

/// A rankings row's weakest criteria: their texts, the code and the points below the
/// reference second; when there are none, why.
fn weakest_cell(lang: Lang, p: &Parsed, u: &report::RankingRow) -> Markup {
    if u.items_compared == 0 {
        return html! { span.supp { (t(lang, "Tiêu chí bị ẩn: ", "Criteria withheld: ")) (suppressed_note(lang, p.k)) (t(lang, " mỗi tiêu chí", " each")) } };
    }
    if u.weakest.is_empty() {
        return html! { span.muted { (t(lang, "Không tiêu chí nào thấp hơn mức chung", "No criterion below the reference")) } };
    }
    html! { ul { @for w in &u.weakest {
        li { (item_text(p, &w.code, lang)) " " span.muted { "(" (w.code) ", " (format!("{:+.1}", -w.gap)) ")" } }
    } } }
}

/// A channel or respondent type code of a breakdown row as people read it.
fn breakdown_label(key: &str, lang: Lang) -> String {
    if let Some(ch) = Channel::parse(key) {
        ch.label(lang).to_string()
    } else if let Some(r) = RespondentType::parse(key) {
        r.label(lang).to_string()
    } else if key.is_empty() {
        "–".to_string()
    } else {
        key.to_string()
    }
}

/// What a unit page and its printable report show.
async fn unit_view(
    state: &AppState,
    c: &Console,
    code: &str,
    q: PageQuery,
    printable: bool,
) -> Result<(String, String, Markup), ApiError> {
    let lang = c.lang;
    let tree = store::units::tree(&state.db).await?;
    let as_at = crate::publish::query::parse_as_at(q.as_at.as_deref())?;
    let p = parse(state, c, &tree, Some(code), q.common).await?;
    let unit = p.unit.clone();
    let r = index(state, &tree, &p, &unit, Some(Breakdown::Unit)).await?;
    // The province, as the reference every unit is measured against.
    let root = tree
        .all()
        .iter()
        .find(|u| u.parent_id.is_none() && tree.is_within(unit.id, u.id))
        .cloned()
        .unwrap_or(unit.clone());
    let reference = index(state, &tree, &p, &root, None).await?;
    // On the province's own page there is nothing above to compare with.
    let compared = (root.id != unit.id).then_some(&reference.figures);
    let by_channel = index(state, &tree, &p, &unit, Some(Breakdown::Channel)).await?;
    let by_type = index(state, &tree, &p, &unit, Some(Breakdown::RespondentType)).await?;
    let ctx = Context::settled(state, &tree).await;
    let trend = report::trend(&ctx, &p.form, &unit, p.period, false, &p.filters, p.k).await?;
    let comments = crate::publish::comments(&ctx, &p, &unit, 30).await?;
    let history = store::units::history(&state.db, &tree, unit.id).await?;
    // An ended unit is shown as it stood on its last day unless another day is asked for.
    let former_day = as_at.or_else(|| unit.valid_to.and_then(|d| d.pred_opt()));
    let former = match former_day {
        Some(day) => {
            let view =
                report::AsAtView { day, scope: (c.who.role == Role::UnitManager).then_some(c.who.unit_id).flatten() };
            Some((day, report::unit_table(&ctx, &p.form, &unit, p.period, &p.filters, p.k, Some(view)).await?))
        }
        None => None,
    };
    let as_at_input = html! {
        label { (t(lang, "Cây đơn vị tại ngày", "Units as at"))
            input type="date" name="as_at" value=(as_at.map(|d| d.to_string()).unwrap_or_default());
        }
    };
    let levels: Vec<String> = p
        .form
        .form
        .scales
        .get(&p.form.form.index.scale)
        .map(|s| s.levels.iter().map(|l| l.label.get(lang).to_string()).collect())
        .unwrap_or_default();
    let dist: Vec<(String, Vec<u64>)> = r
        .figures
        .items
        .iter()
        .map(|i| (i.code.clone(), i.distribution.as_ref().map(|d| d.values().copied().collect()).unwrap_or_default()))
        .collect();
    let group_bars: Vec<Bar> = r
        .figures
        .groups
        .iter()
        .map(|g| Bar {
            label: format!("{} {}", g.code, group_title(&p, &g.code, lang)),
            value: g.value,
            ci: g.ci95,
            note: suppressed_note(lang, p.k),
        })
        .collect();
    let element_refs: Vec<Option<f64>> = r
        .figures
        .groups
        .iter()
        .map(|g| reference.figures.groups.iter().find(|x| x.code == g.code).and_then(|x| x.value))
        .collect();
    let province = t(lang, "Toàn tỉnh", "Province");
    let elements_title = t(lang, "Chỉ số các yếu tố", "Element indices");
    let query = c.path.split_once('?').map_or(String::new(), |(_, q)| format!("?{q}"));
    let body = html! {
        @if !printable { (filters(c, state, &format!("/console/units/{}", unit.code), &p, as_at_input)) }
        @if let Some(end) = unit.valid_to {
            p.notice { (t(lang, "Đơn vị này đã kết thúc từ ngày ", "This unit ended on ")) (end.format("%d/%m/%Y"))
                (t(lang, ". Các số liệu chính bên dưới chỉ gồm phiếu ghi cho chính đơn vị; bảng \"Như tại ngày\" cộng cả các đơn vị trực thuộc lúc đó.",
                    ". The main figures below are the responses recorded at the unit itself; the \"As at\" table adds up the units that were below it then.")) }
        }
        @if let Some((day, rows)) = &former { (former_section(c, &p, *day, rows.as_deref())) }
        p.muted {
            @if let Some(parent) = unit.parent_id.and_then(|id| tree.get(id)) {
                (t(lang, "Trực thuộc: ", "Part of: ")) a href={ "/console/units/" (parent.code) } { (parent.name_vi) } " · "
            }
            (unit.code) " · " (p.period.from) " – " (p.period.to)
            @if let Some(rate) = r.response_rate { " · " (t(lang, "tỷ lệ phản hồi ", "response rate ")) (format!("{:.1}%", rate * 100.0)) }
        }
        p.print-note { (t(lang, "Số liệu đo lường tại địa phương, không phải SIPAS chính thức của Bộ Nội vụ.", "Local measurement, not the Ministry's official SIPAS.")) }
        @if !printable {
            p.noprint {
                a.button href={ "/console/units/" (unit.code) "/report" (query) } { (t(lang, "Bản in", "Printable report")) } " "
                a href={ "/console/exports?within=" (unit.code) } { (t(lang, "Xuất dữ liệu", "Exports")) }
            }
        }
        (headline(c, &p, &r.figures))
        h2 { (t(lang, "Các yếu tố so với toàn tỉnh", "Elements against the province")) }
        div.keep data-chart="elements" {
            @if compared.is_some() {
                p.muted { (t(lang, "Vạch đỏ: chỉ số của toàn tỉnh cho cùng yếu tố; đường đen: khoảng tin cậy 95% của đơn vị.",
                    "Red mark: the province's index for the same element; black line: the unit's 95% interval.")) }
                (charts::bars_against(elements_title, &group_bars, province, &element_refs, &suppressed_note(lang, p.k)))
            } @else {
                (charts::bars(elements_title, &group_bars, None))
            }
        }
        h2 { (t(lang, "Tiêu chí mất điểm nhiều nhất so với toàn tỉnh", "Criteria furthest below the province")) }
        div.keep data-section="lost" { (lost_section(c, &p, &r.figures, compared)) }
        h2 { (t(lang, "Diễn biến", "Trend")) }
        (trend_chart(c, &trend))
        h2 { (t(lang, "Tất cả tiêu chí", "All criteria")) }
        table.criteria {
            thead { tr { th.num { (t(lang, "Trả lời", "Answers")) } th.num { (t(lang, "Chỉ số", "Index")) }
                th.num { (t(lang, "KTC 95%", "95% CI")) } th.num { (t(lang, "Điểm TB", "Mean")) } th.num { (t(lang, "Toàn tỉnh", "Province")) } } }
            @for i in &r.figures.items { tbody {
                tr { th scope="rowgroup" colspan="5" { (i.code) ". " (item_text(&p, &i.code, lang)) } }
                tr {
                    td.num { (i.n) }
                    @if i.suppressed { td.num.supp colspan="3" { (suppressed_note(lang, p.k)) } } @else {
                        td.num { (num(i.value)) } td.num { (i.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) } td.num { (i.mean_score.map_or("–".into(), |m| format!("{m:.2}"))) }
                    }
                    td.num { (num(reference.figures.items.iter().find(|x| x.code == i.code).and_then(|x| x.value))) }
                }
            } }
        }
        h2 { (t(lang, "Phân bố câu trả lời", "How people answered")) }
        (charts::distribution(t(lang, "Phân bố theo mức", "Answers by level"), &dist, &levels))
        h2 { (t(lang, "Số phiếu theo kênh và đối tượng", "Responses by channel and respondent type")) }
        div.cards.wide {
            @for (title, rep) in [(t(lang, "Kênh", "Channel"), &by_channel), (t(lang, "Đối tượng", "Respondents"), &by_type)] {
                div.card { div.muted { (title) } table { tbody { @for row in rep.breakdown.iter().flatten() {
                    tr { td { (breakdown_label(&row.key, lang)) } td.num { (row.figures.n) } td.num { @if row.figures.suppressed { span.supp { (withheld_note(lang, row.figures.withheld, p.k)) } } @else { (num(row.figures.index.as_ref().map(|e| e.value))) } } }
                } } } }
            }
        }
        @if !tree.children(unit.id).is_empty() {
            h2 { (t(lang, "Đơn vị trực thuộc", "Units below")) }
            (unit_rows(c, &p, r.breakdown.as_deref().unwrap_or(&[])))
        }
        @if !history.is_empty() {
            h2 { (t(lang, "Lịch sử đơn vị", "Unit history")) }
            p.muted { (t(lang, "Số liệu trước ngày sắp xếp được tính từ các đơn vị tiền thân, theo cây đơn vị hiện nay.", "Figures before a restructuring are built from the predecessor units, in today's tree.")) }
            ul.history { @for h in &history { li { (history_line(lang, h)) } } }
        }
        h2 { (t(lang, "Ý kiến của người dân", "What people wrote")) }
        @match &comments {
            None => p.supp { (t(lang, "Ý kiến không hiển thị khi số liệu của kỳ bị ẩn", "Comments are withheld when the period's figures are")) ": " (withheld_note(lang, r.figures.withheld, p.k)) "." },
            Some(list) if list.is_empty() => p.muted { (t(lang, "Không có ý kiến trong kỳ.", "No comments in this period.")) },
            Some(list) => {
                p.muted { (t(lang, "Ý kiến trong kỳ ", "Comments of ")) (p.period.label()) (t(lang, ", xếp theo nội dung (không ghi ngày để không lộ người viết).", ", in the order of their text (undated, so that no one can be placed)."))  }
                @for text in list { blockquote { (text) } }
            }
        }
    };
    let period = format!("{} – {}", p.period.from, p.period.to);
    Ok((unit.name_vi.clone(), period, body))
}

/// The units below a unit as they stood on a day, with what they added up then.
fn former_section(c: &Console, p: &Parsed, day: chrono::NaiveDate, rows: Option<&[report::UnitFigures]>) -> Markup {
    let lang = c.lang;
    let depth = |row: &report::UnitFigures| {
        let mut d = 0;
        let mut at = row.parent.clone();
        while let Some(code) = at.filter(|_| d < 8) {
            match rows.unwrap_or_default().iter().find(|r| r.unit == code) {
                Some(r) => {
                    d += 1;
                    at = r.parent.clone();
                }
                None => break,
            }
        }
        d
    };
    html! { div.keep data-section="as-at" {
        h2 { (t(lang, "Như tại ngày ", "As at ")) (day.format("%d/%m/%Y")) }
        @match rows {
            None => p.muted { (t(lang, "Đơn vị chưa tồn tại vào ngày này.", "The unit did not exist on that day.")) },
            Some(rows) => {
                p.muted { (t(lang, "Tên, cấp trên và đơn vị trực thuộc như ngày đó; mỗi dòng cộng phiếu của các đơn vị dưới nó lúc đó, trong kỳ đã chọn.",
                    "Names, parents and units below as they were that day; each row adds up the units below it then, over the chosen period.")) }
                div.scroll tabindex="0" { table {
                    thead { tr { th { (t(lang, "Đơn vị", "Unit")) } th.num { (t(lang, "Phiếu", "Responses")) } th.num { "SIPAS" } th.num { (t(lang, "KTC 95%", "95% CI")) } } }
                    tbody { @for row in rows {
                        tr {
                            td class={ "d" (depth(row).min(4)) } {
                                a href={ "/console/units/" (row.unit) } { (row.name) } " " span.muted { (row.unit) } }
                            td.num { (row.figures.n) }
                            @if let Some(e) = &row.figures.index {
                                td.num { (num(Some(e.value))) }
                                td.num { (e.ci95.map_or("–".into(), |[a, b]| format!("{a:.1}–{b:.1}"))) }
                            } @else {
                                td.num.supp colspan="2" { (withheld_note(lang, row.figures.withheld, p.k)) }
                            }
                        }
                    } }
                } }
            }
        }
    } }
}

/// `/console/units/{code}`.
pub async fn unit_page(
    state: web::Data<AppState>,
    c: Console,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> HttpResponse {
    match unit_view(&state, &c, &path, q.into_inner(), false).await {
        Ok((title, _, body)) => page(&c, &title, "", body),
        Err(e) => error_page(&c, &e),
    }
}

/// One line of a unit's lineage, in the reader's language.
fn history_line(lang: crate::Lang, h: &store::units::History) -> String {
    use store::units::History;
    let vi = lang == crate::Lang::Vi;
    let date = h.effective().format("%d/%m/%Y");
    match h {
        History::From { code, name, split: false, .. } if vi => {
            format!("{date}: {name} ({code}) sáp nhập vào đơn vị này")
        }
        History::From { code, name, split: false, .. } => format!("{date}: {name} ({code}) merged into this unit"),
        History::From { code, name, .. } if vi => format!("{date}: tách ra từ {name} ({code})"),
        History::From { code, name, .. } => format!("{date}: split off from {name} ({code})"),
        History::Into { code, name, split: false, .. } if vi => format!("{date}: sáp nhập vào {name} ({code})"),
        History::Into { code, name, split: false, .. } => format!("{date}: merged into {name} ({code})"),
        History::Into { code, name, .. } if vi => format!("{date}: chia tách, một phần thành {name} ({code})"),
        History::Into { code, name, .. } => format!("{date}: split, in part into {name} ({code})"),
        History::Change { change, old, new, .. } => {
            let (old, new) = (old.clone().unwrap_or_default(), new.clone().unwrap_or_default());
            match (change.as_str(), vi) {
                ("created", true) => format!("{date}: thành lập, trực thuộc {new}"),
                ("created", false) => format!("{date}: created, under {new}"),
                ("renamed", true) => format!("{date}: đổi tên từ “{old}” thành “{new}”"),
                ("renamed", false) => format!("{date}: renamed from “{old}” to “{new}”"),
                ("moved", true) => format!("{date}: chuyển từ {old} sang trực thuộc {new}"),
                ("moved", false) => format!("{date}: moved from under {old} to under {new}"),
                ("ended", true) => format!("{date}: kết thúc hoạt động"),
                (_, _) => format!("{date}: ended"),
            }
        }
    }
}

/// `/console/units/{code}/report`: the same, laid out for printing (or saving as PDF).
pub async fn unit_report(
    state: web::Data<AppState>,
    c: Console,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> HttpResponse {
    match unit_view(&state, &c, &path, q.into_inner(), true).await {
        Ok((title, period, body)) => {
            let lang = c.lang;
            let heading = format!("{} – {}", t(lang, "Báo cáo SIPAS", "SIPAS report"), title);
            // Every printed page's footer: the unit, the period, the day printed, the page.
            let printed = format!("{} {}", t(lang, "In ngày", "Printed"), crate::vietnam_today());
            let footer = format!(
                "@page{{@bottom-left{{content:{};font:8.5pt system-ui,sans-serif;color:#444}}\
                 @bottom-right{{content:{} counter(page) {} counter(pages);font:8.5pt system-ui,sans-serif;color:#444;white-space:nowrap}}}}",
                super::css_string(&format!("{heading} · {period}")),
                super::css_string(&format!("{printed} · {} ", t(lang, "Trang", "Page"))),
                super::css_string(t(lang, " / ", " of ")),
            );
            let doc =
                super::document_styled(lang, &heading, &footer, html! { main.report { h1 { (heading) } (body) } });
            super::respond_styled(actix_web::http::StatusCode::OK, doc, &footer)
        }
        Err(e) => error_page(&c, &e),
    }
}

/// `/console/exports`: the export forms. Their buttons reach the console's own export routes
/// below, so a mistake comes back as a page, not as the API's JSON.
pub async fn exports(state: web::Data<AppState>, c: Console, q: web::Query<ExportQuery>) -> HttpResponse {
    let lang = c.lang;
    let tree = match store::units::tree(&state.db).await {
        Ok(t) => t,
        Err(e) => return error_page(&c, &e.into()),
    };
    let visible: Vec<&unit::Model> = tree.all().iter().filter(|u| c.who.can_see(&tree, u.id)).collect();
    let chosen = q.within.clone().unwrap_or_default();
    let now = chrono::Utc::now();
    let jobs: Vec<crate::export::jobs::JobView> = match store::export_jobs::list(&state.db, c.who.user_id, 10).await {
        Ok(jobs) => jobs.into_iter().map(|j| crate::export::jobs::JobView::of(j, now)).collect(),
        Err(e) => return error_page(&c, &e.into()),
    };
    // The default the README promises: this year, Vietnam's calendar.
    let this_year = chrono::Datelike::year(&crate::vietnam_today()).to_string();
    let picker = |name: &str| {
        html! {
            label { (t(lang, "Đơn vị", "Unit"))
                select name=(name) { @for u in &visible { option value=(u.code) selected[u.code == chosen] { (u.code) " – " (u.name_vi) } } }
            }
            label { (t(lang, "Kỳ (năm, quý 2025-Q1, tháng 2025-03)", "Period (year, quarter 2025-Q1, month 2025-03)"))
                input type="text" name="period" value=(this_year) size="10" pattern="[0-9]{4}(-Q[1-4]|-[0-9]{2})?"; }
            label { (t(lang, "Phiếu", "Form")) select name="form" { @for f in state.forms.all() { option value=(f.form.id) { (f.form.id) } } } }
        }
    };
    let microdata_fields = html! {
        (picker("within"))
        label { (t(lang, "Cột phân tổ", "Breakdown column")) select name="breakdown" {
            option value="respondent_type" { (t(lang, "Đối tượng", "Respondent type")) }
            option value="channel" { (t(lang, "Kênh", "Channel")) }
            option value="service" { (t(lang, "Lĩnh vực", "Service")) }
        } }
        label { (t(lang, "Kèm ý kiến", "With comments")) select name="comments" { option value="false" { (t(lang, "Không", "No")) } option value="true" { (t(lang, "Có", "Yes")) } } }
    };
    let body = html! {
        h2 { (t(lang, "Bảng chỉ số theo đơn vị", "Indices table by unit")) }
        p.muted { (t(lang, "Chỉ số, các yếu tố, tiêu chí, số phiếu, khoảng tin cậy và thứ hạng; ô dưới ngưỡng bị ẩn.",
            "Index, elements, criteria, counts, intervals and rank; cells under the threshold are withheld.")) }
        // One form per table, a button per format: the unit and period are chosen once.
        form.filters method="get" action="/console/exports/indices.csv" {
            (picker("within"))
            label { (t(lang, "Cây đơn vị tại ngày (để trống: hiện nay)", "Units as at (empty: today)"))
                input type="date" name="as_at"; }
            button type="submit" { "CSV" }
            button type="submit" formaction="/console/exports/indices.xlsx" { "Excel (XLSX)" }
            button type="submit" formaction="/console/exports/indices.json" { "JSON" }
        }
        h2 { (t(lang, "Dữ liệu phiếu đã ẩn danh", "Anonymised microdata")) }
        @if c.who.role == Role::UnitManager {
            p { (t(lang, "Dữ liệu từng phiếu chỉ dành cho chuyên viên và quản trị cấp tỉnh: người đứng đầu đơn vị phục vụ chính những người đã trả lời và có thể nhận ra họ. Đơn vị dùng các bảng chỉ số ở trên.",
                "Row-level data is for provincial analysts and administrators only: a unit's head serves the very people who answered and could recognise them. Units use the indices tables above.")) }
        } @else {
            p.muted { (t(lang, "Mỗi dòng một phiếu, theo nhóm mà bảng chỉ số được công bố: phiếu của đơn vị quá ít phiếu mang mã đơn vị cấp trên (cột unit_covers), kỳ là tháng, quý hoặc cả kỳ tùy nhóm, chỉ một cột phân tổ giữ giá trị, nhóm nhân khẩu học nhỏ được gộp. Trang \"Thông tin\" của tệp Excel ghi rõ từng nhóm đã được gộp thế nào.",
                "One row per response, in groups the indices tables publish: rows of a unit with too few responses carry their parent's code (column unit_covers), the period is a month, quarter or the whole period depending on the group, only one breakdown column keeps its values, small demographic groups are coarsened. The Excel file's \"Thông tin\" sheet says how each group was coarsened.")) }
            form.filters method="get" action="/console/exports/microdata.csv" {
                (microdata_fields)
                button type="submit" { "CSV" }
                button type="submit" formaction="/console/exports/microdata.xlsx" { "Excel (XLSX)" }
            }
            h3 { (t(lang, "Tệp lớn: chuẩn bị trong nền", "Large files: prepare in the background")) }
            p.muted { (t(lang, "Với hàng chục nghìn phiếu trở lên, tệp được chuẩn bị trong nền: trang sau cho thấy tiến độ (số phiếu đã xong, thời gian còn lại), có thể hủy, và tệp chờ tải về trong 24 giờ, kể cả khi anh/chị đóng trang.",
                "For tens of thousands of responses or more, the file is prepared in the background: the next page shows its progress (responses done, time left), it can be cancelled, and the file waits 24 hours for you to download it, even if you close the page.")) }
            form.filters method="post" action="/console/exports/jobs" {
                input type="hidden" name="csrf" value=(c.who.csrf_token);
                (microdata_fields)
                label { (t(lang, "Định dạng", "Format")) select name="format" { option value="csv" { "CSV" } option value="xlsx" { "Excel (XLSX)" } } }
                button type="submit" { (t(lang, "Chuẩn bị", "Prepare")) }
            }
            @if !jobs.is_empty() {
                h3 { (t(lang, "Tệp anh/chị đã yêu cầu", "Your background exports")) }
                div.scroll { table {
                    thead { tr { th { (t(lang, "Tệp", "File")) } th { (t(lang, "Trạng thái", "State")) } th.num { (t(lang, "Tiến độ", "Progress")) } } }
                    tbody { @for j in &jobs {
                        tr { td { a href={ "/console/exports/jobs/" (j.id) } { (j.file_name) } } td { (job_state(lang, &j.state)) } td.num { (j.percent) "%" } }
                    } }
                } }
            }
        }
        p.muted { (t(lang, "Tệp Excel có hai dòng tiêu đề: tên cột tiếng Việt, rồi mã cột (như tiêu đề của tệp CSV, để chương trình đọc), và một trang \"Câu hỏi\" với nội dung mọi tiêu chí bằng tiếng Việt và tiếng Anh. Tệp CSV và JSON giữ tên cột dạng mã.",
            "Excel files have two heading rows: the Vietnamese column name, then the column's code (as in the CSV header, for programs), and a \"Câu hỏi\" sheet with every criterion's text in Vietnamese and English. CSV and JSON keep code headers.")) }
        h2 { (t(lang, "Báo cáo in", "Printable reports")) }
        p { (t(lang, "Mở trang của một đơn vị và chọn \"Bản in\"; trình duyệt lưu được thành PDF.", "Open a unit's page and choose \"Printable report\"; the browser can save it as PDF.")) }
        @if c.who.role == Role::Admin {
            h2 { (t(lang, "Nhật ký", "Audit log")) }
            p { a.button href="/api/v1/admin/audit.csv" { "CSV" } }
        }
    };
    page(&c, t(lang, "Xuất dữ liệu", "Exports"), "/console/exports", body)
}

fn export_error(c: &Console, q: &ExportQuery, e: &ApiError) -> HttpResponse {
    let back = match &q.within {
        Some(w) => {
            format!("/console/exports?within={}", form_urlencoded::byte_serialize(w.as_bytes()).collect::<String>())
        }
        None => "/console/exports".into(),
    };
    error_page_back(c, e, &back, t(c.lang, "Quay lại trang xuất dữ liệu", "Back to the exports"))
}

/// `/console/exports/indices.{format}`: the API's export, with the console's sign-in, empty
/// fields read as defaults, and errors as pages.
pub async fn export_indices(
    state: web::Data<AppState>,
    c: Console,
    format: web::Path<String>,
    q: web::Query<ExportQuery>,
    common: web::Query<Common>,
) -> HttpResponse {
    let common = clean(common.into_inner());
    match files::indices_file(&state, &c.who, &format, &q, &common).await {
        Ok(r) => r,
        Err(e) => export_error(&c, &q, &e),
    }
}

/// `/console/exports/microdata.{format}`, like the above.
pub async fn export_microdata(
    state: web::Data<AppState>,
    c: Console,
    format: web::Path<String>,
    q: web::Query<ExportQuery>,
    common: web::Query<Common>,
) -> HttpResponse {
    let common = clean(common.into_inner());
    match files::microdata_file(state.into_inner(), &c.who, &format, &q, &common).await {
        Ok(r) => r,
        Err(e) => export_error(&c, &q, &e),
    }
}

/// `/console/units/{code}/poster`: an A4 poster with the unit's QR code, for printing.
pub async fn poster(state: web::Data<AppState>, c: Console, path: web::Path<String>) -> HttpResponse {
    let lang = c.lang;
    let outcome = async {
        let tree = store::units::tree(&state.db).await?;
        let unit = tree.by_code(&path).ok_or_else(|| ApiError::NotFound("no such unit".into()))?.clone();
        c.who.require_unit(&tree, unit.id)?;
        let url = crate::reach::qr::survey_url(&state.settings, &unit.code);
        let svg = crate::reach::qr::svg(&url, 480).map_err(ApiError::internal)?;
        let time = crate::reach::invitations::time_to_answer(&state, &unit).await?;
        Ok::<_, ApiError>((unit, url, svg, time))
    }
    .await;
    let (unit, url, svg, time) = match outcome {
        Ok(v) => v,
        Err(e) => return error_page(&c, &e),
    };
    let shown = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest).to_string();
    let body = html! {
        main.poster {
            p.noprint { a href={ "/console/units/" (unit.code) } { (t(lang, "← Quay lại", "← Back")) } " · " (t(lang, "In trang này trên khổ A4.", "Print this page on A4.")) }
            h1 { (unit.name_vi) }
            p.big { "Anh/chị hài lòng với việc giải quyết thủ tục hành chính hôm nay?" }
            div.qr { (maud::PreEscaped(svg)) }
            p.big { "Quét mã QR bằng điện thoại để đánh giá – không ghi tên, " (time) "." }
            p.url { (shown) }
        }
    };
    super::respond(actix_web::http::StatusCode::OK, super::document(lang, &format!("QR – {}", unit.name_vi), body))
}

/// The background-export form: the microdata form's fields, the format and the CSRF token.
#[derive(Deserialize)]
pub struct JobForm {
    csrf: Option<String>,
    format: Option<String>,
    #[serde(flatten)]
    q: ExportQuery,
    #[serde(flatten)]
    common: Common,
}

/// `POST /console/exports/jobs`: starts preparing microdata in the background and shows
/// its progress page.
pub async fn start_export_job(state: web::Data<AppState>, c: Console, f: web::Form<JobForm>) -> HttpResponse {
    let f = f.into_inner();
    let outcome = async {
        super::check_csrf(&c, f.csrf.as_deref())?;
        let format = f.format.as_deref().unwrap_or("csv");
        crate::export::jobs::start_microdata(state.into_inner(), &c.who, format, &f.q, &clean(f.common)).await
    }
    .await;
    match outcome {
        Ok(job) => super::redirect(&format!("/console/exports/jobs/{}", job.id)),
        Err(e) => export_error(&c, &f.q, &e),
    }
}

fn job_state(lang: Lang, state: &str) -> &'static str {
    match state {
        "running" => t(lang, "Đang chuẩn bị", "Being prepared"),
        "done" => t(lang, "Đã xong", "Ready"),
        "cancelled" => t(lang, "Đã hủy", "Cancelled"),
        _ => t(lang, "Không thành công", "Failed"),
    }
}

/// The job of a console path, or a page saying why not.
async fn console_job(
    state: &AppState,
    c: &Console,
    id: &str,
) -> Result<crate::entities::export_job::Model, HttpResponse> {
    let missing = || error_page_back(c, &ApiError::NotFound("no such export".into()), "/console/exports", "←");
    let Ok(id) = uuid::Uuid::parse_str(id) else { return Err(missing()) };
    match crate::export::jobs::job(state, &c.who, id).await {
        Ok(job) => Ok(job),
        Err(ApiError::NotFound(_)) => Err(missing()),
        Err(e) => Err(error_page(c, &e)),
    }
}

/// `/console/exports/jobs/{id}`: the job's progress bar (the page reloads itself every two
/// seconds while it runs, by a `Refresh` header: no script), then its download link.
pub async fn export_job(state: web::Data<AppState>, c: Console, id: web::Path<String>) -> HttpResponse {
    let lang = c.lang;
    let job = match console_job(&state, &c, &id).await {
        Ok(job) => crate::export::jobs::JobView::of(job, chrono::Utc::now()),
        Err(page) => return page,
    };
    let running = job.state == "running";
    let state_label = job_state(lang, &job.state);
    let body = html! {
        p { strong { (job.file_name) } " · " (job.unit) " · " (job.period) }
        p role="status" { (state_label) }
        label { (t(lang, "Tiến độ", "Progress"))
            progress max=(job.rows_total.max(1)) value=(if job.state == "done" { job.rows_total.max(1) } else { job.rows_done }) { (job.percent) "%" }
        }
        p { (job.rows_done) " / " (job.rows_total) " " (t(lang, "phiếu", "responses")) " (" (job.percent) "%)"
            @if let Some(s) = job.seconds_left { " · " (t(lang, "còn khoảng", "about")) " " (s) " " (t(lang, "giây", "s left")) } }
        @if running {
            p.muted { (t(lang, "Trang tự tải lại mỗi 2 giây. Có thể đóng trang: tệp vẫn được chuẩn bị và chờ ở đây.",
                "This page reloads every 2 seconds. You may close it: the file is still prepared and waits here.")) }
            form method="post" action={ "/console/exports/jobs/" (job.id) "/cancel" } {
                input type="hidden" name="csrf" value=(c.who.csrf_token);
                button type="submit" { (t(lang, "Hủy", "Cancel")) }
            }
        }
        @if job.download.is_some() {
            p { a.button href={ "/console/exports/jobs/" (job.id) "/file" } download=(job.file_name) { (t(lang, "Tải tệp", "Download")) }
                " " span.muted { (job.bytes) " bytes" } }
            @if let Some(until) = job.expires_at {
                p.muted { (t(lang, "Tệp được giữ đến ", "Kept until ")) ((until + chrono::TimeDelta::hours(7)).format("%d/%m/%Y %H:%M")) " (" (t(lang, "giờ Việt Nam", "Vietnam time")) ")" }
            }
        }
        @if let Some(e) = &job.error { p.error { (e) } }
        p { a href="/console/exports" { (t(lang, "← Trang xuất dữ liệu", "← Exports")) } }
    };
    let mut res = page(&c, t(lang, "Xuất dữ liệu trong nền", "Background export"), "/console/exports", body);
    if running {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("refresh"),
            actix_web::http::header::HeaderValue::from_static("2"),
        );
    }
    res
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /console/exports/jobs/{id}/cancel`.
pub async fn cancel_export_job(
    state: web::Data<AppState>,
    c: Console,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(e) = super::check_csrf(&c, f.csrf.as_deref()) {
        return error_page(&c, &e);
    }
    let job = match console_job(&state, &c, &id).await {
        Ok(job) => job,
        Err(page) => return page,
    };
    match crate::export::jobs::cancel(&state, &c.who, job.id).await {
        Ok(()) if job.state == "running" => super::redirect(&format!("/console/exports/jobs/{}", job.id)),
        Ok(()) => super::redirect("/console/exports"),
        Err(e) => error_page(&c, &e),
    }
}

/// `/console/exports/jobs/{id}/file`.
pub async fn export_job_file(state: web::Data<AppState>, c: Console, id: web::Path<String>) -> HttpResponse {
    let job = match console_job(&state, &c, &id).await {
        Ok(job) => job,
        Err(page) => return page,
    };
    match crate::export::jobs::download(state.into_inner(), &c.who, job.id).await {
        Ok(res) => res,
        Err(e) => error_page_back(&c, &e, &format!("/console/exports/jobs/{}", job.id), "←"),
    }
}
