//! Creating and changing units: the use-case the admin API and the console share.

use sea_orm::{ActiveModelTrait, Set};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::entities::unit;
use crate::error::{ApiError, FieldErrors};
use crate::startup::AppState;
use crate::units::{Level, check_unit};
use crate::{audit, store};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUnit {
    /// Dot-separated segments of A-Z, 0-9, `_` and `-`, like `QNM.TK.AM`.
    #[schema(pattern = r"^[A-Z0-9_-]+(\.[A-Z0-9_-]+)*$", max_length = 64)]
    pub code: String,
    /// Parent unit code; only a province has none.
    pub parent: Option<String>,
    #[schema(pattern = "^(province|city|department|district|commune|ward|special_zone|office)$")]
    pub level: String,
    #[schema(min_length = 1)]
    pub name_vi: String,
    pub name_en: Option<String>,
    /// Form ids this unit takes; omitted or `null` inherits from the parent.
    pub forms: Option<Vec<String>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateUnit {
    pub parent: Option<String>,
    #[schema(pattern = "^(province|city|department|district|commune|ward|special_zone|office)$")]
    pub level: Option<String>,
    pub name_vi: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name_en: Option<Option<String>>,
    /// A list of form ids, or `null` to inherit from the parent again.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub forms: Option<Option<Vec<String>>>,
    /// Whether submissions need a one-time receipt code.
    pub requires_code: Option<bool>,
}

fn add(fields: &mut FieldErrors, field: &str, message: impl Into<String>) {
    fields.entry(field.to_string()).or_default().push(message.into());
}

fn check_forms(state: &AppState, forms: Option<&Vec<String>>, fields: &mut FieldErrors) -> Option<String> {
    let list = forms?;
    if list.is_empty() {
        add(fields, "forms", "list at least one form, or send null to inherit");
    }
    for f in list {
        if state.forms.get(f).is_none() {
            add(fields, "forms", format!("unknown form {f:?}"));
        }
    }
    Some(list.join(","))
}

/// Creates a unit after checking every rule; what the API and the console share.
pub async fn create_unit(state: &AppState, who: &Principal, body: &CreateUnit) -> Result<unit::Model, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let parent = match &body.parent {
        None => None,
        Some(code) => match tree.by_code(code) {
            Some(p) if p.valid_to.is_some() => {
                add(&mut fields, "parent", "this unit has ended (see its successors)");
                None
            }
            Some(p) => Some(p),
            None => {
                add(&mut fields, "parent", "no such unit");
                None
            }
        },
    };
    let parent_level = body.parent.as_ref().map(|_| parent.and_then(|p| Level::parse(&p.level)));
    for (field, message) in check_unit(&body.code, &body.level, parent_level, &body.name_vi, body.name_en.as_deref()) {
        add(&mut fields, field, message);
    }
    let forms = check_forms(state, body.forms.as_ref(), &mut fields);
    if tree.by_code(&body.code).is_some() {
        return Err(ApiError::Conflict(format!("unit {} already exists", body.code)));
    }
    let level = Level::parse(&body.level);
    let (true, Some(level)) = (fields.is_empty(), level) else {
        return Err(ApiError::validation(fields));
    };
    let txn = store::begin_write(&state.db).await?;
    let created = store::units::insert(
        &txn,
        store::units::NewUnit {
            code: body.code.clone(),
            parent_id: parent.map(|p| p.id),
            level,
            name_vi: body.name_vi.trim().to_string(),
            name_en: body.name_en.as_ref().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            forms,
        },
    )
    .await?;
    audit::record(
        &txn,
        Some((who.user_id, &who.email)),
        "unit_created",
        Some(&created.code),
        json!({"parent": body.parent, "level": body.level, "name_vi": body.name_vi, "forms": body.forms}),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Changes a unit after checking every rule (no cycles, levels in order).
pub async fn update_unit(
    state: &AppState,
    who: &Principal,
    code: &str,
    body: &UpdateUnit,
) -> Result<unit::Model, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let current = tree.by_code(code).ok_or_else(|| ApiError::NotFound("no such unit".into()))?.clone();
    let mut fields = FieldErrors::new();
    let parent = match &body.parent {
        None => current.parent_id.and_then(|p| tree.get(p)),
        Some(code) => match tree.by_code(code) {
            Some(p) if tree.is_within(p.id, current.id) => {
                add(&mut fields, "parent", "a unit cannot move under itself or its own units");
                None
            }
            Some(p) => Some(p),
            None => {
                add(&mut fields, "parent", "no such unit");
                None
            }
        },
    };
    let level = body.level.clone().unwrap_or_else(|| current.level.clone());
    let name_vi = body.name_vi.clone().unwrap_or_else(|| current.name_vi.clone());
    let name_en = body.name_en.clone().unwrap_or_else(|| current.name_en.clone());
    let parent_level = match (parent, fields.contains_key("parent")) {
        (Some(p), _) => Some(Level::parse(&p.level)),
        (None, true) => Some(None), // already reported
        (None, false) => None,
    };
    for (field, message) in check_unit(&current.code, &level, parent_level, &name_vi, name_en.as_deref()) {
        add(&mut fields, field, message);
    }
    if let Some(l) = Level::parse(&level) {
        for child in tree.children(current.id).iter().filter_map(|c| tree.get(*c)) {
            if Level::parse(&child.level).is_some_and(|cl| cl.rank() <= l.rank()) {
                add(&mut fields, "level", format!("child unit {} would no longer sit below it", child.code));
            }
        }
    }
    let forms = match &body.forms {
        None => current.forms.clone(),
        Some(list) => check_forms(state, list.as_ref(), &mut fields),
    };
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let mut active: unit::ActiveModel = current.clone().into();
    active.parent_id = Set(parent.map(|p| p.id));
    active.level = Set(level);
    active.name_vi = Set(name_vi.trim().to_string());
    active.name_en = Set(name_en.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()));
    active.forms = Set(forms);
    if let Some(r) = body.requires_code {
        active.requires_code = Set(r);
    }
    let txn = store::begin_write(&state.db).await?;
    let updated = active.update(&txn).await?;
    store::units::touch(&txn).await?;
    audit::record(&txn, Some((who.user_id, &who.email)), "unit_updated", Some(&updated.code),
        json!({"parent": body.parent, "level": body.level, "name_vi": body.name_vi, "name_en": body.name_en, "forms": body.forms, "requires_code": body.requires_code})).await?;
    txn.commit().await?;
    Ok(updated)
}
