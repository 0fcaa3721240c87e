//! A write kind's result, before the protocol records and commits it, and the checks every
//! kind shares.

use plangraph_domain::access::Actor;

use crate::entities::{organization, report};
use crate::error::WriteError;
use crate::field_change::FieldChange;
use crate::write::request::WriteOutcome;

/// What a write is about, once found and written.
pub(crate) enum Target {
    Report(report::Model),
    Organization(organization::Model),
}

/// A write applied inside its transaction, not yet stamped, recorded or committed.
pub(crate) struct Staged {
    pub(crate) target: Target,
    /// The organisation a report edit linked or unlinked, recorded beside the report.
    pub(crate) linked_organization: Option<i32>,
    pub(crate) kind: &'static str,
    pub(crate) summary: String,
    /// What the write changed; empty: nothing is recorded and the transaction rolls back.
    pub(crate) fields: Vec<FieldChange>,
    pub(crate) replaced: bool,
    pub(crate) removals: Vec<FieldChange>,
}

/// What a write kind hands back to the protocol.
pub(crate) enum Step {
    /// Record and commit this (or roll back, when it changed nothing).
    Commit(Box<Staged>),
    /// Answered without writing anything (a dry run): roll back.
    Answer(Box<WriteOutcome>),
}

impl Staged {
    /// The target's ids and its revision before this write.
    pub(crate) fn ids(&self) -> (Option<i32>, Option<i32>, i64) {
        match &self.target {
            Target::Report(r) => (Some(r.id), self.linked_organization, r.revision),
            Target::Organization(o) => (None, Some(o.id), o.revision),
        }
    }
}

pub(crate) fn check_revision(expected: i64, current: i64) -> Result<(), WriteError> {
    if expected == current {
        Ok(())
    } else {
        Err(WriteError::Conflict { expected, current })
    }
}

/// May `actor` write a report of `iso3` (`None`: a regional report)?
pub(crate) fn authorize_country(actor: &Actor, iso3: Option<&str>) -> Result<(), WriteError> {
    if actor.may_write_report_of(iso3) {
        Ok(())
    } else {
        Err(WriteError::Forbidden(format!(
            "this token may not write reports of {}",
            iso3.unwrap_or("the region")
        )))
    }
}

/// Organisations are shared by every country's reports: adding or changing one is an admin's.
pub(crate) fn authorize_organizations(actor: &Actor) -> Result<(), WriteError> {
    if actor.may_change_organizations() {
        Ok(())
    } else {
        Err(WriteError::Forbidden(
            "organisations are shared by every country's reports: only an admin token may add or change one".to_owned(),
        ))
    }
}

/// "3 values changed" / "2 added, 1 removed".
pub(crate) fn describe(fields: &[FieldChange]) -> String {
    let added = fields.iter().filter(|f| f.before.is_none()).count();
    let removed = fields.iter().filter(|f| f.after.is_none()).count();
    let changed = fields.len() - added - removed;
    let mut parts = Vec::new();
    for (n, what) in [(changed, "changed"), (added, "added"), (removed, "removed")] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}
