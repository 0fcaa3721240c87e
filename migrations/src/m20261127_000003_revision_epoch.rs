//! A random number written with every revision, so caches keyed by the revision can tell two
//! stores at the same revision apart: after a backup is restored under running servers and
//! written to again, the counter passes the same numbers with other content.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StoreRevision {
    Table,
    Epoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StoreRevision::Table)
                    .add_column(big_integer(StoreRevision::Epoch).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StoreRevision::Table)
                    .drop_column(StoreRevision::Epoch)
                    .to_owned(),
            )
            .await
    }
}
