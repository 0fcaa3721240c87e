//! Logs, set up once: human-readable by default, JSON lines for log shippers.
//!
//! actix's HTTP/1 dispatcher logs every connection it ends on a malformed request head (or a
//! broken stream) at ERROR, one line each: anyone who can connect could fill the disk with
//! them. Those lines are taken out of the log here; each is counted in
//! `plangraph_malformed_requests_total`, and a reporter thread writes at most one WARN line per
//! [`MALFORMED_LOG_EVERY`], saying how many there were since its last line, with one of them as
//! a sample.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// At most one line about malformed requests this often.
pub const MALFORMED_LOG_EVERY: Duration = Duration::from_secs(60);

/// Longest sample message kept.
const SAMPLE_CHARS: usize = 200;

/// Installs the global subscriber. `RUST_LOG` filters (default `info`, with the migrator's
/// per-start chatter and the database's notices at `warn`); `format` is `text` or `json`.
/// Calling it twice is harmless (tests do).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sea_orm_migration=warn,sqlx=warn"));
    let (samples, reports) = sync_channel(1);
    let count = Arc::new(AtomicU64::new(0));
    let malformed = MalformedRequests {
        samples,
        count: count.clone(),
    };
    let registry = tracing_subscriber::registry().with(malformed).with(filter);
    let installed = if format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    if installed.is_ok() {
        let _ = std::thread::Builder::new()
            .name("plangraph-log-reporter".to_owned())
            .spawn(move || report(&reports, &count, MALFORMED_LOG_EVERY));
    }
}

/// Whether an event is one of actix's lines about a connection it ended on a malformed request
/// (or a broken stream).
fn is_malformed_request(event: &Event<'_>) -> bool {
    let metadata = event.metadata();
    *metadata.level() == Level::ERROR && metadata.target().starts_with("actix_http::h")
}

/// The layer that takes those lines out of the log and counts them.
struct MalformedRequests {
    samples: SyncSender<String>,
    count: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for MalformedRequests {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        if !is_malformed_request(event) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        // A response body the server itself ended (an export cut short when its client
        // stopped reading, logged where it was cut): not a malformed request.
        if message.0.contains("Response payload stream error") {
            return false;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("plangraph_malformed_requests_total").increment(1);
        // Full while the reporter waits out its interval: the count carries the rest.
        let _ = self.samples.try_send(message.0);
        false
    }
}

/// An event's `message`, at most [`SAMPLE_CHARS`] characters.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}").chars().take(SAMPLE_CHARS).collect();
        }
    }
}

/// Writes one line for the first sample, then at most one per `every`, each with the count
/// since the previous line (the sample that wakes it came in that time).
fn report(samples: &Receiver<String>, count: &AtomicU64, every: Duration) {
    let mut reported = 0u64;
    while let Ok(sample) = samples.recv() {
        let total = count.load(Ordering::Relaxed);
        tracing::warn!(
            count = total - reported,
            total,
            sample,
            "malformed HTTP requests refused since the last such line (one line a minute at most; \
             plangraph_malformed_requests_total counts them all)"
        );
        reported = total;
        std::thread::sleep(every);
    }
}
