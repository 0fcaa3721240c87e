//! The GraphQL boundary's errors and their stable codes (`extensions.code`).
//!
//! | code | meaning |
//! |---|---|
//! | `BAD_USER_INPUT` | an argument is out of range or malformed |
//! | `INVALID_CURSOR` | an `after` cursor this server did not issue |
//! | `UNAUTHENTICATED` | a write without a token, or with an unknown or revoked one |
//! | `FORBIDDEN` | a valid token writing outside its scope |
//! | `CONFLICT` | a write based on a stale revision (`extensions.currentRevision`) |
//! | `NOT_FOUND` | a write to a report, section, row or organisation that does not exist |
//! | `TOO_MANY_SUBSCRIPTIONS` | a WebSocket connection over its subscription quota |
//! | `IMPORT_BUSY` | `importDocument` while the most that run at once are running |
//! | `IMPORT_WOULD_REMOVE` | a re-import that removes content (`extensions.removals`) |
//! | the domain's edit codes | `INVALID_FIGURE`, `EMPTY_TEXT`, `TEXT_TOO_LONG`, `INVALID_URL`, `UNKNOWN_SECTOR`, `UNKNOWN_COUNTRY` |
//! | the store's write codes | `INCOMPLETE_FIGURES`, `POSITION_OUT_OF_RANGE`, `DUPLICATE`, `SYNTHETIC_MISMATCH` (an import that would write published and generated data into one report) |
//! | the importer's codes | `REPORT_*`, `IMPORT_*` (see the domain's parser and importer) |
//! | the exchange codes | `EXCHANGE_*`: a JSON document or table refused (`extensions.line`, `extensions.column`) |
//! | `INTERNAL` | the store failed; details are logged, never sent |
//!
//! Store messages can carry SQL or connection details, so they are logged and replaced by the
//! store's code.

use std::sync::Arc;

use async_graphql::{Error, ErrorExtensions, Value};
use plangraph_domain::edit::EditError;
use plangraph_domain::importer::ImportError;
use plangraph_persistence::{FieldChange, StoreError, WriteError};

/// Removals listed in an `IMPORT_WOULD_REMOVE` error; the message counts them all.
const MAX_LISTED_REMOVALS: usize = 50;

#[derive(Debug)]
pub enum ApiError {
    BadUserInput(String),
    InvalidCursor(String),
    Unauthenticated(String),
    NotFound(String),
    /// A connection already holds this many subscriptions.
    TooManySubscriptions(usize),
    /// This many `importDocument`s are running already.
    ImportBusy(usize),
    Edit(EditError),
    Import(ImportError),
    /// A JSON document or table refused before anything was written.
    Exchange(plangraph_exchange::ExchangeError),
    Write(WriteError),
    Internal {
        store_code: &'static str,
    },
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::InvalidCursor(_) => "INVALID_CURSOR",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::TooManySubscriptions(_) => "TOO_MANY_SUBSCRIPTIONS",
            Self::ImportBusy(_) => "IMPORT_BUSY",
            Self::Edit(e) => e.code(),
            Self::Import(e) => e.code(),
            Self::Exchange(e) => e.code(),
            Self::Write(WriteError::Store(_)) | Self::Internal { .. } => "INTERNAL",
            Self::Write(e) => e.code(),
        }
    }

    /// The message clients see. (Not `Display`: async-graphql would then turn it into an error
    /// without its code.)
    pub fn message(&self) -> String {
        match self {
            Self::BadUserInput(m) | Self::Unauthenticated(m) | Self::NotFound(m) => m.clone(),
            Self::InvalidCursor(c) => format!("the cursor '{c}' was not issued by this server"),
            Self::ImportBusy(max) => format!(
                "{max} document imports are running, the most this server runs at once; try again shortly"
            ),
            Self::TooManySubscriptions(max) => format!(
                "this connection already holds {max} subscriptions; end one, or open another connection"
            ),
            Self::Edit(e) => e.to_string(),
            Self::Import(e) => e.to_string(),
            Self::Exchange(e) => e.to_string(),
            Self::Write(WriteError::Store(_)) | Self::Internal { .. } => {
                "internal error".to_owned()
            }
            Self::Write(e) => e.to_string(),
        }
    }

    /// Logs a store failure and returns the masked error clients see.
    pub fn store(err: &StoreError) -> Self {
        tracing::error!(code = err.code(), error = %err, "store failure while resolving");
        Self::Internal {
            store_code: err.code(),
        }
    }

    /// A stored value that no longer matches the schema (a corrupt or newer store).
    pub fn corrupt(what: &str, value: &str) -> Self {
        tracing::error!(what, value, "stored value does not match the schema");
        Self::Internal {
            store_code: "STORE_VALUE_UNKNOWN",
        }
    }
}

fn change_value(change: &FieldChange) -> Value {
    let mut map = async_graphql::indexmap::IndexMap::new();
    map.insert(
        async_graphql::Name::new("path"),
        Value::String(change.path.clone()),
    );
    for (key, value) in [("before", &change.before), ("after", &change.after)] {
        map.insert(
            async_graphql::Name::new(key),
            value.clone().map_or(Value::Null, Value::String),
        );
    }
    Value::Object(map)
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            match &err {
                ApiError::Internal { store_code } => ext.set("storeCode", *store_code),
                ApiError::Write(WriteError::Store(e)) => ext.set("storeCode", e.code()),
                ApiError::Exchange(e) => {
                    if let Some(at) = e.location {
                        ext.set("line", at.line);
                        ext.set("column", at.column);
                    }
                }
                ApiError::Write(WriteError::Conflict { expected, current }) => {
                    ext.set("expectedRevision", *expected);
                    ext.set("currentRevision", *current);
                }
                ApiError::Write(WriteError::WouldRemove(removals)) => {
                    ext.set("removalCount", removals.len());
                    ext.set(
                        "removals",
                        Value::List(
                            removals
                                .iter()
                                .take(MAX_LISTED_REMOVALS)
                                .map(change_value)
                                .collect(),
                        ),
                    );
                }
                ApiError::Import(ImportError::Report { error, .. }) => {
                    ext.set("line", error.line);
                }
                _ => {}
            }
        })
    }
}

impl From<EditError> for ApiError {
    fn from(err: EditError) -> Self {
        Self::Edit(err)
    }
}

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> Self {
        Self::Import(err)
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        if let WriteError::Store(e) = &err {
            tracing::error!(code = e.code(), error = %e, "store failure while writing");
        }
        Self::Write(err)
    }
}

/// The DataLoader's error: cloneable, because one failed batch answers many fields.
#[derive(Debug, Clone)]
pub struct LoadError(pub Arc<StoreError>);

impl From<StoreError> for LoadError {
    fn from(err: StoreError) -> Self {
        Self(Arc::new(err))
    }
}

impl From<LoadError> for Error {
    /// Every field that awaited a failed batch gets the masked error; the failure itself was
    /// logged once, by the loader.
    fn from(err: LoadError) -> Self {
        ApiError::Internal {
            store_code: err.0.code(),
        }
        .into()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::store(&err)
    }
}
