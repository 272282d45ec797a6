//! Originals for the distributed roles: the images in the S3-compatible
//! bucket (any [`BlobStore`]; the binary plugs in the usage archive's S3
//! client) under `originals/{tenant}/{random}`, and names and metadata in a
//! PostgreSQL table every API node shares. The same shape as
//! [`crate::LocalOriginals`] (files + SQLite), so the two behave alike:
//! a put stores the bytes, then commits the row with the tenant's quota checked
//! under a per-tenant advisory lock (two nodes cannot both squeeze under it),
//! then deletes the blob it replaced. A crash between leaves an unreferenced
//! blob, never a row without its bytes.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use resizer_core::ids::{TenantId, random_bytes, to_hex};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use crate::error::{OriginalsError, storage};
use crate::model::{OriginalMeta, Page, Quota, Totals};
use crate::name::OriginalName;
use crate::store::{OriginalStore, check_quota};

/// Where the bytes go: an object store's put, get and delete.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, atomically.
    async fn put(&self, key: &str, bytes: Bytes) -> std::io::Result<()>;
    /// The object, or `None` when there is none.
    async fn get(&self, key: &str) -> std::io::Result<Option<Bytes>>;
    /// Deletes it; a missing one is not an error.
    async fn delete(&self, key: &str) -> std::io::Result<()>;
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS originals (
    tenant TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    blob TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#;

const COLUMNS: &str = "name, bytes, format, width, height, frames, content_hash, uploaded_at, blob";

/// Time allowed for connecting and for any one statement.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Originals in a bucket, indexed in PostgreSQL.
pub struct SharedOriginals {
    url: String,
    client: Mutex<Option<Client>>,
    blobs: Box<dyn BlobStore>,
}

fn row_to_meta(r: &Row) -> (OriginalMeta, String) {
    (
        OriginalMeta {
            name: r.get(0),
            bytes: r.get::<_, i64>(1) as u64,
            format: r.get(2),
            width: r.get::<_, i32>(3) as u32,
            height: r.get::<_, i32>(4) as u32,
            frames: r.get::<_, i32>(5) as u32,
            content_hash: r.get(6),
            uploaded_at: r.get(7),
        },
        r.get(8),
    )
}

fn blob_key(tenant: &str) -> String {
    let mut buf = [0u8; 16];
    random_bytes(&mut buf);
    format!("originals/{tenant}/{}", to_hex(&buf))
}

impl SharedOriginals {
    /// Connects and creates the table if needed.
    pub async fn connect(url: &str, blobs: Box<dyn BlobStore>) -> Result<Self, OriginalsError> {
        let store = Self {
            url: url.to_string(),
            client: Mutex::new(None),
            blobs,
        };
        let mut guard = store.client().await?;
        let client = guard.as_mut().ok_or_else(|| storage("no connection"))?;
        timed(client.batch_execute(SCHEMA)).await?;
        drop(guard);
        Ok(store)
    }

    /// The live connection, reconnecting first if the last one failed.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, OriginalsError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = timed(tokio_postgres::connect(&self.url, NoTls)).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "originals index connection ended");
                }
            });
            *guard = Some(client);
        }
        Ok(guard)
    }

    async fn select(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(OriginalMeta, String)>, OriginalsError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or_else(|| storage("no connection"))?;
        let sql = format!("SELECT {COLUMNS} FROM originals WHERE tenant = $1 AND name = $2");
        let row = timed(client.query_opt(&sql, &[&tenant, &name])).await?;
        Ok(row.as_ref().map(row_to_meta))
    }

    /// The quota check and the row, in one transaction under the tenant's lock.
    async fn index_put(
        &self,
        tenant: &str,
        meta: &OriginalMeta,
        blob: &str,
        quota: Quota,
    ) -> Result<Option<(OriginalMeta, String)>, OriginalsError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| storage("no connection"))?;
        let tx = timed(client.transaction()).await?;
        timed(tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&tenant])).await?;
        let sql = format!("SELECT {COLUMNS} FROM originals WHERE tenant = $1 AND name = $2");
        let replaced = timed(tx.query_opt(&sql, &[&tenant, &meta.name]))
            .await?
            .as_ref()
            .map(row_to_meta);
        let row = timed(tx.query_one(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0)::BIGINT FROM originals WHERE tenant = $1",
            &[&tenant],
        ))
        .await?;
        let before = Totals {
            count: row.get::<_, i64>(0) as u64,
            bytes: row.get::<_, i64>(1) as u64,
        };
        check_quota(before, replaced.as_ref().map(|(m, _)| m.bytes), meta.bytes, quota)?;
        timed(tx.execute(
            "INSERT INTO originals (tenant, name, blob, bytes, format, width, height, frames, content_hash, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (tenant, name) DO UPDATE SET blob = $3, bytes = $4, format = $5, width = $6, height = $7, \
             frames = $8, content_hash = $9, uploaded_at = $10",
            &[
                &tenant,
                &meta.name,
                &blob,
                &(meta.bytes as i64),
                &meta.format,
                &(meta.width as i32),
                &(meta.height as i32),
                &(meta.frames as i32),
                &meta.content_hash,
                &meta.uploaded_at,
            ],
        ))
        .await?;
        timed(tx.commit()).await?;
        Ok(replaced)
    }
}

/// Bounds a database call and maps its error; a failed call drops nothing
/// here: `client()` reconnects when the connection is closed.
async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, OriginalsError> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(r) => r.map_err(storage),
        Err(_) => Err(storage("the originals index did not answer in time")),
    }
}

#[async_trait]
impl OriginalStore for SharedOriginals {
    async fn put(
        &self,
        tenant: &TenantId,
        meta: OriginalMeta,
        bytes: Bytes,
        quota: Quota,
    ) -> Result<Option<OriginalMeta>, OriginalsError> {
        let blob = blob_key(tenant.as_str());
        self.blobs.put(&blob, bytes).await.map_err(storage)?;
        match self.index_put(tenant.as_str(), &meta, &blob, quota).await {
            Ok(replaced) => {
                if let Some((_, old)) = &replaced
                    && let Err(e) = self.blobs.delete(old).await
                {
                    tracing::warn!(error = %e, "a replaced original's blob was not deleted");
                }
                Ok(replaced.map(|(m, _)| m))
            }
            Err(e) => {
                let _ = self.blobs.delete(&blob).await;
                Err(e)
            }
        }
    }

    async fn head(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<OriginalMeta>, OriginalsError> {
        Ok(self.select(tenant.as_str(), name.as_str()).await?.map(|(m, _)| m))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<(OriginalMeta, Bytes)>, OriginalsError> {
        let Some((meta, blob)) = self.select(tenant.as_str(), name.as_str()).await? else {
            return Ok(None);
        };
        // Replaced or deleted between the two reads: as if it had happened first.
        Ok(self
            .blobs
            .get(&blob)
            .await
            .map_err(storage)?
            .map(|bytes| (meta, bytes)))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, OriginalsError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or_else(|| storage("no connection"))?;
        let sql = format!(
            "SELECT {COLUMNS} FROM originals WHERE tenant = $1 AND name > $2 AND name >= $3 \
             AND left(name, length($3)) = $3 ORDER BY name LIMIT $4"
        );
        let after = cursor.unwrap_or_default();
        let rows = timed(client.query(
            &sql,
            &[&tenant.as_str(), &after, &prefix, &(i64::from(limit) + 1)],
        ))
        .await?;
        let originals: Vec<OriginalMeta> = rows.iter().map(|r| row_to_meta(r).0).collect();
        Ok(Page::from_rows(originals, limit))
    }

    async fn delete(&self, tenant: &TenantId, name: &OriginalName) -> Result<bool, OriginalsError> {
        let blob: Option<String> = {
            let guard = self.client().await?;
            let client = guard.as_ref().ok_or_else(|| storage("no connection"))?;
            timed(client.query_opt(
                "DELETE FROM originals WHERE tenant = $1 AND name = $2 RETURNING blob",
                &[&tenant.as_str(), &name.as_str()],
            ))
            .await?
            .map(|r| r.get(0))
        };
        let Some(blob) = blob else { return Ok(false) };
        if let Err(e) = self.blobs.delete(&blob).await {
            tracing::warn!(error = %e, "a deleted original's blob was not deleted");
        }
        Ok(true)
    }

    async fn totals(&self, tenant: &TenantId) -> Result<Totals, OriginalsError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or_else(|| storage("no connection"))?;
        let row = timed(client.query_one(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0)::BIGINT FROM originals WHERE tenant = $1",
            &[&tenant.as_str()],
        ))
        .await?;
        Ok(Totals {
            count: row.get::<_, i64>(0) as u64,
            bytes: row.get::<_, i64>(1) as u64,
        })
    }

    async fn stored_by_tenant(&self) -> Result<Vec<(TenantId, Totals)>, OriginalsError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or_else(|| storage("no connection"))?;
        let rows = timed(client.query(
            "SELECT tenant, COUNT(*), COALESCE(SUM(bytes), 0)::BIGINT FROM originals GROUP BY tenant",
            &[],
        ))
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let totals = Totals {
                    count: r.get::<_, i64>(1) as u64,
                    bytes: r.get::<_, i64>(2) as u64,
                };
                Some((TenantId::parse(r.get::<_, &str>(0))?, totals))
            })
            .collect())
    }
}
