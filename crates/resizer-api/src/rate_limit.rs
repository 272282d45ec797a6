//! Per-tenant token buckets on this API node, and the throttle on wrong
//! secrets per client address.
//!
//! With N API nodes behind a load balancer each node enforces the full limit,
//! so a tenant can reach up to N × its rate in aggregate; see docs.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use resizer_core::ids::TenantId;
use resizer_core::rate_limit::TokenBucket;

/// Token buckets by key: tenants for their rates, client addresses for wrong
/// secrets. At most [`MAX_KEYS`] are remembered; past it the table starts
/// over (tenants are bounded by the identity store; addresses are not).
pub struct RateLimiters<K = TenantId> {
    epoch: Instant,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

/// Keys a limiter remembers before it starts over.
const MAX_KEYS: usize = 100_000;

impl<K> Default for RateLimiters<K> {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> RateLimiters<K> {
    /// Takes a token for `key`, or returns how long until one is available.
    pub fn try_acquire(&self, key: &K, rate_per_sec: u32, burst: u32) -> Result<(), Duration> {
        self.with_bucket(key, burst, |b, now| b.try_acquire(now, rate_per_sec, burst))
    }

    /// Whether `key` has a token now, without taking it.
    pub fn check(&self, key: &K, rate_per_sec: u32, burst: u32) -> Result<(), Duration> {
        self.with_bucket(key, burst, |b, now| b.check(now, rate_per_sec, burst))
    }

    fn with_bucket<T>(&self, key: &K, burst: u32, f: impl FnOnce(&mut TokenBucket, u64) -> T) -> T {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.clear();
        }
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new_full(burst, now));
        f(bucket, now)
    }
}

/// Wrong secrets a client address may present after its burst: one a second.
const GUESSES_PER_SEC: u32 = 1;

/// Throttles clients that present wrong secrets (the admin token): once an
/// address has used its budget of wrong guesses it is refused (429) before
/// its next attempt is even checked, so a short token cannot be searched at
/// wire speed. A right secret costs nothing.
pub struct GuessThrottle {
    limiters: RateLimiters<IpAddr>,
    /// The bucket holds one more than the burst: the burst's guesses are free,
    /// the one after it is still checked, and its failure empties the bucket.
    capacity: u32,
}

impl Default for GuessThrottle {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BURST)
    }
}

impl GuessThrottle {
    /// Wrong guesses an address may make at once (`http.wrong_token_burst`).
    pub const DEFAULT_BURST: u32 = 10;

    /// A throttle allowing `burst` wrong guesses, then one a second.
    pub fn new(burst: u32) -> Self {
        Self {
            limiters: RateLimiters::default(),
            capacity: burst.saturating_add(1),
        }
    }

    /// How long `client` must still wait before it may try a secret; `None` if it may now.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        self.limiters.check(&client, GUESSES_PER_SEC, self.capacity).err()
    }

    /// Counts a wrong secret from `client`.
    pub fn failed(&self, client: IpAddr) {
        let _ = self.limiters.try_acquire(&client, GUESSES_PER_SEC, self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_guess_throttle_blocks_after_the_burst_per_address() {
        let throttle = GuessThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..GuessThrottle::DEFAULT_BURST {
            assert_eq!(throttle.blocked(a), None);
            throttle.failed(a);
        }
        assert_eq!(throttle.blocked(a), None, "the burst itself is allowed");
        throttle.failed(a);
        let wait = throttle.blocked(a).expect("blocked past the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(throttle.blocked(b), None, "another address is not held up");
    }
}
