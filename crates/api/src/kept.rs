//! What a process keeps between requests: answers to repeated anonymous queries, and the rows
//! the loaders read. One layer, two budgets, both in bytes.
//!
//! Everything kept is keyed by the store [`Version`] a request read before it computed or
//! loaded it (the revision and the random epoch every write stores, so a restored backup
//! written to again is another version), and given only to a request that read the same
//! version. A write by any process moves the version on; the first request that reads the new
//! version drops what was kept before it ([`Kept::observe`]). Kept rows may be newer than
//! their version (a write committed between the version read and the load), never older.
//!
//! Both caches are [`moka`] caches weighed in bytes with least-recently-used eviction (a new
//! version's entries must never be refused in favour of an old version's popular ones), so a
//! client who mints keys (a new query text, a new cursor) only pushes other entries out: it
//! never grows the process. Answers are bounded by `--response-cache-bytes`, rows by
//! `--row-cache-bytes`; 0 turns either off. When many requests miss the same answer, one
//! computes it and the others wait for it ([`Kept::answer`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use plangraph_persistence::{Version, Weigh};

/// Default bound of kept answers in `plangraph serve` (the library keeps none by default).
pub const DEFAULT_RESPONSE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Default bound of kept rows in `plangraph serve`: every row of a few hundred full reports.
pub const DEFAULT_ROW_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes an entry costs beyond its key and value (moka's own bookkeeping, roughly).
const ENTRY_OVERHEAD: usize = 96;

/// Which of the two caches, for metrics.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    Answers,
    Rows,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Self::Answers => "answers",
            Self::Rows => "rows",
        }
    }
}

/// What identifies a kept answer: everything of an anonymous request that can change it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub version: Version,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
}

impl AnswerKey {
    fn weight(&self, body: &Bytes) -> usize {
        body.len() + self.query.len() + self.variables.len() + ENTRY_OVERHEAD
    }
}

/// A kept row (or list of rows) of one loader key: the key itself, to tell two keys of one
/// hash apart, and the value (`None`: the key has no row, which is worth keeping too).
#[derive(Clone)]
struct RowEntry {
    weight: u32,
    value: Arc<dyn Any + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RowKey {
    version: Version,
    kind: TypeId,
    hash: u64,
}

/// The process's kept answers and rows (either may be off).
pub struct Kept {
    answers: Option<Cache<AnswerKey, Bytes>>,
    answers_max: usize,
    rows: Option<Cache<RowKey, RowEntry>>,
    /// The newest version seen; a newer one drops what was kept before it.
    newest: Mutex<Option<Version>>,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("answers", &self.answers.as_ref().map(Cache::weighted_size))
            .field("rows", &self.rows.as_ref().map(Cache::weighted_size))
            .finish_non_exhaustive()
    }
}

fn weight_u32(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Kept {
    /// Caches of at most `answers_bytes` and `rows_bytes`; 0 turns one off.
    pub fn new(answers_bytes: usize, rows_bytes: usize) -> Self {
        let answers = (answers_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(answers_bytes as u64)
                .weigher(|key: &AnswerKey, body: &Bytes| weight_u32(key.weight(body)))
                .eviction_policy(EvictionPolicy::lru())
                .build()
        });
        let rows = (rows_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(rows_bytes as u64)
                .weigher(|_: &RowKey, entry: &RowEntry| entry.weight)
                .eviction_policy(EvictionPolicy::lru())
                .build()
        });
        Self {
            answers,
            answers_max: answers_bytes,
            rows,
            newest: Mutex::new(None),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Is anything kept at all (else a request need not read the store's version)?
    pub fn is_on(&self) -> bool {
        self.answers.is_some() || self.rows.is_some()
    }

    pub fn keeps_answers(&self) -> bool {
        self.answers.is_some()
    }

    pub fn keeps_rows(&self) -> bool {
        self.rows.is_some()
    }

    /// A request read `version`: if the store moved on (a higher revision, or the same one with
    /// another epoch), what was kept for older versions is dropped at once instead of waiting
    /// to be pushed out. A lower revision is a request that read before the newest one (or a
    /// restored store): its entries are keyed by it and simply age out.
    pub fn observe(&self, version: Version) {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let moved_on = match *newest {
            None => true,
            Some(seen) => {
                version.revision > seen.revision
                    || (version.revision == seen.revision && version.epoch != seen.epoch)
            }
        };
        if !moved_on {
            return;
        }
        let had = newest.replace(version);
        drop(newest);
        if had.is_some() {
            if let Some(answers) = &self.answers {
                answers.invalidate_all();
            }
            if let Some(rows) = &self.rows {
                rows.invalidate_all();
            }
        }
    }

    /// The answer kept for `key`, if any.
    pub async fn kept_answer(&self, key: &AnswerKey) -> Option<Bytes> {
        let answers = self.answers.as_ref()?;
        let found = answers.get(key).await;
        record_lookup(Which::Answers, found.is_some());
        found
    }

    /// The answer for `key`: kept, or computed by `compute` — by this request, or by another
    /// that was computing it already (this one then waits for it: one computation per key).
    /// `compute` gives `Ok(body)` for an answer to keep, `Err(response)` for one that must not
    /// be kept (errors, a mutation); a request that waited for a computation whose answer was
    /// not kept gets `Waited` and computes its own.
    pub async fn answer<R, F>(&self, key: AnswerKey, compute: F) -> Computed<R>
    where
        F: Future<Output = Result<Bytes, R>>,
    {
        let Some(answers) = &self.answers else {
            return match compute.await {
                Ok(body) => Computed::Written { body, fresh: true },
                Err(response) => Computed::NotKept(response),
            };
        };
        let max = self.answers_max / 4;
        // The computing request's own answer when it is not to be kept (moka shares only the
        // fact of an error with the waiting requests).
        let mut not_kept: Option<R> = None;
        let mut computed_here = false;
        let outcome = answers
            .try_get_with(key, async {
                computed_here = true;
                match compute.await {
                    // One answer may take a quarter of the cache at most, so a few large
                    // ones and many small ones fit together.
                    Ok(body) if body.len() <= max => Ok(body),
                    Ok(body) => Err(TooLargeToKeep(body)),
                    Err(response) => {
                        not_kept = Some(response);
                        Err(TooLargeToKeep(Bytes::new()))
                    }
                }
            })
            .await;
        record_lookup(Which::Answers, !computed_here);
        self.record_size(Which::Answers);
        match outcome {
            Ok(body) => Computed::Written {
                body,
                fresh: computed_here,
            },
            Err(_) if !computed_here => Computed::Waited,
            Err(error) => match not_kept {
                Some(response) => Computed::NotKept(response),
                None => Computed::Written {
                    body: error.0.clone(),
                    fresh: true,
                },
            },
        }
    }

    /// The rows kept for `keys` at `version`, and the keys not kept.
    pub async fn rows<K, V>(&self, version: Version, keys: &[K]) -> (HashMap<K, V>, Vec<K>)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let Some(rows) = &self.rows else {
            return (HashMap::new(), keys.to_vec());
        };
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            let entry = rows.get(&self.row_key::<K, V>(version, key)).await;
            let kept = entry
                .as_ref()
                .and_then(|e| e.value.downcast_ref::<(K, Option<V>)>());
            match kept {
                Some((kept_key, value)) if kept_key == key => {
                    if let Some(value) = value {
                        found.insert(key.clone(), value.clone());
                    }
                }
                _ => missing.push(key.clone()),
            }
        }
        record_lookups(Which::Rows, keys.len() - missing.len(), missing.len());
        (found, missing)
    }

    /// Keeps what a load of `asked` at `version` found (keys without a row are kept as such).
    pub async fn keep_rows<K, V>(&self, version: Version, asked: &[K], found: &HashMap<K, V>)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + Weigh + 'static,
    {
        let Some(rows) = &self.rows else {
            return;
        };
        for key in asked {
            let value = found.get(key).cloned();
            let weight = std::mem::size_of::<(K, Option<V>)>()
                + value.as_ref().map_or(0, Weigh::weigh)
                + ENTRY_OVERHEAD;
            let entry = RowEntry {
                weight: weight_u32(weight),
                value: Arc::new((key.clone(), value)),
            };
            rows.insert(self.row_key::<K, V>(version, key), entry).await;
        }
        self.record_size(Which::Rows);
    }

    fn row_key<K: Hash + 'static, V: 'static>(&self, version: Version, key: &K) -> RowKey {
        RowKey {
            version,
            kind: TypeId::of::<(K, V)>(),
            hash: self.hasher.hash_one(key),
        }
    }

    /// Bytes kept now in one cache (moka settles its counts a little after inserts).
    pub fn bytes(&self, which: Which) -> u64 {
        match which {
            Which::Answers => self.answers.as_ref().map_or(0, Cache::weighted_size),
            Which::Rows => self.rows.as_ref().map_or(0, Cache::weighted_size),
        }
    }

    /// Settles the caches' pending bookkeeping (tests and metrics read exact sizes after it).
    pub async fn settle(&self) {
        if let Some(answers) = &self.answers {
            answers.run_pending_tasks().await;
        }
        if let Some(rows) = &self.rows {
            rows.run_pending_tasks().await;
        }
    }

    fn record_size(&self, which: Which) {
        metrics::gauge!("plangraph_cache_bytes", "cache" => which.label())
            .set(self.bytes(which) as f64);
    }
}

/// An answer too large to keep (or, empty, one that is not to be kept at all).
#[derive(Debug)]
struct TooLargeToKeep(Bytes);

/// What [`Kept::answer`] gave.
#[derive(Debug)]
pub enum Computed<R> {
    /// The answer's body: kept before (`fresh: false`), or computed by this request.
    Written { body: Bytes, fresh: bool },
    /// This request computed an answer that is not to be kept.
    NotKept(R),
    /// Another request computed the answer and it was not kept: compute this one's own.
    Waited,
}

fn record_lookup(which: Which, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("plangraph_cache_lookups_total", "cache" => which.label(), "result" => result)
        .increment(1);
}

fn record_lookups(which: Which, hits: usize, misses: usize) {
    if hits > 0 {
        metrics::counter!("plangraph_cache_lookups_total", "cache" => which.label(), "result" => "hit")
            .increment(hits as u64);
    }
    if misses > 0 {
        metrics::counter!("plangraph_cache_lookups_total", "cache" => which.label(), "result" => "miss")
            .increment(misses as u64);
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(revision: i64) -> Version {
        Version { revision, epoch: 7 }
    }

    fn key(version: Version, query: &str) -> AnswerKey {
        AnswerKey {
            version,
            query: query.to_owned(),
            operation_name: None,
            variables: String::new(),
        }
    }

    async fn keep(kept: &Kept, key: AnswerKey, body: &'static [u8]) {
        let computed: Computed<()> = kept
            .answer(key, async { Ok(Bytes::from_static(body)) })
            .await;
        assert!(matches!(computed, Computed::Written { fresh: true, .. }));
    }

    #[tokio::test]
    async fn an_answer_is_given_only_at_the_version_it_was_computed_at() {
        let kept = Kept::new(1 << 20, 0);
        kept.observe(at(5));
        keep(&kept, key(at(5), "{ a }"), b"five").await;
        assert_eq!(
            kept.kept_answer(&key(at(5), "{ a }")).await,
            Some(Bytes::from_static(b"five"))
        );
        assert_eq!(kept.kept_answer(&key(at(6), "{ a }")).await, None);
        // A newer version drops what was kept before it.
        kept.observe(at(6));
        assert_eq!(kept.kept_answer(&key(at(5), "{ a }")).await, None);
        // The same revision with another epoch (a restored backup written to again) is another
        // version.
        let restored = Version {
            revision: 6,
            epoch: 8,
        };
        keep(&kept, key(at(6), "{ b }"), b"six").await;
        assert_eq!(kept.kept_answer(&key(restored, "{ b }")).await, None);
    }

    #[tokio::test]
    async fn the_caches_stay_within_their_bytes() {
        let kept = Kept::new(64 * 1024, 64 * 1024);
        kept.observe(at(1));
        for n in 0..1_000 {
            let body = Bytes::from(vec![b'x'; 1_000]);
            let _: Computed<()> = kept
                .answer(key(at(1), &format!("{{ f{n} }}")), async { Ok(body) })
                .await;
            let rows: HashMap<i32, String> = HashMap::from([(n, "y".repeat(1_000))]);
            kept.keep_rows(at(1), &[n], &rows).await;
        }
        kept.settle().await;
        assert!(kept.bytes(Which::Answers) <= 64 * 1024, "{kept:?}");
        assert!(kept.bytes(Which::Rows) <= 64 * 1024, "{kept:?}");
        assert!(kept.bytes(Which::Rows) > 32 * 1024, "{kept:?}");
        // Over a quarter of the bound: computed, never kept.
        let computed: Computed<()> = kept
            .answer(key(at(1), "{ big }"), async {
                Ok(Bytes::from(vec![b'x'; 20_000]))
            })
            .await;
        assert!(matches!(computed, Computed::Written { fresh: true, .. }));
        assert_eq!(kept.kept_answer(&key(at(1), "{ big }")).await, None);
    }

    #[tokio::test]
    async fn rows_are_kept_with_their_absence_and_told_apart_by_type() {
        let kept = Kept::new(0, 1 << 20);
        let (found, missing) = kept.rows::<i32, String>(at(3), &[1, 2]).await;
        assert!(found.is_empty());
        assert_eq!(missing, vec![1, 2]);
        kept.keep_rows(at(3), &[1, 2], &HashMap::from([(1, "one".to_owned())]))
            .await;
        let (found, missing) = kept.rows::<i32, String>(at(3), &[1, 2, 3]).await;
        assert_eq!(found, HashMap::from([(1, "one".to_owned())]));
        assert_eq!(missing, vec![3], "2 is known to have no row");
        // Another value type under the same key type is another entry.
        assert_eq!(kept.rows::<i32, u64>(at(3), &[1]).await.1, vec![1]);
        assert_eq!(kept.rows::<i32, String>(at(4), &[1]).await.1, vec![1]);
    }

    #[tokio::test]
    async fn one_request_computes_an_answer_while_the_others_wait_for_it() {
        let kept = Arc::new(Kept::new(1 << 20, 0));
        let computations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let kept = kept.clone();
                let computations = computations.clone();
                tokio::spawn(async move {
                    let computed: Computed<()> = kept
                        .answer(key(at(1), "{ a }"), async {
                            computations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Ok(Bytes::from_static(b"one"))
                        })
                        .await;
                    match computed {
                        Computed::Written { body, .. } => body,
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Bytes::from_static(b"one"));
        }
        assert_eq!(computations.load(std::sync::atomic::Ordering::SeqCst), 1);

        // An answer not to be kept: the computing request gets its own, the waiting ones are
        // told to compute theirs.
        let first = {
            let kept = kept.clone();
            tokio::spawn(async move {
                kept.answer(key(at(1), "{ err }"), async {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Err::<Bytes, _>("own error")
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let second: Computed<&str> = kept
            .answer(key(at(1), "{ err }"), async { Err("never run") })
            .await;
        assert!(matches!(second, Computed::Waited), "{second:?}");
        assert!(matches!(
            first.await.unwrap(),
            Computed::NotKept("own error")
        ));
    }
}
