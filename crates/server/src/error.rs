//! The command line's error: each variant has a stable code printed as `error[CODE]`.

use plangraph_domain::ParseError;
use plangraph_persistence::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    /// The report text is broken; nothing was written.
    #[error("{file}:{source}")]
    Report { file: String, source: ParseError },
    #[error("cannot tell which country {file} is about; pass --country ISO3")]
    UnknownCountry { file: String },
    #[error("'{0}' is not an R4V country code")]
    NotACountry(String),
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CliError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Report { source, .. } => source.kind.code(),
            Self::UnknownCountry { .. } => "IMPORT_UNKNOWN_COUNTRY",
            Self::NotACountry(_) => "IMPORT_NOT_A_COUNTRY",
            Self::Io { .. } => "IO_ERROR",
            Self::Listen { .. } => "LISTEN_FAILED",
            Self::Store(e) => e.code(),
        }
    }
}
