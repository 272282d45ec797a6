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
    pub fn run_once(&self) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let mut counted = 0;
        for segment in self.log.ready_segments()? {
            let (records, torn) = read_segment(&segment)?;
            if torn > 0 {
                metrics::counter!("resizer_usage_torn_lines_total").increment(torn as u64);
                tracing::warn!(segment = %segment.display(), torn, "skipped torn usage lines (a crash mid-write)");
            }
            counted += self.store.apply(&records)?;
            self.archive.file_records(&records)?;
            std::fs::remove_file(&segment)?;
            metrics::counter!("resizer_usage_records_aggregated_total").increment(records.len() as u64);
        }
        // Past days: merge the small per-batch files, one day per round.
        let today = resizer_core::time::now_unix_ms() / 86_400_000 * 86_400_000;
        if let Some(day) = self.archive.days_to_compact()?.into_iter().find(|d| *d < today) {
            let merged = self.archive.compact_day(day)?;
            tracing::info!(day, merged, "compacted a day of the usage archive");
        }
        Ok(counted)
    }

    /// Runs every `every` on a blocking thread until the task is dropped.
    pub async fn run(self: Arc<Self>, every: Duration) {
        loop {
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.run_once().map_err(|e| e.to_string())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "usage aggregation failed; retrying"),
                Err(e) => tracing::error!(error = %e, "usage aggregation panicked"),
            }
            tokio::time::sleep(every).await;
        }
    }
}
