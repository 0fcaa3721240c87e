//! The storage boundary's errors.
//!
//! [`StoreError`]: what went wrong talking to the database. Callers outside (API, CLI) never
//! show the database's own message to a client: they log it and answer with the stable
//! [`StoreError::code`].
//!
//! [`WriteError`]: why a write was refused. Each refusal is the client's to fix, so its message
//! is shown as it is, with its stable code; a refused write changed nothing.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};
use thiserror::Error;

use crate::field_change::FieldChange;
use crate::telemetry;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open the store at {url}: {source}")]
    Connect { url: String, source: DbErr },
    /// A migration failed.
    #[error("migrating the store failed: {0}")]
    Migrate(DbErr),
    /// A statement failed.
    #[error("store query failed: {0}")]
    Query(DbErr),
    /// Data that should be in the store is not (reference rows seeded at migration).
    #[error("the store is missing {0}; run `plangraph migrate`")]
    MissingReference(String),
    /// A figure does not fit the column that holds it.
    #[error("the figure {0} is too large to store")]
    Overflow(String),
    /// The database does not answer.
    #[error("the store does not answer: {0}")]
    Unavailable(String),
    /// A value could not be encoded for storage.
    #[error("cannot encode a change for the history: {0}")]
    Encode(String),
    /// One failure shared by the callers that waited for the same statement (see
    /// [`crate::Store::fresh_version`]); its code is the failure's own.
    #[error("{0}")]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// Stable code for logs and clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "STORE_UNAVAILABLE",
            Self::Migrate(err) if is_unavailable(err) => "STORE_UNAVAILABLE",
            Self::Migrate(_) => "STORE_MIGRATION_FAILED",
            Self::Query(err) if is_unavailable(err) => "STORE_UNAVAILABLE",
            Self::Query(_) => "STORE_QUERY_FAILED",
            Self::MissingReference(_) => "STORE_NOT_MIGRATED",
            Self::Overflow(_) => "STORE_VALUE_OUT_OF_RANGE",
            Self::Encode(_) => "STORE_ENCODE_FAILED",
            Self::Unavailable(_) => "STORE_UNAVAILABLE",
            Self::Shared(err) => err.code(),
        }
    }

    /// A migration's failure; one that is the database being unreachable says so.
    pub(crate) fn migrate(err: DbErr) -> Self {
        Self::Migrate(err).observed()
    }

    /// The database does not answer (a timeout of ours, not a statement's failure).
    pub(crate) fn unavailable(message: String) -> Self {
        Self::Unavailable(message).observed()
    }

    /// Counts this failure under its code (`plangraph_store_errors_total`) and hands it back.
    pub(crate) fn observed(self) -> Self {
        telemetry::store_error(self.code());
        self
    }

    /// The database was unreachable (as opposed to refusing a statement): worth retrying.
    pub fn is_unavailable(&self) -> bool {
        self.code() == "STORE_UNAVAILABLE"
    }
}

/// Every failed statement becomes a store error here, and is counted here, once. A write's
/// statement cancelled by its lock or statement timeout is not counted here: the write maps it
/// to its own code ([`WriteError::from_db`]) and counts it under that code.
impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        let error = Self::Query(err);
        if let Self::Query(db) = &error
            && timeout_of(db).is_none()
        {
            telemetry::store_error(error.code());
        }
        error
    }
}

/// Which of a write's time bounds cancelled a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Waiting for another writer's lock (Postgres `lock_timeout`, SQLite's busy timeout).
    Lock,
    /// A statement ran too long (Postgres `statement_timeout`).
    Statement,
}

/// The database's own code for a failed statement: a SQLSTATE on Postgres, SQLite's extended
/// result code (as a decimal string) on SQLite.
pub(crate) fn database_code(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|code| code.into_owned()),
        _ => None,
    }
}

/// A statement the database cancelled because one of the write's time bounds ran out.
pub(crate) fn timeout_of(err: &DbErr) -> Option<Timeout> {
    let code = database_code(err)?;
    match code.as_str() {
        // Postgres: lock_not_available (lock_timeout), query_canceled (statement_timeout).
        "55P03" => Some(Timeout::Lock),
        "57014" => Some(Timeout::Statement),
        // SQLite: SQLITE_BUSY and its extended codes (the busy timeout ran out).
        other => match other.parse::<i32>() {
            Ok(n) if n & 0xff == 5 => Some(Timeout::Lock),
            _ => None,
        },
    }
}

/// The database is not there (as opposed to a statement it refused).
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        // sqlx reports a refused or broken connection as an I/O error of the statement.
        DbErr::Exec(e) | DbErr::Query(e) => {
            let text = e.to_string();
            [
                "Connection refused",
                "Connection reset",
                "connection closed",
                "Broken pipe",
                "error communicating with database",
                "pool timed out",
                // Postgres ending a connection: fast or immediate shutdown, restart.
                "terminating connection",
                "the database system is shutting down",
                "the database system is starting up",
            ]
            .iter()
            .any(|sign| text.contains(sign))
        }
        _ => false,
    }
}

/// A write the store refused.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no {what} {key}")]
    NotFound { what: &'static str, key: String },
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "the write was based on revision {expected}, but the current revision is {current}: read the current values and try again"
    )]
    Conflict { expected: i64, current: i64 },
    #[error("{}", would_remove_message(.0))]
    WouldRemove(Vec<FieldChange>),
    #[error("{sector} has no row in this report yet; a new row needs every figure, missing: {}", .missing.join(", "))]
    IncompleteFigures {
        sector: &'static str,
        missing: Vec<&'static str>,
    },
    #[error("paragraph {position} is out of range: the section has {len} (append with {})", .len + 1)]
    PositionOutOfRange { position: u32, len: usize },
    #[error("{0}")]
    Duplicate(String),
    #[error(
        "the change is {bytes} bytes as recorded, over the limit of {limit}; split it into smaller writes"
    )]
    TooLarge { bytes: usize, limit: usize },
    /// The write waited longer than its lock timeout for another writer (of this process or
    /// another) and was given up; nothing was written.
    #[error(
        "the write waited {waited:?} for another write to finish and was given up; nothing was written, try again"
    )]
    LockTimeout { waited: Duration },
    /// The write's statements ran longer than its time limit; it was rolled back.
    #[error(
        "the write ran longer than {limit:?} and was rolled back; nothing was written, try again or split it"
    )]
    Timeout { limit: Duration },
    /// Load-test data and published reports never share a report: neither replaces the other.
    #[error("{}", mixes_synthetic_message(*.report_id, *.stored_synthetic))]
    MixesSynthetic {
        report_id: i32,
        stored_synthetic: bool,
    },
}

fn mixes_synthetic_message(report_id: i32, stored_synthetic: bool) -> String {
    if stored_synthetic {
        format!(
            "report {report_id} holds synthetic load-test data: published reports and real organisations are never written into it (nothing was written; import into a store without generated data)"
        )
    } else {
        format!(
            "report {report_id} is a published report: synthetic data (a generated report or organisation) is never written into it (nothing was written)"
        )
    }
}

fn would_remove_message(removals: &[FieldChange]) -> String {
    let kept_path = removals.iter().filter(|r| r.after.is_some()).count();
    let gone = removals.len() - kept_path;
    let examples: Vec<&str> = removals.iter().take(5).map(|r| r.path.as_str()).collect();
    format!(
        "the import would remove {gone} stored value(s) and cut short or rewrite {kept_path} ({}{}); nothing was written. Check the text is complete, or allow removals (the replaced content stays in the history)",
        examples.join(", "),
        if removals.len() > examples.len() {
            ", …"
        } else {
            ""
        }
    )
}

impl WriteError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => e.code(),
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::Conflict { .. } => "CONFLICT",
            Self::WouldRemove(_) => "IMPORT_WOULD_REMOVE",
            Self::IncompleteFigures { .. } => "INCOMPLETE_FIGURES",
            Self::PositionOutOfRange { .. } => "POSITION_OUT_OF_RANGE",
            Self::Duplicate(_) => "DUPLICATE",
            Self::TooLarge { .. } => "CHANGE_TOO_LARGE",
            Self::MixesSynthetic { .. } => "SYNTHETIC_MISMATCH",
            Self::LockTimeout { .. } => "WRITE_LOCK_TIMEOUT",
            Self::Timeout { .. } => "WRITE_TIMEOUT",
        }
    }

    /// A write's failed statement: one its lock or statement timeout cancelled gets that
    /// timeout's code (counted under it), any other is a store failure.
    pub(crate) fn from_db(err: DbErr, lock: Duration, limit: Duration) -> Self {
        match timeout_of(&err) {
            Some(Timeout::Lock) => Self::LockTimeout { waited: lock }.observed(),
            Some(Timeout::Statement) => Self::Timeout { limit }.observed(),
            None => Self::Store(StoreError::from(err)),
        }
    }

    /// A store error raised inside a write, seen again with the write's time bounds: a
    /// statement a timeout cancelled becomes that timeout's refusal.
    pub(crate) fn with_timeouts(self, lock: Duration, limit: Duration) -> Self {
        match self {
            Self::Store(StoreError::Query(err)) if timeout_of(&err).is_some() => {
                Self::from_db(err, lock, limit)
            }
            other => other,
        }
    }

    /// Counts a timeout under its code.
    pub(crate) fn observed(self) -> Self {
        if matches!(self, Self::LockTimeout { .. } | Self::Timeout { .. }) {
            telemetry::store_error(self.code());
        }
        self
    }

    /// A failure after which the writer's connection is not trusted again: the database
    /// failed a statement or went away, or the write was cut short while a statement may
    /// still run. A refusal the client can fix, or a lock wait the database cancelled
    /// cleanly, leaves the connection as good as it was.
    pub(crate) fn leaves_connection_in_doubt(&self) -> bool {
        matches!(
            self,
            Self::Store(
                StoreError::Query(_)
                    | StoreError::Unavailable(_)
                    | StoreError::Connect { .. }
                    | StoreError::Shared(_),
            ) | Self::Timeout { .. }
        )
    }

    /// For callers that only ever write as the local operator with every check off: anything
    /// but a store failure is a bug there, reported as one.
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            Self::Store(e) => e,
            other => StoreError::MissingReference(format!("a refused local write: {other}")),
        }
    }
}
