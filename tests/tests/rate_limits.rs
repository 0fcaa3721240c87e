//! Rate limits (`governor` underneath): an IPv6 client's /64 is one client; the forwarded
//! address counts only from a trusted proxy (spoofed headers from anyone else are ignored); a
//! flood of distinct bearer strings leaves the cost of a check flat and the key set bounded;
//! rotating source addresses pass the per-address limit (what it cannot do) and meet the global
//! one.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::App;
use actix_web::http::header;
use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
use plangraph_server::client::{TrustedProxies, parse_network};
use plangraph_server::rate_limit::{Limit, MAX_KEYS, Rate, RateLimits};
use serde_json::{Value, json};

use crate::support::Backend;
use crate::support::writes::error_code;

/// Two requests at once, then one every two seconds.
const TWO_AT_ONCE: Rate = Rate {
    per_second: 0.5,
    burst: 2.0,
};

fn request(peer: &str, forwarded_for: Option<&str>) -> TestRequest {
    let request = TestRequest::post()
        .uri("/graphql")
        .peer_addr(peer.parse().unwrap())
        .set_json(json!({ "query": "{ __typename }" }));
    match forwarded_for {
        Some(forwarded) => request.insert_header(("x-forwarded-for", forwarded)),
        None => request,
    }
}

/// The server's state with `rate` per address, no token limit, and these trusted proxies.
async fn state_with(
    rate: Rate,
    proxies: TrustedProxies,
) -> (plangraph_server::AppState, crate::support::TestStore) {
    let test_store = crate::support::empty_store(Backend::Sqlite).await;
    let mut state = plangraph_server::AppState::new(test_store.store.clone());
    state.rate = Arc::new(RateLimits::new(rate, Rate::UNLIMITED));
    state.proxies = Arc::new(proxies);
    (state, test_store)
}

#[actix_web::test]
async fn ipv6_addresses_of_one_64_share_a_bucket() {
    let (state, _store) = state_with(TWO_AT_ONCE, TrustedProxies::default()).await;
    let app = init_service(App::new().configure(plangraph_server::configure(state))).await;
    let statuses = async |peers: &[&str]| {
        let mut statuses = Vec::new();
        for peer in peers {
            let response = call_service(&app, request(peer, None).to_request()).await;
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    // Three addresses of 2001:db8:1:2::/64: one client, refused at the third request.
    assert_eq!(
        statuses(&[
            "[2001:db8:1:2::1]:4000",
            "[2001:db8:1:2:ffff:ffff:ffff:fffe]:4000",
            "[2001:db8:1:2:abcd::9]:4000"
        ])
        .await,
        [200, 200, 429]
    );
    let limited = call_service(&app, request("[2001:db8:1:2::77]:1", None).to_request()).await;
    let body: Value = read_body_json(limited).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    // The next /64 is another client.
    assert_eq!(statuses(&["[2001:db8:1:3::1]:4000"]).await, [200]);
    // An IPv4-mapped IPv6 address is its IPv4 address.
    assert_eq!(
        statuses(&["10.1.1.1:80", "[::ffff:10.1.1.1]:80", "10.1.1.1:81"]).await,
        [200, 200, 429]
    );
}

#[actix_web::test]
async fn the_forwarded_address_counts_only_from_a_trusted_proxy() {
    let proxies = TrustedProxies::new(vec![parse_network("10.0.0.0/8").unwrap()]);
    let (state, _store) = state_with(TWO_AT_ONCE, proxies).await;
    let app = init_service(App::new().configure(plangraph_server::configure(state))).await;
    let status = async |peer: &str, forwarded: Option<&str>| {
        call_service(&app, request(peer, forwarded).to_request())
            .await
            .status()
            .as_u16()
    };
    // Behind the trusted balancer 10.0.0.5, each forwarded client has its own bucket...
    for n in 0..6 {
        let client = format!("203.0.113.{n}");
        assert_eq!(
            status("10.0.0.5:9000", Some(&client)).await,
            200,
            "client {n}"
        );
    }
    // ...and one forwarded client is limited, whichever trusted hop it comes through.
    assert_eq!(status("10.0.0.5:9000", Some("198.51.100.7")).await, 200);
    assert_eq!(
        status("10.0.0.6:9000", Some("198.51.100.7, 10.0.0.9")).await,
        200
    );
    assert_eq!(status("10.0.0.5:9000", Some("198.51.100.7")).await, 429);
    // From a peer that is not a trusted proxy the header is ignored: rotating spoofed
    // addresses do not give a client fresh buckets.
    let mut spoofed = Vec::new();
    for n in 0..4 {
        let fake = format!("192.0.2.{n}");
        spoofed.push(status("198.51.100.200:5000", Some(&fake)).await);
    }
    assert_eq!(spoofed, [200, 200, 429, 429]);
}

/// A check's mean cost over `keys` distinct bearer strings, from a fresh limiter.
fn mean_check(limits: &RateLimits, keys: usize, prefix: &str) -> Duration {
    let started = Instant::now();
    for n in 0..keys {
        let token = format!("{prefix}-{n}-pgt_flood_string_of_some_length");
        assert!(limits.check(None, Some(&token)).is_ok());
    }
    started.elapsed() / keys as u32
}

#[test]
fn a_flood_of_distinct_bearer_strings_leaves_the_limiters_cost_flat() {
    let small = RateLimits::new(Rate::UNLIMITED, Rate::per_second(100.0));
    // Warm up (allocator, code paths), then measure at 1,000 keys.
    mean_check(&small, 1_000, "warm");
    let at_1k = mean_check(
        &RateLimits::new(Rate::UNLIMITED, Rate::per_second(100.0)),
        1_000,
        "a",
    );
    let large = RateLimits::new(Rate::UNLIMITED, Rate::per_second(100.0));
    let at_100k = mean_check(&large, 100_000, "b");
    let keys = large.per_token.keys();
    eprintln!("mean check: {at_1k:?} at 1,000 keys, {at_100k:?} at 100,000 ({keys} kept)");
    assert!(
        keys <= MAX_KEYS,
        "{keys} keys held after 100,000 distinct tokens"
    );
    // The hand-rolled limiter rescanned its whole map on every check past 10,000 keys (a mean
    // of tens of microseconds here); pruning paid once per doubling keeps it flat.
    assert!(
        at_100k <= at_1k * 10 + Duration::from_micros(20),
        "a check cost {at_1k:?} at 1,000 keys and {at_100k:?} at 100,000"
    );
}

#[test]
fn rotating_source_addresses_pass_the_per_address_limit_and_meet_the_global_one() {
    let addresses = (0..40_000u32).map(|n| {
        let [_, a, b, c] = n.to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(127, a, b, c.max(1)))
    });
    // What a per-address limit cannot do: 40,000 addresses are 40,000 fresh buckets.
    let per_address = RateLimits::new(Rate::per_second(1.0), Rate::UNLIMITED);
    let refused = addresses
        .clone()
        .filter(|address| per_address.check(Some(*address), None).is_err())
        .count();
    assert!(refused < 200, "{refused} refused");
    assert!(per_address.per_address.keys() <= MAX_KEYS);
    // What the global limit (`--rate-global`) does: the process takes its rate, whoever asks.
    let global = RateLimits::with_global(
        Rate::per_second(1.0),
        Rate::UNLIMITED,
        Rate::per_second(100.0),
    );
    let refusals: Vec<Limit> = addresses
        .filter_map(|address| global.check(Some(address), None).err())
        .map(|refusal| refusal.limit)
        .collect();
    assert!(refusals.len() > 39_000, "{} refused", refusals.len());
    assert!(refusals.iter().all(|limit| *limit == Limit::Global));
}

/// `Retry-After` is whole seconds, at least one, for every refusal.
#[actix_web::test]
async fn a_refusal_says_when_to_come_back() {
    let (state, _store) = state_with(TWO_AT_ONCE, TrustedProxies::default()).await;
    let app = init_service(App::new().configure(plangraph_server::configure(state))).await;
    for _ in 0..2 {
        call_service(&app, request("10.9.9.9:1", None).to_request()).await;
    }
    let limited = call_service(&app, request("10.9.9.9:1", None).to_request()).await;
    assert_eq!(limited.status().as_u16(), 429);
    let retry: u64 = limited
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "{retry}");
}
