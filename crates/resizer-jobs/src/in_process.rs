//! In-process job transport for embedded mode: workers read staged bytes and
//! deliver results through shared memory, so bytes never leave the process.

use std::sync::Arc;

use crate::job::{JobDescriptor, JobResult};
use crate::transport::{ResultSink, StagingClient, TransportError};
use async_trait::async_trait;
use bytes::Bytes;

use crate::results::ResultWaiters;
use crate::staging::StagingArea;

/// Staging and results of the API node in this process.
pub struct InProcessTransport {
    /// This node's name in locators; a locator naming another node is not ours to serve.
    pub node: String,
    /// The staging area.
    pub staging: Arc<StagingArea>,
    /// The waiting requests.
    pub results: Arc<ResultWaiters>,
}

#[async_trait]
impl StagingClient for InProcessTransport {
    async fn fetch(&self, job: &JobDescriptor) -> Result<Option<Bytes>, TransportError> {
        let locator = &job.staging;
        if locator.node != self.node {
            return Err(TransportError::Unreachable(format!(
                "unknown api node {}",
                locator.node
            )));
        }
        Ok(self.staging.get(job.job_id.as_str()))
    }
}

#[async_trait]
impl ResultSink for InProcessTransport {
    async fn deliver(&self, job: &JobDescriptor, result: JobResult) -> Result<(), TransportError> {
        self.results.complete(&job.job_id, result);
        Ok(())
    }
}
