//! A report and everything it prints.

use super::*;

/// Where a report's figures came from.
#[derive(SimpleObject)]
pub struct Provenance {
    /// File name of the imported text.
    source_name: String,
    /// SHA-256 of the imported file, lower-case hex.
    sha256: String,
    /// When it was imported (RFC 3339, UTC).
    imported_at: String,
}

/// A published report: every figure, share, count, section and link it prints.
pub struct Report(pub Row<report::Model>);

/// The child tables a selection of reports asks for; `report` looks ahead at a `Report`'s
/// fields (through fragments too).
pub(crate) fn child_tables(report: &Lookahead<'_>) -> ChildTables {
    const FIELDS: [(&str, ChildTables); 10] = [
        ("sectors", ChildTables::SECTORS),
        ("sector", ChildTables::SECTORS),
        ("ageGender", ChildTables::SHARES),
        ("populationTypes", ChildTables::SHARES),
        ("partnerCounts", ChildTables::PARTNER_COUNTS),
        ("partners", ChildTables::ORGANIZATIONS),
        ("donors", ChildTables::ORGANIZATIONS),
        ("sections", ChildTables::SECTIONS),
        ("footnotes", ChildTables::FOOTNOTES),
        ("sources", ChildTables::SOURCES),
    ];
    let tables = FIELDS
        .into_iter()
        .filter(|(name, _)| report.field(name).exists())
        .fold(ChildTables::NONE, |all, (_, table)| all | table);
    let row_sectors = ["sectors", "sector"]
        .into_iter()
        .any(|rows| report.field(rows).field("sector").exists());
    match row_sectors {
        true => tables | ChildTables::ROW_SECTORS,
        false => tables,
    }
}

/// Reads `tables` for each report of `ids` as one batch, before their fields resolve: the
/// loader of each table then takes its rows instead of running a statement of its own (see
/// `ChildrenOf`). Only where the store does that (on Postgres, one or two reports, two
/// statements or more saved; see `Store::reads_children_together`): otherwise each table is
/// read by its own loader, one statement for every report of the level, and no loader round
/// is spent asking. Never fails a field (see below).
pub(crate) async fn load_children(
    ctx: &Context<'_>,
    ids: Vec<i32>,
    tables: ChildTables,
) -> Result<()> {
    let together = ctx
        .data::<Store>()
        .is_ok_and(|store| store.reads_children_together(tables, ids.len()));
    if !together {
        return Ok(());
    }
    // A key per report and table, so a table kept already (the row cache) is not read again
    // for a query that asks for a different set.
    let read = loader(ctx)?
        .load_many(
            ids.into_iter()
                .flat_map(|id| tables.each().map(move |table| ChildrenOf((id, table)))),
        )
        .await;
    // A failure (logged by the loader) fails no field: each table's loader then reads for
    // itself, and only a field whose own read fails has an error, as before.
    drop(read);
    Ok(())
}

#[Object]
impl Report {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn year(&self) -> i32 {
        self.0.year
    }

    async fn kind(&self) -> Result<ReportKind> {
        Ok(ReportKind::from_stored(&self.0.kind)?)
    }

    /// The title line as printed ("END-YEAR REPORT 2023").
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Null for a regional report.
    async fn country(&self, ctx: &Context<'_>) -> Result<Option<Country>> {
        let Some(id) = self.0.country_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CountryById(id)).await?.map(Country))
    }

    async fn platform(&self, ctx: &Context<'_>) -> Result<Option<Platform>> {
        let Some(id) = self.0.platform_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(PlatformById(id)).await?.map(Platform))
    }

    async fn plan(&self, ctx: &Context<'_>) -> Result<Plan> {
        loader(ctx)?
            .load_one(PlanById(self.0.plan_id))
            .await?
            .map(Plan)
            .ok_or_else(|| ApiError::corrupt("report plan", &self.0.plan_id.to_string()).into())
    }

    /// The report-wide totals as printed; never the sum of the sector rows.
    async fn totals(&self, ctx: &Context<'_>) -> Result<ReportTotals> {
        loader(ctx)?
            .load_one(TotalsOfReport(self.0.id))
            .await?
            .map(ReportTotals)
            .ok_or_else(|| ApiError::corrupt("report totals", &self.0.id.to_string()).into())
    }

    /// Every printed row of the key-figures table, in printed order, sub-sectors included.
    async fn sectors(&self, ctx: &Context<'_>) -> Result<Vec<SectorFigures>> {
        SectorFigures::list(ctx, rows(ctx, SectorFiguresOfReport(self.0.id)).await?).await
    }

    /// The row of one sector, by code (`EDU`, `PRO-GBV`; letter case does not matter).
    async fn sector(&self, ctx: &Context<'_>, code: String) -> Result<Option<SectorFigures>> {
        let rows = rows(ctx, SectorFiguresOfReport(self.0.id)).await?;
        let Some(sector) = loader(ctx)?
            .load_one(crate::loaders::SectorByCode(code.to_ascii_uppercase()))
            .await?
        else {
            return Ok(None);
        };
        Ok(rows
            .into_iter()
            .find(|r| r.sector_id == sector.id)
            .map(|row| SectorFigures::with_sector(row, sector)))
    }

    /// The age and gender percentages in printed order. Their labels were icons in the PDF
    /// and are not in the text, so `label` is null: never guessed.
    async fn age_gender(&self, ctx: &Context<'_>) -> Result<Vec<Share>> {
        self.shares(ctx, ShareDimension::AgeGender).await
    }

    /// Shares of people by population type; their basis is people targeted (they add up to
    /// reached ÷ targeted).
    async fn population_types(&self, ctx: &Context<'_>) -> Result<Vec<Share>> {
        self.shares(ctx, ShareDimension::PopulationType).await
    }

    /// Partner and donor counts as published. Never sum them.
    async fn partner_counts(&self, ctx: &Context<'_>) -> Result<Vec<PartnerCount>> {
        Ok(rows(ctx, PartnerCountsOfReport(self.0.id))
            .await?
            .into_iter()
            .map(PartnerCount)
            .collect())
    }

    /// Partner organizations named by the report (the Peru text names none, only counts).
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        self.organizations(ctx, OrganizationRole::Partner).await
    }

    /// Donor organizations named by the report (the Peru text names none, only a count).
    async fn donors(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        self.organizations(ctx, OrganizationRole::Donor).await
    }

    async fn sections(&self, ctx: &Context<'_>) -> Result<Vec<NarrativeSection>> {
        Ok(rows(ctx, SectionsOfReport(self.0.id))
            .await?
            .into_iter()
            .map(NarrativeSection)
            .collect())
    }

    async fn footnotes(&self, ctx: &Context<'_>) -> Result<Vec<Footnote>> {
        Ok(rows(ctx, FootnotesOfReport(self.0.id))
            .await?
            .into_iter()
            .map(Footnote)
            .collect())
    }

    /// Links printed in the report, in printed order.
    async fn sources(&self, ctx: &Context<'_>) -> Result<Vec<SourceLink>> {
        Ok(rows(ctx, SourcesOfReport(self.0.id))
            .await?
            .into_iter()
            .map(SourceLink)
            .collect())
    }

    /// The date the funding figures were taken (1 April 2024 for Peru 2023).
    async fn funding_as_of(&self) -> Option<Date> {
        self.0.funding_as_of.map(Date)
    }

    /// The source of the funding figures ("Financial Tracking Service (FTS)").
    async fn funding_source(&self) -> Option<&str> {
        self.0.funding_source.as_deref()
    }

    /// The footnote marker printed beside the funding received ("*").
    async fn funding_footnote_marker(&self) -> Option<&str> {
        self.0.funding_footnote_marker.as_deref()
    }

    /// True for generated load-test data; published reports are never synthetic.
    async fn synthetic(&self) -> bool {
        self.0.synthetic
    }

    /// The store revision of the report's last change (0: none recorded). Every write takes
    /// the revision it is based on and fails with `CONFLICT` when it is no longer current.
    async fn revision(&self) -> Result<i32> {
        revision(self.0.revision)
    }

    /// Every recorded change to the report, newest first: who, when, each value before and
    /// after. A re-import is one change; what it replaced stays here.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<HistoryConnection> {
        history_page(ctx, HistoryOwner::Report, self.0.id, first, after).await
    }

    async fn provenance(&self) -> Provenance {
        Provenance {
            source_name: self.0.source_name.clone(),
            sha256: self.0.source_sha256.clone(),
            imported_at: self.0.imported_at.to_rfc3339(),
        }
    }
}

impl Report {
    async fn shares(&self, ctx: &Context<'_>, dimension: ShareDimension) -> Result<Vec<Share>> {
        Ok(rows(ctx, SharesOfReport(self.0.id))
            .await?
            .into_iter()
            .filter(|s| s.dimension == dimension.as_stored())
            .map(Share)
            .collect())
    }

    async fn organizations(
        &self,
        ctx: &Context<'_>,
        role: OrganizationRole,
    ) -> Result<Vec<Organization>> {
        Ok(rows(ctx, OrganizationsOfReport(self.0.id))
            .await?
            .into_iter()
            .filter(|(link, _)| link.role == role.as_stored())
            .map(|(_, organization)| Organization(organization))
            .collect())
    }
}

/// The totals exactly as printed.
#[derive(SimpleObject)]
pub struct PrintedTotals {
    people_in_need: String,
    people_targeted: String,
    people_reached: String,
    requirements_usd: String,
    funding_usd: String,
    unmet_usd: String,
    funded_percent: String,
}

pub struct ReportTotals(pub Row<report_totals::Model>);

#[Object]
impl ReportTotals {
    async fn people_in_need(&self) -> Result<i32> {
        people(self.0.people_in_need)
    }

    async fn people_targeted(&self) -> Result<i32> {
        people(self.0.people_targeted)
    }

    async fn people_reached(&self) -> Result<i32> {
        people(self.0.people_reached)
    }

    /// Total requirements, whole US dollars.
    async fn requirements_usd(&self) -> f64 {
        money(self.0.requirements_usd)
    }

    /// Funding received, whole US dollars.
    async fn funding_usd(&self) -> f64 {
        money(self.0.funding_usd)
    }

    /// Unmet requirements as printed, whole US dollars.
    async fn unmet_usd(&self) -> f64 {
        money(self.0.unmet_usd)
    }

    /// Percentage of the requirements funded, as printed.
    async fn funded_percent(&self) -> f64 {
        percent(self.0.funded_percent_hundredths)
    }

    /// Each figure's printed text, for provenance.
    async fn printed(&self) -> PrintedTotals {
        let t = &self.0;
        PrintedTotals {
            people_in_need: t.people_in_need_printed.clone(),
            people_targeted: t.people_targeted_printed.clone(),
            people_reached: t.people_reached_printed.clone(),
            requirements_usd: t.requirements_printed.clone(),
            funding_usd: t.funding_printed.clone(),
            unmet_usd: t.unmet_printed.clone(),
            funded_percent: t.funded_percent_printed.clone(),
        }
    }
}

/// One row's figures exactly as printed.
#[derive(SimpleObject)]
pub struct PrintedSectorFigures {
    heading: String,
    people_targeted: String,
    people_reached: String,
    reached_percent: String,
    requirements_usd: String,
    funding_usd: String,
    funded_percent: String,
}

/// One row of the key-figures-by-sector table, with its sector when it was read with the list
/// the row came in.
pub struct SectorFigures {
    row: Row<sector_figures::Model>,
    sector: Option<Row<sector::Model>>,
}

impl SectorFigures {
    /// The rows of one list, each with its sector when the selection asks for it: the sectors
    /// of the whole list are looked up at once, so no row waits on a loader of its own. A look-up
    /// per row (1,326 on the dashboard) kept every row's field futures alive across the loader's
    /// batch and cost half the dashboard's server CPU.
    pub(crate) async fn list(
        ctx: &Context<'_>,
        rows: Vec<Row<sector_figures::Model>>,
    ) -> Result<Vec<SectorFigures>> {
        if rows.is_empty() || !ctx.look_ahead().field("sector").exists() {
            return Ok(rows
                .into_iter()
                .map(|row| SectorFigures { row, sector: None })
                .collect());
        }
        let sectors = loader(ctx)?
            .load_many(rows.iter().map(|row| SectorById(row.sector_id)))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                // A sector missing here stays `None`: the field then reads it for itself and
                // reports the row as corrupt, as a row read alone would.
                let sector = sectors.get(&SectorById(row.sector_id)).cloned();
                SectorFigures { row, sector }
            })
            .collect())
    }

    pub(crate) fn with_sector(row: Row<sector_figures::Model>, sector: Row<sector::Model>) -> Self {
        SectorFigures {
            row,
            sector: Some(sector),
        }
    }
}

#[Object]
impl SectorFigures {
    async fn sector(&self, ctx: &Context<'_>) -> Result<Sector> {
        if let Some(sector) = &self.sector {
            return Ok(Sector(sector.clone()));
        }
        loader(ctx)?
            .load_one(SectorById(self.row.sector_id))
            .await?
            .map(Sector)
            .ok_or_else(|| ApiError::corrupt("sector", &self.row.sector_id.to_string()).into())
    }

    async fn people_targeted(&self) -> Result<Option<i32>> {
        people(self.row.people_targeted).map(Some)
    }

    async fn people_reached(&self) -> Result<Option<i32>> {
        people(self.row.people_reached).map(Some)
    }

    /// % reached as printed (computed from unrounded data by the publisher).
    async fn reached_percent(&self) -> Option<f64> {
        Some(percent(self.row.reached_percent_hundredths))
    }

    async fn requirements_usd(&self) -> Option<f64> {
        Some(money(self.row.requirements_usd))
    }

    async fn funding_usd(&self) -> Option<f64> {
        Some(money(self.row.funding_usd))
    }

    /// % funded as printed; over 100 is real (Nutrition, 101.5%).
    async fn funded_percent(&self) -> Option<f64> {
        Some(percent(self.row.funded_percent_hundredths))
    }

    /// reached ÷ targeted from the rounded printed figures, to one decimal; may differ from
    /// `reachedPercent` by rounding.
    async fn computed_reached_percent(&self) -> Option<f64> {
        computed_percent(self.row.people_reached, self.row.people_targeted)
    }

    /// funding ÷ requirements from the rounded printed figures, to one decimal.
    async fn computed_funded_percent(&self) -> Option<f64> {
        computed_percent(self.row.funding_usd, self.row.requirements_usd)
    }

    async fn printed(&self) -> PrintedSectorFigures {
        let f = &self.row;
        PrintedSectorFigures {
            heading: f.printed_heading.clone(),
            people_targeted: f.people_targeted_printed.clone(),
            people_reached: f.people_reached_printed.clone(),
            reached_percent: f.reached_percent_printed.clone(),
            requirements_usd: f.requirements_printed.clone(),
            funding_usd: f.funding_printed.clone(),
            funded_percent: f.funded_percent_printed.clone(),
        }
    }
}

/// One printed percentage of a breakdown.
pub struct Share(pub Row<share::Model>);

#[Object]
impl Share {
    async fn dimension(&self) -> Result<ShareDimension> {
        Ok(ShareDimension::from_stored(&self.0.dimension)?)
    }

    /// 1-based printed order.
    async fn position(&self) -> i32 {
        self.0.position
    }

    /// The printed label; null where the document prints none.
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }

    async fn percent(&self) -> f64 {
        percent(self.0.percent_hundredths)
    }

    async fn printed(&self) -> &str {
        &self.0.percent_printed
    }

    /// What the percentage is of; null where the document does not say.
    async fn basis(&self) -> Result<Option<ShareBasis>> {
        Ok(self
            .0
            .basis
            .as_deref()
            .map(ShareBasis::from_stored)
            .transpose()?)
    }
}

pub struct PartnerCount(pub Row<partner_count::Model>);

#[Object]
impl PartnerCount {
    async fn role(&self) -> Result<PartnerRole> {
        Ok(PartnerRole::from_stored(&self.0.role)?)
    }

    async fn count(&self) -> i32 {
        self.0.count
    }

    /// The footnote marker printed beside the count ("**" on implementing partners).
    async fn footnote_marker(&self) -> Option<&str> {
        self.0.footnote_marker.as_deref()
    }

    /// The line the count was read from.
    async fn printed(&self) -> &str {
        &self.0.printed
    }
}

pub struct NarrativeSection(pub Row<SectionWithParagraphs>);

#[Object]
impl NarrativeSection {
    async fn kind(&self) -> Result<SectionKind> {
        Ok(SectionKind::from_stored(&self.0.section.kind)?)
    }

    async fn title(&self) -> &str {
        &self.0.section.title
    }

    /// Paragraphs in printed order, with paragraphs the PDF's columns broke joined again.
    async fn paragraphs(&self) -> &[String] {
        &self.0.paragraphs
    }
}

pub struct Footnote(pub Row<footnote::Model>);

#[Object]
impl Footnote {
    /// "*" or "**".
    async fn marker(&self) -> &str {
        &self.0.marker
    }

    /// The note's text; its paragraphs are separated by a blank line.
    async fn text(&self) -> &str {
        &self.0.body
    }
}

pub struct SourceLink(pub Row<source_link::Model>);

#[Object]
impl SourceLink {
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The printed label; null where the report prints a bare URL.
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }

    async fn placement(&self) -> Result<LinkPlacement> {
        Ok(LinkPlacement::from_stored(&self.0.placement)?)
    }
}
