//! The GraphQL boundary's errors and their stable codes (`extensions.code`).
//!
//! | code | meaning |
//! |---|---|
//! | `BAD_USER_INPUT` | an argument is out of range or malformed |
//! | `INVALID_CURSOR` | an `after` cursor this server did not issue |
//! | `INTERNAL` | the store failed; details are logged, never sent |
//!
//! Store messages can carry SQL or connection details, so they are logged and replaced by the
//! store's code.

use std::sync::Arc;

use async_graphql::{Error, ErrorExtensions};
use plangraph_persistence::StoreError;

#[derive(Debug, Clone)]
pub enum ApiError {
    BadUserInput(String),
    InvalidCursor(String),
    Internal { store_code: &'static str },
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::InvalidCursor(_) => "INVALID_CURSOR",
            Self::Internal { .. } => "INTERNAL",
        }
    }

    /// The message clients see. (Not `Display`: async-graphql would then turn it into an error
    /// without its code.)
    pub fn message(&self) -> String {
        match self {
            Self::BadUserInput(m) => m.clone(),
            Self::InvalidCursor(c) => format!("the cursor '{c}' was not issued by this server"),
            Self::Internal { .. } => "internal error".to_owned(),
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

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let ApiError::Internal { store_code } = &err {
                ext.set("storeCode", *store_code);
            }
        })
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
    fn from(err: LoadError) -> Self {
        ApiError::store(&err.0).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::store(&err)
    }
}
