//! The metrics this crate records; described to the recorder and listed in
//! `docs/metrics.md` (checked by `crates/resizer/tests/metrics_inventory.rs`).

use resizer_core::metric::{MetricDef, counter, gauge, histogram};

/// Every metric this crate records.
pub const METRICS: &[MetricDef] = &[
    gauge(
        "resizer_worker_jobs_in_flight",
        &[],
        "Jobs being resized by this worker",
    ),
    counter(
        "resizer_worker_jobs_total",
        &["outcome"],
        "Jobs finished, by outcome (succeeded, failed, expired, orphaned)",
    ),
    counter(
        "resizer_worker_clock_skewed_jobs_total",
        &[],
        "Jobs whose timestamps disagree with this worker's clock (publisher's clock off by over 1 s ahead or 120 s behind); their deadlines are ignored",
    ),
    histogram(
        "resizer_worker_resize_duration_seconds",
        &["format"],
        "Time to decode, resize and encode, by input format",
    ),
    histogram(
        "resizer_worker_queue_wait_seconds",
        &[],
        "Time from publish to a worker picking the job up",
    ),
    counter(
        "resizer_worker_cpu_microseconds_total",
        &[],
        "Worker thread CPU time spent resizing",
    ),
    counter(
        "resizer_worker_animations_total",
        &[],
        "Animated outputs written (GIF or WebP inputs kept animated)",
    ),
    counter(
        "resizer_worker_animation_frames_total",
        &[],
        "Frames of those animations: each was decoded, resized and encoded like a still",
    ),
];
