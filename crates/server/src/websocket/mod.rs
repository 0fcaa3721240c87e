//! GraphQL over WebSocket on `/graphql`: both the `graphql-transport-ws` protocol and the legacy
//! `graphql-ws` one, with the discipline a public server needs.
//!
//! async-graphql's protocol machine (`async_graphql::http::WebSocket`) speaks the protocols; this
//! module owns the socket around it (actix-ws) and adds:
//! - a cap on the size of one message, in one frame or in fragments (`1009` past it);
//! - `4408` when `connection_init` does not come within the init timeout;
//! - `4403` when `connection_init` carries a token the store does not know (or revoked);
//!   `4429` for a second `connection_init` comes from the protocol machine itself;
//! - every operation (`subscribe`, or `start` in the legacy protocol) counted against the same
//!   rate limits as an HTTP request (the client's address and the `connection_init` token): one
//!   over the limit is answered with that operation's `error` message (code `RATE_LIMITED`) and
//!   never reaches the protocol machine; after [`SocketLimits::max_refusals`] refusals in a row
//!   the socket is closed with `4429`;
//! - every message's values counted before anything builds it: an operation holding more than
//!   a request's variables may is answered with its `error` (code `TOO_MANY_VALUES`), any
//!   other such message closes the socket with `4400`;
//! - a cap on open connections (`503` with `Retry-After` at the upgrade, code
//!   `TOO_MANY_CONNECTIONS`) and on subscriptions per connection (`TOO_MANY_SUBSCRIPTIONS`);
//! - a deadline on every send: a client that does not read is closed (`1008`, not waited for)
//!   and its place freed; no send ever holds up pings, the silence check or the shutdown;
//! - `1001` for every open socket when the server shuts down;
//! - pings, and the connection closed (`1001`) when the peer stays silent.
//!
//! [`SocketLimits::max_refusals`]: crate::sockets::SocketLimits::max_refusals

mod operations;
mod session;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::WebSocketProtocols as Protocols;
use serde_json::json;
use tracing::Instrument;

use crate::state::AppState;

fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::RETRY_AFTER, "5"))
        .json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
}

/// GET /graphql with `Upgrade: websocket`.
pub async fn upgrade(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    if let Some(refused) = crate::graphql_http::rate_limited(&state, &http) {
        return Ok(refused);
    }
    let protocol = http
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| {
            let offered: Vec<&str> = list.split(',').map(str::trim).collect();
            // The current protocol when a client offers both.
            ["graphql-transport-ws", "graphql-ws"]
                .into_iter()
                .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
        })
        .and_then(|p| p.parse::<Protocols>().ok());
    let Some(protocol) = protocol else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "offer the graphql-transport-ws (or legacy graphql-ws) subprotocol",
        ));
    };
    let sockets = state.sockets.clone();
    if sockets.shutting_down() {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the server is shutting down",
        ));
    }
    let Some(place) = sockets.take_place(state.socket_limits.max_connections) else {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many open WebSocket connections; try again shortly",
        ));
    };
    let (mut response, session, messages) = actix_ws::handle(&http, payload)?;
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        header::HeaderValue::from_static(protocol.sec_websocket_protocol()),
    );
    // One frame may carry a whole message (browsers never fragment one; the codec's own
    // default would refuse any over 64 KiB): its values are counted before anything builds it.
    let messages = messages
        .max_frame_size(state.socket_limits.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.socket_limits.max_message_bytes);
    let socket = session::Socket {
        api: state.api.clone(),
        protocol,
        session,
        messages,
        limits: state.socket_limits,
        shutdown: sockets.shutdown_signal(),
        rate: state.rate.clone(),
        address: state.proxies.of(&http),
        place,
    };
    // The socket's lines carry the upgrade request's id.
    actix_web::rt::spawn(session::drive(socket).instrument(tracing::Span::current()));
    Ok(response)
}
