//! One socket's loop: client messages to the protocol machine (through the rate limits), the
//! machine's messages to the client (one at a time, each within the send deadline), pings, the
//! silence check, the init deadline and the shutdown signal, none of which waits on another.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::future::BoxFuture;
use async_graphql::http::{WebSocket, WebSocketProtocols as Protocols, WsMessage};
use async_graphql::{Data, Error};
use plangraph_api::{Api, Credentials, SubscriptionQuota};
use tokio::sync::{mpsc, watch};

use super::operations::{self, Inspected};
use crate::rate_limit::RateLimits;
use crate::sockets::{Place, SocketLimits};

/// The reason a `connection_init` was refused for a token (mapped to 4403 on the wire).
const FORBIDDEN: &str = "Forbidden: unknown or revoked token";

/// Longest wait for the close frame to be taken (a client that reads takes it at once).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Everything one socket's task owns.
pub(super) struct Socket {
    pub api: Api,
    pub protocol: Protocols,
    pub session: actix_ws::Session,
    pub messages: actix_ws::AggregatedMessageStream,
    pub limits: SocketLimits,
    pub shutdown: watch::Receiver<bool>,
    pub rate: Arc<RateLimits>,
    /// The client's address, for the per-address limit.
    pub address: Option<IpAddr>,
    pub place: Place,
}

/// How the loop ended.
enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The client closed, left, or its session is gone: nothing more to send.
    Client,
    /// The client stopped reading: a close frame would wait behind what it did not read, so
    /// none is sent; the connection is dropped.
    Stalled,
}

impl End {
    fn close(code: u16, reason: &str) -> Self {
        Self::Close(code, reason.to_owned())
    }

    /// The `code` label of `plangraph_websocket_closes_total`.
    fn label(&self) -> String {
        match self {
            Self::Close(code, _) => code.to_string(),
            Self::Client => "client".to_owned(),
            Self::Stalled => "1008".to_owned(),
        }
    }
}

/// A frame the server sends.
enum Frame {
    Text(String),
    Ping,
    Pong(Bytes),
}

/// One frame being handed to actix-ws, within its deadline.
type Sending = Pin<Box<tokio::time::Timeout<BoxFuture<'static, Result<(), actix_ws::Closed>>>>>;

/// The one send in progress, if any, with its deadline. A send waits when the client does not
/// read (actix-ws's queue is full); polled beside everything else, it never holds up the loop.
struct Outgoing {
    session: actix_ws::Session,
    timeout: Duration,
    sending: Option<Sending>,
}

/// The outcome of a send.
enum Sent {
    Done,
    Closed,
    TimedOut,
}

impl Outgoing {
    fn idle(&self) -> bool {
        self.sending.is_none()
    }

    fn start(&mut self, frame: Frame) {
        let mut session = self.session.clone();
        let send: BoxFuture<'static, Result<(), actix_ws::Closed>> = Box::pin(async move {
            match frame {
                Frame::Text(text) => session.text(text).await,
                Frame::Ping => session.ping(b"").await,
                Frame::Pong(bytes) => session.pong(&bytes).await,
            }
        });
        self.sending = Some(Box::pin(tokio::time::timeout(self.timeout, send)));
    }

    /// Waits for the send in progress (forever when there is none).
    async fn finished(&mut self) -> Sent {
        let Some(sending) = self.sending.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = match sending.await {
            Ok(Ok(())) => Sent::Done,
            Ok(Err(_)) => Sent::Closed,
            Err(_) => Sent::TimedOut,
        };
        self.sending = None;
        outcome
    }
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
pub(super) async fn drive(socket: Socket) {
    let Socket {
        api,
        protocol,
        session,
        mut messages,
        limits,
        mut shutdown,
        rate,
        address,
        place,
    } = socket;
    let query_limits = *api.query_limits();
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
                Credentials::Bearer(_) => {
                    let secret = credentials.secret().unwrap_or_default();
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
    let mut outgoing = Outgoing {
        session: session.clone(),
        timeout: limits.send_timeout,
        sending: None,
    };
    // The socket's own answers (rate-limit refusals), sent before the machine is asked for more.
    let mut ours: VecDeque<String> = VecDeque::new();
    // The token of `connection_init`, for the per-token limit (the machine checks its validity).
    let mut token: Option<Credentials> = None;
    let mut refused_in_a_row = 0u32;
    let started = Instant::now();
    let mut heard = Instant::now();
    let mut pings = tokio::time::interval(limits.ping_every);
    pings.reset();
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_deadline);
    let mut pending: Option<Vec<u8>> = None;
    let end = loop {
        if outgoing.idle()
            && let Some(text) = ours.pop_front()
        {
            outgoing.start(Frame::Text(text));
        }
        tokio::select! {
            sent = outgoing.finished() => match sent {
                Sent::Done => {}
                Sent::Closed => break End::Client,
                Sent::TimedOut => break End::Stalled,
            },
            // The machine reads its input only when this loop polls it, so a full input queue
            // is never waited on here (that wait would never end): the message waits in
            // `pending`, and the socket is not read, until the machine has taken some.
            permit = to_machine.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(message)) => permit.send(message),
                (Ok(_), None) => {}
                (Err(_), _) => break End::Client,
            },
            incoming = messages.recv(), if pending.is_none() => {
                heard = Instant::now();
                let message = match incoming {
                    Some(Ok(AggregatedMessage::Text(text))) => text.into_bytes().to_vec(),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        // A client that pings while it does not read gets no pong.
                        if outgoing.idle() {
                            outgoing.start(Frame::Pong(bytes));
                        }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Close(_))) | None => break End::Client,
                    // A frame over the frame limit, or a message over the continuation cap.
                    Some(Err(actix_ws::ProtocolError::Overflow)) => {
                        break End::close(1009, "message too big");
                    }
                    Some(Err(actix_ws::ProtocolError::Io(err)))
                        if err.to_string().contains("maximum continuation size") =>
                    {
                        break End::close(1009, "message too big");
                    }
                    Some(Err(_)) => break End::close(1002, "protocol error"),
                };
                let (operation, too_wide) = match operations::inspect(&message, &query_limits) {
                    Inspected::Init(credentials) => {
                        token.get_or_insert(credentials);
                        (None, None)
                    }
                    Inspected::Operation(id) => (Some(id), None),
                    // A wide message that starts no operation is not a message of either
                    // protocol anyone sends: closed as the protocols close invalid ones.
                    Inspected::TooWide { operation: None, .. } => {
                        break End::close(4400, "the message holds too many values");
                    }
                    Inspected::TooWide { operation: Some(id), error } => (Some(id), Some(error)),
                    Inspected::Other => (None, None),
                };
                if let Some(id) = operation {
                    let secret = token.as_ref().and_then(Credentials::secret);
                    if let Err(refusal) = rate.check(address, secret) {
                        refused_in_a_row += 1;
                        if refused_in_a_row > limits.max_refusals {
                            break End::close(4429, "Too many requests");
                        }
                        ours.push_back(operations::refusal(protocol, &id, &refusal));
                        continue;
                    }
                    refused_in_a_row = 0;
                    if let Some(error) = too_wide {
                        ours.push_back(operations::limit_refusal(protocol, &id, &error));
                        continue;
                    }
                }
                if !hand_over(&to_machine, &mut pending, message) {
                    break End::Client;
                }
            }
            // Asked for its next message only when the last one has been taken: a client that
            // does not read holds the machine (and so its subscriptions) back, nothing else.
            outgoing_message = machine.next(), if outgoing.idle() && ours.is_empty() => {
                match outgoing_message {
                    Some(WsMessage::Text(text)) => outgoing.start(Frame::Text(text)),
                    Some(WsMessage::Close(code, message)) => {
                        let code = if message == FORBIDDEN { 4403 } else { code };
                        break End::close(code, &message);
                    }
                    None => break End::Client,
                }
            }
            () = &mut init_deadline, if !initialised.load(Ordering::SeqCst) => {
                break End::close(4408, "Connection initialisation timeout");
            }
            _ = pings.tick() => {
                if heard.elapsed() > limits.silent_for {
                    break End::close(1001, "no answer to pings");
                }
                // A send still waiting means the client is not reading: the deadline decides.
                if outgoing.idle() {
                    outgoing.start(Frame::Ping);
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break End::close(1001, "the server is shutting down");
                }
            }
        }
    };
    metrics::counter!("plangraph_websocket_closes_total", "code" => end.label()).increment(1);
    tracing::debug!(
        open_for_ms = started.elapsed().as_millis() as u64,
        code = end.label(),
        "websocket closed"
    );
    // The place is given back now, whatever actix still does with the connection.
    drop(place);
    drop(outgoing);
    drop(machine);
    if let End::Close(code, reason) = end {
        let reason = Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(reason),
        });
        let grace = limits.send_timeout.min(CLOSE_GRACE);
        let _ = tokio::time::timeout(grace, session.close(reason)).await;
    }
}
