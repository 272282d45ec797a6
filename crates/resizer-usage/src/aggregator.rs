//! The aggregator: takes closed log segments, counts their records into the
//! roll-up store (idempotently) and files them in the archive.
//!
//! Embedded: one in-process instance reading the node's own log directory.
//! Order of a batch: count (one transaction), archive, then delete the
//! segment. A crash in between re-does the segment at the next run: the
//! store's record-id check makes the count a no-op and readers drop the
//! archive's duplicate rows, so nothing is lost or counted twice.

use std::sync::Arc;
use std::time::Duration;

use crate::archive::Archive;
use crate::error::PipelineError;
use crate::log::{UsageLog, read_segment};
use crate::store::UsageStore;

/// The embedded aggregator.
pub struct Aggregator {
    log: Arc<UsageLog>,
    store: Arc<dyn UsageStore>,
    archive: Arc<Archive>,
}

impl Aggregator {
    /// Aggregates `log` into `store` and `archive`.
    pub fn new(log: Arc<UsageLog>, store: Arc<dyn UsageStore>, archive: Arc<Archive>) -> Self {
        Self { log, store, archive }
    }

    /// Processes every closed segment; returns the number of new records counted.
    pub async fn run_once(&self) -> Result<usize, PipelineError> {
        let mut counted = 0;
        for segment in self.log.ready_segments()? {
            let (records, torn) = read_segment(&segment)?;
            if torn > 0 {
                metrics::counter!("resizer_usage_torn_lines_total").increment(torn as u64);
                tracing::warn!(segment = %segment.display(), torn, "skipped torn usage lines (a crash mid-write)");
            }
            counted += self.store.apply(&records).await?;
            self.archive.file_records(&records).await?;
            std::fs::remove_file(&segment)?;
            metrics::counter!("resizer_usage_records_aggregated_total").increment(records.len() as u64);
        }
        Ok(counted)
    }

    /// Runs every `every` until the task is dropped, with housekeeping at
    /// start and every [`HOUSEKEEPING_EVERY`].
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut last_housekeeping: Option<std::time::Instant> = None;
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "usage aggregation failed; retrying");
            }
            if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                housekeeping(&self.archive, self.store.as_ref()).await;
                last_housekeeping = Some(std::time::Instant::now());
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// How often an aggregator compacts the archive and prunes seen ids: listing
/// every day of the archive is a request per day on S3.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// Compacts one past day of the archive and forgets record ids older than the
/// dedup horizon; failures are logged and retried at the next round.
pub async fn housekeeping(archive: &Arc<Archive>, store: &dyn UsageStore) {
    if let Err(e) = compact_past_day(archive).await {
        tracing::error!(error = %e, "archive compaction failed");
    }
    let horizon =
        resizer_core::time::now_unix_ms().saturating_sub(crate::store::DEDUP_HORIZON.as_millis() as u64);
    match store.prune_seen(horizon).await {
        Ok(0) => {}
        Ok(dropped) => tracing::info!(dropped, "forgot usage record ids past the dedup horizon"),
        Err(e) => tracing::error!(error = %e, "pruning seen usage record ids failed"),
    }
}

/// Past days: merges the small per-batch files of one day per call.
async fn compact_past_day(archive: &Arc<Archive>) -> Result<(), PipelineError> {
    let today = resizer_core::time::now_unix_ms() / 86_400_000 * 86_400_000;
    if let Some(day) = archive.days_to_compact().await?.into_iter().find(|d| *d < today) {
        let merged = archive.compact_day(day, crate::archive::COMPACT_ROWS).await?;
        tracing::info!(day, merged, "compacted a day of the usage archive");
    }
    Ok(())
}
