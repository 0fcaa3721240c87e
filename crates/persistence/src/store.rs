//! Opening the store: SQLite by default, Postgres by URL, the same migrations for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plangraph_domain::reference;
use plangraph_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, QueryFilter, Set,
};

use crate::StoreError;
use crate::entities::{platform, sector};

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
}

impl Store {
    /// Opens the store at `url` (`sqlite://…` or `postgres://…`). SQLite runs in WAL mode so
    /// readers never wait for the importer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, None).await
    }

    /// Like [`Store::connect`], counting every statement into `counter`.
    pub async fn connect_counted(url: &str, counter: StatementCounter) -> Result<Self, StoreError> {
        Self::open(url, Some(counter)).await
    }

    async fn open(url: &str, counter: Option<StatementCounter>) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .map_sqlx_sqlite_opts(|opts| {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
            });
        let mut db = Database::connect(options)
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
        Ok(Self { db })
    }

    /// Applies pending migrations and seeds the template's reference rows (sectors, platforms).
    /// Safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(StoreError::Migrate)?;
        self.seed_reference().await
    }

    /// Answers when the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::Query)
    }

    /// Which database this is: "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    async fn seed_reference(&self) -> Result<(), StoreError> {
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
            .exec_without_returning(&self.db)
            .await?;

        // Parents first, so sub-sectors can point at their id.
        for (position, def) in (0i32..).zip(reference::SECTORS) {
            let parent_id = match def.parent {
                Some(code) => Some(
                    sector::Entity::find()
                        .filter(sector::Column::Code.eq(code))
                        .one(&self.db)
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
                .exec_without_returning(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Direct access for tests and tools that need raw SQL or the migrator; application code
    /// uses the repository methods.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
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
