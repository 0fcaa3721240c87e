//! The report graph: reference tables (platform, country, plan, sector, organization), reports
//! and everything a report prints.
//!
//! Figures are integers (people, whole US dollars, hundredths of a percent) beside the printed
//! text they were read from.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{drop_tables, fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Platform {
    Table,
    Id,
    Code,
    Name,
    Scope,
}

#[derive(DeriveIden)]
enum Country {
    Table,
    Id,
    Iso3,
    Name,
    PlatformId,
    Sovereign,
}

#[derive(DeriveIden)]
enum Plan {
    Table,
    Id,
    Code,
    Name,
    StartYear,
    EndYear,
}

#[derive(DeriveIden)]
enum Sector {
    Table,
    Id,
    Code,
    Name,
    ParentId,
    Position,
}

#[derive(DeriveIden)]
enum Report {
    Table,
    Id,
    PlanId,
    PlatformId,
    CountryId,
    Kind,
    Year,
    Title,
    FundingSource,
    FundingAsOf,
    FundingFootnoteMarker,
    SourceName,
    SourceSha256,
    ImportedAt,
    Synthetic,
}

#[derive(DeriveIden)]
enum ReportTotals {
    Table,
    ReportId,
    PeopleInNeed,
    PeopleInNeedPrinted,
    PeopleTargeted,
    PeopleTargetedPrinted,
    PeopleReached,
    PeopleReachedPrinted,
    RequirementsUsd,
    RequirementsPrinted,
    FundingUsd,
    FundingPrinted,
    UnmetUsd,
    UnmetPrinted,
    FundedPercentHundredths,
    FundedPercentPrinted,
}

#[derive(DeriveIden)]
enum SectorFigures {
    Table,
    Id,
    ReportId,
    SectorId,
    Position,
    PrintedHeading,
    PeopleTargeted,
    PeopleTargetedPrinted,
    PeopleReached,
    PeopleReachedPrinted,
    ReachedPercentHundredths,
    ReachedPercentPrinted,
    RequirementsUsd,
    RequirementsPrinted,
    FundingUsd,
    FundingPrinted,
    FundedPercentHundredths,
    FundedPercentPrinted,
}

#[derive(DeriveIden)]
enum Share {
    Table,
    Id,
    ReportId,
    Dimension,
    Position,
    Label,
    PercentHundredths,
    PercentPrinted,
    Basis,
}

#[derive(DeriveIden)]
enum PartnerCount {
    Table,
    Id,
    ReportId,
    Role,
    Count,
    FootnoteMarker,
    Printed,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
    Name,
    Acronym,
    OrgType,
    RefugeeAndMigrantLed,
    FtsId,
}

#[derive(DeriveIden)]
enum ReportOrganization {
    Table,
    Id,
    ReportId,
    OrganizationId,
    Role,
}

#[derive(DeriveIden)]
enum NarrativeSection {
    Table,
    Id,
    ReportId,
    Kind,
    Title,
    Position,
}

#[derive(DeriveIden)]
enum NarrativeParagraph {
    Table,
    Id,
    SectionId,
    Position,
    Body,
}

#[derive(DeriveIden)]
enum Footnote {
    Table,
    Id,
    ReportId,
    Position,
    Marker,
    Body,
}

#[derive(DeriveIden)]
enum SourceLink {
    Table,
    Id,
    ReportId,
    Position,
    Url,
    Label,
    Placement,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, Restrict, SetNull};

        manager
            .create_table(
                Table::create()
                    .table(Platform::Table)
                    .col(pk_auto(Platform::Id))
                    .col(string_uniq(Platform::Code))
                    .col(string(Platform::Name))
                    .col(string(Platform::Scope))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Country::Table)
                    .col(pk_auto(Country::Id))
                    .col(string_len_uniq(Country::Iso3, 3))
                    .col(string(Country::Name))
                    .col(integer_null(Country::PlatformId))
                    .col(boolean(Country::Sovereign))
                    .foreign_key(&mut fk(
                        "fk_country_platform",
                        (Country::Table, Country::PlatformId),
                        (Platform::Table, Platform::Id),
                        SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Plan::Table)
                    .col(pk_auto(Plan::Id))
                    .col(string_uniq(Plan::Code))
                    .col(string(Plan::Name))
                    .col(integer(Plan::StartYear))
                    .col(integer(Plan::EndYear))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sector::Table)
                    .col(pk_auto(Sector::Id))
                    .col(string_uniq(Sector::Code))
                    .col(string(Sector::Name))
                    .col(integer_null(Sector::ParentId))
                    .col(integer(Sector::Position))
                    .foreign_key(&mut fk(
                        "fk_sector_parent",
                        (Sector::Table, Sector::ParentId),
                        (Sector::Table, Sector::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Report::Table)
                    .col(pk_auto(Report::Id))
                    .col(integer(Report::PlanId))
                    .col(integer_null(Report::PlatformId))
                    .col(integer_null(Report::CountryId))
                    .col(string(Report::Kind))
                    .col(integer(Report::Year))
                    .col(string(Report::Title))
                    .col(string_null(Report::FundingSource))
                    .col(date_null(Report::FundingAsOf))
                    .col(string_null(Report::FundingFootnoteMarker))
                    .col(string(Report::SourceName))
                    .col(string(Report::SourceSha256))
                    .col(timestamp_with_time_zone(Report::ImportedAt))
                    .col(boolean(Report::Synthetic).default(false))
                    .foreign_key(&mut fk(
                        "fk_report_plan",
                        (Report::Table, Report::PlanId),
                        (Plan::Table, Plan::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_report_platform",
                        (Report::Table, Report::PlatformId),
                        (Platform::Table, Platform::Id),
                        SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_report_country",
                        (Report::Table, Report::CountryId),
                        (Country::Table, Country::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReportTotals::Table)
                    .col(integer(ReportTotals::ReportId).primary_key())
                    .col(big_integer(ReportTotals::PeopleInNeed))
                    .col(string(ReportTotals::PeopleInNeedPrinted))
                    .col(big_integer(ReportTotals::PeopleTargeted))
                    .col(string(ReportTotals::PeopleTargetedPrinted))
                    .col(big_integer(ReportTotals::PeopleReached))
                    .col(string(ReportTotals::PeopleReachedPrinted))
                    .col(big_integer(ReportTotals::RequirementsUsd))
                    .col(string(ReportTotals::RequirementsPrinted))
                    .col(big_integer(ReportTotals::FundingUsd))
                    .col(string(ReportTotals::FundingPrinted))
                    .col(big_integer(ReportTotals::UnmetUsd))
                    .col(string(ReportTotals::UnmetPrinted))
                    .col(big_integer(ReportTotals::FundedPercentHundredths))
                    .col(string(ReportTotals::FundedPercentPrinted))
                    .foreign_key(&mut fk(
                        "fk_report_totals_report",
                        (ReportTotals::Table, ReportTotals::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SectorFigures::Table)
                    .col(pk_auto(SectorFigures::Id))
                    .col(integer(SectorFigures::ReportId))
                    .col(integer(SectorFigures::SectorId))
                    .col(integer(SectorFigures::Position))
                    .col(string(SectorFigures::PrintedHeading))
                    .col(big_integer(SectorFigures::PeopleTargeted))
                    .col(string(SectorFigures::PeopleTargetedPrinted))
                    .col(big_integer(SectorFigures::PeopleReached))
                    .col(string(SectorFigures::PeopleReachedPrinted))
                    .col(big_integer(SectorFigures::ReachedPercentHundredths))
                    .col(string(SectorFigures::ReachedPercentPrinted))
                    .col(big_integer(SectorFigures::RequirementsUsd))
                    .col(string(SectorFigures::RequirementsPrinted))
                    .col(big_integer(SectorFigures::FundingUsd))
                    .col(string(SectorFigures::FundingPrinted))
                    .col(big_integer(SectorFigures::FundedPercentHundredths))
                    .col(string(SectorFigures::FundedPercentPrinted))
                    .foreign_key(&mut fk(
                        "fk_sector_figures_report",
                        (SectorFigures::Table, SectorFigures::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_sector_figures_sector",
                        (SectorFigures::Table, SectorFigures::SectorId),
                        (Sector::Table, Sector::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Share::Table)
                    .col(pk_auto(Share::Id))
                    .col(integer(Share::ReportId))
                    .col(string(Share::Dimension))
                    .col(integer(Share::Position))
                    .col(string_null(Share::Label))
                    .col(big_integer(Share::PercentHundredths))
                    .col(string(Share::PercentPrinted))
                    .col(string_null(Share::Basis))
                    .foreign_key(&mut fk(
                        "fk_share_report",
                        (Share::Table, Share::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartnerCount::Table)
                    .col(pk_auto(PartnerCount::Id))
                    .col(integer(PartnerCount::ReportId))
                    .col(string(PartnerCount::Role))
                    .col(integer(PartnerCount::Count))
                    .col(string_null(PartnerCount::FootnoteMarker))
                    .col(string(PartnerCount::Printed))
                    .foreign_key(&mut fk(
                        "fk_partner_count_report",
                        (PartnerCount::Table, PartnerCount::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Organization::Table)
                    .col(pk_auto(Organization::Id))
                    .col(string(Organization::Name))
                    .col(string_null(Organization::Acronym))
                    .col(string_null(Organization::OrgType))
                    .col(boolean(Organization::RefugeeAndMigrantLed).default(false))
                    .col(string_null(Organization::FtsId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReportOrganization::Table)
                    .col(pk_auto(ReportOrganization::Id))
                    .col(integer(ReportOrganization::ReportId))
                    .col(integer(ReportOrganization::OrganizationId))
                    .col(string(ReportOrganization::Role))
                    .foreign_key(&mut fk(
                        "fk_report_organization_report",
                        (ReportOrganization::Table, ReportOrganization::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_report_organization_organization",
                        (
                            ReportOrganization::Table,
                            ReportOrganization::OrganizationId,
                        ),
                        (Organization::Table, Organization::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NarrativeSection::Table)
                    .col(pk_auto(NarrativeSection::Id))
                    .col(integer(NarrativeSection::ReportId))
                    .col(string(NarrativeSection::Kind))
                    .col(string(NarrativeSection::Title))
                    .col(integer(NarrativeSection::Position))
                    .foreign_key(&mut fk(
                        "fk_narrative_section_report",
                        (NarrativeSection::Table, NarrativeSection::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NarrativeParagraph::Table)
                    .col(pk_auto(NarrativeParagraph::Id))
                    .col(integer(NarrativeParagraph::SectionId))
                    .col(integer(NarrativeParagraph::Position))
                    .col(text(NarrativeParagraph::Body))
                    .foreign_key(&mut fk(
                        "fk_narrative_paragraph_section",
                        (NarrativeParagraph::Table, NarrativeParagraph::SectionId),
                        (NarrativeSection::Table, NarrativeSection::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Footnote::Table)
                    .col(pk_auto(Footnote::Id))
                    .col(integer(Footnote::ReportId))
                    .col(integer(Footnote::Position))
                    .col(string(Footnote::Marker))
                    .col(text(Footnote::Body))
                    .foreign_key(&mut fk(
                        "fk_footnote_report",
                        (Footnote::Table, Footnote::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SourceLink::Table)
                    .col(pk_auto(SourceLink::Id))
                    .col(integer(SourceLink::ReportId))
                    .col(integer(SourceLink::Position))
                    .col(text(SourceLink::Url))
                    .col(string_null(SourceLink::Label))
                    .col(string(SourceLink::Placement))
                    .foreign_key(&mut fk(
                        "fk_source_link_report",
                        (SourceLink::Table, SourceLink::ReportId),
                        (Report::Table, Report::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        // One index per foreign key; the unique ones also keep a report from holding a row twice.
        let indexes = [
            index(
                "ix_country_platform",
                Country::Table,
                vec![Country::PlatformId.into_iden()],
            ),
            index(
                "ix_sector_parent",
                Sector::Table,
                vec![Sector::ParentId.into_iden()],
            ),
            index(
                "ix_report_plan",
                Report::Table,
                vec![Report::PlanId.into_iden()],
            ),
            index(
                "ix_report_platform",
                Report::Table,
                vec![Report::PlatformId.into_iden()],
            ),
            index(
                // A report is its country, plan, year and kind: importing it again replaces
                // it, and this keeps two concurrent imports from making two.
                "ux_report_country_plan_year_kind",
                Report::Table,
                vec![
                    Report::CountryId.into_iden(),
                    Report::PlanId.into_iden(),
                    Report::Year.into_iden(),
                    Report::Kind.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ux_sector_figures_report_sector",
                SectorFigures::Table,
                vec![
                    SectorFigures::ReportId.into_iden(),
                    SectorFigures::SectorId.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ix_sector_figures_sector",
                SectorFigures::Table,
                vec![SectorFigures::SectorId.into_iden()],
            ),
            index(
                "ux_share_report_dimension_position",
                Share::Table,
                vec![
                    Share::ReportId.into_iden(),
                    Share::Dimension.into_iden(),
                    Share::Position.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ux_partner_count_report_role",
                PartnerCount::Table,
                vec![
                    PartnerCount::ReportId.into_iden(),
                    PartnerCount::Role.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ix_report_organization_report",
                ReportOrganization::Table,
                vec![ReportOrganization::ReportId.into_iden()],
            ),
            index(
                "ix_report_organization_organization",
                ReportOrganization::Table,
                vec![ReportOrganization::OrganizationId.into_iden()],
            ),
            index(
                "ux_narrative_section_report_kind",
                NarrativeSection::Table,
                vec![
                    NarrativeSection::ReportId.into_iden(),
                    NarrativeSection::Kind.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ux_narrative_paragraph_section_position",
                NarrativeParagraph::Table,
                vec![
                    NarrativeParagraph::SectionId.into_iden(),
                    NarrativeParagraph::Position.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ux_footnote_report_position",
                Footnote::Table,
                vec![
                    Footnote::ReportId.into_iden(),
                    Footnote::Position.into_iden(),
                ],
            )
            .unique()
            .take(),
            index(
                "ux_source_link_report_position",
                SourceLink::Table,
                vec![
                    SourceLink::ReportId.into_iden(),
                    SourceLink::Position.into_iden(),
                ],
            )
            .unique()
            .take(),
        ];
        for stmt in indexes {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; dropping a table drops its indexes.
        let dependents: [DynIden; 11] = [
            SourceLink::Table.into_iden(),
            Footnote::Table.into_iden(),
            NarrativeParagraph::Table.into_iden(),
            NarrativeSection::Table.into_iden(),
            ReportOrganization::Table.into_iden(),
            Organization::Table.into_iden(),
            PartnerCount::Table.into_iden(),
            Share::Table.into_iden(),
            SectorFigures::Table.into_iden(),
            ReportTotals::Table.into_iden(),
            Report::Table.into_iden(),
        ];
        drop_tables(manager, dependents).await?;
        // SQLite drops a table by deleting its rows, and the sector table refers to itself
        // (RESTRICT): remove the sub-sectors before their parents go.
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(Sector::Table)
                    .and_where(Expr::col(Sector::ParentId).is_not_null())
                    .to_owned(),
            )
            .await?;
        let references: [DynIden; 4] = [
            Sector::Table.into_iden(),
            Plan::Table.into_iden(),
            Country::Table.into_iden(),
            Platform::Table.into_iden(),
        ];
        drop_tables(manager, references).await
    }
}
