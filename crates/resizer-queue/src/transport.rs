//! How a worker reaches the API node that owns a job: fetch the staged input,
//! hand back the result. In-process in embedded mode, HTTP when distributed.

use async_trait::async_trait;
use bytes::Bytes;

use crate::job::{JobDescriptor, JobResult, StagingLocator};

/// Over HTTP (distributed mode), a worker fetches `GET {node}/internal/v1/staging/{key}`
/// and delivers `POST {node}/internal/v1/results/{job_id}` with this header set to
/// `ok` (body: the image, [`META_HEADER`]: its metadata) or `failed` (body: a JSON
/// [`crate::JobFailure`]). Both require `Authorization: Bearer <cluster secret>`.
pub const OUTCOME_HEADER: &str = "x-resizer-outcome";
/// Header carrying a successful result's [`crate::JobOutputMeta`] as JSON.
pub const META_HEADER: &str = "x-resizer-meta";

/// Why a fetch or a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The API node cannot be reached.
    #[error("the api node is unreachable: {0}")]
    Unreachable(String),
}

/// Fetches staged input bytes.
#[async_trait]
pub trait StagingClient: Send + Sync + 'static {
    /// Returns the bytes, or `None` when they are gone (request cancelled or finished).
    async fn fetch(&self, locator: &StagingLocator) -> Result<Option<Bytes>, TransportError>;
}

/// Delivers a job's result to the API node waiting for it.
#[async_trait]
pub trait ResultSink: Send + Sync + 'static {
    /// Hands over the result; the node keeps the first result per job id.
    async fn deliver(&self, job: &JobDescriptor, result: JobResult) -> Result<(), TransportError>;
}
