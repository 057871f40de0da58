//! Creating and changing accounts (admins only): the use-case the admin API and the console share.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{self, Principal, Role};
use crate::entities::user;
use crate::error::{ApiError, FieldErrors};
use crate::startup::AppState;
use crate::units::UnitTree;
use crate::{audit, store};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// `admin`, `analyst` or `unit_manager`.
    #[schema(pattern = "^(admin|analyst|unit_manager)$")]
    pub role: String,
    /// A unit_manager's unit code.
    pub unit: Option<String>,
    /// At least 15 characters, not a common password (`auth::policy`).
    #[schema(min_length = 15, max_length = 128)]
    pub password: String,
}

/// Checks role and unit together: a unit_manager needs a unit, the others have none.
pub fn role_and_unit(
    tree: &UnitTree,
    role: &str,
    unit: Option<&str>,
    fields: &mut FieldErrors,
) -> Option<(Role, Option<i32>)> {
    let mut add = |f: &str, m: &str| fields.entry(f.to_string()).or_default().push(m.to_string());
    let role = Role::parse(role);
    if role.is_none() {
        add("role", "must be admin, analyst or unit_manager");
    }
    let unit_id = match unit.filter(|u| !u.is_empty()) {
        None => None,
        Some(code) => match tree.by_code(code) {
            Some(u) => Some(u.id),
            None => {
                add("unit", "no such unit");
                return None;
            }
        },
    };
    match (role?, unit_id) {
        (Role::UnitManager, None) => {
            add("unit", "a unit_manager needs a unit");
            None
        }
        (Role::UnitManager, Some(id)) => Some((Role::UnitManager, Some(id))),
        (r, Some(_)) => {
            add("unit", &format!("a {} has no unit", r.as_str()));
            None
        }
        (r, None) => Some((r, None)),
    }
}

/// Creates an account; the result is what an admin does with `sipas users add`.
pub async fn create_user(state: &AppState, who: &Principal, body: &NewUser) -> Result<user::Model, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let mut fields = FieldErrors::new();
    let email = body.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        fields.entry("email".into()).or_default().push("must be an email address".into());
    }
    if let Some(problem) = crate::auth::policy::problem(&body.password, &body.email) {
        fields.entry("password".into()).or_default().push(problem);
    }
    let role_unit = role_and_unit(&tree, &body.role, body.unit.as_deref(), &mut fields);
    let (Some((role, unit_id)), true) = (role_unit, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    if store::users::by_email(&state.db, &email).await?.is_some() {
        return Err(ApiError::Conflict(format!("{email} already has an account")));
    }
    let hash = auth::hash_password(&body.password).map_err(ApiError::internal)?;
    let created = store::users::insert(&state.db, &email, hash, role, unit_id).await?;
    audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "user_created",
        Some(&email),
        json!({"role": role.as_str(), "unit": body.unit}),
    )
    .await?;
    Ok(created)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[schema(pattern = "^(admin|analyst|unit_manager)$")]
    pub role: Option<String>,
    pub unit: Option<String>,
    pub disabled: Option<bool>,
}

pub async fn change_user(
    state: &AppState,
    who: &Principal,
    id: i32,
    body: &UserChange,
) -> Result<user::Model, ApiError> {
    who.require_admin()?;
    let tree = store::units::tree(&state.db).await?;
    let current =
        store::users::by_id(&state.db, id).await?.ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    let mut fields = FieldErrors::new();
    let role = body.role.clone().unwrap_or_else(|| current.role.clone());
    let unit = match &body.unit {
        Some(u) => Some(u.clone()),
        None if body.role.is_some() => None,
        None => current.unit_id.and_then(|i| tree.get(i)).map(|u| u.code.clone()),
    };
    let role_unit = role_and_unit(&tree, &role, unit.as_deref(), &mut fields);
    let disabled = body.disabled.unwrap_or(current.disabled);
    if current.id == who.user_id && (disabled || role != "admin") {
        fields
            .entry("disabled".into())
            .or_default()
            .push("you cannot disable yourself or give up your own admin role".into());
    }
    let (Some((role, unit_id)), true) = (role_unit, fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let email = current.email.clone();
    let updated = store::users::update(&state.db, current, role, unit_id, disabled).await?;
    audit::record(
        &state.db,
        Some((who.user_id, &who.email)),
        "user_updated",
        Some(&email),
        json!({"role": role.as_str(), "unit": unit, "disabled": disabled}),
    )
    .await?;
    Ok(updated)
}
