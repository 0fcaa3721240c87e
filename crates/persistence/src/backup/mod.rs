//! Backup and restore of a SQLite store while servers use it.
//!
//! [`Store::backup`] copies the store with `VACUUM INTO`: one read transaction, so the copy is
//! the store as it was when the statement began, WAL included, and writers go on meanwhile.
//! The copy is written under a temporary name in the target's directory, checked (it opens,
//! `PRAGMA integrity_check` says ok), synced and only then linked to its name, which must not
//! exist: a copy cut short never looks like a finished backup, and no backup is overwritten.
//!
//! [`Store::restore`] checks the backup before touching the store (it opens as SQLite, passes
//! `PRAGMA integrity_check`, holds plangraph's tables and exactly the migrations the store
//! has), then replaces every table's rows with the backup's in one `BEGIN IMMEDIATE`
//! transaction on the live file: other processes keep running and see either the store before
//! or the store restored, never a mix. The restored revision is the backup's, written with a
//! new random epoch, so no cache keyed by the store version (revision, epoch) mistakes the
//! restored store for a state it kept; the change feed sees the history go back and follows
//! it (see `feed`). Any refusal or failure leaves the store as it was.
//!
//! Postgres has its own tools for both (`pg_dump`, `pg_restore`); both calls refuse with
//! `BACKUP_USE_PG_DUMP`, and the README gives the recipe the tests run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Row};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, RuntimeErr};
use secrecy::ExposeSecret;
use thiserror::Error;

use crate::StoreError;
use crate::pool::{SQLITE_BUSY_TIMEOUT, is_in_memory};
use crate::store::Store;

mod restore;

use restore::restore_into;

/// The name the backup is attached under during a restore.
const ATTACHED: &str = "plangraph_backup";

/// Tables every plangraph store has whatever its migrations; a file without them is not a
/// plangraph store.
const REQUIRED_TABLES: [&str; 3] = ["seaql_migrations", "store_revision", "report"];

/// Why a backup or a restore was refused or failed. A refused restore changed nothing.
#[derive(Debug, Error)]
pub enum BackupError {
    /// Postgres stores are backed up and restored with Postgres's own tools.
    #[error(
        "{0} of a Postgres store is done with Postgres's tools: `pg_dump --format=custom` to back up, `pg_restore` into a new database to restore (see the README, \"Backup and restore\")"
    )]
    UsePgDump(&'static str),
    /// An in-memory store has no file to copy into or out of.
    #[error("an in-memory SQLite store cannot be restored into; use a SQLite file")]
    InMemory,
    /// The backup's target exists; a backup never overwrites a file.
    #[error("{} exists; a backup never overwrites a file: choose a new name", .0.display())]
    TargetExists(PathBuf),
    /// Writing the backup failed; nothing was left under its name.
    #[error("cannot write the backup {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    /// The file to restore does not exist.
    #[error("there is no file {}", .0.display())]
    Missing(PathBuf),
    /// The file to restore is the store itself.
    #[error("{} is the store itself: restore from a backup made with `plangraph backup`", .0.display())]
    SameFile(PathBuf),
    /// The file to restore does not open as a SQLite database.
    #[error("{} is not a SQLite database: {reason}", path.display())]
    NotSqlite { path: PathBuf, reason: String },
    /// The file to restore is damaged.
    #[error("{} is damaged (PRAGMA integrity_check: {problems}); nothing was restored", path.display())]
    Corrupt { path: PathBuf, problems: String },
    /// The file to restore is a SQLite database, but not a plangraph store.
    #[error("{} is not a plangraph store: it has no table {missing}", path.display())]
    NotPlangraph { path: PathBuf, missing: String },
    /// The backup was made by a plangraph with other migrations than this store has.
    #[error("{}", migrations_message(path, backup, store))]
    Migrations {
        path: PathBuf,
        backup: Vec<String>,
        store: Vec<String>,
    },
    /// The store failed (its own code).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn migrations_message(path: &Path, backup: &[String], store: &[String]) -> String {
    let missing: Vec<&str> = store
        .iter()
        .filter(|m| !backup.contains(m))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = backup
        .iter()
        .filter(|m| !store.contains(m))
        .map(String::as_str)
        .collect();
    let advice = if extra.is_empty() {
        "it is older: run `plangraph migrate` on a copy of it (`--database-url sqlite://COPY`), then restore the copy"
    } else {
        "it was made by a newer plangraph: restore it with that version"
    };
    format!(
        "{} holds other migrations than this store (backup lacks [{}], has more [{}]); {advice}; nothing was restored",
        path.display(),
        missing.join(", "),
        extra.join(", ")
    )
}

impl BackupError {
    /// Stable code for logs and the command line.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UsePgDump(_) => "BACKUP_USE_PG_DUMP",
            Self::InMemory => "BACKUP_IN_MEMORY_STORE",
            Self::TargetExists(_) => "BACKUP_TARGET_EXISTS",
            Self::Write { .. } => "BACKUP_WRITE_FAILED",
            Self::Missing(_) => "BACKUP_FILE_MISSING",
            Self::SameFile(_) => "BACKUP_IS_THE_STORE",
            Self::NotSqlite { .. } => "BACKUP_NOT_SQLITE",
            Self::Corrupt { .. } => "BACKUP_CORRUPT",
            Self::NotPlangraph { .. } => "BACKUP_NOT_PLANGRAPH",
            Self::Migrations { .. } => "BACKUP_MIGRATIONS_MISMATCH",
            Self::Store(e) => e.code(),
        }
    }
}

/// What a backup holds, or what a restore brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The store revision it holds.
    pub revision: i64,
    /// The reports it holds.
    pub reports: i64,
}

/// What a check of a backup file found.
#[derive(Debug)]
struct Facts {
    revision: i64,
    reports: i64,
    migrations: Vec<String>,
}

impl Store {
    /// Writes a consistent copy of this SQLite store to `path` while it serves; see the module
    /// documentation. `path` must not exist.
    pub async fn backup(&self, path: &Path) -> Result<BackupSummary, BackupError> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return Err(BackupError::UsePgDump("a backup"));
        }
        if path.symlink_metadata().is_ok() {
            return Err(BackupError::TargetExists(path.to_owned()));
        }
        let write_failed = |reason: String| BackupError::Write {
            path: path.to_owned(),
            reason,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| write_failed("the name is not a file name in UTF-8".to_owned()))?;
        // `./` keeps a relative name from being read as a `file:` URI.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        if !has_table(&self.db, "store_revision").await? {
            return Err(StoreError::MissingReference(
                "plangraph's tables (nothing to back up)".to_owned(),
            )
            .into());
        }
        let partial = Partial(dir.join(format!(".{name}.partial-{}", random_hex())));
        let partial_text = partial
            .0
            .to_str()
            .ok_or_else(|| write_failed("the directory's name is not UTF-8".to_owned()))?;
        self.db
            .execute_unprepared(&format!("VACUUM INTO {}", sql_text(partial_text)))
            .await
            .map_err(|err| write_failed(err.to_string()))?;
        let facts = check_copy(&partial.0).await.map_err(|err| match err {
            BackupError::Store(_) | BackupError::Write { .. } => err,
            refused => write_failed(format!("the copy does not check: {refused}")),
        })?;
        let bytes = finish(&partial.0, path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::TargetExists(path.to_owned())
            } else {
                write_failed(err.to_string())
            }
        })?;
        tracing::info!(path = %path.display(), bytes, revision = facts.revision, "backup written");
        Ok(BackupSummary {
            path: path.to_owned(),
            bytes,
            revision: facts.revision,
            reports: facts.reports,
        })
    }

    /// Replaces this SQLite store's content with the backup at `path`, safely while other
    /// processes serve it; see the module documentation.
    pub async fn restore(&self, path: &Path) -> Result<BackupSummary, BackupError> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return Err(BackupError::UsePgDump("a restore"));
        }
        let url = self.shared.url.expose_secret();
        if is_in_memory(url) {
            return Err(BackupError::InMemory);
        }
        let bytes = match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => {
                return Err(BackupError::NotSqlite {
                    path: path.to_owned(),
                    reason: "not a file".to_owned(),
                });
            }
            Err(_) => return Err(BackupError::Missing(path.to_owned())),
        };
        // A new, empty store (restoring onto a new machine) gets plangraph's tables first, once
        // the backup checks; a store that has them is left at its migrations, which the
        // backup's must equal.
        if !has_table(&self.db, "seaql_migrations").await? {
            check_backup(path).await?;
            self.migrate().await?;
        }
        let mut live = open_live(url).await?;
        let result = restore_into(&mut live, path).await;
        if let Err(err) = live.close().await {
            tracing::debug!(error = %err, "closing the restore's connection failed");
        }
        let facts = result?;
        tracing::warn!(path = %path.display(), revision = facts.revision, "store restored from a backup");
        // This process's subscribers follow at once; other processes' on their next look.
        let store = self.clone();
        self.shared
            .background
            .spawn(async move { store.announce().await });
        Ok(BackupSummary {
            path: path.to_owned(),
            bytes,
            revision: facts.revision,
            reports: facts.reports,
        })
    }
}

/// A backup's temporary file, removed unless it was finished.
#[derive(Debug)]
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        // Gone already once finished; a journal may be left by a copy that failed.
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

/// Gives the synced copy its name without ever replacing a file (a hard link fails when the
/// name exists), syncs the directory; its size.
fn finish(partial: &Path, path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(partial)?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    drop(file);
    match std::fs::hard_link(partial, path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Err(err),
        // A file system without hard links: the name was checked free just before.
        Err(_) => {
            if path.symlink_metadata().is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(partial, path)?;
        }
    }
    let _ = std::fs::remove_file(partial);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(bytes)
}

/// The fresh copy, checked, and made one self-contained file (rollback journal, not WAL).
async fn check_copy(partial: &Path) -> Result<Facts, BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(partial)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Delete);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| backup_file_error(partial, &err))?;
    let facts = inspect(&mut conn, partial).await;
    let _ = conn.close().await;
    facts
}

/// Opens the file to restore read-only and checks it.
async fn check_backup(path: &Path) -> Result<Facts, BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| backup_file_error(path, &err))?;
    let facts = inspect(&mut conn, path).await;
    let _ = conn.close().await;
    facts
}

/// Integrity, plangraph's tables, the migrations, the revision and the reports of a backup.
async fn inspect(conn: &mut SqliteConnection, path: &Path) -> Result<Facts, BackupError> {
    let read = |err: sqlx::Error| backup_file_error(path, &err);
    let problems: Vec<String> = strings(conn, "PRAGMA integrity_check(20)")
        .await
        .map_err(read)?;
    if problems != ["ok"] {
        return Err(BackupError::Corrupt {
            path: path.to_owned(),
            problems: problems.join("; "),
        });
    }
    let tables = table_names(conn, "main").await.map_err(read)?;
    if let Some(missing) = REQUIRED_TABLES.iter().find(|t| !tables.contains(**t)) {
        return Err(BackupError::NotPlangraph {
            path: path.to_owned(),
            missing: (*missing).to_owned(),
        });
    }
    let migrations = strings(
        conn,
        "SELECT version FROM seaql_migrations ORDER BY version",
    )
    .await
    .map_err(read)?;
    let revision = number(
        conn,
        "SELECT COALESCE((SELECT value FROM store_revision WHERE id = 1), 0)",
    )
    .await
    .map_err(read)?;
    let reports = number(conn, "SELECT COUNT(*) FROM report")
        .await
        .map_err(read)?;
    Ok(Facts {
        revision,
        reports,
        migrations,
    })
}

/// Whether the live store has `table`, through the readers' pool.
async fn has_table(db: &sea_orm::DatabaseConnection, table: &str) -> Result<bool, StoreError> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
            [table.into()],
        ))
        .await?;
    Ok(row.map_or(Ok(0), |r| r.try_get::<i64>("", "n"))? > 0)
}

/// A connection of the restore's own on the live store, with the pools' settings.
async fn open_live(url: &str) -> Result<SqliteConnection, BackupError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(store_error)?
        .create_if_missing(false)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(store_error)
}

async fn migrations_of(
    conn: &mut SqliteConnection,
    schema: &str,
) -> Result<Vec<String>, BackupError> {
    strings(
        conn,
        &format!("SELECT version FROM {schema}.seaql_migrations ORDER BY version"),
    )
    .await
    .map_err(store_error)
}

async fn table_names(
    conn: &mut SqliteConnection,
    schema: &str,
) -> Result<BTreeSet<String>, sqlx::Error> {
    Ok(strings(
        conn,
        &format!("SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"),
    )
    .await?
    .into_iter()
    .collect())
}

async fn strings(conn: &mut SqliteConnection, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
}

async fn strings_bound(
    conn: &mut SqliteConnection,
    sql: &'static str,
    value: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(sql).bind(value).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
}

async fn number(conn: &mut SqliteConnection, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query(sql).fetch_one(&mut *conn).await?.try_get(0)
}

/// A failure reading the backup file: SQLite's "not a database" and "malformed" have codes of
/// their own; anything else means the file cannot be read as a SQLite database.
fn backup_file_error(path: &Path, err: &sqlx::Error) -> BackupError {
    let code = err
        .as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok());
    match code.map(|c| c & 0xff) {
        // SQLITE_CORRUPT
        Some(11) => BackupError::Corrupt {
            path: path.to_owned(),
            problems: err.to_string(),
        },
        _ => BackupError::NotSqlite {
            path: path.to_owned(),
            reason: err.to_string(),
        },
    }
}

/// A failure on the live store, as the store's own error (its code, counted).
fn store_error(err: sqlx::Error) -> BackupError {
    BackupError::Store(StoreError::from(DbErr::Query(RuntimeErr::SqlxError(
        Arc::new(err),
    ))))
}

/// A SQL string literal.
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A path as the path of a `file:` URI: everything but unreserved characters and `/`
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(*byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn random_bytes() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Not secret, only unlikely to repeat: the clock will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes
}

fn random_i64() -> i64 {
    i64::from_le_bytes(random_bytes())
}

fn random_hex() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(
            super::uri_path(Path::new("/tmp/a b/c?d#e%.db")),
            "/tmp/a%20b/c%3Fd%23e%25.db"
        );
    }

    #[test]
    fn sql_text_doubles_quotes() {
        assert_eq!(super::sql_text("it's"), "'it''s'");
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
    }
}
