//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge, histogram};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    counter(
        "resizer_queue_publish_total",
        &["outcome"],
        "Job publishes, by outcome (ok, full, unavailable, closed)",
    ),
    gauge(
        "resizer_queue_depth",
        &[],
        "Jobs waiting in the queue, where the backend knows it",
    ),
    counter(
        "resizer_queue_refusals_total",
        &["bound"],
        "Jobs the in-process queue refused, by bound (count, wait)",
    ),
    gauge(
        "resizer_queue_expected_wait_seconds",
        &[],
        "Expected wait of a job published now (in-process queue)",
    ),
    gauge(
        "resizer_queue_service_seconds",
        &[],
        "Moving average of pull-to-ack time (in-process queue)",
    ),
    counter(
        "resizer_queue_stream_failures_total",
        &["stream"],
        "Publishes that failed on one JetStream stream and moved to the next",
    ),
    counter(
        "resizer_queue_operations_total",
        &["op"],
        "JetStream operations of this client, by op (publish, publish_failed, fetch, fetch_empty, wait, passed_on, handed_back, ack, progress, term; with single-replica consumers also consumer_replaced, consumer_rebound)",
    ),
    histogram(
        "resizer_queue_receive_delay_seconds",
        &[],
        "From a job's publish to its arrival at a worker, on the worker's clock (JetStream queue)",
    ),
];
