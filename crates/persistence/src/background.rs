//! Where a store runs its background tasks: the version gate's reads, the change feed's
//! listener (Postgres) or poller (SQLite), and the announcement after a write.
//!
//! By default a task goes to the runtime of whoever first needs it (`tokio::spawn`). In the
//! server that is one actix worker's single-threaded runtime: a busy worker would delay every
//! worker's version read, and a worker that goes takes the listener with it. The server gives
//! the store a handle on its own multi-threaded runtime instead ([`crate::Store::run_background_on`]).

use std::future::Future;
use std::sync::{PoisonError, RwLock};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The runtime background tasks are spawned on; none set: the caller's.
#[derive(Debug, Default)]
pub(crate) struct Background {
    handle: RwLock<Option<Handle>>,
}

impl Background {
    pub(crate) fn set(&self, handle: Handle) {
        *self.handle.write().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// Spawns `task` on the store's runtime, or on the caller's when none was given.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self
            .handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match handle {
            Some(handle) => handle.spawn(task),
            None => tokio::spawn(task),
        }
    }
}
