//! The HTTP transport of a distributed worker: fetch the staged input from the
//! API node named in the job's locator, deliver the result back to it.

use std::time::Duration;

use crate::job::{JobDescriptor, JobResult};
use crate::transport::{META_HEADER, OUTCOME_HEADER, ResultSink, StagingClient, TransportError, routes};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

/// Talks to API nodes' internal ports, proving each job with its own token
/// (the worker holds no cluster secret).
pub struct HttpTransport {
    client: reqwest::Client,
    /// API node URLs a job may name; empty means any. A job naming another
    /// node is dropped: the queue is not trusted to pick whom we talk to.
    allowed_nodes: Vec<String>,
    max_input_bytes: u64,
}

fn unreachable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unreachable(e.to_string())
}

impl HttpTransport {
    /// Creates the transport; inputs above `max_input_bytes` are refused while
    /// reading; jobs may name only `allowed_nodes` (any when empty).
    /// `ca_file` (PEM) is trusted for API nodes' `https` internal ports.
    pub fn new(
        allowed_nodes: Vec<String>,
        max_input_bytes: u64,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, TransportError> {
        let mut builder = reqwest::Client::builder()
            // A gone API node must be noticed fast: its jobs are orphans.
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            // An API node answers; it never sends us elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| unreachable(format!("{}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(unreachable)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(unreachable)?;
        Ok(Self {
            client,
            allowed_nodes: allowed_nodes
                .into_iter()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect(),
            max_input_bytes,
        })
    }

    /// Refuses a node that is not on the allow-list.
    fn check_node(&self, node: &str) -> Result<(), TransportError> {
        if self.allowed_nodes.is_empty() || self.allowed_nodes.iter().any(|n| n == node) {
            return Ok(());
        }
        metrics::counter!("resizer_worker_untrusted_nodes_total").increment(1);
        Err(TransportError::Unreachable(format!(
            "{node} is not an allowed API node (worker.api_nodes)"
        )))
    }
}

#[async_trait]
impl StagingClient for HttpTransport {
    async fn fetch(&self, job: &JobDescriptor) -> Result<Option<Bytes>, TransportError> {
        let locator = &job.staging;
        self.check_node(&locator.node)?;
        let url = routes::staging_url(&locator.node, job.job_id.as_str());
        let mut response = self
            .client
            .get(url)
            .bearer_auth(&locator.token)
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
        self.check_node(&job.staging.node)?;
        let url = routes::result_url(&job.staging.node, job.job_id.as_str());
        let mut request = self.client.post(url).bearer_auth(&job.staging.token);
        if let Some(traceparent) = &job.traceparent {
            request = request.header("traceparent", traceparent);
        }
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
