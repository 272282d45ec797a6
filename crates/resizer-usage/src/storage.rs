//! Storage metering: what each tenant stores, sampled into the roll-ups as
//! hourly peaks (what hosted image services bill: byte-hours).
//!
//! Storage is a level, not an event, so it does not travel as usage records:
//! a sampler asks the originals store for every tenant's totals and raises
//! the current hour's peak in the roll-up store. Raising is idempotent, so
//! samplers need no lease: `resizer serve` runs one, and every `resizer
//! aggregator` runs one. An hour in which no sampler ran has no storage row
//! (it is not billed); a spike shorter than the sampling interval may be
//! missed. Both are documented in docs/usage.md.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::rollup::{BucketSize, StoredSample};
use crate::store::{UsageStore, UsageStoreError};

/// Where stored totals come from (the originals store, adapted by the binary).
#[async_trait]
pub trait StoredTotals: Send + Sync {
    /// Every tenant storing anything, with its totals now.
    async fn stored(&self) -> Result<Vec<StoredSample>, String>;
}

/// Why a sampling round failed; the next round retries.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The originals store could not say what is stored.
    #[error("reading stored totals: {0}")]
    Source(String),
    /// The roll-up store refused the samples.
    #[error(transparent)]
    Store(#[from] UsageStoreError),
}

/// Samples once at `now_ms`; returns how many tenants store anything.
pub async fn sample_once(
    source: &dyn StoredTotals,
    store: &dyn UsageStore,
    now_ms: u64,
) -> Result<usize, SampleError> {
    let samples = source.stored().await.map_err(SampleError::Source)?;
    store
        .record_storage(BucketSize::Hour.start_of(now_ms), &samples)
        .await?;
    Ok(samples.len())
}

/// Samples every `every` until the task is dropped.
pub async fn run(source: Arc<dyn StoredTotals>, store: Arc<dyn UsageStore>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = resizer_core::time::now_unix_ms();
        match sample_once(source.as_ref(), store.as_ref(), now).await {
            Ok(tenants) => {
                metrics::counter!("resizer_usage_storage_samples_total", "outcome" => "ok").increment(1);
                metrics::gauge!("resizer_usage_storage_tenants").set(tenants as f64);
            }
            Err(e) => {
                metrics::counter!("resizer_usage_storage_samples_total", "outcome" => "error").increment(1);
                tracing::error!(error = %e, "sampling stored bytes failed; retrying at the next round");
            }
        }
    }
}
