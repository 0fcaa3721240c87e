//! Counting the SQL statements a store sends, for tests that prove loaders batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the SQL statements a store sends; tests use it to prove loaders batch.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    pub(crate) fn increment(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
