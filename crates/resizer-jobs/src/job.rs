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
    /// Decode at the smallest scale that covers the output, whatever the
    /// worker's setting: the tenant's `shrink_on_load` flag, decided by the
    /// API node at admission (absent in older descriptors: the worker's setting).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fast_shrink_on_load: bool,
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
    /// Returns whether the deadline has passed at `now_unix_ms`, this process's
    /// wall clock. The deadline is the publisher's; when the clocks visibly
    /// disagree ([`Self::clock_skewed`]) it says nothing here, so the job is
    /// not expired: the API node still bounds its own wait with a monotonic
    /// timer. (Trusting it, an API node whose clock ran 5 minutes slow had
    /// every job dropped as expired and answered 504.)
    pub fn is_expired(&self, now_unix_ms: u64) -> bool {
        now_unix_ms >= self.deadline_unix_ms && !self.clock_skewed(now_unix_ms)
    }

    /// Time left to work on the job, by this clock; when the publisher's clock
    /// visibly disagrees, the whole budget it gave (its deadline − its enqueue
    /// time: a difference on one clock is still right).
    pub fn time_left(&self, now_unix_ms: u64) -> std::time::Duration {
        let ms = if self.clock_skewed(now_unix_ms) {
            self.deadline_unix_ms.saturating_sub(self.enqueued_unix_ms)
        } else {
            self.deadline_unix_ms.saturating_sub(now_unix_ms)
        };
        std::time::Duration::from_millis(ms)
    }

    /// Whether the job's timestamps cannot be true on this clock: enqueued more
    /// than a second in the future, or earlier than any queue keeps a job.
    pub fn clock_skewed(&self, now_unix_ms: u64) -> bool {
        let max_age = resizer_queue::jetstream::MAX_JOB_AGE.as_millis() as u64;
        self.enqueued_unix_ms > now_unix_ms.saturating_add(1000)
            || now_unix_ms.saturating_sub(self.enqueued_unix_ms) > max_age
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
    fn test_expiry_trusts_the_deadline_only_where_the_clocks_agree() {
        let mut j = crate::testing::sample_job();
        let now = 1_800_000_000_000;
        j.enqueued_unix_ms = now - 2_000;
        j.deadline_unix_ms = now + 8_000;
        assert!(!j.is_expired(now) && !j.clock_skewed(now));
        assert_eq!(j.time_left(now).as_millis(), 8_000);
        assert!(j.is_expired(now + 8_000));
        // A publisher 5 minutes slow: its deadline is long past on our clock.
        j.enqueued_unix_ms = now - 300_000;
        j.deadline_unix_ms = now - 290_000;
        assert!(j.clock_skewed(now) && !j.is_expired(now));
        assert_eq!(j.time_left(now).as_millis(), 10_000);
        // A publisher 5 minutes fast: enqueued in our future.
        j.enqueued_unix_ms = now + 300_000;
        j.deadline_unix_ms = now + 310_000;
        assert!(j.clock_skewed(now) && !j.is_expired(now));
    }

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
