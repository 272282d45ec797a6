//! How a worker reaches the API node that owns a job: fetch the staged input,
//! hand back the result. In-process in embedded mode, HTTP when distributed.

use async_trait::async_trait;
use bytes::Bytes;

use crate::job::{JobDescriptor, JobResult};

/// The internal port's routes (axum syntax), served by the API node and
/// called by [`crate::http_client::HttpTransport`]: the worker fetches
/// `GET {node}/internal/v1/staging/{key}` and delivers
/// `POST {node}/internal/v1/results/{job_id}`. Both carry
/// `Authorization: Bearer <the job's token>` (see [`resizer_core::capability`]).
pub mod routes {
    /// Prefix of the staged-input route; the key follows.
    pub const STAGING_PREFIX: &str = "/internal/v1/staging/";
    /// Prefix of the result route; the job id follows.
    pub const RESULTS_PREFIX: &str = "/internal/v1/results/";
    /// The staged-input route as the server declares it.
    pub const STAGING: &str = "/internal/v1/staging/{key}";
    /// The result route as the server declares it.
    pub const RESULTS: &str = "/internal/v1/results/{job_id}";

    /// The staged input `key` on the API node at `node` (its internal URL).
    pub fn staging_url(node: &str, key: &str) -> String {
        format!("{node}{STAGING_PREFIX}{key}")
    }

    /// The result slot of `job_id` on the API node at `node`.
    pub fn result_url(node: &str, job_id: &str) -> String {
        format!("{node}{RESULTS_PREFIX}{job_id}")
    }
}

/// The header of a delivery: `ok` (body: the image, [`META_HEADER`]: its
/// metadata) or `failed` (body: a JSON [`crate::JobFailure`]).
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
    /// Returns the job's input from the node in its locator, or `None` when
    /// it is gone (request cancelled or finished).
    async fn fetch(&self, job: &JobDescriptor) -> Result<Option<Bytes>, TransportError>;
}

/// Delivers a job's result to the API node waiting for it.
#[async_trait]
pub trait ResultSink: Send + Sync + 'static {
    /// Hands over the result; the node keeps the first result per job id.
    async fn deliver(&self, job: &JobDescriptor, result: JobResult) -> Result<(), TransportError>;
}

#[cfg(test)]
mod tests {
    use super::routes::*;

    #[test]
    fn test_route_declarations_and_urls_agree() {
        assert_eq!(STAGING, format!("{STAGING_PREFIX}{{key}}"));
        assert_eq!(RESULTS, format!("{RESULTS_PREFIX}{{job_id}}"));
        assert_eq!(staging_url("http://n:1", "k"), "http://n:1/internal/v1/staging/k");
    }
}
