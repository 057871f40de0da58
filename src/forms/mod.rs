//! Survey forms as versioned data: the model, the loader that reads and checks the files in
//! `survey-forms/`, and the validation of a submission against a form.
//!
//! A form is immutable once loaded. Its `content_hash` (SHA-256 of its canonical JSON) is what
//! the database remembers, so a form cannot change under an id/version that has responses.

pub mod loader;
pub mod submission;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Lang;

/// A string in Vietnamese and English.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Text {
    pub vi: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.vi,
            Lang::En => &self.en,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RespondentType {
    Citizen,
    Organization,
}

impl RespondentType {
    pub const ALL: [RespondentType; 2] = [RespondentType::Citizen, RespondentType::Organization];

    pub fn as_str(self) -> &'static str {
        match self {
            RespondentType::Citizen => "citizen",
            RespondentType::Organization => "organization",
        }
    }

    pub fn parse(value: &str) -> Option<RespondentType> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (RespondentType::Citizen, Lang::Vi) => "Người dân",
            (RespondentType::Citizen, Lang::En) => "Citizen",
            (RespondentType::Organization, Lang::Vi) => "Đại diện tổ chức, doanh nghiệp",
            (RespondentType::Organization, Lang::En) => "On behalf of an organisation",
        }
    }
}

/// How the survey was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InPerson,
    Online,
    Kiosk,
    Phone,
    Paper,
}

impl Channel {
    pub const ALL: [Channel; 5] = [Channel::InPerson, Channel::Online, Channel::Kiosk, Channel::Phone, Channel::Paper];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InPerson => "in_person",
            Channel::Online => "online",
            Channel::Kiosk => "kiosk",
            Channel::Phone => "phone",
            Channel::Paper => "paper",
        }
    }

    pub fn parse(value: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }

    /// What the console and the exports show for the code.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Channel::InPerson, Lang::Vi) => "Trực tiếp",
            (Channel::InPerson, Lang::En) => "In person",
            (Channel::Online, Lang::Vi) => "Trực tuyến",
            (Channel::Online, Lang::En) => "Online",
            (Channel::Kiosk, Lang::Vi) => "Máy đánh giá tại chỗ",
            (Channel::Kiosk, Lang::En) => "Kiosk",
            (Channel::Phone, Lang::Vi) => "Điện thoại",
            (Channel::Phone, Lang::En) => "Phone",
            (Channel::Paper, Lang::Vi) => "Phiếu giấy",
            (Channel::Paper, Lang::En) => "Paper",
        }
    }
}

/// The optional demographic questions a form may ask, always in coarse bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DemographicKey {
    Gender,
    AgeBand,
    Education,
    Occupation,
}

impl DemographicKey {
    pub const ALL: [DemographicKey; 4] =
        [DemographicKey::Gender, DemographicKey::AgeBand, DemographicKey::Education, DemographicKey::Occupation];

    pub fn as_str(self) -> &'static str {
        match self {
            DemographicKey::Gender => "gender",
            DemographicKey::AgeBand => "age_band",
            DemographicKey::Education => "education",
            DemographicKey::Occupation => "occupation",
        }
    }

    pub fn parse(value: &str) -> Option<DemographicKey> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Level {
    pub value: i16,
    pub label: Text,
}

/// An answer scale: its levels in increasing order and the levels that count as satisfied
/// (for expectation scales: the top levels reported).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Scale {
    pub levels: Vec<Level>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub satisfied: Vec<i16>,
}

impl Scale {
    pub fn has(&self, value: i16) -> bool {
        self.levels.iter().any(|l| l.value == value)
    }
    pub fn min(&self) -> i16 {
        self.levels.first().map_or(0, |l| l.value)
    }
    pub fn max(&self) -> i16 {
        self.levels.last().map_or(0, |l| l.value)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub code: String,
    pub text: Text,
    /// Name of the scale in the form's `scales`.
    pub scale: String,
}

/// A node of the index tree: either child groups or items, never both, never empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(no_recursion)]
pub struct Group {
    pub code: String,
    pub title: Text,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IndexHead {
    pub code: String,
    pub title: Text,
    pub scale: String,
}

/// A question outside the index (interest, information channels, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Question {
    pub code: String,
    pub text: Text,
    pub scale: String,
    /// Several levels may be chosen (the answer is a list).
    #[serde(default)]
    pub multiple: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Choice {
    pub code: String,
    pub text: Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Demographic {
    pub key: DemographicKey,
    pub title: Text,
    pub options: Vec<Choice>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommentSpec {
    pub max_chars: usize,
    pub prompt: Text,
}

/// A survey form as published by `GET /api/v1/forms/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Form {
    pub id: String,
    pub version: i32,
    pub title: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    pub respondent_types: Vec<RespondentType>,
    pub scales: BTreeMap<String, Scale>,
    pub index: IndexHead,
    /// The index tree: top-level groups (elements or pillars), then groups or items.
    pub groups: Vec<Group>,
    pub expectations: Vec<Item>,
    pub questions: Vec<Question>,
    pub demographics: Vec<Demographic>,
    /// Fields (lĩnh vực) the `service` answer takes.
    pub fields: Vec<Choice>,
    pub comment: Option<CommentSpec>,
}

/// What an answer code refers to, for validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    IndexItem,
    Expectation,
    Question { multiple: bool },
}

impl Form {
    /// Index items in the tree's depth-first order.
    pub fn index_items(&self) -> Vec<&Item> {
        fn walk<'a>(groups: &'a [Group], out: &mut Vec<&'a Item>) {
            for g in groups {
                walk(&g.groups, out);
                out.extend(g.items.iter());
            }
        }
        let mut out = Vec::new();
        walk(&self.groups, &mut out);
        out
    }

    /// Every answerable code with its kind and scale, in the order the form asks them.
    pub fn answerables(&self) -> Vec<(&str, AnswerKind, &str)> {
        let mut out: Vec<(&str, AnswerKind, &str)> = self
            .index_items()
            .into_iter()
            .map(|i| (i.code.as_str(), AnswerKind::IndexItem, i.scale.as_str()))
            .collect();
        out.extend(self.expectations.iter().map(|i| (i.code.as_str(), AnswerKind::Expectation, i.scale.as_str())));
        out.extend(
            self.questions
                .iter()
                .map(|q| (q.code.as_str(), AnswerKind::Question { multiple: q.multiple }, q.scale.as_str())),
        );
        out
    }

    pub fn takes(&self, respondent_type: RespondentType) -> bool {
        self.respondent_types.contains(&respondent_type)
    }

    pub fn demographic(&self, key: DemographicKey) -> Option<&Demographic> {
        self.demographics.iter().find(|d| d.key == key)
    }
}

/// A loaded form with its hash and a lookup table from answer code to kind and scale.
#[derive(Debug)]
pub struct LoadedForm {
    pub form: Form,
    pub content_hash: String,
    /// Canonical JSON of `form`, as stored in the database.
    pub definition: String,
    pub source: String,
    lookup: HashMap<String, (AnswerKind, String)>,
}

impl LoadedForm {
    pub fn new(form: Form, source: String) -> LoadedForm {
        use sha2::{Digest, Sha256};
        // serde_json keeps struct field order and BTreeMap order: the JSON is canonical.
        let definition = serde_json::to_string(&form).unwrap_or_default();
        let content_hash = hex::encode(Sha256::digest(definition.as_bytes()));
        let lookup = form
            .answerables()
            .into_iter()
            .map(|(code, kind, scale)| (code.to_string(), (kind, scale.to_string())))
            .collect();
        LoadedForm { form, content_hash, definition, source, lookup }
    }

    pub fn answer_spec(&self, code: &str) -> Option<(AnswerKind, &Scale)> {
        let (kind, scale) = self.lookup.get(code)?;
        Some((*kind, self.form.scales.get(scale)?))
    }
}

/// The forms this process serves, by id. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FormRegistry {
    forms: Arc<BTreeMap<String, Arc<LoadedForm>>>,
}

impl FormRegistry {
    pub fn new(forms: Vec<LoadedForm>) -> FormRegistry {
        let forms = forms.into_iter().map(|f| (f.form.id.clone(), Arc::new(f))).collect();
        FormRegistry { forms: Arc::new(forms) }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<LoadedForm>> {
        self.forms.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<LoadedForm>> {
        self.forms.values()
    }

    pub fn ids(&self) -> Vec<String> {
        self.forms.keys().cloned().collect()
    }
}
