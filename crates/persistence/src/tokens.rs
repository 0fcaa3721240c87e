//! API tokens: a secret shown once, a SHA-256 of it kept. Writes authenticate with
//! `Authorization: Bearer SECRET`; reads need nothing.
//!
//! The secret is 32 random bytes, so a plain SHA-256 is enough to keep a stolen store from
//! yielding usable tokens (no password-style stretching needed), and a look-up by hash leaks
//! nothing useful through timing.

use chrono::Utc;
use plangraph_domain::access::{Actor, Role};
use plangraph_domain::checksum::sha256_hex;
use plangraph_domain::codes::Iso3;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entities::api_token;
use crate::{Store, StoreError};

/// Every secret starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "pgt_";

/// A token just created: its row and the secret, which is never shown again.
#[derive(Debug)]
pub struct NewToken {
    pub token: api_token::Model,
    pub secret: String,
}

fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Encode(format!("no randomness for a token: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// The actor a token row stands for; `None` when the row is revoked or unreadable.
fn actor_of(row: &api_token::Model) -> Option<Actor> {
    if row.revoked_at.is_some() {
        return None;
    }
    let role = Role::parse(&row.role)?;
    let countries = row
        .countries
        .split_whitespace()
        .filter_map(|c| Iso3::parse(c).ok())
        .collect();
    Some(Actor {
        token_id: Some(row.id),
        label: row.name.clone(),
        role,
        countries,
    })
}

impl Store {
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        countries: &[Iso3],
    ) -> Result<NewToken, StoreError> {
        let secret = new_secret()?;
        let codes: Vec<&str> = countries.iter().map(Iso3::as_str).collect();
        let token = api_token::ActiveModel {
            name: Set(name.to_owned()),
            role: Set(role.as_str().to_owned()),
            countries: Set(codes.join(" ")),
            secret_sha256: Set(sha256_hex(secret.as_bytes())),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(NewToken { token, secret })
    }

    /// Every token, oldest first, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<api_token::Model>, StoreError> {
        Ok(api_token::Entity::find()
            .order_by_asc(api_token::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Revokes a token; `false` when no token has that id. Revoking twice keeps the first
    /// revocation time.
    pub async fn revoke_token(&self, id: i32) -> Result<bool, StoreError> {
        let Some(found) = api_token::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(false);
        };
        if found.revoked_at.is_none() {
            let mut active: api_token::ActiveModel = found.into();
            active.revoked_at = Set(Some(Utc::now()));
            active.update(&self.db).await?;
        }
        Ok(true)
    }

    /// The actor behind a presented secret; `None` for an unknown or revoked one.
    pub async fn actor_for_secret(&self, secret: &str) -> Result<Option<Actor>, StoreError> {
        let row = api_token::Entity::find()
            .filter(api_token::Column::SecretSha256.eq(sha256_hex(secret.as_bytes())))
            .one(&self.db)
            .await?;
        Ok(row.as_ref().and_then(actor_of))
    }
}
