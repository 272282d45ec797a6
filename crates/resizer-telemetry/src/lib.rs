//! Logs and metrics for every role.
//!
//! Logs go to stderr through `tracing`; metrics are recorded with the
//! `metrics` facade and rendered in the Prometheus text format by [`Metrics`].
//! Every latency is a histogram (never an average) so p50/p99/p99.9 can be
//! computed by Prometheus.
//!
//! # Layout
//! - [`init_logging`]: one subscriber, filter from `RESIZER_LOG`-style directives.
//! - [`Metrics`]: the process-wide recorder and its renderer.
//! - [`GaugeGuard`]: a gauge raised for as long as a value lives.
//! - [`describe`]: help text for every metric of every crate's inventory.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use resizer_core::metric::{MetricDef, MetricKind};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Bucket bounds (seconds) for request and job latencies: 1 ms to 30 s,
/// dense around the 500 ms p99 budget.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Initialises logging once; later calls are ignored. `directives` uses the
/// `target=level,...` syntax (e.g. `info` or `info,resizer_api=debug`).
pub fn init_logging(directives: &str) {
    let filter: Targets = directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true);
    let _ = tracing_subscriber::registry().with(layer).with(filter).try_init();
}

/// The process-wide metrics recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

impl Metrics {
    /// Installs the recorder on first call and returns it; later calls return the same one.
    pub fn global() -> Metrics {
        METRICS
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                    .expect("latency buckets are non-empty");
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                // Another recorder may already be installed (tests embedding several nodes);
                // ours still renders what it records.
                let _ = metrics::set_global_recorder(recorder);
                Metrics { handle }
            })
            .clone()
    }

    /// Renders all metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Raises a gauge by one for as long as it lives. A future dropped half-way
/// (its client went away, it panicked) lowers the gauge too, which a
/// decrement written after an `.await` never does.
#[must_use = "the gauge is lowered when the guard is dropped"]
pub struct GaugeGuard(metrics::Gauge);

impl GaugeGuard {
    /// Raises `gauge` now; it is lowered on drop.
    pub fn raise(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Gives each metric its help text and unit on `/metrics`; the binary passes
/// every crate's `inventory::METRICS`.
pub fn describe<'a>(defs: impl IntoIterator<Item = &'a MetricDef>) {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    for d in defs {
        let unit = if d.name.ends_with("_seconds") {
            Some(Unit::Seconds)
        } else if d.name.ends_with("_bytes") {
            Some(Unit::Bytes)
        } else {
            None
        };
        match (d.kind, unit) {
            (MetricKind::Counter, _) => describe_counter!(d.name, d.help),
            (MetricKind::Gauge, Some(u)) => describe_gauge!(d.name, u, d.help),
            (MetricKind::Gauge, None) => describe_gauge!(d.name, d.help),
            (MetricKind::Histogram, Some(u)) => describe_histogram!(d.name, u, d.help),
            (MetricKind::Histogram, None) => describe_histogram!(d.name, d.help),
        }
    }
}
