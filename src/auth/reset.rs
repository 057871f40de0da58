//! Password resets: a one-time link, valid for an hour, its token stored only as a hash.
//! Asking never reveals whether an address has an account: the answer comes before any
//! look-up (the work runs after it, in the background), so it takes the same time either
//! way, and requests are limited per address and per typed email alike. A link is used by
//! one conditional update, so two confirmations racing with one link cannot both succeed.

use chrono::{TimeDelta, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{hash_password, new_token, token_hash};
use crate::email::{Mail, enqueue};
use crate::entities::{password_reset, session, user};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::{audit, store};

const VALID_FOR_MINUTES: i64 = 60;

/// Accepts a reset request (429 past the limits) and queues a link in the background when
/// the address has an (enabled) account.
pub async fn request(state: &AppState, client: &str, email: &str) -> Result<(), ApiError> {
    state.limits.reset_request(&state.db, client, email).await?;
    let (background, state, email) = (state.background.clone(), state.clone(), email.to_string());
    // On the main runtime, not this HTTP worker's: the answer leaves before the look-up,
    // and the look-up does not delay the worker's next answer either.
    background.spawn(async move {
        if let Err(e) = send_link(&state, &email).await {
            tracing::error!("password reset request not handled: {e}");
        }
    });
    Ok(())
}

async fn send_link(state: &AppState, email: &str) -> Result<(), ApiError> {
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
    if password.chars().count() > super::policy::MAX_CHARS {
        return Err(ApiError::field("password", format!("must have at most {} characters", super::policy::MAX_CHARS)));
    }
    let txn = store::begin_write(&state.db).await?;
    let hash_of_token = token_hash(token);
    let reset = password_reset::Entity::find_by_id(hash_of_token.clone()).one(&txn).await?.ok_or_else(invalid)?;
    let user = user::Entity::find_by_id(reset.user_id).one(&txn).await?.ok_or_else(invalid)?;
    if let Some(problem) = super::policy::problem(password, &user.email) {
        return Err(ApiError::field("password", problem));
    }
    let hash = hash_password(password).map_err(ApiError::internal)?;
    // Used once: only the update that finds it unused and unexpired takes it. Two
    // confirmations at once on PostgreSQL both read it unused; only one can change it.
    let taken = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::Used, sea_orm::sea_query::Expr::value(true))
        .filter(password_reset::Column::TokenHash.eq(hash_of_token))
        .filter(password_reset::Column::Used.eq(false))
        .filter(password_reset::Column::ExpiresAt.gt(Utc::now()))
        .exec(&txn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(invalid());
    }
    let mut changed: user::ActiveModel = user.clone().into();
    changed.password_hash = Set(hash);
    changed.update(&txn).await?;
    session::Entity::delete_many().filter(session::Column::UserId.eq(user.id)).exec(&txn).await?;
    audit::record(&txn, Some((user.id, &user.email)), "password_reset", None, serde_json::json!({})).await?;
    txn.commit().await?;
    Ok(())
}
