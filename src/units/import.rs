//! `sipas units import FILE.csv`: columns `code,parent,level,name_vi[,name_en]`, an
//! idempotent upsert in one transaction. Every bad row is reported by line and nothing is
//! written unless the whole file is good.

use std::collections::{HashMap, HashSet};

use super::{Level, check_unit};

#[derive(Clone, Debug)]
pub struct UnitRow {
    pub line: u64,
    pub code: String,
    pub parent: Option<String>,
    pub level: String,
    pub name_vi: String,
    pub name_en: Option<String>,
}

/// Records with their lines, and the errors of those that could not be read.
pub type Records = (Vec<(u64, csv::StringRecord)>, Vec<String>);

/// The records of a CSV file whose header is one of `headers` (a UTF-8 BOM, as Excel
/// writes, is accepted; cells are trimmed), each with its line. A record that does not parse,
/// or has another number of columns than the header, is an error by line; a header that is
/// none of them is the only error (`expected` says what it must be).
pub fn records(text: &str, headers: &[&[&str]], expected: &str) -> Result<Records, Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| vec![format!("line 1: {e}")])?.clone();
    let names: Vec<&str> = header.iter().collect();
    if !headers.contains(&names.as_slice()) {
        return Err(vec![format!("line 1: the header must be {expected}, found {}", names.join(","))]);
    }
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {}: {e}", e.position().map_or(0, |p| p.line())));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != names.len() {
            errors.push(format!("line {line}: expected {} columns, found {}", names.len(), record.len()));
            continue;
        }
        rows.push((line, record));
    }
    Ok((rows, errors))
}

/// Parses the CSV text.
pub fn parse_csv(text: &str) -> Result<Vec<UnitRow>, Vec<String>> {
    const HEADER: [&str; 4] = ["code", "parent", "level", "name_vi"];
    const WITH_EN: [&str; 5] = ["code", "parent", "level", "name_vi", "name_en"];
    let (records, mut errors) = records(text, &[&HEADER, &WITH_EN], "code,parent,level,name_vi[,name_en]")?;
    let mut rows = Vec::new();
    for (line, record) in records {
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let opt = |s: String| (!s.is_empty()).then_some(s);
        rows.push(UnitRow {
            line,
            code: get(0),
            parent: opt(get(1)),
            level: get(2),
            name_vi: get(3),
            name_en: opt(get(4)),
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push("the file has no units".into());
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// A unit as it already exists in the database, for checking the file against.
#[derive(Clone, Debug)]
pub struct Existing {
    pub code: String,
    pub parent: Option<String>,
    pub level: Option<Level>,
}

/// Checks the rows against each other and against the units already stored, and returns
/// them ordered parents first. Every problem is reported with its line.
pub fn plan(rows: Vec<UnitRow>, existing: &[Existing]) -> Result<Vec<UnitRow>, Vec<String>> {
    let mut errors = Vec::new();
    let mut seen = HashMap::new();
    for r in &rows {
        if let Some(first) = seen.insert(r.code.clone(), r.line) {
            errors.push(format!("line {}: unit {} is already on line {first}", r.line, r.code));
        }
    }
    // The hierarchy after the import: stored units overridden by the file.
    let mut parent_of: HashMap<String, Option<String>> = HashMap::new();
    let mut level_of: HashMap<String, Option<Level>> = HashMap::new();
    for e in existing {
        parent_of.insert(e.code.clone(), e.parent.clone());
        level_of.insert(e.code.clone(), e.level);
    }
    for r in &rows {
        parent_of.insert(r.code.clone(), r.parent.clone());
        level_of.insert(r.code.clone(), Level::parse(&r.level));
    }
    for r in &rows {
        let parent_level = match &r.parent {
            None => None,
            Some(p) if !level_of.contains_key(p) => {
                errors.push(format!("line {}: parent {p} is neither in the file nor stored", r.line));
                continue;
            }
            Some(p) => Some(level_of.get(p).copied().flatten()),
        };
        for (field, message) in check_unit(&r.code, &r.level, parent_level, &r.name_vi, r.name_en.as_deref()) {
            errors.push(format!("line {}: {field}: {message}", r.line));
        }
    }
    // Depth of each row's unit; a cycle has no depth.
    let mut depth_of: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let mut chain = HashSet::new();
        let mut current = Some(r.code.clone());
        let mut depth = 0;
        while let Some(c) = current {
            if !chain.insert(c.clone()) {
                errors.push(format!("line {}: unit {} would become its own ancestor", r.line, r.code));
                break;
            }
            current = parent_of.get(&c).cloned().flatten();
            depth += 1;
        }
        depth_of.insert(r.code.clone(), depth);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = rows;
    rows.sort_by_key(|r| (depth_of.get(&r.code).copied().unwrap_or(0), r.line));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_file_parses_and_orders_parents_first() {
        let csv = "code,parent,level,name_vi\nQNM.TK.AM,QNM.TK,commune,Phường An Mỹ\nQNM,,province,Tỉnh Quảng Nam\nQNM.TK,QNM,district,Thành phố Tam Kỳ\n";
        let rows = parse_csv(csv).and_then(|r| plan(r, &[]));
        let codes: Vec<String> = rows.unwrap_or_default().into_iter().map(|r| r.code).collect();
        assert_eq!(codes, ["QNM", "QNM.TK", "QNM.TK.AM"]);
    }

    #[test]
    fn every_bad_row_is_reported_by_line() {
        let csv = "code,parent,level,name_vi\nQNM,,province,Tỉnh\nbad code,QNM,district,X\nQNM.A,QNM,planet,Y\nQNM.B,NOPE,district,Z\nQNM,,province,again\n";
        let errors = parse_csv(csv).and_then(|r| plan(r, &[])).err().unwrap_or_default();
        let joined = errors.join("\n");
        assert!(joined.contains("line 3: code"), "{joined}");
        assert!(joined.contains("line 4: level"), "{joined}");
        assert!(joined.contains("line 5: parent NOPE"), "{joined}");
        assert!(joined.contains("line 6: unit QNM is already on line 2"), "{joined}");
    }

    #[test]
    fn a_cycle_is_refused() {
        let existing = vec![
            Existing { code: "P".into(), parent: None, level: Some(Level::Province) },
            Existing { code: "P.A".into(), parent: Some("P".into()), level: Some(Level::District) },
        ];
        let csv = "code,parent,level,name_vi\nP.B,P.A,district,B\nP.A,P.B,district,A\n";
        let errors = parse_csv(csv).and_then(|r| plan(r, &existing)).err().unwrap_or_default();
        assert!(errors.join("\n").contains("its own ancestor"), "{errors:?}");
    }
}
