//! The job descriptor and its result.

use bytes::Bytes;
use resizer_core::ids::{JobId, RequestId, TenantId};
use resizer_core::params::ResizeParams;
use resizer_core::{ErrorCode, ImageFormat};
use resizer_queue::QueueItem;
use serde::{Deserialize, Serialize};

/// Where a job's input bytes are staged: which API node (under the job's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingLocator {
    /// The API node holding the bytes (its name in process, its internal URL when distributed).
    pub node: String,
    /// What opens this job's input and result slot on that node (a
    /// [`resizer_core::capability::JobSigner`] token); empty in embedded mode.
    #[serde(default)]
    pub token: String,
}

/// A unit of work: a few hundred bytes, never the image itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDescriptor {
    /// Unguessable job id; results are matched on it.
    pub job_id: JobId,
    /// Owner of the input and the result.
    pub tenant_id: TenantId,
    /// The originating request.
    pub request_id: RequestId,
    /// The job's span in the request's W3C trace (`traceparent` form); absent
    /// in descriptors from before traces, which the worker still takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Where the worker fetches the input.
    pub staging: StagingLocator,
    /// Validated resize parameters.
    pub params: ResizeParams,
    /// Output format, already negotiated by the API node.
    pub output: ImageFormat,
    /// Wall-clock deadline (Unix ms); past it the job is dropped, not processed.
    pub deadline_unix_ms: u64,
    /// When the API node published the job (Unix ms), for queue-wait metrics.
    pub enqueued_unix_ms: u64,
}

/// Deduplicated by job id (a republish after a lost ack is one job); fair by tenant.
impl QueueItem for JobDescriptor {
    fn id(&self) -> &str {
        self.job_id.as_str()
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
}

impl JobDescriptor {
    /// Returns whether the deadline has passed at `now_unix_ms`.
    pub fn is_expired(&self, now_unix_ms: u64) -> bool {
        now_unix_ms >= self.deadline_unix_ms
    }
}

/// A successful resize.
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// Encoded image.
    pub bytes: Bytes,
    /// Everything else: sizes, formats, the worker and its timings.
    pub meta: JobOutputMeta,
}

/// Everything about a [`JobOutput`] but its bytes: what travels beside the
/// image when a worker hands a result to an API node over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutputMeta {
    /// Output format.
    pub format: ImageFormat,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Input format.
    pub input_format: ImageFormat,
    /// Input width.
    pub input_width: u32,
    /// Input height.
    pub input_height: u32,
    /// Worker CPU time in microseconds.
    pub cpu_micros: u64,
    /// The worker that did it.
    pub worker: String,
    /// When the API node published the job (Unix ms).
    pub enqueued_unix_ms: u64,
    /// When the worker started the job (Unix ms).
    pub started_unix_ms: u64,
    /// When the worker finished it (Unix ms).
    pub finished_unix_ms: u64,
}

/// A job that failed in a way the client should hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// Public error code.
    pub code: ErrorCode,
    /// Public, human message.
    pub message: String,
}

impl JobFailure {
    /// What the client hears of `e`; an internal error's detail stays with the caller, to log.
    pub fn of(e: &impl resizer_core::PublicError) -> Self {
        Self {
            code: e.code(),
            message: e.public_message(),
        }
    }
}

/// What a worker reports for a job.
pub type JobResult = Result<JobOutput, JobFailure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_descriptor_is_small() {
        // As published in distributed mode: the locator names an API node's internal URL.
        let mut j = crate::testing::sample_job();
        j.staging = StagingLocator {
            node: "http://10.20.30.40:8082".into(),
            token: "ab".repeat(32),
        };
        j.traceparent = Some(resizer_core::trace::TraceContext::root().header());
        j.params.height = Some(320);
        j.params.quality = Some(80);
        let bytes = serde_json::to_vec(&j).unwrap();
        println!("descriptor: {} bytes", bytes.len());
        assert!(bytes.len() < 512, "descriptor is {} bytes", bytes.len());
    }
}
