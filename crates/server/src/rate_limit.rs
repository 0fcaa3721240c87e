//! Rate limits per client address, per token and (optionally) for the whole process: GCRA
//! buckets from `governor`. A request over any of them gets 429 with `Retry-After` and the code
//! `RATE_LIMITED` (a WebSocket operation, that operation's error with the same code) before any
//! work is done for it.
//!
//! Keys a client chooses (bearer strings, source addresses) must not make the limiter slow or
//! large, so the key set is bounded: once it holds more than [`PRUNE_FLOOR`] keys, and after
//! that whenever it has doubled since the last pruning, keys whose bucket is full again are
//! dropped (`retain_recent`, one pass over the map, paid once per doubling, so the cost of a
//! check stays flat however many keys a flood brings). If a pruning still leaves more than half
//! of [`MAX_KEYS`] (a flood faster than buckets refill), every key is forgotten at once: each
//! client gets a fresh burst, which is what a flood that large can win, and memory stays
//! bounded.
//!
//! Addresses are grouped as a network hands them out: an IPv6 client gets a whole /64 (one
//! key per /64), an IPv4 client one address, an IPv4-mapped IPv6 address counts as its IPv4
//! address. Which address is the client's (a trusted proxy's `Forwarded` header, or the peer)
//! is [`crate::client`]'s business.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How many requests a key may make: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate {
        per_second: 0.0,
        burst: 0.0,
    };

    /// `per_second` on average with bursts of twice as many; 0 (or less) for no limit.
    pub fn per_second(per_second: f64) -> Self {
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
        }
    }

    pub fn is_unlimited(self) -> bool {
        self.per_second.is_nan() || self.per_second <= 0.0
    }

    /// The GCRA quota: one request every `1 / per_second`, `burst` at once; `None` for no
    /// limit.
    fn quota(self) -> Option<Quota> {
        if self.is_unlimited() {
            return None;
        }
        // At most one request in about 30 years between refills: a slower rate is that one.
        let period = Duration::from_secs_f64((1.0 / self.per_second).min(1e9));
        // A rate so high that a request costs no time at all is no limit either.
        let quota = Quota::with_period(period)?;
        let burst = self.burst.clamp(1.0, f64::from(u32::MAX)) as u32;
        Some(quota.allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)))
    }
}

/// Which limit refused a request (the `limit` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Every request of the process.
    Global,
    /// The client's address (its /64 for IPv6).
    Address,
    /// The bearer token it presented.
    Token,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Address => "address",
            Self::Token => "token",
        }
    }
}

/// A request over a limit: which one, and how long until one more request fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub wait: Duration,
}

impl Refusal {
    /// Whole seconds to wait, at least 1 (the `Retry-After` value).
    pub fn retry_after_secs(&self) -> u64 {
        (self.wait.as_secs_f64().ceil() as u64).max(1)
    }
}

/// Keys beyond which the limiter starts pruning full buckets.
pub const PRUNE_FLOOR: usize = 10_000;

/// Keys a limiter never holds more of (see the module's documentation).
pub const MAX_KEYS: usize = 100_000;

/// The key count is looked at once every this many checks (counting costs a look at every
/// shard of the map).
const COUNT_EVERY: u64 = 64;

/// One rate over many keys, with a bounded key set.
#[derive(Debug)]
pub struct Keyed<K: std::hash::Hash + Eq + Clone> {
    limit: Limit,
    quota: Option<Quota>,
    /// The buckets; replaced by an empty map when a pruning cannot bring them under the bound.
    buckets: RwLock<Arc<DefaultKeyedRateLimiter<K>>>,
    checks: AtomicU64,
    /// The key count past which the next check prunes.
    prune_at: AtomicUsize,
    /// Held by the one check that prunes; the others go on meanwhile.
    pruning: Mutex<()>,
}

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    pub fn new(limit: Limit, rate: Rate) -> Self {
        let quota = rate.quota();
        Self {
            limit,
            buckets: RwLock::new(Arc::new(Self::empty(quota))),
            quota,
            checks: AtomicU64::new(0),
            prune_at: AtomicUsize::new(PRUNE_FLOOR),
            pruning: Mutex::new(()),
        }
    }

    fn empty(quota: Option<Quota>) -> DefaultKeyedRateLimiter<K> {
        // An unlimited limiter is never checked; its (empty) map only keeps the type simple.
        RateLimiter::keyed(quota.unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)))
    }

    fn current(&self) -> Arc<DefaultKeyedRateLimiter<K>> {
        self.buckets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes one request for `key`; a [`Refusal`] when over the rate.
    pub fn check(&self, key: &K) -> Result<(), Refusal> {
        if self.quota.is_none() {
            return Ok(());
        }
        let buckets = self.current();
        let outcome = buckets.check_key(key).map_err(|not_until| Refusal {
            limit: self.limit,
            wait: not_until.wait_time_from(buckets.clock().now()),
        });
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(COUNT_EVERY)
            && buckets.len() > self.prune_at.load(Ordering::Relaxed)
        {
            self.prune_now(&buckets);
        }
        outcome
    }

    /// Drops the keys whose bucket is full again (a periodic task calls this too, so memory
    /// goes back after a flood).
    pub fn prune(&self) {
        if self.quota.is_some() {
            let buckets = self.current();
            self.prune_now(&buckets);
            buckets.shrink_to_fit();
        }
    }

    fn prune_now(&self, buckets: &Arc<DefaultKeyedRateLimiter<K>>) {
        let _pruning = match self.pruning.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another check is pruning.
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        buckets.retain_recent();
        let mut left = buckets.len();
        if left > MAX_KEYS / 2 {
            *self.buckets.write().unwrap_or_else(PoisonError::into_inner) =
                Arc::new(Self::empty(self.quota));
            tracing::warn!(
                limit = self.limit.label(),
                keys = left,
                "rate limiter flooded with distinct keys: every key's state was forgotten"
            );
            metrics::counter!("plangraph_rate_limit_resets_total", "limit" => self.limit.label())
                .increment(1);
            left = 0;
        }
        self.prune_at
            .store((left * 2).clamp(PRUNE_FLOOR, MAX_KEYS), Ordering::Relaxed);
        metrics::gauge!("plangraph_rate_limit_keys", "limit" => self.limit.label())
            .set(left as f64);
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.current().len()
    }
}

/// The address a per-address limit counts: an IPv6 address's /64 (what one subscriber is
/// usually given), an IPv4-mapped IPv6 address as its IPv4 address.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        },
    }
}

/// The limits of a server.
#[derive(Debug)]
pub struct RateLimits {
    pub per_address: Keyed<IpAddr>,
    /// Keyed by a hash of the token under a key drawn at start, so a stored key is 8 bytes
    /// however long the bearer string, and the hash cannot be steered from outside.
    pub per_token: Keyed<u64>,
    global: Option<DefaultDirectRateLimiter>,
    hasher: std::hash::RandomState,
}

impl RateLimits {
    pub fn new(per_address: Rate, per_token: Rate) -> Self {
        Self::with_global(per_address, per_token, Rate::UNLIMITED)
    }

    /// With a limit on every request of the process as well (after the client's own limits,
    /// so a refused client does not spend the others' share).
    pub fn with_global(per_address: Rate, per_token: Rate, global: Rate) -> Self {
        Self {
            per_address: Keyed::new(Limit::Address, per_address),
            per_token: Keyed::new(Limit::Token, per_token),
            global: global.quota().map(RateLimiter::direct),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Takes one request from `address` (and `token`, if any); a [`Refusal`] when over any
    /// limit (counted in `plangraph_rate_limited_total`).
    pub fn check(&self, address: Option<IpAddr>, token: Option<&str>) -> Result<(), Refusal> {
        self.check_limits(address, token).inspect_err(|refusal| {
            metrics::counter!("plangraph_rate_limited_total", "limit" => refusal.limit.label())
                .increment(1);
        })
    }

    fn check_limits(&self, address: Option<IpAddr>, token: Option<&str>) -> Result<(), Refusal> {
        if let Some(address) = address {
            self.per_address.check(&address_key(address))?;
        }
        if let Some(token) = token {
            self.per_token.check(&self.hasher.hash_one(token))?;
        }
        if let Some(global) = &self.global {
            global.check().map_err(|not_until| Refusal {
                limit: Limit::Global,
                wait: not_until.wait_time_from(global.clock().now()),
            })?;
        }
        Ok(())
    }

    /// Prunes full buckets of both keyed limits.
    pub fn prune(&self) {
        self.per_address.prune();
        self.per_token.prune();
    }

    /// Sets the `plangraph_rate_limit_keys` gauges to the keys held now.
    pub fn record_gauges(&self) {
        for (limit, keys) in [
            (Limit::Address, self.per_address.keys()),
            (Limit::Token, self.per_token.keys()),
        ] {
            metrics::gauge!("plangraph_rate_limit_keys", "limit" => limit.label()).set(keys as f64);
        }
    }
}

/// Default: 500 requests a second per client address (bursts of 1,000; a gateway in front is one
/// address for all its clients unless it is a trusted proxy), 100 per token (bursts of 200), no
/// global limit.
pub const DEFAULT_PER_ADDRESS: f64 = 500.0;
pub const DEFAULT_PER_TOKEN: f64 = 100.0;
pub const DEFAULT_GLOBAL: f64 = 0.0;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_refill() {
        let limits = RateLimits::new(
            Rate {
                per_second: 10.0,
                burst: 3.0,
            },
            Rate::UNLIMITED,
        );
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Some(one), None).is_ok());
        }
        let refusal = limits.check(Some(one), None).unwrap_err();
        assert_eq!(refusal.limit, Limit::Address);
        assert!(
            refusal.wait <= Duration::from_millis(100) && refusal.wait > Duration::ZERO,
            "{refusal:?}"
        );
        assert_eq!(refusal.retry_after_secs(), 1);
        // Another key has its own bucket; no token, no token limit.
        assert!(
            limits
                .check(Some("10.0.0.2".parse().unwrap()), None)
                .is_ok()
        );
        std::thread::sleep(Duration::from_millis(110));
        assert!(limits.check(Some(one), None).is_ok());
        assert!(
            RateLimits::new(Rate::UNLIMITED, Rate::UNLIMITED)
                .check(Some(one), Some("t"))
                .is_ok()
        );
    }

    #[test]
    fn addresses_are_grouped_as_networks_hand_them_out() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn a_rate_of_zero_or_an_absurd_one_is_no_limit() {
        assert!(Rate::per_second(0.0).quota().is_none());
        assert!(Rate::per_second(f64::NAN).quota().is_none());
        assert!(Rate::per_second(-1.0).quota().is_none());
        assert!(Rate::per_second(0.01).quota().is_some());
    }
}
