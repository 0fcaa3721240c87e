//! Opening the store: SQLite by default, Postgres by URL, the same migrations for both.

use std::sync::Arc;
use std::time::Duration;

use plangraph_domain::reference;
use plangraph_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::SecretString;

use crate::StoreError;
use crate::background::Background;
use crate::entities::{platform, sector};
use crate::feed::Feed;
use crate::pool::{self, PoolSpec, SQLITE_BUSY_TIMEOUT};
use crate::session::{SPARE_CONNECTIONS, Session};
use crate::statements::StatementCounter;
use crate::version::{Version, head_revision, head_version};
use crate::version_gate::VersionGate;
use crate::write::writer::{WriteTimeouts, Writer};

/// The default store: a SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://plangraph.db?mode=rwc";

/// A handle on the store; cheap to clone (a connection pool underneath).
#[derive(Debug, Clone)]
pub struct Store {
    /// The readers' pool (writes run on the writer's own, see `write::writer`).
    pub(crate) db: DatabaseConnection,
    pub(crate) shared: Arc<Shared>,
    /// A query's one connection, when this handle is a query's (see `session`).
    pub(crate) session: Option<Arc<Session>>,
}

/// What every clone of a [`Store`] shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where the store is, for connections outside the pools (the Postgres change listener).
    /// Secret: it may carry a password, and never prints.
    pub(crate) url: SecretString,
    /// Where write transactions run.
    pub(crate) writer: Writer,
    /// This process's side of the change feed.
    pub(crate) feed: Arc<Feed>,
    /// Reads of the store's version shared by the requests that arrive together.
    pub(crate) versions: VersionGate,
    /// The runtime background tasks run on.
    pub(crate) background: Background,
    /// Counts the statements of the store's pools and sessions (tests).
    pub(crate) counter: Option<StatementCounter>,
    /// Room for the connections queries hold (see `session`).
    pub(crate) sessions: Arc<tokio::sync::Semaphore>,
}

/// Pooled connections. SQLite in WAL mode lets readers work beside the one writer, so readers
/// never queue behind an import.
const MAX_CONNECTIONS: u32 = 8;

/// How long a readiness ping may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

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
        let connect_failed = |source: DbErr| {
            StoreError::Connect {
                url: redact(url),
                source,
            }
            .observed()
        };
        // An in-memory SQLite database exists once per connection, so it gets exactly one.
        let spec = PoolSpec {
            max_connections: if pool::is_in_memory(url) {
                1
            } else {
                MAX_CONNECTIONS
            },
            lazy,
            busy_timeout: SQLITE_BUSY_TIMEOUT,
            sqlite_max_pages: None,
        };
        let db = pool::open(url, &spec, counter.as_ref())
            .await
            .map_err(connect_failed)?;
        let secret = SecretString::from(url.to_owned());
        let writer = Writer::new(secret.clone(), &db, counter.clone())
            .await
            .map_err(|err| match err {
                StoreError::Query(source) => connect_failed(source),
                other => other,
            })?;
        Ok(Self {
            db,
            shared: Arc::new(Shared {
                url: secret,
                writer,
                feed: Arc::new(Feed::new()),
                versions: VersionGate::default(),
                background: Background::default(),
                counter,
                sessions: Arc::new(tokio::sync::Semaphore::new(
                    (spec.max_connections as usize).saturating_sub(SPARE_CONNECTIONS),
                )),
            }),
            session: None,
        })
    }

    /// Applies pending migrations and seeds the template's reference rows (sectors, platforms).
    /// Safe to run on every start, and by several processes at once: the migrations run in one
    /// transaction that holds a lock (SQLite's write lock; a Postgres advisory lock), so a
    /// second process waits for the first and then finds nothing left to do. A failure rolls
    /// the transaction back explicitly.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let txn = self.begin_locked().await.map_err(StoreError::migrate)?;
        match migrate_in(&txn).await {
            Ok(()) => txn.commit().await.map_err(StoreError::migrate),
            Err(err) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed migration failed");
                }
                Err(err)
            }
        }
    }

    /// Starts a migration's transaction on the readers' pool. On SQLite it takes the write lock
    /// at `BEGIN` (`BEGIN IMMEDIATE`), waiting its turn for up to the busy timeout.
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

    /// Answers when the database answers (readiness), within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, self.db.ping()).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::unavailable(format!(
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

    /// Runs the store's background tasks (the version gate's reads, the change feed's listener
    /// or poller, announcements after writes) on `handle`'s runtime from now on, instead of on
    /// the runtime of whichever task first needed them. A server calls it once at start-up
    /// with a handle on a runtime of its own, so no request worker carries them.
    pub fn run_background_on(&self, handle: tokio::runtime::Handle) {
        self.shared.background.set(handle);
    }

    /// The time bounds of every write from now on (defaults: [`WriteTimeouts::default`]).
    pub fn set_write_timeouts(&self, timeouts: WriteTimeouts) {
        self.shared.writer.set_timeouts(timeouts);
    }

    /// The time bounds writes run with.
    pub fn write_timeouts(&self) -> WriteTimeouts {
        self.shared.writer.timeouts()
    }

    /// Tests: gives the writer's SQLite connections a `max_page_count` (0 lifts it), as a
    /// nearly full disk would, now and for every connection the writer opens later.
    #[doc(hidden)]
    pub async fn set_sqlite_max_page_count(&self, pages: u64) -> Result<(), StoreError> {
        self.shared.writer.set_sqlite_max_pages(pages).await
    }

    /// The revision of the last committed write (0 for a store nobody wrote to yet).
    pub async fn head_revision(&self) -> Result<i64, StoreError> {
        head_revision(&self.db).await
    }

    /// The revision and its random epoch, in one statement: what caches key their content by
    /// (the number alone repeats when a restored backup is written to again).
    pub async fn head_version(&self) -> Result<Version, StoreError> {
        head_version(&self.db).await
    }

    /// The revision and epoch of the last write committed before this call, as
    /// [`Store::head_version`] reads them, shared with the calls made at the same time (see
    /// `version_gate`): what every cached answer is keyed by.
    pub async fn fresh_version(&self) -> Result<Version, StoreError> {
        self.shared
            .versions
            .fresh(&self.db, &self.shared.background)
            .await
    }
}

/// The migrations and the reference rows, inside the migration's transaction.
async fn migrate_in(txn: &DatabaseTransaction) -> Result<(), StoreError> {
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await
        .map_err(StoreError::migrate)?;
    }
    Migrator::up(txn, None).await.map_err(StoreError::migrate)?;
    seed_reference(txn).await
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

/// Query parameters that carry a secret (libpq's and sqlx's names), redacted like a password
/// in the user information.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The URL without its passwords (in the user information and in the query), for messages.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _))
                    if SECRET_PARAMETERS
                        .iter()
                        .any(|secret| key.eq_ignore_ascii_case(secret)) =>
                {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
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

    #[test]
    fn passwords_in_the_query_are_redacted_too() {
        assert_eq!(
            super::redact(
                "postgres://app@db.example/plangraph?password=hunter2&sslmode=require&SSLPASSWORD=k3y"
            ),
            "postgres://app@db.example/plangraph?password=***&sslmode=require&SSLPASSWORD=***"
        );
        assert_eq!(
            super::redact("postgres://app:secret@db/x?sslpassword=p&application_name=pg"),
            "postgres://app:***@db/x?sslpassword=***&application_name=pg"
        );
    }
}
