//! How a crate declares the metrics it records: name, kind, labels, meaning.
//! Each crate lists its own in `inventory::METRICS`; the binary describes them
//! all to the recorder and `docs/metrics.md` is checked against them by a test.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution; read percentiles from it, never an average.
    Histogram,
}

impl MetricKind {
    /// The Prometheus word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric a crate records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Its name on `/metrics`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Label names it carries.
    pub labels: &'static [&'static str],
    /// What it means, for the reader of a dashboard.
    pub help: &'static str,
}

/// A counter.
pub const fn counter(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Counter,
        labels,
        help,
    }
}

/// A gauge.
pub const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Gauge,
        labels,
        help,
    }
}

/// A histogram.
pub const fn histogram(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Histogram,
        labels,
        help,
    }
}
