//! The execution slots every query, mutation and subscription event takes turns in.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// The process's execution slots ([`crate::QueryLimits::max_concurrent`]): a query or mutation
/// (over HTTP or a WebSocket) runs once it holds one, and a subscription event resolves once it
/// holds one (so a thousand subscribers of a large selection build a few answers at a time, not
/// a thousand at once). Events take a place in their own share first
/// ([`crate::QueryLimits::max_concurrent_events`], half the slots by default), so a crowd of
/// replays or subscribers can hold at most that share and queries always find the rest. Busy
/// and waiting slots are metrics (`plangraph_execution_slots_busy`,
/// `plangraph_execution_slots_waiting`).
#[derive(Debug, Clone)]
pub struct ExecutionSlots {
    semaphore: Arc<Semaphore>,
    events: Arc<Semaphore>,
    replays: Option<Arc<ReplayPace>>,
    total: usize,
    waiting: Arc<AtomicI64>,
}

/// The pace of replayed events, process-wide ([`crate::QueryLimits::replay_events_per_second`]).
///
/// Slots bound how many events resolve at once, not how much of the CPU they take: each event
/// is also decoded, written and sent outside its slot, so 200 sockets replaying 4,302 changes
/// each kept both cores busy for half a minute and the dashboard query's p99 went from 5 ms to
/// 18 ms even with one event slot. Replays catch a client up on the past, which can wait a
/// little; live events are never paced. Waiters queue on a fair lock so one at a time asks the
/// limiter (a crowd asking at once would wake together at every tick).
#[derive(Debug)]
struct ReplayPace {
    limiter: DefaultDirectRateLimiter,
    queue: Mutex<()>,
}

/// The slot a subscription event resolves in, and its place in the events' share.
#[derive(Debug)]
pub struct EventSlot {
    _share: OwnedSemaphorePermit,
    _slot: OwnedSemaphorePermit,
}

impl ExecutionSlots {
    /// `slots` in all, at most `event_slots` of them (0: half, at least one) held by events;
    /// replayed events paced at `replays_per_second` (0: not paced).
    pub fn new(slots: usize, event_slots: usize, replays_per_second: u32) -> Self {
        let total = slots.clamp(1, Semaphore::MAX_PERMITS);
        let events = if event_slots == 0 {
            total / 2
        } else {
            event_slots
        }
        .clamp(1, total);
        Self {
            semaphore: Arc::new(Semaphore::new(total)),
            events: Arc::new(Semaphore::new(events)),
            replays: NonZeroU32::new(replays_per_second).map(|rate| {
                Arc::new(ReplayPace {
                    // Bursts of a tenth of a second's worth: a client's short catch-up is
                    // not slowed at all.
                    limiter: RateLimiter::direct(
                        Quota::per_second(rate).allow_burst(
                            NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN),
                        ),
                    ),
                    queue: Mutex::new(()),
                })
            }),
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

    /// A slot for a subscription event, held by its owner while its fields resolve: for a
    /// replayed event its turn at the replays' pace first, then a place in the events' share,
    /// then a slot.
    pub async fn acquire_for_event(&self, replayed: bool) -> Option<EventSlot> {
        if replayed && let Some(pace) = &self.replays {
            let _turn = pace.queue.lock().await;
            pace.limiter.until_ready().await;
        }
        let _waiting = Waiting::new(self);
        let share = self.events.clone().acquire_owned().await.ok()?;
        let slot = self.semaphore.clone().acquire_owned().await.ok()?;
        drop(_waiting);
        self.record_busy();
        Some(EventSlot {
            _share: share,
            _slot: slot,
        })
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
