//! Storage model of the `report_totals` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "report_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub report_id: i32,
    pub people_in_need: i64,
    pub people_in_need_printed: String,
    pub people_targeted: i64,
    pub people_targeted_printed: String,
    pub people_reached: i64,
    pub people_reached_printed: String,
    pub requirements_usd: i64,
    pub requirements_printed: String,
    pub funding_usd: i64,
    pub funding_printed: String,
    pub unmet_usd: i64,
    pub unmet_printed: String,
    pub funded_percent_hundredths: i64,
    pub funded_percent_printed: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
