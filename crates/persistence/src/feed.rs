//! The change feed: the one source of "something changed".
//!
//! Every committed write is a row of `change` with a store-wide revision. Writers take the
//! revision counter's row lock first and keep it until they commit, so revisions commit in
//! order and without gaps (a rolled-back write gives its number back). The feed therefore only
//! ever has to say "read everything after the last revision I announced":
//!
//! - after each commit in this process (both databases);
//! - on Postgres, on every `NOTIFY plangraph_changes` (sent inside the writing transaction, so it
//!   arrives only once the change is committed) from any process; the listener reconnects by
//!   itself after the database restarts and then reads what it missed;
//! - on SQLite, once a second, for writes by other processes (a `plangraph import` beside the
//!   server).
//!
//! A subscriber ([`Store::watch`]) first replays the history after the revision it asks for,
//! then follows the live feed, skipping what it already has; if it falls behind the feed's
//! buffer it reads the gap from the history. So a subscriber loses nothing, whichever process
//! wrote and whatever happened to the connection in between.

use std::any::Any;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_core::Stream;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::sync::broadcast;

use crate::entities::{change, country, report, store_revision};
use crate::reads::find_in;
use crate::snapshot::FieldChange;
use crate::{Store, StoreError};

/// The Postgres notification channel writers notify on.
pub(crate) const CHANNEL: &str = "plangraph_changes";

/// Events buffered per process for slow subscribers; one that falls further behind reads the
/// gap from the history instead. Small on purpose: a paused subscriber keeps up to this many
/// events in memory.
const BUFFER: usize = 256;

/// Changes read from the history per page, at most.
const PAGE: u64 = 500;

/// Bytes of recorded values read from the history per page, at most (a single larger change
/// is still read whole; [`crate::write`] caps a change's size).
const PAGE_BYTES: i64 = 8 * 1024 * 1024;

/// How often a SQLite store looks for other processes' writes while someone is subscribed.
const SQLITE_POLL: Duration = Duration::from_secs(1);

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
    fn column(self) -> &'static str {
        match self {
            Self::Report => "report_id",
            Self::Organization => "organization_id",
        }
    }
}

/// The `n`th bind parameter of a raw statement in `backend`'s syntax.
fn placeholder(backend: sea_orm::DatabaseBackend, n: usize) -> String {
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
    fn condition(&self) -> Condition {
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

/// The process's side of the feed.
pub(crate) struct Feed {
    sender: broadcast::Sender<Arc<ChangeRecord>>,
    /// The last revision announced to this process's subscribers.
    announced: tokio::sync::Mutex<i64>,
    /// Set once the listener (Postgres) or poller (SQLite) runs.
    watcher: OnceLock<()>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("subscribers", &self.sender.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            announced: tokio::sync::Mutex::new(0),
            watcher: OnceLock::new(),
        }
    }
}

/// Changes after `after` up to `up_to` (inclusive), oldest first, at most [`PAGE`].
async fn page_of_changes(
    db: &impl ConnectionTrait,
    after: i64,
    up_to: Option<i64>,
    filter: &ChangeFilter,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let mut cond = filter.condition().add(change::Column::Revision.gt(after));
    if let Some(up_to) = up_to {
        cond = cond.add(change::Column::Revision.lte(up_to));
    }
    // Sizes first (narrow rows), then whole changes up to a byte budget: a page of large
    // imports must not hold gigabytes.
    let sizes: Vec<(i64, i64)> = change::Entity::find()
        .select_only()
        .column(change::Column::Revision)
        .column(change::Column::FieldsBytes)
        .filter(cond)
        .order_by_asc(change::Column::Revision)
        .limit(PAGE)
        .into_tuple()
        .all(db)
        .await?;
    let revisions = within_budget(&sizes);
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

/// The leading revisions whose changes fit in [`PAGE_BYTES`] together (at least one).
fn within_budget(sizes: &[(i64, i64)]) -> Vec<i64> {
    let mut total: i64 = 0;
    let mut kept = Vec::new();
    for &(revision, bytes) in sizes {
        if !kept.is_empty() && total.saturating_add(bytes) > PAGE_BYTES {
            break;
        }
        total = total.saturating_add(bytes);
        kept.push(revision);
    }
    kept
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

/// A committed state of the store: its revision and the random epoch written with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Version {
    pub revision: i64,
    pub epoch: i64,
}

pub(crate) async fn head_revision(db: &impl ConnectionTrait) -> Result<i64, StoreError> {
    Ok(head_version(db).await?.revision)
}

pub(crate) async fn head_version(db: &impl ConnectionTrait) -> Result<Version, StoreError> {
    Ok(store_revision::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or(Version::default(), |r| Version {
            revision: r.value,
            epoch: r.epoch,
        }))
}

impl Store {
    /// The revision of the last committed write (0 for a store nobody wrote to yet).
    pub async fn head_revision(&self) -> Result<i64, StoreError> {
        head_revision(&self.db).await
    }

    /// The revision and its random epoch, in one statement: what caches key their content by
    /// (the number alone repeats when a restored backup is written to again).
    pub async fn head_version(&self) -> Result<Version, StoreError> {
        head_version(&self.db).await
    }

    /// Every change matching `filter` after revision `after`, oldest first.
    pub async fn changes_after(
        &self,
        after: i64,
        filter: &ChangeFilter,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = after;
        loop {
            let page = page_of_changes(&self.db, cursor, None, filter).await?;
            let Some(last) = page.last() else { break };
            cursor = last.revision;
            let full = page.len() as u64 == PAGE;
            all.extend(page.into_iter().filter(|r| filter.matches(r)));
            if !full {
                break;
            }
        }
        Ok(all)
    }

    /// The newest changes of each of `ids` (reports' or organisations'), before revision
    /// `before` (exclusive), at most `limit` each and at most a page's worth of bytes each,
    /// newest first; `true` beside an owner whose page the byte budget cut. Two statements for
    /// any number of owners: a window function ranks each owner's changes on narrow columns,
    /// then the kept changes are read whole. The records carry no country or year.
    pub async fn history_pages(
        &self,
        owner: HistoryOwner,
        ids: &[i32],
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<(i32, Vec<ChangeRecord>, bool)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let column = owner.column();
        let mut values: Vec<sea_orm::Value> = ids.iter().map(|&id| id.into()).collect();
        let marks: Vec<String> = (1..=ids.len()).map(|n| placeholder(backend, n)).collect();
        let mut condition = format!("c.{column} IN ({})", marks.join(", "));
        if let Some(before) = before {
            values.push(before.into());
            condition.push_str(&format!(
                " AND c.revision < {}",
                placeholder(backend, values.len())
            ));
        }
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let limit_mark = placeholder(backend, values.len());
        let sql = format!(
            "SELECT revision, owner_id, fields_bytes \
             FROM (SELECT c.revision, c.{column} AS owner_id, c.fields_bytes, \
                          ROW_NUMBER() OVER (PARTITION BY c.{column} ORDER BY c.revision DESC) AS rank_in_owner \
                   FROM change c WHERE {condition}) ranked \
             WHERE rank_in_owner <= {limit_mark} ORDER BY owner_id, revision DESC"
        );
        let ranked = self
            .db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        let mut per_owner: Vec<(i32, Vec<(i64, i64)>)> = Vec::new();
        for row in ranked {
            let revision: i64 = row.try_get("", "revision")?;
            let owner_id: i32 = row.try_get("", "owner_id")?;
            let bytes: i64 = row.try_get("", "fields_bytes")?;
            match per_owner.last_mut() {
                Some((id, list)) if *id == owner_id => list.push((revision, bytes)),
                _ => per_owner.push((owner_id, vec![(revision, bytes)])),
            }
        }
        let mut cut = std::collections::HashMap::new();
        let mut wanted = Vec::new();
        for (owner_id, list) in &per_owner {
            let kept = within_budget(list);
            cut.insert(*owner_id, kept.len() < list.len());
            wanted.extend(kept);
        }
        let rows = if wanted.is_empty() {
            Vec::new()
        } else {
            change::Entity::find()
                .filter(change::Column::Revision.is_in(wanted))
                .order_by_desc(change::Column::Revision)
                .all(&self.db)
                .await?
        };
        let mut pages: Vec<(i32, Vec<ChangeRecord>, bool)> = per_owner
            .iter()
            .map(|(id, _)| (*id, Vec::new(), cut.get(id).copied().unwrap_or(false)))
            .collect();
        for row in rows {
            let key = match owner {
                HistoryOwner::Report => row.report_id,
                HistoryOwner::Organization => row.organization_id,
            };
            if let Some(page) = pages.iter_mut().find(|(id, _, _)| Some(*id) == key) {
                page.1.push(ChangeRecord::from_row(row, None, None));
            }
        }
        Ok(pages)
    }

    /// How many changes each of `ids` has; one statement.
    pub async fn history_counts(
        &self,
        owner: HistoryOwner,
        ids: &[i32],
    ) -> Result<Vec<(i32, u64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let column = match owner {
            HistoryOwner::Report => change::Column::ReportId,
            HistoryOwner::Organization => change::Column::OrganizationId,
        };
        let rows: Vec<(Option<i32>, i64)> = change::Entity::find()
            .select_only()
            .column(column)
            .column_as(change::Column::Revision.count(), "n")
            .filter(column.is_in(ids.iter().copied()))
            .group_by(column)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, n)| Some((id?, u64::try_from(n).unwrap_or_default())))
            .collect())
    }

    /// Changes matching `filter`: first every one after `after` from the history (none when
    /// `after` is `None`), then each as it commits, in revision order, each once.
    pub fn watch(
        &self,
        filter: ChangeFilter,
        after: Option<i64>,
    ) -> impl Stream<Item = Result<Arc<ChangeRecord>, StoreError>> + Send + 'static + use<> {
        let store = self.clone();
        async_stream::try_stream! {
            let (mut live, head) = store.subscribe_live().await?;
            let mut cursor = after.unwrap_or(head);
            // Replay what the subscriber missed, up to the head seen when it subscribed;
            // anything later arrives live.
            while cursor < head {
                let page = page_of_changes(&store.db, cursor, Some(head), &filter).await?;
                let Some(last) = page.last().map(|r| r.revision) else { break };
                for record in page.into_iter().filter(|r| filter.matches(r)) {
                    yield Arc::new(record);
                }
                cursor = last;
            }
            cursor = Ord::max(cursor, head);
            loop {
                match live.recv().await {
                    Ok(record) => {
                        if record.revision <= cursor {
                            continue;
                        }
                        cursor = record.revision;
                        if filter.matches(&record) {
                            yield record;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber fell behind; reading the gap from the history");
                        let head = head_revision(&store.db).await?;
                        while cursor < head {
                            let page = page_of_changes(&store.db, cursor, Some(head), &filter).await?;
                            let Some(last) = page.last().map(|r| r.revision) else { break };
                            for record in page.into_iter().filter(|r| filter.matches(r)) {
                                yield Arc::new(record);
                            }
                            cursor = last;
                        }
                        cursor = Ord::max(cursor, head);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    }

    /// A receiver of the live feed, and a head revision: every change after that head will
    /// arrive on the receiver. The feed's lock is held only for the moment of subscribing, never
    /// across a query, so subscribing never holds up the announcement of a write.
    async fn subscribe_live(
        &self,
    ) -> Result<(broadcast::Receiver<Arc<ChangeRecord>>, i64), StoreError> {
        self.start_watcher();
        let feed = &self.shared.feed;
        let read = head_revision(&self.db).await?;
        let mut announced = feed.announced.lock().await;
        if feed.sender.receiver_count() == 0 {
            // Nobody was listening, so nothing after what we read has been announced yet (the
            // announcer skips the work then); start from here instead of replaying the past.
            *announced = Ord::max(*announced, read);
        }
        let receiver = feed.sender.subscribe();
        // Changes up to what was announced before we subscribed will not arrive on the receiver:
        // they are the caller's to read from the history, so the head covers them too.
        let head = Ord::max(*announced, read);
        Ok((receiver, head))
    }

    /// Announces every change committed since the last announcement, in order.
    pub(crate) async fn announce(&self) {
        if let Err(err) = announce(&self.db, &self.shared.feed).await {
            tracing::warn!(code = err.code(), error = %err, "could not read new changes for subscribers; will retry on the next change");
        }
    }

    fn start_watcher(&self) {
        let feed = &self.shared.feed;
        if feed.watcher.set(()).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let db = self.db.clone();
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                let url = self.shared.url.clone();
                tokio::spawn(listen(weak, db, url));
            }
            _ => {
                tokio::spawn(poll(weak, db));
            }
        }
    }
}

async fn announce(db: &DatabaseConnection, feed: &Feed) -> Result<(), StoreError> {
    let mut announced = feed.announced.lock().await;
    if feed.sender.receiver_count() == 0 {
        return Ok(());
    }
    loop {
        let page = page_of_changes(db, *announced, None, &ChangeFilter::default()).await?;
        let full = page.len() as u64 == PAGE;
        for record in page {
            *announced = record.revision;
            // An error only means every receiver is gone.
            let _ = feed.sender.send(Arc::new(record));
        }
        if !full {
            return Ok(());
        }
    }
}

/// Postgres: listens for other processes' commits; reconnects and catches up after an outage.
async fn listen(shared: Weak<crate::store::Shared>, db: DatabaseConnection, url: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(feed_owner) = shared.upgrade() else {
            return;
        };
        drop(feed_owner);
        let mut listener = match PgListener::connect(&url).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "change listener cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %err, "change listener cannot LISTEN; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        tracing::debug!("change listener connected");
        // Whatever committed while we were not listening.
        if let Some(owner) = shared.upgrade()
            && let Err(err) = announce(&db, &owner.feed).await
        {
            tracing::warn!(error = %err, "change listener could not catch up");
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(_notification)) => {
                    let Some(owner) = shared.upgrade() else {
                        return;
                    };
                    if let Err(err) = announce(&db, &owner.feed).await {
                        tracing::warn!(error = %err, "could not read a notified change; will catch up");
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::warn!("change listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// SQLite: notices other processes' writes while anyone is subscribed.
async fn poll(shared: Weak<crate::store::Shared>, db: DatabaseConnection) {
    loop {
        tokio::time::sleep(SQLITE_POLL).await;
        let Some(owner) = shared.upgrade() else {
            return;
        };
        if owner.feed.sender.receiver_count() == 0 {
            continue;
        }
        if let Err(err) = announce(&db, &owner.feed).await {
            tracing::warn!(error = %err, "could not read new changes");
        }
    }
}
