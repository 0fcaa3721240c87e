//! DataLoaders: every relationship of the graph is a batched look-up by a set of keys.
//!
//! One [`StoreLoader`] serves every key type; a fresh `DataLoader` is attached to each request
//! (see [`crate::pipeline`]). A query's loader reads the process's kept rows at the store
//! version its request read ([`crate::kept`]) and loads only what is not kept; everything else
//! loads from the store and keeps nothing past the request.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::Loader;
use plangraph_persistence::entities::{
    country, footnote, organization, partner_count, plan, platform, report, report_organization,
    report_totals, sector, sector_figures, share, source_link,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plangraph_persistence::{
    ChangeRecord, ChildTables, HistoryOwner, ReportChildren, ReportQuery, ReportWithParts,
    SectionWithParagraphs, Store, StoreError,
};

use crate::error::LoadError;

mod prefetched;
mod slot;

pub use prefetched::Prefetched;
pub use slot::{LoaderScope, LoaderSlot, fresh_loaders, new_loaders};
pub(crate) use slot::{loader, rows};

/// The request's loader as stored in the request data (with a per-request cache).
pub type Loaders =
    async_graphql::dataloader::DataLoader<StoreLoader, async_graphql::dataloader::HashMapCache>;

#[derive(Debug, Clone)]
pub struct StoreLoader {
    store: Store,
    /// The request's id, what it keeps, its history budget.
    scope: LoaderScope,
    /// Set once this loader logged a store failure: an outage is one log line per request,
    /// not one per batch or per field.
    failure_logged: Arc<AtomicBool>,
}

impl StoreLoader {
    pub fn new(store: Store, scope: LoaderScope) -> Self {
        Self {
            store,
            scope,
            failure_logged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Logs a batch's failure, the first of the request only.
    fn failed(&self, err: StoreError) -> LoadError {
        metrics::counter!("plangraph_store_errors_total", "code" => err.code()).increment(1);
        if !self.failure_logged.swap(true, Ordering::SeqCst) {
            tracing::error!(
                request_id = %self.scope.request_id,
                code = err.code(),
                error = %err,
                "store failure while loading"
            );
        }
        LoadError::from(err)
    }
}

/// Longest key kept by the row cache: codes and FTS ids are far shorter.
const MAX_KEPT_KEY_BYTES: usize = 64;

/// The bytes a loader key holds, so the row cache keeps only short ones.
trait KeyBytes {
    fn key_bytes(&self) -> usize;
}

impl KeyBytes for i32 {
    fn key_bytes(&self) -> usize {
        4
    }
}

impl KeyBytes for String {
    fn key_bytes(&self) -> usize {
        self.len()
    }
}

impl KeyBytes for () {
    fn key_bytes(&self) -> usize {
        0
    }
}

impl KeyBytes for (i32, ChildTables) {
    fn key_bytes(&self) -> usize {
        6
    }
}

impl KeyBytes for ReportQuery {
    fn key_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        text(&self.country_iso3) + text(&self.plan_code) + text(&self.kind) + 8
    }
}

/// One page of the `reports` listing: its filter, the id it starts after, how many rows, and
/// whether the filter's count is read with it (handed to [`ReportCount`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageOfReports {
    pub filter: ReportQuery,
    pub after: Option<i32>,
    pub limit: u64,
    pub with_count: bool,
}

impl KeyBytes for PageOfReports {
    fn key_bytes(&self) -> usize {
        self.filter.key_bytes() + 13
    }
}

/// Groups rows under their key, each row shared (see [`Row`]).
fn group<K: Eq + Hash, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<Row<V>>> {
    group_as_is(rows.into_iter().map(Arc::new), |row| key(row))
}

/// Groups items under their key, as they come.
fn group_as_is<K: Eq + Hash, V>(
    items: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = HashMap::new();
    for item in items {
        map.entry(key(&item)).or_default().push(item);
    }
    map
}

/// Rows by their key, each shared (see [`Row`]).
fn index<K: Eq + Hash, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Row<V>> {
    rows.into_iter().map(|r| (key(&r), Arc::new(r))).collect()
}

/// A row as the loaders hand it out: shared, not copied. async-graphql's DataLoader clones
/// every value it loads twice (once into the request's cache, once for each caller), and the
/// GraphQL objects keep what they are given while their fields resolve; with rows owned, each
/// of a dashboard's thousand sector rows (seven printed strings apiece) and hundred reports
/// lived three times over per request, a third of the heap at the peak (heaptrack, engine
/// alone, 16 connections). Shared, a clone is a count.
pub type Row<M> = Arc<M>;

/// Declares a key type and its batch load: `loader!(Name(i32) => Value, |store, keys| map)`.
macro_rules! loader {
    ($(#[$doc:meta])* $key:ident($inner:ty) => $value:ty, |$store:ident, $keys:ident| $body:expr) => {
        loader!($(#[$doc])* $key($inner) => $value, |$store, $keys, _prefetched| $body);
    };
    ($(#[$doc:meta])* $key:ident($inner:ty) => $value:ty,
     |$store:ident, $keys:ident, $prefetched:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $key(pub $inner);

        impl Loader<$key> for StoreLoader {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                // Rows another loader of the request read already, then kept rows.
                let (mut found, missing) = self.scope.prefetched.take::<$key, $value>(keys);
                if !found.is_empty()
                    && let Some((kept, version)) = &self.scope.kept
                {
                    // Kept as if this loader had read them: the next query finds them.
                    let handed: Vec<$key> = found.keys().cloned().collect();
                    kept.keep_rows(*version, &handed, &found).await;
                }
                if missing.is_empty() {
                    return Ok(found);
                }
                let (kept_rows, missing) = match &self.scope.kept {
                    Some((kept, version)) => kept.rows::<$key, $value>(*version, &missing).await,
                    None => (HashMap::new(), missing),
                };
                found.extend(kept_rows);
                if missing.is_empty() {
                    return Ok(found);
                }
                let $store = &self.store;
                let $prefetched = &self.scope.prefetched;
                let $keys: Vec<$inner> = missing.iter().map(|k| k.0.clone()).collect();
                let map = (async { Ok::<_, StoreError>($body) })
                    .await
                    .map_err(|e| self.failed(e))?;
                let loaded: HashMap<$key, $value> =
                    map.into_iter().map(|(k, v)| ($key(k), v)).collect();
                if let Some((kept, version)) = &self.scope.kept {
                    // Only keys a real row could have: a client's arbitrary strings never
                    // take the cache's room (absent keys are kept too).
                    let keep: Vec<$key> = missing
                        .iter()
                        .filter(|k| k.0.key_bytes() <= MAX_KEPT_KEY_BYTES)
                        .cloned()
                        .collect();
                    kept.keep_rows(*version, &keep, &loaded).await;
                }
                found.extend(loaded);
                Ok(found)
            }
        }
    };
}

loader!(
    /// Every country (the root `countries` list): one statement however often a request asks.
    AllCountries(()) => Vec<Row<country::Model>>, |store, keys| {
    let rows: Vec<_> = store.countries().await?.into_iter().map(Arc::new).collect();
    keys.into_iter().map(|k| (k, rows.clone())).collect::<HashMap<(), _>>()
});
loader!(
    /// Every sector (the root `sectors` list).
    AllSectors(()) => Vec<Row<sector::Model>>, |store, keys| {
    let rows: Vec<_> = store.sectors().await?.into_iter().map(Arc::new).collect();
    keys.into_iter().map(|k| (k, rows.clone())).collect::<HashMap<(), _>>()
});
loader!(
    /// A page of reports (with their parts, see [`with_parts`]). Through the loaders so the
    /// kept rows hold it too: a listing read again at the same store version costs no
    /// statement. Pages are few per request, so each is its own statement, its count (where
    /// asked for) in it.
    ReportPage(PageOfReports) => Vec<Row<report::Model>>, |store, keys, prefetched| {
    let mut pages = HashMap::new();
    for key in keys {
        let (rows, count) = store
            .reports_page_with_parts(&key.filter, key.after, key.limit, key.with_count)
            .await?;
        if let Some(count) = count {
            prefetched.put([(ReportCount(key.filter.clone()), count)]);
        }
        pages.insert(key, with_parts(prefetched, rows).into_iter().map(Arc::new).collect());
    }
    pages
});
loader!(
    /// How many reports a filter matches (`totalCount`), kept like the pages.
    ReportCount(ReportQuery) => u64, |store, keys| {
    let mut counts = HashMap::new();
    for key in keys {
        let count = store.reports_count(&key).await?;
        counts.insert(key, count);
    }
    counts
});
loader!(CountryById(i32) => Row<country::Model>, |store, keys| {
    index(store.countries_by_id(&keys).await?, |c| c.id)
});
loader!(CountryByIso3(String) => Row<country::Model>, |store, keys| {
    index(store.countries_by_iso3(&keys).await?, |c| c.iso3.clone())
});
loader!(PlatformByCode(String) => Row<platform::Model>, |store, keys| {
    index(store.platforms_by_code(&keys).await?, |p| p.code.clone())
});
loader!(PlanByCode(String) => Row<plan::Model>, |store, keys| {
    index(store.plans_by_code(&keys).await?, |p| p.code.clone())
});
loader!(
    /// Organisations by FTS id, keyed in lower case (FTS ids match whatever their case).
    OrganizationByFtsId(String) => Row<organization::Model>, |store, keys| {
    index(store.organizations_by_fts_id(&keys).await?, |o| {
        o.fts_id.as_deref().unwrap_or_default().to_lowercase()
    })
});
loader!(PlatformById(i32) => Row<platform::Model>, |store, keys| {
    index(store.platforms_by_id(&keys).await?, |p| p.id)
});
loader!(PlanById(i32) => Row<plan::Model>, |store, keys| {
    index(store.plans_by_id(&keys).await?, |p| p.id)
});
loader!(ReportById(i32) => Row<report::Model>, |store, keys, prefetched| {
    let rows = store.reports_with_parts_by_id(&keys).await?;
    index(with_parts(prefetched, rows), |r| r.id)
});
loader!(
    /// Reports of a country, newest first.
    ReportsOfCountry(i32) => Vec<Row<report::Model>>, |store, keys, prefetched| {
    let rows = store.reports_with_parts_by_country(&keys).await?;
    group(with_parts(prefetched, rows), |r| r.country_id.unwrap_or_default())
});

/// The reports of `rows`; their plans, countries, platforms and totals (joined to them) left
/// for the loaders of those (a statement each saved, and a round).
fn with_parts(prefetched: &Prefetched, rows: Vec<ReportWithParts>) -> Vec<report::Model> {
    let mut plans = Vec::new();
    let mut countries = Vec::new();
    let mut platforms = Vec::new();
    let mut totals = Vec::new();
    let mut reports = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(plan) = row.plan {
            plans.push((PlanById(plan.id), Arc::new(plan)));
        }
        if let Some(country) = row.country {
            countries.push((CountryById(country.id), Arc::new(country)));
        }
        if let Some(platform) = row.platform {
            platforms.push((PlatformById(platform.id), Arc::new(platform)));
        }
        if let Some(t) = row.totals {
            totals.push((TotalsOfReport(t.report_id), Arc::new(t)));
        }
        reports.push(row.report);
    }
    prefetched.put(plans);
    prefetched.put(countries);
    prefetched.put(platforms);
    prefetched.put(totals);
    reports
}
loader!(
    /// One of a report's child tables (of those a query's selection of it asks for): the
    /// batch's tables are read in one statement for all its reports and handed to the
    /// loaders of each table (`Store::report_children`). Nothing to hand over on SQLite, or
    /// where it would not pay: those loaders read.
    ChildrenOf((i32, ChildTables)) => (), |store, keys, prefetched| {
    let mut tables = ChildTables::NONE;
    let mut ids = Vec::with_capacity(keys.len());
    for (id, asked) in &keys {
        tables |= *asked;
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    if let Some(children) = store.report_children(&ids, tables).await? {
        hand_over(prefetched, children);
    }
    keys.into_iter().map(|key| (key, ())).collect::<HashMap<_, _>>()
});

/// Leaves each table of `children` (and each report with its parts, where read with them)
/// for the loader that would have read it.
fn hand_over(prefetched: &Prefetched, children: Vec<ReportChildren>) {
    let (mut figures, mut sectors, mut shares, mut counts) = (vec![], vec![], vec![], vec![]);
    let (mut organizations, mut sections, mut footnotes, mut sources) =
        (vec![], vec![], vec![], vec![]);
    let (mut sub_sectors, mut reports) = (vec![], vec![]);
    for mut child in children {
        let id = child.report_id;
        reports.extend(child.report.take());
        // The sub-sectors of each row's sector are all among `sectors` (the statement reads
        // them with the rows); those of a parent not a row of the report may not be, so only
        // the rows' own sectors are handed over, those without sub-sectors as empty lists.
        let all: Option<Vec<Row<sector::Model>>> = child.sectors.take().map(shared);
        if let (Some(rows), Some(all)) = (&child.sector_figures, &all) {
            for parent in rows.iter().map(|row| row.sector_id) {
                let mut children: Vec<Row<sector::Model>> = all
                    .iter()
                    .filter(|s| s.parent_id == Some(parent))
                    .cloned()
                    .collect();
                children.sort_by_key(|s| (s.position, s.id));
                sub_sectors.push((SubSectorsOf(parent), children));
            }
        }
        figures.extend(keyed(child.sector_figures, SectorFiguresOfReport(id)));
        sectors.extend(all.into_iter().flatten().map(|s| (SectorById(s.id), s)));
        shares.extend(keyed(child.shares, SharesOfReport(id)));
        counts.extend(keyed(child.partner_counts, PartnerCountsOfReport(id)));
        organizations.extend(
            child
                .organizations
                .map(|rows| (OrganizationsOfReport(id), linked(rows))),
        );
        sections.extend(keyed(child.sections, SectionsOfReport(id)));
        footnotes.extend(keyed(child.footnotes, FootnotesOfReport(id)));
        sources.extend(keyed(child.sources, SourcesOfReport(id)));
    }
    let reports = with_parts(prefetched, reports);
    prefetched.put(reports.into_iter().map(|r| (ReportById(r.id), Arc::new(r))));
    prefetched.put(figures);
    prefetched.put(sectors);
    prefetched.put(sub_sectors);
    prefetched.put(shares);
    prefetched.put(counts);
    prefetched.put(organizations);
    prefetched.put(sections);
    prefetched.put(footnotes);
    prefetched.put(sources);
}
/// Each of `rows`, shared (a dry run passes copies of rows it keeps, one at a time).
pub(crate) fn shared<V>(rows: impl IntoIterator<Item = V>) -> Vec<Row<V>> {
    rows.into_iter().map(Arc::new).collect()
}

/// A report's links to organisations, the link and the organisation each shared: the report's
/// `partners` and `donors` hand out the organisation itself, not a copy of it.
pub(crate) fn linked<L, O>(rows: impl IntoIterator<Item = (L, O)>) -> Vec<(Row<L>, Row<O>)> {
    rows.into_iter()
        .map(|(link, organization)| (Arc::new(link), Arc::new(organization)))
        .collect()
}

/// A table's rows read for one report (if it was read), shared, under the loader's key.
fn keyed<K, V>(rows: Option<Vec<V>>, key: K) -> Option<(K, Vec<Row<V>>)> {
    rows.map(|rows| (key, shared(rows)))
}

loader!(TotalsOfReport(i32) => Row<report_totals::Model>, |store, keys| {
    index(store.totals_by_report(&keys).await?, |t| t.report_id)
});
loader!(SectorFiguresOfReport(i32) => Vec<Row<sector_figures::Model>>, |store, keys| {
    group(store.sector_figures_by_report(&keys).await?, |f| f.report_id)
});
loader!(SectorById(i32) => Row<sector::Model>, |store, keys| {
    index(store.sectors_by_id(&keys).await?, |s| s.id)
});
loader!(SectorByCode(String) => Row<sector::Model>, |store, keys| {
    index(store.sectors_by_code(&keys).await?, |s| s.code.clone())
});
loader!(SubSectorsOf(i32) => Vec<Row<sector::Model>>, |store, keys| {
    group(store.sectors_by_parent(&keys).await?, |s| s.parent_id.unwrap_or_default())
});
loader!(SharesOfReport(i32) => Vec<Row<share::Model>>, |store, keys| {
    group(store.shares_by_report(&keys).await?, |s| s.report_id)
});
loader!(PartnerCountsOfReport(i32) => Vec<Row<partner_count::Model>>, |store, keys| {
    group(store.partner_counts_by_report(&keys).await?, |p| p.report_id)
});
loader!(FootnotesOfReport(i32) => Vec<Row<footnote::Model>>, |store, keys| {
    group(store.footnotes_by_report(&keys).await?, |f| f.report_id)
});
loader!(SourcesOfReport(i32) => Vec<Row<source_link::Model>>, |store, keys| {
    group(store.sources_by_report(&keys).await?, |s| s.report_id)
});
loader!(SectionsOfReport(i32) => Vec<Row<SectionWithParagraphs>>, |store, keys| {
    group(store.sections_by_report(&keys).await?, |s| s.section.report_id)
});
loader!(OrganizationById(i32) => Row<organization::Model>, |store, keys| {
    index(store.organizations_by_id(&keys).await?, |o| o.id)
});
loader!(
    /// Organizations linked to a report, with the link's role.
    OrganizationsOfReport(i32) => Vec<(Row<report_organization::Model>, Row<organization::Model>)>,
    |store, keys| {
    group_as_is(linked(store.organizations_by_report(&keys).await?), |(link, _)| link.report_id)
});

/// One page of a report's or an organisation's history: `limit` changes before `before`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryPage {
    pub owner: HistoryOwner,
    pub id: i32,
    pub before: Option<i64>,
    pub limit: u64,
}

/// A page of history: its changes, newest first, and whether the page's byte budget cut it.
#[derive(Debug, Clone, Default)]
pub struct HistoryRows {
    pub changes: Vec<Arc<ChangeRecord>>,
    pub cut: bool,
}

impl Loader<HistoryPage> for StoreLoader {
    type Value = HistoryRows;
    type Error = LoadError;

    /// One statement per distinct page shape (owner kind, `before`, `limit`), whatever the
    /// number of owners: a list of reports asking for `history(first: 5)` costs one.
    async fn load(
        &self,
        keys: &[HistoryPage],
    ) -> Result<HashMap<HistoryPage, Self::Value>, LoadError> {
        let mut shapes: HashMap<(HistoryOwner, Option<i64>, u64), Vec<i32>> = HashMap::new();
        for key in keys {
            shapes
                .entry((key.owner, key.before, key.limit))
                .or_default()
                .push(key.id);
        }
        let mut pages: HashMap<HistoryPage, Self::Value> = keys
            .iter()
            .map(|k| (k.clone(), HistoryRows::default()))
            .collect();
        for ((owner, before, limit), ids) in shapes {
            // The request's budget, shared by all its history pages: `reports(first: 100) {
            // history(first: 100) }` reads a few megabytes in all, not a few per report.
            let budget = self
                .scope
                .history_budget
                .as_ref()
                .map_or(i64::MAX, |b| b.load(Ordering::SeqCst).max(0));
            let (found, used) = self
                .store
                .history_pages_within(owner, &ids, before, limit, budget)
                .await
                .map_err(|e| self.failed(e))?;
            if let Some(remaining) = &self.scope.history_budget {
                remaining.fetch_sub(used, Ordering::SeqCst);
            }
            for (id, records, cut) in found {
                let key = HistoryPage {
                    owner,
                    id,
                    before,
                    limit,
                };
                let changes = records.into_iter().map(Arc::new).collect();
                pages.insert(key, HistoryRows { changes, cut });
            }
        }
        Ok(pages)
    }
}

/// How many changes a report's or an organisation's history holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryCount {
    pub owner: HistoryOwner,
    pub id: i32,
}

impl Loader<HistoryCount> for StoreLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[HistoryCount]) -> Result<HashMap<HistoryCount, u64>, LoadError> {
        let mut counts: HashMap<HistoryCount, u64> = keys.iter().map(|k| (k.clone(), 0)).collect();
        for owner in [HistoryOwner::Report, HistoryOwner::Organization] {
            let ids: Vec<i32> = keys
                .iter()
                .filter(|k| k.owner == owner)
                .map(|k| k.id)
                .collect();
            for (id, n) in self
                .store
                .history_counts(owner, &ids)
                .await
                .map_err(|e| self.failed(e))?
            {
                counts.insert(HistoryCount { owner, id }, n);
            }
        }
        Ok(counts)
    }
}
