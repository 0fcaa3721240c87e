//! The history as records: one committed write is one row of `change`, read back as a
//! [`ChangeRecord`]; which changes a subscriber wants ([`ChangeFilter`]); and pages of the
//! history read a bounded number of bytes at a time.

use std::any::Any;
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::StoreError;
use crate::entities::{change, country, report};
use crate::field_change::FieldChange;
use crate::lookups::find_in;

/// Changes read from the history per page, at most.
pub(crate) const PAGE: u64 = 500;

/// Bytes of recorded values read from the history per page, at most (a single larger change
/// is still read whole; [`crate::write`] caps a change's size).
pub(crate) const PAGE_BYTES: i64 = 8 * 1024 * 1024;

/// One committed write, as the history holds it.
pub struct ChangeRecord {
    pub revision: i64,
    pub report_id: Option<i32>,
    pub organization_id: Option<i32>,
    /// The report's country and year, so subscribers can filter without a query.
    pub country_iso3: Option<String>,
    pub year: Option<i32>,
    pub kind: String,
    pub summary: String,
    pub token_id: Option<i32>,
    pub actor_label: String,
    pub at: DateTime<Utc>,
    pub fields: Vec<FieldChange>,
    /// Something the API attaches once per event and shares among every subscriber of this
    /// process that resolves it at the same time (its DataLoader). Held weakly: the subscribers
    /// resolving the event keep it alive, a record waiting in the feed's buffer does not (a
    /// paused subscriber would otherwise pin every event's cached rows).
    attachment: Mutex<Weak<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for ChangeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeRecord")
            .field("revision", &self.revision)
            .field("report_id", &self.report_id)
            .field("organization_id", &self.organization_id)
            .field("kind", &self.kind)
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl ChangeRecord {
    /// The value attached to this event, made by `init` the first time it is asked for.
    /// `None` only if a value of another type was attached first.
    pub fn attachment<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<Arc<T>> {
        let mut slot = self
            .attachment
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = slot.upgrade() {
            return current.downcast::<T>().ok();
        }
        let fresh = Arc::new(init());
        let shared: Arc<dyn Any + Send + Sync> = fresh.clone();
        *slot = Arc::downgrade(&shared);
        Some(fresh)
    }

    pub(crate) fn from_row(
        row: change::Model,
        country_iso3: Option<String>,
        year: Option<i32>,
    ) -> Self {
        let fields = serde_json::from_str(&row.fields).unwrap_or_else(|e| {
            tracing::error!(revision = row.revision, error = %e, "unreadable change fields");
            Vec::new()
        });
        Self {
            revision: row.revision,
            report_id: row.report_id,
            organization_id: row.organization_id,
            country_iso3,
            year,
            kind: row.kind,
            summary: row.summary,
            token_id: row.token_id,
            actor_label: row.actor_label,
            at: row.at,
            fields,
            attachment: Mutex::new(Weak::<()>::new()),
        }
    }
}

/// Whose history: a report's or an organisation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryOwner {
    Report,
    Organization,
}

impl HistoryOwner {
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::Report => "report_id",
            Self::Organization => "organization_id",
        }
    }
}

/// The `n`th bind parameter of a raw statement in `backend`'s syntax.
pub(crate) fn placeholder(backend: sea_orm::DatabaseBackend, n: usize) -> String {
    match backend {
        sea_orm::DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Which changes a subscriber wants; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    pub report_id: Option<i32>,
    pub organization_id: Option<i32>,
    pub country_iso3: Option<String>,
    pub year: Option<i32>,
    /// At least one changed path starts with one of these (`sectors.EDU.`); empty: any.
    pub path_prefixes: Vec<String>,
}

impl ChangeFilter {
    pub fn matches(&self, record: &ChangeRecord) -> bool {
        self.report_id.is_none_or(|id| record.report_id == Some(id))
            && self
                .organization_id
                .is_none_or(|id| record.organization_id == Some(id))
            && self
                .country_iso3
                .as_deref()
                .is_none_or(|c| record.country_iso3.as_deref() == Some(c))
            && self.year.is_none_or(|y| record.year == Some(y))
            && (self.path_prefixes.is_empty()
                || record.fields.iter().any(|f| {
                    self.path_prefixes
                        .iter()
                        .any(|p| f.path.starts_with(p.as_str()))
                }))
    }

    /// The part of the filter the database can apply.
    pub(crate) fn condition(&self) -> Condition {
        let mut cond = Condition::all();
        if let Some(id) = self.report_id {
            cond = cond.add(change::Column::ReportId.eq(id));
        }
        if let Some(id) = self.organization_id {
            cond = cond.add(change::Column::OrganizationId.eq(id));
        }
        if self.country_iso3.is_some() || self.year.is_some() {
            let mut reports = Query::select()
                .column(report::Column::Id)
                .from(report::Entity)
                .to_owned();
            if let Some(year) = self.year {
                reports.and_where(Expr::col(report::Column::Year).eq(year));
            }
            if let Some(iso3) = &self.country_iso3 {
                reports.and_where(
                    Expr::col(report::Column::CountryId).in_subquery(
                        Query::select()
                            .column(country::Column::Id)
                            .from(country::Entity)
                            .and_where(Expr::col(country::Column::Iso3).eq(iso3.as_str()))
                            .to_owned(),
                    ),
                );
            }
            cond = cond.add(change::Column::ReportId.in_subquery(reports));
        }
        cond
    }
}

/// Changes after `after` up to `up_to` (inclusive), oldest first, at most [`PAGE`] and
/// [`PAGE_BYTES`] (at least one).
pub(crate) async fn page_of_changes(
    db: &impl ConnectionTrait,
    after: i64,
    up_to: Option<i64>,
    filter: &ChangeFilter,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let sizes = page_sizes(db, after, up_to, filter, PAGE).await?;
    let (revisions, _) = within_budget(&sizes, PAGE_BYTES, i64::MAX);
    read_changes(db, revisions).await
}

/// The revisions and recorded sizes of the next `rows` changes matching `filter` after
/// `after` up to `up_to`, oldest first: narrow rows, so a page can be sized before it is read.
pub(crate) async fn page_sizes(
    db: &impl ConnectionTrait,
    after: i64,
    up_to: Option<i64>,
    filter: &ChangeFilter,
    rows: u64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut cond = filter.condition().add(change::Column::Revision.gt(after));
    if let Some(up_to) = up_to {
        cond = cond.add(change::Column::Revision.lte(up_to));
    }
    Ok(change::Entity::find()
        .select_only()
        .column(change::Column::Revision)
        .column(change::Column::FieldsBytes)
        .filter(cond)
        .order_by_asc(change::Column::Revision)
        .limit(rows)
        .into_tuple()
        .all(db)
        .await?)
}

/// The changes at `revisions`, oldest first, with their report's country and year.
pub(crate) async fn read_changes(
    db: &impl ConnectionTrait,
    revisions: Vec<i64>,
) -> Result<Vec<ChangeRecord>, StoreError> {
    if revisions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = change::Entity::find()
        .filter(change::Column::Revision.is_in(revisions))
        .order_by_asc(change::Column::Revision)
        .all(db)
        .await?;
    records(db, rows).await
}

/// The leading revisions whose changes fit in `page_bytes` together and in `remaining`, and
/// their bytes. The first change is kept even past `page_bytes` (a page always moves on), but
/// never past `remaining`.
pub(crate) fn within_budget(
    sizes: &[(i64, i64)],
    page_bytes: i64,
    remaining: i64,
) -> (Vec<i64>, i64) {
    let mut total: i64 = 0;
    let mut kept = Vec::new();
    for &(revision, bytes) in sizes {
        let next = total.saturating_add(bytes);
        if next > remaining || (!kept.is_empty() && next > page_bytes) {
            break;
        }
        total = next;
        kept.push(revision);
    }
    (kept, total)
}

/// Change rows with their report's country and year.
pub(crate) async fn records(
    db: &impl ConnectionTrait,
    rows: Vec<change::Model>,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let mut report_ids: Vec<i32> = rows.iter().filter_map(|r| r.report_id).collect();
    report_ids.sort_unstable();
    report_ids.dedup();
    let reports = find_in::<report::Entity, _>(db, report::Column::Id, &report_ids, &[]).await?;
    let mut country_ids: Vec<i32> = reports.iter().filter_map(|r| r.country_id).collect();
    country_ids.sort_unstable();
    country_ids.dedup();
    let countries =
        find_in::<country::Entity, _>(db, country::Column::Id, &country_ids, &[]).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let report = row
                .report_id
                .and_then(|id| reports.iter().find(|r| r.id == id));
            let iso3 = report
                .and_then(|r| r.country_id)
                .and_then(|cid| countries.iter().find(|c| c.id == cid))
                .map(|c| c.iso3.clone());
            let year = report.map(|r| r.year);
            ChangeRecord::from_row(row, iso3, year)
        })
        .collect())
}
