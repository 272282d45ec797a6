//! The embedded queue: a bounded in-process queue, FIFO per tenant and
//! round-robin across tenants (fair queuing): a tenant with one job waiting
//! is served after at most one job of each other waiting tenant, however
//! many a flooding tenant has queued.
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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use resizer_core::ids::TenantId;
use tokio::sync::Notify;

use crate::queue::{Acker, Delivery, JobQueueBackend, QueueError, QueueItem};

/// A bounded multi-producer, multi-consumer queue, fair between tenants.
pub struct MemoryJobQueue<M> {
    capacity: usize,
    /// Held only to move one job in or out, never across an await.
    state: Mutex<FairQueue<M>>,
    /// One permit per published job, so a consumer that starts waiting after
    /// the publish still wakes.
    published: Notify,
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

/// Per-tenant FIFOs and the round-robin turn over tenants with waiting jobs.
struct FairQueue<M> {
    by_tenant: HashMap<TenantId, VecDeque<M>>,
    turn: VecDeque<TenantId>,
    len: usize,
}

impl<M> Default for FairQueue<M> {
    fn default() -> Self {
        Self {
            by_tenant: HashMap::new(),
            turn: VecDeque::new(),
            len: 0,
        }
    }
}

impl<M: QueueItem> FairQueue<M> {
    fn push(&mut self, job: M) {
        let queue = self.by_tenant.entry(job.tenant().clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(job.tenant().clone());
        }
        queue.push_back(job);
        self.len += 1;
    }

    /// Jobs that would be served before a job `tenant` publishes now: its own
    /// waiting ones, and of every other tenant at most one per round until
    /// this one's turn. Admission counts these, not the whole depth, so a
    /// tenant queueing many (or heavy) jobs makes only itself wait, as the
    /// round-robin order does.
    fn ahead_of(&self, tenant: &TenantId) -> usize {
        let own = self.by_tenant.get(tenant).map_or(0, VecDeque::len);
        let others: usize = self
            .by_tenant
            .iter()
            .filter(|(t, _)| *t != tenant)
            .map(|(_, q)| q.len().min(own + 1))
            .sum();
        own + others
    }

    fn pop(&mut self) -> Option<M> {
        let tenant = self.turn.pop_front()?;
        let queue = self.by_tenant.get_mut(&tenant)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.by_tenant.remove(&tenant);
        } else {
            self.turn.push_back(tenant);
        }
        self.len -= usize::from(job.is_some());
        job
    }
}

impl<M: QueueItem> MemoryJobQueue<M> {
    /// Creates a queue that holds at most `capacity` jobs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(FairQueue::default()),
            published: Notify::new(),
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
        self.wait_behind(self.depth().unwrap_or(0))
    }

    /// The wait behind `queued` jobs at the measured service time.
    fn wait_behind(&self, queued: u64) -> Duration {
        expected_wait(
            queued,
            Duration::from_micros(self.service_micros.load(Ordering::Relaxed)),
            self.wait.map_or(1, |w| w.consumers),
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
        let average = next_average(self.service_micros.load(Ordering::Relaxed), observed);
        self.service_micros.store(average, Ordering::Relaxed);
        metrics::gauge!("resizer_queue_service_seconds").set(average as f64 / 1e6);
        Ok(())
    }
}

#[async_trait]
impl<M: QueueItem> JobQueueBackend<M> for MemoryJobQueue<M> {
    async fn publish(&self, job: &M) -> Result<(), QueueError> {
        // One lock for the check and the push, so the bounds hold for the job admitted.
        let refused = {
            let mut state = self.state.lock().map_err(|_| QueueError::Closed)?;
            let ahead = state.ahead_of(job.tenant()) as u64;
            let wait = self.wait.map(|bound| (bound, self.wait_behind(ahead)));
            if let Some((_, wait)) = wait {
                metrics::gauge!("resizer_queue_expected_wait_seconds").set(wait.as_secs_f64());
            }
            if wait.is_some_and(|(bound, wait)| wait > bound.max_wait) {
                Some("wait")
            } else if state.len >= self.capacity {
                Some("count")
            } else {
                state.push(job.clone());
                None
            }
        };
        if let Some(bound) = refused {
            metrics::counter!("resizer_queue_refusals_total", "bound" => bound).increment(1);
            return Err(QueueError::Full);
        }
        self.published.notify_one();
        Ok(())
    }

    async fn pull(&self, max_wait: Duration) -> Result<Option<Delivery<M>>, QueueError> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let job = self.state.lock().map_err(|_| QueueError::Closed)?.pop();
            if let Some(job) = job {
                return Ok(Some(Delivery {
                    job,
                    acker: Box::new(TimedAcker {
                        pulled: Instant::now(),
                        service_micros: self.service_micros.clone(),
                    }),
                }));
            }
            // A publish between the check above and this wait left a permit.
            if tokio::time::timeout_at(deadline, self.published.notified())
                .await
                .is_err()
            {
                return Ok(None);
            }
        }
    }

    fn depth(&self) -> Option<u64> {
        self.state.lock().ok().map(|s| s.len as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestItem, sample_item as job};

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
    async fn test_memory_queue_takes_tenants_in_turn() {
        let q = MemoryJobQueue::new(100);
        let flood = TenantId::random();
        let calm = TenantId::random();
        let mut published = Vec::new();
        for i in 0..6 {
            let mut j = job();
            j.tenant_id = flood.clone();
            published.push(j.clone());
            q.publish(&j).await.unwrap();
            if i == 3 {
                // The calm tenant arrives behind four of the flood's jobs.
                let mut c = job();
                c.tenant_id = calm.clone();
                published.push(c.clone());
                q.publish(&c).await.unwrap();
            }
        }
        let mut order = Vec::new();
        while let Some(d) = q.pull(Duration::from_millis(5)).await.unwrap() {
            order.push(d.job);
        }
        assert_eq!(order.len(), 7);
        // One flood job, then the calm tenant's, then the rest of the flood in order.
        assert_eq!(order[0], published[0]);
        assert_eq!(order[1].tenant_id, calm);
        let rest: Vec<_> = published
            .iter()
            .filter(|j| j.tenant_id == flood)
            .skip(1)
            .collect();
        assert_eq!(order[2..].iter().collect::<Vec<_>>(), rest);
        assert_eq!(q.depth(), Some(0));
    }

    #[tokio::test]
    async fn test_memory_queue_wakes_a_waiting_consumer() {
        let q = std::sync::Arc::new(MemoryJobQueue::new(4));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.pull(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let j = job();
        q.publish(&j).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.unwrap().unwrap().job, j);
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

    #[tokio::test]
    async fn test_wait_bound_is_per_tenant_as_the_round_robin_is() {
        let q = MemoryJobQueue::new(100).with_max_wait(Duration::from_millis(30), 1);
        let heavy = job();
        let heavy_job = || TestItem {
            id: resizer_core::ids::JobId::random().to_string(),
            ..heavy.clone()
        };
        for _ in 0..6 {
            q.publish(&heavy_job()).await.unwrap();
        }
        // The heavy tenant's jobs take 10 ms each: 5 of its own waiting = 50 ms > 30 ms.
        let d = q.pull(Duration::from_millis(10)).await.unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        d.ack().await.unwrap();
        assert_eq!(q.publish(&heavy_job()).await, Err(QueueError::Full));
        // Another tenant waits behind one of them, not all five: admitted.
        q.publish(&job()).await.unwrap();
        let served: Vec<_> = [
            q.pull(Duration::ZERO).await.unwrap().unwrap().job.tenant_id,
            q.pull(Duration::ZERO).await.unwrap().unwrap().job.tenant_id,
        ]
        .into();
        assert!(served.iter().any(|t| *t != heavy.tenant_id), "{served:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn test_memory_queue_pull_times_out_empty() {
        let q = MemoryJobQueue::<TestItem>::new(2);
        assert!(q.pull(Duration::from_millis(50)).await.unwrap().is_none());
    }
}
