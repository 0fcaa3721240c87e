//! What a request holds while it runs: an execution slot, and its loaders.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::dataloader::{DataLoader, HashMapCache};
use plangraph_persistence::{Store, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::kept::Kept;
use crate::loaders::{Loaders, StoreLoader};

/// The process's execution slots ([`crate::QueryLimits::max_concurrent`]): a query or mutation
/// (over HTTP or a WebSocket) runs once it holds one, and a subscription event resolves once it
/// holds one (so a thousand subscribers of a large selection build a few answers at a time, not
/// a thousand at once). Busy and waiting slots are metrics
/// (`plangraph_execution_slots_busy`, `plangraph_execution_slots_waiting`).
#[derive(Debug, Clone)]
pub struct ExecutionSlots {
    semaphore: Arc<Semaphore>,
    total: usize,
    waiting: Arc<AtomicI64>,
}

impl ExecutionSlots {
    pub fn new(slots: usize) -> Self {
        let total = slots.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
            waiting: Arc::new(AtomicI64::new(0)),
        }
    }

    /// A slot, once one is free (first come, first served).
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        let _waiting = Waiting::new(self);
        let permit = self.semaphore.acquire().await.ok();
        drop(_waiting);
        self.record_busy();
        permit
    }

    /// A slot held by its owner (a subscription event keeps it while its fields resolve).
    pub async fn acquire_owned(&self) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::new(self);
        let permit = self.semaphore.clone().acquire_owned().await.ok();
        drop(_waiting);
        self.record_busy();
        permit
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    fn record_busy(&self) {
        let busy = self
            .total
            .saturating_sub(self.semaphore.available_permits());
        metrics::gauge!("plangraph_execution_slots_busy").set(busy as f64);
    }
}

/// A request waiting for a slot, counted while it waits (a dropped wait counts out too).
struct Waiting<'a>(&'a ExecutionSlots);

impl<'a> Waiting<'a> {
    fn new(slots: &'a ExecutionSlots) -> Self {
        let now = slots.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("plangraph_execution_slots_waiting").set(now as f64);
        Self(slots)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let now = self.0.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("plangraph_execution_slots_waiting").set(now as f64);
    }
}

/// The request's DataLoader. Resolvers read it through [`LoaderSlot::current`]; a subscription
/// replaces it before each event so an event never sees rows loaded before its change, and a
/// mutation after its write. Clones share the slot.
#[derive(Clone)]
pub struct LoaderSlot {
    current: Arc<Mutex<Arc<Loaders>>>,
}

impl std::fmt::Debug for LoaderSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderSlot").finish_non_exhaustive()
    }
}

/// What a request's loaders read through.
#[derive(Debug, Clone, Default)]
pub struct LoaderScope {
    /// The request's id, named in the log line of a store failure.
    pub request_id: String,
    /// The process's kept rows and the store version the request read (queries only).
    pub kept: Option<(Arc<Kept>, Version)>,
    /// Bytes of history the request may still read (shared by its loaders).
    pub history_budget: Option<Arc<AtomicI64>>,
}

/// A DataLoader over `store` with an empty cache, reading nothing kept.
pub fn new_loaders(store: &Store) -> Loaders {
    loaders_for(store, LoaderScope::default())
}

fn loaders_for(store: &Store, scope: LoaderScope) -> Loaders {
    DataLoader::with_cache(
        StoreLoader::new(store.clone(), scope),
        spawn_batch,
        HashMapCache::default(),
    )
    // No timer before a batch: DataLoader's default 1 ms (a timer on another thread, so 1-2 ms)
    // was paid once per level of every request, most of a cached answer's time, while its
    // execution slot was held. A request resolves in one task, so the fields of a level ask
    // for their keys in one pass of it; the batch task, spawned behind it, starts after.
    .delay(std::time::Duration::ZERO)
}

/// Runs a loader's batch once the tasks ready now had their turn: the request that asked
/// (and any other woken with it) finishes its pass and adds its keys to the batch first.
fn spawn_batch(batch: async_graphql::futures_util::future::BoxFuture<'static, ()>) {
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        batch.await;
    });
}

/// [`new_loaders`], shared.
pub fn fresh_loaders(store: &Store) -> Arc<Loaders> {
    Arc::new(new_loaders(store))
}

impl LoaderSlot {
    pub fn new(store: &Store) -> Self {
        Self::scoped(store, LoaderScope::default())
    }

    /// A slot whose loaders read through `scope`.
    pub fn scoped(store: &Store, scope: LoaderScope) -> Self {
        Self {
            current: Arc::new(Mutex::new(Arc::new(loaders_for(store, scope)))),
        }
    }

    // The guarded value is only ever replaced whole, so a poisoned lock still holds a valid
    // loader (see `lock`).
    pub fn current(&self) -> Arc<Loaders> {
        lock(&self.current).clone()
    }

    /// Resolves what follows with `loaders`. Subscription events are resolved one after the
    /// other, so setting the slot before yielding an event scopes the loader to that event.
    pub fn set(&self, loaders: Arc<Loaders>) {
        *lock(&self.current) = loaders;
    }
}

/// A lock whose holder panicked still guards a whole value here (values are replaced whole).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
