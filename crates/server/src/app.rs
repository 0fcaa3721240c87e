//! The HTTP surface: `/graphql` (POST, GET, GraphiQL, SSE and multipart streams, PUT and
//! DELETE of the SSE single connection mode, WebSocket subscriptions in both the
//! `graphql-transport-ws` and the legacy `graphql-ws` protocol), `/export/{format}`, the
//! report pages (`/reports`, `/reports/{iso3}/{year}`, `/assets/{name}`),
//! `/healthz`, `/readyz`, `/metrics`. Routes only: the transports are [`crate::graphql_http`] and
//! [`crate::websocket`], what they share is [`crate::state`].

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, guard, web};
use serde_json::json;

use crate::graphql_http;
use crate::state::AppState;
use crate::stream::reservations;
use crate::websocket;

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
            .route("/graphql", web::put().to(reservations::reserve))
            .route("/graphql", web::delete().to(reservations::stop))
            .route("/healthz", web::get().to(healthz))
            .route("/favicon.ico", web::get().to(favicon))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .route(
                "/export/{format}",
                web::get().to(crate::export_http::export),
            )
            .route("/reports", web::get().to(crate::pages_http::index))
            .route("/reports", web::head().to(crate::pages_http::index))
            .route(
                "/reports/{iso3}/{year}",
                web::get().to(crate::pages_http::report),
            )
            .route(
                "/reports/{iso3}/{year}",
                web::head().to(crate::pages_http::report),
            )
            .route("/assets/{name}", web::get().to(crate::pages_http::asset))
            .route("/assets/{name}", web::head().to(crate::pages_http::asset))
            .route(
                "/graphiql/{name}",
                web::get().to(crate::graphiql_http::file),
            );
    }
}

/// Browsers ask for it on every page; there is none, and saying so with a 404 would put an
/// error in every page's console.
async fn favicon() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("cache-control", "public, max-age=86400"))
        .finish()
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

/// `GET /metrics`, the Prometheus text exposition, to the clients `--metrics-allow` names
/// (loopback by default). A request that says it came through a proxy we do not trust is
/// refused: its real client is unknown (a proxy on the same host would otherwise make every
/// client look local).
async fn metrics(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    let refuse = |status: actix_web::http::StatusCode, code: &str, message: &str| {
        HttpResponse::build(status)
            .json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
    };
    if !state.metrics.enabled {
        return refuse(
            actix_web::http::StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "metrics are off (--metrics false)",
        );
    }
    let peer = http.peer_addr().map(|a| a.ip());
    let through_unknown_proxy = crate::client::says_forwarded(http.headers())
        && !peer.is_some_and(|p| state.proxies.trusts(p));
    let allowed = !through_unknown_proxy
        && state
            .proxies
            .of(&http)
            .is_some_and(|client| state.metrics.allows(client));
    if !allowed {
        return refuse(
            actix_web::http::StatusCode::FORBIDDEN,
            "METRICS_NOT_ALLOWED",
            "metrics are answered to the addresses --metrics-allow names (loopback by default)",
        );
    }
    state.rate.record_gauges();
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render())
}

/// CORS for the configured origins: none configured, no CORS headers (same-origin only).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::ACCEPT,
        ])
        .allowed_header("apollo-require-preflight")
        .allowed_header("x-apollo-operation-name")
        .allowed_header(crate::request_id::HEADER)
        .allowed_header(reservations::TOKEN_HEADER)
        .expose_headers([crate::request_id::HEADER])
        .max_age(3600);
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        cors = cors.allowed_origin(origin);
    }
    cors
}
