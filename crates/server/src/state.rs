//! What every handler shares, in a module of its own: the transports ([`crate::graphql_http`],
//! [`crate::websocket`]) and the routes ([`crate::app`]) all read it, and it depends on none of
//! them, only on the settings and shared parts they hold.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use plangraph_api::{Api, Profile, QueryLimits, WriteLimits};
use plangraph_persistence::Store;

use crate::client::TrustedProxies;
use crate::export_http::ExportAccess;
use crate::metrics::MetricsAccess;
use crate::pages_http::Rendered;
use crate::rate_limit::{DEFAULT_PER_ADDRESS, DEFAULT_PER_TOKEN, Rate, RateLimits};
use crate::sockets::{SocketLimits, Sockets};
use crate::stream::reservations::Reservations;

/// Limits and rules of the HTTP transport.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body read.
    pub max_body_bytes: usize,
    /// Refuse simple (cross-site-able) requests without a preflight header.
    pub csrf_prevention: bool,
    /// Serve the query console to browsers (off in the production profile).
    pub console: bool,
    /// Serve the report pages and their assets ([`crate::pages_http`]).
    pub pages: bool,
}

/// Default largest request body: 2 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            csrf_prevention: true,
            console: true,
            pages: true,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub api: Api,
    pub http: HttpLimits,
    /// Set once the store is migrated and holds its reports; until then `/readyz` says 503.
    pub ready: Arc<AtomicBool>,
    /// Requests per client address, per token and for the whole process.
    pub rate: Arc<RateLimits>,
    /// The proxies whose forwarding headers name the client (none by default).
    pub proxies: Arc<TrustedProxies>,
    /// WebSocket limits (a message may carry a report text for a mutation over the socket).
    pub socket_limits: SocketLimits,
    /// The open sockets, and the signal that closes them at shutdown.
    pub sockets: Arc<Sockets>,
    /// The reserved SSE streams of the single connection mode.
    pub reservations: Arc<Reservations>,
    /// Report pages rendered, by their answer ([`crate::pages_http`]).
    pub rendered: Arc<Rendered>,
    /// Who may read `GET /metrics`.
    pub metrics: Arc<MetricsAccess>,
    /// `GET /export/{format}`: on or off, and how many at once.
    pub exports: Arc<ExportAccess>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        Self::with_limits(store, WriteLimits::default(), HttpLimits::default())
    }

    pub fn with_limits(store: Store, limits: WriteLimits, http: HttpLimits) -> Self {
        Self::configured(store, limits, http, Profile::Development)
    }

    pub fn configured(
        store: Store,
        limits: WriteLimits,
        http: HttpLimits,
        profile: Profile,
    ) -> Self {
        Self::with_query_limits(store, limits, QueryLimits::default(), http, profile)
    }

    /// Every setting of the schema given; the rest (rates, sockets, metrics access) at their
    /// defaults, for the caller to change.
    pub fn with_query_limits(
        store: Store,
        limits: WriteLimits,
        query: QueryLimits,
        http: HttpLimits,
        profile: Profile,
    ) -> Self {
        Self {
            api: Api::configured(store, limits, query, profile),
            http,
            ready: Arc::new(AtomicBool::new(true)),
            rate: Arc::new(RateLimits::new(
                Rate::per_second(DEFAULT_PER_ADDRESS),
                Rate::per_second(DEFAULT_PER_TOKEN),
            )),
            proxies: Arc::new(TrustedProxies::default()),
            socket_limits: SocketLimits {
                max_message_bytes: limits
                    .max_report_bytes
                    .saturating_mul(2)
                    .saturating_add(1 << 20),
                ..SocketLimits::default()
            },
            sockets: Arc::new(Sockets::default()),
            reservations: Arc::new(Reservations::default()),
            rendered: Arc::new(Rendered::default()),
            metrics: Arc::new(MetricsAccess::default()),
            exports: Arc::new(ExportAccess::default()),
        }
    }
}
