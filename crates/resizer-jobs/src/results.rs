//! Requests waiting for their job's result, by job id.
//!
//! The first result for a job wins; later ones (a redelivered job finishing
//! twice) are counted and dropped. A waiter that went away (client gone,
//! deadline passed) simply has no entry any more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::job::JobResult;
use resizer_core::ids::JobId;
use tokio::sync::oneshot;

/// The table of waiting requests.
#[derive(Default)]
pub struct ResultWaiters {
    inner: Mutex<HashMap<JobId, oneshot::Sender<JobResult>>>,
}

/// Removes the waiter when the request ends.
pub struct WaiterGuard {
    waiters: Arc<ResultWaiters>,
    job_id: JobId,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.job_id);
    }
}

impl ResultWaiters {
    /// Creates an empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, oneshot::Sender<JobResult>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a waiter for `job_id`.
    pub fn register(self: &Arc<Self>, job_id: JobId) -> (oneshot::Receiver<JobResult>, WaiterGuard) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(job_id.clone(), tx);
        (
            rx,
            WaiterGuard {
                waiters: self.clone(),
                job_id,
            },
        )
    }

    /// Hands a result to its waiter; returns `false` if there is none (duplicate or gone).
    pub fn complete(&self, job_id: &JobId, result: JobResult) -> bool {
        let sender = self.lock().remove(job_id);
        match sender {
            Some(tx) => tx.send(result).is_ok(),
            None => {
                metrics::counter!("resizer_api_results_unclaimed_total").increment(1);
                false
            }
        }
    }

    /// Returns the number of waiting requests.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobFailure;
    use resizer_core::ErrorCode;

    fn failure() -> JobResult {
        Err(JobFailure {
            code: ErrorCode::UndecodableImage,
            message: "x".into(),
        })
    }

    #[tokio::test]
    async fn test_first_result_wins_duplicates_dropped() {
        let w = ResultWaiters::new();
        let id = JobId::random();
        let (rx, _guard) = w.register(id.clone());
        assert!(w.complete(&id, failure()));
        assert!(!w.complete(&id, failure()));
        assert!(rx.await.unwrap().is_err());
    }

    #[test]
    fn test_waiter_guard_removes_entry() {
        let w = ResultWaiters::new();
        let id = JobId::random();
        let (_rx, guard) = w.register(id.clone());
        assert_eq!(w.len(), 1);
        drop(guard);
        assert!(w.is_empty());
        assert!(!w.complete(&id, failure()));
    }
}
