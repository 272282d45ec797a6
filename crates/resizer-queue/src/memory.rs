//! The embedded queue: a bounded in-process FIFO.
//!
//! Delivery is at-most-once: a job is gone from the queue once pulled, and ack
//! is a no-op. That is sound in one process, where the worker and the waiting
//! request die together; the distributed backend provides redelivery.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};

use crate::job::JobDescriptor;
use crate::queue::{Acker, Delivery, JobQueueBackend, QueueError};

/// A bounded multi-producer, multi-consumer FIFO.
pub struct MemoryJobQueue {
    sender: mpsc::Sender<JobDescriptor>,
    /// Consumers take turns on the one receiver; the lock is held only while waiting for the head.
    receiver: Mutex<mpsc::Receiver<JobDescriptor>>,
}

impl MemoryJobQueue {
    /// Creates a queue that holds at most `capacity` jobs.
    pub fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Self {
            sender,
            receiver: Mutex::new(receiver),
        }
    }
}

struct NoopAcker;

#[async_trait]
impl Acker for NoopAcker {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        Ok(())
    }
}

#[async_trait]
impl JobQueueBackend for MemoryJobQueue {
    async fn publish(&self, job: &JobDescriptor) -> Result<(), QueueError> {
        self.sender.try_send(job.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    async fn pull(&self, max_wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let mut receiver = match tokio::time::timeout(max_wait, self.receiver.lock()).await {
            Ok(guard) => guard,
            Err(_) => return Ok(None),
        };
        match tokio::time::timeout(max_wait, receiver.recv()).await {
            Ok(Some(job)) => Ok(Some(Delivery {
                job,
                acker: Box::new(NoopAcker),
            })),
            Ok(None) => Err(QueueError::Closed),
            Err(_) => Ok(None),
        }
    }

    fn depth(&self) -> Option<u64> {
        Some((self.sender.max_capacity() - self.sender.capacity()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::StagingLocator;
    use resizer_core::ImageFormat;
    use resizer_core::ids::{JobId, RequestId, TenantId};
    use resizer_core::params::{Fit, FormatChoice, ResizeParams};

    fn job() -> JobDescriptor {
        JobDescriptor {
            job_id: JobId::random(),
            tenant_id: TenantId::random(),
            request_id: RequestId::random(),
            staging: StagingLocator {
                node: "local".into(),
                key: "k".into(),
            },
            params: ResizeParams {
                width: Some(10),
                height: None,
                fit: Fit::Contain,
                format: FormatChoice::Auto,
                quality: None,
                enlarge: false,
            },
            output: ImageFormat::Jpeg,
            deadline_unix_ms: u64::MAX,
            enqueued_unix_ms: 0,
        }
    }

    #[tokio::test]
    async fn test_memory_queue_is_fifo() {
        let q = MemoryJobQueue::new(8);
        let jobs: Vec<_> = (0..5).map(|_| job()).collect();
        for j in &jobs {
            q.publish(j).await.unwrap();
        }
        assert_eq!(q.depth(), Some(5));
        for j in &jobs {
            let d = q.pull(Duration::from_millis(10)).await.unwrap().unwrap();
            assert_eq!(&d.job, j);
            d.ack().await.unwrap();
        }
        assert_eq!(q.depth(), Some(0));
    }

    #[tokio::test]
    async fn test_memory_queue_full_refuses_at_once() {
        let q = MemoryJobQueue::new(2);
        q.publish(&job()).await.unwrap();
        q.publish(&job()).await.unwrap();
        assert_eq!(q.publish(&job()).await, Err(QueueError::Full));
    }

    #[tokio::test(start_paused = true)]
    async fn test_memory_queue_pull_times_out_empty() {
        let q = MemoryJobQueue::new(2);
        assert!(q.pull(Duration::from_millis(50)).await.unwrap().is_none());
    }

    #[test]
    fn test_descriptor_is_small() {
        // As published in distributed mode: the locator names an API node's internal URL.
        let mut j = job();
        j.staging = StagingLocator {
            node: "http://10.20.30.40:8082".into(),
            key: j.job_id.to_string(),
        };
        j.params.height = Some(320);
        j.params.quality = Some(80);
        let bytes = serde_json::to_vec(&j).unwrap();
        println!("descriptor: {} bytes", bytes.len());
        assert!(bytes.len() < 512, "descriptor is {} bytes", bytes.len());
    }
}
