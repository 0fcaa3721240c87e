//! `plangraph serve`'s flags, grouped as the settings they make, and the [`ServeOptions`] they
//! become (start-up itself is [`crate::startup`]'s).

use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use plangraph_api::{Profile, WriteLimits};

use super::{ProfileArg, QueryLimitArgs, SizeArgs, StoreArgs};
use crate::client::parse_network;
use crate::export_http::{DEFAULT_MAX_CONCURRENT_EXPORTS, ExportAccess};
use crate::metrics::MetricsAccess;
use crate::rate_limit::{DEFAULT_GLOBAL, DEFAULT_PER_ADDRESS, DEFAULT_PER_TOKEN, Rate};
use crate::sockets::SocketLimits;
use crate::startup::{Rates, ServeOptions};
use crate::state::{DEFAULT_MAX_BODY_BYTES, HttpLimits};

/// `plangraph serve`'s settings.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(long, env = "PLANGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// Largest request body read over HTTP, in bytes; larger ones get 413 unread.
    #[arg(long, env = "PLANGRAPH_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Refuse a GET query, or a form or plain-text POST, without an
    /// `apollo-require-preflight` or `x-apollo-operation-name` header (CSRF prevention).
    #[arg(long, env = "PLANGRAPH_CSRF_PREVENTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub csrf_prevention: bool,
    /// An origin whose pages may call the API from a browser (repeat, or separate with
    /// commas); none by default, so only same-origin pages can.
    #[arg(
        long = "cors-origin",
        env = "PLANGRAPH_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// `production`: no introspection without a valid token, no field suggestions, no query
    /// console. `development` (the default): all of them.
    #[arg(
        long,
        env = "PLANGRAPH_PROFILE",
        value_enum,
        default_value = "development"
    )]
    pub profile: ProfileArg,
    /// Serve GraphiQL at `/graphql` to browsers (and its files under `/graphiql/`): on in the
    /// development profile, off in production unless this says `true`.
    #[arg(long, env = "PLANGRAPH_GRAPHIQL", action = clap::ArgAction::Set)]
    pub graphiql: Option<bool>,
    /// Serve the report pages (`/reports`, `/reports/{ISO3}/{YEAR}`, `/assets/…`): what
    /// anonymous queries show, so on in both profiles; `false` answers them 404.
    #[arg(long, env = "PLANGRAPH_PAGES", default_value_t = true, action = clap::ArgAction::Set)]
    pub pages: bool,
    #[command(flatten)]
    pub rates: RateArgs,
    #[command(flatten)]
    pub query_limits: QueryLimitArgs,
    #[command(flatten)]
    pub sockets: SocketArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// Milliseconds requests being handled at SIGTERM get to finish (WebSockets are closed
    /// with 1001 at once); connections left after it get two more seconds to take what
    /// they were sent.
    #[arg(long, env = "PLANGRAPH_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
}

impl ServeArgs {
    /// The settings `serve` runs with.
    pub fn options(self) -> ServeOptions {
        let profile = match self.profile {
            ProfileArg::Development => Profile::Development,
            ProfileArg::Production => Profile::Production,
        };
        ServeOptions {
            listen: self.listen,
            database_url: self.store.database_url,
            limits: WriteLimits {
                max_report_bytes: self.size.max_report_bytes,
            },
            http: HttpLimits {
                max_body_bytes: self.max_body_bytes,
                csrf_prevention: self.csrf_prevention,
                console: self.graphiql.unwrap_or(profile == Profile::Development),
                pages: self.pages,
            },
            profile,
            cors_origins: self.cors_origins,
            rates: Rates {
                per_address: Rate::per_second(self.rates.rate_per_address),
                per_token: Rate::per_second(self.rates.rate_per_token),
                global: Rate::per_second(self.rates.rate_global),
            },
            trusted_proxies: self.rates.trusted_proxies,
            query: self.query_limits.limits(),
            sockets: self.sockets.limits(),
            metrics: MetricsAccess {
                enabled: self.metrics.metrics,
                allow: self.metrics.metrics_allow,
            },
            exports: ExportAccess::new(
                self.exports.exports,
                self.exports.max_concurrent_exports,
                Duration::from_millis(self.exports.export_send_timeout_ms.max(1)),
            ),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
        }
    }
}

/// Rate limits, and whose forwarding headers name the client.
#[derive(Debug, Args)]
pub struct RateArgs {
    /// Requests (and WebSocket operations) a second per client address, an IPv6 client's /64
    /// counting as one (bursts of twice as many); 0 for no limit.
    #[arg(long, env = "PLANGRAPH_RATE_PER_ADDRESS", default_value_t = DEFAULT_PER_ADDRESS)]
    pub rate_per_address: f64,
    /// Requests (and WebSocket operations) a second per token (bursts of twice as many); 0 for
    /// no limit.
    #[arg(long, env = "PLANGRAPH_RATE_PER_TOKEN", default_value_t = DEFAULT_PER_TOKEN)]
    pub rate_per_token: f64,
    /// Requests a second for the whole process, whatever their address or token (bursts of
    /// twice as many), checked after the client's own limits; 0 (the default) for no limit.
    #[arg(long, env = "PLANGRAPH_RATE_GLOBAL", default_value_t = DEFAULT_GLOBAL)]
    pub rate_global: f64,
    /// A proxy (address or CIDR network) whose `Forwarded` / `X-Forwarded-For` header names the
    /// client (repeat, or separate with commas); none by default, so those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "PLANGRAPH_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<IpNet>,
}

/// WebSocket limits and intervals.
#[derive(Debug, Args)]
pub struct SocketArgs {
    /// Open WebSocket connections at most; more are refused with 503.
    #[arg(long, env = "PLANGRAPH_MAX_WEBSOCKETS", default_value_t = 10_000)]
    pub max_websockets: usize,
    /// How long a WebSocket client has to send `connection_init` (closed with 4408 after).
    #[arg(long, env = "PLANGRAPH_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_init_timeout_ms: u64,
    /// How often the server pings each WebSocket.
    #[arg(long, env = "PLANGRAPH_WS_PING_INTERVAL_MS", default_value_t = 30_000)]
    pub ws_ping_interval_ms: u64,
    /// How long a WebSocket that sends nothing (not even a pong) is kept (closed with 1001).
    #[arg(
        long,
        env = "PLANGRAPH_WS_SILENCE_TIMEOUT_MS",
        default_value_t = 90_000
    )]
    pub ws_silence_timeout_ms: u64,
    /// How long one message may wait for a WebSocket client that does not read (the socket is
    /// then dropped, counted as a 1008 close, and its place freed).
    #[arg(long, env = "PLANGRAPH_WS_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_send_timeout_ms: u64,
    /// How often an SSE or multipart stream with nothing to say sends a heartbeat.
    #[arg(long, env = "PLANGRAPH_STREAM_HEARTBEAT_MS", default_value_t = 10_000)]
    pub stream_heartbeat_ms: u64,
}

impl SocketArgs {
    fn limits(&self) -> SocketLimits {
        SocketLimits {
            max_connections: self.max_websockets,
            init_timeout: Duration::from_millis(self.ws_init_timeout_ms),
            ping_every: Duration::from_millis(self.ws_ping_interval_ms.max(1)),
            silent_for: Duration::from_millis(self.ws_silence_timeout_ms),
            send_timeout: Duration::from_millis(self.ws_send_timeout_ms.max(1)),
            stream_heartbeat: Duration::from_millis(self.stream_heartbeat_ms.max(1)),
            ..SocketLimits::default()
        }
    }
}

/// `GET /export/{format}`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Serve `GET /export/{json,csv,hxl,xlsx}` (what anonymous queries show, so on in both
    /// profiles); `false` answers it 404.
    #[arg(long, env = "PLANGRAPH_EXPORTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub exports: bool,
    /// Exports streaming at once (each holds one read connection); more get 503 EXPORT_BUSY.
    #[arg(long, env = "PLANGRAPH_MAX_CONCURRENT_EXPORTS", default_value_t = DEFAULT_MAX_CONCURRENT_EXPORTS)]
    pub max_concurrent_exports: usize,
    /// Milliseconds an export waits for a client that stopped reading before cutting it short.
    #[arg(
        long,
        env = "PLANGRAPH_EXPORT_SEND_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub export_send_timeout_ms: u64,
}

/// `GET /metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Serve `GET /metrics` (Prometheus text format); `false` answers it 404.
    #[arg(long, env = "PLANGRAPH_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// Client networks that may read `/metrics` (repeat, or separate with commas); loopback by
    /// default, since the figures tell a stranger how loaded the server is.
    #[arg(
        long = "metrics-allow",
        env = "PLANGRAPH_METRICS_ALLOW",
        value_delimiter = ',',
        value_parser = parse_network,
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub metrics_allow: Vec<IpNet>,
}
