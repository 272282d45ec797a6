//! The auth cache: what an API node needs to authenticate, in memory.
//!
//! Built from a [`Snapshot`] and kept current by applying [`Change`]s in
//! sequence order. Requests read it and nothing else, so authentication keeps
//! working while the management plane is down (availability over freshness).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use resizer_core::api_key::{self, KeyHash};
use resizer_core::ids::{CredentialId, KeyId, SigningKeyId, TenantId};

use crate::error::IdentityError;
use crate::flags::FlagTable;
use crate::model::{Change, ChangeEvent, OriginalsQuota, Snapshot, Tenant};
use crate::service::ChangeSubscriber;
use resizer_core::time::now_unix_ms;

use crate::store::{ChangeSource, IdentityStore};

/// Who a request is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The key used: an API key, or the signing key of a signed URL.
    pub key_id: CredentialId,
    /// The tenant's sustained rate.
    pub rate_limit_rps: u32,
    /// The tenant's burst.
    pub burst: u32,
    /// The tenant's own originals quota, where it differs from the deployment's.
    pub originals_quota: OriginalsQuota,
    /// The feature flags as of authentication (shared, not copied).
    pub flags: Arc<FlagTable>,
}

impl AuthContext {
    /// Whether feature flag `name` is on for this request's tenant.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.enabled(name, &self.tenant_id)
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key, a malformed key, an unknown key, a wrong secret or a revoked key:
    /// deliberately indistinguishable to the caller.
    #[error("a valid API key is required")]
    Unauthenticated,
    /// The key is valid but its tenant is suspended.
    #[error("the tenant is suspended")]
    Suspended(Box<AuthContext>),
}

#[derive(Debug, Clone)]
struct KeyEntry {
    tenant_id: TenantId,
    hash: KeyHash,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    loaded: bool,
    tenants: HashMap<TenantId, Tenant>,
    keys: HashMap<KeyId, KeyEntry>,
    /// Live URL signing secrets, by owner: a signed request checks only its
    /// tenant's few (at most 5), never every tenant's.
    signing: HashMap<TenantId, Vec<(SigningKeyId, String)>>,
    /// Replaced whole on a change (flags change rarely), so a request holds
    /// the table it authenticated with without a lock.
    flags: Arc<FlagTable>,
}

impl State {
    /// Adds (or moves) signing key `id`.
    fn add_signing(&mut self, id: SigningKeyId, tenant: TenantId, secret: String) {
        self.remove_signing(&id);
        self.signing.entry(tenant).or_default().push((id, secret));
    }

    /// Removes signing key `id`, whoever holds it (revocations are rare; a scan is fine).
    fn remove_signing(&mut self, id: &SigningKeyId) {
        self.signing.retain(|_, keys| {
            keys.retain(|(k, _)| k != id);
            !keys.is_empty()
        });
    }
}

/// Where the cache's contents came from, for readiness detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Nothing loaded yet.
    Empty,
    /// A snapshot file written by an earlier run (the management plane was unreachable).
    SnapshotFile,
    /// The authoritative store or its change feed.
    Feed,
}

impl CacheSource {
    /// Returns a short name for logs and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::SnapshotFile => "snapshot_file",
            Self::Feed => "feed",
        }
    }
}

#[derive(Debug)]
struct Freshness {
    source: CacheSource,
    /// When the cache last heard from its source (success, even with no news).
    last_sync: Option<std::time::Instant>,
}

/// The in-memory authentication data.
#[derive(Debug)]
pub struct AuthCache {
    state: RwLock<State>,
    freshness: std::sync::Mutex<Freshness>,
    /// Serialises catch-ups so changes are applied once and in order.
    catch_up_lock: tokio::sync::Mutex<()>,
}

impl Default for AuthCache {
    fn default() -> Self {
        Self {
            state: RwLock::new(State::default()),
            freshness: std::sync::Mutex::new(Freshness {
                source: CacheSource::Empty,
                last_sync: None,
            }),
            catch_up_lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// Changes read per round trip while catching up.
const CATCH_UP_BATCH: u32 = 1000;

impl AuthCache {
    /// Returns an empty, not-yet-loaded cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns whether a snapshot has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.read().loaded
    }

    /// Returns the sequence number of the last applied change.
    pub fn seq(&self) -> u64 {
        self.read().seq
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the source answered, and which source it was.
    pub fn mark_synced(&self, source: CacheSource) {
        let mut f = self.freshness.lock().unwrap_or_else(|e| e.into_inner());
        f.source = source;
        if source == CacheSource::Feed {
            f.last_sync = Some(std::time::Instant::now());
        }
    }

    /// Returns where the contents came from.
    pub fn source(&self) -> CacheSource {
        self.freshness.lock().unwrap_or_else(|e| e.into_inner()).source
    }

    /// Returns the time since the source last answered, `None` if it never did in this process.
    pub fn age(&self) -> Option<std::time::Duration> {
        let f = self.freshness.lock().unwrap_or_else(|e| e.into_inner());
        f.last_sync.map(|t| t.elapsed())
    }

    /// Exports the contents, for a local snapshot file.
    pub fn to_snapshot(&self) -> Snapshot {
        let state = self.read();
        let mut tenants: Vec<Tenant> = state.tenants.values().cloned().collect();
        tenants.sort_by(|a, b| a.id.cmp(&b.id));
        let mut keys: Vec<(KeyId, TenantId, String)> = state
            .keys
            .iter()
            .map(|(k, e)| (k.clone(), e.tenant_id.clone(), e.hash.to_hex()))
            .collect();
        keys.sort();
        let mut signing_keys: Vec<(SigningKeyId, TenantId, String)> = state
            .signing
            .iter()
            .flat_map(|(t, keys)| {
                keys.iter()
                    .map(|(k, secret)| (k.clone(), t.clone(), secret.clone()))
            })
            .collect();
        signing_keys.sort();
        Snapshot {
            seq: state.seq,
            tenants,
            keys,
            signing_keys,
            flags: state.flags.iter().cloned().collect(),
        }
    }

    /// Replaces the contents with a snapshot.
    pub fn load(&self, snapshot: Snapshot) {
        let mut state = State {
            seq: snapshot.seq,
            loaded: true,
            ..State::default()
        };
        for t in snapshot.tenants {
            state.tenants.insert(t.id.clone(), t);
        }
        for (key_id, tenant_id, hash) in snapshot.keys {
            if let Some(hash) = KeyHash::from_hex(&hash) {
                state.keys.insert(key_id, KeyEntry { tenant_id, hash });
            }
        }
        for (id, tenant_id, secret) in snapshot.signing_keys {
            state.add_signing(id, tenant_id, secret);
        }
        state.flags = Arc::new(FlagTable::new(snapshot.flags));
        *self.write() = state;
        self.record_metrics();
    }

    /// Applies changes newer than the current sequence, in order; older ones
    /// are ignored. Returns how many were applied.
    pub fn apply(&self, changes: &[Change]) -> usize {
        let mut applied = 0;
        let now_ms = now_unix_ms();
        let mut state = self.write();
        for change in changes {
            if change.seq <= state.seq {
                continue;
            }
            applied += 1;
            metrics::histogram!("resizer_auth_replication_lag_seconds")
                .record(now_ms.saturating_sub(change.at_ms) as f64 / 1000.0);
            match &change.event {
                ChangeEvent::TenantUpserted { tenant } => {
                    state.tenants.insert(tenant.id.clone(), tenant.clone());
                }
                ChangeEvent::KeyCreated {
                    key_id,
                    tenant_id,
                    hash,
                } => {
                    if let Some(hash) = KeyHash::from_hex(hash) {
                        state.keys.insert(
                            key_id.clone(),
                            KeyEntry {
                                tenant_id: tenant_id.clone(),
                                hash,
                            },
                        );
                    }
                }
                ChangeEvent::KeyRevoked { key_id } => {
                    state.keys.remove(key_id);
                }
                ChangeEvent::SigningKeyCreated {
                    signing_key_id,
                    tenant_id,
                    secret,
                } => {
                    state.add_signing(signing_key_id.clone(), tenant_id.clone(), secret.clone());
                }
                ChangeEvent::SigningKeyRevoked { signing_key_id } => {
                    state.remove_signing(signing_key_id);
                }
                ChangeEvent::FlagUpserted { flag } => {
                    Arc::make_mut(&mut state.flags).upsert(flag.clone());
                }
                ChangeEvent::FlagDeleted { name } => {
                    Arc::make_mut(&mut state.flags).remove(name);
                }
            }
            state.seq = change.seq;
        }
        drop(state);
        self.record_metrics();
        applied
    }

    /// Brings the cache up to date from a source: a snapshot the first time,
    /// then increments. Returns how many changes were applied.
    pub async fn catch_up(&self, source: &dyn ChangeSource) -> Result<usize, IdentityError> {
        let _guard = self.catch_up_lock.lock().await;
        if !self.is_loaded() || self.source() == CacheSource::SnapshotFile && self.age().is_none() {
            // A snapshot file may be older than the source's retained history; the source's own
            // snapshot is the safe way back.
            self.load(source.snapshot().await?);
        }
        let mut applied = 0;
        loop {
            let changes = source.changes_since(self.seq(), CATCH_UP_BATCH).await?;
            if changes.is_empty() {
                self.mark_synced(CacheSource::Feed);
                return Ok(applied);
            }
            applied += self.apply(&changes);
        }
    }

    /// Authenticates a bearer secret: key id lookup, then a constant-time hash comparison.
    pub fn authenticate(&self, secret: &str) -> Result<AuthContext, AuthError> {
        let key_id = api_key::key_id_of(secret).ok_or(AuthError::Unauthenticated)?;
        let state = self.read();
        let key = state.keys.get(&key_id).ok_or(AuthError::Unauthenticated)?;
        if !key.hash.verify(secret) {
            return Err(AuthError::Unauthenticated);
        }
        let tenant = state
            .tenants
            .get(&key.tenant_id)
            .ok_or(AuthError::Unauthenticated)?;
        let ctx = AuthContext {
            tenant_id: key.tenant_id.clone(),
            key_id: key_id.into(),
            rate_limit_rps: tenant.rate_limit_rps,
            burst: tenant.burst,
            originals_quota: tenant.originals_quota,
            flags: state.flags.clone(),
        };
        if tenant.suspended {
            return Err(AuthError::Suspended(Box::new(ctx)));
        }
        Ok(ctx)
    }

    /// Checks a variant URL's signature against every live signing key of
    /// `tenant` and returns who signed it; a suspended tenant's valid URL is
    /// [`AuthError::Suspended`], an unknown tenant's is [`AuthError::Unauthenticated`].
    pub fn verify_signed(
        &self,
        tenant: &TenantId,
        path: &str,
        pairs: &[(String, String)],
        sig: &str,
    ) -> Result<AuthContext, AuthError> {
        let state = self.read();
        let t = state.tenants.get(tenant).ok_or(AuthError::Unauthenticated)?;
        let keys = state.signing.get(tenant).map_or(&[][..], Vec::as_slice);
        let matched = resizer_core::signing::verify(keys.iter().map(|(_, s)| s.as_str()), path, pairs, sig)
            .ok_or(AuthError::Unauthenticated)?;
        let ctx = AuthContext {
            tenant_id: tenant.clone(),
            key_id: keys[matched].0.clone().into(),
            rate_limit_rps: t.rate_limit_rps,
            burst: t.burst,
            originals_quota: t.originals_quota,
            flags: state.flags.clone(),
        };
        if t.suspended {
            return Err(AuthError::Suspended(Box::new(ctx)));
        }
        Ok(ctx)
    }

    /// The feature flags as this cache knows them.
    pub fn flags(&self) -> Arc<FlagTable> {
        self.read().flags.clone()
    }

    fn record_metrics(&self) {
        let state = self.read();
        metrics::gauge!("resizer_auth_cache_seq").set(state.seq as f64);
        metrics::gauge!("resizer_auth_cache_tenants").set(state.tenants.len() as f64);
        metrics::gauge!("resizer_auth_cache_keys").set(state.keys.len() as f64);
        metrics::gauge!("resizer_auth_cache_flags").set(state.flags.iter().count() as f64);
    }
}

/// Keeps a cache in the same process current with a store.
pub struct LocalFollower {
    /// The cache to update.
    pub cache: Arc<AuthCache>,
    /// The authoritative store.
    pub store: Arc<dyn IdentityStore>,
}

#[async_trait]
impl ChangeSubscriber for LocalFollower {
    async fn notify(&self) {
        let source: &dyn ChangeSource = self.store.as_ref();
        if let Err(e) = self.cache.catch_up(source).await {
            tracing::warn!(error = %e, "auth cache catch-up failed");
        }
    }
}

impl resizer_core::PublicError for AuthError {
    fn code(&self) -> resizer_core::ErrorCode {
        match self {
            Self::Unauthenticated => resizer_core::ErrorCode::Unauthenticated,
            Self::Suspended(_) => resizer_core::ErrorCode::TenantSuspended,
        }
    }
}
