//! The roll-up store shared by the distributed aggregators: PostgreSQL.
//!
//! Same contract as the SQLite store: one transaction marks the batch's record
//! ids seen (`ON CONFLICT DO NOTHING RETURNING` yields only the new ones) and
//! adds those to their hourly buckets, so an overlapping batch from a second
//! aggregator, or a batch redelivered after a crash, counts once.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use resizer_core::ids::TenantId;
use tokio_postgres::{Client, NoTls};

use crate::record::UsageRecord;
use crate::rollup::{Bucket, BucketSize, StoredSample, roll_up};
use crate::store::{UsageStore, UsageStoreError, day_of};

/// Time allowed for connecting and for any one operation.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage_seen (record_id TEXT PRIMARY KEY, day_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_hourly (
    tenant_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    succeeded BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    pixels_in BIGINT NOT NULL,
    pixels_out BIGINT NOT NULL,
    cpu_micros BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, start_ms)
);
CREATE TABLE IF NOT EXISTS usage_storage_hourly (
    tenant_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    originals BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, start_ms)
);";

fn pg(e: impl std::fmt::Display) -> UsageStoreError {
    UsageStoreError::Postgres(e.to_string())
}

/// One statement, bounded by [`OP_TIMEOUT`]. On an error the caller drops its
/// connection so the next call reconnects.
async fn within_timeout<T>(
    op: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, UsageStoreError> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(result) => result.map_err(pg),
        Err(_) => Err(pg("PostgreSQL operation timed out")),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Roll-ups in PostgreSQL, over one connection reconnected on failure.
pub struct PostgresUsageStore {
    url: String,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl PostgresUsageStore {
    /// Connects and creates the tables if missing.
    pub async fn connect(url: &str) -> Result<Self, UsageStoreError> {
        let store = Self {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(None),
        };
        // Roles starting together may race on CREATE TABLE IF NOT EXISTS (PostgreSQL
        // can then report a duplicate type); a short retry settles it.
        let mut attempt = 0;
        loop {
            let mut guard = store.client().await?;
            let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
            // Stores made before pruning existed: their ids count as seen today.
            let schema = format!(
                "{SCHEMA}
                 ALTER TABLE usage_seen ADD COLUMN IF NOT EXISTS day_ms BIGINT NOT NULL DEFAULT {};
                 CREATE INDEX IF NOT EXISTS usage_seen_by_day ON usage_seen (day_ms);",
                day_of(resizer_core::time::now_unix_ms())
            );
            match client.batch_execute(&schema).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    tracing::debug!(error = %e, "creating the usage tables; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(pg(e)),
            }
            drop(guard);
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
        }
        Ok(store)
    }

    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, UsageStoreError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) =
                tokio::time::timeout(OP_TIMEOUT, tokio_postgres::connect(&self.url, NoTls))
                    .await
                    .map_err(|_| pg("timed out connecting to PostgreSQL"))?
                    .map_err(pg)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "usage store connection closed");
                }
            });
            *guard = Some(client);
        }
        Ok(guard)
    }

    async fn apply_inner(client: &mut Client, records: &[UsageRecord]) -> Result<usize, UsageStoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
        let days: Vec<i64> = records
            .iter()
            .map(|r| to_i64(day_of(r.received_unix_ms)))
            .collect();
        let rows = tx
            .query(
                "INSERT INTO usage_seen (record_id, day_ms) SELECT * FROM unnest($1::text[], $2::bigint[])
                 ON CONFLICT DO NOTHING RETURNING record_id",
                &[&ids, &days],
            )
            .await
            .map_err(pg)?;
        let fresh: HashSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let add = tx
            .prepare(&format!(
                "INSERT INTO usage_hourly VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (tenant_id, start_ms) DO UPDATE SET
                     requests = LEAST(usage_hourly.requests::numeric + excluded.requests, {MAX})::bigint,
                     succeeded = LEAST(usage_hourly.succeeded::numeric + excluded.succeeded, {MAX})::bigint,
                     failed = LEAST(usage_hourly.failed::numeric + excluded.failed, {MAX})::bigint,
                     bytes_in = LEAST(usage_hourly.bytes_in::numeric + excluded.bytes_in, {MAX})::bigint,
                     bytes_out = LEAST(usage_hourly.bytes_out::numeric + excluded.bytes_out, {MAX})::bigint,
                     pixels_in = LEAST(usage_hourly.pixels_in::numeric + excluded.pixels_in, {MAX})::bigint,
                     pixels_out = LEAST(usage_hourly.pixels_out::numeric + excluded.pixels_out, {MAX})::bigint,
                     cpu_micros = LEAST(usage_hourly.cpu_micros::numeric + excluded.cpu_micros, {MAX})::bigint",
                // Counters saturate, in SQL as in Rust: a corrupt record must not
                // wedge every later batch on "bigint out of range".
                MAX = i64::MAX
            ))
            .await
            .map_err(pg)?;
        let new_records = records.iter().filter(|r| fresh.contains(r.record_id.as_str()));
        for ((tenant, start), b) in roll_up(new_records, BucketSize::Hour) {
            tx.execute(
                &add,
                &[
                    &tenant.as_str(),
                    &to_i64(start),
                    &to_i64(b.requests),
                    &to_i64(b.succeeded),
                    &to_i64(b.failed),
                    &to_i64(b.bytes_in),
                    &to_i64(b.bytes_out),
                    &to_i64(b.pixels_in),
                    &to_i64(b.pixels_out),
                    &to_i64(b.cpu_micros),
                ],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(fresh.len())
    }
}

#[async_trait]
impl UsageStore for PostgresUsageStore {
    async fn apply(&self, records: &[UsageRecord]) -> Result<usize, UsageStoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
        let result = match tokio::time::timeout(OP_TIMEOUT, Self::apply_inner(client, records)).await {
            Ok(r) => r,
            Err(_) => Err(pg("PostgreSQL operation timed out")),
        };
        if result.is_err() {
            *guard = None;
        }
        result
    }

    async fn hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>, UsageStoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
        let (tenant, from, to) = (tenant.as_str(), to_i64(from_ms), to_i64(to_ms));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&tenant, &from, &to];
        let query = client.query(
            "SELECT start_ms, requests, succeeded, failed, bytes_in, bytes_out, pixels_in, pixels_out, cpu_micros
             FROM usage_hourly WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms",
            &params,
        );
        let rows = within_timeout(query).await;
        if rows.is_err() {
            *guard = None;
        }
        let rows = rows?;
        let get = |row: &tokio_postgres::Row, i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| Bucket {
                start_unix_ms: get(r, 0),
                requests: get(r, 1),
                succeeded: get(r, 2),
                failed: get(r, 3),
                bytes_in: get(r, 4),
                bytes_out: get(r, 5),
                pixels_in: get(r, 6),
                pixels_out: get(r, 7),
                cpu_micros: get(r, 8),
                ..Bucket::default()
            })
            .collect())
    }

    async fn record_storage(&self, hour_ms: u64, samples: &[StoredSample]) -> Result<(), UsageStoreError> {
        // One row per tenant: a statement may not update the same row twice.
        let mut peaks = std::collections::BTreeMap::<&str, (i64, i64)>::new();
        for s in samples {
            let peak = peaks.entry(s.tenant_id.as_str()).or_default();
            *peak = (peak.0.max(to_i64(s.bytes)), peak.1.max(to_i64(s.originals)));
        }
        let tenants: Vec<&str> = peaks.keys().copied().collect();
        let bytes: Vec<i64> = peaks.values().map(|p| p.0).collect();
        let originals: Vec<i64> = peaks.values().map(|p| p.1).collect();
        let hour = to_i64(hour_ms);
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&hour, &tenants, &bytes, &originals];
        let raise = client.execute(
            "INSERT INTO usage_storage_hourly (tenant_id, start_ms, bytes, originals)
             SELECT t, $1, b, o FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS s(t, b, o)
             ON CONFLICT (tenant_id, start_ms) DO UPDATE SET
                 bytes = GREATEST(usage_storage_hourly.bytes, excluded.bytes),
                 originals = GREATEST(usage_storage_hourly.originals, excluded.originals)",
            &params,
        );
        let done = within_timeout(raise).await;
        if done.is_err() {
            *guard = None;
        }
        done.map(|_| ())
    }

    async fn storage_hourly(
        &self,
        tenant: &TenantId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, u64, u64)>, UsageStoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
        let (tenant, from, to) = (tenant.as_str(), to_i64(from_ms), to_i64(to_ms));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&tenant, &from, &to];
        let query = client.query(
            "SELECT start_ms, bytes, originals FROM usage_storage_hourly
             WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms",
            &params,
        );
        let rows = within_timeout(query).await;
        if rows.is_err() {
            *guard = None;
        }
        let get = |row: &tokio_postgres::Row, i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(rows?.iter().map(|r| (get(r, 0), get(r, 1), get(r, 2))).collect())
    }

    /// Deletes in slices of 50,000 rows, each its own statement, so a large
    /// day never holds one long transaction or exceeds the operation timeout.
    async fn prune_seen(&self, before_ms: u64) -> Result<u64, UsageStoreError> {
        let before = to_i64(day_of(before_ms));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&before];
        let mut dropped = 0;
        loop {
            let mut guard = self.client().await?;
            let client = guard.as_mut().ok_or_else(|| pg("no connection"))?;
            let delete = client.execute(
                "DELETE FROM usage_seen WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM usage_seen WHERE day_ms < $1 LIMIT 50000))",
                &params,
            );
            let n = within_timeout(delete).await;
            if n.is_err() {
                *guard = None;
            }
            let n = n?;
            dropped += n;
            if n < 50_000 {
                return Ok(dropped);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;

    #[tokio::test]
    async fn test_postgres_store_counts_each_record_once_across_concurrent_appliers() {
        let Some(url) = resizer_testing::fresh_database("usage").await else {
            return;
        };
        let (one, two) = (
            PostgresUsageStore::connect(&url).await.unwrap(),
            PostgresUsageStore::connect(&url).await.unwrap(),
        );
        let t = TenantId::random();
        let batch: Vec<_> = (0..200)
            .map(|i| record(&t, i, if i % 10 == 0 { 500 } else { 200 }))
            .collect();
        // Two aggregators apply overlapping batches at the same time.
        let (a, b) = tokio::join!(one.apply(&batch[..150]), two.apply(&batch[50..]));
        assert_eq!(a.unwrap() + b.unwrap(), 200);
        assert_eq!(one.apply(&batch).await.unwrap(), 0);
        let hours = two.hourly(&t, 0, 3_600_000).await.unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(
            (hours[0].requests, hours[0].succeeded, hours[0].failed),
            (200, 180, 20)
        );
        // Pruning forgets day 0's ids only; later copies within the horizon still count once.
        const DAY: u64 = 86_400_000;
        let later = vec![record(&t, DAY + 1, 200)];
        assert_eq!(one.apply(&later).await.unwrap(), 1);
        assert_eq!(two.prune_seen(DAY + 10).await.unwrap(), 200);
        assert_eq!(one.apply(&later).await.unwrap(), 0);
        assert_eq!(two.prune_seen(DAY + 10).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn test_postgres_storage_samples_keep_the_hours_peak_per_tenant() {
        let Some(url) = resizer_testing::fresh_database("usage").await else {
            return;
        };
        let store = PostgresUsageStore::connect(&url).await.unwrap();
        crate::testing::storage_contract(&store).await;
    }

    #[tokio::test]
    async fn test_postgres_counters_saturate_instead_of_wedging_the_batch() {
        let Some(url) = resizer_testing::fresh_database("usage").await else {
            return;
        };
        let store = PostgresUsageStore::connect(&url).await.unwrap();
        let t = TenantId::random();
        let absurd = |at| {
            let mut r = record(&t, at, 200);
            r.input_bytes = u64::MAX;
            r
        };
        // Two batches into the same hour: the second must add, not fail on "bigint out of range".
        assert_eq!(store.apply(&[absurd(1)]).await.unwrap(), 1);
        assert_eq!(store.apply(&[absurd(2), record(&t, 3, 200)]).await.unwrap(), 2);
        let hours = store.hourly(&t, 0, 3_600_000).await.unwrap();
        assert_eq!((hours[0].requests, hours[0].bytes_in), (3, i64::MAX as u64));
    }
}
