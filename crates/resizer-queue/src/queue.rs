//! The queue seam: a bounded FIFO with explicit ack, of any [`QueueItem`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use resizer_core::ids::TenantId;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a queue carries. The queue reads two things of an item: its id
/// (a republish with the same id inside the dedupe window is dropped) and its
/// tenant (admission and turns are per tenant); the rest is the caller's.
pub trait QueueItem: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Unique per item; the backend's dedupe key.
    fn id(&self) -> &str;
    /// Whose item it is.
    fn tenant(&self) -> &TenantId;
}

/// Why a publish or pull failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue is at its bound; the caller should shed load (503).
    #[error("the job queue is full")]
    Full,
    /// The queue cannot be reached or has no leader (503).
    #[error("the job queue is unavailable: {0}")]
    Unavailable(String),
    /// The queue was shut down.
    #[error("the job queue is closed")]
    Closed,
}

impl resizer_core::PublicError for QueueError {
    fn code(&self) -> resizer_core::ErrorCode {
        match self {
            Self::Full => resizer_core::ErrorCode::Overloaded,
            Self::Unavailable(_) | Self::Closed => resizer_core::ErrorCode::DependencyUnavailable,
        }
    }

    /// The backend's words (servers, streams) stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Full => "the service is overloaded (job queue full); retry shortly".into(),
            Self::Unavailable(_) | Self::Closed => "the job queue is unavailable; retry shortly".into(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        Some(1)
    }
}

/// Acknowledges a delivered job; dropping without ack leaves redelivery to the backend.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Marks the job done so it is never redelivered.
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    /// Tells the backend the job is still being worked on, so it is not redelivered
    /// while a slow resize runs; a no-op where delivery is at most once.
    async fn in_progress(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

/// A job handed to a worker.
pub struct Delivery<M> {
    /// The job.
    pub job: M,
    /// How to acknowledge it.
    pub acker: Box<dyn Acker>,
}

impl<M> Delivery<M> {
    /// Acknowledges the job.
    pub async fn ack(self) -> Result<(), QueueError> {
        self.acker.ack().await
    }
}

/// A FIFO job queue implementation.
#[async_trait]
pub trait JobQueueBackend<M: QueueItem>: Send + Sync + 'static {
    /// Appends a job, or fails at once with `Full` when at the bound.
    async fn publish(&self, job: &M) -> Result<(), QueueError>;
    /// Waits up to `max_wait` for the oldest job.
    async fn pull(&self, max_wait: Duration) -> Result<Option<Delivery<M>>, QueueError>;
    /// Returns the number of jobs waiting, where the backend knows it cheaply.
    fn depth(&self) -> Option<u64>;
    /// Whether the client holds a live connection to the queue now. An API node
    /// cut off from it turns not-ready, so the load balancer routes around it
    /// instead of sending it requests it can only refuse.
    fn reachable(&self) -> bool {
        true
    }
}

/// The handle every role uses; counts publishes, rejections and depth for any backend.
pub struct JobQueue<M>(Arc<dyn JobQueueBackend<M>>);

impl<M> Clone for JobQueue<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M: QueueItem> JobQueue<M> {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn JobQueueBackend<M>>) -> Self {
        Self(backend)
    }

    /// Returns the embedded bounded in-process queue.
    pub fn memory(capacity: usize) -> Self {
        Self::new(Arc::new(crate::memory::MemoryJobQueue::new(capacity)))
    }

    /// Returns the embedded queue bounded by count and by expected wait
    /// (see [`crate::memory`]); `consumers` is the most jobs the workers hold at
    /// once (running and ready), since the measured time from pull to ack
    /// includes a ready job's wait for its thread (Little's law).
    pub fn memory_with_max_wait(capacity: usize, max_wait: Duration, consumers: usize) -> Self {
        Self::new(Arc::new(
            crate::memory::MemoryJobQueue::new(capacity).with_max_wait(max_wait, consumers),
        ))
    }

    /// Publishes a job.
    pub async fn publish(&self, job: &M) -> Result<(), QueueError> {
        let result = self.0.publish(job).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(QueueError::Full) => "full",
            Err(QueueError::Unavailable(_)) => "unavailable",
            Err(QueueError::Closed) => "closed",
        };
        metrics::counter!("resizer_queue_publish_total", "outcome" => outcome).increment(1);
        self.record_depth();
        result
    }

    /// Pulls the oldest job, waiting up to `max_wait`.
    pub async fn pull(&self, max_wait: Duration) -> Result<Option<Delivery<M>>, QueueError> {
        let result = self.0.pull(max_wait).await;
        self.record_depth();
        result
    }

    /// Returns the number of waiting jobs, if known.
    pub fn depth(&self) -> Option<u64> {
        self.0.depth()
    }

    /// Whether the queue is reachable; see [`JobQueueBackend::reachable`].
    pub fn reachable(&self) -> bool {
        self.0.reachable()
    }

    fn record_depth(&self) {
        if let Some(depth) = self.0.depth() {
            metrics::gauge!("resizer_queue_depth").set(depth as f64);
        }
    }
}
