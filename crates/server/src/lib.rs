//! The plangraph server: configuration, command line, the actix-web app. It wires the domain,
//! the store and the schema together and holds no rules of its own.

pub mod app;
pub mod cli;
pub mod error;
pub mod import;
pub mod telemetry;

pub use app::{AppState, configure};
pub use error::CliError;
pub use import::{
    ImportSummary, PreparedImport, import_report, load_bundled_if_empty, prepare_import,
    store_import,
};
