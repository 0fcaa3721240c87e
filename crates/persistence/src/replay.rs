//! History replays under one budget for the whole process.
//!
//! A subscriber that asks for the changes after a revision (`afterRevision: 0` included), or
//! one that fell behind the live feed, reads them from the history. Left alone, each replay
//! would read pages of up to several megabytes on a pooled connection of its own: 200 sockets
//! replaying a store of 6,548 changes took a process from 35 MB to 1 GB, and 400 emptied the
//! pool. So every replay page goes through this budget:
//!
//! - at most [`REPLAY_READS`] replay pages are read at a time (so replays use at most that many
//!   pooled connections and the other requests keep theirs);
//! - a page reserves the bytes of its recorded values from [`REPLAY_BYTES`] before it is read,
//!   and keeps them while its records are being handed to the subscriber; a replay whose page
//!   does not fit waits its turn. A crowd of replays waits instead of piling up memory.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::ConnectionTrait;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::StoreError;
use crate::changes::{ChangeFilter, ChangeRecord, page_sizes, read_changes, within_budget};
use crate::telemetry;

/// Bytes of recorded values held by replays across the process, at most.
pub const REPLAY_BYTES: usize = 48 * 1024 * 1024;

/// Replay pages read from the database at a time, across the process.
pub const REPLAY_READS: usize = 2;

/// A replay page's size: smaller than the API's history pages, so a crowd shares the budget
/// finely.
const REPLAY_PAGE_ROWS: u64 = 200;
const REPLAY_PAGE_BYTES: i64 = 1024 * 1024;

/// The process's replay budget.
struct Budget {
    bytes: Semaphore,
    reads: Semaphore,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
}

static BUDGET: LazyLock<Budget> = LazyLock::new(|| Budget {
    bytes: Semaphore::new(REPLAY_BYTES),
    reads: Semaphore::new(REPLAY_READS),
    in_flight: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    waiting: AtomicUsize::new(0),
});

/// How the process's replay budget stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Bytes of recorded values replays hold now.
    pub bytes_in_flight: usize,
    /// The most they ever held at once.
    pub peak_bytes_in_flight: usize,
    /// Replay pages waiting for a read or for bytes.
    pub waiting: usize,
    /// The bound on `bytes_in_flight`.
    pub bytes_limit: usize,
}

/// The process's replay budget now.
pub fn replay_stats() -> ReplayStats {
    ReplayStats {
        bytes_in_flight: BUDGET.in_flight.load(Ordering::SeqCst),
        peak_bytes_in_flight: BUDGET.peak.load(Ordering::SeqCst),
        waiting: BUDGET.waiting.load(Ordering::SeqCst),
        bytes_limit: REPLAY_BYTES,
    }
}

/// Bytes a page holds in the budget until it is dropped.
pub(crate) struct Held {
    permit: Option<SemaphorePermit<'static>>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            // Counted out before the bytes go back, so the count never runs past the bound.
            let now = BUDGET.in_flight.fetch_sub(self.bytes, Ordering::SeqCst) - self.bytes;
            metrics::gauge!(telemetry::REPLAY_BYTES).set(now as f64);
            drop(permit);
        }
    }
}

/// One page of a replay: its records (oldest first), the last revision it covered, and its
/// hold on the budget, to drop once the records are handed on.
pub(crate) struct ReplayPage {
    pub(crate) records: Vec<ChangeRecord>,
    pub(crate) last: i64,
    pub(crate) held: Held,
}

/// Counts a replay page waiting for its turn while it lives.
struct Waiting;

impl Waiting {
    fn new() -> Self {
        let now = BUDGET.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!(telemetry::REPLAYS_WAITING).set(now as f64);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let now = BUDGET.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!(telemetry::REPLAYS_WAITING).set(now as f64);
    }
}

/// The next page of changes matching `filter` after `after`, up to `up_to`, within the
/// process's replay budget; `None` when there is none.
pub(crate) async fn next_page(
    db: &impl ConnectionTrait,
    after: i64,
    up_to: Option<i64>,
    filter: &ChangeFilter,
) -> Result<Option<ReplayPage>, StoreError> {
    let waiting = Waiting::new();
    let read = BUDGET
        .reads
        .acquire()
        .await
        .map_err(|_| StoreError::unavailable("the replay budget is closed".to_owned()))?;
    let sizes = page_sizes(db, after, up_to, filter, REPLAY_PAGE_ROWS).await?;
    let Some(&(last_listed, _)) = sizes.last() else {
        return Ok(None);
    };
    // A single change larger than the whole budget still gets read, holding all of it.
    let (revisions, bytes) = within_budget(&sizes, REPLAY_PAGE_BYTES, i64::MAX);
    let bytes = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .min(REPLAY_BYTES);
    // Bytes are reserved without holding a read: the pages waiting for bytes must not keep
    // the pages that fit from being read.
    drop(read);
    let permit = BUDGET
        .bytes
        .acquire_many(u32::try_from(bytes).unwrap_or(u32::MAX))
        .await
        .map_err(|_| StoreError::unavailable("the replay budget is closed".to_owned()))?;
    let now = BUDGET.in_flight.fetch_add(bytes, Ordering::SeqCst) + bytes;
    BUDGET.peak.fetch_max(now, Ordering::SeqCst);
    metrics::gauge!(telemetry::REPLAY_BYTES).set(now as f64);
    let held = Held {
        permit: Some(permit),
        bytes,
    };
    let read = BUDGET
        .reads
        .acquire()
        .await
        .map_err(|_| StoreError::unavailable("the replay budget is closed".to_owned()))?;
    drop(waiting);
    let last = revisions.last().copied().unwrap_or(last_listed);
    let records = read_changes(db, revisions).await?;
    drop(read);
    Ok(Some(ReplayPage {
        records,
        last,
        held,
    }))
}
