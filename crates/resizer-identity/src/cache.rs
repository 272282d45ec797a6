//! The auth cache: what an API node needs to authenticate, in memory.
//!
//! Built from a [`Snapshot`] and kept current by applying [`Change`]s in
//! sequence order. Requests read it and nothing else, so authentication keeps
//! working while the management plane is down (availability over freshness).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use resizer_core::api_key::{self, KeyHash};
use resizer_core::ids::{KeyId, TenantId};

use crate::error::IdentityError;
use crate::model::{Change, ChangeEvent, Snapshot};
use crate::service::ChangeSubscriber;
use crate::store::IdentityStore;

/// Who a request is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The key used.
    pub key_id: KeyId,
    /// The tenant's sustained rate.
    pub rate_limit_rps: u32,
    /// The tenant's burst.
    pub burst: u32,
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
struct TenantEntry {
    rate_limit_rps: u32,
    burst: u32,
    suspended: bool,
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
    tenants: HashMap<TenantId, TenantEntry>,
    keys: HashMap<KeyId, KeyEntry>,
}

/// The in-memory authentication data.
#[derive(Debug, Default)]
pub struct AuthCache {
    state: RwLock<State>,
    /// Serialises catch-ups so changes are applied once and in order.
    catch_up_lock: tokio::sync::Mutex<()>,
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

    /// Replaces the contents with a snapshot.
    pub fn load(&self, snapshot: Snapshot) {
        let mut state = State {
            seq: snapshot.seq,
            loaded: true,
            ..State::default()
        };
        for t in snapshot.tenants {
            state.tenants.insert(
                t.id,
                TenantEntry {
                    rate_limit_rps: t.rate_limit_rps,
                    burst: t.burst,
                    suspended: t.suspended,
                },
            );
        }
        for (key_id, tenant_id, hash) in snapshot.keys {
            if let Some(hash) = KeyHash::from_hex(&hash) {
                state.keys.insert(key_id, KeyEntry { tenant_id, hash });
            }
        }
        *self.write() = state;
        self.record_metrics();
    }

    /// Applies changes newer than the current sequence, in order; older ones are ignored.
    pub fn apply(&self, changes: &[Change]) {
        let mut state = self.write();
        for change in changes {
            if change.seq <= state.seq {
                continue;
            }
            match &change.event {
                ChangeEvent::TenantUpserted { tenant } => {
                    state.tenants.insert(
                        tenant.id.clone(),
                        TenantEntry {
                            rate_limit_rps: tenant.rate_limit_rps,
                            burst: tenant.burst,
                            suspended: tenant.suspended,
                        },
                    );
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
            }
            state.seq = change.seq;
        }
        drop(state);
        self.record_metrics();
    }

    /// Brings the cache up to date from the store: a snapshot the first time, then increments.
    pub async fn catch_up(&self, store: &dyn IdentityStore) -> Result<(), IdentityError> {
        let _guard = self.catch_up_lock.lock().await;
        if !self.is_loaded() {
            self.load(store.snapshot().await?);
        }
        loop {
            let changes = store.changes_since(self.seq(), CATCH_UP_BATCH).await?;
            if changes.is_empty() {
                return Ok(());
            }
            self.apply(&changes);
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
            key_id,
            rate_limit_rps: tenant.rate_limit_rps,
            burst: tenant.burst,
        };
        if tenant.suspended {
            return Err(AuthError::Suspended(Box::new(ctx)));
        }
        Ok(ctx)
    }

    fn record_metrics(&self) {
        let state = self.read();
        metrics::gauge!("resizer_auth_cache_seq").set(state.seq as f64);
        metrics::gauge!("resizer_auth_cache_keys").set(state.keys.len() as f64);
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
        if let Err(e) = self.cache.catch_up(self.store.as_ref()).await {
            tracing::warn!(error = %e, "auth cache catch-up failed");
        }
    }
}
