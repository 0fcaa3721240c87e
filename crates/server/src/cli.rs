//! The command line. Precedence for each setting: flag, then environment variable, then the
//! default shown in `--help`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use plangraph_api::QueryLimits;
use plangraph_domain::access::Role;
use plangraph_domain::importer::DEFAULT_MAX_REPORT_BYTES;
use plangraph_domain::synthetic::Plan;
use plangraph_persistence::{ChangeFilter, DEFAULT_DATABASE_URL, Store, redact};
use secrecy::{ExposeSecret, SecretString};

use crate::error::CliError;
use crate::import::ImportFlags;
use crate::startup::Server;
use plangraph_api::kept::{DEFAULT_RESPONSE_CACHE_BYTES, DEFAULT_ROW_CACHE_BYTES};

mod backup;
mod export;
mod load;
mod serve;

pub use serve::{ExportArgs, MetricsArgs, RateArgs, ServeArgs, SocketArgs};

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
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB` (a password in it never
    /// prints: the value is a secret).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = secret)]
    pub database_url: SecretString,
}

/// Reads a value that must never print (`Debug` shows `[REDACTED]`).
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// How large a report text may be.
#[derive(Debug, Args)]
pub struct SizeArgs {
    /// Largest report text accepted, in bytes; larger ones are refused without being read.
    #[arg(long, env = "PLANGRAPH_MAX_REPORT_BYTES", default_value_t = DEFAULT_MAX_REPORT_BYTES)]
    pub max_report_bytes: usize,
}

/// The query limits (see `plangraph_api::limits`); defaults are the safe ones.
#[derive(Debug, Args)]
pub struct QueryLimitArgs {
    /// Lexical tokens per document.
    #[arg(long, env = "PLANGRAPH_MAX_TOKENS", default_value_t = QueryLimits::default().max_tokens)]
    pub max_tokens: usize,
    /// Nesting of fields, fragments included.
    #[arg(long, env = "PLANGRAPH_MAX_DEPTH", default_value_t = QueryLimits::default().max_depth)]
    pub max_depth: u64,
    /// Fields to resolve, each list counted by the items it may hold.
    #[arg(long, env = "PLANGRAPH_MAX_COMPLEXITY", default_value_t = QueryLimits::default().max_complexity)]
    pub max_complexity: u64,
    /// Aliased fields per document.
    #[arg(long, env = "PLANGRAPH_MAX_ALIASES", default_value_t = QueryLimits::default().max_aliases)]
    pub max_aliases: usize,
    /// Fields at an operation's root.
    #[arg(long, env = "PLANGRAPH_MAX_ROOT_FIELDS", default_value_t = QueryLimits::default().max_root_fields)]
    pub max_root_fields: u64,
    /// Directives per document.
    #[arg(long, env = "PLANGRAPH_MAX_DIRECTIVES", default_value_t = QueryLimits::default().max_directives)]
    pub max_directives: usize,
    /// Fragment spreads per document.
    #[arg(long, env = "PLANGRAPH_MAX_FRAGMENT_SPREADS", default_value_t = QueryLimits::default().max_fragment_spreads)]
    pub max_fragment_spreads: usize,
    /// Queries and mutations executing at once; the rest wait in arrival order (default: four
    /// per core, at least eight).
    #[arg(long, env = "PLANGRAPH_MAX_CONCURRENT_QUERIES", default_value_t = plangraph_api::limits::default_concurrency())]
    pub max_concurrent_queries: usize,
    /// How many of those slots subscription events may hold at once (default 0: half of them),
    /// so replays and subscribers never take the slots queries need.
    #[arg(long, env = "PLANGRAPH_MAX_CONCURRENT_EVENTS", default_value_t = 0)]
    pub max_concurrent_events: usize,
    /// Replayed subscription events (`afterRevision`) delivered per second by the whole
    /// process; 0 leaves them unpaced. Live events are never paced.
    #[arg(long, env = "PLANGRAPH_REPLAY_EVENTS_PER_SECOND", default_value_t = plangraph_api::limits::DEFAULT_REPLAY_EVENTS_PER_SECOND)]
    pub replay_events_per_second: u32,
    /// Nesting of lists and input objects (and list types), in the document and the variables.
    #[arg(long, env = "PLANGRAPH_MAX_VALUE_DEPTH", default_value_t = QueryLimits::default().max_value_depth)]
    pub max_value_depth: u64,
    /// Values in a request's variables, each list, object and member counted (`TOO_MANY_VALUES`;
    /// counted in the body's text before it is parsed).
    #[arg(long, env = "PLANGRAPH_MAX_INPUT_VALUES", default_value_t = QueryLimits::default().max_input_values)]
    pub max_input_values: usize,
    /// Representations one `_entities` call may resolve (each counted in complexity too).
    #[arg(long, env = "PLANGRAPH_MAX_REPRESENTATIONS", default_value_t = QueryLimits::default().max_representations)]
    pub max_representations: usize,
    /// Largest answer, in bytes as written; a larger one is `RESPONSE_TOO_LARGE`.
    #[arg(long, env = "PLANGRAPH_MAX_RESPONSE_BYTES", default_value_t = QueryLimits::default().max_response_bytes)]
    pub max_response_bytes: usize,
    /// Bytes of recorded history one request may read, all its `history` pages together.
    #[arg(long, env = "PLANGRAPH_HISTORY_BYTES_PER_REQUEST", default_value_t = QueryLimits::default().history_bytes_per_request)]
    pub history_bytes_per_request: usize,
    /// Bytes of answers to repeated anonymous queries kept for the store's current version
    /// (over HTTP and WebSockets alike; every write, by any process, is seen by the next
    /// request); 0 turns it off.
    #[arg(long, env = "PLANGRAPH_RESPONSE_CACHE_BYTES", default_value_t = DEFAULT_RESPONSE_CACHE_BYTES)]
    pub response_cache_bytes: usize,
    /// Bytes of loaded rows kept for the store's current version and shared by queries: a
    /// query reads the version first (one read shared by the queries arriving together) and
    /// loads only what is not kept; 0 keeps none.
    #[arg(long, env = "PLANGRAPH_ROW_CACHE_BYTES", default_value_t = DEFAULT_ROW_CACHE_BYTES)]
    pub row_cache_bytes: usize,
    /// Answer the federation SDL (`{ _service { sdl } }`) only to callers with a valid token.
    /// Off by default: gateways fetch it anonymously (give the gateway a token when on).
    #[arg(long, env = "PLANGRAPH_SDL_NEEDS_TOKEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub sdl_needs_token: bool,
    /// Milliseconds a request may wait for an execution slot plus, for a query, run; a
    /// mutation that started is never cut short.
    #[arg(long, env = "PLANGRAPH_QUERY_TIMEOUT_MS", default_value_t = 10_000)]
    pub query_timeout_ms: u64,
}

impl QueryLimitArgs {
    fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_tokens: self.max_tokens,
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
            max_directives: self.max_directives,
            max_fragment_spreads: self.max_fragment_spreads,
            timeout: Duration::from_millis(self.query_timeout_ms),
            max_concurrent: self.max_concurrent_queries.max(1),
            max_concurrent_events: self.max_concurrent_events,
            replay_events_per_second: self.replay_events_per_second,
            max_value_depth: self.max_value_depth,
            max_input_values: self.max_input_values,
            max_representations: self.max_representations,
            max_response_bytes: self.max_response_bytes,
            history_bytes_per_request: self.history_bytes_per_request,
            response_cache_bytes: self.response_cache_bytes,
            row_cache_bytes: self.row_cache_bytes,
            service_sdl_needs_token: self.sdl_needs_token,
            ..QueryLimits::default()
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Json,
    Csv,
    Hxl,
    Xlsx,
}

impl FormatArg {
    fn format(self) -> plangraph_exchange::Format {
        match self {
            Self::Json => plangraph_exchange::Format::Json,
            Self::Csv => plangraph_exchange::Format::Csv,
            Self::Hxl => plangraph_exchange::Format::Hxl,
            Self::Xlsx => plangraph_exchange::Format::Xlsx,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Editor,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (loads the bundled Peru report into an empty store).
    Serve(Box<ServeArgs>),
    /// Import reports: report texts, JSON documents (whole reports, as `export --format json`
    /// writes them) and figures tables (CSV or HXL, figures for stored reports), told apart by
    /// their content. A directory imports each of its files. Each report is its own
    /// transaction: a refused file or report leaves the others loaded, is named, and makes the
    /// exit status non-zero. Importing the same report again replaces it in place; a re-import
    /// that would remove content needs --allow-removals.
    Import {
        /// Files or directories; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<String>,
        /// ISO3 code of the country: for a report text, by default taken from the file name
        /// (`…-peru.txt`); for JSON and tables, the only country their reports may be of.
        #[arg(long)]
        country: Option<String>,
        /// Let a re-import remove rows, paragraphs or sources, or cut a text short (the
        /// replaced content stays in the history).
        #[arg(long)]
        allow_removals: bool,
        /// Import even though the text names another country far more than --country.
        #[arg(long)]
        force_country: bool,
        /// Check and compare with the stored report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Largest JSON document or table read, in bytes (report texts keep --max-report-bytes).
        #[arg(long, env = "PLANGRAPH_MAX_DOCUMENT_BYTES", default_value_t = 256 * 1024 * 1024)]
        max_document_bytes: usize,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        size: SizeArgs,
    },
    /// Export reports: `json` (the lossless document, a collection of reports), `csv` and
    /// `hxl` (the sector figures table), `xlsx` (a workbook, a sheet per table). All reports
    /// by default; --report, --country and --year select. Written a report at a time.
    Export {
        #[arg(long, value_enum)]
        format: FormatArg,
        /// One report, by id.
        #[arg(long)]
        report: Option<i32>,
        /// Reports of this country (ISO3).
        #[arg(long)]
        country: Option<String>,
        /// Reports of this year.
        #[arg(long)]
        year: Option<i32>,
        /// The file to write (standard output by default; required for xlsx). An existing file
        /// is refused unless --force; the store itself always is.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// Write over an existing --output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a synthetic, response-sized data set for load tests: end-year reports for the
    /// first N R4V countries over several years, with organisations linked as partners and
    /// donors. Everything it writes is marked synthetic; published reports keep their slots
    /// (an empty store gets the bundled Peru report first); the same seed gives the same data.
    Generate {
        /// The first this many R4V countries, in reference order (1–17).
        #[arg(long, default_value_t = 17)]
        countries: usize,
        /// End-year reports for this many years, ending with --last-year.
        #[arg(long, default_value_t = 6)]
        years: u32,
        #[arg(long, default_value_t = 2024)]
        last_year: i32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Organisations in all; every fifth is a donor, the rest are partners.
        #[arg(long, default_value_t = 200)]
        organizations: usize,
        #[arg(long, default_value_t = 40)]
        partners_per_report: usize,
        #[arg(long, default_value_t = 12)]
        donors_per_report: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Apply pending migrations.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the GraphQL schema (SDL); `--federation` prints the Apollo Federation v2 subgraph
    /// SDL a gateway composes.
    Schema {
        #[arg(long)]
        federation: bool,
    },
    /// Manage the API tokens partner systems write with.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print committed changes as they happen (every process's, from the store itself).
    Watch {
        /// Only reports of this country (ISO3).
        #[arg(long)]
        country: Option<String>,
        /// Only reports of this year.
        #[arg(long)]
        year: Option<i32>,
        /// Only this report.
        #[arg(long)]
        report: Option<i32>,
        /// First print every change after this revision from the history.
        #[arg(long)]
        after_revision: Option<i64>,
        /// Stop after this many changes.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Copy a SQLite store to FILE while servers run on it (`VACUUM INTO`: one consistent
    /// state, WAL included; writers go on). FILE must not exist; a copy cut short never
    /// carries its name. The copy holds everything: reports, history, organisations and API
    /// tokens (as hashes, revoked ones marked). The store is not migrated. Postgres: use
    /// `pg_dump` (see the README).
    Backup {
        /// The backup file to create.
        file: std::path::PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the SQLite store's content with a backup made by `plangraph backup`. Safe while
    /// servers run on the store, so it does not refuse them: the backup is checked first
    /// (integrity, plangraph's tables, the same migrations), then every table is replaced in
    /// one transaction under SQLite's write lock; a running server sees the restored store at
    /// its next request (a new store version: nothing cached is served) and its subscribers
    /// get the changes written after it. Tokens come back as they were at the backup: revoke
    /// again any revoked since. A new, empty store is set up first (restoring onto a new
    /// machine); an existing one is not migrated. Postgres: use `pg_restore` (see the README).
    Restore {
        /// The backup file to restore.
        file: std::path::PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once; the store keeps only a hash).
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A country an editor may write (repeat for several); not for admins.
        #[arg(long = "country")]
        countries: Vec<String>,
        /// A label for people, recorded with every change the token makes.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token: it stops working at once.
    Revoke { id: i32 },
}

/// An R4V country code as typed (any case), or a usage error.
fn r4v_country(code: &str) -> Result<String, CliError> {
    plangraph_domain::edit::country(code)
        .map(|def| def.iso3.to_owned())
        .map_err(|e| CliError::Usage(e.to_string()))
}

async fn open_store(args: &StoreArgs) -> Result<Store, CliError> {
    let store = Store::connect(args.database_url.expose_secret()).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => Server::build(args.options()).await?.run().await,
        Command::Import {
            files,
            country,
            allow_removals,
            force_country,
            dry_run,
            max_document_bytes,
            store,
            size,
        } => {
            let single = files.len() == 1 && !std::path::Path::new(&files[0]).is_dir();
            let files = load::expand(&files)?;
            let options = load::LoadOptions {
                flags: ImportFlags {
                    allow_removals,
                    override_country_check: force_country,
                    dry_run,
                    max_bytes: size.max_report_bytes,
                },
                country,
                max_document_bytes,
                database: redact(store.database_url.expose_secret()),
            };
            if single {
                // One file: checked before the store is opened (a refused file never creates
                // it), its refusal the command's error.
                return load::single(&files[0], &options, || open_store(&store)).await;
            }
            let store_handle = open_store(&store).await?;
            load::run(&store_handle, &files, &options).await
        }
        Command::Export {
            format,
            report,
            country,
            year,
            output,
            force,
            store,
        } => {
            if let Some(path) = &output {
                let store_file = export::sqlite_file(store.database_url.expose_secret());
                export::check_output(path, store_file.as_deref(), force)?;
            }
            let selection = plangraph_exchange::Selection {
                report_id: report,
                country_iso3: country.as_deref().map(r4v_country).transpose()?,
                year,
            };
            let store_handle = open_store(&store).await?;
            export::run(
                &store_handle,
                &selection,
                format.format(),
                output.as_deref(),
            )
            .await
        }
        Command::Generate {
            countries,
            years,
            last_year,
            seed,
            organizations,
            partners_per_report,
            donors_per_report,
            store,
        } => {
            let plan = Plan {
                countries,
                years,
                last_year,
                seed,
                organizations,
                partners_per_report,
                donors_per_report,
            };
            // Check the plan before opening the store: a plan that cannot be met touches nothing.
            plangraph_domain::synthetic::check(&plan)?;
            let store_handle = open_store(&store).await?;
            let started = std::time::Instant::now();
            let summary = crate::generate::generate(&store_handle, &plan).await?;
            println!(
                "generated {plan} into {} in {:.1} s: {} report(s) written, {} unchanged; organisations: {} created, {} reused",
                redact(store.database_url.expose_secret()),
                started.elapsed().as_secs_f64(),
                summary.reports_written,
                summary.reports_unchanged,
                summary.organizations_created,
                summary.organizations_reused,
            );
            if !summary.skipped_published.is_empty() {
                println!(
                    "left alone (published reports): {}",
                    summary.skipped_published.join(", ")
                );
            }
            Ok(())
        }
        Command::Migrate { store } => {
            open_store(&store).await?;
            println!(
                "migrations applied to {}",
                redact(store.database_url.expose_secret())
            );
            Ok(())
        }
        Command::Schema { federation } => {
            if federation {
                print!("{}", plangraph_api::federation_sdl());
            } else {
                print!("{}", plangraph_api::sdl());
            }
            Ok(())
        }
        Command::Token { command, store } => {
            let store = open_store(&store).await?;
            match command {
                TokenCommand::Create {
                    role,
                    countries,
                    name,
                } => {
                    let role = match role {
                        RoleArg::Editor => Role::Editor,
                        RoleArg::Admin => Role::Admin,
                    };
                    crate::token::create(&store, role, &countries, name).await
                }
                TokenCommand::List => crate::token::list(&store).await,
                TokenCommand::Revoke { id } => crate::token::revoke(&store, id).await,
            }
        }
        Command::Watch {
            country,
            year,
            report,
            after_revision,
            limit,
            store,
        } => {
            let store = open_store(&store).await?;
            let country = country.as_deref().map(r4v_country).transpose()?;
            let filter = ChangeFilter {
                report_id: report,
                country_iso3: country,
                year,
                ..ChangeFilter::default()
            };
            crate::watch::watch(&store, filter, after_revision, limit).await
        }
        Command::Backup { file, store } => backup::backup(&file, &store).await,
        Command::Restore { file, store } => backup::restore(&file, &store).await,
    }
}
