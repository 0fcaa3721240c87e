//! Fresh store versions for many requests at once, from one statement per round trip.
//!
//! The caches key what they keep by the store's [`Version`], and every request must read a
//! version no older than the last write committed before it arrived (a write through another
//! process included). Reading it per request costs one statement, a round trip to Postgres, per
//! request: most of a cached answer's cost. The gate keeps that guarantee with far fewer
//! statements: a request joins the next *round*, a read that starts after the request joined,
//! and shares its answer with every request that joined the same round. While one round reads,
//! the requests that arrive wait for the next, which starts when the running one ends; so there is
//! at most one read in flight and one waiting, whatever the concurrency, and no request is ever
//! answered by a read that began before it arrived.
//!
//! A read that fails answers the waiting round too (a failure is not a stale version), so with
//! the store down a request waits for one failing read, not two.
//!
//! Rounds are read by a spawned task, not by one of the waiting requests: a request dropped mid-way
//! (a client that went away, a timeout) never leaves the others of its round waiting.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::StoreError;
use crate::background::Background;
use crate::version::{Version, head_version};

/// What a round's read found; `None` until it is read.
type Outcome = Option<Result<Version, Arc<StoreError>>>;

/// One read of the version and the requests that share it.
type Round = watch::Sender<Outcome>;

/// The process's rounds (one per [`crate::Store`] and its clones).
#[derive(Debug, Default)]
pub(crate) struct VersionGate {
    state: Arc<Mutex<GateState>>,
}

#[derive(Debug, Default)]
struct GateState {
    /// A round is reading now (its requests joined before it started).
    reading: bool,
    /// The round that starts when the reading one ends; requests arriving now join it.
    next: Option<Arc<Round>>,
}

/// The state; a holder that panicked left it whole (every change is one assignment).
fn lock(state: &Mutex<GateState>) -> MutexGuard<'_, GateState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VersionGate {
    /// The round a request arriving now joins, started at once (on `background`) when none is
    /// reading.
    fn join(&self, db: &DatabaseConnection, background: &Background) -> watch::Receiver<Outcome> {
        let mut state = lock(&self.state);
        if let Some(next) = &state.next {
            return next.subscribe();
        }
        let round = Arc::new(watch::Sender::new(None));
        let receiver = round.subscribe();
        if state.reading {
            state.next = Some(round);
        } else {
            state.reading = true;
            // The hold is taken here, not in the task: a task dropped before it first runs
            // (its runtime shut down) gives the gate back too.
            let reading = Reading {
                state: self.state.clone(),
                db: db.clone(),
                finished: false,
            };
            background.spawn(read_rounds(reading, round));
        }
        receiver
    }
}

/// The reading task's hold on the gate. If the task ends without finishing (its runtime shut
/// down before or during a read), the gate opens again and the waiting round is dropped, so its requests answer
/// at once instead of waiting for a read nobody will start.
struct Reading {
    state: Arc<Mutex<GateState>>,
    db: DatabaseConnection,
    finished: bool,
}

impl Drop for Reading {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = lock(&self.state);
            state.reading = false;
            state.next = None;
        }
    }
}

/// Reads rounds one after another until none is waiting.
async fn read_rounds(mut reading: Reading, mut round: Arc<Round>) {
    loop {
        let version = head_version(&reading.db).await.map_err(Arc::new);
        round.send_replace(Some(version.clone()));
        let state_lock = reading.state.clone();
        let mut state = lock(&state_lock);
        match state.next.take() {
            Some(next) if version.is_ok() => round = next,
            // A failure is shared with the requests that joined while it was being read: a
            // version must be read after a request arrived, a failing store need not be
            // failed on again (with the store down, that would double every request's wait).
            Some(next) => {
                next.send_replace(Some(version));
                state.reading = false;
                reading.finished = true;
                return;
            }
            None => {
                state.reading = false;
                reading.finished = true;
                return;
            }
        }
    }
}

impl VersionGate {
    /// The revision and epoch of the last write committed before this call, shared with the
    /// calls made at the same time (see the module's documentation).
    pub(crate) async fn fresh(
        &self,
        db: &DatabaseConnection,
        background: &Background,
    ) -> Result<Version, StoreError> {
        let mut receiver = self.join(db, background);
        let outcome = match receiver.wait_for(Option::is_some).await {
            Ok(value) => value.clone(),
            // The reading task ended without an answer (its runtime shut down mid-read).
            Err(_) => None,
        };
        match outcome {
            Some(Ok(version)) => Ok(version),
            Some(Err(err)) => Err(StoreError::Shared(err)),
            None => Err(StoreError::unavailable(
                "the store's version could not be read".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::StatementCounter;
    use crate::store::Store;

    /// A store in a fresh file (every pooled connection of `sqlite::memory:` is its own database).
    async fn store(name: &str) -> (Store, StatementCounter, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("plangraph-gate-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let counter = StatementCounter::default();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect_counted(&url, counter.clone()).await.unwrap();
        store.migrate().await.unwrap();
        (store, counter, path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_at_once_share_a_read_and_see_what_committed_before_them() {
        let (store, counter, path) = store("share").await;
        let head = store.head_version().await.unwrap();
        counter.reset();
        let calls: Vec<_> = (0..200)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.fresh_version().await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), head);
        }
        // One round reading, at most one waiting; far from one read per caller (how many rounds
        // ran depends on the timing, never more than the callers split into).
        let reads = counter.get();
        assert!((1..=20).contains(&reads), "{reads} reads for 200 callers");

        // A write committed before a call is in that call's version.
        assert!(lock(&store.shared.versions.state).next.is_none());
        use sea_orm::ConnectionTrait;
        store
            .db
            .execute_unprepared(
                "UPDATE store_revision SET value = value + 1, epoch = 7 WHERE id = 1",
            )
            .await
            .unwrap();
        let after = store.fresh_version().await.unwrap();
        assert_eq!(after, store.head_version().await.unwrap());
        assert_eq!((after.revision, after.epoch), (head.revision + 1, 7));
        drop(store);
        let _ = std::fs::remove_file(path);
    }

    /// A reading task dropped with its runtime (before it ran) leaves the gate open: the next
    /// call, on another runtime, reads instead of waiting for ever.
    #[test]
    fn a_reader_lost_with_its_runtime_does_not_shut_the_gate() {
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (store, _counter, path) = main.block_on(store("lost"));
        let doomed = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        doomed.block_on(async {
            // Joins (and spawns the reader on this runtime), then gives up at once.
            let call = std::pin::pin!(store.fresh_version());
            assert!(futures_poll_once(call).is_none());
        });
        drop(doomed);
        let version = main.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), store.fresh_version()).await
        });
        assert!(matches!(version, Ok(Ok(_))), "{version:?}");
        drop(store);
        let _ = std::fs::remove_file(path);
    }

    /// Polls a future once.
    fn futures_poll_once<F: std::future::Future>(
        future: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut context) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }
}
