//! Storage model of the `change` table: one row per committed write.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change")]
pub struct Model {
    /// The store revision the write committed as.
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i64,
    pub report_id: Option<i32>,
    pub organization_id: Option<i32>,
    pub kind: String,
    pub summary: String,
    /// The token that wrote; `None` for a local write (the command line).
    pub token_id: Option<i32>,
    pub actor_label: String,
    pub at: DateTimeUtc,
    /// Length of `fields` in bytes, so pages of history can be sized without reading it.
    pub fields_bytes: i64,
    /// JSON list of `{path, before, after}`.
    pub fields: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
