//! Start-up: from settings to a running server, apart from the command line that reads them.
//!
//! `Server::build(options)` connects the store (lazily: a database that is down at start is
//! waited for, with `/readyz` at 503 meanwhile), binds the listener, builds the shared state
//! and the HTTP server, and gives back the bound address; `Server::run` serves until SIGTERM or
//! Ctrl-C, then shuts down in order: sockets closed with 1001, new connections no longer
//! accepted, requests being handled given up to `shutdown_timeout` to finish, then whatever
//! connection is left (an idle keep-alive, a client that does not read what it was sent) given
//! [`FLUSH_GRACE`] and dropped.
//!
//! The process's background work (rate-limit pruning, the store's retries) runs on a small
//! multi-threaded runtime of its own, not on one of actix's single-threaded workers, so a busy
//! worker delays none of it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer};
use ipnet::IpNet;
use plangraph_api::{Profile, QueryLimits, WriteLimits};
use plangraph_persistence::Store;
use secrecy::{ExposeSecret, SecretString};

use crate::app::{configure, cors};
use crate::client::TrustedProxies;
use crate::error::CliError;
use crate::import::load_bundled_if_empty;
use crate::metrics::MetricsAccess;
use crate::rate_limit::{Rate, RateLimits};
use crate::sockets::SocketLimits;
use crate::state::{AppState, HttpLimits};

/// How long connections left after the drain get to take what they were sent.
pub const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// How often the rate limits drop the keys whose bucket is full again.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Requests a second per client address, per token, and for the whole process.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub per_address: Rate,
    pub per_token: Rate,
    pub global: Rate,
}

/// Everything `serve` needs. The database URL may hold a password: it never prints.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `HOST:PORT`; port 0 picks a free port.
    pub listen: String,
    pub database_url: SecretString,
    pub limits: WriteLimits,
    pub http: HttpLimits,
    pub profile: Profile,
    /// Origins allowed to call from a browser (none: same-origin only).
    pub cors_origins: Vec<String>,
    pub rates: Rates,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<IpNet>,
    /// What a document may ask for.
    pub query: QueryLimits,
    /// WebSocket limits and intervals (`max_message_bytes` is worked out from `limits`).
    pub sockets: SocketLimits,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// `GET /export/{format}`.
    pub exports: crate::export_http::ExportAccess,
    /// How long requests being handled at SIGTERM get to finish.
    pub shutdown_timeout: Duration,
}

/// The process's runtime for background work; shut down (without waiting) when dropped.
#[derive(Debug)]
struct Background(Option<tokio::runtime::Runtime>);

impl Background {
    fn start() -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("plangraph-background")
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        if let Some(handle) = self.handle() {
            handle.spawn(task);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which an async context must not do.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Requests whose handler has not answered yet (WebSocket upgrades answer at once).
#[derive(Debug, Default)]
struct InFlight(AtomicUsize);

/// One request being handled; counted out when dropped.
struct Handling(Arc<InFlight>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> Handling {
        self.0.fetch_add(1, Ordering::SeqCst);
        Handling(self.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A server bound to its address, ready to run.
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    http: actix_web::dev::Server,
    in_flight: Arc<InFlight>,
    shutdown_timeout: Duration,
    background: Background,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Connects the store, binds the listener and builds the app; serves nothing until
    /// [`Server::run`].
    pub async fn build(options: ServeOptions) -> Result<Self, CliError> {
        // The recorder first, so every metric recorded from here on is kept.
        crate::metrics::handle();
        let background = Background::start()?;
        // Connections open on first use: a database that is down at start is waited for
        // (the server answers, not ready) instead of ending the process.
        let store = Store::connect_lazy(options.database_url.expose_secret()).await?;
        hand_background_to_store(&store, &background);
        let ready = Arc::new(AtomicBool::new(false));
        match prepare_store(&store).await {
            Ok(()) => ready.store(true, Ordering::SeqCst),
            Err(CliError::Store(err)) if err.is_unavailable() => {
                tracing::warn!(code = err.code(), error = %err, "the store is unavailable; serving, not ready, and retrying");
                background.spawn(prepare_until_ready(store.clone(), ready.clone()));
            }
            Err(other) => return Err(other),
        }
        let listener = TcpListener::bind(&options.listen).map_err(|source| CliError::Listen {
            addr: options.listen.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| CliError::Listen {
            addr: options.listen.clone(),
            source,
        })?;
        let mut state = AppState::with_query_limits(
            store,
            options.limits,
            options.query,
            options.http,
            options.profile,
        );
        state.ready = ready;
        state.rate = Arc::new(RateLimits::with_global(
            options.rates.per_address,
            options.rates.per_token,
            options.rates.global,
        ));
        state.proxies = Arc::new(TrustedProxies::new(options.trusted_proxies));
        state.socket_limits = SocketLimits {
            max_message_bytes: state.socket_limits.max_message_bytes,
            ..options.sockets
        };
        state.metrics = Arc::new(options.metrics);
        state.exports = Arc::new(options.exports);
        let rate = state.rate.clone();
        background.spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                every.tick().await;
                rate.prune();
            }
        });
        let in_flight = Arc::new(InFlight::default());
        let counted = in_flight.clone();
        let app_state = state.clone();
        let cors_origins = options.cors_origins;
        let http = HttpServer::new(move || {
            let counted = counted.clone();
            App::new()
                .wrap_fn(move |request, service| {
                    let handling = counted.enter();
                    let response = service.call(request);
                    async move {
                        let response = response.await;
                        drop(handling);
                        response
                    }
                })
                // Without configured origins, no CORS layer at all: same-origin pages still
                // send an Origin header, which a layer with no allowed origins would refuse.
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                // Outermost: every line logged for a request, by any layer, names its id.
                .wrap(from_fn(crate::request_id::middleware))
                .configure(configure(app_state.clone()))
        })
        .listen(listener)
        .map_err(|source| CliError::Listen {
            addr: addr.to_string(),
            source,
        })?
        .disable_signals()
        .shutdown_timeout(FLUSH_GRACE.as_secs().max(1))
        .run();
        Ok(Self {
            addr,
            state,
            http,
            in_flight,
            shutdown_timeout: options.shutdown_timeout,
            background,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down in order (see the module's
    /// documentation).
    pub async fn run(self) -> Result<(), CliError> {
        let Self {
            addr,
            state,
            http,
            in_flight,
            shutdown_timeout,
            background,
        } = self;
        let handle = http.handle();
        let sockets = state.sockets.clone();
        background.spawn(async move {
            terminated().await;
            tracing::info!(
                open = sockets.open(),
                in_flight = in_flight.count(),
                "shutting down: closing WebSockets, finishing requests"
            );
            sockets.shut_down();
            handle.pause().await;
            let deadline = Instant::now() + shutdown_timeout;
            while (in_flight.count() > 0 || sockets.open() > 0) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if in_flight.count() > 0 {
                tracing::warn!(
                    in_flight = in_flight.count(),
                    "requests still running at the shutdown timeout are cut short"
                );
            }
            handle.stop(true).await;
        });
        tracing::info!(%addr, "plangraph listening on http://{addr}/graphql");
        let served = http.await.map_err(|source| CliError::Listen {
            addr: addr.to_string(),
            source,
        });
        drop(background);
        served
    }
}

/// Waits for SIGTERM or Ctrl-C.
async fn terminated() {
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
}

/// The store's own background work (the version gate's reads, the change feed's listener or
/// poller, the announcement after a write) runs on the process's runtime, not on the actix
/// worker that happens to touch the store first.
fn hand_background_to_store(store: &Store, background: &Background) {
    if let Some(handle) = background.handle() {
        store.run_background_on(handle.clone());
    }
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
