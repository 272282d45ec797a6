//! Joining identical in-flight work.
//!
//! Identical means: same tenant, same input bytes (SHA-256), same parameters
//! and output format. Such requests share one job: the first leads, the others
//! wait for its outcome. The tenant is part of the key, so work is never
//! shared across tenants. Nothing is cached: once the leader finishes, the
//! entry is gone and the next identical request starts a new job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use resizer_core::ImageFormat;
use resizer_core::ids::TenantId;
use resizer_core::params::ResizeParams;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::job::JobOutput;
use crate::runner::RunError;

/// What identical requests share.
pub type SharedOutcome = Result<JobOutput, RunError>;

/// The join key of a request.
pub fn join_key(tenant: &TenantId, input: &[u8], params: &ResizeParams, output: ImageFormat) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tenant.as_str().as_bytes());
    h.update([0]);
    // serde_json of the validated params is canonical: fields in declaration order.
    h.update(serde_json::to_vec(params).unwrap_or_default());
    h.update([0]);
    h.update(output.as_str().as_bytes());
    h.update([0]);
    h.update(input);
    h.finalize().into()
}

type Slot = watch::Sender<Option<SharedOutcome>>;

/// The table of jobs in flight by join key.
#[derive(Default)]
pub struct Joins {
    inner: Mutex<HashMap<[u8; 32], Slot>>,
}

/// A request's part in a join.
pub enum Part {
    /// Run the job and publish its outcome through the guard.
    Leader(LeaderGuard),
    /// Wait for the leader's outcome.
    Follower(watch::Receiver<Option<SharedOutcome>>),
}

/// Removes the entry when the leader is done (or gone); followers of a leader
/// that vanished without an outcome see the channel close.
pub struct LeaderGuard {
    joins: Arc<Joins>,
    key: [u8; 32],
    slot: Slot,
}

impl LeaderGuard {
    /// Publishes the outcome to every follower.
    pub fn complete(self, outcome: &SharedOutcome) {
        self.slot.send_replace(Some(outcome.clone()));
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        let mut map = self.joins.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.key).is_some_and(|s| s.same_channel(&self.slot)) {
            map.remove(&self.key);
        }
    }
}

impl Joins {
    /// Creates an empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Leads a new job for `key`, or follows the one in flight.
    pub fn enter(self: &Arc<Self>, key: [u8; 32]) -> Part {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // An entry exists exactly while its leader's guard lives.
        if let Some(slot) = map.get(&key) {
            return Part::Follower(slot.subscribe());
        }
        let (slot, _) = watch::channel(None);
        map.insert(key, slot.clone());
        Part::Leader(LeaderGuard {
            joins: self.clone(),
            key,
            slot,
        })
    }

    /// Returns the number of jobs in flight that can be joined.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Returns whether no job is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resizer_core::ErrorCode;

    fn params(w: u32) -> ResizeParams {
        ResizeParams::width(w)
    }

    #[test]
    fn test_join_key_separates_tenants_inputs_and_params() {
        let (a, b) = (TenantId::random(), TenantId::random());
        let k = join_key(&a, b"img", &params(10), ImageFormat::Jpeg);
        assert_eq!(k, join_key(&a, b"img", &params(10), ImageFormat::Jpeg));
        assert_ne!(k, join_key(&b, b"img", &params(10), ImageFormat::Jpeg));
        assert_ne!(k, join_key(&a, b"img2", &params(10), ImageFormat::Jpeg));
        assert_ne!(k, join_key(&a, b"img", &params(11), ImageFormat::Jpeg));
        assert_ne!(k, join_key(&a, b"img", &params(10), ImageFormat::Webp));
    }

    #[tokio::test]
    async fn test_followers_get_the_leaders_outcome_and_the_entry_goes() {
        let joins = Joins::new();
        let Part::Leader(leader) = joins.enter([1; 32]) else {
            panic!("first must lead")
        };
        let Part::Follower(mut rx) = joins.enter([1; 32]) else {
            panic!("second must follow")
        };
        assert!(matches!(joins.enter([2; 32]), Part::Leader(_)));
        let failure = crate::JobFailure {
            code: ErrorCode::UndecodableImage,
            message: "x".into(),
        };
        let outcome: SharedOutcome = Err(RunError::Failed(failure));
        leader.complete(&outcome);
        let got = rx.wait_for(|v| v.is_some()).await.unwrap().clone().unwrap();
        assert!(matches!(got, Err(RunError::Failed(f)) if f.code == ErrorCode::UndecodableImage));
        assert!(joins.is_empty());
        assert!(
            matches!(joins.enter([1; 32]), Part::Leader(_)),
            "no caching after completion"
        );
    }

    #[tokio::test]
    async fn test_follower_sees_a_vanished_leader() {
        let joins = Joins::new();
        let Part::Leader(leader) = joins.enter([3; 32]) else {
            panic!()
        };
        let Part::Follower(mut rx) = joins.enter([3; 32]) else {
            panic!()
        };
        drop(leader);
        assert!(rx.wait_for(|v| v.is_some()).await.is_err());
        assert!(matches!(joins.enter([3; 32]), Part::Leader(_)));
    }
}
