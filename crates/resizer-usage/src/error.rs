//! Errors of the usage pipeline beyond the request path: shipping records to
//! the staging stream, holding the aggregator lease, aggregating into the
//! roll-ups and the archive. (The request path's own is [`crate::UsageLogError`].)

use crate::archive::ArchiveError;
use crate::log::UsageLogError;
use crate::store::UsageStoreError;

/// Why a round of shipping or aggregation failed; the round is retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The local log could not be read or a segment removed.
    #[error(transparent)]
    Log(#[from] UsageLogError),
    /// A local file operation failed.
    #[error("usage file I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The roll-up store refused.
    #[error(transparent)]
    Store(#[from] UsageStoreError),
    /// The archive refused.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A record could not be encoded for the stream.
    #[error("usage record encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// NATS or JetStream failed at `op` (connect, create the stream, publish, fetch, ack, lease).
    #[error("usage staging stream ({op}): {source}")]
    Stream {
        /// What was being done.
        op: &'static str,
        /// The client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stream did not answer within its timeout.
    #[error("usage staging stream ({0}): no answer in time")]
    Timeout(&'static str),
    /// A blocking task (archive filing, compaction) panicked or was cancelled.
    #[error("a usage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Wraps a NATS client error of operation `op`.
pub(crate) fn stream(
    op: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> PipelineError {
    move |source| PipelineError::Stream { op, source }
}
