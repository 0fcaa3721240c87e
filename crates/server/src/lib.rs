//! The plangraph server: configuration, command line, the actix-web app. It wires the domain,
//! the store and the schema together and holds no rules of its own.
//!
//! Layers, each depending only on those above it: the settings and shared parts
//! ([`rate_limit`], [`client`], [`sockets`], [`metrics`]), the state every handler shares
//! ([`state`]), the transports ([`graphql_http`] with [`media`], [`stream`] and [`graphiql_http`], [`websocket`],
//! [`export_http`], [`pages_http`]), the routes ([`app`]), start-up ([`startup`]) and the command line
//! ([`cli`]).

pub mod app;
pub mod chunked;
pub mod cli;
pub mod client;
pub mod error;
pub mod export_http;
/// `plangraph generate`: the synthetic load-test data set written through the write path.
pub mod generate;
pub mod graphiql_http;
pub mod graphql_http;
pub mod import;
pub mod media;
pub mod metrics;
pub mod pages_http;
pub mod rate_limit;
pub mod request_id;
pub mod sockets;
pub mod startup;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod token;
pub mod watch;
pub mod websocket;

pub use app::configure;
pub use error::CliError;
pub use import::{
    ImportFlags, ImportSummary, import_report, load_bundled_if_empty, prepare_import, store_import,
};
pub use state::AppState;
