//! The execution slots every query, mutation and subscription event takes turns in.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

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
