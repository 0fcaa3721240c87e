//! Storage model of the `api_token` table. The secret itself is never stored, only its SHA-256.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_token")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// A label for people ("GTRM IM team").
    pub name: String,
    /// ADMIN or EDITOR.
    pub role: String,
    /// ISO3 codes an editor may write, separated by spaces.
    pub countries: String,
    pub secret_sha256: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
