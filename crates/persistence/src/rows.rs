//! Everything one report is stored as, read in one go: the before and after of a write, and a
//! dry run's preview.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, EntityTrait};

use crate::StoreError;
use crate::entities::{
    country, footnote, organization, partner_count, plan, report, report_organization,
    report_totals, sector, sector_figures, share, source_link,
};
use crate::lookups::{SectionWithParagraphs, find_in, organizations_in, sections_in};

/// One report's rows, each list in printed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRows {
    pub report: report::Model,
    pub country: Option<country::Model>,
    pub plan: Option<plan::Model>,
    pub totals: Option<report_totals::Model>,
    pub sectors: Vec<sector_figures::Model>,
    pub shares: Vec<share::Model>,
    pub partner_counts: Vec<partner_count::Model>,
    pub sections: Vec<SectionWithParagraphs>,
    pub footnotes: Vec<footnote::Model>,
    pub sources: Vec<source_link::Model>,
    pub organizations: Vec<(report_organization::Model, organization::Model)>,
    /// Sector codes by id, for the rows above.
    pub sector_codes: HashMap<i32, String>,
}

impl ReportRows {
    /// Reads every row of `report` through `db` (a transaction, to see its own writes).
    pub(crate) async fn load(
        db: &impl ConnectionTrait,
        report: report::Model,
    ) -> Result<Self, StoreError> {
        let id = [report.id];
        let country = match report.country_id {
            Some(cid) => country::Entity::find_by_id(cid).one(db).await?,
            None => None,
        };
        let plan = plan::Entity::find_by_id(report.plan_id).one(db).await?;
        let totals = report_totals::Entity::find_by_id(report.id).one(db).await?;
        let sectors = find_in::<sector_figures::Entity, _>(
            db,
            sector_figures::Column::ReportId,
            &id,
            &[sector_figures::Column::Position],
        )
        .await?;
        let shares = find_in::<share::Entity, _>(
            db,
            share::Column::ReportId,
            &id,
            &[share::Column::Dimension, share::Column::Position],
        )
        .await?;
        let partner_counts = find_in::<partner_count::Entity, _>(
            db,
            partner_count::Column::ReportId,
            &id,
            &[partner_count::Column::Id],
        )
        .await?;
        let footnotes = find_in::<footnote::Entity, _>(
            db,
            footnote::Column::ReportId,
            &id,
            &[footnote::Column::Position],
        )
        .await?;
        let sources = find_in::<source_link::Entity, _>(
            db,
            source_link::Column::ReportId,
            &id,
            &[source_link::Column::Position],
        )
        .await?;
        let sections = sections_in(db, &id).await?;
        let organizations = organizations_in(db, &id).await?;
        let sector_ids: Vec<i32> = sectors.iter().map(|s| s.sector_id).collect();
        let sector_codes = find_in::<sector::Entity, _>(db, sector::Column::Id, &sector_ids, &[])
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        Ok(Self {
            report,
            country,
            plan,
            totals,
            sectors,
            shares,
            partner_counts,
            sections,
            footnotes,
            sources,
            organizations,
            sector_codes,
        })
    }

    /// The code of a row's sector (`?` only for a corrupt store).
    pub fn sector_code(&self, sector_id: i32) -> &str {
        self.sector_codes
            .get(&sector_id)
            .map_or("?", String::as_str)
    }
}
