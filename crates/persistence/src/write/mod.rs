//! The one place every write goes through.
//!
//! [`Store::write`] runs each write as one transaction with the same protocol:
//!
//! 1. take the store-wide revision counter (`UPDATE … RETURNING`): its row lock serialises
//!    writers until commit, so revisions commit in order and a rolled-back write gives its
//!    number back;
//! 2. find the target, check the actor may write it, and that the revision the client based its
//!    write on is still the target's (`CONFLICT` otherwise);
//! 3. read the target as a [`Snapshot`], apply the write, read it again: the difference is what
//!    the write changed. No difference: nothing is recorded. A re-import whose difference
//!    removes content is refused unless removals were allowed;
//! 4. stamp the target with the new revision, record the change (who, when, every value before
//!    and after), `NOTIFY` on Postgres, commit; then announce it on the change feed.
//!
//! Any refusal rolls the whole transaction back, so a refused write changes nothing.

use std::sync::Arc;

use chrono::Utc;
use plangraph_domain::access::Actor;
use plangraph_domain::edit::{
    NewOrganization, OrganizationPatch, ReportEdit, SectorFiguresPatch, TotalsPatch,
};
use plangraph_domain::reference::SectorDef;
use plangraph_domain::report::{Footnote, SectionKind, SourceLink};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Set, Statement,
};

use crate::entities::{
    change, footnote, narrative_paragraph, narrative_section, organization, partner_count, report,
    report_organization, report_totals, sector, sector_figures, share, source_link,
};
use crate::error::WriteError;
use crate::feed::{CHANNEL, ChangeRecord};
use crate::import::{ReportImport, find_existing, footnote_rows, source_rows, write_report};
use crate::rows::ReportRows;
use crate::snapshot::{FieldChange, Snapshot};
use crate::store::WriteTxn;
use crate::{Store, StoreError};

/// Largest change recorded, as the history stores it (every value before and after, JSON):
/// twice the default report cap with room to spare. Reading the history stays bounded because
/// no single change is larger.
pub const MAX_CHANGE_BYTES: usize = 16 * 1024 * 1024;

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
    /// What an import removes, cuts short or rewrites (see [`Snapshot::removals`]).
    pub removals: Vec<FieldChange>,
}

/// What a write is about, once found.
enum Target {
    Report(report::Model),
    Organization(organization::Model),
}

impl Store {
    /// Runs one write; see the module documentation for the protocol.
    #[tracing::instrument(skip_all, fields(actor = %actor.label))]
    pub async fn write(
        &self,
        actor: &Actor,
        request: WriteRequest<'_>,
    ) -> Result<WriteOutcome, WriteError> {
        let write = self.begin_write().await?;
        let revision = next_revision(&write.txn).await?;
        let outcome = match request {
            WriteRequest::Edit {
                report_id,
                expected_revision,
                edit,
            } => {
                self.edit(write, revision, actor, report_id, expected_revision, &edit)
                    .await?
            }
            WriteRequest::Import { import, options } => {
                self.import(write, revision, actor, &import, options)
                    .await?
            }
            WriteRequest::CreateOrganization(new) => {
                self.create_organization(write, revision, actor, new)
                    .await?
            }
            WriteRequest::UpdateOrganization {
                organization_id,
                expected_revision,
                patch,
            } => {
                self.update_organization(
                    write,
                    revision,
                    actor,
                    organization_id,
                    expected_revision,
                    patch,
                )
                .await?
            }
        };
        if outcome.change.is_some() {
            // Told apart from the answer: the writer does not wait for subscribers.
            let store = self.clone();
            tokio::spawn(async move { store.announce().await });
        }
        Ok(outcome)
    }

    async fn edit(
        &self,
        write: WriteTxn<'_>,
        revision: i64,
        actor: &Actor,
        report_id: i32,
        expected: i64,
        edit: &ReportEdit,
    ) -> Result<WriteOutcome, WriteError> {
        let txn = &write.txn;
        let report = report::Entity::find_by_id(report_id)
            .one(txn)
            .await
            .map_err(StoreError::from)?
            .ok_or_else(|| WriteError::NotFound {
                what: "report",
                key: report_id.to_string(),
            })?;
        let before = ReportRows::load(txn, report).await?;
        authorize_report(actor, &before)?;
        check_revision(expected, before.report.revision)?;
        apply(txn, &before.report, edit).await?;
        let after = ReportRows::load(txn, before.report.clone()).await?;
        let fields = Snapshot::of_report(&before).diff(&Snapshot::of_report(&after));
        let organization_id = match edit {
            ReportEdit::LinkOrganization {
                organization_id, ..
            }
            | ReportEdit::UnlinkOrganization {
                organization_id, ..
            } => Some(*organization_id),
            _ => None,
        };
        let summary = format!("{}: {}", edit.kind(), describe(&fields));
        self.commit(
            write,
            revision,
            actor,
            Target::Report(after.report),
            organization_id,
            edit.kind(),
            summary,
            fields,
        )
        .await
    }

    async fn import(
        &self,
        write: WriteTxn<'_>,
        revision: i64,
        actor: &Actor,
        import: &ReportImport<'_>,
        options: ImportOptions,
    ) -> Result<WriteOutcome, WriteError> {
        let txn = &write.txn;
        if !actor.may_write_report_of(Some(&import.country.iso3)) {
            return Err(WriteError::Forbidden(format!(
                "this token may not write reports of {}",
                import.country.iso3
            )));
        }
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
        let before_snapshot = before.as_ref().map(Snapshot::of_report).unwrap_or_default();
        let after_snapshot = Snapshot::of_report(&after);
        let fields = before_snapshot.diff(&after_snapshot);
        let removals = before_snapshot.removals(&after_snapshot);
        // A dry run reports removals instead of refusing them.
        if !removals.is_empty() && !options.allow_removals && !options.dry_run {
            return Err(WriteError::WouldRemove(removals));
        }
        if options.dry_run {
            return Ok(WriteOutcome {
                revision: before.as_ref().map_or(0, |b| b.report.revision),
                change: None,
                fields,
                report_id: before.as_ref().map(|b| b.report.id),
                organization_id: None,
                replaced: outcome.replaced,
                preview: Some(after),
                removals,
            });
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
        let mut written = self
            .commit(
                write,
                revision,
                actor,
                Target::Report(after.report),
                None,
                "IMPORT",
                summary,
                fields,
            )
            .await?;
        written.replaced = outcome.replaced;
        written.removals = removals;
        Ok(written)
    }

    async fn create_organization(
        &self,
        write: WriteTxn<'_>,
        revision: i64,
        actor: &Actor,
        new: NewOrganization,
    ) -> Result<WriteOutcome, WriteError> {
        let txn = &write.txn;
        if let Some(fts) = &new.fts_id {
            ensure_fts_id_free(txn, fts.as_str(), None).await?;
        }
        let created = organization::ActiveModel {
            name: Set(new.name.into_string()),
            acronym: Set(new.acronym.map(|t| t.into_string())),
            org_type: Set(new.org_type.map(|t| t.into_string())),
            refugee_and_migrant_led: Set(new.refugee_and_migrant_led),
            fts_id: Set(new.fts_id.map(|t| t.into_string())),
            revision: Set(0),
            synthetic: Set(new.synthetic),
            ..Default::default()
        }
        .insert(txn)
        .await
        .map_err(StoreError::from)?;
        let fields = Snapshot::default().diff(&Snapshot::of_organization(&created));
        let summary = format!("organization created: {}", created.name);
        self.commit(
            write,
            revision,
            actor,
            Target::Organization(created),
            None,
            "ORGANIZATION_CREATED",
            summary,
            fields,
        )
        .await
    }

    async fn update_organization(
        &self,
        write: WriteTxn<'_>,
        revision: i64,
        actor: &Actor,
        id: i32,
        expected: i64,
        patch: OrganizationPatch,
    ) -> Result<WriteOutcome, WriteError> {
        let txn = &write.txn;
        let found = organization::Entity::find_by_id(id)
            .one(txn)
            .await
            .map_err(StoreError::from)?
            .ok_or_else(|| WriteError::NotFound {
                what: "organization",
                key: id.to_string(),
            })?;
        if !actor.may_change_organizations() {
            return Err(WriteError::Forbidden(
                "organisations are shared by every country's reports: only an admin token may change one".to_owned(),
            ));
        }
        check_revision(expected, found.revision)?;
        if let Some(Some(fts)) = &patch.fts_id {
            ensure_fts_id_free(txn, fts.as_str(), Some(id)).await?;
        }
        let before = Snapshot::of_organization(&found);
        let mut active: organization::ActiveModel = found.into();
        if let Some(name) = patch.name {
            active.name = Set(name.into_string());
        }
        if let Some(acronym) = patch.acronym {
            active.acronym = Set(acronym.map(|t| t.into_string()));
        }
        if let Some(org_type) = patch.org_type {
            active.org_type = Set(org_type.map(|t| t.into_string()));
        }
        if let Some(led) = patch.refugee_and_migrant_led {
            active.refugee_and_migrant_led = Set(led);
        }
        if let Some(fts) = patch.fts_id {
            active.fts_id = Set(fts.map(|t| t.into_string()));
        }
        let updated = active.update(txn).await.map_err(StoreError::from)?;
        let fields = before.diff(&Snapshot::of_organization(&updated));
        let summary = format!("organization updated: {}", describe(&fields));
        self.commit(
            write,
            revision,
            actor,
            Target::Organization(updated),
            None,
            "ORGANIZATION_UPDATED",
            summary,
            fields,
        )
        .await
    }

    /// Steps 4: stamp, record, notify, commit. Nothing changed: roll back, record nothing.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        write: WriteTxn<'_>,
        revision: i64,
        actor: &Actor,
        target: Target,
        linked_organization: Option<i32>,
        kind: &str,
        summary: String,
        fields: Vec<FieldChange>,
    ) -> Result<WriteOutcome, WriteError> {
        let txn = &write.txn;
        let (report_id, organization_id, current) = match &target {
            Target::Report(r) => (Some(r.id), linked_organization, r.revision),
            Target::Organization(o) => (None, Some(o.id), o.revision),
        };
        if fields.is_empty() {
            // Dropping the transaction rolls it back, the revision counter with it.
            return Ok(WriteOutcome {
                revision: current,
                change: None,
                fields,
                report_id,
                organization_id,
                replaced: false,
                preview: None,
                removals: Vec::new(),
            });
        }
        match target {
            Target::Report(r) => {
                let mut active: report::ActiveModel = r.into();
                active.revision = Set(revision);
                active.update(txn).await.map_err(StoreError::from)?;
            }
            Target::Organization(o) => {
                let mut active: organization::ActiveModel = o.into();
                active.revision = Set(revision);
                active.update(txn).await.map_err(StoreError::from)?;
            }
        }
        let encoded =
            serde_json::to_string(&fields).map_err(|e| StoreError::Encode(e.to_string()))?;
        if encoded.len() > MAX_CHANGE_BYTES {
            return Err(WriteError::TooLarge {
                bytes: encoded.len(),
                limit: MAX_CHANGE_BYTES,
            });
        }
        let row = change::ActiveModel {
            revision: Set(revision),
            report_id: Set(report_id),
            organization_id: Set(organization_id),
            kind: Set(kind.to_owned()),
            summary: Set(summary),
            token_id: Set(actor.token_id),
            actor_label: Set(actor.label.clone()),
            at: Set(Utc::now()),
            fields_bytes: Set(i64::try_from(encoded.len()).unwrap_or(i64::MAX)),
            fields: Set(encoded),
        }
        .insert(txn)
        .await
        .map_err(StoreError::from)?;
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Delivered to listeners when (and only if) this transaction commits.
            txn.execute_unprepared(&format!("NOTIFY {CHANNEL}, '{revision}'"))
                .await
                .map_err(StoreError::from)?;
        }
        let WriteTxn { txn, .. } = write;
        txn.commit().await.map_err(StoreError::from)?;
        // Committed: from here on nothing may turn the answer into an error. The record for the
        // answer is read with its report's country and year; should that read fail, the record
        // goes without them (the feed reads its own).
        let record = match crate::feed::records(&self.db, vec![row.clone()]).await {
            Ok(mut records) => records.pop(),
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, revision, "change committed; could not read it back");
                None
            }
        }
        .unwrap_or_else(|| ChangeRecord::from_row(row, None, None));
        let record = Some(Arc::new(record));
        tracing::info!(
            revision,
            kind,
            report_id,
            organization_id,
            "change committed"
        );
        Ok(WriteOutcome {
            revision,
            change: record,
            fields,
            report_id,
            organization_id,
            replaced: false,
            preview: None,
            removals: Vec::new(),
        })
    }
}

/// The counter's next value; its row stays locked until the transaction ends.
async fn next_revision(txn: &DatabaseTransaction) -> Result<i64, StoreError> {
    let backend = txn.get_database_backend();
    // The epoch: a random number drawn by the database, one constant statement per backend
    // (prepared once), so caches can tell a restored store at the same revision apart.
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE store_revision SET value = value + 1, epoch = floor(random() * 9007199254740991)::bigint WHERE id = 1 RETURNING value"
        }
        _ => {
            "UPDATE store_revision SET value = value + 1, epoch = random() WHERE id = 1 RETURNING value"
        }
    };
    let row = txn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| StoreError::MissingReference("the revision counter".to_owned()))?;
    Ok(row.try_get::<i64>("", "value")?)
}

fn check_revision(expected: i64, current: i64) -> Result<(), WriteError> {
    if expected == current {
        Ok(())
    } else {
        Err(WriteError::Conflict { expected, current })
    }
}

fn authorize_report(actor: &Actor, rows: &ReportRows) -> Result<(), WriteError> {
    let iso3 = rows.country.as_ref().map(|c| c.iso3.as_str());
    if actor.may_write_report_of(iso3) {
        Ok(())
    } else {
        Err(WriteError::Forbidden(format!(
            "this token may not write reports of {}",
            iso3.unwrap_or("the region")
        )))
    }
}

/// "3 values changed" / "2 added, 1 removed".
fn describe(fields: &[FieldChange]) -> String {
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

async fn ensure_fts_id_free(
    txn: &DatabaseTransaction,
    fts_id: &str,
    except: Option<i32>,
) -> Result<(), WriteError> {
    // FTS ids are compared whatever their letter case: "FTS-1" and "fts-1" are one id.
    let mut query = organization::Entity::find().filter(
        Expr::expr(Func::lower(Expr::col(organization::Column::FtsId))).eq(fts_id.to_lowercase()),
    );
    if let Some(id) = except {
        query = query.filter(organization::Column::Id.ne(id));
    }
    match query.one(txn).await.map_err(StoreError::from)? {
        Some(other) => Err(WriteError::Duplicate(format!(
            "the FTS id {fts_id} already belongs to organisation {}",
            other.id
        ))),
        None => Ok(()),
    }
}

fn big(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Overflow(what.to_owned()))
}

fn position(index: usize) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::Overflow("position".to_owned()))
}

async fn sector_id(txn: &DatabaseTransaction, def: &SectorDef) -> Result<i32, WriteError> {
    Ok(sector::Entity::find()
        .filter(sector::Column::Code.eq(def.code))
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| StoreError::MissingReference(format!("sector {}", def.code)))?
        .id)
}

async fn section_of(
    txn: &DatabaseTransaction,
    report_id: i32,
    kind: SectionKind,
) -> Result<Option<narrative_section::Model>, StoreError> {
    Ok(narrative_section::Entity::find()
        .filter(narrative_section::Column::ReportId.eq(report_id))
        .filter(narrative_section::Column::Kind.eq(kind.as_str()))
        .one(txn)
        .await?)
}

/// Step 3's middle: the statements of one edit.
async fn apply(
    txn: &DatabaseTransaction,
    report: &report::Model,
    edit: &ReportEdit,
) -> Result<(), WriteError> {
    let rid = report.id;
    match edit {
        ReportEdit::Totals(patch) => apply_totals(txn, rid, patch).await,
        ReportEdit::SectorFigures { sector, patch } => {
            apply_sector_figures(txn, rid, sector, patch).await
        }
        ReportEdit::RemoveSectorFigures { sector } => {
            let sid = sector_id(txn, sector).await?;
            let removed = sector_figures::Entity::delete_many()
                .filter(sector_figures::Column::ReportId.eq(rid))
                .filter(sector_figures::Column::SectorId.eq(sid))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            if removed.rows_affected == 0 {
                return Err(WriteError::NotFound {
                    what: "sector row",
                    key: sector.code.to_owned(),
                });
            }
            Ok(())
        }
        ReportEdit::Shares { dimension, shares } => {
            share::Entity::delete_many()
                .filter(share::Column::ReportId.eq(rid))
                .filter(share::Column::Dimension.eq(dimension.as_str()))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            let mut rows = Vec::with_capacity(shares.len());
            for (i, s) in shares.iter().enumerate() {
                rows.push(share::ActiveModel {
                    report_id: Set(rid),
                    dimension: Set(dimension.as_str().to_owned()),
                    position: Set(position(i + 1)?),
                    label: Set(s.label.as_ref().map(|l| l.as_str().to_owned())),
                    percent_hundredths: Set(big(s.percent.hundredths(), "share")?),
                    percent_printed: Set(s.percent.printed().to_owned()),
                    basis: Set(s.basis.map(|b| b.as_str().to_owned())),
                    ..Default::default()
                });
            }
            insert_all(txn, rows).await
        }
        ReportEdit::PartnerCount { role, count } => {
            let count = i32::try_from(*count)
                .map_err(|_| StoreError::Overflow("partner count".to_owned()))?;
            let found = partner_count::Entity::find()
                .filter(partner_count::Column::ReportId.eq(rid))
                .filter(partner_count::Column::Role.eq(role.as_str()))
                .one(txn)
                .await
                .map_err(StoreError::from)?;
            match found {
                Some(row) => {
                    let mut active: partner_count::ActiveModel = row.into();
                    active.count = Set(count);
                    active.printed = Set(count.to_string());
                    active.update(txn).await.map_err(StoreError::from)?;
                }
                None => {
                    partner_count::ActiveModel {
                        report_id: Set(rid),
                        role: Set(role.as_str().to_owned()),
                        count: Set(count),
                        footnote_marker: Set(None),
                        printed: Set(count.to_string()),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await
                    .map_err(StoreError::from)?;
                }
            }
            Ok(())
        }
        ReportEdit::Section {
            kind,
            title,
            paragraphs,
        } => {
            let section = match section_of(txn, rid, *kind).await? {
                Some(found) => {
                    delete_paragraphs(txn, found.id).await?;
                    if let Some(title) = title {
                        let mut active: narrative_section::ActiveModel = found.into();
                        active.title = Set(title.as_str().to_owned());
                        active.update(txn).await.map_err(StoreError::from)?
                    } else {
                        found
                    }
                }
                None => {
                    let next = narrative_section::Entity::find()
                        .filter(narrative_section::Column::ReportId.eq(rid))
                        .order_by_desc(narrative_section::Column::Position)
                        .one(txn)
                        .await
                        .map_err(StoreError::from)?
                        .map_or(0, |s| s.position + 1);
                    narrative_section::ActiveModel {
                        report_id: Set(rid),
                        kind: Set(kind.as_str().to_owned()),
                        title: Set(title
                            .as_ref()
                            .map_or(kind.heading(), |t| t.as_str())
                            .to_owned()),
                        position: Set(next),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await
                    .map_err(StoreError::from)?
                }
            };
            let mut rows = Vec::with_capacity(paragraphs.len());
            for (i, text) in paragraphs.iter().enumerate() {
                rows.push(narrative_paragraph::ActiveModel {
                    section_id: Set(section.id),
                    position: Set(position(i)?),
                    body: Set(text.as_str().to_owned()),
                    ..Default::default()
                });
            }
            insert_all(txn, rows).await
        }
        ReportEdit::Paragraph {
            kind,
            position: at,
            text,
        } => {
            let section =
                section_of(txn, rid, *kind)
                    .await?
                    .ok_or_else(|| WriteError::NotFound {
                        what: "section",
                        key: kind.as_str().to_owned(),
                    })?;
            let paragraphs = narrative_paragraph::Entity::find()
                .filter(narrative_paragraph::Column::SectionId.eq(section.id))
                .order_by_asc(narrative_paragraph::Column::Position)
                .all(txn)
                .await
                .map_err(StoreError::from)?;
            let index = usize::try_from(*at).unwrap_or(usize::MAX);
            if index >= 1 && index <= paragraphs.len() {
                let mut active: narrative_paragraph::ActiveModel =
                    paragraphs[index - 1].clone().into();
                active.body = Set(text.as_str().to_owned());
                active.update(txn).await.map_err(StoreError::from)?;
                Ok(())
            } else if index == paragraphs.len() + 1 {
                narrative_paragraph::ActiveModel {
                    section_id: Set(section.id),
                    position: Set(paragraphs.last().map_or(0, |p| p.position + 1)),
                    body: Set(text.as_str().to_owned()),
                    ..Default::default()
                }
                .insert(txn)
                .await
                .map_err(StoreError::from)?;
                Ok(())
            } else {
                Err(WriteError::PositionOutOfRange {
                    position: *at,
                    len: paragraphs.len(),
                })
            }
        }
        ReportEdit::RemoveSection { kind } => {
            let section =
                section_of(txn, rid, *kind)
                    .await?
                    .ok_or_else(|| WriteError::NotFound {
                        what: "section",
                        key: kind.as_str().to_owned(),
                    })?;
            delete_paragraphs(txn, section.id).await?;
            narrative_section::Entity::delete_by_id(section.id)
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }
        ReportEdit::Footnotes(notes) => replace_footnotes(txn, rid, notes).await,
        ReportEdit::Sources(links) => replace_sources(txn, rid, links).await,
        ReportEdit::LinkOrganization {
            organization_id,
            role,
        } => {
            let organization = organization::Entity::find_by_id(*organization_id)
                .one(txn)
                .await
                .map_err(StoreError::from)?
                .ok_or_else(|| WriteError::NotFound {
                    what: "organization",
                    key: organization_id.to_string(),
                })?;
            // Generated organisations belong to generated reports only, and real ones to real
            // reports: load-test data never shows up in a published report.
            if organization.synthetic != report.synthetic {
                return Err(WriteError::MixesSynthetic {
                    report_id: rid,
                    stored_synthetic: report.synthetic,
                });
            }
            let linked = report_organization::Entity::find()
                .filter(report_organization::Column::ReportId.eq(rid))
                .filter(report_organization::Column::OrganizationId.eq(*organization_id))
                .filter(report_organization::Column::Role.eq(role.as_str()))
                .one(txn)
                .await
                .map_err(StoreError::from)?;
            if linked.is_none() {
                report_organization::ActiveModel {
                    report_id: Set(rid),
                    organization_id: Set(*organization_id),
                    role: Set(role.as_str().to_owned()),
                    ..Default::default()
                }
                .insert(txn)
                .await
                .map_err(StoreError::from)?;
            }
            Ok(())
        }
        ReportEdit::UnlinkOrganization {
            organization_id,
            role,
        } => {
            report_organization::Entity::delete_many()
                .filter(report_organization::Column::ReportId.eq(rid))
                .filter(report_organization::Column::OrganizationId.eq(*organization_id))
                .filter(report_organization::Column::Role.eq(role.as_str()))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }
    }
}

async fn insert_all<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), WriteError>
where
    A: ActiveModelTrait + Send,
{
    Ok(crate::import::insert_all(txn, rows).await?)
}

async fn delete_paragraphs(txn: &DatabaseTransaction, section_id: i32) -> Result<(), StoreError> {
    narrative_paragraph::Entity::delete_many()
        .filter(narrative_paragraph::Column::SectionId.eq(section_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn apply_totals(
    txn: &DatabaseTransaction,
    rid: i32,
    patch: &TotalsPatch,
) -> Result<(), WriteError> {
    let row = report_totals::Entity::find_by_id(rid)
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| WriteError::NotFound {
            what: "totals of report",
            key: rid.to_string(),
        })?;
    let mut a: report_totals::ActiveModel = row.into();
    if let Some(p) = &patch.people_in_need {
        a.people_in_need = Set(big(p.value(), "people in need")?);
        a.people_in_need_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_targeted {
        a.people_targeted = Set(big(p.value(), "people targeted")?);
        a.people_targeted_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_reached {
        a.people_reached = Set(big(p.value(), "people reached")?);
        a.people_reached_printed = Set(p.printed().to_owned());
    }
    if let Some(u) = &patch.requirements {
        a.requirements_usd = Set(big(u.value(), "requirements")?);
        a.requirements_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.funding_received {
        a.funding_usd = Set(big(u.value(), "funding")?);
        a.funding_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.unmet {
        a.unmet_usd = Set(big(u.value(), "unmet")?);
        a.unmet_printed = Set(u.printed().to_owned());
    }
    if let Some(p) = &patch.funded_percent {
        a.funded_percent_hundredths = Set(big(p.hundredths(), "% funded")?);
        a.funded_percent_printed = Set(p.printed().to_owned());
    }
    if a.is_changed() {
        a.update(txn).await.map_err(StoreError::from)?;
    }
    Ok(())
}

async fn apply_sector_figures(
    txn: &DatabaseTransaction,
    rid: i32,
    sector: &'static SectorDef,
    patch: &SectorFiguresPatch,
) -> Result<(), WriteError> {
    let sid = sector_id(txn, sector).await?;
    let found = sector_figures::Entity::find()
        .filter(sector_figures::Column::ReportId.eq(rid))
        .filter(sector_figures::Column::SectorId.eq(sid))
        .one(txn)
        .await
        .map_err(StoreError::from)?;
    let mut a: sector_figures::ActiveModel = match found {
        Some(row) => row.into(),
        None => {
            let missing = patch.missing();
            if !missing.is_empty() {
                return Err(WriteError::IncompleteFigures {
                    sector: sector.code,
                    missing,
                });
            }
            let next = sector_figures::Entity::find()
                .filter(sector_figures::Column::ReportId.eq(rid))
                .order_by_desc(sector_figures::Column::Position)
                .one(txn)
                .await
                .map_err(StoreError::from)?
                .map_or(0, |r| r.position + 1);
            sector_figures::ActiveModel {
                report_id: Set(rid),
                sector_id: Set(sid),
                position: Set(next),
                printed_heading: Set(sector.printed_heading.to_owned()),
                ..Default::default()
            }
        }
    };
    if let Some(p) = &patch.people_targeted {
        a.people_targeted = Set(big(p.value(), "people targeted")?);
        a.people_targeted_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_reached {
        a.people_reached = Set(big(p.value(), "people reached")?);
        a.people_reached_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.reached_percent {
        a.reached_percent_hundredths = Set(big(p.hundredths(), "% reached")?);
        a.reached_percent_printed = Set(p.printed().to_owned());
    }
    if let Some(u) = &patch.requirements {
        a.requirements_usd = Set(big(u.value(), "requirements")?);
        a.requirements_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.funding {
        a.funding_usd = Set(big(u.value(), "funding")?);
        a.funding_printed = Set(u.printed().to_owned());
    }
    if let Some(p) = &patch.funded_percent {
        a.funded_percent_hundredths = Set(big(p.hundredths(), "% funded")?);
        a.funded_percent_printed = Set(p.printed().to_owned());
    }
    a.save(txn).await.map_err(StoreError::from)?;
    Ok(())
}

async fn replace_footnotes(
    txn: &DatabaseTransaction,
    rid: i32,
    notes: &[Footnote],
) -> Result<(), WriteError> {
    footnote::Entity::delete_many()
        .filter(footnote::Column::ReportId.eq(rid))
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    insert_all(txn, footnote_rows(rid, notes)?).await
}

async fn replace_sources(
    txn: &DatabaseTransaction,
    rid: i32,
    links: &[SourceLink],
) -> Result<(), WriteError> {
    source_link::Entity::delete_many()
        .filter(source_link::Column::ReportId.eq(rid))
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    insert_all(txn, source_rows(rid, links)?).await
}
