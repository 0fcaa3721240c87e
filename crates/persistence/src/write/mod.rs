//! The one place every write goes through.
//!
//! [`Store::write`] runs each write with the same protocol:
//!
//! 0. check the actor may write the target, with at most one small read and before taking any
//!    lock: a refused writer never waits behind another;
//! 1. take a turn at the writer and begin its transaction (see [`writer`]: bounded waits, and a
//!    failed write never leaves a connection behind in doubt);
//! 2. take the store-wide revision counter (`UPDATE … RETURNING`): its row lock serialises
//!    writers until commit, so revisions commit in order and a rolled-back write gives its
//!    number back;
//! 3. the write kind ([`report_edits`], [`organizations`], [`imports`]) finds its target, checks
//!    the actor again and the revision the client based its write on (`CONFLICT` otherwise),
//!    reads the target, applies the write and reads it again: the difference is what the
//!    write changed. No difference: nothing is recorded;
//! 4. stamp the target with the new revision, record the change (who, when, every value before
//!    and after), `NOTIFY` on Postgres, commit; then announce it on the change feed.
//!
//! Any refusal or failure rolls the whole transaction back explicitly, so a refused write
//! changes nothing, and a write is answered as committed only once its `COMMIT` succeeded.

mod imports;
mod organizations;
mod report_edits;
pub(crate) mod request;
mod staged;
pub(crate) mod writer;

use std::sync::Arc;

use chrono::Utc;
use plangraph_domain::access::Actor;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, Set, Statement};

use crate::StoreError;
use crate::changes::ChangeRecord;
use crate::entities::{change, organization, report};
use crate::error::WriteError;
use crate::feed::CHANNEL;
use crate::import::{ImportOutcome, ReportImport};
use crate::store::Store;
use request::{ImportOptions, WriteOutcome, WriteRequest};
use staged::{Staged, Step, Target, authorize_country, authorize_organizations};

/// Largest change recorded, as the history stores it (every value before and after, JSON):
/// twice the default report cap with room to spare. Reading the history stays bounded because
/// no single change is larger.
pub const MAX_CHANGE_BYTES: usize = 16 * 1024 * 1024;

/// How much longer than its statements' limit a Postgres write may run as a whole.
const POSTGRES_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What the transaction holds once the write is recorded, before it commits.
enum Recorded {
    /// Nothing to commit: the write changed nothing, or was a dry run.
    Nothing(WriteOutcome),
    /// A change recorded at `revision`, to commit.
    Change {
        revision: i64,
        row: change::Model,
        outcome: WriteOutcome,
    },
}

impl Store {
    /// Runs one write; see the module documentation for the protocol.
    #[tracing::instrument(skip_all, fields(actor = %actor.label))]
    pub async fn write(
        &self,
        actor: &Actor,
        request: WriteRequest<'_>,
    ) -> Result<WriteOutcome, WriteError> {
        // On the heap: a write's state (the report before and after, the kind's statements)
        // is large, and a request worker's stack is not (a debug build overflowed 2 MiB).
        Box::pin(self.write_boxed(actor, request)).await
    }

    async fn write_boxed(
        &self,
        actor: &Actor,
        request: WriteRequest<'_>,
    ) -> Result<WriteOutcome, WriteError> {
        self.authorize_before_lock(actor, &request).await?;
        let writer = &self.shared.writer;
        let write = writer.begin().await?;
        let timeouts = write.timeouts;
        // On Postgres the database cancels a statement past the limit itself, cleanly; the
        // bound here, a little later, covers the whole write. SQLite has only this one.
        let bound = if self.db.get_database_backend() == DbBackend::Postgres {
            timeouts.write + POSTGRES_GRACE
        } else {
            timeouts.write
        };
        let recorded = match write.txn() {
            Ok(txn) => tokio::time::timeout(bound, Box::pin(record(txn, actor, request)))
                .await
                .unwrap_or_else(|_| {
                    Err(WriteError::Timeout {
                        limit: timeouts.write,
                    }
                    .observed())
                }),
            Err(err) => Err(err),
        };
        let (revision, row, mut outcome) = match recorded {
            Ok(Recorded::Change {
                revision,
                row,
                outcome,
            }) => (revision, row, outcome),
            Ok(Recorded::Nothing(outcome)) => {
                write.rollback().await;
                return Ok(outcome);
            }
            Err(err) => {
                let err = err.with_timeouts(timeouts.lock, timeouts.write);
                write.abandon(&err).await;
                return Err(err);
            }
        };
        write.commit().await?;
        // Committed: from here on nothing may turn the answer into an error. The record for the
        // answer is read with its report's country and year; should that read fail, the record
        // goes without them (the feed reads its own).
        let record = match crate::changes::records(&self.db, vec![row.clone()]).await {
            Ok(mut records) => records.pop(),
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, revision, "change committed; could not read it back");
                None
            }
        }
        .unwrap_or_else(|| ChangeRecord::from_row(row, None, None));
        tracing::info!(
            revision,
            kind = %record.kind,
            report_id = outcome.report_id,
            organization_id = outcome.organization_id,
            "change committed"
        );
        outcome.change = Some(Arc::new(record));
        // Told apart from the answer: the writer does not wait for subscribers.
        let store = self.clone();
        self.shared
            .background
            .spawn(async move { store.announce().await });
        Ok(outcome)
    }

    /// Stores a report as the operator at the command line: the same report (country, plan,
    /// kind, year) imported again keeps its id and has everything it prints replaced, removals
    /// included. Runs through [`Store::write`] like every other write.
    #[tracing::instrument(skip(self, import), fields(country = %import.country.iso3, year = import.document.year))]
    pub async fn import_report(
        &self,
        import: &ReportImport<'_>,
    ) -> Result<ImportOutcome, StoreError> {
        let outcome = self
            .write(
                &Actor::local("plangraph import"),
                WriteRequest::Import {
                    import: import.clone(),
                    options: ImportOptions {
                        allow_removals: true,
                        ..ImportOptions::default()
                    },
                },
            )
            .await
            .map_err(WriteError::into_store_error)?;
        Ok(ImportOutcome {
            report_id: outcome.report_id.unwrap_or_default(),
            replaced: outcome.replaced,
        })
    }

    /// Step 0: refuses a writer who may not write the target, before any lock. An admin needs
    /// no read; an editor's report edit reads the report's country (one small statement).
    async fn authorize_before_lock(
        &self,
        actor: &Actor,
        request: &WriteRequest<'_>,
    ) -> Result<(), WriteError> {
        match request {
            WriteRequest::Edit { report_id, .. } => {
                if actor.may_write_report_of(None) {
                    // May write every report, regional ones included.
                    return Ok(());
                }
                let iso3 = report_country(&self.db, *report_id).await?.ok_or_else(|| {
                    WriteError::NotFound {
                        what: "report",
                        key: report_id.to_string(),
                    }
                })?;
                authorize_country(actor, iso3.as_deref())
            }
            WriteRequest::Import { import, .. } => {
                authorize_country(actor, Some(&import.country.iso3))
            }
            WriteRequest::CreateOrganization(_) | WriteRequest::UpdateOrganization { .. } => {
                authorize_organizations(actor)
            }
        }
    }
}

/// The country of a report: `None` when there is no such report, `Some(None)` for a regional
/// report.
async fn report_country(
    db: &impl ConnectionTrait,
    report_id: i32,
) -> Result<Option<Option<String>>, StoreError> {
    let backend = db.get_database_backend();
    let mark = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT c.iso3 AS iso3 FROM report r LEFT JOIN country c ON c.id = r.country_id WHERE r.id = {mark}"
            ),
            [report_id.into()],
        ))
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get::<Option<String>>("", "iso3")?)),
        None => Ok(None),
    }
}

/// Steps 2 to 4 up to the commit, inside the transaction and within the write's time bound.
async fn record(
    txn: &DatabaseTransaction,
    actor: &Actor,
    request: WriteRequest<'_>,
) -> Result<Recorded, WriteError> {
    let revision = next_revision(txn).await?;
    let step = match request {
        WriteRequest::Edit {
            report_id,
            expected_revision,
            edit,
        } => Step::Commit(Box::new(
            report_edits::edit(txn, actor, report_id, expected_revision, &edit).await?,
        )),
        WriteRequest::Import { import, options } => {
            imports::import(txn, actor, &import, options).await?
        }
        WriteRequest::CreateOrganization(new) => {
            Step::Commit(Box::new(organizations::create(txn, actor, new).await?))
        }
        WriteRequest::UpdateOrganization {
            organization_id,
            expected_revision,
            patch,
        } => Step::Commit(Box::new(
            organizations::update(txn, actor, organization_id, expected_revision, patch).await?,
        )),
    };
    let staged = match step {
        Step::Answer(outcome) => return Ok(Recorded::Nothing(*outcome)),
        Step::Commit(staged) => *staged,
    };
    let (report_id, organization_id, current) = staged.ids();
    let Staged {
        target,
        kind,
        summary,
        fields,
        replaced,
        removals,
        ..
    } = staged;
    let mut outcome = WriteOutcome {
        revision: current,
        change: None,
        fields: Vec::new(),
        report_id,
        organization_id,
        replaced,
        preview: None,
        removals,
    };
    if fields.is_empty() {
        // The rollback gives the revision counter's number back.
        return Ok(Recorded::Nothing(outcome));
    }
    stamp(txn, target, revision).await?;
    let encoded = serde_json::to_string(&fields).map_err(|e| StoreError::Encode(e.to_string()))?;
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
    if txn.get_database_backend() == DbBackend::Postgres {
        // Delivered to listeners when (and only if) this transaction commits.
        txn.execute_unprepared(&format!("NOTIFY {CHANNEL}, '{revision}'"))
            .await
            .map_err(StoreError::from)?;
    }
    outcome.revision = revision;
    outcome.fields = fields;
    Ok(Recorded::Change {
        revision,
        row,
        outcome,
    })
}

/// Step 4's first part: the target carries the revision of its last change.
async fn stamp(txn: &DatabaseTransaction, target: Target, revision: i64) -> Result<(), StoreError> {
    match target {
        Target::Report(r) => {
            let mut active: report::ActiveModel = r.into();
            active.revision = Set(revision);
            active.update(txn).await?;
        }
        Target::Organization(o) => {
            let mut active: organization::ActiveModel = o.into();
            active.revision = Set(revision);
            active.update(txn).await?;
        }
    }
    Ok(())
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
