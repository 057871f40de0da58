//! Admin authentication: Argon2id password hashes, random bearer tokens stored only as
//! SHA-256 hashes in server-side sessions (idle and absolute expiry), roles and unit scope.
//! The `Principal` extractor accepts `Authorization: Bearer` or the HttpOnly session cookie.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use chrono::{TimeDelta, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub mod policy;
pub mod reset;
pub mod users;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;
use crate::units::UnitTree;

pub const SESSION_COOKIE: &str = "sipas_session";

pub fn session_cookie(state: &AppState, value: String, max_age: CookieDuration) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.settings.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, everywhere.
    Admin,
    /// Reads everything, changes nothing.
    Analyst,
    /// Reads its own unit and the units below it.
    UnitManager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::UnitManager => "unit_manager",
        }
    }

    pub const ALL: [Role; 3] = [Role::Admin, Role::Analyst, Role::UnitManager];

    pub fn parse(value: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// What the console shows for the role.
    pub fn label(self, lang: crate::Lang) -> &'static str {
        use crate::Lang::{En, Vi};
        match (self, lang) {
            (Role::Admin, Vi) => "Quản trị",
            (Role::Admin, En) => "Administrator",
            (Role::Analyst, Vi) => "Phân tích",
            (Role::Analyst, En) => "Analyst",
            (Role::UnitManager, Vi) => "Lãnh đạo đơn vị",
            (Role::UnitManager, En) => "Unit manager",
        }
    }
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Verifies a password; with no stored hash it still spends the time of one verification,
/// so response times do not reveal which emails have accounts.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let hash = stored.unwrap_or(dummy);
    let ok = PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false);
    ok && stored.is_some()
}

/// A new random token (256 bits, URL-safe) and the hash under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session for `user`: returns the bearer token (shown once) and the session's
/// CSRF token.
pub async fn start_session(
    db: &sea_orm::DatabaseConnection,
    user_id: i32,
    absolute_hours: i64,
) -> Result<(String, String, chrono::DateTime<Utc>), sea_orm::DbErr> {
    let now = Utc::now();
    let expires_at = now + TimeDelta::hours(absolute_hours);
    store::sessions::delete_expired(db, now).await?;
    let (token, hash) = new_token();
    let csrf = new_token().0;
    store::sessions::insert(db, hash, user_id, now, expires_at, csrf.clone()).await?;
    Ok((token, csrf, expires_at))
}

/// A successful sign-in.
pub struct SignedIn {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
    pub principal: Principal,
}

/// Checks email and password, records the attempt in the audit log, and starts a session.
/// Unknown emails and wrong passwords get the same answer, in the same time.
pub async fn sign_in(state: &AppState, email: &str, password: &str, via: &str) -> Result<SignedIn, ApiError> {
    state.limits.account_sign_in(&state.db, email).await?;
    let user = store::users::by_email(&state.db, email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_string();
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = web::block(move || verify_password(&password, stored.as_deref())).await.map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        found => {
            // Only an existing account's email goes into the log: what was typed for an
            // unknown one may be a password typed into the wrong box.
            let known = found.map(|u| u.email);
            crate::audit::record(&state.db, None, "login_failed", known.as_deref(), serde_json::json!({"via": via}))
                .await?;
            return Err(ApiError::Unauthorized("wrong email or password".into()));
        }
    };
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role stored"))?;
    let (token, csrf_token, expires_at) =
        start_session(&state.db, user.id, state.settings.session_absolute_hours).await?;
    crate::audit::record(&state.db, Some((user.id, &user.email)), "login", None, serde_json::json!({"via": via}))
        .await?;
    tracing::info!(user_id = user.id, "signed in");
    let principal = Principal {
        user_id: user.id,
        email: user.email,
        role,
        unit_id: user.unit_id,
        token_hash: token_hash(&token),
        csrf_token,
    };
    Ok(SignedIn { token, expires_at, principal })
}

/// Checks a form's CSRF token against the session's, in constant time.
pub fn csrf_ok(who: &Principal, sent: &str) -> bool {
    let (a, b) = (who.csrf_token.as_bytes(), sent.as_bytes());
    !a.is_empty() && a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in user of a request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Principal {
    pub user_id: i32,
    pub email: String,
    pub role: Role,
    /// A unit_manager's unit id.
    #[serde(skip)]
    pub unit_id: Option<i32>,
    #[serde(skip)]
    pub token_hash: String,
    /// What the console's forms must send back.
    #[serde(skip)]
    pub csrf_token: String,
}

impl Principal {
    /// Changes to units, users and settings are for admins only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this action needs the admin role".into()))
        }
    }

    pub fn can_see(&self, tree: &UnitTree, unit_id: i32) -> bool {
        match self.role {
            Role::Admin | Role::Analyst => true,
            Role::UnitManager => self.unit_id.is_some_and(|own| tree.is_within(unit_id, own)),
        }
    }

    pub fn require_unit(&self, tree: &UnitTree, unit_id: i32) -> Result<(), ApiError> {
        if self.can_see(tree, unit_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this unit is outside your scope".into()))
        }
    }
}

fn bearer_or_cookie(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION);
    if let Some(value) = header.and_then(|h| h.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string())
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_or_cookie(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = token
                .filter(|t| !t.is_empty() && t.len() <= 128)
                .ok_or_else(|| ApiError::Unauthorized("sign in first: send Authorization: Bearer <token>".into()))?;
            let hash = token_hash(&token);
            let expired = || ApiError::Unauthorized("the session has expired or was signed out".into());
            let (session, user) = store::sessions::find(&state.db, &hash).await?.ok_or_else(expired)?;
            let now = Utc::now();
            let idle = TimeDelta::minutes(state.settings.session_idle_minutes);
            if user.disabled || now >= session.expires_at || now - session.last_seen_at >= idle {
                store::sessions::delete(&state.db, &hash).await?;
                return Err(expired());
            }
            // Last use is written when it is older than a sixtieth of the idle limit (at most a
            // minute): a session expires at most that early, never later, and a busy session
            // costs one write per second at the very most.
            let step = (idle / 60).clamp(TimeDelta::seconds(1), TimeDelta::seconds(60));
            if now - session.last_seen_at >= step {
                store::sessions::touch(&state.db, &hash, now).await?;
            }
            let role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role stored"))?;
            Ok(Principal {
                user_id: user.id,
                email: user.email,
                role,
                unit_id: user.unit_id,
                token_hash: hash,
                csrf_token: session.csrf_token,
            })
        })
    }
}
