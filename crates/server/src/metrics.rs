//! `GET /metrics`: every crate records through the `metrics` facade (`metrics::counter!` and
//! the like); the server installs one Prometheus recorder for the process and renders it in the
//! Prometheus text format. The recorder is global, so it is installed once per process however
//! many servers a process starts (tests start many); their figures add up.
//!
//! Who may read it: loopback clients by default, because figures such as requests per second or
//! open sockets tell a stranger how loaded (and how attackable) a server is. `--metrics-allow
//! CIDR` widens it (a Prometheus on another host), `--metrics false` turns the endpoint off.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use ipnet::IpNet;
use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the buckets of every `*_seconds` histogram: half a millisecond to ten
/// seconds (the query timeout's default).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets between scrapes (the recorder
/// keeps raw samples until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Who may read `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    /// Whether the endpoint answers at all (404 `NOT_FOUND` when off).
    pub enabled: bool,
    /// Client networks allowed (403 `METRICS_NOT_ALLOWED` for others).
    pub allow: Vec<IpNet>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self {
            enabled: true,
            allow: loopback(),
        }
    }
}

/// `127.0.0.0/8` and `::1`: the default readers of `/metrics`.
pub fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

impl MetricsAccess {
    /// Whether a client at `address` may read the metrics.
    pub fn allows(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.allow.iter().any(|net| net.contains(&address))
    }
}

/// The process's recorder, installed on first use; rendering it gives the exposition.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed: /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("plangraph-metrics".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "no metrics upkeep thread: histograms fold at scrapes only");
        }
        handle
    })
}

/// The exposition, in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One line of help for every metric any crate records, so each has its `# HELP` and `# TYPE`
/// (a metric is rendered once it has been recorded; the README's table lists them all).
fn describe() {
    // Requests (recorded by plangraph-api's pipeline, for HTTP and WebSocket alike).
    describe_counter!(
        "plangraph_requests_total",
        "GraphQL operations answered, by transport, operation type and outcome (ok or the first error code)"
    );
    describe_histogram!(
        "plangraph_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a GraphQL operation's arrival to its answer, by transport and operation type"
    );
    describe_counter!(
        "plangraph_cache_lookups_total",
        "Cache look-ups, by cache and result (hit or miss)"
    );
    describe_gauge!(
        "plangraph_cache_bytes",
        metrics::Unit::Bytes,
        "Bytes held by each cache"
    );
    describe_gauge!(
        "plangraph_execution_slots_busy",
        "Execution slots in use (queries, mutations and subscription events being resolved)"
    );
    describe_gauge!(
        "plangraph_execution_slots_waiting",
        "Operations waiting for an execution slot"
    );
    describe_gauge!(
        "plangraph_subscriptions_active",
        "Subscriptions open over every socket"
    );
    // The store (plangraph-persistence).
    describe_histogram!(
        "plangraph_change_feed_lag_seconds",
        metrics::Unit::Seconds,
        "Time from a change's commit to its announcement on this process's change feed"
    );
    describe_gauge!(
        "plangraph_change_feed_revision",
        "The last store revision this process's change feed announced"
    );
    describe_counter!(
        "plangraph_change_feed_restarts_total",
        "Restarts of the change feed's listener (Postgres) or poller (SQLite) after it ended"
    );
    describe_counter!(
        "plangraph_change_feed_rewinds_total",
        "Times the store's revision went back or its history was replaced (a restored backup) and the feed followed"
    );
    describe_gauge!(
        "plangraph_replay_bytes_in_flight",
        metrics::Unit::Bytes,
        "Bytes of recorded values read for history replays and not yet handed on, across the process"
    );
    describe_gauge!(
        "plangraph_replays_waiting",
        "History replay pages waiting for their turn under the process-wide replay budget"
    );
    describe_counter!(
        "plangraph_store_errors_total",
        "Store operations that failed, by error code"
    );
    // The server's own.
    describe_gauge!(
        "plangraph_websockets_open",
        "Streaming connections open now: WebSockets, SSE and multipart streams, SSE reservations (each holds one of --max-websockets places)"
    );
    describe_counter!(
        "plangraph_websocket_closes_total",
        "WebSocket connections closed, by the close code the server sent (client: the client closed or left)"
    );
    describe_counter!(
        "plangraph_rate_limited_total",
        "Requests and WebSocket operations refused with RATE_LIMITED, by the limit that refused them"
    );
    describe_gauge!(
        "plangraph_rate_limit_keys",
        "Keys (client addresses or /64s, tokens) a rate limit holds state for"
    );
    describe_counter!(
        "plangraph_rate_limit_resets_total",
        "Times a rate limit flooded with distinct keys forgot every key at once"
    );
    describe_counter!(
        "plangraph_malformed_requests_total",
        "HTTP connections ended by a malformed request head or a broken stream (logged at most once a minute)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_reads_metrics_by_default() {
        let access = MetricsAccess::default();
        for allowed in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(access.allows(allowed.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        }
        for refused in ["10.0.0.1", "2001:db8::1"] {
            assert!(!access.allows(refused.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))));
        }
    }
}
