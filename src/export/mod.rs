//! Exports: the indices table per unit (CSV, XLSX, JSON) and anonymised microdata (CSV,
//! XLSX), honouring the same filters, roles and suppression as the API. Microdata streams:
//! memory stays flat whatever the number of rows.
//!
//! CSV is UTF-8 with a BOM (so Excel shows Vietnamese) and formula-injection safe: a text
//! cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`.

pub mod files;
pub mod indices;
pub mod jobs;
pub mod microdata;
pub mod permits;

use crate::forms::{Form, Group};

/// A cell of an exported row.
#[derive(Clone, Debug)]
pub enum Cell {
    Text(String),
    Number(f64),
    Integer(i64),
    Empty,
}

impl Cell {
    pub fn opt(value: Option<f64>) -> Cell {
        value.map_or(Cell::Empty, Cell::Number)
    }

    /// The cell as CSV text.
    pub fn csv(&self) -> String {
        match self {
            Cell::Text(s) => neutralise(s),
            Cell::Number(v) => v.to_string(),
            Cell::Integer(v) => v.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// Keeps a spreadsheet from reading text as a formula.
pub fn neutralise(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

pub const BOM: &str = "\u{feff}";

/// Writes rows of cells as CSV lines (without the BOM).
pub fn csv_lines(rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    for row in rows {
        let _ = writer.write_record(row.iter().map(Cell::csv));
    }
    writer.into_inner().unwrap_or_default()
}

/// The row a workbook's data start on: above it, a row of headings people read (Vietnamese)
/// and a row of the codes programs and the CSV use, so a script reads the sheet with the
/// second row as its header (`pandas.read_excel(..., header=1)`).
pub const FIRST_DATA_ROW: u32 = 2;

/// Writes the two heading rows of a sheet, freezes them and sets the column widths.
pub fn xlsx_headings(
    sheet: &mut rust_xlsxwriter::Worksheet,
    columns: &[(String, String)],
    widths: &[f64],
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let bold = rust_xlsxwriter::Format::new().set_bold().set_text_wrap().set_align(rust_xlsxwriter::FormatAlign::Top);
    let code = rust_xlsxwriter::Format::new().set_font_color("#555555").set_italic();
    let col = |c: usize| u16::try_from(c).unwrap_or(u16::MAX);
    // Row by row: a constant-memory sheet (microdata) drops what is written above its
    // current row.
    for (c, _) in columns.iter().enumerate() {
        sheet.set_column_width(col(c), widths.get(c).copied().unwrap_or(11.0))?;
    }
    for (c, (heading, _)) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, col(c), heading, &bold)?;
    }
    for (c, (_, name)) in columns.iter().enumerate() {
        sheet.write_string_with_format(1, col(c), name, &code)?;
    }
    sheet.set_freeze_panes(FIRST_DATA_ROW, 0)?;
    Ok(())
}

/// Every question of a form with its code and both texts, as a sheet: what the codes in the
/// other sheets' headings mean.
pub fn xlsx_questions(book: &mut rust_xlsxwriter::Workbook, form: &Form) -> Result<(), rust_xlsxwriter::XlsxError> {
    let sheet = book.add_worksheet().set_name("Câu hỏi")?;
    let columns = [
        ("Mã câu hỏi", "code"),
        ("Loại", "kind"),
        ("Yếu tố", "group"),
        ("Nội dung (tiếng Việt)", "text_vi"),
        ("Nội dung (tiếng Anh)", "text_en"),
    ]
    .map(|(h, c)| (h.to_string(), c.to_string()));
    xlsx_headings(sheet, &columns, &[12.0, 18.0, 9.0, 70.0, 70.0])?;
    let mut rows: Vec<[String; 5]> = Vec::new();
    fn walk(groups: &[Group], rows: &mut Vec<[String; 5]>) {
        for g in groups {
            walk(&g.groups, rows);
            for i in &g.items {
                rows.push([i.code.clone(), "Tiêu chí".into(), g.code.clone(), i.text.vi.clone(), i.text.en.clone()]);
            }
        }
    }
    walk(&form.groups, &mut rows);
    for i in &form.expectations {
        rows.push([i.code.clone(), "Kỳ vọng".into(), String::new(), i.text.vi.clone(), i.text.en.clone()]);
    }
    for q in &form.questions {
        rows.push([q.code.clone(), "Câu hỏi khác".into(), String::new(), q.text.vi.clone(), q.text.en.clone()]);
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, text) in row.iter().enumerate() {
            sheet.write_string(FIRST_DATA_ROW + r as u32, c as u16, text)?;
        }
    }
    Ok(())
}

/// Writes cells to a worksheet row.
pub fn xlsx_row(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    cells: &[Cell],
    number: &rust_xlsxwriter::Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    for (col, cell) in cells.iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        match cell {
            // Excel does not evaluate strings written as strings; no neutralising needed.
            Cell::Text(s) => {
                sheet.write_string(row, col, s)?;
            }
            Cell::Number(v) => {
                sheet.write_number_with_format(row, col, *v, number)?;
            }
            Cell::Integer(v) => {
                sheet.write_number(row, col, *v as f64)?;
            }
            Cell::Empty => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_but_numbers_are_not() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+1"), "'+1");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("Phường An Mỹ"), "Phường An Mỹ");
        assert_eq!(Cell::Number(-1.5).csv(), "-1.5");
        let lines = String::from_utf8(csv_lines(&[vec![Cell::Text("a,b".into()), Cell::Text("-x".into())]]))
            .unwrap_or_default();
        assert_eq!(lines, "\"a,b\",'-x\n");
    }
}
