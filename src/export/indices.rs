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

pub fn xlsx(form: &Form, table: &IndicesTable) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let number = Format::new().set_num_format("0.00");
    let write_header =
        |sheet: &mut rust_xlsxwriter::Worksheet, header: &[&str], widths: &[f64]| -> Result<(), XlsxError> {
            for (c, h) in header.iter().enumerate() {
                let col = u16::try_from(c).unwrap_or(u16::MAX);
                sheet.write_string_with_format(0, col, *h, &bold)?;
                sheet.set_column_width(col, widths.get(c).copied().unwrap_or(11.0))?;
            }
            sheet.set_freeze_panes(1, 0)?;
            Ok(())
        };

    // Units: SIPAS and groups.
    let (header, rows) = wide(form, &table.units);
    let unit_columns =
        10 + header.iter().skip(10).take_while(|h| !form.index_items().iter().any(|i| &i.code == *h)).count();
    let sheet = book.add_worksheet().set_name("Đơn vị")?;
    let names: Vec<&str> = header.iter().take(unit_columns).map(String::as_str).collect();
    write_header(sheet, &names, &[14.0, 32.0, 12.0, 12.0, 8.0, 11.0, 7.0, 9.0, 13.0, 13.0])?;
    for (r, row) in rows.iter().enumerate() {
        xlsx_row(sheet, r as u32 + 1, &row[..unit_columns.min(row.len())], &number)?;
    }

    // Groups, one row per unit and group.
    let sheet = book.add_worksheet().set_name("Nhóm")?;
    write_header(sheet, &["unit", "group", "n", "suppressed", "value", "ci_low", "ci_high"], &[14.0, 9.0])?;
    let mut r = 1;
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
                Cell::Text(if g.suppressed { "yes" } else { "no" }.into()),
                Cell::opt(g.value),
                ci(g.ci95, 0),
                ci(g.ci95, 1),
            ];
            xlsx_row(sheet, r, &cells, &number)?;
            r += 1;
        }
    }

    // Items, one row per unit and item, with the distribution over the levels.
    let levels: Vec<i16> =
        form.scales.get(&form.index.scale).map(|s| s.levels.iter().map(|l| l.value).collect()).unwrap_or_default();
    let sheet = book.add_worksheet().set_name("Tiêu chí")?;
    let mut item_header =
        vec!["unit", "item", "n", "suppressed", "satisfied", "value", "mean_score", "ci_low", "ci_high"];
    let level_names: Vec<String> = levels.iter().map(|l| format!("level_{l}")).collect();
    item_header.extend(level_names.iter().map(String::as_str));
    write_header(sheet, &item_header, &[14.0, 7.0])?;
    let mut r = 1;
    for u in &table.units {
        for i in &u.figures.items {
            let mut cells = vec![
                Cell::Text(u.unit.clone()),
                Cell::Text(i.code.clone()),
                Cell::Integer(i.n as i64),
                Cell::Text(if i.suppressed { "yes" } else { "no" }.into()),
                i.satisfied.map_or(Cell::Empty, |s| Cell::Integer(s as i64)),
                Cell::opt(i.value),
                Cell::opt(i.mean_score),
                ci(i.ci95, 0),
                ci(i.ci95, 1),
            ];
            for l in &levels {
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
    let sheet = book.add_worksheet().set_name("Thông tin")?;
    let about = [
        ("form", format!("{} (version {})", m.form, m.form_version)),
        ("within", m.within.clone()),
        ("period", format!("{} ({} – {})", m.period, m.from, m.to)),
        ("respondent_type", m.filters.respondent_type.clone().unwrap_or_else(|| "all".into())),
        ("channel", m.filters.channel.clone().unwrap_or_else(|| "all".into())),
        ("service", m.filters.service.clone().unwrap_or_else(|| "all".into())),
        ("k", format!("figures with fewer than {} responses are withheld", m.k)),
        ("generated_at", m.generated_at.to_rfc3339()),
        (
            "note",
            "Local measurement by the province's own survey, not the official SIPAS of the Ministry of Home Affairs."
                .into(),
        ),
    ];
    sheet.set_column_width(0, 16.0)?;
    sheet.set_column_width(1, 90.0)?;
    for (r, (k, v)) in about.iter().enumerate() {
        sheet.write_string_with_format(r as u32, 0, *k, &bold)?;
        sheet.write_string(r as u32, 1, v)?;
    }
    book.save_to_buffer()
}
