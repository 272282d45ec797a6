//! The raw record archive: every record, kept for audit, as Parquet (zstd)
//! partitioned by day (`usage/date=YYYY-MM-DD/part-….parquet`) in an object
//! store. Small files from each shipped batch are compacted, per past day,
//! into one file sorted by tenant and time.
//!
//! Writes are idempotent at read time: a batch filed twice (a crash between
//! filing and deleting its segment) or a compaction interrupted before it
//! removed its inputs leaves duplicate rows, which readers drop by record id.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use resizer_core::ids::{TenantId, random_bytes, to_hex};
use resizer_core::time::{now_unix_ms, rfc3339};

use crate::columnar::{ColumnarError, decode, decode_tenant, encode};
use crate::record::UsageRecord;

const DAY_MS: u64 = 86_400_000;

/// Why the archive failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The object store failed.
    #[error("archive store: {0}")]
    Io(#[from] std::io::Error),
    /// A file could not be encoded or decoded.
    #[error(transparent)]
    Columnar(#[from] ColumnarError),
}

/// Where archive files live: a local directory by default; an S3-compatible
/// bucket implements the same four calls. Async: a bucket is a network
/// service, and a directory's calls run on the blocking pool.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores an object atomically (readers see all of it or none).
    async fn put(&self, key: &str, bytes: Bytes) -> std::io::Result<()>;
    /// Reads an object.
    async fn get(&self, key: &str) -> std::io::Result<Bytes>;
    /// Lists keys under a prefix (a "directory" ending in `/`), sorted.
    async fn list(&self, prefix: &str) -> std::io::Result<Vec<String>>;
    /// Deletes an object; deleting a missing one is not an error.
    async fn delete(&self, key: &str) -> std::io::Result<()>;
}

/// Runs blocking work (file system calls, Parquet encoding) off the async threads.
async fn blocking<T: Send + 'static, E: From<std::io::Error> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        E::from(std::io::Error::other(format!(
            "a blocking archive task failed: {e}"
        )))
    })?
}

/// Objects as files under a root directory.
pub struct LocalDirStore {
    root: PathBuf,
}

impl LocalDirStore {
    /// Uses `root` (created when needed).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

fn put_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The archive is the record of last resort: its names must survive a crash too.
    match path.parent() {
        Some(dir) => crate::log::sync_dir(dir),
        None => Ok(()),
    }
}

fn list_dir(dir: &Path, prefix: &str) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().to_string();
                if !name.ends_with(".tmp") {
                    keys.push(format!("{prefix}{name}"));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    keys.sort();
    Ok(keys)
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    async fn put(&self, key: &str, bytes: Bytes) -> std::io::Result<()> {
        let path = self.root.join(key);
        blocking(move || put_file(&path, &bytes)).await
    }

    async fn get(&self, key: &str) -> std::io::Result<Bytes> {
        let path = self.root.join(key);
        blocking(move || std::fs::read(path).map(Bytes::from)).await
    }

    async fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        let (dir, prefix) = (self.root.join(prefix), prefix.to_string());
        blocking(move || list_dir(&dir, &prefix)).await
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        let path = self.root.join(key);
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }
}

/// The partition prefix of the day starting at `day_start_ms`.
fn partition(day_start_ms: u64) -> String {
    let date = rfc3339((day_start_ms / 1000) as i64);
    format!("usage/date={}/", &date[..10])
}

/// Archive objects a read fetches and decodes at once.
const READ_AHEAD: usize = 8;

/// The archive over an object store.
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    seq: AtomicU64,
}

impl Archive {
    /// Archives into `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            seq: AtomicU64::new(0),
        }
    }

    fn object_name(&self, kind: &str) -> String {
        let mut suffix = [0u8; 4];
        random_bytes(&mut suffix);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{kind}-{:016}-{seq:010}-{}.parquet",
            now_unix_ms(),
            to_hex(&suffix)
        )
    }

    /// Files records under the day each was received; returns the bytes written.
    pub async fn file_records(&self, records: &[UsageRecord]) -> Result<u64, ArchiveError> {
        let mut by_day: std::collections::BTreeMap<u64, Vec<UsageRecord>> = Default::default();
        for r in records {
            by_day
                .entry(r.received_unix_ms - r.received_unix_ms % DAY_MS)
                .or_default()
                .push(r.clone());
        }
        let mut written = 0;
        for (day, rows) in by_day {
            let bytes = blocking(move || encode(&rows).map(Bytes::from).map_err(ArchiveError::from)).await?;
            written += bytes.len() as u64;
            self.store
                .put(&format!("{}{}", partition(day), self.object_name("part")), bytes)
                .await?;
        }
        Ok(written)
    }

    /// Returns the tenant's records received in `[from_ms, to_ms)`, oldest first, at most `limit`.
    pub async fn records(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, ArchiveError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut day = from_ms - from_ms % DAY_MS;
        while day < to_ms && out.len() < limit {
            let keys = self.store.list(&partition(day)).await?;
            // A day holds one object per aggregated batch until it is compacted:
            // fetch and decode several at once (in order), not one round trip each.
            let mut objects = futures_util::stream::iter(keys)
                .map(|key| {
                    let tenant = tenant.to_string();
                    async move {
                        let bytes = self.store.get(&key).await?;
                        blocking(move || decode_tenant(bytes, &tenant).map_err(ArchiveError::from)).await
                    }
                })
                .buffered(READ_AHEAD);
            while let Some(rows) = objects.next().await {
                out.extend(rows?.into_iter().filter(|r| {
                    r.received_unix_ms >= from_ms
                        && r.received_unix_ms < to_ms
                        && seen.insert(r.record_id.clone())
                }));
            }
            day += DAY_MS;
        }
        out.sort_by_key(|r| r.received_unix_ms);
        out.truncate(limit);
        Ok(out)
    }

    /// Merges a day's per-batch files into compacted files of at most
    /// `max_rows` records each, sorted by tenant and time, without duplicates
    /// inside a file; returns how many files it replaced. Memory is bounded
    /// by `max_rows` records (plus one input file), not by the day: a node at
    /// 300 req/s files 26 M records a day. Compacted files are never re-read
    /// here, so each record is rewritten once.
    pub async fn compact_day(&self, day_start_ms: u64, max_rows: usize) -> Result<usize, ArchiveError> {
        let mut parts: Vec<String> = self
            .store
            .list(&partition(day_start_ms))
            .await?
            .into_iter()
            .filter(|k| is_part(k))
            .collect();
        let mut replaced = 0;
        while parts.len() >= 2 {
            let mut batch = Vec::new();
            let mut rows = Vec::new();
            while let Some(key) = parts.first()
                && (batch.is_empty() || rows.len() < max_rows)
            {
                let bytes = self.store.get(key).await?;
                rows.extend(blocking(move || decode(bytes).map_err(ArchiveError::from)).await?);
                batch.push(parts.remove(0));
            }
            if batch.len() < 2 {
                break;
            }
            let bytes = blocking(move || merge(rows)).await?;
            // Write the merged file first: a crash now leaves duplicates, never a loss.
            self.store
                .put(
                    &format!("{}{}", partition(day_start_ms), self.object_name("compacted")),
                    bytes,
                )
                .await?;
            for key in &batch {
                self.store.delete(key).await?;
            }
            replaced += batch.len();
        }
        Ok(replaced)
    }

    /// Returns the day starts that have more than one per-batch file, oldest first.
    pub async fn days_to_compact(&self) -> Result<Vec<u64>, ArchiveError> {
        let mut out = Vec::new();
        for dir in self.store.list("usage/").await? {
            let Some(date) = dir.strip_prefix("usage/date=") else {
                continue;
            };
            let Some(ms) = resizer_core::time::parse_rfc3339_ms(&format!("{date}T00:00:00Z")) else {
                continue;
            };
            let day = ms.max(0) as u64;
            if self
                .store
                .list(&partition(day))
                .await?
                .iter()
                .filter(|k| is_part(k))
                .count()
                > 1
            {
                out.push(day);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// One compacted file of `rows`: duplicates dropped, sorted by tenant and time.
fn merge(mut rows: Vec<UsageRecord>) -> Result<Bytes, ArchiveError> {
    let mut seen = HashSet::new();
    rows.retain(|r| seen.insert(r.record_id.clone()));
    rows.sort_by(|a, b| {
        (a.tenant_id.as_str(), a.received_unix_ms).cmp(&(b.tenant_id.as_str(), b.received_unix_ms))
    });
    Ok(Bytes::from(encode(&rows)?))
}

/// Records per compacted file: about 70 MB of heap while one is written
/// (measured: 7 MB per 5,000 records, `tests/compaction_memory.rs`), and row
/// groups a tenant's read can skip. A day of 26 M records is 520 such files.
pub const COMPACT_ROWS: usize = 50_000;

/// Whether an archive object is a per-batch file (not yet compacted).
fn is_part(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("part-"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::tests::record;

    #[tokio::test]
    async fn test_archive_files_by_day_reads_by_tenant_and_compacts_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        check_archive(Arc::new(LocalDirStore::new(dir.path().to_path_buf()))).await;
    }

    /// The archive's contract over any object store: filing by day, tenant
    /// reads, re-filed batches read once, compaction.
    pub(crate) async fn check_archive(store: Arc<dyn ObjectStore>) {
        let archive = Archive::new(store);
        let (a, b) = (TenantId::random(), TenantId::random());
        let first: Vec<_> = (0..10).map(|i| record(&a, i * 1000, 200)).collect();
        let second = vec![record(&a, DAY_MS + 5, 200), record(&b, 20, 200)];
        archive.file_records(&first).await.unwrap();
        archive.file_records(&second).await.unwrap();
        // The first batch filed again (a retried shipment).
        archive.file_records(&first).await.unwrap();
        assert_eq!(archive.records(&a, 0, DAY_MS, 100).await.unwrap().len(), 10);
        assert_eq!(archive.records(&a, 0, 2 * DAY_MS, 100).await.unwrap().len(), 11);
        assert_eq!(archive.records(&b, 0, 2 * DAY_MS, 100).await.unwrap().len(), 1);
        assert_eq!(archive.records(&a, 2000, 5000, 100).await.unwrap().len(), 3);
        assert_eq!(archive.days_to_compact().await.unwrap(), vec![0]);
        assert_eq!(archive.compact_day(0, COMPACT_ROWS).await.unwrap(), 3);
        assert!(archive.days_to_compact().await.unwrap().is_empty());
        assert_eq!(archive.records(&a, 0, DAY_MS, 100).await.unwrap().len(), 10);
        assert_eq!(
            archive.records(&b, 0, DAY_MS, 100).await.unwrap(),
            vec![second[1].clone()]
        );
    }
}
