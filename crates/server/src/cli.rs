//! The command line. Precedence for each setting: flag, then environment variable, then the
//! default shown in `--help`.

use std::net::TcpListener;

use actix_web::{App, HttpServer, middleware::from_fn};
use clap::{Args, Parser, Subcommand};
use plangraph_persistence::{DEFAULT_DATABASE_URL, Store, redact};

use crate::app::{AppState, configure, log_requests};
use crate::error::CliError;
use crate::import::{load_bundled_if_empty, prepare_import, store_import};

#[derive(Debug, Parser)]
#[command(
    name = "plangraph",
    version,
    about = "A GraphQL graph of humanitarian response-plan reports"
)]
pub struct Cli {
    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "PLANGRAPH_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the store is; shared by every subcommand that touches it.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (loads the bundled Peru report into an empty store).
    Serve {
        /// Address to listen on; port 0 picks a free port (the bound address is logged).
        #[arg(long, env = "PLANGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Import a report's text; importing the same report again replaces it in place.
    Import {
        /// The report text file.
        file: String,
        /// ISO3 code of the country; by default taken from the file name (`…-peru.txt`).
        #[arg(long)]
        country: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Apply pending migrations.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
}

async fn open_store(args: &StoreArgs) -> Result<Store, CliError> {
    let store = Store::connect(&args.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve { listen, store } => {
            let store = open_store(&store).await?;
            if let Some(summary) = load_bundled_if_empty(&store).await? {
                tracing::info!(
                    report_id = summary.outcome.report_id,
                    country = summary.country,
                    "store was empty: loaded the bundled report"
                );
            }
            let listener = TcpListener::bind(&listen).map_err(|source| CliError::Listen {
                addr: listen.clone(),
                source,
            })?;
            serve(store, listener).await
        }
        Command::Import {
            file,
            country,
            store,
        } => {
            // Read and check before opening the store: a broken file never touches it.
            let bytes = std::fs::read(&file).map_err(|source| CliError::Io {
                file: file.clone(),
                source,
            })?;
            let prepared = prepare_import(&bytes, &file, country.as_deref())?;
            let store_handle = open_store(&store).await?;
            let summary = store_import(&store_handle, prepared).await?;
            for warning in &summary.warnings {
                eprintln!("warning[{}]: {file}:{warning}", warning.check.code());
            }
            println!(
                "{} report {} ({} {}) into {} with {} warning(s)",
                if summary.outcome.replaced {
                    "replaced"
                } else {
                    "imported"
                },
                summary.outcome.report_id,
                summary.country,
                summary.year,
                redact(&store.database_url),
                summary.warnings.len()
            );
            Ok(())
        }
        Command::Migrate { store } => {
            open_store(&store).await?;
            println!("migrations applied to {}", redact(&store.database_url));
            Ok(())
        }
        Command::Schema => {
            print!("{}", plangraph_api::sdl());
            Ok(())
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(store: Store, listener: TcpListener) -> Result<(), CliError> {
    let addr = listener.local_addr().map_err(|source| CliError::Listen {
        addr: "listener".to_owned(),
        source,
    })?;
    let state = AppState::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(log_requests))
            .configure(configure(state.clone()))
    })
    .listen(listener)
    .map_err(|source| CliError::Listen {
        addr: addr.to_string(),
        source,
    })?
    .shutdown_timeout(10)
    .run();
    tracing::info!(%addr, "plangraph listening on http://{addr}/graphql");
    server.await.map_err(|source| CliError::Listen {
        addr: addr.to_string(),
        source,
    })
}
