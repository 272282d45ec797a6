//! The embedded queue: a bounded in-process FIFO.
//!
//! Delivery is at-most-once: a job is gone from the queue once pulled, and ack
//! only feeds the drain-rate estimate. That is sound in one process, where the
//! worker and the waiting request die together; the distributed backend
//! provides redelivery.
//!
//! Two bounds: a count (memory, and the last word) and, optionally, a wait: a
//! job is refused when the jobs ahead of it would take longer than `max_wait`
//! to drain at the measured rate. A count alone means 40 ms of waiting for
//! thumbnails of 256 KB photos and 300 ms for 2 MB ones; the wait bound keeps
//! the same latency budget for both, so the queue neither refuses small jobs
//! while the machine has room nor lets big ones eat the SLA.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};

use crate::job::JobDescriptor;
use crate::queue::{Acker, Delivery, JobQueueBackend, QueueError};

/// A bounded multi-producer, multi-consumer FIFO.
pub struct MemoryJobQueue {
    sender: mpsc::Sender<JobDescriptor>,
    /// Consumers take turns on the one receiver; the lock is held only while waiting for the head.
    receiver: Mutex<mpsc::Receiver<JobDescriptor>>,
    wait: Option<WaitBound>,
    /// Moving average of pull-to-ack time, microseconds; 0 until the first ack.
    service_micros: Arc<AtomicU64>,
}

/// The optional wait bound and the consumer count that drains the queue.
#[derive(Debug, Clone, Copy)]
struct WaitBound {
    max_wait: Duration,
    consumers: usize,
}

impl MemoryJobQueue {
    /// Creates a queue that holds at most `capacity` jobs.
    pub fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Self {
            sender,
            receiver: Mutex::new(receiver),
            wait: None,
            service_micros: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Also refuses a job when the jobs already waiting would take more than
    /// `max_wait` to drain through `consumers` parallel consumers.
    pub fn with_max_wait(mut self, max_wait: Duration, consumers: usize) -> Self {
        self.wait = Some(WaitBound {
            max_wait,
            consumers: consumers.max(1),
        });
        self
    }

    /// The wait a job published now would see, from the measured service time.
    pub fn expected_wait(&self) -> Duration {
        let consumers = self.wait.map_or(1, |w| w.consumers);
        expected_wait(
            self.depth().unwrap_or(0),
            Duration::from_micros(self.service_micros.load(Ordering::Relaxed)),
            consumers,
        )
    }
}

/// How long `queued` jobs take to drain through `consumers` at `service` each.
pub fn expected_wait(queued: u64, service: Duration, consumers: usize) -> Duration {
    let consumers = u32::try_from(consumers.max(1)).unwrap_or(u32::MAX);
    service.saturating_mul(u32::try_from(queued).unwrap_or(u32::MAX)) / consumers
}

/// Folds one observed service time into the moving average (weight 1/8, so
/// the estimate follows a change of image mix within a few dozen jobs).
pub fn next_average(average_micros: u64, observed_micros: u64) -> u64 {
    if average_micros == 0 {
        observed_micros.max(1)
    } else {
        (average_micros.saturating_mul(7).saturating_add(observed_micros) / 8).max(1)
    }
}

/// Records the job's time from pull to ack: the rate the queue drains at.
struct TimedAcker {
    pulled: Instant,
    service_micros: Arc<AtomicU64>,
}

#[async_trait]
impl Acker for TimedAcker {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        let observed = u64::try_from(self.pulled.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Racing updates may lose one sample; the average does not need them all.
        let average = self.service_micros.load(Ordering::Relaxed);
        self.service_micros
            .store(next_average(average, observed), Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl JobQueueBackend for MemoryJobQueue {
    async fn publish(&self, job: &JobDescriptor) -> Result<(), QueueError> {
        if let Some(bound) = self.wait
            && self.expected_wait() > bound.max_wait
        {
            return Err(QueueError::Full);
        }
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
                acker: Box::new(TimedAcker {
                    pulled: Instant::now(),
                    service_micros: self.service_micros.clone(),
                }),
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

    #[test]
    fn test_expected_wait_and_average() {
        assert_eq!(
            expected_wait(10, Duration::from_millis(5), 2),
            Duration::from_millis(25)
        );
        assert_eq!(expected_wait(0, Duration::from_millis(5), 2), Duration::ZERO);
        assert_eq!(expected_wait(3, Duration::ZERO, 2), Duration::ZERO);
        assert_eq!(next_average(0, 800), 800);
        assert_eq!(next_average(800, 1600), 900);
        assert_eq!(next_average(1, 0), 1);
    }

    #[tokio::test]
    async fn test_memory_queue_refuses_beyond_its_wait_bound() {
        let q = MemoryJobQueue::new(100).with_max_wait(Duration::from_millis(30), 2);
        // Nothing measured yet: only the count bounds.
        for _ in 0..10 {
            q.publish(&job()).await.unwrap();
        }
        // One job that took 10 ms from pull to ack: 9 waiting × 10 ms / 2 = 45 ms > 30 ms.
        let d = q.pull(Duration::from_millis(10)).await.unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        d.ack().await.unwrap();
        let wait = q.expected_wait();
        assert!(wait >= Duration::from_millis(45), "{wait:?}");
        assert_eq!(q.publish(&job()).await, Err(QueueError::Full));
        // Drained to 4 waiting: ~20 ms ahead, admitted again.
        for _ in 0..5 {
            q.pull(Duration::from_millis(10)).await.unwrap().unwrap();
        }
        assert!(
            q.expected_wait() <= Duration::from_millis(30),
            "{:?}",
            q.expected_wait()
        );
        q.publish(&job()).await.unwrap();
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
