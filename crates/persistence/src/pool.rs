//! Opening connection pools: the readers' pool and the writer's, with the same settings and
//! the same guard on what a connection may carry back into its pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_core::future::BoxFuture;
use sea_orm::sqlx::pool::PoolConnectionMetadata;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Executor};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::statements::StatementCounter;

/// How long opening or borrowing a connection may take before the store says it is unavailable.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a SQLite reader (or a migration) waits for another process's lock before giving
/// up. Writes wait their own, shorter, lock timeout (see `write::writer`).
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What one pool is for.
#[derive(Debug, Clone)]
pub(crate) struct PoolSpec {
    pub(crate) max_connections: u32,
    /// Open connections on first use, not now.
    pub(crate) lazy: bool,
    /// SQLite's busy timeout for this pool's connections.
    pub(crate) busy_timeout: Duration,
    /// SQLite: a `max_page_count` every new connection of the pool gets (0: none). Tests use it
    /// to fill a database as a full disk would.
    pub(crate) sqlite_max_pages: Option<Arc<AtomicU64>>,
}

/// Whether `url` names an in-memory SQLite database (one per connection).
pub(crate) fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Opens a pool on `url` as `spec` says, counting its statements into `counter`.
pub(crate) async fn open(
    url: &str,
    spec: &PoolSpec,
    counter: Option<&StatementCounter>,
) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(url);
    let busy_timeout = spec.busy_timeout;
    let max_pages = spec.sqlite_max_pages.clone();
    options
        .sqlx_logging(false)
        .max_connections(spec.max_connections)
        .min_connections(u32::from(!spec.lazy))
        .connect_lazy(spec.lazy)
        // Fail fast when the database is gone: a request answers within seconds with a
        // masked error instead of hanging on the pool.
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        // No ping before each borrowed connection (a round trip per statement for nothing),
        // only before one that sat idle: after a database restart, those are the ones that
        // are dead.
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        .map_sqlx_sqlite_opts(move |opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(busy_timeout)
        })
        .map_sqlx_sqlite_pool_opts(move |pool| {
            let max_pages = max_pages.clone();
            pool.after_release(|conn, meta| out_of_transaction(conn, meta))
                .after_connect(move |conn, _meta| {
                    let pages = max_pages
                        .as_ref()
                        .map_or(0, |pages| pages.load(Ordering::SeqCst));
                    Box::pin(async move {
                        if pages > 0 {
                            conn.execute(AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
                                .await?;
                        }
                        Ok(())
                    })
                })
        })
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_release(|conn, meta| out_of_transaction(conn, meta))
        });
    let mut db = connect_retrying(options, is_sqlite).await?;
    if let Some(counter) = counter {
        let counter = counter.clone();
        db.set_metric_callback(move |_| counter.increment());
    }
    Ok(db)
}

/// A connection goes back into its pool only outside any transaction. One that comes back
/// inside one (a failed `COMMIT` or `ROLLBACK` left the driver's count of open transactions
/// above zero) is closed: reused, its next `BEGIN` would be a mere `SAVEPOINT` inside the old
/// transaction, and its "commit" would release the savepoint and commit nothing.
fn out_of_transaction<C: Connection>(
    conn: &mut C,
    _meta: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a connection came back inside a transaction; closing it");
    }
    Box::pin(async move { Ok(clean) })
}

/// Connects; on SQLite, retries while another process holds the lock a new file's switch to
/// WAL needs. That switch takes an exclusive lock SQLite's busy timeout does not wait for, so
/// two processes opening a fresh file at once would otherwise see "database is locked" (once
/// the file is in WAL, the switch is a no-op and no retry happens).
async fn connect_retrying(
    options: ConnectOptions,
    is_sqlite: bool,
) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match Database::connect(options.clone()).await {
            Err(err)
                if is_sqlite
                    && err.to_string().contains("database is locked")
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::debug!("the SQLite file is being set up by another process; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}
