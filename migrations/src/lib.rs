//! The migrations of the plangraph store, one file per migration, each with `up` and `down`.
//!
//! The same migrations run on SQLite (the embedded default) and Postgres. sea-orm does not index
//! foreign keys by itself, so every migration that adds a foreign key adds its index too.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_report_graph;
mod m20261127_000001_changes;
mod m20261127_000002_synthetic_organizations;
mod m20261127_000003_revision_epoch;
mod util;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_report_graph::Migration),
            Box::new(m20261127_000001_changes::Migration),
            Box::new(m20261127_000002_synthetic_organizations::Migration),
            Box::new(m20261127_000003_revision_epoch::Migration),
        ]
    }
}
