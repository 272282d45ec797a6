//! Per-tenant token buckets on this API node.
//!
//! With N API nodes behind a load balancer each node enforces the full limit,
//! so a tenant can reach up to N × its rate in aggregate; see docs.

use std::collections::HashMap;
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
