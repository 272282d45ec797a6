//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge, histogram};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    gauge(
        "resizer_auth_cache_seq",
        &[],
        "Last identity change applied to the auth cache",
    ),
    gauge("resizer_auth_cache_tenants", &[], "Tenants in the auth cache"),
    gauge("resizer_auth_cache_keys", &[], "Live keys in the auth cache"),
    gauge(
        "resizer_auth_cache_flags",
        &[],
        "Feature flags defined in the auth cache",
    ),
    gauge(
        "resizer_auth_cache_age_seconds",
        &[],
        "Seconds since the identity feed last answered",
    ),
    counter(
        "resizer_auth_cache_resets_total",
        &[],
        "Auth cache reloads from a snapshot after the identity store was reset",
    ),
    histogram(
        "resizer_auth_replication_lag_seconds",
        &[],
        "Time from an identity change to its arrival in an auth cache",
    ),
];
