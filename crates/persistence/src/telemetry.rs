//! The metrics the store records, through the `metrics` facade (the server installs the
//! Prometheus recorder; without one, recording costs next to nothing and goes nowhere).
//!
//! Names, for `/metrics` and the README:
//!
//! - `plangraph_store_errors_total{code}` (counter): failures the store mapped to a code
//!   (`STORE_QUERY_FAILED`, `STORE_UNAVAILABLE`, `WRITE_LOCK_TIMEOUT`, `WRITE_TIMEOUT`, …);
//! - `plangraph_change_feed_revision` (gauge): the last revision this process announced;
//! - `plangraph_change_feed_lag_seconds` (histogram): from a change's commit time (`at`) to its
//!   announcement in this process;
//! - `plangraph_change_feed_restarts_total` (counter): listener (Postgres) or poller (SQLite)
//!   restarts after the task ended;
//! - `plangraph_change_feed_rewinds_total` (counter): the store's revision went back or its
//!   history was replaced (a backup restored), and the feed followed;
//! - `plangraph_replay_bytes_in_flight` (gauge): bytes of recorded values read for history
//!   replays and not yet handed on, across the process;
//! - `plangraph_replays_waiting` (gauge): replay pages waiting for their turn.

pub(crate) const STORE_ERRORS: &str = "plangraph_store_errors_total";
pub(crate) const FEED_REVISION: &str = "plangraph_change_feed_revision";
pub(crate) const FEED_LAG: &str = "plangraph_change_feed_lag_seconds";
pub(crate) const FEED_RESTARTS: &str = "plangraph_change_feed_restarts_total";
pub(crate) const FEED_REWINDS: &str = "plangraph_change_feed_rewinds_total";
pub(crate) const REPLAY_BYTES: &str = "plangraph_replay_bytes_in_flight";
pub(crate) const REPLAYS_WAITING: &str = "plangraph_replays_waiting";

/// One failure of the store, by its code.
pub(crate) fn store_error(code: &'static str) {
    metrics::counter!(STORE_ERRORS, "code" => code).increment(1);
}
