//! Rate limits per client address and per token: a token bucket each, refilled continuously.
//! A request over either gets 429 with `Retry-After` and the code `RATE_LIMITED`, before any
//! work is done for it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    pub fn per_second(per_second: f64) -> Self {
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
        }
    }

    fn is_unlimited(self) -> bool {
        self.per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keys idle this long are forgotten (their bucket would be full again anyway).
const IDLE: Duration = Duration::from_secs(60);

/// Buckets are swept of idle keys when there are this many.
const SWEEP_AT: usize = 10_000;

/// One rate over many keys.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `key` at `now`; `Err(wait)` when over the rate.
    pub fn take(&self, key: u64, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing / self.rate.per_second))
        }
    }
}

/// The limits of a server: per client address and per token.
#[derive(Debug)]
pub struct RateLimits {
    pub per_address: Limiter,
    pub per_token: Limiter,
}

impl RateLimits {
    pub fn new(per_address: Rate, per_token: Rate) -> Self {
        Self {
            per_address: Limiter::new(per_address),
            per_token: Limiter::new(per_token),
        }
    }

    /// Takes one request from `address` (and `token`, if any); `Err(wait)` when over either.
    pub fn check(&self, address: Option<IpAddr>, token: Option<&str>) -> Result<(), Duration> {
        let now = Instant::now();
        if let Some(address) = address {
            self.per_address.take(key(&address), now)?;
        }
        if let Some(token) = token {
            self.per_token.take(key(&token), now)?;
        }
        Ok(())
    }
}

fn key(value: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Default: 500 requests a second per client address (bursts of 1,000; a gateway in front is one
/// address for all its clients), 100 per token (bursts of 200).
pub const DEFAULT_PER_ADDRESS: f64 = 500.0;
pub const DEFAULT_PER_TOKEN: f64 = 100.0;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_refill() {
        let limiter = Limiter::new(Rate {
            per_second: 10.0,
            burst: 3.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(1, start).is_ok());
        }
        let wait = limiter.take(1, start).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(limiter.take(2, start).is_ok());
        // A tenth of a second later one more request fits.
        assert!(limiter.take(1, start + Duration::from_millis(101)).is_ok());
        assert!(Limiter::new(Rate::UNLIMITED).take(1, start).is_ok());
    }
}
