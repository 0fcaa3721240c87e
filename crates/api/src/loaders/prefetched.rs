//! Rows one of a request's loaders read on behalf of another.
//!
//! A report is read with its plan, country, platform and totals joined to it (one statement,
//! see `Store::reports_with_parts_by_id`); those rows wait here, per request, for the loaders
//! that would otherwise read them in the next round, which take them instead of running a
//! statement. What a loader takes, the request's DataLoader caches from then on, so a row is
//! handed over once and then dropped from here; rows nobody asks for stay until the request
//! ends (bounded by the rows the request read).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use async_graphql::dataloader::Loader;

use super::StoreLoader;
use super::slot::lock;

/// The rows waiting for their loaders, by key type.
#[derive(Default)]
pub struct Prefetched {
    rows: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
}

impl std::fmt::Debug for Prefetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetched").finish_non_exhaustive()
    }
}

impl Prefetched {
    /// Leaves `rows` for the loader of `K`. Rows are found by their type, so the value must
    /// be the loader's own (the bound makes a mismatch a compile error, not rows never found).
    pub(crate) fn put<K, V>(&self, rows: impl IntoIterator<Item = (K, V)>)
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Send + 'static,
        StoreLoader: Loader<K, Value = V>,
    {
        let mut all = lock(&self.rows);
        let waiting = all
            .entry(TypeId::of::<K>())
            .or_insert_with(|| Box::new(HashMap::<K, V>::new()));
        if let Some(waiting) = waiting.downcast_mut::<HashMap<K, V>>() {
            waiting.extend(rows);
        }
    }

    /// The rows of `keys` left for the loader of `K` (taken), and the keys it must still load.
    pub(crate) fn take<K, V>(&self, keys: &[K]) -> (HashMap<K, V>, Vec<K>)
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Send + 'static,
        StoreLoader: Loader<K, Value = V>,
    {
        let mut all = lock(&self.rows);
        let Some(waiting) = all
            .get_mut(&TypeId::of::<K>())
            .and_then(|w| w.downcast_mut::<HashMap<K, V>>())
        else {
            return (HashMap::new(), keys.to_vec());
        };
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for key in keys {
            match waiting.remove(key) {
                Some(value) => {
                    found.insert(key.clone(), value);
                }
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }
}
