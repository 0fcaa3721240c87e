//! The command line. Precedence for each setting: flag, then environment variable, then the
//! default shown in `--help`.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, middleware::from_fn};
use clap::{Args, Parser, Subcommand, ValueEnum};
use plangraph_api::{Profile, QueryLimits, WriteLimits};
use plangraph_domain::access::Role;
use plangraph_domain::codes::Iso3;
use plangraph_domain::importer::{self, DEFAULT_MAX_REPORT_BYTES};
use plangraph_domain::synthetic::Plan;
use plangraph_persistence::{ChangeFilter, DEFAULT_DATABASE_URL, Store, redact};

use crate::app::{AppState, configure, log_requests};
use crate::error::CliError;
use crate::graphql_http::{DEFAULT_MAX_BODY_BYTES, HttpLimits};
use crate::import::{ImportFlags, load_bundled_if_empty, prepare_import, store_import};
use crate::rate_limit::{DEFAULT_PER_ADDRESS, DEFAULT_PER_TOKEN, Rate, RateLimits};
use crate::response_cache::DEFAULT_RESPONSE_CACHE_BYTES;

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
    /// Loaded rows (keys) kept per store version and shared by queries: a query reads the
    /// version first (one read shared by the queries arriving together) and loads only what is
    /// not kept; 0 keeps none.
    #[arg(long, env = "PLANGRAPH_ROW_CACHE_KEYS", default_value_t = plangraph_api::row_cache::DEFAULT_ROW_CACHE_KEYS)]
    pub row_cache_keys: usize,
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
            row_cache_keys: self.row_cache_keys,
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
pub enum RoleArg {
    Editor,
    Admin,
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
        #[command(flatten)]
        size: SizeArgs,
        /// Largest request body read over HTTP, in bytes; larger ones get 413 unread.
        #[arg(long, env = "PLANGRAPH_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
        /// Refuse a GET query, or a form or plain-text POST, without an
        /// `apollo-require-preflight` or `x-apollo-operation-name` header (CSRF prevention).
        #[arg(long, env = "PLANGRAPH_CSRF_PREVENTION", default_value_t = true, action = clap::ArgAction::Set)]
        csrf_prevention: bool,
        /// An origin whose pages may call the API from a browser (repeat, or separate with
        /// commas); none by default, so only same-origin pages can.
        #[arg(
            long = "cors-origin",
            env = "PLANGRAPH_CORS_ORIGINS",
            value_delimiter = ','
        )]
        cors_origins: Vec<String>,
        /// `production`: no introspection without a valid token, no field suggestions, no query
        /// console. `development` (the default): all of them.
        #[arg(
            long,
            env = "PLANGRAPH_PROFILE",
            value_enum,
            default_value = "development"
        )]
        profile: ProfileArg,
        /// Requests a second per client address (bursts of twice as many); 0 for no limit.
        #[arg(long, env = "PLANGRAPH_RATE_PER_ADDRESS", default_value_t = DEFAULT_PER_ADDRESS)]
        rate_per_address: f64,
        /// Requests a second per token (bursts of twice as many); 0 for no limit.
        #[arg(long, env = "PLANGRAPH_RATE_PER_TOKEN", default_value_t = DEFAULT_PER_TOKEN)]
        rate_per_token: f64,
        /// Bytes of answers to repeated anonymous queries kept for the store's current
        /// revision (every write, by any process, is seen by the next request); 0 turns it off.
        #[arg(long, env = "PLANGRAPH_RESPONSE_CACHE_BYTES", default_value_t = DEFAULT_RESPONSE_CACHE_BYTES)]
        response_cache_bytes: usize,
        #[command(flatten)]
        query_limits: QueryLimitArgs,
        /// Open WebSocket connections at most; more are refused with 503.
        #[arg(long, env = "PLANGRAPH_MAX_WEBSOCKETS", default_value_t = 10_000)]
        max_websockets: usize,
        /// How long a WebSocket client has to send `connection_init` (closed with 4408 after).
        #[arg(long, env = "PLANGRAPH_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
        ws_init_timeout_ms: u64,
    },
    /// Import a report's text (`-` reads standard input). Importing the same report again
    /// replaces it in place; a re-import that would remove content needs --allow-removals.
    Import {
        /// The report text file, or `-` for standard input.
        file: String,
        /// ISO3 code of the country; by default taken from the file name (`…-peru.txt`).
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
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        size: SizeArgs,
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

async fn open_store(args: &StoreArgs) -> Result<Store, CliError> {
    let store = Store::connect(&args.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

/// Reads a report file (or standard input) in bounded chunks, never past `limit`.
fn read_report(file: &str, limit: usize) -> Result<Vec<u8>, CliError> {
    if file == "-" {
        return Ok(importer::read_capped(
            std::io::stdin().lock(),
            limit,
            "stdin",
        )?);
    }
    let handle = std::fs::File::open(file).map_err(|error| importer::ImportError::Io {
        source_name: file.to_owned(),
        error,
    })?;
    Ok(importer::read_capped(handle, limit, file)?)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve {
            listen,
            store,
            size,
            max_body_bytes,
            csrf_prevention,
            cors_origins,
            profile,
            rate_per_address,
            rate_per_token,
            response_cache_bytes,
            query_limits,
            max_websockets,
            ws_init_timeout_ms,
        } => {
            // Connections open on first use: a database that is down at start is waited for
            // (the server answers, not ready) instead of ending the process.
            let store = Store::connect_lazy(&store.database_url).await?;
            let ready = Arc::new(AtomicBool::new(false));
            match prepare_store(&store).await {
                Ok(()) => ready.store(true, Ordering::SeqCst),
                Err(CliError::Store(err)) if err.is_unavailable() => {
                    tracing::warn!(code = err.code(), error = %err, "the store is unavailable; serving, not ready, and retrying");
                    actix_web::rt::spawn(prepare_until_ready(store.clone(), ready.clone()));
                }
                Err(other) => return Err(other),
            }
            let listener = TcpListener::bind(&listen).map_err(|source| CliError::Listen {
                addr: listen.clone(),
                source,
            })?;
            let limits = WriteLimits {
                max_report_bytes: size.max_report_bytes,
            };
            let profile = match profile {
                ProfileArg::Development => Profile::Development,
                ProfileArg::Production => Profile::Production,
            };
            let http = HttpLimits {
                max_body_bytes,
                csrf_prevention,
                console: profile == Profile::Development,
                response_cache_bytes,
            };
            let options = ServeOptions {
                limits,
                http,
                profile,
                cors_origins,
                rates: (
                    Rate::per_second(rate_per_address),
                    Rate::per_second(rate_per_token),
                ),
                query: query_limits.limits(),
                sockets: (max_websockets, Duration::from_millis(ws_init_timeout_ms)),
            };
            serve(store, listener, options, ready).await
        }
        Command::Import {
            file,
            country,
            allow_removals,
            force_country,
            dry_run,
            store,
            size,
        } => {
            let flags = ImportFlags {
                allow_removals,
                override_country_check: force_country,
                dry_run,
                max_bytes: size.max_report_bytes,
            };
            // Read and check before opening the store: a broken file never touches it.
            let bytes = read_report(&file, flags.max_bytes)?;
            let name = if file == "-" { "stdin" } else { file.as_str() };
            let prepared = prepare_import(&bytes, name, country.as_deref(), flags)?;
            let store_handle = open_store(&store).await?;
            let summary = store_import(&store_handle, prepared, flags).await?;
            for warning in &summary.warnings {
                eprintln!("warning[{}]: {file}:{warning}", warning.check.code());
            }
            let outcome = &summary.outcome;
            let verb = match (dry_run, outcome.replaced, outcome.change.is_some()) {
                (true, _, _) => "would import",
                (false, true, true) => "replaced",
                (false, true, false) => "unchanged",
                (false, false, _) => "imported",
            };
            println!(
                "{verb} report {} ({} {}) into {}: revision {}, {} value(s) changed, {} warning(s)",
                summary
                    .report_id()
                    .map_or_else(|| "(new)".to_owned(), |id| id.to_string()),
                summary.country,
                summary.year,
                redact(&store.database_url),
                outcome.revision,
                outcome.fields.len(),
                summary.warnings.len()
            );
            if dry_run {
                for removal in &outcome.removals {
                    println!("  would remove {}", removal.path);
                }
            }
            Ok(())
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
                redact(&store.database_url),
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
            println!("migrations applied to {}", redact(&store.database_url));
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
            token(&store, command).await
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
            let country = country
                .as_deref()
                .map(|c| {
                    plangraph_domain::edit::country(c)
                        .map(|def| def.iso3.to_owned())
                        .map_err(|e| CliError::Usage(e.to_string()))
                })
                .transpose()?;
            let filter = ChangeFilter {
                report_id: report,
                country_iso3: country,
                year,
                ..ChangeFilter::default()
            };
            crate::watch::watch(&store, filter, after_revision, limit).await
        }
    }
}

async fn token(store: &Store, command: TokenCommand) -> Result<(), CliError> {
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
            let codes = countries
                .iter()
                .map(|c| {
                    plangraph_domain::edit::country(c)
                        .ok()
                        .and_then(|def| Iso3::parse(def.iso3).ok())
                        .ok_or_else(|| CliError::Usage(format!("'{c}' is not an R4V country code")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match (role, codes.is_empty()) {
                (Role::Editor, true) => {
                    return Err(CliError::Usage(
                        "an editor token needs at least one --country".to_owned(),
                    ));
                }
                (Role::Admin, false) => {
                    return Err(CliError::Usage(
                        "an admin token writes every country; drop --country".to_owned(),
                    ));
                }
                _ => {}
            }
            let label = name.unwrap_or_else(|| {
                let scope: Vec<&str> = codes.iter().map(Iso3::as_str).collect();
                format!("{} {}", role.as_str().to_lowercase(), scope.join(" "))
                    .trim()
                    .to_owned()
            });
            let created = store.create_token(&label, role, &codes).await?;
            eprintln!(
                "token {} ({}, {}) created; its secret is shown once, keep it safe:",
                created.token.id, created.token.name, created.token.role
            );
            println!("{}", created.secret);
            Ok(())
        }
        TokenCommand::List => {
            println!("id\trole\tcountries\tname\tcreated\trevoked");
            for t in store.tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role,
                    if t.countries.is_empty() {
                        "*"
                    } else {
                        &t.countries
                    },
                    t.name,
                    t.created_at.to_rfc3339(),
                    t.revoked_at
                        .map_or_else(|| "-".to_owned(), |r| r.to_rfc3339())
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            if store.revoke_token(id).await? {
                println!("token {id} revoked");
                Ok(())
            } else {
                Err(CliError::UnknownToken(id))
            }
        }
    }
}

/// How `serve` serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub limits: WriteLimits,
    pub http: HttpLimits,
    pub profile: Profile,
    /// Origins allowed to call from a browser (none: same-origin only).
    pub cors_origins: Vec<String>,
    /// Requests per client address and per token.
    pub rates: (Rate, Rate),
    /// What a document may ask for.
    pub query: QueryLimits,
    /// Open WebSockets at most, and how long one may wait before `connection_init`.
    pub sockets: (usize, Duration),
}

/// Migrations, then the bundled report into an empty store.
async fn prepare_store(store: &Store) -> Result<(), CliError> {
    store.migrate().await?;
    if let Some(summary) = load_bundled_if_empty(store).await?
        && summary.outcome.change.is_some()
    {
        tracing::info!(
            report_id = summary.report_id(),
            country = summary.country,
            "store was empty: loaded the bundled report"
        );
    }
    Ok(())
}

/// Retries [`prepare_store`] until the database answers, then marks the server ready.
async fn prepare_until_ready(store: Store, ready: Arc<AtomicBool>) {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        tokio::time::sleep(wait).await;
        attempt += 1;
        match prepare_store(&store).await {
            Ok(()) => {
                ready.store(true, Ordering::SeqCst);
                tracing::info!(attempt, "the store answers: ready");
                return;
            }
            Err(err) => {
                // One line now and then, not one per attempt.
                if attempt % 20 == 1 {
                    tracing::warn!(attempt, code = err.code(), error = %err, "the store is still unavailable; retrying");
                }
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(
    store: Store,
    listener: TcpListener,
    options: ServeOptions,
    ready: Arc<AtomicBool>,
) -> Result<(), CliError> {
    let ServeOptions {
        limits,
        http,
        profile,
        cors_origins,
        rates,
        query,
        sockets: (max_websockets, ws_init_timeout),
    } = options;
    let addr = listener.local_addr().map_err(|source| CliError::Listen {
        addr: "listener".to_owned(),
        source,
    })?;
    let mut state = AppState::configured(store, limits, http, profile);
    state.api = plangraph_api::Api::configured(state.api.store().clone(), limits, query, profile);
    state.ready = ready;
    state.rate = Arc::new(RateLimits::new(rates.0, rates.1));
    state.socket_limits.max_connections = max_websockets;
    state.socket_limits.init_timeout = ws_init_timeout;
    // On SIGTERM or Ctrl-C every open WebSocket is closed with 1001 (going away), so the
    // server's graceful shutdown does not wait for sockets that would never end by themselves.
    let sockets = state.sockets.clone();
    actix_web::rt::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!(open = sockets.open(), "shutting down: closing WebSockets");
        sockets.shut_down();
    });
    let server = HttpServer::new(move || {
        App::new()
            // Without configured origins, no CORS layer at all: same-origin pages still send an
            // Origin header, which a layer with no allowed origins would refuse.
            .wrap(actix_web::middleware::Condition::new(
                !cors_origins.is_empty(),
                crate::app::cors(&cors_origins),
            ))
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
