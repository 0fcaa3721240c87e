//! The command line's error: each variant has a stable code printed as `error[CODE]`.

use plangraph_domain::importer::ImportError;
use plangraph_persistence::{BackupError, StoreError, WriteError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    /// The report text was refused; nothing was written.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The store refused the write; nothing was written.
    #[error(transparent)]
    Write(WriteError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    /// The process could not start its background runtime.
    #[error("cannot start the background runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("no token has the id {0}")]
    UnknownToken(i32),
    #[error("{0}")]
    Watch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `plangraph generate` was asked for a data set it cannot make.
    #[error(transparent)]
    Plan(#[from] plangraph_domain::synthetic::PlanError),
    /// `plangraph generate` would have written over something that is not its own.
    #[error("{0}")]
    Generate(String),
    /// An export could not be read or written.
    #[error(transparent)]
    Export(#[from] plangraph_exchange::ExportError),
    /// A JSON document or table was refused; nothing of it was written.
    #[error(transparent)]
    Exchange(#[from] plangraph_exchange::ApplyError),
    /// A file of `plangraph export --output` or `import` could not be read or written.
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    /// `plangraph export --output` would write over a file (or over the store itself).
    #[error("{}", export_target_message(.path, *.is_store))]
    ExportTarget { path: String, is_store: bool },
    /// A JSON document or table over `--max-document-bytes`; refused unread past the cap.
    #[error(
        "{source_name} is larger than the limit of {limit} bytes for a JSON document or table; nothing was read past it (raise it with --max-document-bytes or PLANGRAPH_MAX_DOCUMENT_BYTES)"
    )]
    DocumentTooLarge { source_name: String, limit: usize },
    /// `plangraph import` refused some of its files (each named above the summary); the
    /// others were loaded.
    #[error("{rejected} of {files} file(s) were rejected (see above); the others were loaded")]
    Rejected { rejected: usize, files: usize },
    /// `plangraph backup` or `restore` refused or failed; a refused restore changed nothing.
    #[error(transparent)]
    Backup(#[from] BackupError),
}

fn export_target_message(path: &str, is_store: bool) -> String {
    if is_store {
        format!("{path} is the store (or one of its journal files): an export never writes over it")
    } else {
        format!("{path} exists; nothing was written (--force writes over it)")
    }
}

impl From<WriteError> for CliError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Store(e) => Self::Store(e),
            other => Self::Write(other),
        }
    }
}

impl CliError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Import(e) => e.code(),
            Self::Write(e) => e.code(),
            Self::Listen { .. } => "LISTEN_FAILED",
            Self::Runtime(_) => "RUNTIME_FAILED",
            Self::Usage(_) => "USAGE",
            Self::UnknownToken(_) => "NOT_FOUND",
            Self::Watch(_) => "WATCH_FAILED",
            Self::Store(e) => e.code(),
            Self::Plan(e) => e.code(),
            Self::Generate(_) => "GENERATE_REFUSED",
            Self::Export(e) => e.code(),
            Self::Exchange(e) => e.code(),
            Self::File { .. } => "IO_ERROR",
            Self::Rejected { .. } => "IMPORT_REJECTED",
            Self::DocumentTooLarge { .. } => "DOCUMENT_TOO_LARGE",
            Self::ExportTarget { is_store: true, .. } => "EXPORT_TARGET_IS_THE_STORE",
            Self::ExportTarget { .. } => "EXPORT_TARGET_EXISTS",
            Self::Backup(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CliError;

    #[test]
    fn start_up_failures_have_their_codes() {
        assert_eq!(
            CliError::Runtime(std::io::Error::other("no threads")).code(),
            "RUNTIME_FAILED"
        );
        let listen = CliError::Listen {
            addr: "127.0.0.1:1".to_owned(),
            source: std::io::Error::other("in use"),
        };
        assert_eq!(listen.code(), "LISTEN_FAILED");
    }
}
