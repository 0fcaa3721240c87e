//! Storage model of the `organization` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "organization")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub name: String,
    pub acronym: Option<String>,
    pub org_type: Option<String>,
    pub refugee_and_migrant_led: bool,
    pub fts_id: Option<String>,
    /// Store revision of the organisation's last change (0: none recorded).
    pub revision: i64,
    /// True only for organisations `plangraph generate` made for load tests.
    pub synthetic: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
