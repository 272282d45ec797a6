//! One job's round trip as the handler sees it: join an identical job in
//! flight or stage the input, publish the descriptor, wait for the first
//! result until the deadline.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use resizer_core::capability::JobSigner;
use resizer_core::ids::{JobId, RequestId, TenantId};
use resizer_core::params::ResizeParams;
use resizer_core::time::now_unix_ms;
use resizer_core::trace::TraceContext;
use resizer_core::{ErrorCode, ImageFormat};
use resizer_queue::{JobQueue, QueueError};

use crate::job::{JobDescriptor, JobFailure, JobOutput, StagingLocator};
use crate::joins::{Joins, Part, SharedOutcome, join_key};
use crate::results::ResultWaiters;
use crate::staging::StagingArea;

/// Why a job produced no image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The staging area has no room for the input (retryable).
    #[error("the staging area is full")]
    StagingFull,
    /// The queue refused the job or could not be reached.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// No result arrived before the job's deadline.
    #[error("the resize did not finish before its deadline")]
    DeadlineExceeded,
    /// The waiter's channel closed without a result (this node is stopping).
    #[error("the job was lost")]
    Lost,
    /// The worker reported a failure meant for the client.
    #[error("{}", .0.message)]
    Failed(JobFailure),
}

impl resizer_core::PublicError for RunError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::StagingFull => ErrorCode::Overloaded,
            Self::Queue(q) => q.code(),
            Self::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Self::Lost => ErrorCode::Internal,
            Self::Failed(f) => f.code,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::StagingFull => "the service is overloaded (staging area full); retry shortly".into(),
            Self::Queue(q) => q.public_message(),
            // A worker's internal detail stays in the worker's log.
            Self::Lost => resizer_core::error_code::INTERNAL_MESSAGE.into(),
            Self::Failed(f) if f.code == ErrorCode::Internal => {
                resizer_core::error_code::INTERNAL_MESSAGE.into()
            }
            Self::DeadlineExceeded | Self::Failed(_) => self.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self.code() {
            ErrorCode::Overloaded | ErrorCode::DependencyUnavailable => Some(1),
            _ => None,
        }
    }
}

/// What a job needs from the request.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Owner of the input and the result; joins never cross tenants.
    pub tenant_id: TenantId,
    /// The originating request.
    pub request_id: RequestId,
    /// The request's trace; the job is a span under it.
    pub trace: Option<TraceContext>,
    /// Validated parameters.
    pub params: ResizeParams,
    /// Negotiated output format.
    pub output: ImageFormat,
    /// Decode at the smallest scale that covers the output, whatever the
    /// worker's own setting (the tenant's `shrink_on_load` flag).
    pub fast_shrink_on_load: bool,
    /// The input image.
    pub input: Bytes,
    /// When the caller stops waiting.
    pub deadline: Instant,
}

/// A job's image and whether this request only shared another's job.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The image and its metadata.
    pub output: JobOutput,
    /// The request followed an identical job in flight and used no CPU of its own.
    pub joined: bool,
}

/// Runs jobs for one API node; cheap to share.
pub struct JobRunner {
    /// How workers reach this node: its name in process, its internal URL when distributed.
    reachable_at: String,
    /// Signs each job's token for workers in other processes; none in process.
    signer: Option<JobSigner>,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    queue: JobQueue<JobDescriptor>,
    /// Present when identical concurrent requests of a tenant share one job.
    joins: Option<Arc<Joins>>,
}

impl JobRunner {
    /// A runner publishing to `queue` and staging under `reachable_at`.
    pub fn new(
        reachable_at: String,
        queue: JobQueue<JobDescriptor>,
        staging: Arc<StagingArea>,
        results: Arc<ResultWaiters>,
    ) -> Self {
        Self {
            reachable_at,
            signer: None,
            staging,
            results,
            queue,
            joins: None,
        }
    }

    /// Gives each job a token from `signer`, for workers in other processes.
    pub fn with_signer(mut self, signer: Option<JobSigner>) -> Self {
        self.signer = signer;
        self
    }

    /// Lets identical concurrent requests of a tenant share one job.
    pub fn with_joins(mut self, on: bool) -> Self {
        self.joins = on.then(Joins::new);
        self
    }

    /// Jobs waiting in the queue, when the backend knows cheaply.
    pub fn queue_depth(&self) -> Option<u64> {
        self.queue.depth()
    }

    /// Whether the job queue is reachable from this node.
    pub fn queue_reachable(&self) -> bool {
        self.queue.reachable()
    }

    /// Input bytes staged on this node.
    pub fn staged_bytes(&self) -> u64 {
        self.staging.used()
    }

    /// Runs `request`'s job, or shares an identical one in flight.
    pub async fn run(&self, request: JobRequest) -> Result<Ran, RunError> {
        let Some(joins) = &self.joins else {
            return self.run_alone(request).await.map(|output| Ran {
                output,
                joined: false,
            });
        };
        // Hashing the body is the join's only cost, so it is paid only when joining is on.
        let key = join_key(
            &request.tenant_id,
            &request.input,
            &request.params,
            request.output,
        );
        loop {
            match joins.enter(key) {
                Part::Leader(leader) => {
                    let outcome: SharedOutcome = self.run_alone(request).await;
                    leader.complete(&outcome);
                    return outcome.map(|output| Ran {
                        output,
                        joined: false,
                    });
                }
                Part::Follower(mut rx) => {
                    metrics::counter!("resizer_api_joins_total").increment(1);
                    let waited =
                        tokio::time::timeout_at(request.deadline.into(), rx.wait_for(|v| v.is_some())).await;
                    match waited {
                        Ok(Ok(shared)) => {
                            let shared = shared.clone().unwrap_or(Err(RunError::Lost));
                            return shared.map(|output| Ran { output, joined: true });
                        }
                        // The leader's client went away before an outcome: lead ourselves.
                        Ok(Err(_)) => continue,
                        Err(_) => return Err(RunError::DeadlineExceeded),
                    }
                }
            }
        }
    }

    /// Stages the input, publishes a small descriptor and waits for the first
    /// result up to the deadline. Dropping the future removes the staged bytes
    /// and the waiter, so an orphaned job is skipped by the worker.
    async fn run_alone(&self, request: JobRequest) -> Result<JobOutput, RunError> {
        let job_id = JobId::random();
        let _staged = self
            .staging
            .put(job_id.to_string(), request.input)
            .map_err(|_| RunError::StagingFull)?;
        let (result_rx, _waiter) = self.results.register(job_id.clone());
        let now = now_unix_ms();
        let remaining = request.deadline.saturating_duration_since(Instant::now());
        let job = JobDescriptor {
            job_id: job_id.clone(),
            tenant_id: request.tenant_id,
            request_id: request.request_id,
            traceparent: request.trace.map(|t| t.child().header()),
            staging: StagingLocator {
                node: self.reachable_at.clone(),
                token: self
                    .signer
                    .as_ref()
                    .map(|s| s.token(job_id.as_str()))
                    .unwrap_or_default(),
            },
            params: request.params,
            output: request.output,
            fast_shrink_on_load: request.fast_shrink_on_load,
            deadline_unix_ms: now + remaining.as_millis() as u64,
            enqueued_unix_ms: now,
        };
        self.queue.publish(&job).await?;
        match tokio::time::timeout_at(request.deadline.into(), result_rx).await {
            Ok(Ok(result)) => result.map_err(RunError::Failed),
            Ok(Err(_)) => Err(RunError::Lost),
            Err(_) => Err(RunError::DeadlineExceeded),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::in_process::InProcessTransport;
    use crate::job::JobOutputMeta;
    use crate::transport::{ResultSink, StagingClient};

    fn runner(joins: bool) -> (JobRunner, JobQueue<JobDescriptor>, Arc<InProcessTransport>) {
        let queue = JobQueue::memory(16);
        let (staging, results) = (StagingArea::new(1 << 20), ResultWaiters::new());
        let transport = Arc::new(InProcessTransport {
            node: "n1".into(),
            staging: staging.clone(),
            results: results.clone(),
        });
        let runner = JobRunner::new("n1".into(), queue.clone(), staging, results).with_joins(joins);
        (runner, queue, transport)
    }

    fn request(input: &'static [u8], deadline: Duration) -> JobRequest {
        let job = crate::testing::sample_job();
        JobRequest {
            tenant_id: job.tenant_id,
            request_id: job.request_id,
            trace: None,
            params: job.params,
            output: job.output,
            fast_shrink_on_load: false,
            input: Bytes::from_static(input),
            deadline: Instant::now() + deadline,
        }
    }

    /// Plays a worker for `n` jobs: echoes the input's length as the width, or fails on "bad".
    fn echo_worker(
        queue: JobQueue<JobDescriptor>,
        t: Arc<InProcessTransport>,
        n: usize,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for _ in 0..n {
                let d = queue.pull(Duration::from_secs(5)).await.unwrap().unwrap();
                let input = t.fetch(&d.job).await.unwrap().unwrap();
                let result = if &input[..] == b"bad" {
                    Err(JobFailure {
                        code: ErrorCode::UndecodableImage,
                        message: "not an image".into(),
                    })
                } else {
                    Ok(JobOutput {
                        bytes: input.clone(),
                        meta: JobOutputMeta {
                            format: d.job.output,
                            width: input.len() as u32,
                            height: 1,
                            input_format: d.job.output,
                            input_width: 1,
                            input_height: 1,
                            cpu_micros: 7,
                            worker: "w".into(),
                            enqueued_unix_ms: d.job.enqueued_unix_ms,
                            started_unix_ms: 0,
                            finished_unix_ms: 0,
                        },
                    })
                };
                t.deliver(&d.job, result).await.unwrap();
                d.ack().await.unwrap();
            }
        })
    }

    #[tokio::test]
    async fn test_a_job_goes_round_and_leaves_nothing_staged() {
        let (runner, queue, t) = runner(false);
        let worker = echo_worker(queue, t.clone(), 2);
        let ran = runner
            .run(request(b"12345", Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!((ran.output.meta.width, ran.joined), (5, false));
        let failed = runner.run(request(b"bad", Duration::from_secs(5))).await;
        assert!(matches!(failed, Err(RunError::Failed(f)) if f.code == ErrorCode::UndecodableImage));
        worker.await.unwrap();
        assert_eq!(runner.staged_bytes(), 0);
        assert!(t.results.is_empty());
    }

    #[tokio::test]
    async fn test_the_job_is_a_span_of_the_request_trace() {
        let (runner, queue, _t) = runner(false);
        let trace = TraceContext::root();
        let mut req = request(b"x", Duration::from_millis(200));
        req.trace = Some(trace);
        let run = tokio::spawn(async move { runner.run(req).await });
        let d = queue.pull(Duration::from_secs(5)).await.unwrap().unwrap();
        let job_trace = TraceContext::parse(d.job.traceparent.as_deref().unwrap()).unwrap();
        assert_eq!(job_trace.trace_id, trace.trace_id);
        assert_ne!(job_trace.span_id, trace.span_id);
        assert!(matches!(run.await.unwrap(), Err(RunError::DeadlineExceeded)));
    }

    #[tokio::test]
    async fn test_no_worker_means_deadline_and_the_input_is_released() {
        let (runner, _queue, _t) = runner(false);
        let err = runner
            .run(request(b"abc", Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::DeadlineExceeded), "{err:?}");
        assert_eq!(runner.staged_bytes(), 0);
    }

    #[tokio::test]
    async fn test_identical_requests_share_one_job() {
        let (runner, queue, t) = runner(true);
        let base = request(b"same", Duration::from_secs(5));
        // Polled in order: the leader stages and publishes, the second finds it in
        // flight and follows, then the worker serves the one job.
        let serve = async {
            tokio::task::yield_now().await;
            echo_worker(queue.clone(), t, 1).await.unwrap();
        };
        let (a, b, ()) = tokio::join!(runner.run(base.clone()), runner.run(base.clone()), serve);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.output.bytes, b.output.bytes);
        assert!(a.joined != b.joined, "one leads, one follows");
        assert_eq!(queue.depth(), Some(0));
    }
}
