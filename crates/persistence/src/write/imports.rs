//! Imports: a whole report written from a document, in place of an earlier import of the same
//! report, with the consent check for what it would remove.

use plangraph_domain::access::Actor;
use sea_orm::{DatabaseTransaction, EntityTrait};

use crate::StoreError;
use crate::entities::report;
use crate::error::WriteError;
use crate::import::{ReportImport, find_existing, write_report};
use crate::rows::ReportRows;
use crate::snapshot::{Compared, compare};
use crate::write::request::{ImportOptions, WriteOutcome};
use crate::write::staged::{Staged, Step, Target, authorize_country, check_revision, describe};

pub(crate) async fn import(
    txn: &DatabaseTransaction,
    actor: &Actor,
    import: &ReportImport<'_>,
    options: ImportOptions,
) -> Result<Step, WriteError> {
    authorize_country(actor, Some(&import.country.iso3))?;
    let existing = find_existing(txn, import).await?;
    if let Some(found) = existing
        .as_ref()
        .filter(|r| r.synthetic != import.synthetic)
    {
        return Err(WriteError::MixesSynthetic {
            report_id: found.id,
            stored_synthetic: found.synthetic,
        });
    }
    let before = match existing {
        Some(report) => Some(ReportRows::load(txn, report).await?),
        None => None,
    };
    if let Some(expected) = options.expected_revision {
        check_revision(expected, before.as_ref().map_or(0, |b| b.report.revision))?;
    }
    let outcome = write_report(txn, import, before.as_ref().map(|b| &b.report)).await?;
    let report = report::Entity::find_by_id(outcome.report_id)
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| WriteError::NotFound {
            what: "report",
            key: outcome.report_id.to_string(),
        })?;
    let after = ReportRows::load(txn, report).await?;
    let Compared {
        before,
        after,
        fields,
        removals,
    } = compare(before, after, true).await?;
    // A dry run reports removals instead of refusing them.
    if !removals.is_empty() && !options.allow_removals && !options.dry_run {
        return Err(WriteError::WouldRemove(removals));
    }
    if options.dry_run {
        return Ok(Step::Answer(Box::new(WriteOutcome {
            revision: before.as_ref().map_or(0, |b| b.report.revision),
            change: None,
            fields,
            report_id: before.as_ref().map(|b| b.report.id),
            organization_id: None,
            replaced: outcome.replaced,
            preview: Some(after),
            removals,
        })));
    }
    let summary = format!(
        "{} {} {} report of {} from {}: {}",
        if outcome.replaced {
            "re-imported"
        } else {
            "imported"
        },
        after.report.kind,
        after.report.year,
        import.country.iso3,
        import.source_name,
        describe(&fields)
    );
    Ok(Step::Commit(Box::new(Staged {
        target: Target::Report(after.report),
        linked_organization: None,
        kind: "IMPORT",
        summary,
        fields,
        replaced: outcome.replaced,
        removals,
    })))
}
