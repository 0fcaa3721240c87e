//! The `graphql-sse` protocol's single connection mode: one event stream carries every
//! operation of a client, for browsers, which open at most six HTTP/1 connections per site.
//!
//! 1. `PUT /graphql` reserves a stream and answers `201` with its token, a 128-bit secret;
//! 2. `GET /graphql` with `Accept: text/event-stream` and the token (the
//!    `x-graphql-event-stream-token` header, or `?token=` for `EventSource`) opens it;
//! 3. each `POST /graphql` with the token and `extensions.operationId` runs an operation, and
//!    is answered `202`: its results come on the stream as `next` events
//!    `{"id": …, "payload": …}`, then a `complete` event `{"id": …}`;
//! 4. `DELETE /graphql?operationId=…` with the token stops one.
//!
//! | status | code | when |
//! |---|---|---|
//! | 404 | `STREAM_NOT_FOUND` | the token names no reservation (never made, expired, or its stream ended) |
//! | 409 | `STREAM_ALREADY_OPEN` | a second stream for one reservation |
//! | 400 | `OPERATION_ID_MISSING` | a POST or DELETE without an operation id |
//! | 400 | `BAD_REQUEST` | an operation id over [`MAX_OPERATION_ID`] bytes |
//! | 409 | `OPERATION_EXISTS` | a POST whose operation id runs already on this stream |
//! | 409 | `TOO_MANY_OPERATIONS` | more than [`MAX_OPERATIONS`] operations on one stream |
//!
//! A reservation no stream has opened yet holds no connection place, but there are at most a
//! tenth of `--max-websockets` of them at once (503 `TOO_MANY_CONNECTIONS` past that), and each
//! is given up after [`RESERVATION_TTL`] (or at shutdown). Its stream takes a place like any
//! other. Each operation runs through the pipeline with the `Authorization` header of its own
//! `POST`; a request the pipeline refuses (parse, validation, limits, a wrong token) is still
//! `202`, its errors the operation's `next` event, so that a client sees them where it reads
//! results. Results of an operation posted before its stream opens wait for it (the send
//! deadline counts from the opening), so none is lost. When the stream ends every operation
//! stops; at shutdown each gets its `complete` first. The token is read from the header, or
//! from `?token=` on the `GET` that opens the stream (for `EventSource`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::futures_util::StreamExt;
use async_graphql::{Data, Request};
use plangraph_api::{Listening, SubscriptionQuota};
use tokio::sync::{mpsc, watch};

use super::{Framing, event, open, pump, refuse, to_json};
use crate::state::AppState;

/// The header that carries a reservation's token.
pub const TOKEN_HEADER: &str = "x-graphql-event-stream-token";
/// The query parameter that carries it where no header can be set (`EventSource`).
pub const TOKEN_QUERY: &str = "token";
/// How long a reservation waits for its stream (clients open it right after the `PUT`).
pub const RESERVATION_TTL: Duration = Duration::from_secs(10);
/// Operations one stream runs at once (as many as a WebSocket's subscriptions).
pub const MAX_OPERATIONS: usize = plangraph_api::MAX_SUBSCRIPTIONS_PER_SOCKET;
/// Events of a stream waiting to be written (before it opens, or while the client reads).
pub const QUEUE: usize = 16;
/// The longest operation id (clients send UUIDs); a longer one is `BAD_REQUEST`, so that a
/// stream's operations cannot hold megabytes of ids.
pub const MAX_OPERATION_ID: usize = 128;

/// The reservations of this process, by token.
#[derive(Debug, Default)]
pub struct Reservations {
    by_token: Mutex<HashMap<String, Arc<Reservation>>>,
    serial: AtomicU64,
    /// Reservations whose stream has not opened yet.
    waiting: AtomicUsize,
}

#[derive(Debug)]
pub struct Reservation {
    events: mpsc::Sender<web::Bytes>,
    /// Taken by the stream that opens the reservation: there is only ever one.
    receiver: Mutex<Option<mpsc::Receiver<web::Bytes>>>,
    /// Set when the stream opens: operations wait for it before their send deadline counts.
    opened: watch::Sender<bool>,
    /// Running operations by id, with the serial of the run (an id may be reused after its
    /// operation ends) and the handle that stops it.
    operations: Mutex<HashMap<String, (u64, tokio::task::AbortHandle)>>,
    /// Session data of every operation: the subscription quota of one connection.
    session: Arc<Data>,
}

impl Reservation {
    /// Stops every operation; with `complete`, the `complete` event of each, to be written.
    fn stop_all(&self) -> Vec<web::Bytes> {
        let operations = std::mem::take(&mut *lock(&self.operations));
        operations
            .into_iter()
            .map(|(id, (_, handle))| {
                handle.abort();
                complete(&id)
            })
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn complete(id: &str) -> web::Bytes {
    event("complete", &serde_json::json!({ "id": id }).to_string())
}

impl Reservations {
    fn get(&self, token: &str) -> Option<Arc<Reservation>> {
        lock(&self.by_token).get(token).cloned()
    }

    /// Removes `reservation` (when `token` still names it) and stops its operations.
    fn end(&self, token: &str, reservation: &Arc<Reservation>) {
        let mut by_token = lock(&self.by_token);
        if by_token
            .get(token)
            .is_some_and(|r| Arc::ptr_eq(r, reservation))
        {
            by_token.remove(token);
            if lock(&reservation.receiver).take().is_some() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
        }
        drop(by_token);
        reservation.stop_all();
    }
}

/// The reservation token a request presents: the header (not empty), or, on the `GET` that
/// opens a stream (`query: true`), `?token=`.
pub fn token_of(http: &HttpRequest, query: bool) -> Option<String> {
    if let Some(token) = http
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
    {
        return Some(token.to_owned());
    }
    if !query {
        return None;
    }
    web::Query::<Vec<(String, String)>>::from_query(http.query_string())
        .ok()?
        .into_inner()
        .into_iter()
        .find_map(|(key, value)| (key == TOKEN_QUERY && !value.is_empty()).then_some(value))
}

fn new_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `PUT /graphql`: reserves a stream.
pub async fn reserve(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    if let Some(refused) = crate::graphql_http::rate_limited(&state, &http) {
        return refused;
    }
    if state.sockets.shutting_down() {
        return shutting_down();
    }
    let most = state.socket_limits.max_connections.div_ceil(10).max(1);
    let reservations = &state.reservations;
    if reservations
        .waiting
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < most).then_some(n + 1)
        })
        .is_err()
    {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many reserved streams wait to be opened; try again shortly",
        );
    }
    let Some(token) = new_token() else {
        reservations.waiting.fetch_sub(1, Ordering::SeqCst);
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "no randomness for a token",
        );
    };
    let (events, receiver) = mpsc::channel(QUEUE);
    let mut session = Data::default();
    session.insert(SubscriptionQuota::per_socket());
    let reservation = Arc::new(Reservation {
        events,
        receiver: Mutex::new(Some(receiver)),
        opened: watch::channel(false).0,
        operations: Mutex::new(HashMap::new()),
        session: Arc::new(session),
    });
    lock(&reservations.by_token).insert(token.clone(), reservation.clone());
    // A reservation no stream takes in time, or still waiting at shutdown, is given up.
    let reservations = reservations.clone();
    let waiting = Arc::downgrade(&reservation);
    let expiring = token.clone();
    let mut shutdown = state.sockets.shutdown_signal();
    actix_web::rt::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(RESERVATION_TTL) => {}
            _ = shutdown.wait_for(|down| *down) => {}
        }
        if let Some(reservation) = waiting.upgrade()
            && lock(&reservation.receiver).is_some()
        {
            reservations.end(&expiring, &reservation);
        }
    });
    HttpResponse::Created()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(token)
}

fn shutting_down() -> HttpResponse {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "SHUTTING_DOWN",
        "the server is shutting down",
    )
}

fn not_found() -> HttpResponse {
    refuse(
        StatusCode::NOT_FOUND,
        "STREAM_NOT_FOUND",
        "no stream is reserved under this token (it expired, or its stream ended): PUT a new one",
    )
}

/// Ends a reservation when its stream ends, however it ends.
struct Ending {
    state: AppState,
    token: String,
    reservation: Arc<Reservation>,
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.state.reservations.end(&self.token, &self.reservation);
    }
}

/// `GET /graphql` with a token and `Accept: text/event-stream`: opens the reserved stream.
pub fn connect(state: &AppState, token: &str) -> HttpResponse {
    let Some(reservation) = state.reservations.get(token) else {
        return not_found();
    };
    let place = match open(state) {
        Ok(place) => place,
        Err((status, code, message)) => return refuse(status, code, message),
    };
    let Some(mut receiver) = lock(&reservation.receiver).take() else {
        return refuse(
            StatusCode::CONFLICT,
            "STREAM_ALREADY_OPEN",
            "this reservation's stream is open already; there is only one per reservation",
        );
    };
    state.reservations.waiting.fetch_sub(1, Ordering::SeqCst);
    reservation.opened.send_replace(true);
    let source = async_stream::stream! {
        // An empty comment first: some clients wait for a byte before they call a stream open.
        yield web::Bytes::from_static(b":\n\n");
        while let Some(bytes) = receiver.recv().await {
            yield bytes;
        }
    };
    let closing = reservation.clone();
    let farewell = move || {
        let completes = closing.stop_all();
        (!completes.is_empty()).then(|| completes.concat().into())
    };
    let ending = Ending {
        state: state.clone(),
        token: token.to_owned(),
        reservation,
    };
    pump(state, place, source, Framing::Sse, farewell, ending)
}

/// `POST /graphql` with a token: runs `request` on the reserved stream as `operation_id`.
/// The `202` goes out once a subscription follows the store's feed (see
/// [`super::until_listening`]).
pub async fn execute(
    state: &AppState,
    token: &str,
    operation_id: Option<String>,
    request: Request,
) -> HttpResponse {
    match start(state, token, operation_id, request) {
        Ok(heard) => {
            super::until_listening(heard).await;
            HttpResponse::Accepted().finish()
        }
        Err(refused) => *refused,
    }
}

/// Starts the operation on the reserved stream; what says when it follows the feed, or why
/// it was refused.
fn start(
    state: &AppState,
    token: &str,
    operation_id: Option<String>,
    request: Request,
) -> Result<tokio::sync::oneshot::Receiver<()>, Box<HttpResponse>> {
    if state.sockets.shutting_down() {
        return Err(Box::new(shutting_down()));
    }
    let Some(reservation) = state.reservations.get(token) else {
        return Err(Box::new(not_found()));
    };
    let Some(id) = operation_id.filter(|id| !id.is_empty()) else {
        return Err(Box::new(operation_id_missing()));
    };
    if id.len() > MAX_OPERATION_ID {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!("an operation id is at most {MAX_OPERATION_ID} bytes"),
        )));
    }
    let mut operations = lock(&reservation.operations);
    if operations.contains_key(&id) {
        return Err(Box::new(refuse(
            StatusCode::CONFLICT,
            "OPERATION_EXISTS",
            "an operation with this id runs already on this stream",
        )));
    }
    if operations.len() >= MAX_OPERATIONS {
        return Err(Box::new(refuse(
            StatusCode::CONFLICT,
            "TOO_MANY_OPERATIONS",
            &format!("a stream runs at most {MAX_OPERATIONS} operations at once"),
        )));
    }
    let serial = state.reservations.serial.fetch_add(1, Ordering::Relaxed);
    let (listening, heard) = Listening::new();
    let mut results = state
        .api
        .execute_stream(request.data(listening), Some(reservation.session.clone()));
    let events = reservation.events.clone();
    let mut opened = reservation.opened.subscribe();
    let send_timeout = state.socket_limits.send_timeout;
    let owner: Weak<Reservation> = Arc::downgrade(&reservation);
    let task_id = id.clone();
    let task = actix_web::rt::spawn(async move {
        let quoted = serde_json::Value::String(task_id.clone()).to_string();
        let send = |bytes: web::Bytes| {
            let events = events.clone();
            async move {
                matches!(
                    tokio::time::timeout(send_timeout, events.send(bytes)).await,
                    Ok(Ok(()))
                )
            }
        };
        let mut delivered = true;
        while let Some(response) = results.next().await {
            // Until the stream opens the result waits (the reservation ends unopened after
            // its TTL, and this task with it); from then on the send deadline counts.
            if opened.wait_for(|open| *open).await.is_err() {
                return;
            }
            let data = format!("{{\"id\":{quoted},\"payload\":{}}}", to_json(&response));
            if !send(event("next", &data)).await {
                delivered = false;
                break;
            }
        }
        if delivered {
            let _ = send(complete(&task_id)).await;
        }
        if let Some(reservation) = owner.upgrade() {
            let mut operations = lock(&reservation.operations);
            if operations.get(&task_id).is_some_and(|(s, _)| *s == serial) {
                operations.remove(&task_id);
            }
        }
    });
    // The task runs on this worker and cannot end before this synchronous section does, so
    // its handle is in the map before the task would take it out.
    operations.insert(id, (serial, task.abort_handle()));
    Ok(heard)
}

fn operation_id_missing() -> HttpResponse {
    refuse(
        StatusCode::BAD_REQUEST,
        "OPERATION_ID_MISSING",
        "an operation on a reserved stream needs an id (`extensions.operationId`, or `?operationId=` to stop one)",
    )
}

/// `DELETE /graphql?operationId=…` with a token: stops an operation.
pub async fn stop(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    if let Some(refused) = crate::graphql_http::rate_limited(&state, &http) {
        return refused;
    }
    let Some(reservation) = token_of(&http, false).and_then(|t| state.reservations.get(&t)) else {
        return not_found();
    };
    let id = web::Query::<Vec<(String, String)>>::from_query(http.query_string())
        .ok()
        .and_then(|pairs| {
            pairs
                .into_inner()
                .into_iter()
                .find_map(|(key, value)| (key == "operationId").then_some(value))
        })
        .filter(|id| !id.is_empty());
    let Some(id) = id else {
        return operation_id_missing();
    };
    if let Some((_, handle)) = lock(&reservation.operations).remove(&id) {
        handle.abort();
    }
    HttpResponse::Ok().finish()
}
