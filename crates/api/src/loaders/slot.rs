//! The request's loaders: where resolvers find them, and what they read through.

use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Result};
use plangraph_persistence::{Store, Version};

use super::{Loaders, StoreLoader};
use crate::error::LoadError;
use crate::kept::Kept;

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
    /// Rows its loaders read on behalf of each other (a report's joined parts).
    pub prefetched: Arc<super::prefetched::Prefetched>,
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

/// The DataLoader of the request (or of the subscription event) being resolved.
pub(crate) fn loader(ctx: &Context<'_>) -> Result<Arc<Loaders>> {
    Ok(ctx.data::<LoaderSlot>()?.current())
}

/// The rows a list-valued loader holds for `key`; none is an empty list.
pub(crate) async fn rows<K, M>(ctx: &Context<'_>, key: K) -> Result<Vec<M>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    StoreLoader: Loader<K, Value = Vec<M>, Error = LoadError>,
{
    Ok(loader(ctx)?.load_one(key).await?.unwrap_or_default())
}
