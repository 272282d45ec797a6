//! The pull loop of a worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use resizer_core::time::now_unix_ms;
use resizer_core::trace::TraceContext;
use resizer_core::{ErrorCode, PublicError};
use resizer_jobs::{JobDescriptor, JobFailure, JobOutput, JobOutputMeta, ResultSink, StagingClient};
use resizer_queue::JobQueue;
use tracing::Instrument;

/// A job as the queue hands it over.
type Delivery = resizer_queue::Delivery<JobDescriptor>;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::pool::{ImagingPool, PoolError, PoolOutput};
use resizer_imaging::ShrinkOnLoad;

/// How often a worker tells the queue it is still working on a job; well under the
/// queue's ack wait (`queue.ack_wait_ms`, 2,000 ms by default).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// A name for logs, metrics and usage records.
    pub name: String,
    /// How long one pull waits for a job before checking for shutdown.
    pub pull_wait: Duration,
}

/// A worker: pulls jobs while it has free imaging threads.
pub struct Worker {
    config: WorkerConfig,
    queue: JobQueue<JobDescriptor>,
    staging: Arc<dyn StagingClient>,
    sink: Arc<dyn ResultSink>,
    pool: Arc<ImagingPool>,
}

impl Worker {
    /// Creates a worker over its queue, transports and pool.
    pub fn new(
        config: WorkerConfig,
        queue: JobQueue<JobDescriptor>,
        staging: Arc<dyn StagingClient>,
        sink: Arc<dyn ResultSink>,
        pool: Arc<ImagingPool>,
    ) -> Self {
        Self {
            config,
            queue,
            staging,
            sink,
            pool,
        }
    }

    /// Runs until `shutdown` is cancelled, then waits for jobs in progress.
    ///
    /// Each free slot pulls on its own, so an idle worker has one pull waiting per
    /// slot: the queue spreads them over its streams (ADR 0009) instead of one pull
    /// covering every stream and handing back what reaches it twice.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = this.pool.capacity();
        let permits = Arc::new(Semaphore::new(slots));
        loop {
            // Hold a bounded few jobs beyond the running ones: enough that a thread
            // never idles while the next job is pulled and its input fetched, few
            // enough that a job waits here at most one resize instead of going to
            // another worker.
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                () = shutdown.cancelled() => break,
            };
            let (this, shutdown) = (this.clone(), shutdown.clone());
            tokio::spawn(async move {
                this.pull_and_handle(&shutdown).await;
                drop(permit);
            });
        }
        // Drain: wait until every permit is back.
        let _ = permits.acquire_many(slots as u32).await;
        tracing::info!(worker = %this.config.name, "worker stopped");
    }

    /// One slot's turn: one pull, and the job if one came.
    async fn pull_and_handle(&self, shutdown: &CancellationToken) {
        let pulled = tokio::select! {
            r = self.queue.pull(self.config.pull_wait) => r,
            () = shutdown.cancelled() => return,
        };
        match pulled {
            Ok(Some(delivery)) => self.handle(delivery).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, worker = %self.config.name, "pull failed; backing off");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// One job, in a span of its request's trace.
    async fn handle(&self, delivery: Delivery) {
        let job = &delivery.job;
        let trace_id = job
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse)
            .map(|t| t.trace_id_hex());
        let span = tracing::info_span!(
            "job",
            job_id = %job.job_id,
            request_id = %job.request_id,
            trace_id = trace_id.as_deref().unwrap_or("none"),
        );
        self.handle_in_span(delivery).instrument(span).await;
    }

    /// One job: skip it if expired or orphaned, else resize and deliver; ack either way.
    async fn handle_in_span(&self, delivery: Delivery) {
        let job = delivery.job.clone();
        let now = now_unix_ms();
        metrics::histogram!("resizer_worker_queue_wait_seconds")
            .record(now.saturating_sub(job.enqueued_unix_ms) as f64 / 1000.0);
        if job.clock_skewed(now) {
            metrics::counter!("resizer_worker_clock_skewed_jobs_total").increment(1);
        }
        if job.is_expired(now) {
            self.finish(delivery, "expired").await;
            return;
        }
        let input: Bytes = match self.staging.fetch(&job).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                // The request was cancelled or already answered.
                self.finish(delivery, "orphaned").await;
                return;
            }
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %e, "staging fetch failed; job dropped");
                self.finish(delivery, "orphaned").await;
                return;
            }
        };
        let started_unix_ms = now_unix_ms();
        let outcome = self.resize(&delivery, input).await;
        let result = match outcome {
            Ok(PoolOutput {
                result: Ok(r),
                cpu_micros,
            }) => Ok(self.output(&job, r, cpu_micros, started_unix_ms)),
            Ok(PoolOutput { result: Err(e), .. }) => Err(self.failure(&job, &e)),
            Err(e) => Err(self.failure(&job, &e)),
        };
        let label = if result.is_ok() { "succeeded" } else { "failed" };
        if let Err(e) = self.sink.deliver(&job, result).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "result delivery failed");
        }
        self.finish(delivery, label).await;
    }

    /// Runs the job on the imaging pool until its deadline, telling the queue
    /// we are still at it well within its ack wait, so only a worker that died
    /// loses the job to redelivery.
    async fn resize(&self, delivery: &Delivery, input: Bytes) -> Result<PoolOutput, PoolError> {
        let job = &delivery.job;
        let _in_flight =
            resizer_telemetry::GaugeGuard::raise(metrics::gauge!("resizer_worker_jobs_in_flight"));
        let deadline = Instant::now() + job.time_left(now_unix_ms());
        let work = self.pool.run(
            input,
            job.params.clone(),
            job.output,
            job.fast_shrink_on_load.then_some(ShrinkOnLoad::Fast),
            Some(deadline),
        );
        tokio::pin!(work);
        let mut heartbeat = tokio::time::interval(PROGRESS_EVERY);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                outcome = &mut work => return outcome,
                _ = heartbeat.tick() => {
                    if let Err(e) = delivery.acker.in_progress().await {
                        tracing::debug!(job_id = %job.job_id, error = %e, "progress ack failed");
                    }
                }
            }
        }
    }

    /// The image and everything the API node meters about it.
    fn output(
        &self,
        job: &JobDescriptor,
        r: resizer_imaging::ResizeOutput,
        cpu_micros: u64,
        started_unix_ms: u64,
    ) -> JobOutput {
        JobOutput {
            bytes: Bytes::from(r.bytes),
            meta: JobOutputMeta {
                format: r.format,
                width: r.width,
                height: r.height,
                input_format: r.input.format,
                input_width: r.input.width,
                input_height: r.input.height,
                cpu_micros,
                worker: self.config.name.clone(),
                enqueued_unix_ms: job.enqueued_unix_ms,
                started_unix_ms,
                finished_unix_ms: now_unix_ms(),
            },
        }
    }

    /// The failure the client hears; internal detail is logged here, once.
    fn failure(&self, job: &JobDescriptor, e: &impl PublicError) -> JobFailure {
        if e.code() == ErrorCode::Internal {
            tracing::error!(job_id = %job.job_id, request_id = %job.request_id, error = %e, "job failed");
        }
        JobFailure::of(e)
    }

    async fn finish(&self, delivery: Delivery, outcome: &'static str) {
        metrics::counter!("resizer_worker_jobs_total", "outcome" => outcome).increment(1);
        if let Err(e) = delivery.ack().await {
            tracing::warn!(error = %e, "ack failed; the job may be redelivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use resizer_imaging::Limits;
    use resizer_jobs::testing::sample_job as job;
    use resizer_jobs::{JobResult, TransportError};

    use super::*;

    /// Staged input that never arrives: every job the worker pulls stays held.
    #[derive(Default)]
    struct Stalled {
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl StagingClient for Stalled {
        async fn fetch(&self, _: &JobDescriptor) -> Result<Option<Bytes>, TransportError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
    }

    #[async_trait]
    impl ResultSink for Stalled {
        async fn deliver(&self, _: &JobDescriptor, _: JobResult) -> Result<(), TransportError> {
            Ok(())
        }
    }

    /// Pulls with `jobs_held` over one imaging thread; returns how many jobs it took.
    async fn jobs_taken(jobs_held: usize) -> (usize, Option<u64>) {
        let queue = JobQueue::memory(16);
        for _ in 0..6 {
            queue.publish(&job()).await.unwrap();
        }
        let stalled = Arc::new(Stalled::default());
        let worker = Worker::new(
            WorkerConfig {
                name: "w".into(),
                pull_wait: Duration::from_millis(20),
            },
            queue.clone(),
            stalled.clone(),
            stalled.clone(),
            Arc::new(ImagingPool::start(
                1,
                jobs_held.saturating_sub(1),
                Limits::default(),
            )),
        );
        let run = tokio::spawn(worker.run(CancellationToken::new()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        run.abort();
        (stalled.fetches.load(Ordering::SeqCst), queue.depth())
    }

    #[tokio::test]
    async fn test_worker_holds_its_ready_jobs_and_no_more() {
        // One running and one ready: two taken, four left for other workers.
        assert_eq!(jobs_taken(2).await, (2, Some(4)));
        assert_eq!(jobs_taken(1).await, (1, Some(5)));
        // Never fewer than one per thread.
        assert_eq!(jobs_taken(0).await, (1, Some(5)));
    }
}
