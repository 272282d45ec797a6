//! The management plane's rules: validation, id and key issuance, and
//! notifying followers after every committed write.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use resizer_core::api_key;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use resizer_core::time::now_unix_secs;
use serde::Deserialize;

use crate::error::IdentityError;
use crate::flags::{Flag, FlagSpec};
use crate::model::{CreateOutcome, KeyRecord, OriginalsQuota, Tenant, TenantPatch};
use crate::store::IdentityStore;

/// Default sustained rate for a new tenant.
pub const DEFAULT_RATE_LIMIT_RPS: u32 = 100;
/// Bounds of `rate_limit_rps` and `burst`.
pub const LIMIT_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000_000;
const MAX_NAME_LEN: usize = 200;
/// Live signing keys a tenant may hold: enough to rotate (old and new, a spare
/// per environment), few enough that checking a URL against all stays cheap.
pub const MAX_SIGNING_KEYS: u32 = 5;

/// Most live API keys a tenant may issue itself (`POST /v1/keys`); the admin
/// API is not bounded by it (an operator's decision stands).
pub const MAX_OWN_KEYS: u32 = 20;

/// The body of `POST /admin/v1/tenants`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Display name, 1–200 characters of printable text (no control,
    /// zero-width or direction characters); trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Sustained requests per second on each API node; default 100.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_rps: Option<u32>,
    /// Requests allowed in a burst; default twice the rate (capped at the maximum).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub burst: Option<u32>,
    /// The tenant's own originals quota; default the deployment's.
    #[serde(default)]
    pub originals_quota: Option<OriginalsQuota>,
}

/// Something that wants to hear that the change log grew (an auth cache in
/// the same process). Called after commit and awaited, so in embedded mode a
/// key works as soon as the admin call that created it returns.
#[async_trait]
pub trait ChangeSubscriber: Send + Sync + 'static {
    /// Brings the subscriber up to date with the store.
    async fn notify(&self);
}

/// The management plane.
pub struct IdentityService {
    store: Arc<dyn IdentityStore>,
    subscribers: RwLock<Vec<Arc<dyn ChangeSubscriber>>>,
    /// Bumped after every committed write, so feed long-polls wake at once.
    changed: tokio::sync::watch::Sender<u64>,
}

/// Returns the name as stored (trimmed), or why it is refused. Names are
/// echoed to operators' terminals and consoles and stored in PostgreSQL, so
/// control characters (NUL, escapes, newlines) and invisible bidirectional
/// overrides, which make one name display as another, are refused.
fn check_name(name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN {
        return Err(IdentityError::Invalid(format!(
            "`name` must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name.chars().find(|&c| !printable(c)) {
        return Err(IdentityError::Invalid(format!(
            "`name` must be printable text; it contains U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(name.to_string())
}

fn printable(c: char) -> bool {
    !c.is_control()
        && !matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width spaces and direction marks
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, isolates
            | '\u{FEFF}' // byte order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

fn check_limit(field: &str, value: u32) -> Result<(), IdentityError> {
    if !LIMIT_RANGE.contains(&value) {
        return Err(IdentityError::Invalid(format!(
            "`{field}` must be from {} to {}",
            LIMIT_RANGE.start(),
            LIMIT_RANGE.end()
        )));
    }
    Ok(())
}

fn check_quota(quota: &OriginalsQuota) -> Result<(), IdentityError> {
    if quota.is_valid() {
        return Ok(());
    }
    Err(IdentityError::Invalid(format!(
        "originals_quota: max_bytes at most {}, max_count at most {}",
        OriginalsQuota::MAX_BYTES,
        OriginalsQuota::MAX_COUNT
    )))
}

/// A newly issued key: the secret is in here once and nowhere else.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IssuedKeyView {
    /// Key id, used to revoke it.
    pub key_id: KeyId,
    /// The bearer secret.
    pub secret: String,
    /// Owner.
    pub tenant_id: TenantId,
}

/// A newly issued URL signing secret: shown once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IssuedSigningKey {
    /// Signing key id, used to revoke it.
    pub signing_key_id: SigningKeyId,
    /// The HMAC key: sign with these characters' bytes as they are.
    pub secret: String,
    /// Owner.
    pub tenant_id: TenantId,
}

impl IdentityService {
    /// Creates the service over a store.
    pub fn new(store: Arc<dyn IdentityStore>) -> Self {
        Self {
            store,
            subscribers: RwLock::new(Vec::new()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Returns a receiver that sees a new value after each write (or
    /// [`IdentityService::signal_change`]); subscribe before reading the log.
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wakes feed readers; also used by a poller that sees writes made by
    /// another identity instance sharing the store.
    pub fn signal_change(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Returns the store, for followers that read the change log.
    pub fn store(&self) -> Arc<dyn IdentityStore> {
        self.store.clone()
    }

    /// Registers a follower to be notified after each write.
    pub fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber);
    }

    async fn notify(&self) {
        self.signal_change();
        let subscribers: Vec<_> = self.subscribers.read().unwrap_or_else(|e| e.into_inner()).clone();
        for s in subscribers {
            s.notify().await;
        }
    }

    /// Creates a tenant with defaults filled in.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant, IdentityError> {
        let name = check_name(&new.name)?;
        let rps = new.rate_limit_rps.unwrap_or(DEFAULT_RATE_LIMIT_RPS);
        check_limit("rate_limit_rps", rps)?;
        let burst = new
            .burst
            .unwrap_or_else(|| rps.saturating_mul(2).min(*LIMIT_RANGE.end()));
        check_limit("burst", burst)?;
        let originals_quota = new.originals_quota.unwrap_or_default();
        check_quota(&originals_quota)?;
        let now = now_unix_secs();
        let tenant = Tenant {
            id: TenantId::random(),
            name,
            rate_limit_rps: rps,
            burst,
            suspended: false,
            created_at: now,
            updated_at: now,
            originals_quota,
        };
        self.store.create_tenant(&tenant).await?;
        self.notify().await;
        Ok(tenant)
    }

    /// Lists tenants.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, IdentityError> {
        self.store.list_tenants().await
    }

    /// Returns one tenant.
    pub async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, IdentityError> {
        self.store
            .get_tenant(id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("tenant {id}")))
    }

    /// Applies a patch (limits, suspension, name).
    pub async fn update_tenant(
        &self,
        id: &TenantId,
        mut patch: TenantPatch,
    ) -> Result<Tenant, IdentityError> {
        if let Some(name) = &patch.name {
            patch.name = Some(check_name(name)?);
        }
        if let Some(rps) = patch.rate_limit_rps {
            check_limit("rate_limit_rps", rps)?;
        }
        if let Some(burst) = patch.burst {
            check_limit("burst", burst)?;
        }
        if let Some(quota) = &patch.originals_quota {
            check_quota(quota)?;
        }
        let patch = TenantPatch {
            name: patch.name.map(|n| n.trim().to_string()),
            ..patch
        };
        let tenant = self
            .store
            .update_tenant(id, &patch, now_unix_secs())
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("tenant {id}")))?;
        self.notify().await;
        Ok(tenant)
    }

    /// Issues a new key for a tenant; only its hash is stored.
    pub async fn issue_key(&self, tenant: &TenantId) -> Result<IssuedKeyView, IdentityError> {
        self.issue_key_within(tenant, u32::MAX).await
    }

    /// Issues a key at a tenant's own request, up to [`MAX_OWN_KEYS`] live at once.
    pub async fn issue_own_key(&self, tenant: &TenantId) -> Result<IssuedKeyView, IdentityError> {
        self.issue_key_within(tenant, MAX_OWN_KEYS).await
    }

    async fn issue_key_within(
        &self,
        tenant: &TenantId,
        max_live: u32,
    ) -> Result<IssuedKeyView, IdentityError> {
        let issued = api_key::issue();
        let outcome = self
            .store
            .create_key(
                tenant,
                &issued.key_id,
                &issued.hash.to_hex(),
                max_live,
                now_unix_secs(),
            )
            .await?;
        match outcome {
            CreateOutcome::Created => {}
            CreateOutcome::UnknownTenant => return Err(IdentityError::NotFound(format!("tenant {tenant}"))),
            CreateOutcome::TooMany => {
                return Err(IdentityError::Quota(format!(
                    "the tenant already has {max_live} live keys; revoke one first"
                )));
            }
        }
        self.notify().await;
        Ok(IssuedKeyView {
            key_id: issued.key_id,
            secret: issued.secret,
            tenant_id: tenant.clone(),
        })
    }

    /// Issues a URL signing secret for a tenant, up to [`MAX_SIGNING_KEYS`] live at once.
    pub async fn issue_signing_key(&self, tenant: &TenantId) -> Result<IssuedSigningKey, IdentityError> {
        let (id, secret) = (SigningKeyId::random(), resizer_core::signing::new_secret());
        let outcome = self
            .store
            .create_signing_key(tenant, &id, &secret, MAX_SIGNING_KEYS, now_unix_secs())
            .await?;
        match outcome {
            CreateOutcome::Created => {}
            CreateOutcome::UnknownTenant => {
                return Err(IdentityError::NotFound(format!("tenant {tenant}")));
            }
            CreateOutcome::TooMany => {
                return Err(IdentityError::Quota(format!(
                    "the tenant already has {MAX_SIGNING_KEYS} signing keys; revoke one first"
                )));
            }
        }
        self.notify().await;
        Ok(IssuedSigningKey {
            signing_key_id: id,
            secret,
            tenant_id: tenant.clone(),
        })
    }

    /// Revokes one of `tenant`'s signing keys (another tenant's id is not found).
    pub async fn revoke_signing_key(
        &self,
        tenant: &TenantId,
        id: &SigningKeyId,
    ) -> Result<(), IdentityError> {
        if !self.store.revoke_signing_key(tenant, id, now_unix_secs()).await? {
            return Err(IdentityError::NotFound(format!("signing key {id}")));
        }
        self.notify().await;
        Ok(())
    }

    /// The tenant's keys, live and revoked, oldest first.
    pub async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<KeyRecord>, IdentityError> {
        self.store.list_keys(tenant).await
    }

    /// Revokes one of `tenant`'s keys at its own request, presented with
    /// `presenting` (another tenant's key is not found; a key cannot revoke
    /// itself, so a tenant cannot lock itself out by mistake).
    pub async fn revoke_own_key(
        &self,
        tenant: &TenantId,
        presenting: &KeyId,
        key_id: &KeyId,
    ) -> Result<(), IdentityError> {
        if key_id == presenting {
            return Err(IdentityError::Invalid(
                "a key cannot revoke itself; revoke it with another of the tenant's keys".into(),
            ));
        }
        // Ownership never changes, so checking it before revoking is not a race.
        if !self.list_keys(tenant).await?.iter().any(|k| &k.key_id == key_id) {
            return Err(IdentityError::NotFound(format!("key {key_id}")));
        }
        self.revoke_key(key_id).await
    }

    /// Every feature flag, by name.
    pub async fn list_flags(&self) -> Result<Vec<Flag>, IdentityError> {
        self.store.list_flags().await
    }

    /// Creates or replaces feature flag `name`; overrides must name existing tenants.
    pub async fn put_flag(&self, name: &str, spec: FlagSpec) -> Result<Flag, IdentityError> {
        let flag = Flag::from_spec(name, spec, now_unix_secs())?;
        if !flag.overrides.is_empty() {
            let known: std::collections::HashSet<TenantId> = self
                .store
                .list_tenants()
                .await?
                .into_iter()
                .map(|t| t.id)
                .collect();
            if let Some(unknown) = flag.overrides.keys().find(|t| !known.contains(*t)) {
                return Err(IdentityError::Invalid(format!(
                    "`overrides` names tenant {unknown}, which does not exist"
                )));
            }
        }
        self.store.put_flag(&flag).await?;
        self.notify().await;
        Ok(flag)
    }

    /// Deletes feature flag `name`: it reads as off everywhere.
    pub async fn delete_flag(&self, name: &str) -> Result<(), IdentityError> {
        crate::flags::check_name(name)?;
        if !self.store.delete_flag(name).await? {
            return Err(IdentityError::NotFound(format!("flag {name}")));
        }
        self.notify().await;
        Ok(())
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, key_id: &KeyId) -> Result<(), IdentityError> {
        if !self.store.revoke_key(key_id, now_unix_secs()).await? {
            return Err(IdentityError::NotFound(format!("key {key_id}")));
        }
        self.notify().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_printable_text_trimmed() {
        assert_eq!(check_name("  Acme GmbH  ").unwrap(), "Acme GmbH");
        assert_eq!(check_name("Café — 東京 🚀").unwrap(), "Café — 東京 🚀");
        for bad in [
            "",
            "   ",
            "a\0b",
            "evil\u{1b}[31mred",
            "two\nlines",
            "tab\there",
            "\u{202E}txt.exe",
            "zero\u{200B}width",
            "del\u{7f}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_name(&"é".repeat(MAX_NAME_LEN)).is_ok());
    }
}
