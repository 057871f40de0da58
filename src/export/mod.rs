//! Exports: the indices table per unit (CSV, XLSX, JSON) and anonymised microdata (CSV,
//! XLSX), honouring the same filters, roles and suppression as the API. Microdata streams:
//! memory stays flat whatever the number of rows.
//!
//! CSV is UTF-8 with a BOM (so Excel shows Vietnamese) and formula-injection safe: a text
//! cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`.

pub mod indices;
pub mod microdata;

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
