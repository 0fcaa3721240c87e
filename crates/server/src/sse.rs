//! GraphQL over Server-Sent Events, the `graphql-sse` protocol's distinct connections mode: a
//! `POST` (or `GET`) of `/graphql` with `Accept: text/event-stream` is answered with an event
//! stream, `event: next` for each result and `event: complete` at the end. The request goes
//! through the HTTP handler's checks (body bound, rate limits, CSRF) and then the same
//! pipeline as a WebSocket operation (limits, slots, `afterRevision`, the `Authorization`
//! header's token), so what a query or subscription may do does not depend on its transport.
//! A request refused before executing gets its errors as a `next` event, as the protocol asks.
//!
//! Each stream takes a place among the open connections (the WebSocket limit, shared), sends a
//! comment every [`KEEP_ALIVE`] so proxies keep it open, gives up on a client that has not
//! taken an event within the sockets' send deadline, and ends
//! with `complete` when the server shuts down.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use async_graphql::Request;
use async_graphql::futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::state::AppState;

/// How often a stream with nothing to say sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(12);

fn event(name: &str, data: &str) -> web::Bytes {
    web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Answers `request` as an event stream.
pub fn respond(state: &AppState, request: Request) -> HttpResponse {
    if state.sockets.shutting_down() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the server is shutting down",
        );
    }
    let Some(place) = state
        .sockets
        .take_place(state.socket_limits.max_connections)
    else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many open streaming connections; try again shortly",
        );
    };
    let mut results = state.api.execute_stream(request, None);
    let mut shutdown = state.sockets.shutdown_signal();
    let send_timeout = state.socket_limits.send_timeout;
    let (tx, mut rx) = mpsc::channel::<web::Bytes>(4);
    actix_web::rt::spawn(async move {
        let _place = place;
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        let send = |bytes: web::Bytes| {
            let tx = tx.clone();
            async move {
                matches!(
                    tokio::time::timeout(send_timeout, tx.send(bytes)).await,
                    Ok(Ok(()))
                )
            }
        };
        loop {
            tokio::select! {
                result = results.next() => {
                    let Some(result) = result else {
                        let _ = send(event("complete", "")).await;
                        break;
                    };
                    let data = serde_json::to_string(&result).unwrap_or_else(|_| {
                        json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }] }).to_string()
                    });
                    if !send(event("next", &data)).await {
                        tracing::info!("event stream dropped: the client did not take an event in time");
                        break;
                    }
                }
                _ = keep_alive.tick() => {
                    if !send(web::Bytes::from_static(b":\n\n")).await {
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    let _ = send(event("complete", "")).await;
                    break;
                }
                () = tx.closed() => break,
            }
        }
    });
    let body = async_stream::stream! {
        while let Some(bytes) = rx.recv().await {
            yield Ok::<_, std::convert::Infallible>(bytes);
        }
    };
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(
            json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
                .to_string(),
        )
}
