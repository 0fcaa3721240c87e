//! The writer: where every write transaction runs, one at a time per process on SQLite, a few
//! at a time on Postgres, each bounded in time, none left half-open.
//!
//! Writes run on a pool of their own, apart from the readers'. A write that fails for any reason
//! is rolled back explicitly (never left to a drop), and one that fails because of the store
//! (a statement or `COMMIT` the database refused, a lost connection, a timeout) also has the
//! writer's pool replaced: its connections are closed as they come back, so a connection whose
//! transaction state is in doubt never serves another write or any read. That is what a full
//! disk did to SQLite: after `SQLITE_FULL` the database had already rolled the transaction
//! back, the driver's `ROLLBACK` then failed and left its count of open transactions at one, and
//! from then on every `BEGIN` on that pooled connection was a `SAVEPOINT` and every "commit" a
//! `RELEASE` inside a transaction that never ended: writes answered as committed that were not,
//! reads on that connection stuck at an old snapshot, the file's write lock held for good.
//!
//! Time bounds ([`WriteTimeouts`]): the wait for another writer (this process's turn, SQLite's
//! busy timeout, Postgres `lock_timeout`) answers `WRITE_LOCK_TIMEOUT`; a write whose statements
//! run too long (Postgres `statement_timeout` per statement, and on both databases the whole
//! write up to its `COMMIT`) answers `WRITE_TIMEOUT`. Either way nothing was written.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::StoreError;
use crate::error::WriteError;
use crate::pool::{self, PoolSpec};
use crate::statements::StatementCounter;

/// How long a write waits for another writer by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a write's statements may run by default.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes in flight at once on Postgres (they serialise on the revision counter's row lock
/// anyway; a few let the next one be ready when the lock passes).
const POSTGRES_WRITERS: u32 = 4;

/// The time bounds of every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTimeouts {
    /// Longest wait for another writer (of this process or another): `WRITE_LOCK_TIMEOUT`.
    pub lock: Duration,
    /// Longest a write may run once it holds the lock, up to its commit: `WRITE_TIMEOUT`.
    pub write: Duration,
}

impl Default for WriteTimeouts {
    fn default() -> Self {
        Self {
            lock: DEFAULT_LOCK_TIMEOUT,
            write: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// The process's writer (one per [`crate::Store`] and its clones).
pub(crate) struct Writer {
    url: SecretString,
    backend: DbBackend,
    /// An in-memory SQLite database lives in its one connection: writes share the readers' pool
    /// and it is never replaced.
    fixed: bool,
    pool: RwLock<DatabaseConnection>,
    /// Set when the pool must be replaced before the next write (a write was abandoned
    /// mid-way, or the timeouts changed).
    stale: AtomicBool,
    /// Turns to write: one on SQLite (this process's writers queue here instead of in SQLite's
    /// busy handler, holding a connection), a few on Postgres.
    turns: Semaphore,
    timeouts: RwLock<WriteTimeouts>,
    counter: Option<StatementCounter>,
    sqlite_max_pages: Arc<AtomicU64>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("backend", &self.backend)
            .field("timeouts", &self.timeouts())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The writer of the store at `url`; `readers` is the readers' pool, which an in-memory
    /// database's writes share.
    pub(crate) async fn new(
        url: SecretString,
        readers: &DatabaseConnection,
        counter: Option<StatementCounter>,
    ) -> Result<Self, StoreError> {
        let backend = readers.get_database_backend();
        let fixed = pool::is_in_memory(url.expose_secret());
        let writer = Self {
            backend,
            fixed,
            pool: RwLock::new(readers.clone()),
            stale: AtomicBool::new(false),
            turns: Semaphore::new(if backend == DbBackend::Postgres {
                POSTGRES_WRITERS as usize
            } else {
                1
            }),
            timeouts: RwLock::new(WriteTimeouts::default()),
            counter,
            sqlite_max_pages: Arc::new(AtomicU64::new(0)),
            url,
        };
        if !fixed {
            let fresh = writer.open_pool().await.map_err(StoreError::from)?;
            *writer.pool.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
        Ok(writer)
    }

    pub(crate) fn timeouts(&self) -> WriteTimeouts {
        *self.timeouts.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_timeouts(&self, timeouts: WriteTimeouts) {
        *self
            .timeouts
            .write()
            .unwrap_or_else(PoisonError::into_inner) = timeouts;
        // SQLite's busy timeout is a connection's setting: new connections get the new one.
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Tests: the `max_page_count` of the writer's SQLite connections (0: SQLite's own), now
    /// and for every connection it opens later.
    pub(crate) async fn set_sqlite_max_pages(&self, pages: u64) -> Result<(), StoreError> {
        let _turn = self.turns.acquire().await;
        self.sqlite_max_pages.store(pages, Ordering::SeqCst);
        if self.backend == DbBackend::Sqlite {
            // The writer's one connection, if it is open; a new one gets it when it opens.
            let pages = if pages == 0 {
                u64::from(u32::MAX)
            } else {
                pages
            };
            self.current()
                .execute_unprepared(&format!("PRAGMA max_page_count = {pages}"))
                .await?;
        }
        Ok(())
    }

    fn current(&self) -> DatabaseConnection {
        self.pool
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn open_pool(&self) -> Result<DatabaseConnection, sea_orm::DbErr> {
        let timeouts = self.timeouts();
        let spec = PoolSpec {
            max_connections: if self.backend == DbBackend::Postgres {
                POSTGRES_WRITERS
            } else {
                1
            },
            lazy: true,
            busy_timeout: timeouts.lock,
            sqlite_max_pages: Some(self.sqlite_max_pages.clone()),
        };
        pool::open(self.url.expose_secret(), &spec, self.counter.as_ref()).await
    }

    /// Replaces the pool: the old one is closed, each of its connections as it comes back, so
    /// none serves again. Called holding a turn, so no write starts on the old pool meanwhile.
    async fn replace_pool(&self) {
        if self.fixed {
            return;
        }
        match self.open_pool().await {
            Ok(fresh) => {
                self.stale.store(false, Ordering::SeqCst);
                let old = std::mem::replace(
                    &mut *self.pool.write().unwrap_or_else(PoisonError::into_inner),
                    fresh,
                );
                // Closing waits for the connections still out (a write abandoned mid-way);
                // nobody waits for that.
                tokio::spawn(async move {
                    if let Err(err) = old.close_by_ref().await {
                        tracing::debug!(error = %err, "closing the replaced writer pool");
                    }
                });
                tracing::info!("the writer's connections were replaced after a failed write");
            }
            Err(err) => {
                // Keep the old pool (its connections are still checked as they come back) and
                // try again before the next write.
                self.stale.store(true, Ordering::SeqCst);
                tracing::warn!(error = %err, "could not open a new writer pool; will retry");
            }
        }
    }

    /// Waits for a turn, then begins a write transaction with the write's time bounds.
    pub(crate) async fn begin(&self) -> Result<WriteTxn<'_>, WriteError> {
        let timeouts = self.timeouts();
        let turn = match tokio::time::timeout(timeouts.lock, self.turns.acquire()).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) => {
                return Err(StoreError::unavailable("the writer is closed".to_owned()).into());
            }
            Err(_) => {
                return Err(WriteError::LockTimeout {
                    waited: timeouts.lock,
                }
                .observed());
            }
        };
        if self.stale.load(Ordering::SeqCst) {
            self.replace_pool().await;
        }
        let mut txn = self.begin_on(&self.current()).await;
        if let Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)) = &txn {
            // Another turn replaced the pool between our look at it and our BEGIN.
            txn = self.begin_on(&self.current()).await;
        }
        let txn = match txn {
            Ok(txn) => txn,
            Err(err) => {
                let err = WriteError::from_db(err, timeouts.lock, timeouts.write);
                if err.leaves_connection_in_doubt() {
                    self.replace_pool().await;
                }
                return Err(err);
            }
        };
        let write = WriteTxn {
            txn: Some(txn),
            writer: self,
            timeouts,
            _turn: turn,
        };
        if self.backend == DbBackend::Postgres {
            // Local to this transaction: the connection's own settings come back at its end.
            let bounds = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
                [millis(timeouts.lock).into(), millis(timeouts.write).into()],
            );
            if let Err(err) = write.txn()?.query_one_raw(bounds).await {
                let err = WriteError::from_db(err, timeouts.lock, timeouts.write);
                write.abandon(&err).await;
                return Err(err);
            }
        }
        Ok(write)
    }
}

impl Writer {
    async fn begin_on(&self, db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
        match self.backend {
            DbBackend::Sqlite => {
                // BEGIN IMMEDIATE takes SQLite's write lock now, waiting for another process's
                // write for up to the busy timeout (the lock timeout); a deferred transaction
                // that reads first and writes later would fail at once instead when another
                // process wrote in between.
                db.begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await
            }
            _ => db.begin().await,
        }
    }
}

/// A duration as Postgres reads a setting in milliseconds (at least 1: 0 would mean no bound).
fn millis(duration: Duration) -> String {
    duration.as_millis().clamp(1, i32::MAX as u128).to_string()
}

/// A write transaction and this process's turn to write. Ends in [`WriteTxn::commit`],
/// [`WriteTxn::rollback`] or [`WriteTxn::abandon`]; one dropped without either (its future
/// was dropped mid-way) has its pool replaced before the next write.
pub(crate) struct WriteTxn<'a> {
    txn: Option<DatabaseTransaction>,
    writer: &'a Writer,
    pub(crate) timeouts: WriteTimeouts,
    _turn: SemaphorePermit<'a>,
}

impl WriteTxn<'_> {
    pub(crate) fn txn(&self) -> Result<&DatabaseTransaction, WriteError> {
        self.txn
            .as_ref()
            .ok_or_else(|| StoreError::unavailable("the write already ended".to_owned()).into())
    }

    /// Commits. A failed commit leaves the transaction's fate to the database (SQLite rolls a
    /// failed commit back, or the connection's close does): the pool is replaced either way.
    pub(crate) async fn commit(mut self) -> Result<(), WriteError> {
        let Some(txn) = self.txn.take() else {
            return Err(StoreError::unavailable("the write already ended".to_owned()).into());
        };
        match txn.commit().await {
            Ok(()) => Ok(()),
            Err(err) => {
                let err = WriteError::from_db(err, self.timeouts.lock, self.timeouts.write);
                self.writer.replace_pool().await;
                Err(err)
            }
        }
    }

    /// Rolls back a write that changed nothing or was refused for a reason the client can
    /// fix; the connection stays in the pool unless the rollback itself fails.
    pub(crate) async fn rollback(mut self) {
        if let Some(txn) = self.txn.take()
            && let Err(err) = txn.rollback().await
        {
            let err = StoreError::from(err);
            tracing::warn!(code = err.code(), error = %err, "a write's rollback failed; replacing the writer's connections");
            self.writer.replace_pool().await;
        }
    }

    /// Ends a write that failed with `err`: rolled back, and after a failure that leaves the
    /// connection in doubt (or a failed rollback) the writer's connections replaced.
    pub(crate) async fn abandon(mut self, err: &WriteError) {
        let rolled_back = match self.txn.take() {
            Some(txn) => match txn.rollback().await {
                Ok(()) => true,
                Err(rollback) => {
                    tracing::warn!(error = %rollback, "a failed write's rollback failed too");
                    false
                }
            },
            None => true,
        };
        if err.leaves_connection_in_doubt() || !rolled_back {
            self.writer.replace_pool().await;
        }
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        if self.txn.is_some() {
            // Dropped mid-way: sea-orm queues a rollback; the connection is not trusted again.
            self.writer.stale.store(true, Ordering::SeqCst);
        }
    }
}
