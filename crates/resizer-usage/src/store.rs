//! The roll-up store: per-tenant hourly counters, applied idempotently by record id.
//!
//! Embedded: SQLite in the data directory. Each batch is one transaction that
//! marks its record ids seen and adds only the new records to their buckets,
//! so a batch applied twice (a crash between commit and deleting the batch)
//! counts once.
//!
//! The seen ids would grow by one row per request forever; each carries the day
//! its record was received, and [`UsageStore::prune_seen`] drops the days past
//! the dedup horizon (`DEDUP_HORIZON`, 35 days). A copy of a record arriving
//! after its day was pruned would count again: copies come from redelivery and
//! re-shipping, minutes after the original, so the horizon leaves weeks of margin.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use resizer_core::ids::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

use crate::record::UsageRecord;
use crate::rollup::{Bucket, BucketSize, StoredSample, roll_up};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageStoreError {
    /// SQLite refused.
    #[error("usage store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or is unreachable.
    #[error("usage store: {0}")]
    Postgres(String),
    /// The blocking task running the query failed.
    #[error("usage store task: {0}")]
    Blocking(String),
}

/// Per-tenant hourly usage.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Counts the records not seen before; returns how many were new.
    async fn apply(&self, records: &[UsageRecord]) -> Result<usize, UsageStoreError>;
    /// Returns the tenant's hourly buckets starting in `[from_ms, to_ms)`, oldest first.
    async fn hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>, UsageStoreError>;
    /// Forgets the ids of records received on days before the one holding
    /// `before_ms`; returns how many were dropped.
    async fn prune_seen(&self, before_ms: u64) -> Result<u64, UsageStoreError>;
    /// Raises each sampled tenant's storage peak for the hour starting at
    /// `hour_ms` to at least its sample. Idempotent and order-free, so any
    /// number of samplers may repeat samples.
    async fn record_storage(&self, hour_ms: u64, samples: &[StoredSample]) -> Result<(), UsageStoreError>;
    /// The tenant's hourly storage peaks `(hour start, bytes, originals)`
    /// starting in `[from_ms, to_ms)`, oldest first.
    async fn storage_hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, u64, u64)>, UsageStoreError>;
}

/// How long record ids are remembered for deduplication.
pub const DEDUP_HORIZON: std::time::Duration = std::time::Duration::from_secs(35 * 86_400);

/// The start of the day holding `unix_ms`: the granule of seen-id pruning.
pub(crate) fn day_of(unix_ms: u64) -> u64 {
    unix_ms - unix_ms % 86_400_000
}

/// The embedded store. Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct SqliteUsageStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteUsageStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, UsageStoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS seen (
                 record_id TEXT PRIMARY KEY,
                 day_ms INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS hourly (
                 tenant_id TEXT NOT NULL,
                 start_ms INTEGER NOT NULL,
                 requests INTEGER NOT NULL,
                 succeeded INTEGER NOT NULL,
                 failed INTEGER NOT NULL,
                 bytes_in INTEGER NOT NULL,
                 bytes_out INTEGER NOT NULL,
                 pixels_in INTEGER NOT NULL,
                 pixels_out INTEGER NOT NULL,
                 cpu_micros INTEGER NOT NULL,
                 PRIMARY KEY (tenant_id, start_ms)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS storage_hourly (
                 tenant_id TEXT NOT NULL,
                 start_ms INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 originals INTEGER NOT NULL,
                 PRIMARY KEY (tenant_id, start_ms)
             ) WITHOUT ROWID;",
        )?;
        // Stores made before pruning existed: their ids count as seen today.
        let has_day: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('seen') WHERE name = 'day_ms'")?
            .exists([])?;
        if !has_day {
            let today = day_of(resizer_core::time::now_unix_ms());
            conn.execute_batch(&format!(
                "ALTER TABLE seen ADD COLUMN day_ms INTEGER NOT NULL DEFAULT {today}"
            ))?;
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS seen_by_day ON seen (day_ms)")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl UsageStore for SqliteUsageStore {
    async fn apply(&self, records: &[UsageRecord]) -> Result<usize, UsageStoreError> {
        let (this, records) = (self.clone(), records.to_vec());
        tokio::task::spawn_blocking(move || this.apply_blocking(&records))
            .await
            .map_err(|e| UsageStoreError::Blocking(e.to_string()))?
    }

    async fn hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>, UsageStoreError> {
        let (this, tenant) = (self.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || this.hourly_blocking(&tenant, from_ms, to_ms))
            .await
            .map_err(|e| UsageStoreError::Blocking(e.to_string()))?
    }

    async fn prune_seen(&self, before_ms: u64) -> Result<u64, UsageStoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.lock();
            let dropped = conn.execute(
                "DELETE FROM seen WHERE day_ms < ?1",
                params![to_i64(day_of(before_ms))],
            )?;
            Ok(dropped as u64)
        })
        .await
        .map_err(|e| UsageStoreError::Blocking(e.to_string()))?
    }

    async fn record_storage(&self, hour_ms: u64, samples: &[StoredSample]) -> Result<(), UsageStoreError> {
        let (this, samples) = (self.clone(), samples.to_vec());
        tokio::task::spawn_blocking(move || {
            let mut conn = this.lock();
            let tx = conn.transaction()?;
            {
                let mut raise = tx.prepare_cached(
                    "INSERT INTO storage_hourly VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant_id, start_ms) DO UPDATE SET
                         bytes = max(bytes, excluded.bytes),
                         originals = max(originals, excluded.originals)",
                )?;
                for s in &samples {
                    raise.execute(params![
                        s.tenant_id.as_str(),
                        to_i64(hour_ms),
                        to_i64(s.bytes),
                        to_i64(s.originals)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| UsageStoreError::Blocking(e.to_string()))?
    }

    async fn storage_hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, u64, u64)>, UsageStoreError> {
        let (this, tenant) = (self.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || {
            let conn = this.lock();
            let mut q = conn.prepare_cached(
                "SELECT start_ms, bytes, originals FROM storage_hourly
                 WHERE tenant_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 ORDER BY start_ms",
            )?;
            let rows = q.query_map(params![tenant.as_str(), to_i64(from_ms), to_i64(to_ms)], |row| {
                let get = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((get(0)?, get(1)?, get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .map_err(|e| UsageStoreError::Blocking(e.to_string()))?
    }
}

impl SqliteUsageStore {
    /// [`UsageStore::apply`] on the calling thread.
    pub fn apply_blocking(&self, records: &[UsageRecord]) -> Result<usize, UsageStoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut fresh = Vec::with_capacity(records.len());
        {
            let mut mark =
                tx.prepare_cached("INSERT OR IGNORE INTO seen (record_id, day_ms) VALUES (?1, ?2)")?;
            for r in records {
                if mark.execute(params![r.record_id.as_str(), to_i64(day_of(r.received_unix_ms))])? == 1 {
                    fresh.push(r);
                }
            }
            let mut add = tx.prepare_cached(
                "INSERT INTO hourly VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (tenant_id, start_ms) DO UPDATE SET
                     requests = requests + excluded.requests,
                     succeeded = succeeded + excluded.succeeded,
                     failed = failed + excluded.failed,
                     bytes_in = bytes_in + excluded.bytes_in,
                     bytes_out = bytes_out + excluded.bytes_out,
                     pixels_in = pixels_in + excluded.pixels_in,
                     pixels_out = pixels_out + excluded.pixels_out,
                     cpu_micros = cpu_micros + excluded.cpu_micros",
            )?;
            for ((tenant, start), b) in roll_up(fresh.iter().copied(), BucketSize::Hour) {
                add.execute(params![
                    tenant.as_str(),
                    to_i64(start),
                    to_i64(b.requests),
                    to_i64(b.succeeded),
                    to_i64(b.failed),
                    to_i64(b.bytes_in),
                    to_i64(b.bytes_out),
                    to_i64(b.pixels_in),
                    to_i64(b.pixels_out),
                    to_i64(b.cpu_micros),
                ])?;
            }
        }
        tx.commit()?;
        Ok(fresh.len())
    }

    /// [`UsageStore::hourly`] on the calling thread.
    pub fn hourly_blocking(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>, UsageStoreError> {
        let conn = self.lock();
        let mut q = conn.prepare_cached(
            "SELECT start_ms, requests, succeeded, failed, bytes_in, bytes_out, pixels_in, pixels_out, cpu_micros
             FROM hourly WHERE tenant_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 ORDER BY start_ms",
        )?;
        let rows = q.query_map(params![tenant.as_str(), to_i64(from_ms), to_i64(to_ms)], |row| {
            let get = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(Bucket {
                start_unix_ms: get(0)?,
                requests: get(1)?,
                succeeded: get(2)?,
                failed: get(3)?,
                bytes_in: get(4)?,
                bytes_out: get(5)?,
                pixels_in: get(6)?,
                pixels_out: get(7)?,
                cpu_micros: get(8)?,
                ..Bucket::default()
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SqliteUsageStore {
    /// Returns whether a record id was counted, for tests and audits.
    pub fn seen(&self, record_id: &str) -> Result<bool, UsageStoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT 1 FROM seen WHERE record_id = ?1",
                params![record_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;

    #[tokio::test]
    async fn test_apply_is_idempotent_and_query_is_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteUsageStore::open(&dir.path().join("u.sqlite")).unwrap();
        let (a, b) = (TenantId::random(), TenantId::random());
        let batch = vec![record(&a, 10, 200), record(&a, 20, 500), record(&b, 30, 200)];
        assert_eq!(store.apply(&batch).await.unwrap(), 3);
        // The same batch again (a retried shipment) changes nothing.
        assert_eq!(store.apply(&batch).await.unwrap(), 0);
        assert_eq!(store.apply(&[record(&a, 3_600_000, 200)]).await.unwrap(), 1);
        let hours = store.hourly(&a, 0, 7_200_000).await.unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(
            (hours[0].requests, hours[0].succeeded, hours[0].failed),
            (2, 1, 1)
        );
        assert_eq!(hours[1].start_unix_ms, 3_600_000);
        assert_eq!(store.hourly(&b, 0, 7_200_000).await.unwrap()[0].requests, 1);
        assert!(store.seen(batch[0].record_id.as_str()).unwrap());
    }

    #[tokio::test]
    async fn test_storage_samples_keep_the_hours_peak_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteUsageStore::open(&dir.path().join("u.sqlite")).unwrap();
        crate::testing::storage_contract(&store).await;
    }

    #[tokio::test]
    async fn test_prune_forgets_only_days_before_the_horizon() {
        const DAY: u64 = 86_400_000;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteUsageStore::open(&dir.path().join("u.sqlite")).unwrap();
        let t = TenantId::random();
        let old = vec![record(&t, 10, 200), record(&t, DAY - 1, 200)];
        let recent = vec![record(&t, DAY, 200), record(&t, 2 * DAY + 5, 200)];
        assert_eq!(
            store
                .apply(&[old.clone(), recent.clone()].concat())
                .await
                .unwrap(),
            4
        );
        // Pruning before a time inside day 1 drops day 0 only.
        assert_eq!(store.prune_seen(DAY + 7).await.unwrap(), 2);
        assert!(!store.seen(old[0].record_id.as_str()).unwrap());
        assert!(store.seen(recent[0].record_id.as_str()).unwrap());
        // Copies inside the horizon still count once; a pruned day's copy counts
        // again (the documented limit of the horizon).
        assert_eq!(store.apply(&recent).await.unwrap(), 0);
        assert_eq!(store.apply(&old[..1]).await.unwrap(), 1);
    }
}
