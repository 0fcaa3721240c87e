//! Storage model of the `sector_figures` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "sector_figures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub report_id: i32,
    pub sector_id: i32,
    /// Printed order of the row in its report.
    pub position: i32,
    pub printed_heading: String,
    pub people_targeted: i64,
    pub people_targeted_printed: String,
    pub people_reached: i64,
    pub people_reached_printed: String,
    pub reached_percent_hundredths: i64,
    pub reached_percent_printed: String,
    pub requirements_usd: i64,
    pub requirements_printed: String,
    pub funding_usd: i64,
    pub funding_printed: String,
    pub funded_percent_hundredths: i64,
    pub funded_percent_printed: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
