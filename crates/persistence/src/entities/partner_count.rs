//! Storage model of the `partner_count` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "partner_count")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub report_id: i32,
    /// REPORTING, IMPLEMENTING, REFUGEE_AND_MIGRANT_LED or DONOR.
    pub role: String,
    pub count: i32,
    pub footnote_marker: Option<String>,
    pub printed: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
