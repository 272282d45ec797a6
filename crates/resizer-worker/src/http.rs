//! The HTTP transport of a distributed worker: fetch the staged input from the
//! API node named in the job's locator, deliver the result back to it.

use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use resizer_queue::transport::{META_HEADER, OUTCOME_HEADER};
use resizer_queue::{JobDescriptor, JobResult, ResultSink, StagingClient, StagingLocator, TransportError};

/// Talks to API nodes' internal ports with the cluster secret.
pub struct HttpTransport {
    client: reqwest::Client,
    secret: String,
    max_input_bytes: u64,
}

fn unreachable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unreachable(e.to_string())
}

impl HttpTransport {
    /// Creates the transport; inputs above `max_input_bytes` are refused while reading.
    pub fn new(secret: String, max_input_bytes: u64) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            // A gone API node must be noticed fast: its jobs are orphans.
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(unreachable)?;
        Ok(Self {
            client,
            secret,
            max_input_bytes,
        })
    }
}

#[async_trait]
impl StagingClient for HttpTransport {
    async fn fetch(&self, locator: &StagingLocator) -> Result<Option<Bytes>, TransportError> {
        let url = format!("{}/internal/v1/staging/{}", locator.node, locator.key);
        let mut response = self
            .client
            .get(url)
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(unreachable)?;
        match response.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(unreachable(format!("staging fetch answered {s}"))),
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_input_bytes)
        {
            return Err(unreachable("staged input larger than the body limit"));
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if (bytes.len() + chunk.len()) as u64 > self.max_input_bytes {
                return Err(unreachable("staged input larger than the body limit"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes.freeze()))
    }
}

#[async_trait]
impl ResultSink for HttpTransport {
    async fn deliver(&self, job: &JobDescriptor, result: JobResult) -> Result<(), TransportError> {
        let url = format!("{}/internal/v1/results/{}", job.staging.node, job.job_id);
        let request = self.client.post(url).bearer_auth(&self.secret);
        let request = match result {
            Ok(output) => {
                let meta = serde_json::to_string(&output.meta).map_err(unreachable)?;
                request
                    .header(OUTCOME_HEADER, "ok")
                    .header(META_HEADER, meta)
                    .body(output.bytes)
            }
            Err(failure) => {
                let body = serde_json::to_vec(&failure).map_err(unreachable)?;
                request.header(OUTCOME_HEADER, "failed").body(body)
            }
        };
        let response = request.send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(unreachable(format!(
                "result delivery answered {}",
                response.status()
            )));
        }
        Ok(())
    }
}
