//! The storage boundary's errors.
//!
//! [`StoreError`]: what went wrong talking to the database. Callers outside (API, CLI) never
//! show the database's own message to a client: they log it and answer with the stable
//! [`StoreError::code`].
//!
//! [`WriteError`]: why a write was refused. Each refusal is the client's to fix, so its message
//! is shown as it is, with its stable code; a refused write changed nothing.

use std::sync::Arc;

use sea_orm::DbErr;
use thiserror::Error;

use crate::snapshot::FieldChange;

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
    Query(#[from] DbErr),
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
        Self::Migrate(err)
    }

    /// The database was unreachable (as opposed to refusing a statement): worth retrying.
    pub fn is_unavailable(&self) -> bool {
        self.code() == "STORE_UNAVAILABLE"
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
        }
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
