//! The HTTP surface: `/graphql` (POST, GET, GraphiQL, WebSocket subscriptions in both the
//! `graphql-transport-ws` and the legacy `graphql-ws` protocol), `/healthz`, `/readyz`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::{Data, Request, Response};
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse, GraphQLSubscription};
use plangraph_api::{Api, Credentials, SubscriptionQuota, Transport, WriteLimits};

use crate::ws_limits::capped;
use plangraph_persistence::Store;
use serde_json::json;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub api: Api,
    /// Largest WebSocket message taken (a mutation over the socket may carry a report text).
    pub max_ws_message: usize,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        Self::with_limits(store, WriteLimits::default())
    }

    pub fn with_limits(store: Store, limits: WriteLimits) -> Self {
        Self {
            api: Api::with_limits(store, limits),
            max_ws_message: limits
                .max_report_bytes
                .saturating_mul(2)
                .saturating_add(1 << 20),
        }
    }
}

/// Registers the routes; used by the server and by in-process tests alike.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/graphql", web::post().to(graphql))
            .route(
                "/graphql",
                web::get()
                    .guard(guard::Header("upgrade", "websocket"))
                    .to(subscriptions),
            )
            .route("/graphql", web::get().to(graphql_get))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz));
    }
}

/// What the client presented in `Authorization`, for the schema to check on writes.
fn credentials(http: &HttpRequest) -> Credentials {
    Credentials::from_authorization(
        http.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A request error's status: 405 for a mutation over GET; GraphQL errors otherwise travel in a
/// 200 body, as the stock responder sends them.
fn respond(response: Response, http: &HttpRequest) -> HttpResponse {
    let method_not_allowed = response.data == async_graphql::Value::Null
        && response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("METHOD_NOT_ALLOWED"))
        });
    let mut reply = actix_web::Responder::respond_to(GraphQLResponse::from(response), http)
        .map_into_boxed_body();
    if method_not_allowed {
        *reply.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
        reply
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    reply
}

async fn graphql(
    state: web::Data<AppState>,
    http: HttpRequest,
    request: GraphQLRequest,
) -> HttpResponse {
    let request: Request = request.into_inner().data(credentials(&http));
    respond(state.api.execute(request).await, &http)
}

/// WebSocket operations: the token, if any, rides in the `connection_init` payload.
async fn subscriptions(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    GraphQLSubscription::new(state.api.schema().clone())
        .on_connection_init(|params: serde_json::Value| async move {
            let mut data = Data::default();
            data.insert(Credentials::from_connection_params(&params));
            data.insert(SubscriptionQuota::per_socket());
            Ok(data)
        })
        .start(&http, capped(payload, state.max_ws_message))
}

/// A GET with a `query` parameter is a query; without one, a browser asking for HTML gets
/// GraphiQL and anything else a 400.
async fn graphql_get(
    state: web::Data<AppState>,
    http: HttpRequest,
    request: Option<GraphQLRequest>,
) -> HttpResponse {
    let wants_html = http
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    // A GET without parameters still extracts, as an empty query.
    let request = request
        .map(GraphQLRequest::into_inner)
        .filter(|r| !r.query.is_empty());
    match request {
        Some(request) => {
            let request = request.data(Transport::HttpGet).data(credentials(&http));
            respond(state.api.execute(request).await, &http)
        }
        _ if wants_html => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(GraphiQLSource::build().endpoint("/graphql").finish()),
        _ => HttpResponse::BadRequest().json(json!({
            "errors": [{
                "message": "a GET request needs a `query` parameter",
                "extensions": { "code": "BAD_REQUEST" }
            }]
        })),
    }
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store answers.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
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

/// One structured log line per request.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}
