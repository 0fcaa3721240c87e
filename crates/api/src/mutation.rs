//! The root `Mutation`: what partner systems maintain. Every write needs a token, takes the
//! revision it is based on, and goes through the store's one write path
//! ([`plangraph_persistence::Store::write`]); inputs are checked by the domain's types first, so
//! a bad value is refused with its code before anything is written.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use plangraph_domain::edit::{
    self, EditError, NewOrganization, OrganizationPatch, ReportEdit, SectorFiguresPatch,
    ShareEntry, Text, TotalsPatch,
};
use plangraph_domain::importer::{self, ImportRequest};
use plangraph_domain::report as domain;
use plangraph_persistence::{
    ImportOptions, ReportImport, ReportRows, Store, WriteOutcome, WriteRequest,
};

use crate::auth;
use crate::enums::{
    LinkPlacement, OrganizationRole, PartnerRole, SectionKind, ShareBasis, ShareDimension,
};
use crate::error::ApiError;
use crate::loaders::{
    CountryById, FootnotesOfReport, OrganizationById, OrganizationsOfReport, PartnerCountsOfReport,
    PlanById, ReportById, SectionsOfReport, SectorFiguresOfReport, SharesOfReport, SourcesOfReport,
    TotalsOfReport,
};
use crate::loaders::{LoaderSlot, fresh_loaders, linked, loader, shared};
use crate::scalars::revision;
use crate::types::{Change, FieldChangeObject, Organization, Report};

/// Most entries a list-replacing write takes (paragraphs of a section, footnotes, sources,
/// shares of a breakdown).
pub const MAX_LIST: usize = 500;

/// Longest `fileName` kept for an imported report.
const MAX_FILE_NAME: usize = 255;

/// Limits of the write API, set once per server.
#[derive(Debug, Clone, Copy)]
pub struct WriteLimits {
    /// Largest report text `importReport` takes.
    pub max_report_bytes: usize,
}

impl Default for WriteLimits {
    fn default() -> Self {
        Self {
            max_report_bytes: importer::DEFAULT_MAX_REPORT_BYTES,
        }
    }
}

/// Figures as printed ("40.1 K", "$6.90 M", "36.2%"); absent figures stay as they are.
#[derive(InputObject, Debug, Default)]
pub struct TotalsInput {
    people_in_need: Option<String>,
    people_targeted: Option<String>,
    people_reached: Option<String>,
    requirements_usd: Option<String>,
    funding_usd: Option<String>,
    unmet_usd: Option<String>,
    funded_percent: Option<String>,
}

/// One row's figures as printed; absent figures stay as they are. A row the report does not
/// have yet needs all six.
#[derive(InputObject, Debug, Default)]
pub struct SectorFiguresInput {
    people_targeted: Option<String>,
    people_reached: Option<String>,
    reached_percent: Option<String>,
    requirements_usd: Option<String>,
    funding_usd: Option<String>,
    funded_percent: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct ShareInput {
    /// As printed: "30.9%".
    percent: String,
    label: Option<String>,
    basis: Option<ShareBasis>,
}

#[derive(InputObject, Debug)]
pub struct FootnoteInput {
    /// "*", "**".
    marker: String,
    text: String,
}

#[derive(InputObject, Debug)]
pub struct SourceInput {
    url: String,
    label: Option<String>,
    #[graphql(default_with = "LinkPlacement::EndNotes")]
    placement: LinkPlacement,
}

#[derive(InputObject, Debug)]
pub struct OrganizationInput {
    name: String,
    acronym: Option<String>,
    #[graphql(name = "type")]
    org_type: Option<String>,
    #[graphql(default)]
    refugee_and_migrant_led: bool,
    /// Its id in OCHA's Financial Tracking Service; unique among organisations.
    fts_id: Option<String>,
}

/// Changes to an organisation: absent fields stay, an empty string clears an optional one.
#[derive(InputObject, Debug)]
pub struct OrganizationPatchInput {
    name: Option<String>,
    acronym: Option<String>,
    #[graphql(name = "type")]
    org_type: Option<String>,
    refugee_and_migrant_led: Option<bool>,
    fts_id: Option<String>,
}

/// What a write to a report did.
pub struct ReportWrite(WriteOutcome);

#[Object]
impl ReportWrite {
    /// False when the values were already as sent: nothing was recorded.
    async fn changed(&self) -> bool {
        self.0.change.is_some()
    }

    /// The report's revision now.
    async fn revision(&self) -> Result<i32> {
        revision(self.0.revision)
    }

    /// The report as it is now.
    async fn report(&self, ctx: &Context<'_>) -> Result<Option<Report>> {
        let Some(id) = self.0.report_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(ReportById(id)).await?.map(Report))
    }

    /// The history entry; null when nothing changed.
    async fn change(&self) -> Option<Change> {
        self.0.change.clone().map(Change::new)
    }
}

/// What a write to an organisation did.
pub struct OrganizationWrite(WriteOutcome);

#[Object]
impl OrganizationWrite {
    async fn changed(&self) -> bool {
        self.0.change.is_some()
    }

    async fn revision(&self) -> Result<i32> {
        revision(self.0.revision)
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(OrganizationById(id))
            .await?
            .map(Organization))
    }

    async fn change(&self) -> Option<Change> {
        self.0.change.clone().map(Change::new)
    }
}

/// A consistency check the report fails (the figures are stored as printed all the same).
#[derive(SimpleObject, Debug)]
pub struct ImportWarning {
    /// REACHED_PERCENT_MISMATCH, FUNDED_PERCENT_MISMATCH, UNMET_MISMATCH or
    /// POPULATION_SHARES_MISMATCH.
    code: String,
    message: String,
    line: i32,
}

/// What an import did or, on a dry run, would do.
pub struct ImportResult {
    pub(crate) outcome: WriteOutcome,
    pub(crate) dry_run: bool,
    pub(crate) warnings: Vec<ImportWarning>,
}

#[Object]
impl ImportResult {
    async fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// False when the stored report already read exactly so (or on a dry run).
    async fn changed(&self) -> bool {
        self.outcome.change.is_some()
    }

    /// True when an earlier import of the same report is (or would be) replaced.
    async fn replaced(&self) -> bool {
        self.outcome.replaced
    }

    /// The report's revision now (on a dry run: the stored one, 0 for a new report).
    async fn revision(&self) -> Result<i32> {
        revision(self.outcome.revision)
    }

    /// The report as stored now; on a dry run, as it would be stored (a new report's id is
    /// then provisional).
    async fn report(&self, ctx: &Context<'_>) -> Result<Option<Report>> {
        let id = match &self.outcome.preview {
            Some(rows) => Some(rows.report.id),
            None => self.outcome.report_id,
        };
        let Some(id) = id else { return Ok(None) };
        Ok(loader(ctx)?.load_one(ReportById(id)).await?.map(Report))
    }

    /// The history entry; null on a dry run or when nothing changed.
    async fn change(&self) -> Option<Change> {
        self.outcome.change.clone().map(Change::new)
    }

    /// Every value the import changes, before and after.
    async fn changes(&self) -> Vec<FieldChangeObject> {
        self.outcome
            .fields
            .iter()
            .map(FieldChangeObject::from)
            .collect()
    }

    /// Stored values the import removes, cuts short, or drops from their list (a paragraph,
    /// footnote or source whose text is no longer there); refused without `allowRemovals`.
    async fn removals(&self) -> Vec<FieldChangeObject> {
        self.outcome
            .removals
            .iter()
            .map(FieldChangeObject::from)
            .collect()
    }

    async fn warnings(&self) -> &[ImportWarning] {
        &self.warnings
    }
}

fn report_id(id: &ID) -> Result<i32, ApiError> {
    id.parse::<i32>()
        .map_err(|_| ApiError::BadUserInput(format!("'{}' is not a report id", truncated(id))))
}

fn organization_id(id: &ID) -> Result<i32, ApiError> {
    id.parse::<i32>().map_err(|_| {
        ApiError::BadUserInput(format!("'{}' is not an organization id", truncated(id)))
    })
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

pub(crate) fn expected(revision: i32) -> i64 {
    i64::from(revision)
}

fn bounded<T>(items: &[T], what: &str) -> Result<(), ApiError> {
    if items.len() > MAX_LIST {
        Err(ApiError::BadUserInput(format!(
            "at most {MAX_LIST} {what} per write, got {}",
            items.len()
        )))
    } else {
        Ok(())
    }
}

fn opt<T>(
    raw: &Option<String>,
    parse: impl Fn(&str) -> Result<T, EditError>,
) -> Result<Option<T>, EditError> {
    raw.as_deref().map(parse).transpose()
}

fn section_kind(kind: SectionKind) -> domain::SectionKind {
    match kind {
        SectionKind::Situation => domain::SectionKind::Situation,
        SectionKind::Response => domain::SectionKind::Response,
        SectionKind::LessonsLearned => domain::SectionKind::LessonsLearned,
    }
}

fn partner_role(role: PartnerRole) -> domain::PartnerRole {
    match role {
        PartnerRole::Reporting => domain::PartnerRole::Reporting,
        PartnerRole::Implementing => domain::PartnerRole::Implementing,
        PartnerRole::RefugeeAndMigrantLed => domain::PartnerRole::RefugeeAndMigrantLed,
        PartnerRole::Donor => domain::PartnerRole::Donor,
    }
}

fn share_dimension(d: ShareDimension) -> domain::ShareDimension {
    match d {
        ShareDimension::AgeGender => domain::ShareDimension::AgeGender,
        ShareDimension::PopulationType => domain::ShareDimension::PopulationType,
    }
}

fn share_basis(b: ShareBasis) -> domain::ShareBasis {
    match b {
        ShareBasis::PeopleTargeted => domain::ShareBasis::PeopleTargeted,
        ShareBasis::PeopleReached => domain::ShareBasis::PeopleReached,
    }
}

fn link_placement(p: LinkPlacement) -> domain::LinkPlacement {
    match p {
        LinkPlacement::Footnotes => domain::LinkPlacement::Footnotes,
        LinkPlacement::EndNotes => domain::LinkPlacement::EndNotes,
    }
}

fn organization_role(r: OrganizationRole) -> edit::OrganizationRole {
    match r {
        OrganizationRole::Partner => edit::OrganizationRole::Partner,
        OrganizationRole::Donor => edit::OrganizationRole::Donor,
    }
}

pub(crate) fn store<'a>(ctx: &Context<'a>) -> Result<&'a Store, ApiError> {
    ctx.data::<Store>().map_err(|_| ApiError::Internal {
        store_code: "STORE_MISSING",
    })
}

/// After a write, what the rest of the request reads must come from the store as it is now.
pub(crate) fn renew_loaders(ctx: &Context<'_>) -> Result<(), ApiError> {
    let slot = ctx.data::<LoaderSlot>().map_err(|_| ApiError::Internal {
        store_code: "LOADERS_MISSING",
    })?;
    slot.set(fresh_loaders(store(ctx)?));
    Ok(())
}

/// Runs a resolver body whose errors are [`ApiError`]s, so every `?` keeps its stable code
/// (a plain `?` into `async_graphql::Error` would turn a displayable error into a message
/// without one).
pub(crate) async fn api<T>(
    body: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T> {
    body.await.map_err(Into::into)
}

/// Every report edit, one way: the token checked first, then the edit built from the inputs
/// (a bad value refused with its code, nothing written), then written through the store's one
/// write path, then the loaders renewed so the rest of the request reads the report as it is
/// now.
async fn report_edit(
    ctx: &Context<'_>,
    report: &ID,
    expected_revision: i32,
    edit: impl FnOnce() -> Result<ReportEdit, ApiError>,
) -> Result<ReportWrite> {
    api(async move {
        let actor = auth::actor(ctx).await?;
        let edit = edit()?;
        let outcome = store(ctx)?
            .write(
                &actor,
                WriteRequest::Edit {
                    report_id: report_id(report)?,
                    expected_revision: expected(expected_revision),
                    edit,
                },
            )
            .await?;
        renew_loaders(ctx)?;
        Ok(ReportWrite(outcome))
    })
    .await
}

/// A dry run's rows, served to the rest of the request as if stored.
pub(crate) async fn serve_preview(ctx: &Context<'_>, rows: &ReportRows) -> Result<(), ApiError> {
    let loaders = fresh_loaders(store(ctx)?);
    let id = rows.report.id;
    loaders
        .feed_one(ReportById(id), Arc::new(rows.report.clone()))
        .await;
    if let Some(country) = &rows.country {
        loaders
            .feed_one(CountryById(country.id), Arc::new(country.clone()))
            .await;
    }
    if let Some(plan) = &rows.plan {
        loaders
            .feed_one(PlanById(plan.id), Arc::new(plan.clone()))
            .await;
    }
    if let Some(totals) = &rows.totals {
        loaders
            .feed_one(TotalsOfReport(id), Arc::new(totals.clone()))
            .await;
    }
    loaders
        .feed_one(
            SectorFiguresOfReport(id),
            shared(rows.sectors.iter().cloned()),
        )
        .await;
    loaders
        .feed_one(SharesOfReport(id), shared(rows.shares.iter().cloned()))
        .await;
    loaders
        .feed_one(
            PartnerCountsOfReport(id),
            shared(rows.partner_counts.iter().cloned()),
        )
        .await;
    loaders
        .feed_one(SectionsOfReport(id), shared(rows.sections.iter().cloned()))
        .await;
    loaders
        .feed_one(
            FootnotesOfReport(id),
            shared(rows.footnotes.iter().cloned()),
        )
        .await;
    loaders
        .feed_one(SourcesOfReport(id), shared(rows.sources.iter().cloned()))
        .await;
    loaders
        .feed_one(
            OrganizationsOfReport(id),
            linked(rows.organizations.iter().cloned()),
        )
        .await;
    ctx.data::<LoaderSlot>()
        .map_err(|_| ApiError::Internal {
            store_code: "LOADERS_MISSING",
        })?
        .set(loaders);
    Ok(())
}

/// The root `Mutation`: the report and organisation writes below, and the document imports
/// of [`crate::exchange_mutation`].
#[derive(async_graphql::MergedObject, Debug, Default)]
pub struct Mutation(ReportMutation, crate::exchange_mutation::ExchangeMutation);

/// Writes to reports and organisations, one field each.
#[derive(Debug, Default)]
pub struct ReportMutation;

#[Object]
impl ReportMutation {
    /// Replaces report-wide totals; absent figures stay.
    async fn update_totals(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        totals: TotalsInput,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let t = &totals;
            let patch = TotalsPatch {
                people_in_need: opt(&t.people_in_need, |v| edit::people("peopleInNeed", v))?,
                people_targeted: opt(&t.people_targeted, |v| edit::people("peopleTargeted", v))?,
                people_reached: opt(&t.people_reached, |v| edit::people("peopleReached", v))?,
                requirements: opt(&t.requirements_usd, |v| edit::usd("requirementsUsd", v))?,
                funding_received: opt(&t.funding_usd, |v| edit::usd("fundingUsd", v))?,
                unmet: opt(&t.unmet_usd, |v| edit::usd("unmetUsd", v))?,
                funded_percent: opt(&t.funded_percent, |v| edit::percent("fundedPercent", v))?,
            };
            Ok(ReportEdit::Totals(patch))
        })
        .await
    }

    /// Updates one sector's row, or adds it (all six figures needed then).
    async fn set_sector_figures(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        sector_code: String,
        figures: SectorFiguresInput,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let sector = edit::sector(&sector_code)?;
            let f = &figures;
            let patch = SectorFiguresPatch {
                people_targeted: opt(&f.people_targeted, |v| edit::people("peopleTargeted", v))?,
                people_reached: opt(&f.people_reached, |v| edit::people("peopleReached", v))?,
                reached_percent: opt(&f.reached_percent, |v| edit::percent("reachedPercent", v))?,
                requirements: opt(&f.requirements_usd, |v| edit::usd("requirementsUsd", v))?,
                funding: opt(&f.funding_usd, |v| edit::usd("fundingUsd", v))?,
                funded_percent: opt(&f.funded_percent, |v| edit::percent("fundedPercent", v))?,
            };
            Ok(ReportEdit::SectorFigures { sector, patch })
        })
        .await
    }

    /// Removes one sector's row from the report.
    async fn remove_sector_figures(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        sector_code: String,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let sector = edit::sector(&sector_code)?;
            Ok(ReportEdit::RemoveSectorFigures { sector })
        })
        .await
    }

    /// Replaces one breakdown's percentages, in the order given.
    async fn set_shares(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        dimension: ShareDimension,
        shares: Vec<ShareInput>,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            bounded(&shares, "shares")?;
            let shares = shares
                .iter()
                .map(|s| {
                    Ok(ShareEntry {
                        label: Text::optional("share label", s.label.as_deref())?.flatten(),
                        percent: edit::percent("percent", &s.percent)?,
                        basis: s.basis.map(share_basis),
                    })
                })
                .collect::<Result<Vec<_>, EditError>>()?;
            Ok(ReportEdit::Shares {
                dimension: share_dimension(dimension),
                shares,
            })
        })
        .await
    }

    /// Sets one published count of partners or donors (never summed with the others).
    async fn set_partner_count(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        role: PartnerRole,
        count: i32,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let count = edit::count("count", i64::from(count))?;
            Ok(ReportEdit::PartnerCount {
                role: partner_role(role),
                count,
            })
        })
        .await
    }

    /// Adds a narrative section or replaces its title (when given) and all its paragraphs.
    async fn set_section(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        kind: SectionKind,
        title: Option<String>,
        paragraphs: Vec<String>,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            bounded(&paragraphs, "paragraphs")?;
            let title = title
                .as_deref()
                .map(|t| Text::parse("title", t))
                .transpose()?;
            let paragraphs = paragraphs
                .iter()
                .map(|p| Text::parse("paragraph", p))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ReportEdit::Section {
                kind: section_kind(kind),
                title,
                paragraphs,
            })
        })
        .await
    }

    /// Replaces paragraph `position` (1-based) of a section, or appends one at one past the
    /// last.
    async fn set_paragraph(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        kind: SectionKind,
        position: i32,
        text: String,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let position = u32::try_from(position).map_err(|_| {
                ApiError::BadUserInput(format!("position {position} is not 1 or more"))
            })?;
            let text = Text::parse("paragraph", &text)?;
            Ok(ReportEdit::Paragraph {
                kind: section_kind(kind),
                position,
                text,
            })
        })
        .await
    }

    async fn remove_section(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        kind: SectionKind,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            Ok(ReportEdit::RemoveSection {
                kind: section_kind(kind),
            })
        })
        .await
    }

    /// Replaces the report's footnotes, in the order given.
    async fn set_footnotes(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        footnotes: Vec<FootnoteInput>,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            bounded(&footnotes, "footnotes")?;
            let notes = footnotes
                .iter()
                .map(|f| edit::footnote(&f.marker, &f.text))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ReportEdit::Footnotes(notes))
        })
        .await
    }

    /// Replaces the report's cited links, in the order given.
    async fn set_sources(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        sources: Vec<SourceInput>,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            bounded(&sources, "sources")?;
            let links = sources
                .iter()
                .map(|s| edit::source(&s.url, s.label.as_deref(), link_placement(s.placement)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ReportEdit::Sources(links))
        })
        .await
    }

    /// Names an organisation as one of the report's partners or donors.
    async fn link_organization(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        organization_id: ID,
        role: OrganizationRole,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let organization_id = self::organization_id(&organization_id)?;
            Ok(ReportEdit::LinkOrganization {
                organization_id,
                role: organization_role(role),
            })
        })
        .await
    }

    async fn unlink_organization(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        expected_revision: i32,
        organization_id: ID,
        role: OrganizationRole,
    ) -> Result<ReportWrite> {
        report_edit(ctx, &report_id, expected_revision, || {
            let organization_id = self::organization_id(&organization_id)?;
            Ok(ReportEdit::UnlinkOrganization {
                organization_id,
                role: organization_role(role),
            })
        })
        .await
    }

    /// Adds an organisation (an admin token: organisations are shared by every country's
    /// reports, and an FTS id, once taken, belongs to one of them).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        organization: OrganizationInput,
    ) -> Result<OrganizationWrite> {
        api(async move {
            let actor = auth::actor(ctx).await?;
            let o = &organization;
            let new = NewOrganization {
                name: Text::parse("name", &o.name)?,
                acronym: Text::optional("acronym", o.acronym.as_deref())?.flatten(),
                org_type: Text::optional("type", o.org_type.as_deref())?.flatten(),
                refugee_and_migrant_led: o.refugee_and_migrant_led,
                fts_id: Text::optional("ftsId", o.fts_id.as_deref())?.flatten(),
                synthetic: false,
            };
            let outcome = store(ctx)?
                .write(&actor, WriteRequest::CreateOrganization(new))
                .await?;
            renew_loaders(ctx)?;
            Ok(OrganizationWrite(outcome))
        })
        .await
    }

    /// Changes an organisation (admin tokens only: organisations are shared by every country).
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_revision: i32,
        organization: OrganizationPatchInput,
    ) -> Result<OrganizationWrite> {
        api(async move {
            let actor = auth::actor(ctx).await?;
            let o = &organization;
            let patch = OrganizationPatch {
                name: o
                    .name
                    .as_deref()
                    .map(|n| Text::parse("name", n))
                    .transpose()?,
                acronym: Text::optional("acronym", o.acronym.as_deref())?,
                org_type: Text::optional("type", o.org_type.as_deref())?,
                refugee_and_migrant_led: o.refugee_and_migrant_led,
                fts_id: Text::optional("ftsId", o.fts_id.as_deref())?,
            };
            let outcome = store(ctx)?
                .write(
                    &actor,
                    WriteRequest::UpdateOrganization {
                        organization_id: organization_id(&id)?,
                        expected_revision: expected(expected_revision),
                        patch,
                    },
                )
                .await?;
            renew_loaders(ctx)?;
            Ok(OrganizationWrite(outcome))
        })
        .await
    }

    /// Imports a report's text with the importer the command line runs: the same checks (size,
    /// structure, a text cut short, the country it names), the same write. `expectedRevision`
    /// is the stored report's revision, 0 when there is none yet; `fileName` is kept as the
    /// report's source (a file name, never a path). A dry run writes nothing and answers with
    /// the report as it would be stored, its warnings and what it would change.
    #[allow(clippy::too_many_arguments)]
    async fn import_report(
        &self,
        ctx: &Context<'_>,
        text: String,
        country: String,
        expected_revision: i32,
        file_name: Option<String>,
        #[graphql(default)] dry_run: bool,
        #[graphql(default)] allow_removals: bool,
        #[graphql(default)] override_country_check: bool,
    ) -> Result<ImportResult> {
        api(async move {
            let actor = auth::actor(ctx).await?;
            let limits = ctx.data_opt::<WriteLimits>().copied().unwrap_or_default();
            // Kept and shown as the report's source: a name, checked like any other text.
            let file_name = file_name
                .as_deref()
                .map(|name| Text::parse("fileName", name))
                .transpose()?;
            if file_name
                .as_ref()
                .is_some_and(|n| n.as_str().chars().count() > MAX_FILE_NAME)
            {
                return Err(ApiError::BadUserInput(format!(
                    "fileName is longer than {MAX_FILE_NAME} characters"
                )));
            }
            // Reading a report of up to the cap (megabytes of text) is CPU work: it runs on a
            // blocking thread, never on the worker that serves the other requests.
            let source_name = file_name
                .as_ref()
                .map_or_else(|| "importReport".to_owned(), |n| n.as_str().to_owned());
            let prepared = tokio::task::spawn_blocking(move || {
                importer::prepare(ImportRequest {
                    bytes: text.as_bytes(),
                    source_name: &source_name,
                    country: Some(&country),
                    override_country_check,
                    max_bytes: limits.max_report_bytes,
                })
            })
            .await
            .map_err(|_| ApiError::Internal {
                store_code: "IMPORT_TASK_FAILED",
            })??;
            let outcome = store(ctx)?
                .write(
                    &actor,
                    WriteRequest::Import {
                        import: ReportImport::published(&prepared),
                        options: ImportOptions {
                            expected_revision: Some(expected(expected_revision)),
                            allow_removals,
                            dry_run,
                        },
                    },
                )
                .await?;
            match &outcome.preview {
                Some(rows) => serve_preview(ctx, rows).await?,
                None => renew_loaders(ctx)?,
            }
            let warnings = prepared
                .warnings
                .iter()
                .map(|w| ImportWarning {
                    code: w.check.code().to_owned(),
                    message: w.to_string(),
                    line: i32::try_from(w.line).unwrap_or(i32::MAX),
                })
                .collect();
            Ok(ImportResult {
                outcome,
                dry_run,
                warnings,
            })
        })
        .await
    }
}
