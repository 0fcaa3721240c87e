//! The one integration-test binary (one link, many tests): folders mirror the API.
//!
//! Every test that touches a store runs twice, on SQLite and on a throwaway Postgres cluster
//! this binary starts from the machine's Postgres binaries (see `support::postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod api;
mod backup;
mod bounded;
mod cache;
mod concurrency;
mod contract;
mod doors;
mod exchange;
mod exchange_http;
mod federation;
mod feed_recovery;
mod figures;
mod fuzz;
mod gateway;
mod generate;
mod http;
mod importer;
mod limits;
mod live;
mod multipart;
mod observability;
mod outage;
mod pages;
mod profile;
mod rate_limits;
mod router;
mod schema;
mod sockets;
mod sse;
mod sse_single;
mod statements;
mod store_bounds;
mod subscriptions;
mod transport;
mod websocket_discipline;
mod write_safety;
mod writes;
