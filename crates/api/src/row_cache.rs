//! Rows the loaders read, kept per store revision and shared by the requests of a process.
//!
//! A report's rows change only when someone writes, and every write moves the store version on
//! (its revision, and a random epoch stored with it). So the rows a loader read are kept under
//! the version the request read before loading (its first load reads it, sharing the read with
//! the requests that arrive together: `Store::fresh_version`), and given to any later request
//! that reads the same version. A write by any
//! process moves the version, and the next request to read it drops everything kept: a request
//! never sees rows older than the version it read. Kept rows may be newer than their version (a
//! write committed between the version read and the load), never older. Keys longer than a
//! code are never kept, so clients cannot fill the cache with strings of their own.
//!
//! Only queries use it: a mutation reads through fresh loaders after its write, and each
//! subscription event through loaders of its own (see [`crate::pipeline`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use plangraph_persistence::Version;

/// Default bound of kept keys (each a row or a list of rows of one parent).
pub const DEFAULT_ROW_CACHE_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct RowCache {
    max_keys: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    version: Version,
    /// One map per loader key type: key → the value, or `None` for a key with no row.
    maps: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    keys: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("version", &self.version)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

type Map<K, V> = HashMap<K, Option<V>>;

impl RowCache {
    /// A cache of at most `max_keys` keys; `None` for 0 (off).
    pub fn new(max_keys: usize) -> Option<Self> {
        (max_keys > 0).then(|| Self {
            max_keys,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The values kept for `keys` at `version`, and the keys not kept. Another version (the
    /// store moved on, or, restored from a backup, back) drops everything kept first.
    pub fn get<K, V>(&self, version: Version, keys: &[K]) -> (HashMap<K, V>, Vec<K>)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let Ok(mut inner) = self.inner.lock() else {
            return (HashMap::new(), keys.to_vec());
        };
        if version != inner.version {
            inner.maps.clear();
            inner.keys = 0;
            inner.version = version;
        }
        let map = inner
            .maps
            .get(&TypeId::of::<Map<K, V>>())
            .and_then(|m| m.downcast_ref::<Map<K, V>>());
        let Some(map) = map else {
            return (HashMap::new(), keys.to_vec());
        };
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match map.get(key) {
                Some(Some(value)) => {
                    found.insert(key.clone(), value.clone());
                }
                Some(None) => {}
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }

    /// Keeps what a load of `asked` at `version` found (keys without a row are kept as such).
    pub fn put<K, V>(&self, version: Version, asked: &[K], found: &HashMap<K, V>)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if version != inner.version {
            return;
        }
        if inner.keys + asked.len() > self.max_keys {
            inner.maps.clear();
            inner.keys = 0;
        }
        let map = inner
            .maps
            .entry(TypeId::of::<Map<K, V>>())
            .or_insert_with(|| Box::new(Map::<K, V>::new()));
        let Some(map) = map.downcast_mut::<Map<K, V>>() else {
            return;
        };
        let mut added = 0;
        for key in asked {
            if map.insert(key.clone(), found.get(key).cloned()).is_none() {
                added += 1;
            }
        }
        inner.keys += added;
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(revision: i64) -> Version {
        Version { revision, epoch: 7 }
    }

    #[test]
    fn rows_are_given_only_at_their_version_and_absence_is_kept_too() {
        let cache = RowCache::new(100).expect("on");
        let (found, missing) = cache.get::<i32, String>(at(3), &[1, 2]);
        assert!(found.is_empty());
        assert_eq!(missing, vec![1, 2]);
        cache.put(at(3), &[1, 2], &HashMap::from([(1, "one".to_owned())]));
        let (found, missing) = cache.get::<i32, String>(at(3), &[1, 2, 3]);
        assert_eq!(found, HashMap::from([(1, "one".to_owned())]));
        assert_eq!(missing, vec![3], "2 is known to have no row");
        // Another value type under the same key type is another map.
        assert_eq!(cache.get::<i32, u8>(at(3), &[1]).1, vec![1]);
        // Rows loaded for another version are not kept.
        cache.put(at(2), &[5], &HashMap::from([(5, "five".to_owned())]));
        assert_eq!(cache.get::<i32, String>(at(3), &[5]).1, vec![5]);
        // Another version drops everything, a restored epoch too.
        let (found, missing) = cache.get::<i32, String>(at(4), &[1]);
        assert!(found.is_empty());
        assert_eq!(missing, vec![1]);
        cache.put(at(4), &[1], &HashMap::from([(1, "uno".to_owned())]));
        let restored = Version {
            revision: 4,
            epoch: 8,
        };
        assert_eq!(cache.get::<i32, String>(restored, &[1]).1, vec![1]);
    }

    #[test]
    fn the_cache_stays_within_its_keys() {
        let cache = RowCache::new(10).expect("on");
        for n in 0..100 {
            cache.get::<i32, i32>(at(1), &[n]);
            cache.put(at(1), &[n], &HashMap::from([(n, n)]));
            assert!(cache.inner.lock().unwrap().keys <= 10);
        }
        assert!(RowCache::new(0).is_none());
    }
}
