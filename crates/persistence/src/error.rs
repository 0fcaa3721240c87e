//! The storage boundary's error: what went wrong talking to the database.
//!
//! Callers outside (API, CLI) never show the database's own message to a client: they log it and
//! answer with the stable [`StoreError::code`].

use sea_orm::DbErr;
use thiserror::Error;

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
}

impl StoreError {
    /// Stable code for logs and clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "STORE_UNAVAILABLE",
            Self::Migrate(_) => "STORE_MIGRATION_FAILED",
            Self::Query(_) => "STORE_QUERY_FAILED",
            Self::MissingReference(_) => "STORE_NOT_MIGRATED",
            Self::Overflow(_) => "STORE_VALUE_OUT_OF_RANGE",
        }
    }
}
