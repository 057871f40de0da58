//! API keys, each scoped to one unit: `office` keys let an office's own software ask for
//! receipt codes and send invitations; `kiosk` keys enrol a counter tablet. Stored as
//! SHA-256 hashes; the key itself is shown once.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::auth::{new_token, token_hash};
use crate::entities::api_key;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Office,
    Kiosk,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Office => "office",
            KeyKind::Kiosk => "kiosk",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        [KeyKind::Office, KeyKind::Kiosk].into_iter().find(|k| k.as_str() == s)
    }
}

/// Creates a key; returns the key (shown once) and its record.
pub async fn create(
    db: &impl ConnectionTrait,
    unit_id: i32,
    kind: KeyKind,
    name: &str,
) -> Result<(String, api_key::Model), DbErr> {
    let (token, _) = new_token();
    let key = format!("{}_{token}", kind.as_str());
    let model = api_key::ActiveModel {
        key_hash: Set(token_hash(&key)),
        unit_id: Set(unit_id),
        kind: Set(kind.as_str().to_string()),
        name: Set(name.chars().take(100).collect()),
        created_at: Set(Utc::now()),
        disabled: Set(false),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((key, model))
}

/// The active key of this kind, if `key` is one.
pub async fn verify(db: &impl ConnectionTrait, key: &str, kind: KeyKind) -> Result<Option<api_key::Model>, DbErr> {
    if key.is_empty() || key.len() > 128 {
        return Ok(None);
    }
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(token_hash(key)))
        .filter(api_key::Column::Kind.eq(kind.as_str()))
        .filter(api_key::Column::Disabled.eq(false))
        .one(db)
        .await
}
