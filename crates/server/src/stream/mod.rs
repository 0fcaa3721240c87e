//! Streamed answers over plain HTTP, for clients and gateways that do not speak WebSocket:
//!
//! - GraphQL over Server-Sent Events (the `graphql-sse` protocol), in its *distinct
//!   connections* mode (`Accept: text/event-stream` on a POST or GET of `/graphql`: one stream
//!   per operation, `event: next` for each result, `event: complete` at the end) and its
//!   *single connection* mode ([`reservations`]: one stream carries every operation of a
//!   client, by operation id);
//! - Apollo's multipart HTTP subscriptions (`Accept: multipart/mixed;subscriptionSpec="1.0"`):
//!   each result a `{"payload": …}` part, `{}` parts as heartbeats, the closing boundary at
//!   the end. Apollo Router and Hive Router subscribe to subgraphs this way, and Apollo Client
//!   to routers.
//!
//! The request goes through the HTTP handler's checks (body bound, rate limits, CSRF) and then
//! the same pipeline as a WebSocket operation (limits, slots, `afterRevision`, the
//! `Authorization` header's token), so what a query or subscription may do does not depend on
//! its transport. A request the pipeline refuses gets its errors as a result (an SSE `next`
//! event, a multipart part), as both protocols ask.
//!
//! Every stream takes a place among the open connections (the WebSocket limit, shared) until
//! its connection closes, sends a heartbeat every `--stream-heartbeat-ms` so proxies keep it
//! open, gives up on a client that has not taken a part within the sockets' send deadline (its
//! stream is cut short, with at most one part left waiting for it), and ends cleanly (SSE
//! `complete`, the multipart closing boundary) when the server shuts down.

pub mod reservations;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use async_graphql::futures_util::stream::{self, BoxStream};
use async_graphql::futures_util::{Stream, StreamExt};
use async_graphql::{Request, Response};
use plangraph_api::Listening;
use serde_json::json;
use tokio::sync::mpsc;

use crate::sockets::Place;
use crate::state::AppState;

/// How a stream of results is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`, the `graphql-sse` protocol.
    Sse,
    /// `multipart/mixed`, Apollo's multipart subscription protocol (version 1.0).
    Multipart,
}

/// The multipart boundary, the one Apollo's protocol names.
const BOUNDARY: &str = "graphql";

impl Framing {
    fn content_type(self) -> &'static str {
        match self {
            Self::Sse => "text/event-stream; charset=utf-8",
            Self::Multipart => "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"",
        }
    }

    /// What opens the body. A multipart part is taken by a reader when the *next* boundary
    /// arrives, so the body opens with a boundary and every part is followed by one: a result
    /// is readable the moment it is written, not a heartbeat later.
    fn opening(self) -> Option<web::Bytes> {
        match self {
            Self::Sse => None,
            Self::Multipart => Some(web::Bytes::from(format!("\r\n--{BOUNDARY}"))),
        }
    }

    /// One result.
    fn result(self, response: &Response) -> web::Bytes {
        let data = to_json(response);
        match self {
            Self::Sse => event("next", &data),
            Self::Multipart => part(&format!("{{\"payload\":{data}}}")),
        }
    }

    /// Says "still here" to proxies and to the client.
    fn heartbeat(self) -> web::Bytes {
        match self {
            Self::Sse => web::Bytes::from_static(b":\n\n"),
            Self::Multipart => part("{}"),
        }
    }

    /// The clean end of the operation's stream.
    fn end(self) -> web::Bytes {
        match self {
            Self::Sse => event("complete", ""),
            // Follows the boundary that closed the last part: `--graphql--`.
            Self::Multipart => web::Bytes::from_static(b"--\r\n"),
        }
    }
}

/// A response as `/graphql` writes it in JSON: a request refused before it ran has no `data`,
/// and a response that cannot be written becomes an `INTERNAL` error.
fn to_json(response: &Response) -> String {
    crate::graphql_http::render(crate::media::Media::Json, response).1
}

fn event(name: &str, data: &str) -> web::Bytes {
    web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn part(json: &str) -> web::Bytes {
    web::Bytes::from(format!(
        "\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{json}\r\n--{BOUNDARY}"
    ))
}

/// Answers `request` as a stream of its own (SSE distinct connections mode, or multipart).
///
/// The headers go out once a subscription follows the store's feed ([`until_listening`]):
/// a client takes them as "subscribed", and a change committed before the feed had it would
/// otherwise be lost to that client.
pub async fn respond(state: &AppState, request: Request, framing: Framing) -> HttpResponse {
    let place = match open(state) {
        Ok(place) => place,
        Err((status, code, message)) => return refuse(status, code, message),
    };
    let (listening, heard) = Listening::new();
    let results = state.api.execute_stream(request.data(listening), None);
    let body = stream::iter(framing.opening())
        .chain(results.map(move |response| framing.result(&response)))
        .chain(stream::once(async move { framing.end() }));
    let farewell = move || Some(framing.end());
    let response = pump(state, place, body, framing, farewell, ());
    until_listening(heard).await;
    response
}

/// Longest an answer's headers wait for its subscription to follow the feed. What it waits
/// on is the request's admission (its token, its checks) and, for a subscription, a report's
/// look-up and a read of the store's head: milliseconds. A query or a mutation waits for its
/// admission only. The bound is for a store that does not answer (its pool times out in 3 s).
const LISTENING_AT_MOST: Duration = Duration::from_secs(5);

/// Waits until the operation that was given `heard`'s [`Listening`] follows the store's feed,
/// or is known never to (not a subscription, a refused request, a failed resolver): the pump
/// polls it meanwhile.
pub(crate) async fn until_listening(heard: tokio::sync::oneshot::Receiver<()>) {
    if tokio::time::timeout(LISTENING_AT_MOST, heard)
        .await
        .is_err()
    {
        tracing::warn!("a subscription did not follow the feed within 5 s; answering anyway");
    }
}

/// Why a stream was refused a place: the status, the code and the message.
type Refusal = (StatusCode, &'static str, &'static str);

/// A place for one more stream.
fn open(state: &AppState) -> Result<Place, Refusal> {
    if state.sockets.shutting_down() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the server is shutting down",
        ));
    }
    state
        .sockets
        .take_place(state.socket_limits.max_connections)
        .ok_or((
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many open streaming connections; try again shortly",
        ))
}

/// Writes `source` to the client, with heartbeats between its items, until it ends, the
/// client goes (or stops reading for the send deadline), or the server shuts down (then
/// `farewell` is the last thing written). `guard` is held until then.
///
/// `place` is held by the response body, so it is given back only when the connection goes:
/// a client that stopped reading keeps counting against the open connections, and what waits
/// for it is at most one part in the channel and the one actix is writing. A stream given up
/// on ends with an error rather than its clean end, so actix drops the connection once it
/// polls the body again, and the client can tell the stream was cut short.
fn pump<S, F, G>(
    state: &AppState,
    place: Place,
    source: S,
    framing: Framing,
    farewell: F,
    guard: G,
) -> HttpResponse
where
    S: Stream<Item = web::Bytes> + Send + 'static,
    F: FnOnce() -> Option<web::Bytes> + Send + 'static,
    G: Send + 'static,
{
    let mut source: BoxStream<'static, web::Bytes> = source.boxed();
    let mut shutdown = state.sockets.shutdown_signal();
    let send_timeout = state.socket_limits.send_timeout;
    let every = state.socket_limits.stream_heartbeat;
    let (tx, mut rx) = mpsc::channel::<web::Bytes>(1);
    let given_up = Arc::new(AtomicBool::new(false));
    let giving_up = given_up.clone();
    actix_web::rt::spawn(async move {
        let _guard = guard;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut farewell = Some(farewell);
        let send = |bytes: web::Bytes| {
            let tx = tx.clone();
            async move {
                matches!(
                    tokio::time::timeout(send_timeout, tx.send(bytes)).await,
                    Ok(Ok(()))
                )
            }
        };
        let give_up = || {
            giving_up.store(true, Ordering::SeqCst);
            tracing::info!("stream dropped: the client did not take a part in time");
        };
        loop {
            tokio::select! {
                bytes = source.next() => {
                    let Some(bytes) = bytes else { break };
                    if !send(bytes).await {
                        give_up();
                        break;
                    }
                }
                _ = heartbeat.tick() => {
                    if !send(framing.heartbeat()).await {
                        give_up();
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    if let Some(last) = farewell.take().and_then(|farewell| farewell()) {
                        let _ = send(last).await;
                    }
                    break;
                }
                () = tx.closed() => break,
            }
        }
    });
    let body = async_stream::stream! {
        let _place = place;
        while let Some(bytes) = rx.recv().await {
            yield Ok::<_, std::io::Error>(bytes);
        }
        if given_up.load(Ordering::SeqCst) {
            yield Err(std::io::Error::other("the client did not take a part in time"));
        }
    };
    HttpResponse::Ok()
        .content_type(framing.content_type())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut reply = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        reply.insert_header((header::RETRY_AFTER, "5"));
    }
    reply.content_type("application/json; charset=utf-8").body(
        json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }).to_string(),
    )
}

/// The default heartbeat interval: under the 30 s idle timeouts of common proxies, and what
/// Hive Router uses towards its own clients.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
