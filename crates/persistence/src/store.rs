//! Opening the store: SQLite by default, Postgres by URL, the same migrations for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plangraph_domain::reference;
use plangraph_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use crate::StoreError;
use crate::entities::{platform, sector};
use crate::feed::Feed;
use crate::version_gate::VersionGate;

/// The default store: a SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://plangraph.db?mode=rwc";

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
}

/// A handle on the store; cheap to clone (a connection pool underneath).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) shared: Arc<Shared>,
}

/// What every clone of a [`Store`] shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where the store is, for connections outside the pool (the Postgres change listener).
    pub(crate) url: String,
    /// SQLite has one writer at a time; this process's writers take turns here.
    sqlite_writer: Option<tokio::sync::Mutex<()>>,
    /// This process's side of the change feed.
    pub(crate) feed: Feed,
    /// Reads of the store's version shared by the requests that arrive together.
    pub(crate) versions: VersionGate,
}

/// A write transaction and, on SQLite, this process's turn to write.
pub(crate) struct WriteTxn<'a> {
    pub(crate) txn: DatabaseTransaction,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// Pooled connections. SQLite in WAL mode lets readers work beside the one writer, so readers
/// never queue behind an import.
const MAX_CONNECTIONS: u32 = 8;

/// How long opening or borrowing a connection may take before the store says it is unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a readiness ping may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a SQLite writer waits for another process's write before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Advisory-lock key that serialises migrations on Postgres ("plangrph" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x706c_616e_6772_7068;

impl Store {
    /// Opens the store at `url` (`sqlite://…` or `postgres://…`). SQLite runs in WAL mode with a
    /// pool of connections, so readers never wait for a writer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, None, false).await
    }

    /// Like [`Store::connect`], counting every statement into `counter`.
    pub async fn connect_counted(url: &str, counter: StatementCounter) -> Result<Self, StoreError> {
        Self::open(url, Some(counter), false).await
    }

    /// A store whose connections are opened on first use: a server can start, and say it is
    /// not ready, while its database is still down.
    pub async fn connect_lazy(url: &str) -> Result<Self, StoreError> {
        Self::open(url, None, true).await
    }

    async fn open(
        url: &str,
        counter: Option<StatementCounter>,
        lazy: bool,
    ) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url);
        // An in-memory SQLite database exists once per connection, so it gets exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let is_sqlite = url.starts_with("sqlite:");
        options
            .sqlx_logging(false)
            .max_connections(if in_memory { 1 } else { MAX_CONNECTIONS })
            .min_connections(u32::from(!lazy))
            .connect_lazy(lazy)
            // Fail fast when the database is gone: a request answers within seconds with a
            // masked error instead of hanging on the pool.
            .connect_timeout(CONNECT_TIMEOUT)
            .acquire_timeout(CONNECT_TIMEOUT)
            // No ping before each borrowed connection (a round trip per statement for nothing),
            // only before one that sat idle: after a database restart, those are the ones that
            // are dead.
            .test_before_acquire_if_idle_for(Duration::from_secs(1))
            .map_sqlx_sqlite_opts(|opts| {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
            });
        let mut db = connect_retrying(options, is_sqlite)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        if let Some(counter) = counter {
            db.set_metric_callback(move |_| {
                counter.0.fetch_add(1, Ordering::SeqCst);
            });
        }
        Ok(Self {
            db,
            shared: Arc::new(Shared {
                url: url.to_owned(),
                sqlite_writer: is_sqlite.then(|| tokio::sync::Mutex::new(())),
                feed: Feed::new(),
                versions: VersionGate::default(),
            }),
        })
    }

    /// Applies pending migrations and seeds the template's reference rows (sectors, platforms).
    /// Safe to run on every start, and by several processes at once: the migrations run in one
    /// transaction that holds a lock (SQLite's write lock; a Postgres advisory lock), so a
    /// second process waits for the first and then finds nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let txn = self.begin_locked().await.map_err(StoreError::migrate)?;
        if self.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await
            .map_err(StoreError::Migrate)?;
        }
        Migrator::up(&txn, None)
            .await
            .map_err(StoreError::Migrate)?;
        seed_reference(&txn).await?;
        txn.commit().await.map_err(StoreError::Migrate)
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails at
    /// once with "database is locked" (SQLITE_BUSY_SNAPSHOT) when another process wrote in
    /// between, where an immediate one waits its turn for up to the busy timeout.
    async fn begin_locked(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => {
                self.db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await
            }
            _ => self.db.begin().await,
        }
    }

    /// A write transaction, one writer at a time. On SQLite, writers of this process queue on
    /// an async lock instead of holding pooled connections while SQLite's busy handler spins;
    /// writers of other processes wait in `BEGIN IMMEDIATE`. On Postgres, writes serialise on
    /// the row locks they take (see `write.rs`).
    pub(crate) async fn begin_write(&self) -> Result<WriteTxn<'_>, StoreError> {
        let guard = match &self.shared.sqlite_writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let txn = self.begin_locked().await?;
        Ok(WriteTxn { txn, _guard: guard })
    }

    /// Answers when the database answers (readiness), within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, self.db.ping()).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the database did not answer within {PING_TIMEOUT:?}"
            ))),
        }
    }

    /// Which database this is: "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Direct access for tests and tools that need raw SQL or the migrator; application code
    /// uses the repository methods.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
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

/// Platforms and sectors of the RMRP template, inserted or brought up to date.
async fn seed_reference(db: &impl ConnectionTrait) -> Result<(), StoreError> {
    let platforms = reference::PLATFORMS.iter().map(|p| platform::ActiveModel {
        code: Set(p.code.to_owned()),
        name: Set(p.name.to_owned()),
        scope: Set(p.scope.as_str().to_owned()),
        ..Default::default()
    });
    platform::Entity::insert_many(platforms)
        .on_conflict(
            OnConflict::column(platform::Column::Code)
                .update_columns([platform::Column::Name, platform::Column::Scope])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;

    // Parents first, so sub-sectors can point at their id.
    for (position, def) in (0i32..).zip(reference::SECTORS) {
        let parent_id = match def.parent {
            Some(code) => Some(
                sector::Entity::find()
                    .filter(sector::Column::Code.eq(code))
                    .one(db)
                    .await?
                    .ok_or_else(|| StoreError::MissingReference(format!("sector {code}")))?
                    .id,
            ),
            None => None,
        };
        let row = sector::ActiveModel {
            code: Set(def.code.to_owned()),
            name: Set(def.name.to_owned()),
            parent_id: Set(parent_id),
            position: Set(position),
            ..Default::default()
        };
        sector::Entity::insert(row)
            .on_conflict(
                OnConflict::column(sector::Column::Code)
                    .update_columns([
                        sector::Column::Name,
                        sector::Column::ParentId,
                        sector::Column::Position,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact("postgres://app:secret@localhost/db"),
            "postgres://app:***@localhost/db"
        );
        assert_eq!(
            super::redact("sqlite://plangraph.db?mode=rwc"),
            "sqlite://plangraph.db?mode=rwc"
        );
    }
}
