//! The staging area: input bytes wait here, on the API node that received
//! them, until a worker fetches them. Bounded by total bytes; full means 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Returns whether `size` more bytes fit under `max` with `used` taken.
pub fn admits(used: u64, size: u64, max: u64) -> bool {
    used.checked_add(size).is_some_and(|total| total <= max)
}

#[derive(Default)]
struct Inner {
    used: u64,
    entries: HashMap<String, Bytes>,
}

/// Input bytes by staging key.
pub struct StagingArea {
    max_bytes: u64,
    inner: Mutex<Inner>,
}

/// The staging area cannot take the bytes now.
#[derive(Debug, thiserror::Error)]
#[error("the staging area is full")]
pub struct StagingFull;

/// Removes its entry when dropped: when the request ends, however it ends.
pub struct StagingGuard {
    area: Arc<StagingArea>,
    key: String,
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        self.area.remove(&self.key);
    }
}

impl StagingArea {
    /// Creates an area holding at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stages bytes under `key` if they fit.
    pub fn put(self: &Arc<Self>, key: String, bytes: Bytes) -> Result<StagingGuard, StagingFull> {
        let mut inner = self.lock();
        let size = bytes.len() as u64;
        if !admits(inner.used, size, self.max_bytes) {
            return Err(StagingFull);
        }
        inner.used += size;
        if let Some(old) = inner.entries.insert(key.clone(), bytes) {
            inner.used -= old.len() as u64;
        }
        metrics::gauge!("resizer_api_staging_bytes").set(inner.used as f64);
        Ok(StagingGuard {
            area: self.clone(),
            key,
        })
    }

    /// Returns the staged bytes, if still there (a cheap reference-counted clone).
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.lock().entries.get(key).cloned()
    }

    fn remove(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.used -= old.len() as u64;
        }
        metrics::gauge!("resizer_api_staging_bytes").set(inner.used as f64);
    }

    /// Returns the bytes in use.
    pub fn used(&self) -> u64 {
        self.lock().used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_admits_respects_bound_and_overflow() {
        assert!(admits(0, 10, 10));
        assert!(!admits(1, 10, 10));
        assert!(!admits(u64::MAX, 1, u64::MAX));
    }

    #[test]
    fn test_staging_guard_releases_bytes() {
        let area = StagingArea::new(10);
        let g1 = area.put("a".into(), Bytes::from_static(b"123456")).unwrap();
        assert!(area.put("b".into(), Bytes::from_static(b"123456")).is_err());
        assert_eq!(area.get("a").as_deref(), Some(&b"123456"[..]));
        drop(g1);
        assert_eq!(area.used(), 0);
        assert!(area.get("a").is_none());
        let _g2 = area.put("b".into(), Bytes::from_static(b"123456")).unwrap();
    }
}
