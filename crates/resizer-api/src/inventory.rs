//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge, histogram};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    counter(
        "resizer_http_requests_total",
        &["route", "status"],
        "HTTP requests answered, by route and status",
    ),
    histogram(
        "resizer_http_request_duration_seconds",
        &["route", "status"],
        "HTTP request latency, by route and status",
    ),
    gauge(
        "resizer_http_requests_in_flight",
        &[],
        "HTTP requests being served",
    ),
    counter(
        "resizer_http_panics_total",
        &[],
        "Handlers that panicked (answered 500)",
    ),
    gauge(
        "resizer_http_connections_open",
        &["listener"],
        "Open HTTP connections, by listener",
    ),
    counter(
        "resizer_http_connections_dropped_total",
        &["listener", "reason"],
        "Connections and bodies cut off, by listener and reason (connection_cap, header_timeout, idle, body_slow)",
    ),
    counter(
        "resizer_api_rejections_total",
        &["reason"],
        "Resize requests refused by this node, by reason",
    ),
    counter(
        "resizer_admin_auth_throttled_total",
        &[],
        "Admin requests refused after too many wrong tokens from one address",
    ),
    counter(
        "resizer_usage_refusals_unrecorded_total",
        &[],
        "Refusals (403, 429) beyond the per-tenant record budget: counted, not recorded",
    ),
    counter(
        "resizer_variant_cache_requests_total",
        &["outcome"],
        "Variant cache lookups, by outcome (hit, miss)",
    ),
    counter(
        "resizer_variant_cache_evictions_total",
        &[],
        "Variants the cache let go to make room",
    ),
    gauge(
        "resizer_variant_cache_bytes",
        &[],
        "Bytes the variant cache holds (images and bookkeeping)",
    ),
    gauge("resizer_variant_cache_entries", &[], "Variants the cache holds"),
    counter(
        "resizer_variant_not_modified_total",
        &[],
        "Variant requests answered 304 from the original's metadata",
    ),
];
