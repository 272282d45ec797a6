//! Token-bucket arithmetic for per-tenant rate limits.
//!
//! The clock is passed in as monotonic nanoseconds so the logic is exact and
//! testable; callers own the bucket and its lock.

/// A token bucket holding up to `burst` tokens, refilled at `rate_per_sec`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last_nanos: u64,
}

impl TokenBucket {
    /// Returns a full bucket.
    pub fn new_full(burst: u32, now_nanos: u64) -> Self {
        Self {
            tokens: f64::from(burst),
            last_nanos: now_nanos,
        }
    }

    /// Takes one token, or returns how long until one is available.
    ///
    /// `rate_per_sec` and `burst` are read on every call so limit changes apply
    /// without resetting the bucket.
    pub fn try_acquire(
        &mut self,
        now_nanos: u64,
        rate_per_sec: u32,
        burst: u32,
    ) -> Result<(), std::time::Duration> {
        self.check(now_nanos, rate_per_sec, burst)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Like [`TokenBucket::try_acquire`] without taking the token: whether one
    /// is there now, or how long until one is.
    pub fn check(
        &mut self,
        now_nanos: u64,
        rate_per_sec: u32,
        burst: u32,
    ) -> Result<(), std::time::Duration> {
        let rate = f64::from(rate_per_sec.max(1));
        let elapsed = now_nanos.saturating_sub(self.last_nanos) as f64 / 1e9;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst.max(1)));
        self.last_nanos = self.last_nanos.max(now_nanos);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(std::time::Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// Rounds a wait up to whole seconds for `Retry-After` (at least 1).
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn test_rate_limiter_allows_burst_then_refuses() {
        let mut b = TokenBucket::new_full(5, 0);
        for _ in 0..5 {
            assert!(b.try_acquire(0, 5, 5).is_ok());
        }
        let wait = b.try_acquire(0, 5, 5).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
    }

    #[test]
    fn test_rate_limiter_refills_after_interval() {
        let mut b = TokenBucket::new_full(2, 0);
        assert!(b.try_acquire(0, 10, 2).is_ok());
        assert!(b.try_acquire(0, 10, 2).is_ok());
        assert!(b.try_acquire(0, 10, 2).is_err());
        assert!(b.try_acquire(SEC / 10, 10, 2).is_ok());
        // Refill never exceeds the burst.
        let mut b = TokenBucket::new_full(2, 0);
        for _ in 0..2 {
            b.try_acquire(100 * SEC, 10, 2).unwrap();
        }
        assert!(b.try_acquire(100 * SEC, 10, 2).is_err());
    }

    #[test]
    fn test_retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
