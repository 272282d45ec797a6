//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    gauge(
        "resizer_api_staging_bytes",
        &[],
        "Input bytes staged on this API node, waiting for a worker",
    ),
    counter(
        "resizer_api_joins_total",
        &[],
        "Requests that shared an identical job in flight",
    ),
    counter(
        "resizer_api_results_unclaimed_total",
        &[],
        "Results nobody waited for (duplicates after redelivery, requests already answered)",
    ),
    counter(
        "resizer_worker_untrusted_nodes_total",
        &[],
        "Jobs dropped because they named an API node outside worker.api_nodes",
    ),
];
