//! Answers to repeated queries, kept per store revision.
//!
//! Dashboards and partner systems ask the same queries again and again, and the graph changes
//! only when someone writes. So a query's written answer is kept, tagged with the store
//! version read just before it was computed (the revision and the random epoch every write
//! stores with it, so a restored backup written to again is another version), and given again
//! while the store is still at that version. Each request reads the current version first (a
//! read that starts after the request arrived, shared with the requests arriving together:
//! `Store::fresh_version`), so a write committed by any process, through any transport, is seen
//! by the next request on every process: an answer older than the last committed revision is
//! never given. When several requests miss the same answer, one computes it and the others wait for
//! it (within their time budget).
//!
//! What is kept: answers to query operations over HTTP without errors, for requests without
//! `Authorization` (an answer that may depend on who asks, such as introspection in the
//! production profile, is never shared, and a revoked token never reads a kept answer).
//! Mutations, subscriptions and answers with errors always execute. The cache is bounded in
//! bytes; when a new revision arrives every older answer is dropped at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use async_graphql::parser::types::OperationType;
use plangraph_api::pipeline::operation_type;
use plangraph_persistence::Version;

/// Default bound of the kept answers' bytes.
pub const DEFAULT_RESPONSE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What identifies an answer: everything of the request that can change it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The media type answered (it changes statuses and bodies of request errors).
    pub media: &'static str,
    pub get: bool,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
}

impl Key {
    fn weight(&self, body: &Bytes) -> usize {
        body.len() + self.query.len() + self.variables.len() + 128
    }
}

#[derive(Debug)]
pub struct ResponseCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
    /// One computation per key at a time: after a write, 64 clients asking for the same
    /// dashboard wait for one answer instead of building 64 (and holding them all in memory).
    in_flight: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one request to compute a key's answer; the next waiting request gets it when
/// this is dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    cache: &'a ResponseCache,
    key: Key,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let Ok(mut in_flight) = self.cache.in_flight.lock() else {
            return;
        };
        // Only the map and this turn hold the lock: nobody waits, so the entry goes.
        if Arc::strong_count(&self.lock) == 2 {
            in_flight.remove(&self.key);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The store version (revision and epoch) every kept answer was computed at.
    version: Version,
    answers: HashMap<Key, Bytes>,
    bytes: usize,
}

impl ResponseCache {
    /// A cache of at most `max_bytes` of answers; `None` for 0 (caching off).
    pub fn new(max_bytes: usize) -> Option<Self> {
        (max_bytes > 0).then(|| Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// The turn to compute `key`'s answer when nobody is computing it (`Some`: hold it while
    /// computing, so requests for the same answer wait for this one). When another request is
    /// computing it, waits until that one is done (at most `wait`) and gives `None`: look in the
    /// cache again, and compute without a turn if the answer was not kept (an answer that
    /// cannot be kept, such as an error, is then computed by the waiting requests at once, not
    /// one after the other).
    pub async fn turn(&self, key: &Key, wait: Duration) -> Option<Turn<'_>> {
        let lock = match self.in_flight.lock() {
            Ok(mut in_flight) => in_flight
                .entry(key.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone(),
            Err(_) => return None,
        };
        let mut turn = Turn {
            cache: self,
            key: key.clone(),
            lock: lock.clone(),
            guard: None,
        };
        match lock.clone().try_lock_owned() {
            Ok(guard) => {
                turn.guard = Some(guard);
                Some(turn)
            }
            Err(_) => {
                // The guard, once had, is dropped at once: the answer is computed already.
                let _ = tokio::time::timeout(wait, lock.lock_owned()).await;
                drop(turn);
                None
            }
        }
    }

    /// The answer kept for `key`, if it was computed at `version` (the store's current one).
    pub fn get(&self, key: &Key, version: Version) -> Option<Bytes> {
        let inner = self.inner.lock().ok()?;
        if inner.version != version {
            return None;
        }
        inner.answers.get(key).cloned()
    }

    /// Keeps `body`, computed after reading `version`. Answers of any other version are
    /// dropped first: the store moved on (or, restored from a backup, back), and an answer is
    /// only ever given at the version it was computed at.
    pub fn put(&self, key: Key, version: Version, body: Bytes) {
        let weight = key.weight(&body);
        // One answer may take a quarter of the cache at most, so a few large ones (the full
        // dashboard) and many small ones fit together.
        if weight > self.max_bytes / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if version != inner.version || inner.bytes + weight > self.max_bytes {
            inner.answers.clear();
            inner.bytes = 0;
            inner.version = version;
        }
        if let Some(old) = inner.answers.insert(key.clone(), body) {
            inner.bytes = inner.bytes.saturating_sub(key.weight(&old));
        }
        inner.bytes += weight;
    }

    /// Bytes of the answers kept now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.bytes)
    }
}

/// True when the operation `operation_name` selects in `query` is a query (not a mutation or a
/// subscription). A document that does not parse or names no such operation is not.
pub fn is_query(query: &str, operation_name: Option<&str>) -> bool {
    async_graphql::parser::parse_query(query).is_ok_and(|document| {
        operation_type(&document, operation_name) == Some(OperationType::Query)
    })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(query: &str) -> Key {
        Key {
            media: "application/json",
            get: false,
            query: query.to_owned(),
            operation_name: None,
            variables: String::new(),
        }
    }

    fn at(revision: i64) -> Version {
        Version { revision, epoch: 7 }
    }

    #[test]
    fn an_answer_is_given_only_at_the_version_it_was_computed_at() {
        let cache = ResponseCache::new(1 << 20).expect("on");
        cache.put(key("{ a }"), at(5), Bytes::from_static(b"five"));
        assert_eq!(
            cache.get(&key("{ a }"), at(5)),
            Some(Bytes::from_static(b"five"))
        );
        assert_eq!(cache.get(&key("{ a }"), at(6)), None);
        assert_eq!(cache.get(&key("{ b }"), at(5)), None);
        // Another version drops the answers of the one before.
        cache.put(key("{ b }"), at(6), Bytes::from_static(b"six"));
        assert_eq!(cache.get(&key("{ a }"), at(5)), None);
        assert_eq!(
            cache.get(&key("{ b }"), at(6)),
            Some(Bytes::from_static(b"six"))
        );
        // The same revision with another epoch (a restored backup written to again) is another
        // version.
        let restored = Version {
            revision: 6,
            epoch: 8,
        };
        assert_eq!(cache.get(&key("{ b }"), restored), None);
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = ResponseCache::new(4096).expect("on");
        for n in 0..100 {
            cache.put(
                key(&format!("{{ f{n} }}")),
                at(1),
                Bytes::from(vec![b'x'; 500]),
            );
            assert!(cache.bytes() <= 4096, "{}", cache.bytes());
        }
        // Over a quarter of the bound: never kept.
        cache.put(key("{ big }"), at(1), Bytes::from(vec![b'x'; 2000]));
        assert_eq!(cache.get(&key("{ big }"), at(1)), None);
        assert!(ResponseCache::new(0).is_none());
    }

    #[tokio::test]
    async fn one_request_computes_an_answer_while_the_others_wait_for_it() {
        let cache = Arc::new(ResponseCache::new(1 << 20).expect("on"));
        let wait = std::time::Duration::from_secs(5);
        let first = cache
            .turn(&key("{ a }"), wait)
            .await
            .expect("nobody computes it yet");
        let waiting = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let turn = cache.turn(&key("{ a }"), wait).await;
                (turn.is_none(), cache.get(&key("{ a }"), at(1)))
            })
        };
        // Another key is not held up.
        assert!(cache.turn(&key("{ b }"), wait).await.is_some());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "the second request waits for the first"
        );
        cache.put(key("{ a }"), at(1), Bytes::from_static(b"one"));
        drop(first);
        let (without_turn, kept) = waiting.await.expect("joined");
        assert!(
            without_turn,
            "a waiting request looks again instead of taking a turn"
        );
        assert_eq!(kept, Some(Bytes::from_static(b"one")));
        assert!(cache.in_flight.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_waiting_request_waits_no_longer_than_told() {
        let cache = ResponseCache::new(1 << 20).expect("on");
        let _first = cache
            .turn(&key("{ a }"), std::time::Duration::from_secs(5))
            .await;
        let started = std::time::Instant::now();
        let turn = cache
            .turn(&key("{ a }"), std::time::Duration::from_millis(50))
            .await;
        assert!(turn.is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn only_query_operations_are_cacheable() {
        assert!(is_query("{ countries { iso3 } }", None));
        assert!(is_query("query A { a } mutation B { b }", Some("A")));
        assert!(!is_query("query A { a } mutation B { b }", Some("B")));
        assert!(!is_query("query A { a } query C { c }", None));
        assert!(!is_query("mutation { a }", None));
        assert!(!is_query("subscription { a }", None));
        assert!(!is_query("{ a", None));
        assert!(!is_query("{ a }", Some("A")));
    }
}
