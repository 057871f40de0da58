//! The indices table: every unit of a scope with its SIPAS, groups and items, rank, counts
//! and intervals, as CSV (one wide row per unit), XLSX (a sheet per level of detail) or JSON.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Serialize;
use utoipa::ToSchema;

use super::{BOM, Cell, csv_lines, xlsx_row};
use crate::forms::{Form, Group};
use crate::index::engine::GroupFigure;
use crate::index::report::{Filters, UnitFigures};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExportMeta {
    pub form: String,
    pub form_version: i32,
    pub within: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub period: String,
    /// The tree is as it stood on this day (None: today's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_at: Option<chrono::NaiveDate>,
    pub k: u64,
    pub filters: Filters,
    pub generated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct IndicesTable {
    pub meta: ExportMeta,
    pub units: Vec<UnitFigures>,
}

fn group_codes(groups: &[Group], out: &mut Vec<String>) {
    for g in groups {
        out.push(g.code.clone());
        group_codes(&g.groups, out);
    }
}

fn find<'a>(groups: &'a [GroupFigure], code: &str) -> Option<&'a GroupFigure> {
    groups.iter().find_map(|g| if g.code == code { Some(g) } else { find(&g.groups, code) })
}

fn ci(c: Option<[f64; 2]>, i: usize) -> Cell {
    Cell::opt(c.map(|c| c[i]))
}

/// Header and rows of the wide table: one row per unit.
pub fn wide(form: &Form, units: &[UnitFigures]) -> (Vec<String>, Vec<Vec<Cell>>) {
    let mut groups = Vec::new();
    group_codes(&form.groups, &mut groups);
    let items: Vec<String> = form.index_items().iter().map(|i| i.code.clone()).collect();
    let mut header: Vec<String> =
        ["unit", "name", "level", "parent", "n", "suppressed", "rank", "sipas", "sipas_ci_low", "sipas_ci_high"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    header.extend(groups.iter().cloned());
    for i in &items {
        header.push(i.clone());
        header.push(format!("{i}_n"));
    }
    let rows = units
        .iter()
        .map(|u| {
            let f = &u.figures;
            let mut row = vec![
                Cell::Text(u.unit.clone()),
                Cell::Text(u.name.clone()),
                Cell::Text(u.level.clone()),
                Cell::Text(u.parent.clone().unwrap_or_default()),
                Cell::Integer(f.n as i64),
                Cell::Text(if f.suppressed { "yes" } else { "no" }.into()),
                u.rank.map_or(Cell::Empty, |r| Cell::Integer(i64::from(r))),
                Cell::opt(f.index.as_ref().map(|e| e.value)),
                ci(f.index.as_ref().and_then(|e| e.ci95), 0),
                ci(f.index.as_ref().and_then(|e| e.ci95), 1),
            ];
            row.extend(groups.iter().map(|g| Cell::opt(find(&f.groups, g).and_then(|g| g.value))));
            for code in &items {
                let item = f.items.iter().find(|i| &i.code == code);
                row.push(Cell::opt(item.and_then(|i| i.value)));
                row.push(Cell::Integer(item.map_or(0, |i| i.n as i64)));
            }
            row
        })
        .collect();
    (header, rows)
}

pub fn csv(form: &Form, units: &[UnitFigures]) -> Vec<u8> {
    let (header, rows) = wide(form, units);
    let mut out = BOM.as_bytes().to_vec();
    out.extend(csv_lines(&[header.into_iter().map(Cell::Text).collect()]));
    out.extend(csv_lines(&rows));
    out
}

/// The heading people read for a column of the wide table.
fn heading(form: &Form, code: &str) -> String {
    fn title<'a>(gs: &'a [Group], code: &str) -> Option<&'a str> {
        gs.iter().find_map(|g| if g.code == code { Some(g.title.vi.as_str()) } else { title(&g.groups, code) })
    }
    match code {
        "unit" => "Mã đơn vị".into(),
        "name" => "Tên đơn vị".into(),
        "level" => "Cấp".into(),
        "parent" => "Đơn vị cấp trên".into(),
        "n" => "Số phiếu".into(),
        "suppressed" => "Bị ẩn (dưới ngưỡng)".into(),
        "rank" => "Thứ hạng".into(),
        "sipas" => "SIPAS (%)".into(),
        "sipas_ci_low" => "SIPAS: KTC 95% dưới".into(),
        "sipas_ci_high" => "SIPAS: KTC 95% trên".into(),
        other => title(&form.groups, other).map_or_else(|| other.to_string(), |t| format!("{other}. {t}")),
    }
}

fn with_headings(form: &Form, codes: &[&str]) -> Vec<(String, String)> {
    codes.iter().map(|c| (heading(form, c), c.to_string())).collect()
}

/// Yes or no as a reader of the workbook reads it.
fn yes_no(b: bool) -> Cell {
    Cell::Text(if b { "có" } else { "không" }.into())
}

pub fn xlsx(form: &Form, table: &IndicesTable) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let number = Format::new().set_num_format("0.00");
    let first = super::FIRST_DATA_ROW;

    // Units: SIPAS and groups.
    let (header, rows) = wide(form, &table.units);
    let unit_columns =
        10 + header.iter().skip(10).take_while(|h| !form.index_items().iter().any(|i| &i.code == *h)).count();
    let sheet = book.add_worksheet().set_name("Đơn vị")?;
    let names: Vec<&str> = header.iter().take(unit_columns).map(String::as_str).collect();
    super::xlsx_headings(
        sheet,
        &with_headings(form, &names),
        &[14.0, 32.0, 14.0, 14.0, 9.0, 11.0, 9.0, 9.0, 13.0, 13.0],
    )?;
    for (r, row) in rows.iter().enumerate() {
        let mut cells = row[..unit_columns.min(row.len())].to_vec();
        // The level and the withheld flag in words; the codes stay in the CSV.
        if let Some(Cell::Text(level)) = cells.get(2) {
            cells[2] = Cell::Text(crate::units::Level::label_of(level, crate::Lang::Vi).to_string());
        }
        if let Some(Cell::Text(flag)) = cells.get(5) {
            cells[5] = yes_no(flag == "yes");
        }
        xlsx_row(sheet, first + r as u32, &cells, &number)?;
    }

    // Groups, one row per unit and group.
    let sheet = book.add_worksheet().set_name("Nhóm")?;
    let columns = [
        ("Mã đơn vị", "unit"),
        ("Yếu tố", "group"),
        ("Số phiếu", "n"),
        ("Bị ẩn (dưới ngưỡng)", "suppressed"),
        ("Chỉ số (%)", "value"),
        ("KTC 95% dưới", "ci_low"),
        ("KTC 95% trên", "ci_high"),
    ]
    .map(|(h, c)| (h.to_string(), c.to_string()));
    super::xlsx_headings(sheet, &columns, &[14.0, 9.0])?;
    let mut r = first;
    for u in &table.units {
        let mut all = Vec::new();
        fn flat<'a>(gs: &'a [GroupFigure], out: &mut Vec<&'a GroupFigure>) {
            for g in gs {
                out.push(g);
                flat(&g.groups, out);
            }
        }
        flat(&u.figures.groups, &mut all);
        for g in all {
            let cells = vec![
                Cell::Text(u.unit.clone()),
                Cell::Text(g.code.clone()),
                Cell::Integer(g.n as i64),
                yes_no(g.suppressed),
                Cell::opt(g.value),
                ci(g.ci95, 0),
                ci(g.ci95, 1),
            ];
            xlsx_row(sheet, r, &cells, &number)?;
            r += 1;
        }
    }

    // Items, one row per unit and item, with the distribution over the levels.
    let scale = form.scales.get(&form.index.scale);
    let levels: Vec<(i16, String)> =
        scale.map(|s| s.levels.iter().map(|l| (l.value, l.label.vi.clone())).collect()).unwrap_or_default();
    let sheet = book.add_worksheet().set_name("Tiêu chí")?;
    let mut columns: Vec<(String, String)> = [
        ("Mã đơn vị", "unit"),
        ("Tiêu chí", "item"),
        ("Số trả lời", "n"),
        ("Bị ẩn (dưới ngưỡng)", "suppressed"),
        ("Số hài lòng", "satisfied"),
        ("Chỉ số (%)", "value"),
        ("Điểm trung bình", "mean_score"),
        ("KTC 95% dưới", "ci_low"),
        ("KTC 95% trên", "ci_high"),
    ]
    .map(|(h, c)| (h.to_string(), c.to_string()))
    .into();
    columns.extend(levels.iter().map(|(v, label)| (format!("Mức {v}: {label}"), format!("level_{v}"))));
    super::xlsx_headings(sheet, &columns, &[14.0, 9.0])?;
    let mut r = first;
    for u in &table.units {
        for i in &u.figures.items {
            let mut cells = vec![
                Cell::Text(u.unit.clone()),
                Cell::Text(i.code.clone()),
                Cell::Integer(i.n as i64),
                yes_no(i.suppressed),
                i.satisfied.map_or(Cell::Empty, |s| Cell::Integer(s as i64)),
                Cell::opt(i.value),
                Cell::opt(i.mean_score),
                ci(i.ci95, 0),
                ci(i.ci95, 1),
            ];
            for (l, _) in &levels {
                cells.push(
                    i.distribution.as_ref().and_then(|d| d.get(l)).map_or(Cell::Empty, |c| Cell::Integer(*c as i64)),
                );
            }
            xlsx_row(sheet, r, &cells, &number)?;
            r += 1;
        }
    }

    // What the figures are.
    let m = &table.meta;
    let all = || "tất cả".to_string();
    let label = |code: &Option<String>, f: fn(&str) -> Option<&'static str>| {
        code.as_deref().map_or_else(all, |c| f(c).map_or_else(|| c.to_string(), str::to_string))
    };
    let service = m.filters.service.as_deref().map_or_else(all, |code| {
        form.fields.iter().find(|f| f.code == code).map_or_else(|| code.to_string(), |f| f.text.vi.clone())
    });
    let sheet = book.add_worksheet().set_name("Thông tin")?;
    let columns =
        [("Mục", "label"), ("Giá trị", "value"), ("Mã mục", "key")].map(|(h, c)| (h.to_string(), c.to_string()));
    super::xlsx_headings(sheet, &columns, &[26.0, 90.0, 16.0])?;
    let about = [
        ("form", "Phiếu", format!("{} – {} (phiên bản {})", m.form, form.title.vi, m.form_version)),
        ("within", "Đơn vị", m.within.clone()),
        ("period", "Kỳ", format!("{} ({} – {})", m.period, m.from, m.to)),
        (
            "as_at",
            "Cây đơn vị",
            m.as_at.map_or_else(
                || "hiện nay".to_string(),
                |d| format!("như tại ngày {d} (tên, cấp trên và đơn vị trực thuộc lúc đó)"),
            ),
        ),
        (
            "respondent_type",
            "Đối tượng",
            label(&m.filters.respondent_type, |c| {
                crate::forms::RespondentType::parse(c).map(|r| r.label(crate::Lang::Vi))
            }),
        ),
        (
            "channel",
            "Kênh",
            label(&m.filters.channel, |c| crate::forms::Channel::parse(c).map(|r| r.label(crate::Lang::Vi))),
        ),
        ("service", "Lĩnh vực", service),
        ("k", "Ngưỡng ẩn số liệu", format!("số liệu có ít hơn {} phiếu không được công bố", m.k)),
        (
            "generated_at",
            "Thời điểm xuất (giờ Việt Nam, UTC+7)",
            (m.generated_at + chrono::TimeDelta::hours(7)).format("%Y-%m-%d %H:%M:%S").to_string(),
        ),
        (
            "headings",
            "Tiêu đề cột",
            "Dòng 1: tên cột; dòng 2: mã cột, giống tên cột của tệp CSV (chương trình đọc với dòng 2 làm tiêu đề). \
             Trang \"Câu hỏi\" cho biết nội dung của từng mã tiêu chí."
                .into(),
        ),
        (
            "note",
            "Ghi chú",
            "Số liệu đo lường tại địa phương bằng khảo sát của tỉnh, không phải Chỉ số SIPAS chính thức của Bộ Nội vụ."
                .into(),
        ),
    ];
    for (r, (code, key, value)) in about.iter().enumerate() {
        let row = first + r as u32;
        sheet.write_string_with_format(row, 0, *key, &Format::new().set_bold())?;
        sheet.write_string(row, 1, value)?;
        sheet.write_string(row, 2, *code)?;
    }
    super::xlsx_questions(&mut book, form)?;
    book.save_to_buffer()
}
