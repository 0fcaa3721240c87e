//! Storage model of the `report` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "report")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub plan_id: i32,
    pub platform_id: Option<i32>,
    /// `None` for a regional report.
    pub country_id: Option<i32>,
    /// END_YEAR, MID_YEAR or PLAN.
    pub kind: String,
    pub year: i32,
    pub title: String,
    pub funding_source: Option<String>,
    pub funding_as_of: Option<Date>,
    pub funding_footnote_marker: Option<String>,
    pub source_name: String,
    pub source_sha256: String,
    pub imported_at: DateTimeUtc,
    /// Generated for load tests, never a published figure.
    pub synthetic: bool,
    /// Store revision of the report's last change (0: none recorded).
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
