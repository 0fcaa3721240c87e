//! GraphQL over WebSocket on `/graphql`: both the `graphql-transport-ws` protocol and the legacy
//! `graphql-ws` one, with the discipline a public server needs.
//!
//! async-graphql's protocol machine (`async_graphql::http::WebSocket`) speaks the protocols; this
//! module owns the socket around it (actix-ws) and adds:
//! - a cap on the size of one message, fragments included (`1009` past it);
//! - `4408` when `connection_init` does not come within the init timeout;
//! - `4403` when `connection_init` carries a token the store does not know (or revoked);
//!   `4429` for a second `connection_init` comes from the protocol machine itself;
//! - a cap on open connections (`503` with `Retry-After` at the upgrade, code
//!   `TOO_MANY_CONNECTIONS`) and on subscriptions per connection (`TOO_MANY_SUBSCRIPTIONS`);
//! - `1001` for every open socket when the server shuts down;
//! - pings, and the connection closed when the peer stops answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use async_graphql::futures_util::StreamExt;
use async_graphql::http::{WebSocket, WebSocketProtocols as Protocols, WsMessage};
use async_graphql::{Data, Error};
use plangraph_api::{Api, Credentials, SubscriptionQuota};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::app::AppState;

/// Socket settings.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Open WebSocket connections at most.
    pub max_connections: usize,
    /// How long a client has to send `connection_init`.
    pub init_timeout: Duration,
    /// Largest message, however fragmented.
    pub max_message_bytes: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            init_timeout: Duration::from_secs(10),
            max_message_bytes: 9 * 1024 * 1024,
        }
    }
}

/// The server's sockets: how many are open, and the signal that closes them all.
#[derive(Debug)]
pub struct Sockets {
    open: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

impl Default for Sockets {
    fn default() -> Self {
        Self {
            open: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Sockets {
    /// How many sockets are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes every open socket with 1001 (going away); new ones are refused from then on.
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// One open socket's place in the count.
struct Place(Arc<Sockets>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The reason a `connection_init` was refused for a token (mapped to 4403 on the wire).
const FORBIDDEN: &str = "Forbidden: unknown or revoked token";

/// How often the server pings, and how long a silent peer is kept.
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENT_FOR: Duration = Duration::from_secs(90);

fn close(code: u16, reason: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(reason.to_owned()),
    })
}

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
    if *sockets.shutdown.borrow() {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the server is shutting down",
        ));
    }
    let taken = sockets
        .open
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < state.socket_limits.max_connections).then_some(n + 1)
        });
    if taken.is_err() {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many open WebSocket connections; try again shortly",
        ));
    }
    let place = Place(sockets.clone());
    let (mut response, session, messages) = actix_ws::handle(&http, payload)?;
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        header::HeaderValue::from_static(protocol.sec_websocket_protocol()),
    );
    let messages = messages
        .aggregate_continuations()
        .max_continuation_size(state.socket_limits.max_message_bytes);
    actix_web::rt::spawn(drive(
        state.api.clone(),
        protocol,
        session,
        messages,
        state.socket_limits,
        sockets.shutdown.subscribe(),
        place,
    ));
    Ok(response)
}

/// Gives a client message to the protocol machine, or keeps it in `pending` when the machine's
/// queue is full; false when the machine is gone.
fn hand_over(
    to_machine: &mpsc::Sender<Vec<u8>>,
    pending: &mut Option<Vec<u8>>,
    message: Vec<u8>,
) -> bool {
    match to_machine.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(message)) => {
            *pending = Some(message);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Runs one socket until either side closes it.
async fn drive(
    api: Api,
    protocol: Protocols,
    mut session: actix_ws::Session,
    mut messages: actix_ws::AggregatedMessageStream,
    limits: SocketLimits,
    mut shutdown: watch::Receiver<bool>,
    _place: Place,
) {
    let (to_machine, from_socket) = mpsc::channel::<Vec<u8>>(16);
    let input = async_graphql::futures_util::stream::unfold(from_socket, |mut rx| async move {
        rx.recv().await.map(|message| (message, rx))
    });
    let store = api.store().clone();
    let initialised = Arc::new(AtomicBool::new(false));
    let init_flag = initialised.clone();
    let machine = WebSocket::new(api, input, protocol).on_connection_init(
        move |params: serde_json::Value| async move {
            init_flag.store(true, Ordering::SeqCst);
            let credentials = Credentials::from_connection_params(&params);
            // A token is optional (reads are open), but one presented must be valid.
            match &credentials {
                Credentials::None => {}
                Credentials::Bearer(secret) => {
                    if !matches!(store.actor_for_secret(secret).await, Ok(Some(_))) {
                        return Err(Error::new(FORBIDDEN));
                    }
                }
                Credentials::Malformed => return Err(Error::new(FORBIDDEN)),
            }
            let mut data = Data::default();
            data.insert(credentials);
            data.insert(SubscriptionQuota::per_socket());
            Ok(data)
        },
    );
    let mut machine = Box::pin(machine);
    let started = Instant::now();
    let mut heard = Instant::now();
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.reset();
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_deadline);
    let mut pending: Option<Vec<u8>> = None;
    let reason = loop {
        tokio::select! {
            // The machine reads its input only when this loop polls it, so a full input queue
            // is never waited on here (that wait would never end): the message waits in
            // `pending`, and the socket is not read, until the machine has taken some.
            permit = to_machine.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(message)) => permit.send(message),
                (Ok(_), None) => {}
                (Err(_), _) => break None,
            },
            incoming = messages.recv(), if pending.is_none() => {
                heard = Instant::now();
                match incoming {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        if !hand_over(&to_machine, &mut pending, text.as_bytes().to_vec()) {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(bytes))) => {
                        if !hand_over(&to_machine, &mut pending, bytes.to_vec()) {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                    // A frame over the frame limit, or a message over the continuation cap.
                    Some(Err(actix_ws::ProtocolError::Overflow)) => {
                        break close(1009, "message too big");
                    }
                    Some(Err(actix_ws::ProtocolError::Io(err)))
                        if err.to_string().contains("maximum continuation size") =>
                    {
                        break close(1009, "message too big");
                    }
                    Some(Err(_)) => break close(1002, "protocol error"),
                }
            }
            outgoing = machine.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, message)) => {
                    let code = if message == FORBIDDEN { 4403 } else { code };
                    break close(code, &message);
                }
                None => break None,
            },
            () = &mut init_deadline, if !initialised.load(Ordering::SeqCst) => {
                break close(4408, "Connection initialisation timeout");
            }
            _ = pings.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    break close(1001, "no answer to pings");
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break close(1001, "the server is shutting down");
                }
            }
        }
    };
    tracing::debug!(
        open_for_ms = started.elapsed().as_millis() as u64,
        code = ?reason.as_ref().map(|r| r.code),
        "websocket closed"
    );
    let _ = session.close(reason).await;
}
