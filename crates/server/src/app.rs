//! The HTTP surface: `/graphql` (POST, GET, GraphiQL, WebSocket subscriptions in both the
//! `graphql-transport-ws` and the legacy `graphql-ws` protocol), `/healthz`, `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, guard, web};
use plangraph_api::{Api, Profile, QueryLimits, WriteLimits};
use plangraph_persistence::Store;
use serde_json::json;

use crate::graphql_http::{self, HttpLimits};
use crate::rate_limit::{DEFAULT_PER_ADDRESS, DEFAULT_PER_TOKEN, Rate, RateLimits};
use crate::response_cache::ResponseCache;
use crate::websocket::{self, SocketLimits, Sockets};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub api: Api,
    pub http: HttpLimits,
    /// Set once the store is migrated and holds its reports; until then `/readyz` says 503.
    pub ready: Arc<AtomicBool>,
    /// Requests per client address and per token.
    pub rate: Arc<RateLimits>,
    /// WebSocket limits (a message may carry a report text for a mutation over the socket).
    pub socket_limits: SocketLimits,
    /// The open sockets, and the signal that closes them at shutdown.
    pub sockets: Arc<Sockets>,
    /// Answers to repeated queries at the store's current revision; `None` when off.
    pub responses: Option<Arc<ResponseCache>>,
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
        Self {
            api: Api::configured(store, limits, QueryLimits::default(), profile),
            http,
            ready: Arc::new(AtomicBool::new(true)),
            rate: Arc::new(RateLimits::new(
                Rate::per_second(DEFAULT_PER_ADDRESS),
                Rate::per_second(DEFAULT_PER_TOKEN),
            )),
            socket_limits: SocketLimits {
                max_message_bytes: limits
                    .max_report_bytes
                    .saturating_mul(2)
                    .saturating_add(1 << 20),
                ..SocketLimits::default()
            },
            sockets: Arc::new(Sockets::default()),
            responses: ResponseCache::new(http.response_cache_bytes).map(Arc::new),
        }
    }
}

/// Registers the routes; used by the server and by in-process tests alike.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/graphql", web::post().to(graphql_http::post))
            .route(
                "/graphql",
                web::get()
                    .guard(guard::Header("upgrade", "websocket"))
                    .to(websocket::upgrade),
            )
            .route("/graphql", web::get().to(graphql_http::get))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz));
    }
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store is set up and answers (within the store's ping timeout).
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.ready.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "starting", "code": "STORE_NOT_READY" }));
    }
    let store = state.api.store();
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "store": store.backend() })),
        Err(err) => {
            tracing::warn!(code = err.code(), error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "code": err.code() }))
        }
    }
}

/// One structured log line per request, at debug level: at info, the line would cost more than
/// a small query (`RUST_LOG=info,plangraph_server=debug` shows them).
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}

/// CORS for the configured origins: none configured, no CORS headers (same-origin only).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::ACCEPT,
        ])
        .allowed_header("apollo-require-preflight")
        .allowed_header("x-apollo-operation-name")
        .max_age(3600);
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        cors = cors.allowed_origin(origin);
    }
    cors
}
