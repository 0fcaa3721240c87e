//! The server's open WebSockets as a whole: their settings, how many are open (each holds a
//! [`Place`] until its task ends), and the signal that closes them all at shutdown. The socket
//! protocol itself is in [`crate::websocket`]; this module knows nothing of it, so the shared
//! state can hold it without depending on the transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Socket settings. Every interval is a setting (not a constant) so tests can use short ones.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Open WebSocket connections at most.
    pub max_connections: usize,
    /// How long a client has to send `connection_init` (closed with 4408 after).
    pub init_timeout: Duration,
    /// Largest message, however fragmented (closed with 1009 past it).
    pub max_message_bytes: usize,
    /// How often the server pings.
    pub ping_every: Duration,
    /// How long a peer that sends nothing (not even a pong) is kept (closed with 1001 after).
    pub silent_for: Duration,
    /// How long one message may wait to be taken by a client that does not read (closed with
    /// 1008 after, without waiting any further: the client would never read the close frame).
    pub send_timeout: Duration,
    /// Operations refused by the rate limits in a row after which the socket is closed with
    /// 4429.
    pub max_refusals: u32,
    /// How often an HTTP stream (SSE, multipart) with nothing to say sends a heartbeat.
    pub stream_heartbeat: Duration,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            init_timeout: Duration::from_secs(10),
            max_message_bytes: 9 * 1024 * 1024,
            ping_every: Duration::from_secs(30),
            silent_for: Duration::from_secs(90),
            send_timeout: Duration::from_secs(10),
            max_refusals: 10,
            stream_heartbeat: crate::stream::DEFAULT_HEARTBEAT,
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
        // `send_replace`, not `send`: `send` stores nothing when no socket is listening, and
        // the flag must hold for the connections that come after.
        self.shutdown.send_replace(true);
    }

    /// Whether [`Sockets::shut_down`] was called.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The shutdown signal, for one socket's task.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Takes a place for one more socket, unless `max` are open already.
    pub fn take_place(self: &Arc<Self>, max: usize) -> Option<Place> {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        metrics::gauge!("plangraph_websockets_open").increment(1.0);
        Some(Place(self.clone()))
    }
}

/// One open socket's place in the count, given back when its task ends (however it ends).
#[derive(Debug)]
pub struct Place(Arc<Sockets>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("plangraph_websockets_open").decrement(1.0);
    }
}
