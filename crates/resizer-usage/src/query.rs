//! Usage and audit queries over the roll-up store and the archive.

use std::sync::Arc;

use async_trait::async_trait;

use resizer_core::ids::TenantId;

use crate::archive::{Archive, ArchiveError};
use crate::record::UsageRecord;
use crate::rollup::{Bucket, BucketSize, rebucket, with_storage};
use crate::store::{UsageStore, UsageStoreError};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The roll-up store failed.
    #[error(transparent)]
    Store(#[from] UsageStoreError),
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// The store's and the archive's own words stay in the log.
impl resizer_core::PublicError for QueryError {
    fn code(&self) -> resizer_core::ErrorCode {
        resizer_core::ErrorCode::DependencyUnavailable
    }

    fn public_message(&self) -> String {
        "the usage store is unavailable".into()
    }

    fn retry_after(&self) -> Option<u64> {
        Some(5)
    }
}

/// What the usage endpoints ask.
#[async_trait]
pub trait UsageQueries: Send + Sync {
    /// The tenant's non-empty buckets of `size` starting in `[from_ms, to_ms)`.
    async fn buckets(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        size: BucketSize,
    ) -> Result<Vec<Bucket>, QueryError>;
    /// The tenant's raw records received in `[from_ms, to_ms)`, at most `limit`.
    async fn audit(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, QueryError>;
}

/// Queries over a local store and archive (embedded mode).
pub struct LocalUsage {
    /// The roll-ups.
    pub store: Arc<dyn UsageStore>,
    /// The raw records.
    pub archive: Arc<Archive>,
}

#[async_trait]
impl UsageQueries for LocalUsage {
    async fn buckets(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        size: BucketSize,
    ) -> Result<Vec<Bucket>, QueryError> {
        // Hours overlapping the slice, then regrouped; a bucket belongs to the slice by its start.
        let first_hour = BucketSize::Hour.start_of(size.start_of(from_ms));
        let hourly = self.store.hourly(tenant, first_hour, to_ms).await?;
        let storage = self.store.storage_hourly(tenant, first_hour, to_ms).await?;
        Ok(rebucket(
            with_storage(hourly, storage),
            size,
            size.start_of(from_ms),
            to_ms,
        ))
    }

    async fn audit(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, QueryError> {
        Ok(self.archive.records(tenant, from_ms, to_ms, limit).await?)
    }
}
