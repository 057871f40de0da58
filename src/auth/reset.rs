//! Password resets: a one-time link, valid for an hour, its token stored only as a hash.
//! Asking never reveals whether an address has an account.

use chrono::{TimeDelta, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{hash_password, new_token, token_hash};
use crate::email::{Mail, enqueue};
use crate::entities::{password_reset, session, user};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::{audit, store};

const VALID_FOR_MINUTES: i64 = 60;

/// Queues a reset link when the address has an (enabled) account; silent otherwise.
pub async fn request(state: &AppState, email: &str) -> Result<(), ApiError> {
    let Some(user) = store::users::by_email(&state.db, email).await?.filter(|u| !u.disabled) else {
        return Ok(());
    };
    let (token, hash) = new_token();
    password_reset::ActiveModel {
        token_hash: Set(hash),
        user_id: Set(user.id),
        expires_at: Set(Utc::now() + TimeDelta::minutes(VALID_FOR_MINUTES)),
        used: Set(false),
    }
    .insert(&state.db)
    .await?;
    let link = format!("{}/console/reset/{token}", state.settings.public_base_url.trim_end_matches('/'));
    let text = format!(
        "Có yêu cầu đặt lại mật khẩu cho tài khoản {email} trên SIPAS.\n\
         Mở liên kết sau trong vòng {VALID_FOR_MINUTES} phút để đặt mật khẩu mới (chỉ dùng được một lần):\n{link}\n\
         Nếu anh/chị không yêu cầu, hãy bỏ qua thư này.\n\n---\n\n\
         Someone asked to reset the password of {email} on SIPAS.\n\
         Open this link within {VALID_FOR_MINUTES} minutes to choose a new one (it works once):\n{link}\n\
         If it was not you, ignore this message.\n",
        email = user.email
    );
    let mail = Mail {
        kind: "password_reset",
        dedupe_key: None,
        to: user.email.clone(),
        subject: "[SIPAS] Đặt lại mật khẩu / Password reset".into(),
        text,
        html: None,
    };
    enqueue(&state.db, mail).await?;
    audit::record(&state.db, Some((user.id, &user.email)), "password_reset_requested", None, serde_json::json!({}))
        .await?;
    Ok(())
}

/// Sets a new password with a reset token; signs the user out everywhere.
pub async fn confirm(state: &AppState, token: &str, password: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::field("token", "this link is invalid, used or expired: ask for a new one");
    if password.chars().count() < 10 || password.len() > 1024 {
        return Err(ApiError::field("password", "must be 10 to 1024 characters"));
    }
    let txn = store::begin_write(&state.db).await?;
    let reset = password_reset::Entity::find_by_id(token_hash(token)).one(&txn).await?.ok_or_else(invalid)?;
    if reset.used || reset.expires_at <= Utc::now() {
        return Err(invalid());
    }
    let user = user::Entity::find_by_id(reset.user_id).one(&txn).await?.ok_or_else(invalid)?;
    let hash = hash_password(password).map_err(ApiError::internal)?;
    let mut used: password_reset::ActiveModel = reset.into();
    used.used = Set(true);
    used.update(&txn).await?;
    let mut changed: user::ActiveModel = user.clone().into();
    changed.password_hash = Set(hash);
    changed.update(&txn).await?;
    session::Entity::delete_many().filter(session::Column::UserId.eq(user.id)).exec(&txn).await?;
    audit::record(&txn, Some((user.id, &user.email)), "password_reset", None, serde_json::json!({})).await?;
    txn.commit().await?;
    Ok(())
}
