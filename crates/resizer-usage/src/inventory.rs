//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    counter(
        "resizer_usage_records_logged_total",
        &[],
        "Usage records appended to the local log",
    ),
    counter(
        "resizer_usage_log_errors_total",
        &[],
        "Usage log appends or syncs that failed (the request was refused)",
    ),
    gauge(
        "resizer_usage_log_pending_bytes",
        &[],
        "Usage log bytes written but not yet fsynced",
    ),
    counter(
        "resizer_usage_records_shipped_total",
        &[],
        "Usage records shipped to the staging stream",
    ),
    counter(
        "resizer_usage_ship_failures_total",
        &[],
        "Shipping rounds that failed (records stay in the local log)",
    ),
    counter(
        "resizer_usage_records_aggregated_total",
        &[],
        "Usage records folded into the roll-ups and the archive",
    ),
    counter(
        "resizer_usage_torn_lines_total",
        &[],
        "Torn (partly written) usage log lines skipped",
    ),
    counter(
        "resizer_usage_storage_samples_total",
        &["outcome"],
        "Rounds sampling every tenant's stored bytes into the roll-ups, by outcome (ok, error)",
    ),
    gauge(
        "resizer_usage_storage_tenants",
        &[],
        "Tenants storing originals at the last storage sample",
    ),
    gauge(
        "resizer_aggregator_active",
        &[],
        "1 while this aggregator holds the lease",
    ),
];
