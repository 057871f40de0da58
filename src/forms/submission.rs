//! A submission checked against its unit and form. `validate` collects every problem at
//! once, so the API's 422 and the survey page's inline messages list them all; past it, a
//! `ValidSubmission` cannot hold an unknown item, a score off the scale or an unknown unit.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::NaiveDate;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AnswerKind, Channel, DemographicKey, FormRegistry, RespondentType};
use crate::Lang;
use crate::error::FieldErrors;

/// The body of `POST /api/v1/responses`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionBody {
    /// Chosen by the client; the idempotency key that makes retries safe.
    pub submission_id: Uuid,
    /// Unit code, e.g. `QNM.TK.AM`.
    pub unit: String,
    /// Form id, e.g. `sipas-2017`.
    pub form: String,
    /// `citizen` or `organization`.
    #[schema(pattern = "^(citizen|organization)$")]
    pub respondent_type: String,
    /// `in_person`, `online`, `kiosk`, `phone` or `paper`.
    #[schema(pattern = "^(in_person|online|kiosk|phone|paper)$")]
    pub channel: String,
    /// Item code to a level of its scale, a list of levels (multiple-choice questions), or
    /// `null` for no answer. Each item at most once (400 otherwise).
    #[schema(value_type = BTreeMap<String, Option<serde_json::Value>>)]
    #[serde(deserialize_with = "unique_answers")]
    pub answers: BTreeMap<String, Option<AnswerValue>>,
    /// Optional coarse bands: `gender`, `age_band`, `education`, `occupation`, each at most
    /// once (400 otherwise).
    #[serde(default, deserialize_with = "unique_demographics")]
    pub demographics: Option<BTreeMap<String, Option<String>>>,
    /// Field (lĩnh vực) of the procedure, from the form's `fields`.
    #[serde(default)]
    pub service: Option<String>,
    /// Free text, at most the form's `comment.max_chars` characters, counted after Unicode
    /// NFC normalisation (stored that way): decomposed Vietnamese counts as it reads.
    #[serde(default)]
    pub comment: Option<String>,
    /// A one-time receipt code (`ABCD-EFGH-K`); required by units that ask for one.
    #[serde(default)]
    pub code: Option<String>,
    /// The survey page's signed token (sent by its script): how long the page was open.
    #[serde(default)]
    pub form_token: Option<String>,
    /// A field people never see: bots fill it in.
    #[serde(default)]
    pub website: Option<String>,
}

/// A JSON object whose keys each appear once. serde's own map keeps the last of two equal
/// keys silently: `{"A1": 1, "A1": 5}` would store 5 and hide that the client sent two answers.
fn unique_keys<'de, D, V>(d: D, field: &'static str) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Keys<V> {
        field: &'static str,
        value: PhantomData<V>,
    }
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Keys<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an object giving each key of `{}` once", self.field)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("`{}.{key}` is given twice", self.field)));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Keys { field, value: PhantomData })
}

fn unique_answers<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<AnswerValue>>, D::Error> {
    unique_keys(d, "answers")
}

/// `null` is the same as no demographics.
fn unique_demographics<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, Option<String>>>, D::Error> {
    struct Demographics;
    impl<'de> Visitor<'de> for Demographics {
        type Value = Option<BTreeMap<String, Option<String>>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of demographic bands, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            unique_keys(d, "demographics").map(Some)
        }
    }
    d.deserialize_option(Demographics)
}

/// One level, or several for multiple-choice questions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnswerValue {
    One(i64),
    Many(Vec<i64>),
}

impl<'de> Deserialize<'de> for AnswerValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnswerValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number, a list of whole numbers, or null")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnswerValue, E> {
                Ok(AnswerValue::One(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnswerValue, E> {
                Ok(AnswerValue::One(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnswerValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<i64>()? {
                    out.push(v);
                }
                Ok(AnswerValue::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// What broke a rule, with its message in both languages.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    UnknownUnit,
    /// The unit was split: the citizen chooses among its successors (codes).
    UnitSplit(Vec<String>),
    /// The unit ended with no successor.
    UnitEnded,
    FormNotTaken,
    UnknownForm,
    UnknownRespondentType,
    RespondentTypeNotAllowed,
    UnknownChannel,
    UnknownItem,
    NotInScale {
        min: i16,
        max: i16,
    },
    OneValueExpected,
    ChosenTwice,
    NothingAnswered,
    CommentTooLong {
        max: usize,
    },
    NotAsked,
    UnknownOption,
    UnknownService,
    DateOutOfRange,
    CodeRequired,
    CodeMistyped,
    CodeUnknown,
}

impl Problem {
    pub fn message(&self, lang: Lang) -> String {
        use Problem::*;
        match (self, lang) {
            (UnknownUnit, Lang::Vi) => "Không tìm thấy đơn vị này.".into(),
            (UnknownUnit, Lang::En) => "unknown unit".into(),
            (UnitSplit(codes), Lang::Vi) => {
                format!("Đơn vị này đã được chia tách: chọn một trong {}.", codes.join(", "))
            }
            (UnitSplit(codes), Lang::En) => format!("this unit was split: send to one of {}", codes.join(", ")),
            (UnitEnded, Lang::Vi) => "Đơn vị này không còn hoạt động.".into(),
            (UnitEnded, Lang::En) => "this unit no longer exists".into(),
            (FormNotTaken, Lang::Vi) => "Đơn vị này không dùng phiếu khảo sát này.".into(),
            (FormNotTaken, Lang::En) => "this unit does not take this form".into(),
            (UnknownForm, Lang::Vi) => "Không tìm thấy phiếu khảo sát.".into(),
            (UnknownForm, Lang::En) => "unknown form".into(),
            (UnknownRespondentType, Lang::Vi) => "Vui lòng chọn người dân hoặc tổ chức.".into(),
            (UnknownRespondentType, Lang::En) => "must be citizen or organization".into(),
            (RespondentTypeNotAllowed, Lang::Vi) => "Phiếu này không dành cho đối tượng này.".into(),
            (RespondentTypeNotAllowed, Lang::En) => "this form does not take this respondent type".into(),
            (UnknownChannel, Lang::Vi) => "Kênh khảo sát không hợp lệ.".into(),
            (UnknownChannel, Lang::En) => "must be in_person, online, kiosk, phone or paper".into(),
            (UnknownItem, Lang::Vi) => "Câu hỏi không có trong phiếu.".into(),
            (UnknownItem, Lang::En) => "unknown item code for this form".into(),
            (NotInScale { min, max }, Lang::Vi) => format!("Chọn một mức từ {min} đến {max}."),
            (NotInScale { min, max }, Lang::En) => {
                format!("must be a level of the scale, {min} to {max}")
            }
            (OneValueExpected, Lang::Vi) => "Chỉ chọn một mức.".into(),
            (OneValueExpected, Lang::En) => "takes one value, not a list".into(),
            (ChosenTwice, Lang::Vi) => "Một lựa chọn được chọn hai lần.".into(),
            (ChosenTwice, Lang::En) => "the same choice is listed twice".into(),
            (NothingAnswered, Lang::Vi) => "Vui lòng trả lời ít nhất một câu hỏi.".into(),
            (NothingAnswered, Lang::En) => "answer at least one item of the index".into(),
            (CommentTooLong { max }, Lang::Vi) => format!("Ý kiến dài quá {max} ký tự."),
            (CommentTooLong { max }, Lang::En) => format!("must be at most {max} characters"),
            (NotAsked, Lang::Vi) => "Phiếu này không hỏi thông tin này.".into(),
            (NotAsked, Lang::En) => "this form does not ask this".into(),
            (UnknownOption, Lang::Vi) => "Lựa chọn không hợp lệ.".into(),
            (UnknownOption, Lang::En) => "not one of the options".into(),
            (UnknownService, Lang::Vi) => "Lĩnh vực không có trong danh sách.".into(),
            (UnknownService, Lang::En) => "not one of the form's fields".into(),
            (DateOutOfRange, Lang::Vi) => "Ngày khảo sát không hợp lệ.".into(),
            (DateOutOfRange, Lang::En) => "the survey date must be between 2000-01-01 and today".into(),
            (CodeRequired, Lang::Vi) => "Vui lòng nhập mã in trên phiếu hẹn trả kết quả.".into(),
            (CodeRequired, Lang::En) => "this unit asks for the code printed on your receipt".into(),
            (CodeMistyped, Lang::Vi) => "Mã chưa đúng, vui lòng kiểm tra lại từng ký tự.".into(),
            (CodeMistyped, Lang::En) => "this code has a typo: check each character".into(),
            (CodeUnknown, Lang::Vi) => "Mã không hợp lệ, đã dùng hoặc đã hết hạn.".into(),
            (CodeUnknown, Lang::En) => "this code is unknown, already used or expired".into(),
        }
    }
}

/// Every problem of one submission, keyed by field (`answers.B3`, `comment`, ...).
#[derive(Debug, Default, Clone)]
pub struct Problems(pub Vec<(String, Problem)>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, problem: Problem) {
        self.0.push((field.into(), problem));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_fields(&self, lang: Lang) -> FieldErrors {
        let mut fields = FieldErrors::new();
        for (field, problem) in &self.0 {
            fields.entry(field.clone()).or_default().push(problem.message(lang));
        }
        fields
    }

    pub fn for_field(&self, field: &str) -> Option<&Problem> {
        self.0.iter().find(|(f, _)| f == field).map(|(_, p)| p)
    }
}

/// The unit a submission names, as the validator needs it.
#[derive(Clone, Debug)]
pub struct UnitRef {
    pub id: i32,
    pub code: String,
    /// Forms the unit takes (after inheritance).
    pub forms: Vec<String>,
    pub requires_code: bool,
}

/// A submission that broke no rule. Answers hold only given answers (no `null`s).
#[derive(Clone, Debug)]
pub struct ValidSubmission {
    pub submission_id: Uuid,
    pub unit_id: i32,
    pub form_id: String,
    pub form_version: i32,
    pub respondent_type: RespondentType,
    pub channel: Channel,
    pub survey_date: NaiveDate,
    pub service: Option<String>,
    pub demographics: BTreeMap<DemographicKey, String>,
    pub comment: Option<String>,
    pub answers: Vec<(String, i16)>,
    /// SHA-256 of the normalised body: a replay must carry the same content.
    pub body_hash: String,
    /// Hash of the receipt code to use up with this response (never stored with it).
    pub code_hash: Option<String>,
    /// Units whose receipt codes it may use besides its own: the unit's predecessors, whose
    /// codes stay valid after a merge.
    pub code_units: Vec<i32>,
    /// Suspicious: stored, but left out of the indices.
    pub flagged: bool,
}

/// What the body hash covers: the client's content, normalised (a `null` answer and a
/// missing one are the same). The survey date counts only when the client gave it (imports).
#[derive(Serialize)]
struct Canonical<'a> {
    unit: &'a str,
    form: &'a str,
    respondent_type: &'a str,
    channel: &'a str,
    answers: BTreeMap<&'a str, Vec<i16>>,
    demographics: &'a BTreeMap<DemographicKey, String>,
    service: &'a Option<String>,
    comment: &'a Option<String>,
    date: Option<NaiveDate>,
}

/// Removes control characters (NUL breaks PostgreSQL text) but keeps line breaks and tabs,
/// and composes the text to Unicode NFC: "ệ" typed as e + two combining marks becomes the one
/// character a reader sees, so lengths count characters as read and equal texts are equal.
/// After NFC every Vietnamese letter is one `char` (all have precomposed forms), so counting
/// `char`s counts letters; grapheme clusters would let stacked marks pass as one character.
pub fn clean_text(value: &str) -> Option<String> {
    let cleaned: String = value.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).nfc().collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Checks `body` against `unit` (None when its code is unknown) and the registry.
/// `given_date` is the date written on a keyed-in paper form; otherwise `today` is used.
/// `code_exempt` is the server's finding that the submission needs no receipt code (an
/// enrolled kiosk's cookie, an import by an administrator), never the body's word: the
/// channel a respondent reports is data and grants nothing.
pub fn validate(
    body: &SubmissionBody,
    unit: Option<&UnitRef>,
    forms: &FormRegistry,
    today: NaiveDate,
    given_date: Option<NaiveDate>,
    code_exempt: bool,
) -> Result<ValidSubmission, Problems> {
    let mut problems = Problems::default();
    let survey_date = given_date.unwrap_or(today);
    if given_date.is_some_and(|d| d > today || d < NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(d)) {
        problems.add("date", Problem::DateOutOfRange);
    }
    if unit.is_none() {
        problems.add("unit", Problem::UnknownUnit);
    }
    let form = forms.get(&body.form);
    match (form, unit) {
        (None, _) => problems.add("form", Problem::UnknownForm),
        (Some(f), Some(u)) if !u.forms.contains(&f.form.id) => problems.add("form", Problem::FormNotTaken),
        _ => {}
    }
    let respondent_type = RespondentType::parse(&body.respondent_type);
    match (respondent_type, form) {
        (None, _) => problems.add("respondent_type", Problem::UnknownRespondentType),
        (Some(rt), Some(f)) if !f.form.takes(rt) => problems.add("respondent_type", Problem::RespondentTypeNotAllowed),
        _ => {}
    }
    let channel = Channel::parse(&body.channel);
    if channel.is_none() {
        problems.add("channel", Problem::UnknownChannel);
    }
    let code_hash = match body.code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => match crate::reach::codes::normalise(c) {
            Ok(canonical) => Some(crate::reach::codes::hash(&canonical)),
            Err(_) => {
                problems.add("code", Problem::CodeMistyped);
                None
            }
        },
        None => {
            if unit.is_some_and(|u| u.requires_code) && !code_exempt {
                problems.add("code", Problem::CodeRequired);
            }
            None
        }
    };

    let mut answers: Vec<(String, i16)> = Vec::new();
    let mut canonical_answers: BTreeMap<&str, Vec<i16>> = BTreeMap::new();
    let mut demographics = BTreeMap::new();
    let mut service = None;
    let mut comment = None;
    if let Some(form) = form {
        let mut index_answered = false;
        for (code, value) in &body.answers {
            let field = format!("answers.{code}");
            let Some((kind, scale)) = form.answer_spec(code) else {
                problems.add(field, Problem::UnknownItem);
                continue;
            };
            let values: Vec<i64> = match (value, kind) {
                (None, _) => continue,
                (Some(AnswerValue::One(v)), _) => vec![*v],
                (Some(AnswerValue::Many(vs)), AnswerKind::Question { multiple: true }) => vs.clone(),
                (Some(AnswerValue::Many(_)), _) => {
                    problems.add(field, Problem::OneValueExpected);
                    continue;
                }
            };
            let mut given: Vec<i16> = Vec::new();
            for v in values {
                match i16::try_from(v).ok().filter(|v| scale.has(*v)) {
                    None => {
                        problems.add(field.clone(), Problem::NotInScale { min: scale.min(), max: scale.max() });
                        given.clear();
                        break;
                    }
                    Some(v) if given.contains(&v) => {
                        problems.add(field.clone(), Problem::ChosenTwice);
                        given.clear();
                        break;
                    }
                    Some(v) => given.push(v),
                }
            }
            if given.is_empty() {
                continue;
            }
            if kind == AnswerKind::IndexItem {
                index_answered = true;
            }
            given.sort_unstable();
            answers.extend(given.iter().map(|v| (code.clone(), *v)));
            canonical_answers.insert(code.as_str(), given);
        }
        let out_of_rule = problems.0.iter().any(|(f, _)| f.starts_with("answers."));
        if !index_answered && !out_of_rule {
            problems.add("answers", Problem::NothingAnswered);
        }

        for (key, value) in body.demographics.iter().flatten() {
            let field = format!("demographics.{key}");
            let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            match DemographicKey::parse(key).and_then(|k| form.form.demographic(k).map(|d| (k, d))) {
                None => problems.add(field, Problem::NotAsked),
                Some((k, d)) => match d.options.iter().find(|o| o.code == value) {
                    Some(o) => {
                        demographics.insert(k, o.code.clone());
                    }
                    None => problems.add(field, Problem::UnknownOption),
                },
            }
        }

        if let Some(code) = body.service.as_deref().filter(|s| !s.is_empty()) {
            match form.form.fields.iter().find(|f| f.code == code) {
                Some(f) => service = Some(f.code.clone()),
                None => problems.add("service", Problem::UnknownService),
            }
        }

        if let Some(text) = body.comment.as_deref().and_then(clean_text) {
            match &form.form.comment {
                None => problems.add("comment", Problem::NotAsked),
                Some(spec) if text.chars().count() > spec.max_chars => {
                    problems.add("comment", Problem::CommentTooLong { max: spec.max_chars })
                }
                Some(_) => comment = Some(text),
            }
        }
    }

    let (Some(form), Some(unit), Some(respondent_type), Some(channel), true) =
        (form, unit, respondent_type, channel, problems.is_empty())
    else {
        return Err(problems);
    };
    let canonical = Canonical {
        unit: &unit.code,
        form: &form.form.id,
        respondent_type: respondent_type.as_str(),
        channel: channel.as_str(),
        answers: canonical_answers,
        demographics: &demographics,
        service: &service,
        comment: &comment,
        date: given_date,
    };
    let body_hash = hex::encode(Sha256::digest(serde_json::to_vec(&canonical).unwrap_or_default()));
    Ok(ValidSubmission {
        submission_id: body.submission_id,
        unit_id: unit.id,
        form_id: form.form.id.clone(),
        form_version: form.form.version,
        respondent_type,
        channel,
        survey_date,
        service,
        demographics,
        comment,
        answers,
        body_hash,
        code_hash,
        code_units: Vec::new(),
        flagged: false,
    })
}
