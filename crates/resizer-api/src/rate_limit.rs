//! Per-tenant token buckets on this API node, and the throttle on wrong
//! secrets per client address.
//!
//! With N API nodes behind a load balancer each node enforces the full limit,
//! so a tenant can reach up to N × its rate in aggregate; see docs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use resizer_core::ids::TenantId;
use resizer_core::rate_limit::TokenBucket;

/// Buckets by tenant. One entry per tenant that has sent a request; the
/// tenant count is bounded by the identity store.
pub struct RateLimiters {
    epoch: Instant,
    buckets: Mutex<HashMap<TenantId, TokenBucket>>,
}

impl Default for RateLimiters {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl RateLimiters {
    /// Takes a token for `tenant`, or returns how long until one is available.
    pub fn try_acquire(&self, tenant: &TenantId, rate_per_sec: u32, burst: u32) -> Result<(), Duration> {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry(tenant.clone())
            .or_insert_with(|| TokenBucket::new_full(burst, now))
            .try_acquire(now, rate_per_sec, burst)
    }
}

/// Wrong secrets a client address may present: a burst, then one a second.
const GUESSES_BURST: u32 = 10;
const GUESSES_PER_SEC: u32 = 1;
/// Addresses remembered; past it the table starts over (an attacker with that
/// many addresses is not stopped by a per-address throttle anyway).
const GUESSERS_MAX: usize = 10_000;

/// Throttles clients that present wrong secrets (the admin token): once an
/// address has used its budget of wrong guesses it is refused with 429 before
/// its next attempt is even checked, so a short token cannot be searched at
/// wire speed. A right secret costs nothing.
pub struct GuessThrottle {
    epoch: Instant,
    clients: Mutex<HashMap<IpAddr, Guesser>>,
}

struct Guesser {
    bucket: TokenBucket,
    /// Refused until this instant (nanoseconds after `epoch`).
    blocked_until: u64,
}

impl Default for GuessThrottle {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl GuessThrottle {
    /// How long `client` must still wait before it may try a secret; `None` if it may now.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let until = clients.get(&client)?.blocked_until;
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// Counts a wrong secret from `client`.
    pub fn failed(&self, client: IpAddr) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= GUESSERS_MAX && !clients.contains_key(&client) {
            clients.clear();
        }
        let guesser = clients.entry(client).or_insert_with(|| Guesser {
            bucket: TokenBucket::new_full(GUESSES_BURST, now),
            blocked_until: 0,
        });
        if let Err(wait) = guesser.bucket.try_acquire(now, GUESSES_PER_SEC, GUESSES_BURST) {
            guesser.blocked_until = now + wait.as_nanos() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_guess_throttle_blocks_after_the_burst_per_address() {
        let throttle = GuessThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..GUESSES_BURST {
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
