//! Reads form files (TOML) and checks them. Any problem stops start-up with messages that
//! name the file and the line: unknown or duplicate codes, empty groups, bad scales,
//! missing translations. The format is documented in `survey-forms/README.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Choice, CommentSpec, Demographic, DemographicKey, Form, Group, IndexHead, Item, Level, LoadedForm, Question,
    RespondentType, Scale, Text,
};

/// The forms shipped with the binary, used when the configured forms folder does not exist.
pub const BUILTIN: &[(&str, &str)] = &[
    ("survey-forms/sipas-2017.toml", include_str!("../../survey-forms/sipas-2017.toml")),
    ("survey-forms/sipas-2023.toml", include_str!("../../survey-forms/sipas-2023.toml")),
];

const DEFAULT_COMMENT_MAX: usize = 2000;

/// Every problem found in the form files, one `file:line: message` per entry.
#[derive(Debug)]
pub struct FormErrors(pub Vec<String>);

impl std::fmt::Display for FormErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "survey forms are invalid:")?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FormErrors {}

/// Loads every `*.toml` in `dir`, or the built-in forms when `dir` does not exist.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedForm>, FormErrors> {
    let mut sources = Vec::new();
    if dir.is_dir() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| FormErrors(vec![format!("{}: cannot read: {e}", dir.display())]))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| FormErrors(vec![format!("{}: cannot read: {e}", path.display())]))?;
            sources.push((path.display().to_string(), text));
        }
    } else {
        sources = BUILTIN.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    }
    let mut forms = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in sources {
        match parse(&name, &text) {
            Ok(form) => forms.push(form),
            Err(FormErrors(e)) => errors.extend(e),
        }
    }
    let mut seen = HashSet::new();
    for f in &forms {
        if !seen.insert(f.form.id.clone()) {
            errors.push(format!("{}: form id {} is defined by another file too", f.source, f.form.id));
        }
    }
    if forms.is_empty() && errors.is_empty() {
        errors.push(format!("{}: no form files (*.toml) found", dir.display()));
    }
    if errors.is_empty() { Ok(forms) } else { Err(FormErrors(errors)) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: Spanned<String>,
    version: Spanned<i64>,
    title: Spanned<RawText>,
    source: Option<Spanned<RawText>>,
    respondent_types: Spanned<Vec<String>>,
    scales: BTreeMap<String, Spanned<RawScale>>,
    index: Spanned<RawIndex>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    item: Vec<Spanned<RawItem>>,
    #[serde(default)]
    expectation: Vec<Spanned<RawItem>>,
    #[serde(default)]
    question: Vec<Spanned<RawQuestion>>,
    #[serde(default)]
    demographic: Vec<Spanned<RawDemographic>>,
    #[serde(default)]
    field: Vec<Spanned<RawChoice>>,
    comment: Option<Spanned<RawComment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScale {
    levels: Vec<RawLevel>,
    #[serde(default)]
    satisfied: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    value: i64,
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    code: String,
    vi: String,
    en: String,
    scale: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    code: String,
    parent: Option<String>,
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    code: String,
    group: Option<String>,
    scale: Option<String>,
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    code: String,
    scale: String,
    #[serde(default)]
    multiple: bool,
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChoice {
    code: String,
    vi: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDemographic {
    key: String,
    vi: String,
    en: String,
    options: Vec<RawChoice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComment {
    max_chars: Option<i64>,
    vi: String,
    en: String,
}

/// Collects problems with their line numbers while the form is assembled.
struct Checker<'a> {
    name: &'a str,
    src: &'a str,
    errors: Vec<String>,
}

impl Checker<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn err(&mut self, span: std::ops::Range<usize>, msg: impl std::fmt::Display) {
        let line = self.line(span);
        self.errors.push(format!("{}:{line}: {msg}", self.name));
    }

    fn text(&mut self, span: std::ops::Range<usize>, what: &str, vi: &str, en: &str) -> Text {
        if vi.trim().is_empty() {
            self.err(span.clone(), format!("{what}: Vietnamese text (vi) is empty"));
        }
        if en.trim().is_empty() {
            self.err(span, format!("{what}: English text (en) is empty"));
        }
        Text { vi: vi.trim().to_string(), en: en.trim().to_string() }
    }
}

fn is_answer_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && code.len() <= 32
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

fn is_option_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.+-".contains(c))
}

/// Parses and checks one form file. `name` is how errors refer to the file.
pub fn parse(name: &str, src: &str) -> Result<LoadedForm, FormErrors> {
    let raw: RawForm = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| src[..s.start.min(src.len())].matches('\n').count() + 1);
        let msg = e.message().to_string();
        FormErrors(vec![match line {
            Some(l) => format!("{name}:{l}: {msg}"),
            None => format!("{name}: {msg}"),
        }])
    })?;
    let mut c = Checker { name, src, errors: Vec::new() };

    let id = raw.id.get_ref().clone();
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !id_ok {
        c.err(raw.id.span(), format!("form id {id:?} must be 1-64 of a-z, 0-9 and -"));
    }
    let version = *raw.version.get_ref();
    if !(1..=i64::from(i32::MAX)).contains(&version) {
        c.err(raw.version.span(), "version must be a positive whole number");
    }
    let title = c.text(raw.title.span(), "title", &raw.title.get_ref().vi, &raw.title.get_ref().en);
    let source = raw.source.as_ref().map(|s| c.text(s.span(), "source", &s.get_ref().vi, &s.get_ref().en));

    let mut respondent_types = Vec::new();
    for t in raw.respondent_types.get_ref() {
        match RespondentType::parse(t) {
            Some(rt) if respondent_types.contains(&rt) => {
                c.err(raw.respondent_types.span(), format!("respondent type {t} listed twice"))
            }
            Some(rt) => respondent_types.push(rt),
            None => {
                c.err(raw.respondent_types.span(), format!("unknown respondent type {t:?} (citizen, organization)"))
            }
        }
    }
    if respondent_types.is_empty() {
        c.err(raw.respondent_types.span(), "respondent_types must list at least one type");
    }

    // Scales.
    let mut scales = BTreeMap::new();
    for (scale_name, raw_scale) in &raw.scales {
        let span = raw_scale.span();
        let rs = raw_scale.get_ref();
        let mut levels = Vec::new();
        if rs.levels.len() < 2 {
            c.err(span.clone(), format!("scale {scale_name}: needs at least 2 levels"));
        }
        let mut previous = None;
        for level in &rs.levels {
            if !(0..=100).contains(&level.value) {
                c.err(span.clone(), format!("scale {scale_name}: level value {} must be 0-100", level.value));
                continue;
            }
            if previous.is_some_and(|p| level.value <= p) {
                c.err(
                    span.clone(),
                    format!(
                        "scale {scale_name}: level values must increase strictly ({} after {})",
                        level.value,
                        previous.unwrap_or_default()
                    ),
                );
            }
            previous = Some(level.value);
            let label =
                c.text(span.clone(), &format!("scale {scale_name} level {}", level.value), &level.vi, &level.en);
            levels.push(Level { value: level.value as i16, label });
        }
        let mut satisfied = Vec::new();
        for s in &rs.satisfied {
            if !levels.iter().any(|l| i64::from(l.value) == *s) {
                c.err(span.clone(), format!("scale {scale_name}: satisfied level {s} is not one of its levels"));
            } else if satisfied.contains(&(*s as i16)) {
                c.err(span.clone(), format!("scale {scale_name}: satisfied level {s} listed twice"));
            } else {
                satisfied.push(*s as i16);
            }
        }
        if !satisfied.is_empty() && satisfied.len() == levels.len() {
            c.err(span.clone(), format!("scale {scale_name}: every level counts as satisfied"));
        }
        satisfied.sort_unstable();
        scales.insert(scale_name.clone(), Scale { levels, satisfied });
    }

    // Codes must be unique across the index, groups, items, expectations and questions.
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut claim = |c: &mut Checker, code: &str, span: std::ops::Range<usize>| -> bool {
        if !is_answer_code(code) {
            c.err(span, format!("code {code:?} must start with A-Z and use only A-Z, 0-9, _ and . (at most 32)"));
            return false;
        }
        if let Some(first) = codes.get(code) {
            c.err(span, format!("duplicate code {code} (first defined on line {first})"));
            return false;
        }
        codes.insert(code.to_string(), c.line(span));
        true
    };

    let ri = raw.index.get_ref();
    let index_span = raw.index.span();
    claim(&mut c, &ri.code, index_span.clone());
    let index_title = c.text(index_span.clone(), "index", &ri.vi, &ri.en);
    match scales.get(&ri.scale) {
        None => c.err(index_span.clone(), format!("index scale {:?} is not defined under [scales]", ri.scale)),
        Some(s) if s.satisfied.is_empty() => {
            c.err(index_span.clone(), format!("index scale {} must say which levels count as satisfied", ri.scale))
        }
        Some(_) => {}
    }

    // Groups: parents must be declared before their children, which rules out cycles.
    struct GroupAcc {
        code: String,
        parent: Option<String>,
        title: Text,
        span: std::ops::Range<usize>,
        children: Vec<String>,
        items: Vec<Item>,
    }
    let mut groups: Vec<GroupAcc> = Vec::new();
    for g in &raw.group {
        let span = g.span();
        let rg = g.get_ref();
        let ok = claim(&mut c, &rg.code, span.clone());
        let title = c.text(span.clone(), &format!("group {}", rg.code), &rg.vi, &rg.en);
        if let Some(parent) = &rg.parent {
            match groups.iter_mut().find(|x| &x.code == parent) {
                Some(p) => p.children.push(rg.code.clone()),
                None => {
                    c.err(span.clone(), format!("group {}: parent group {parent} is not defined above it", rg.code));
                    continue;
                }
            }
        }
        if ok {
            groups.push(GroupAcc {
                code: rg.code.clone(),
                parent: rg.parent.clone(),
                title,
                span,
                children: vec![],
                items: vec![],
            });
        }
    }
    if groups.is_empty() {
        c.err(index_span.clone(), "the index has no groups ([[group]])");
    }

    for it in &raw.item {
        let span = it.span();
        let ri_ = it.get_ref();
        let ok = claim(&mut c, &ri_.code, span.clone());
        let text = c.text(span.clone(), &format!("item {}", ri_.code), &ri_.vi, &ri_.en);
        if ri_.scale.as_ref().is_some_and(|s| s != &ri.scale) {
            c.err(span.clone(), format!("item {}: index items use the index scale {}", ri_.code, ri.scale));
        }
        let Some(group_code) = &ri_.group else {
            c.err(span, format!("item {}: missing group", ri_.code));
            continue;
        };
        match groups.iter_mut().find(|g| &g.code == group_code) {
            None => c.err(span, format!("item {}: unknown group {group_code}", ri_.code)),
            Some(g) if ok => g.items.push(Item { code: ri_.code.clone(), text, scale: ri.scale.clone() }),
            Some(_) => {}
        }
    }
    for g in &groups {
        if g.children.is_empty() && g.items.is_empty() {
            c.err(g.span.clone(), format!("group {} is empty: it has neither groups nor items", g.code));
        } else if !g.children.is_empty() && !g.items.is_empty() {
            c.err(
                g.span.clone(),
                format!("group {} mixes child groups and items; put the items in a group of their own", g.code),
            );
        }
    }

    fn build(code: &str, all: &[GroupAcc]) -> Option<Group> {
        let g = all.iter().find(|g| g.code == code)?;
        Some(Group {
            code: g.code.clone(),
            title: g.title.clone(),
            groups: g.children.iter().filter_map(|child| build(child, all)).collect(),
            items: g.items.clone(),
        })
    }
    let tree: Vec<Group> =
        groups.iter().filter(|g| g.parent.is_none()).filter_map(|g| build(&g.code, &groups)).collect();

    let mut expectations = Vec::new();
    for e in &raw.expectation {
        let span = e.span();
        let re = e.get_ref();
        let ok = claim(&mut c, &re.code, span.clone());
        let text = c.text(span.clone(), &format!("expectation {}", re.code), &re.vi, &re.en);
        if re.group.is_some() {
            c.err(
                span.clone(),
                format!("expectation {}: expectations are not in the index and take no group", re.code),
            );
        }
        let Some(scale) = &re.scale else {
            c.err(span, format!("expectation {}: missing scale", re.code));
            continue;
        };
        match scales.get(scale) {
            None => c.err(span, format!("expectation {}: scale {scale} is not defined", re.code)),
            Some(s) if s.satisfied.is_empty() => {
                c.err(span, format!("expectation {}: scale {scale} must list its top levels in `satisfied`", re.code))
            }
            Some(_) if ok => expectations.push(Item { code: re.code.clone(), text, scale: scale.clone() }),
            Some(_) => {}
        }
    }

    let mut questions = Vec::new();
    for q in &raw.question {
        let span = q.span();
        let rq = q.get_ref();
        let ok = claim(&mut c, &rq.code, span.clone());
        let text = c.text(span.clone(), &format!("question {}", rq.code), &rq.vi, &rq.en);
        if !scales.contains_key(&rq.scale) {
            c.err(span, format!("question {}: scale {} is not defined", rq.code, rq.scale));
        } else if ok {
            questions.push(Question { code: rq.code.clone(), text, scale: rq.scale.clone(), multiple: rq.multiple });
        }
    }

    let mut demographics: Vec<Demographic> = Vec::new();
    for d in &raw.demographic {
        let span = d.span();
        let rd = d.get_ref();
        let Some(key) = DemographicKey::parse(&rd.key) else {
            c.err(span, format!("unknown demographic {:?} (gender, age_band, education, occupation)", rd.key));
            continue;
        };
        if demographics.iter().any(|x| x.key == key) {
            c.err(span.clone(), format!("demographic {} defined twice", rd.key));
        }
        let title = c.text(span.clone(), &format!("demographic {}", rd.key), &rd.vi, &rd.en);
        let options = choices(&mut c, span.clone(), &format!("demographic {}", rd.key), &rd.options);
        if options.is_empty() {
            c.err(span, format!("demographic {} has no options", rd.key));
        }
        demographics.push(Demographic { key, title, options });
    }

    let mut fields = Vec::new();
    for f in &raw.field {
        let one = choices(&mut c, f.span(), "field", std::slice::from_ref(f.get_ref()));
        for choice in one {
            if fields.iter().any(|x: &Choice| x.code == choice.code) {
                c.err(f.span(), format!("field {} defined twice", choice.code));
            } else {
                fields.push(choice);
            }
        }
    }

    let comment = raw.comment.as_ref().map(|rc| {
        let span = rc.span();
        let r = rc.get_ref();
        let max = r.max_chars.unwrap_or(DEFAULT_COMMENT_MAX as i64);
        if !(1..=10_000).contains(&max) {
            c.err(span.clone(), "comment max_chars must be 1-10000");
        }
        CommentSpec { max_chars: max.clamp(1, 10_000) as usize, prompt: c.text(span, "comment", &r.vi, &r.en) }
    });

    if !c.errors.is_empty() {
        return Err(FormErrors(c.errors));
    }
    let form = Form {
        id,
        version: version as i32,
        title,
        source,
        respondent_types,
        scales,
        index: IndexHead { code: ri.code.clone(), title: index_title, scale: ri.scale.clone() },
        groups: tree,
        expectations,
        questions,
        demographics,
        fields,
        comment,
    };
    Ok(LoadedForm::new(form, name.to_string()))
}

fn choices(c: &mut Checker, span: std::ops::Range<usize>, what: &str, raw: &[RawChoice]) -> Vec<Choice> {
    let mut out: Vec<Choice> = Vec::new();
    for rc in raw {
        if !is_option_code(&rc.code) {
            c.err(span.clone(), format!("{what}: option code {:?} must be 1-32 of a-z, 0-9, _ . + -", rc.code));
            continue;
        }
        if out.iter().any(|x| x.code == rc.code) {
            c.err(span.clone(), format!("{what}: option {} listed twice", rc.code));
            continue;
        }
        let text = c.text(span.clone(), &format!("{what} option {}", rc.code), &rc.vi, &rc.en);
        out.push(Choice { code: rc.code.clone(), text });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(src: &str) -> Vec<String> {
        match parse("f.toml", src) {
            Ok(_) => vec![],
            Err(FormErrors(e)) => e,
        }
    }

    const MINIMAL: &str = r#"
id = "t"
version = 1
respondent_types = ["citizen"]
title = { vi = "T", en = "T" }
[scales.s]
satisfied = [2]
levels = [{ value = 1, vi = "a", en = "a" }, { value = 2, vi = "b", en = "b" }]
[index]
code = "IDX"
vi = "I"
en = "I"
scale = "s"
[[group]]
code = "G"
vi = "g"
en = "g"
[[item]]
code = "X1"
group = "G"
vi = "x"
en = "x"
"#;

    #[test]
    fn builtin_forms_load_with_the_documented_shapes() {
        for (name, src) in BUILTIN {
            let loaded = parse(name, src).map_err(|e| e.to_string());
            assert!(loaded.is_ok(), "{loaded:?}");
        }
        let f17 = parse(BUILTIN[0].0, BUILTIN[0].1).map_err(|e| e.to_string()).ok();
        let f17 = f17.map(|f| f.form);
        let codes: Vec<String> = f17.iter().flat_map(|f| f.index_items()).map(|i| i.code.clone()).collect();
        assert_eq!(codes.len(), 22);
        assert_eq!(codes.first().map(String::as_str), Some("A1"));
        assert_eq!(codes.last().map(String::as_str), Some("E4"));
        let groups: Vec<&str> = f17.iter().flat_map(|f| f.groups.iter()).map(|g| g.code.as_str()).collect();
        assert_eq!(groups, ["A", "B", "C", "D", "E"]);

        let f23 = parse(BUILTIN[1].0, BUILTIN[1].1).ok().map(|f| f.form);
        let f23 = f23.as_ref();
        assert_eq!(f23.map(|f| f.index_items().len()), Some(33));
        assert_eq!(f23.map(|f| f.groups.len()), Some(2));
        assert_eq!(f23.map(|f| f.groups[0].groups.iter().map(|g| g.items.len()).sum::<usize>()), Some(14));
        assert_eq!(f23.map(|f| f.groups[1].groups.iter().map(|g| g.items.len()).sum::<usize>()), Some(19));
        assert_eq!(f23.map(|f| f.expectations.len()), Some(10));
        assert_eq!(f23.map(|f| f.respondent_types.clone()), Some(vec![RespondentType::Citizen]));
    }

    #[test]
    fn minimal_form_is_valid() {
        assert_eq!(errors_of(MINIMAL), Vec::<String>::new());
    }

    #[test]
    fn duplicate_item_code_names_file_and_line() {
        let src = format!("{MINIMAL}\n[[item]]\ncode = \"X1\"\ngroup = \"G\"\nvi = \"y\"\nen = \"y\"\n");
        let errors = errors_of(&src);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("f.toml:24:"), "{errors:?}");
        assert!(errors[0].contains("duplicate code X1"), "{errors:?}");
    }

    #[test]
    fn unknown_group_and_empty_group_are_refused() {
        let src = format!(
            "{MINIMAL}\n[[group]]\ncode = \"H\"\nvi = \"h\"\nen = \"h\"\n[[item]]\ncode = \"X2\"\ngroup = \"Z\"\nvi = \"y\"\nen = \"y\"\n"
        );
        let errors = errors_of(&src).join("\n");
        assert!(errors.contains("unknown group Z"), "{errors}");
        assert!(errors.contains("group H is empty"), "{errors}");
    }

    #[test]
    fn bad_scales_are_refused() {
        let bad = MINIMAL.replace("satisfied = [2]", "satisfied = [7]");
        assert!(errors_of(&bad).join("\n").contains("satisfied level 7 is not one of its levels"));
        let bad = MINIMAL.replace("{ value = 2, vi", "{ value = 1, vi");
        assert!(errors_of(&bad).join("\n").contains("must increase strictly"));
        let bad = MINIMAL.replace("satisfied = [2]\n", "");
        assert!(errors_of(&bad).join("\n").contains("must say which levels count as satisfied"));
    }

    #[test]
    fn missing_translation_and_syntax_errors_are_located() {
        let bad = MINIMAL.replace("vi = \"x\"", "vi = \"\"");
        let errors = errors_of(&bad);
        assert!(errors.iter().any(|e| e.contains("item X1: Vietnamese text (vi) is empty")), "{errors:?}");
        let bad = MINIMAL.replace("version = 1", "version = \"one\"");
        let errors = errors_of(&bad);
        assert!(errors.iter().any(|e| e.starts_with("f.toml:3:")), "{errors:?}");
    }

    #[test]
    fn content_hash_ignores_comments_but_not_text() {
        let a = parse("a", MINIMAL).map(|f| f.content_hash).ok();
        let b = parse("b", &format!("# a comment\n{MINIMAL}")).map(|f| f.content_hash).ok();
        let c = parse("c", &MINIMAL.replace("vi = \"x\"", "vi = \"x2\"")).map(|f| f.content_hash).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
