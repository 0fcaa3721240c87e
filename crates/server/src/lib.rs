//! The plangraph server: configuration, command line, the actix-web app. It wires the domain,
//! the store and the schema together and holds no rules of its own.

pub mod app;
pub mod cli;
pub mod error;
/// `plangraph generate`: the synthetic load-test data set written through the write path.
pub mod generate;
pub mod graphql_http;
pub mod import;
pub mod rate_limit;
/// Answers to repeated queries, kept per store revision.
pub mod response_cache;
pub mod telemetry;
pub mod watch;
pub mod websocket;

pub use app::{AppState, configure};
pub use error::CliError;
pub use import::{
    ImportFlags, ImportSummary, import_report, load_bundled_if_empty, prepare_import, store_import,
};
