//! Writes: revisions, the change history, API tokens.
//!
//! Every write bumps one store-wide revision counter, so revisions are ordered as the writes
//! committed and a subscriber can resume "after revision N" whatever it watches. A report (and
//! an organisation) keeps the revision of its last change; each change is one row of
//! `change`, with who made it and every field's value before and after.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{drop_tables, fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StoreRevision {
    Table,
    Id,
    Value,
}

#[derive(DeriveIden)]
enum Report {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum ApiToken {
    Table,
    Id,
    Name,
    Role,
    Countries,
    SecretSha256,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Change {
    Table,
    Revision,
    ReportId,
    OrganizationId,
    Kind,
    Summary,
    TokenId,
    ActorLabel,
    At,
    FieldsBytes,
    Fields,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::Restrict;

        manager
            .create_table(
                Table::create()
                    .table(StoreRevision::Table)
                    .col(integer(StoreRevision::Id).primary_key())
                    .col(big_integer(StoreRevision::Value))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(StoreRevision::Table)
                    .columns([StoreRevision::Id, StoreRevision::Value])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Report::Table)
                    .add_column(big_integer(Report::Revision).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organization::Table)
                    .add_column(big_integer(Organization::Revision).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiToken::Table)
                    .col(pk_auto(ApiToken::Id))
                    .col(string(ApiToken::Name))
                    .col(string(ApiToken::Role))
                    .col(string(ApiToken::Countries))
                    .col(string_uniq(ApiToken::SecretSha256))
                    .col(timestamp_with_time_zone(ApiToken::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiToken::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Change::Table)
                    .col(big_integer(Change::Revision).primary_key())
                    .col(integer_null(Change::ReportId))
                    .col(integer_null(Change::OrganizationId))
                    .col(string(Change::Kind))
                    .col(text(Change::Summary))
                    .col(integer_null(Change::TokenId))
                    .col(string(Change::ActorLabel))
                    .col(timestamp_with_time_zone(Change::At))
                    .col(big_integer(Change::FieldsBytes))
                    .col(text(Change::Fields))
                    .foreign_key(&mut fk(
                        "fk_change_report",
                        (Change::Table, Change::ReportId),
                        (Report::Table, Report::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_change_organization",
                        (Change::Table, Change::OrganizationId),
                        (Organization::Table, Organization::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_change_token",
                        (Change::Table, Change::TokenId),
                        (ApiToken::Table, ApiToken::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        // History is read newest first per report or organisation.
        let indexes = [
            index(
                "ix_change_report_revision",
                Change::Table,
                vec![Change::ReportId.into_iden(), Change::Revision.into_iden()],
            ),
            index(
                "ix_change_organization_revision",
                Change::Table,
                vec![
                    Change::OrganizationId.into_iden(),
                    Change::Revision.into_iden(),
                ],
            ),
            index(
                "ix_change_token",
                Change::Table,
                vec![Change::TokenId.into_iden()],
            ),
        ];
        for stmt in indexes {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                Change::Table.into_iden(),
                ApiToken::Table.into_iden(),
                StoreRevision::Table.into_iden(),
            ],
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organization::Table)
                    .drop_column(Organization::Revision)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Report::Table)
                    .drop_column(Report::Revision)
                    .to_owned(),
            )
            .await
    }
}
