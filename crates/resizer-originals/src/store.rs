//! The [`OriginalStore`] trait and the quota rule every backend applies.

use async_trait::async_trait;
use bytes::Bytes;
use resizer_core::ids::TenantId;

use crate::error::OriginalsError;
use crate::model::{OriginalMeta, Page, Quota, Totals};
use crate::name::OriginalName;

/// Where originals live. Every call names the tenant, and a backend keeps each
/// tenant's objects under its own namespace: no name reaches another tenant's.
#[async_trait]
pub trait OriginalStore: Send + Sync + 'static {
    /// Stores (or replaces) `name`, unless the tenant's totals with it would
    /// pass `quota`; the check and the write are one step. Returns the
    /// metadata it replaced, if any.
    async fn put(
        &self,
        tenant: &TenantId,
        meta: OriginalMeta,
        bytes: Bytes,
        quota: Quota,
    ) -> Result<Option<OriginalMeta>, OriginalsError>;
    /// The metadata of `name`, without reading its bytes.
    async fn head(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<OriginalMeta>, OriginalsError>;
    /// The metadata and bytes of `name`.
    async fn get(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<(OriginalMeta, Bytes)>, OriginalsError>;
    /// Names starting with `prefix` and after `cursor`, in order, at most `limit`.
    async fn list(
        &self,
        tenant: &TenantId,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, OriginalsError>;
    /// Deletes `name`; `false` if there was none.
    async fn delete(&self, tenant: &TenantId, name: &OriginalName) -> Result<bool, OriginalsError>;
    /// What the tenant stores now.
    async fn totals(&self, tenant: &TenantId) -> Result<Totals, OriginalsError>;
    /// The totals of every tenant storing anything (storage metering's sample).
    async fn stored_by_tenant(&self) -> Result<Vec<(TenantId, Totals)>, OriginalsError>;
}

/// The quota rule: `before` (the tenant's totals), less what `replaced`
/// held, plus `new_bytes`, must stay within `quota`.
pub fn check_quota(
    before: Totals,
    replaced: Option<u64>,
    new_bytes: u64,
    quota: Quota,
) -> Result<(), OriginalsError> {
    let count = before.count - u64::from(replaced.is_some()) + 1;
    let bytes = before.bytes - replaced.unwrap_or(0) + new_bytes;
    if count > quota.max_count {
        return Err(OriginalsError::QuotaExceeded(format!(
            "the tenant stores {} originals, its quota; delete some first",
            before.count
        )));
    }
    if bytes > quota.max_bytes {
        return Err(OriginalsError::QuotaExceeded(format!(
            "storing {new_bytes} bytes would make {bytes}, over the tenant's quota of {} bytes",
            quota.max_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        max_bytes: 100,
        max_count: 2,
    };

    #[test]
    fn test_quota_counts_replacement_as_a_swap() {
        let full = Totals { count: 2, bytes: 90 };
        assert!(check_quota(full, None, 1, Q).is_err(), "a third original");
        assert!(
            check_quota(full, Some(40), 50, Q).is_ok(),
            "replacing 40 with 50 makes 100"
        );
        assert!(check_quota(full, Some(40), 51, Q).is_err(), "101 bytes");
        assert!(check_quota(Totals::default(), None, 100, Q).is_ok());
        assert!(check_quota(Totals::default(), None, 101, Q).is_err());
    }
}
