//! The change feed: the one source of "something changed", in this process.
//!
//! Every committed write is a row of `change` with a store-wide revision. Writers take the
//! revision counter's row lock first and keep it until they commit, so revisions commit in
//! order and without gaps (a rolled-back write gives its number back). The feed therefore only
//! has to say "read everything after the last revision I announced":
//!
//! - after each commit in this process (both databases);
//! - on Postgres, on every `NOTIFY plangraph_changes` (sent inside the writing transaction, so it
//!   arrives only once the change is committed) from any process; the listener reconnects by
//!   itself after the database restarts and then reads what it missed;
//! - on SQLite, once a second, for writes by other processes (a `plangraph import` beside the
//!   server).
//!
//! Revisions only grow, except when a backup is restored under running servers: the store's
//! revision goes back, or its history after some revision is another one. Before announcing,
//! the feed checks that the change it announced last is still the one in the history (same
//! revision, same commit time) and that the head did not go below it; if not, it finds the
//! newest change it announced that still is, tells the subscribers the store was rewound to
//! it ([`FeedEvent::Rewound`]) and goes on from there.
//!
//! The listener or poller runs on the store's background runtime; one that ended (it
//! panicked, or its runtime went) is started again by the next subscription and reads what it
//! missed from the history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::StoreError;
use crate::changes::{ChangeFilter, ChangeRecord, PAGE, page_of_changes, placeholder};
use crate::telemetry;

/// The Postgres notification channel writers notify on.
pub(crate) const CHANNEL: &str = "plangraph_changes";

/// Events buffered per process for slow subscribers; one that falls further behind reads the
/// gap from the history instead. Small on purpose: a paused subscriber keeps up to this many
/// events in memory.
const BUFFER: usize = 256;

/// Announced changes remembered (revision and commit time), to find where a restored store
/// parts from what was announced.
const REMEMBERED: usize = 256;

/// Rewinds remembered, for subscribers that fell behind while one was announced.
const REWINDS_KEPT: usize = 64;

/// How often a SQLite store looks for other processes' writes while someone is subscribed.
const SQLITE_POLL: Duration = Duration::from_secs(1);

/// What the feed tells this process's subscribers.
#[derive(Debug, Clone)]
pub(crate) enum FeedEvent {
    /// A committed change.
    Change(Arc<ChangeRecord>),
    /// The store went back to this revision (a backup restored): what follows it is new, even
    /// at revisions a subscriber already saw.
    Rewound(i64),
}

/// The process's side of the feed.
pub(crate) struct Feed {
    sender: broadcast::Sender<FeedEvent>,
    announced: tokio::sync::Mutex<Announced>,
    watcher: Mutex<Watcher>,
    rewinds: Mutex<Rewinds>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("subscribers", &self.sender.receiver_count())
            .finish_non_exhaustive()
    }
}

/// What this process announced last.
#[derive(Debug, Default)]
struct Announced {
    revision: i64,
    /// The last changes announced, oldest first: revision and commit time.
    recent: VecDeque<(i64, DateTime<Utc>)>,
}

impl Announced {
    fn push(&mut self, revision: i64, at: DateTime<Utc>) {
        self.revision = revision;
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((revision, at));
    }

    fn rewind(&mut self, to: i64) {
        self.revision = to;
        self.recent.retain(|&(revision, _)| revision <= to);
    }
}

/// The listener's or poller's task, and whether one ever ran.
#[derive(Debug, Default)]
struct Watcher {
    task: Option<JoinHandle<()>>,
    started: bool,
}

/// Rewinds announced, numbered.
#[derive(Debug, Default)]
struct Rewinds {
    generation: u64,
    kept: VecDeque<(u64, i64)>,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            announced: tokio::sync::Mutex::new(Announced::default()),
            watcher: Mutex::new(Watcher::default()),
            rewinds: Mutex::new(Rewinds::default()),
        }
    }

    /// Subscribes to the live feed. `read` is a head revision read just before, `last` the
    /// newest change in the history read just before (only needed when nobody is subscribed:
    /// then nothing was announced lately, and the feed starts from it instead of replaying
    /// the past). Returns the receiver, a head (every change after it will arrive on the
    /// receiver) and the rewind generation. The feed's lock is held only for the moment of
    /// subscribing, never across a query, so subscribing never holds up an announcement.
    pub(crate) async fn subscribe(
        &self,
        read: i64,
        last: Option<Option<(i64, DateTime<Utc>)>>,
    ) -> (broadcast::Receiver<FeedEvent>, i64, u64) {
        let mut announced = self.announced.lock().await;
        if self.sender.receiver_count() == 0
            && let Some(last) = last
        {
            *announced = Announced::default();
            if let Some((revision, at)) = last {
                announced.push(revision, at);
            }
        }
        let receiver = self.sender.subscribe();
        // Changes up to what was announced before we subscribed will not arrive on the
        // receiver: they are the caller's to read from the history, so the head covers them.
        let head = Ord::max(announced.revision, read);
        (receiver, head, self.rewind_generation())
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub(crate) fn rewind_generation(&self) -> u64 {
        self.rewinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// The lowest revision the store was rewound to since `generation`, if it was; `Some(0)`
    /// when the rewinds since are no longer all known.
    pub(crate) fn rewound_since(&self, generation: u64) -> Option<i64> {
        let rewinds = self.rewinds.lock().unwrap_or_else(PoisonError::into_inner);
        if rewinds.generation == generation {
            return None;
        }
        let known = rewinds
            .kept
            .front()
            .is_some_and(|&(first, _)| first <= generation + 1);
        let lowest = rewinds
            .kept
            .iter()
            .filter(|&&(n, _)| n > generation)
            .map(|&(_, to)| to)
            .min();
        if known { lowest } else { Some(0) }
    }

    fn note_rewind(&self, to: i64) {
        let mut rewinds = self.rewinds.lock().unwrap_or_else(PoisonError::into_inner);
        rewinds.generation += 1;
        let generation = rewinds.generation;
        if rewinds.kept.len() == REWINDS_KEPT {
            rewinds.kept.pop_front();
        }
        rewinds.kept.push_back((generation, to));
    }

    /// Starts the listener or poller with `start` unless one is running; counts a restart when
    /// one ran before and ended.
    pub(crate) fn ensure_watcher(&self, start: impl FnOnce() -> JoinHandle<()>) {
        let mut watcher = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        if watcher
            .task
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        if watcher.started {
            metrics::counter!(telemetry::FEED_RESTARTS).increment(1);
            tracing::warn!("the change feed's listener had stopped; starting it again");
        }
        watcher.started = true;
        watcher.task = Some(start());
    }

    /// Tests: stops the listener or poller as a crash would, and waits until it is gone.
    pub(crate) async fn kill_watcher(&self) {
        let task = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .task
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Announces every change committed since the last announcement, in order, after following
/// a rewind of the store if there was one.
pub(crate) async fn announce(db: &DatabaseConnection, feed: &Feed) -> Result<(), StoreError> {
    let mut announced = feed.announced.lock().await;
    if feed.sender.receiver_count() == 0 {
        return Ok(());
    }
    if let Some(to) = rewound_to(db, &announced).await? {
        tracing::warn!(
            from = announced.revision,
            to,
            "the store's history went back (a restored backup?); subscribers follow it from there"
        );
        metrics::counter!(telemetry::FEED_REWINDS).increment(1);
        announced.rewind(to);
        feed.note_rewind(to);
        let _ = feed.sender.send(FeedEvent::Rewound(to));
    }
    loop {
        let page = page_of_changes(db, announced.revision, None, &ChangeFilter::default()).await?;
        let full = page.len() as u64 == PAGE;
        let now = Utc::now();
        for record in page {
            announced.push(record.revision, record.at);
            let lag = (now - record.at).to_std().unwrap_or_default();
            metrics::histogram!(telemetry::FEED_LAG).record(lag.as_secs_f64());
            metrics::gauge!(telemetry::FEED_REVISION).set(record.revision as f64);
            // An error only means every receiver is gone.
            let _ = feed.sender.send(FeedEvent::Change(Arc::new(record)));
        }
        if !full {
            return Ok(());
        }
    }
}

/// The revision the store went back to, if the history no longer goes through what was
/// announced last. One statement when nothing changed under the feed.
async fn rewound_to(
    db: &DatabaseConnection,
    announced: &Announced,
) -> Result<Option<i64>, StoreError> {
    let Some(&(revision, at)) = announced.recent.back() else {
        return Ok(None);
    };
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT (SELECT value FROM store_revision WHERE id = 1) AS head, \
                        (SELECT at FROM change WHERE revision = {}) AS at",
                placeholder(backend, 1)
            ),
            [revision.into()],
        ))
        .await?;
    let (head, stored_at) = match row {
        Some(row) => (
            row.try_get::<Option<i64>>("", "head")?.unwrap_or_default(),
            row.try_get::<Option<DateTime<Utc>>>("", "at")?,
        ),
        None => (0, None),
    };
    if head >= revision && stored_at == Some(at) {
        return Ok(None);
    }
    // Where the history parts from what was announced: the newest remembered change still in
    // it as it was.
    let remembered: Vec<i64> = announced.recent.iter().map(|&(r, _)| r).collect();
    let marks: Vec<String> = (1..=remembered.len())
        .map(|n| placeholder(backend, n))
        .collect();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT revision, at FROM change WHERE revision IN ({})",
                marks.join(", ")
            ),
            remembered.iter().map(|&r| r.into()),
        ))
        .await?;
    let mut still: Vec<(i64, DateTime<Utc>)> = Vec::with_capacity(rows.len());
    for row in rows {
        still.push((row.try_get("", "revision")?, row.try_get("", "at")?));
    }
    let kept = announced
        .recent
        .iter()
        .rev()
        .find(|entry| entry.0 <= head && still.contains(entry))
        .map(|&(r, _)| r);
    let to = match kept {
        Some(to) => to,
        // None of the remembered changes is left: everything committed after the newest of
        // them is new (one more statement, only after a restore).
        None => {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT MIN(revision) AS first FROM change WHERE at > {}",
                        placeholder(backend, 1)
                    ),
                    [at.into()],
                ))
                .await?;
            let first = match row {
                Some(row) => row.try_get::<Option<i64>>("", "first")?,
                None => None,
            };
            first.map_or(head, |first| first - 1)
        }
    };
    Ok(Some(Ord::min(Ord::max(to, 0), head)))
}

/// The newest change in the history: its revision and commit time.
pub(crate) async fn last_change(
    db: &impl ConnectionTrait,
) -> Result<Option<(i64, DateTime<Utc>)>, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT revision, at FROM change ORDER BY revision DESC LIMIT 1",
        ))
        .await?;
    match row {
        Some(row) => Ok(Some((row.try_get("", "revision")?, row.try_get("", "at")?))),
        None => Ok(None),
    }
}

/// Postgres: listens for other processes' commits; reconnects and catches up after an outage.
pub(crate) async fn listen(feed: Weak<Feed>, db: DatabaseConnection, url: SecretString) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if feed.strong_count() == 0 {
            return;
        }
        let mut listener = match PgListener::connect(url.expose_secret()).await {
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
        if let Some(owner) = feed.upgrade()
            && let Err(err) = announce(&db, &owner).await
        {
            tracing::warn!(error = %err, "change listener could not catch up");
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(_notification)) => {
                    let Some(owner) = feed.upgrade() else {
                        return;
                    };
                    if let Err(err) = announce(&db, &owner).await {
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

/// SQLite: notices other processes' writes while anyone is subscribed; catches up at once
/// when it starts.
pub(crate) async fn poll(feed: Weak<Feed>, db: DatabaseConnection) {
    loop {
        let Some(owner) = feed.upgrade() else {
            return;
        };
        if owner.has_subscribers()
            && let Err(err) = announce(&db, &owner).await
        {
            tracing::warn!(error = %err, "could not read new changes");
        }
        drop(owner);
        tokio::time::sleep(SQLITE_POLL).await;
    }
}

/// Which backend a connection is on, for choosing the listener or the poller.
pub(crate) fn is_postgres(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}
