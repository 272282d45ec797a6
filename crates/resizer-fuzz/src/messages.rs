//! What crosses the network between roles: a job descriptor taken from the
//! queue, a usage record taken from the usage stream, the identity feed's
//! snapshot and change frames. A peer can be buggy or compromised; none of
//! these may crash the reader or be read as something else.

use std::collections::BTreeMap;

use resizer_core::api_key::KeyHash;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use resizer_identity::cache::AuthCache;
use resizer_identity::feed::ChangesPage;
use resizer_identity::model::{ChangeEvent, Snapshot, Tenant};
use resizer_jobs::JobDescriptor;
use resizer_usage::{Bucket, BucketSize, UsageRecord, roll_up};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::split_once;

/// Parses `data` as `T`; what parses prints and parses back to itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let printed = serde_json::to_vec(&value).expect("a parsed value prints");
    let again: T = serde_json::from_slice(&printed).expect("a printed value parses");
    assert_eq!(again, value);
    Some(value)
}

/// A job descriptor: round-trips, and its parameters, which the worker
/// never saw validated, plan cleanly or are refused.
pub fn job_descriptor(data: &[u8]) {
    let Some(job) = round_trip::<JobDescriptor>(data) else {
        return;
    };
    let _ = job.is_expired(u64::MAX);
    for (w, h) in [(4000, 3000), (1, 1), (u32::MAX, 1)] {
        if let Ok(plan) = resizer_imaging::plan(w, h, &job.params, 8192) {
            assert!(
                (1..=8192).contains(&plan.out_w) && (1..=8192).contains(&plan.out_h),
                "{plan:?}"
            );
            assert!(plan.crop_w > 0.0 && plan.crop_h > 0.0, "{plan:?}");
        }
    }
}

/// A usage record from the stream: round-trips and rolls up without overflow.
pub fn usage_record(data: &[u8]) {
    let Some(record) = round_trip::<UsageRecord>(data) else {
        return;
    };
    let mut bucket = Bucket::default();
    bucket.add(&record);
    bucket.add(&record);
    bucket.merge(&bucket.clone());
    assert_eq!(bucket.requests, 4);
    for size in [BucketSize::Hour, BucketSize::Day] {
        let _ = roll_up([&record], size);
    }
}

/// The identity feed: a snapshot, a NUL, then a page of changes. The cache
/// ends up exactly where a plain model of the log says, so no frame can
/// keep a revoked key alive or resurrect one.
pub fn identity_feed(data: &[u8]) {
    let (first, second) = split_once(data, 0);
    let Some(snapshot) = round_trip::<Snapshot>(first) else {
        return;
    };
    let cache = AuthCache::new();
    let mut model = Model::of(&snapshot);
    cache.load(snapshot);
    if let Some(page) = round_trip::<ChangesPage>(second) {
        cache.apply(&page.changes);
        model.apply(&page);
    }
    let state = cache.to_snapshot();
    assert_eq!(state.seq, model.seq);
    let keys: Vec<_> = model.keys.into_iter().map(|(k, (t, h))| (k, t, h)).collect();
    assert_eq!(state.keys, keys);
    assert_eq!(state.tenants, model.tenants.into_values().collect::<Vec<_>>());
    let signing: Vec<_> = model.signing.into_iter().map(|(k, (t, s))| (k, t, s)).collect();
    assert_eq!(state.signing_keys, signing);
    assert_eq!(state.flags, model.flags.into_values().collect::<Vec<_>>());
}

/// The feed's meaning, as plainly as it can be written.
struct Model {
    seq: u64,
    tenants: BTreeMap<TenantId, Tenant>,
    keys: BTreeMap<KeyId, (TenantId, String)>,
    signing: BTreeMap<SigningKeyId, (TenantId, String)>,
    flags: BTreeMap<String, resizer_identity::Flag>,
}

impl Model {
    fn of(s: &Snapshot) -> Self {
        let mut keys = BTreeMap::new();
        for (k, t, h) in &s.keys {
            if let Some(hash) = KeyHash::from_hex(h) {
                keys.insert(k.clone(), (t.clone(), hash.to_hex()));
            }
        }
        let tenants = s.tenants.iter().map(|t| (t.id.clone(), t.clone())).collect();
        let signing = s
            .signing_keys
            .iter()
            .map(|(k, t, secret)| (k.clone(), (t.clone(), secret.clone())))
            .collect();
        let flags = s.flags.iter().map(|f| (f.name.clone(), f.clone())).collect();
        Self {
            seq: s.seq,
            tenants,
            keys,
            signing,
            flags,
        }
    }

    fn apply(&mut self, page: &ChangesPage) {
        for change in &page.changes {
            if change.seq <= self.seq {
                continue;
            }
            self.seq = change.seq;
            match &change.event {
                ChangeEvent::TenantUpserted { tenant } => {
                    self.tenants.insert(tenant.id.clone(), tenant.clone());
                }
                ChangeEvent::KeyCreated {
                    key_id,
                    tenant_id,
                    hash,
                } => {
                    if let Some(h) = KeyHash::from_hex(hash) {
                        self.keys.insert(key_id.clone(), (tenant_id.clone(), h.to_hex()));
                    }
                }
                ChangeEvent::KeyRevoked { key_id } => {
                    self.keys.remove(key_id);
                }
                ChangeEvent::SigningKeyCreated {
                    signing_key_id,
                    tenant_id,
                    secret,
                } => {
                    self.signing
                        .insert(signing_key_id.clone(), (tenant_id.clone(), secret.clone()));
                }
                ChangeEvent::SigningKeyRevoked { signing_key_id } => {
                    self.signing.remove(signing_key_id);
                }
                ChangeEvent::FlagUpserted { flag } => {
                    self.flags.insert(flag.name.clone(), flag.clone());
                }
                ChangeEvent::FlagDeleted { name } => {
                    self.flags.remove(name);
                }
            }
        }
    }
}
