//! Changes as the API shows them: history entries, mutation results and subscription events
//! are one type, [`Change`], so a client reads a change the same way wherever it meets it.

use plangraph_persistence::{ChangeRecord, FieldChange};

use super::*;
use crate::loaders::{OrganizationById, ReportById, SectorByCode};

/// One value a change changed, as printed: `before` is null for an addition, `after` for a
/// removal. Paths name things by their keys: `totals.peopleReached`,
/// `sectors.EDU.fundingUsd`, `sections.RESPONSE.paragraphs.3`, `partnerCounts.DONOR`.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "FieldChange")]
pub struct FieldChangeObject {
    path: String,
    before: Option<String>,
    after: Option<String>,
}

impl From<&FieldChange> for FieldChangeObject {
    fn from(c: &FieldChange) -> Self {
        Self {
            path: c.path.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
        }
    }
}

/// Who made a change.
#[derive(SimpleObject, Debug)]
pub struct ChangeActor {
    /// The token's id; null for the operator at the command line.
    token_id: Option<ID>,
    /// The token's label, or the local command that wrote.
    label: String,
}

/// One committed write: its revision, who made it, when, and every value before and after. As a
/// subscription event it holds an execution slot until its fields are resolved (see
/// [`crate::pipeline::ExecutionSlots`]).
pub struct Change(
    pub Arc<ChangeRecord>,
    // Held, never read: dropping the event gives the slot back.
    #[allow(dead_code)] pub(crate) Option<crate::pipeline::EventSlot>,
);

impl Change {
    /// A change read from the history or returned by a write (no slot to hold).
    pub(crate) fn new(record: Arc<ChangeRecord>) -> Self {
        Self(record, None)
    }
}

#[Object]
impl Change {
    /// The store revision the write committed as. Revisions are store-wide and increase with
    /// every write, so `afterRevision` resumes any subscription.
    async fn revision(&self) -> Result<i32> {
        revision(self.0.revision)
    }

    /// When it committed (RFC 3339, UTC).
    async fn at(&self) -> String {
        self.0.at.to_rfc3339()
    }

    /// IMPORT, TOTALS, SECTOR_FIGURES, SECTOR_FIGURES_REMOVED, SHARES, PARTNER_COUNT, SECTION,
    /// SECTION_REMOVED, FOOTNOTES, SOURCES, ORGANIZATION_LINKED, ORGANIZATION_UNLINKED,
    /// ORGANIZATION_CREATED or ORGANIZATION_UPDATED.
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// One line for people.
    async fn summary(&self) -> &str {
        &self.0.summary
    }

    async fn actor(&self) -> ChangeActor {
        ChangeActor {
            token_id: self.0.token_id.map(|id| ID(id.to_string())),
            label: self.0.actor_label.clone(),
        }
    }

    /// Every value the change changed, before and after.
    async fn changes(&self) -> Vec<FieldChangeObject> {
        self.0.fields.iter().map(FieldChangeObject::from).collect()
    }

    /// The report changed, as it is now.
    async fn report(&self, ctx: &Context<'_>) -> Result<Option<Report>> {
        let Some(id) = self.0.report_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(ReportById(id)).await?.map(Report))
    }

    /// The organisation changed, created, linked or unlinked, as it is now.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(OrganizationById(id))
            .await?
            .map(Organization))
    }
}

/// A change to a report's figures: its totals or sector rows.
pub struct FiguresChange {
    pub(crate) record: Arc<ChangeRecord>,
    /// The execution slot the event holds while its fields resolve.
    pub(crate) _slot: Option<crate::pipeline::EventSlot>,
    /// The sector the subscriber asked for, if any.
    pub(crate) sector: Option<String>,
}

/// Sector codes whose rows a change touched, in order.
fn touched_sectors(record: &ChangeRecord) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for f in &record.fields {
        if let Some(rest) = f.path.strip_prefix("sectors.")
            && let Some((code, _)) = rest.split_once('.')
            && !codes.iter().any(|c| c == code)
        {
            codes.push(code.to_owned());
        }
    }
    codes
}

impl FiguresChange {
    fn is_figure(&self, path: &str) -> bool {
        match &self.sector {
            Some(code) => path
                .strip_prefix("sectors.")
                .and_then(|rest| rest.strip_prefix(code.as_str()))
                .is_some_and(|rest| rest.starts_with('.')),
            None => path.starts_with("sectors.") || path.starts_with("totals."),
        }
    }
}

#[Object]
impl FiguresChange {
    async fn revision(&self) -> Result<i32> {
        revision(self.record.revision)
    }

    async fn at(&self) -> String {
        self.record.at.to_rfc3339()
    }

    async fn kind(&self) -> &str {
        &self.record.kind
    }

    async fn actor(&self) -> ChangeActor {
        ChangeActor {
            token_id: self.record.token_id.map(|id| ID(id.to_string())),
            label: self.record.actor_label.clone(),
        }
    }

    /// The sector asked for; null when every figure of the report was.
    async fn sector_code(&self) -> Option<&str> {
        self.sector.as_deref()
    }

    /// The figures' values before and after (only figures: totals and sector rows).
    async fn changes(&self) -> Vec<FieldChangeObject> {
        self.record
            .fields
            .iter()
            .filter(|f| self.is_figure(&f.path))
            .map(FieldChangeObject::from)
            .collect()
    }

    /// The sector rows the change touched, with their values now (a removed row is absent).
    async fn figures(&self, ctx: &Context<'_>) -> Result<Vec<SectorFigures>> {
        let Some(report_id) = self.record.report_id else {
            return Ok(Vec::new());
        };
        let codes: Vec<String> = match &self.sector {
            Some(code) => vec![code.clone()],
            None => touched_sectors(&self.record),
        };
        let loaders = loader(ctx)?;
        let sectors = loaders
            .load_many(codes.into_iter().map(SectorByCode))
            .await?;
        let rows = loaders
            .load_one(SectorFiguresOfReport(report_id))
            .await?
            .unwrap_or_default();
        let rows = rows
            .into_iter()
            .filter(|row| sectors.values().any(|s| s.id == row.sector_id))
            .collect();
        SectorFigures::list(ctx, rows).await
    }

    /// The report's totals now, when the change touched them.
    async fn totals(&self, ctx: &Context<'_>) -> Result<Option<ReportTotals>> {
        let touched = self.sector.is_none()
            && self
                .record
                .fields
                .iter()
                .any(|f| f.path.starts_with("totals."));
        let Some(report_id) = self.record.report_id.filter(|_| touched) else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(TotalsOfReport(report_id))
            .await?
            .map(ReportTotals))
    }

    async fn report(&self, ctx: &Context<'_>) -> Result<Option<Report>> {
        let Some(id) = self.record.report_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(ReportById(id)).await?.map(Report))
    }
}
