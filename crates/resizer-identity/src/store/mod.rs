//! The authoritative identity store.
//!
//! Every mutation commits its record and its [`Change`] in one transaction, so
//! the change log is exactly the history of the records.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

use async_trait::async_trait;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};

use crate::error::IdentityError;
use crate::flags::Flag;
use crate::model::{Change, CreateOutcome, KeyRecord, Snapshot, Tenant, TenantPatch};

/// Where a follower reads the change log: a store directly, or the identity
/// service's feed over the network.
#[async_trait]
pub trait ChangeSource: Send + Sync + 'static {
    /// Returns a consistent snapshot for a fresh cache.
    async fn snapshot(&self) -> Result<Snapshot, IdentityError>;
    /// Returns up to `limit` changes after `seq`, in order.
    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, IdentityError>;
}

/// Storage for tenants, keys and the change log.
#[async_trait]
pub trait IdentityStore: ChangeSource {
    /// Inserts a new tenant.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), IdentityError>;
    /// Lists all tenants, oldest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, IdentityError>;
    /// Returns one tenant.
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, IdentityError>;
    /// Applies a validated patch and returns the new tenant, or `None` if unknown.
    async fn update_tenant(
        &self,
        id: &TenantId,
        patch: &TenantPatch,
        now: i64,
    ) -> Result<Option<Tenant>, IdentityError>;
    /// Stores a key hash for an existing tenant with fewer than `max_live` live keys.
    async fn create_key(
        &self,
        tenant: &TenantId,
        key_id: &KeyId,
        hash_hex: &str,
        max_live: u32,
        now: i64,
    ) -> Result<CreateOutcome, IdentityError>;
    /// The tenant's keys, live and revoked, oldest first (by the second; then by id).
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<KeyRecord>, IdentityError>;
    /// Revokes a key; `false` if it does not exist. Revoking twice is fine.
    async fn revoke_key(&self, key_id: &KeyId, now: i64) -> Result<bool, IdentityError>;
    /// Stores a signing secret for an existing tenant with fewer than `max_active` live ones.
    async fn create_signing_key(
        &self,
        tenant: &TenantId,
        id: &SigningKeyId,
        secret: &str,
        max_active: u32,
        now: i64,
    ) -> Result<CreateOutcome, IdentityError>;
    /// Revokes `tenant`'s signing key `id`; `false` if that tenant has no such key.
    /// Revoking twice is fine.
    async fn revoke_signing_key(
        &self,
        tenant: &TenantId,
        id: &SigningKeyId,
        now: i64,
    ) -> Result<bool, IdentityError>;
    /// Creates or replaces a feature flag.
    async fn put_flag(&self, flag: &Flag) -> Result<(), IdentityError>;
    /// Deletes a feature flag; `false` if there was none.
    async fn delete_flag(&self, name: &str) -> Result<bool, IdentityError>;
    /// Every feature flag, by name.
    async fn list_flags(&self) -> Result<Vec<Flag>, IdentityError>;
    /// Returns the sequence number of the newest change (0 when empty).
    async fn latest_seq(&self) -> Result<u64, IdentityError>;
}

/// A quota field as both stores keep it (validated to fit long before i64 ends).
pub(crate) fn quota_column(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}
