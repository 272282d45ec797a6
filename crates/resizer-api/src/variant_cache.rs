//! The variant cache: finished variants in memory, bounded by bytes, keyed by
//! tenant and ETag. The ETag derives from the original's content hash, the
//! normalised parameters and the output format, so a replaced original's
//! variants are never found again (and age out), and a tenant's entry can only
//! be found under that tenant's id.
//!
//! Admission is `quick_cache`'s S3-FIFO: a new entry enters a small probation
//! queue and is promoted only when it is asked for again, so one pass over
//! many one-off URLs (a crawler) does not flush the variants people keep
//! loading (ADR 0012).

use std::collections::hash_map::RandomState;

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, Weighter};
use resizer_core::ImageFormat;
use resizer_core::ids::TenantId;

/// A finished variant.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The image.
    pub bytes: Bytes,
    /// Its format.
    pub format: ImageFormat,
    /// Its size, for the usage record of a hit.
    pub width: u32,
    /// Its size.
    pub height: u32,
}

type Key = (TenantId, String);

#[derive(Clone)]
struct ByBytes;

/// Per-entry overhead counted beside the image (key, bookkeeping).
const ENTRY_OVERHEAD: u64 = 128;

impl Weighter<Key, Variant> for ByBytes {
    fn weight(&self, key: &Key, v: &Variant) -> u64 {
        v.bytes.len() as u64 + key.1.len() as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Clone, Default)]
struct CountEvictions;

impl Lifecycle<Key, Variant> for CountEvictions {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _state: &mut (), _key: Key, _value: Variant) {
        metrics::counter!("resizer_variant_cache_evictions_total").increment(1);
    }
}

/// Variants on this node.
pub struct VariantCache {
    cache: Cache<Key, Variant, ByBytes, RandomState, CountEvictions>,
    max_bytes: u64,
}

/// Average variant size assumed when sizing the table (30 KB thumbnails).
const TYPICAL_VARIANT_BYTES: u64 = 30_000;

impl VariantCache {
    /// A cache of at most `max_bytes` (0: nothing is kept).
    pub fn new(max_bytes: u64) -> Self {
        let items = (max_bytes / TYPICAL_VARIANT_BYTES).clamp(16, 1 << 20) as usize;
        Self {
            cache: Cache::with(
                items,
                max_bytes.max(1),
                ByBytes,
                RandomState::new(),
                CountEvictions,
            ),
            max_bytes,
        }
    }

    /// The variant of `tenant` under `etag`, counting the hit or miss.
    pub fn get(&self, tenant: &TenantId, etag: &str) -> Option<Variant> {
        let found = self.cache.get(&(tenant.clone(), etag.to_string()));
        let outcome = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("resizer_variant_cache_requests_total", "outcome" => outcome).increment(1);
        found
    }

    /// Keeps a variant; one larger than an eighth of the cache is not kept,
    /// so a few huge outputs cannot empty it.
    pub fn insert(&self, tenant: &TenantId, etag: &str, variant: Variant) {
        if self.max_bytes == 0 || variant.bytes.len() as u64 > self.max_bytes / 8 {
            return;
        }
        self.cache.insert((tenant.clone(), etag.to_string()), variant);
        metrics::gauge!("resizer_variant_cache_bytes").set(self.cache.weight() as f64);
        metrics::gauge!("resizer_variant_cache_entries").set(self.cache.len() as f64);
    }

    /// Bytes held now.
    pub fn weight(&self) -> u64 {
        self.cache.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(n: usize) -> Variant {
        Variant {
            bytes: Bytes::from(vec![7u8; n]),
            format: ImageFormat::Jpeg,
            width: 1,
            height: 1,
        }
    }

    #[test]
    fn test_entries_are_per_tenant_and_bounded_by_bytes() {
        let cache = VariantCache::new(100_000);
        let (a, b) = (TenantId::random(), TenantId::random());
        cache.insert(&a, "\"e1\"", variant(1000));
        assert!(cache.get(&a, "\"e1\"").is_some());
        assert!(cache.get(&b, "\"e1\"").is_none(), "same ETag, other tenant");
        for i in 0..500 {
            cache.insert(&a, &format!("\"x{i}\""), variant(1000));
        }
        assert!(cache.weight() <= 100_000, "{}", cache.weight());
        cache.insert(&a, "\"huge\"", variant(20_000));
        assert!(cache.get(&a, "\"huge\"").is_none(), "over an eighth is not kept");
    }

    #[test]
    fn test_a_scan_of_one_off_variants_does_not_flush_the_popular_ones() {
        let cache = VariantCache::new(200_000);
        let t = TenantId::random();
        for i in 0..50 {
            cache.insert(&t, &format!("hot{i}"), variant(1000));
        }
        for _ in 0..3 {
            for i in 0..50 {
                cache.get(&t, &format!("hot{i}"));
            }
        }
        for i in 0..2000 {
            cache.insert(&t, &format!("scan{i}"), variant(1000));
        }
        let kept = (0..50)
            .filter(|i| cache.get(&t, &format!("hot{i}")).is_some())
            .count();
        assert!(kept >= 45, "only {kept} of 50 popular variants survived the scan");
    }
}
