//! Storage model of the `share` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "share")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub report_id: i32,
    /// AGE_GENDER or POPULATION_TYPE.
    pub dimension: String,
    pub position: i32,
    pub label: Option<String>,
    pub percent_hundredths: i64,
    pub percent_printed: String,
    /// PEOPLE_TARGETED, PEOPLE_REACHED, or unknown.
    pub basis: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
