//! What a write asks for and what it answers: the write path's public types.

use std::sync::Arc;

use plangraph_domain::edit::{NewOrganization, OrganizationPatch, ReportEdit};

use crate::changes::ChangeRecord;
use crate::field_change::FieldChange;
use crate::import::ReportImport;
use crate::rows::ReportRows;

/// How an import may go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The revision the importer believes the report has (0: it believes there is none).
    /// `None` skips the check (the operator's own command line).
    pub expected_revision: Option<i64>,
    /// A re-import may remove rows, paragraphs or sources, or cut a text short.
    pub allow_removals: bool,
    /// Work everything out, write nothing.
    pub dry_run: bool,
}

/// One write.
#[derive(Debug, Clone)]
pub enum WriteRequest<'a> {
    Edit {
        report_id: i32,
        expected_revision: i64,
        edit: ReportEdit,
    },
    Import {
        import: ReportImport<'a>,
        options: ImportOptions,
    },
    /// Adds an organisation: an admin's, like every change to the shared list.
    CreateOrganization(NewOrganization),
    UpdateOrganization {
        organization_id: i32,
        expected_revision: i64,
        patch: OrganizationPatch,
    },
}

/// What a write did.
#[derive(Debug)]
pub struct WriteOutcome {
    /// The target's revision after the write (unchanged when nothing changed or on a dry run).
    pub revision: i64,
    /// The recorded change; `None` when nothing changed or on a dry run.
    pub change: Option<Arc<ChangeRecord>>,
    /// What changed (or, on a dry run, would change).
    pub fields: Vec<FieldChange>,
    pub report_id: Option<i32>,
    pub organization_id: Option<i32>,
    /// An import replaced an earlier import of the same report.
    pub replaced: bool,
    /// A dry run's report as it would be stored (its ids are provisional).
    pub preview: Option<ReportRows>,
    /// What an import removes, cuts short or rewrites (see [`crate::snapshot::Snapshot::removals`]).
    pub removals: Vec<FieldChange>,
}
