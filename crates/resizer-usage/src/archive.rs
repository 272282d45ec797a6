//! The raw record archive: every record, kept for audit, partitioned by day.
//!
//! Embedded: JSON lines under `archive/date=YYYY-MM-DD/`, one file per shipped
//! segment. (A compressed columnar format is the next step; the partitioning
//! and the reader's contract stay.)

use std::path::{Path, PathBuf};

use resizer_core::ids::TenantId;

use crate::log::{UsageLogError, read_segment};
use crate::record::UsageRecord;

const DAY_MS: u64 = 86_400_000;

/// The partition directory name of a day.
fn partition(day_start_ms: u64) -> String {
    let date = resizer_core::time::rfc3339((day_start_ms / 1000) as i64);
    format!("date={}", &date[..10])
}

/// The archive under one directory.
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    /// Uses `dir` (created when needed).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Files a shipped segment under the day of its first record; the rename is atomic.
    pub fn file_segment(&self, segment: &Path, first_record_ms: u64) -> Result<(), UsageLogError> {
        let day = self
            .dir
            .join(partition(first_record_ms - first_record_ms % DAY_MS));
        std::fs::create_dir_all(&day)?;
        let name = segment.file_name().expect("segments have names");
        std::fs::rename(segment, day.join(name))?;
        Ok(())
    }

    /// Returns the tenant's records received in `[from_ms, to_ms)`, oldest first, at most `limit`.
    pub fn records(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, UsageLogError> {
        let mut out = Vec::new();
        // A segment spans seconds, so a record sits in its own day's partition or the one before.
        let mut day = (from_ms - from_ms % DAY_MS).saturating_sub(DAY_MS);
        while day < to_ms {
            let dir = self.dir.join(partition(day));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                files.sort();
                for file in files {
                    let (records, _) = read_segment(&file)?;
                    out.extend(records.into_iter().filter(|r| {
                        r.tenant_id == *tenant && r.received_unix_ms >= from_ms && r.received_unix_ms < to_ms
                    }));
                }
            }
            day += DAY_MS;
        }
        out.sort_by_key(|r| r.received_unix_ms);
        out.truncate(limit);
        Ok(out)
    }
}
