//! Originals on local disk, for `resizer serve`: each image in its own file
//! under `blobs/{tenant}/` with a random file name, and a SQLite index of
//! names and metadata. Names never become paths, so no name can climb out
//! of its tenant's directory or collide with a directory of another name.
//!
//! A put writes and syncs the file, then commits the index row (the quota is
//! checked inside that transaction), then removes the file it replaced. A
//! crash between the two leaves an unindexed file, removed at the next open.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use resizer_core::ids::{TenantId, random_bytes, to_hex};
use resizer_core::time::rfc3339;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{OriginalsError, storage};
use crate::model::{OriginalMeta, Page, Quota, Totals};
use crate::name::OriginalName;
use crate::store::{OriginalStore, check_quota};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS originals (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    blob TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
"#;

const COLUMNS: &str = "name, bytes, format, width, height, frames, content_hash, uploaded_at, blob";

/// Originals in a directory.
#[derive(Clone)]
pub struct LocalOriginals {
    root: PathBuf,
    index: Arc<Mutex<Connection>>,
}

impl LocalOriginals {
    /// Opens (creating) the store under `root` and removes files a crash left unindexed.
    pub fn open(root: &Path) -> Result<Self, OriginalsError> {
        std::fs::create_dir_all(root.join("blobs")).map_err(storage)?;
        let conn = Connection::open(root.join("index.sqlite")).map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(storage)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        let store = Self {
            root: root.to_path_buf(),
            index: Arc::new(Mutex::new(conn)),
        };
        store.sweep()?;
        Ok(store)
    }

    fn blob_path(&self, tenant: &str, blob: &str) -> PathBuf {
        self.root.join("blobs").join(tenant).join(blob)
    }

    /// Deletes blob files that no index row names.
    fn sweep(&self) -> Result<(), OriginalsError> {
        let known: HashSet<(String, String)> = {
            let conn = self.lock();
            let mut stmt = conn
                .prepare("SELECT tenant, blob FROM originals")
                .map_err(storage)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(storage)?;
            rows.collect::<Result<_, _>>().map_err(storage)?
        };
        for tenant_dir in std::fs::read_dir(self.root.join("blobs")).map_err(storage)? {
            let tenant_dir = tenant_dir.map_err(storage)?;
            let tenant = tenant_dir.file_name().to_string_lossy().into_owned();
            for blob in std::fs::read_dir(tenant_dir.path()).map_err(storage)? {
                let blob = blob.map_err(storage)?;
                let name = blob.file_name().to_string_lossy().into_owned();
                if !known.contains(&(tenant.clone(), name)) {
                    tracing::info!(path = %blob.path().display(), "removing an unindexed original left by a crash");
                    let _ = std::fs::remove_file(blob.path());
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, OriginalsError> + Send + 'static,
    ) -> Result<T, OriginalsError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(storage)?
    }

    fn put_blocking(
        &self,
        tenant: &str,
        meta: &OriginalMeta,
        bytes: &[u8],
        quota: Quota,
    ) -> Result<Option<OriginalMeta>, OriginalsError> {
        let blob = random_blob_name();
        let path = self.blob_path(tenant, &blob);
        write_synced(&path, bytes).map_err(storage)?;
        match self.index_put(tenant, meta, &blob, quota) {
            Ok(replaced) => {
                if let Some((_, old_blob)) = &replaced {
                    let _ = std::fs::remove_file(self.blob_path(tenant, old_blob));
                }
                Ok(replaced.map(|(m, _)| m))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// The quota check and the row, in one transaction.
    fn index_put(
        &self,
        tenant: &str,
        meta: &OriginalMeta,
        blob: &str,
        quota: Quota,
    ) -> Result<Option<(OriginalMeta, String)>, OriginalsError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(storage)?;
        let replaced = select(&tx, tenant, &meta.name)?;
        let before = totals(&tx, tenant)?;
        check_quota(before, replaced.as_ref().map(|(m, _)| m.bytes), meta.bytes, quota)?;
        tx.execute(
            "INSERT OR REPLACE INTO originals (tenant, name, blob, bytes, format, width, height, frames, content_hash, uploaded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                tenant,
                meta.name,
                blob,
                meta.bytes as i64,
                meta.format,
                meta.width,
                meta.height,
                meta.frames,
                meta.content_hash,
                meta.uploaded_at
            ],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(replaced)
    }
}

fn random_blob_name() -> String {
    let mut buf = [0u8; 16];
    random_bytes(&mut buf);
    to_hex(&buf)
}

/// Writes to a temporary name, syncs, renames: a reader sees the whole file or none.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("blob path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn row_to_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OriginalMeta, String)> {
    Ok((
        OriginalMeta {
            name: r.get(0)?,
            bytes: r.get::<_, i64>(1)? as u64,
            format: r.get(2)?,
            width: r.get(3)?,
            height: r.get(4)?,
            frames: r.get(5)?,
            content_hash: r.get(6)?,
            uploaded_at: r.get(7)?,
        },
        r.get(8)?,
    ))
}

fn select(
    conn: &Connection,
    tenant: &str,
    name: &str,
) -> Result<Option<(OriginalMeta, String)>, OriginalsError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM originals WHERE tenant = ?1 AND name = ?2"),
        params![tenant, name],
        row_to_meta,
    )
    .optional()
    .map_err(storage)
}

fn totals(conn: &Connection, tenant: &str) -> Result<Totals, OriginalsError> {
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM originals WHERE tenant = ?1",
        params![tenant],
        |r| {
            Ok(Totals {
                count: r.get::<_, i64>(0)? as u64,
                bytes: r.get::<_, i64>(1)? as u64,
            })
        },
    )
    .map_err(storage)
}

/// The upload time of a new original, as stored.
pub fn uploaded_now() -> String {
    rfc3339(resizer_core::time::now_unix_secs())
}

#[async_trait]
impl OriginalStore for LocalOriginals {
    async fn put(
        &self,
        tenant: &TenantId,
        meta: OriginalMeta,
        bytes: Bytes,
        quota: Quota,
    ) -> Result<Option<OriginalMeta>, OriginalsError> {
        let tenant = tenant.to_string();
        self.blocking(move |s| s.put_blocking(&tenant, &meta, &bytes, quota))
            .await
    }

    async fn head(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<OriginalMeta>, OriginalsError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |s| Ok(select(&s.lock(), &tenant, &name)?.map(|(m, _)| m)))
            .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        name: &OriginalName,
    ) -> Result<Option<(OriginalMeta, Bytes)>, OriginalsError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |s| {
            let Some((meta, blob)) = select(&s.lock(), &tenant, &name)? else {
                return Ok(None);
            };
            match std::fs::read(s.blob_path(&tenant, &blob)) {
                Ok(bytes) => Ok(Some((meta, Bytes::from(bytes)))),
                // Replaced or deleted between the two reads: as if it had happened first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(storage(e)),
            }
        })
        .await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, OriginalsError> {
        let (tenant, prefix) = (tenant.to_string(), prefix.to_string());
        let after = cursor.unwrap_or_default().to_string();
        self.blocking(move |s| {
            let conn = s.lock();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM originals WHERE tenant = ?1 AND name > ?2 AND name >= ?3 \
                     AND substr(name, 1, length(?3)) = ?3 ORDER BY name LIMIT ?4"
                ))
                .map_err(storage)?;
            let rows = stmt
                .query_map(params![tenant, after, prefix, limit + 1], row_to_meta)
                .map_err(storage)?;
            let originals: Vec<OriginalMeta> = rows
                .map(|r| r.map(|(m, _)| m))
                .collect::<Result<_, _>>()
                .map_err(storage)?;
            Ok(Page::from_rows(originals, limit))
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, name: &OriginalName) -> Result<bool, OriginalsError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |s| {
            let blob = {
                let conn = s.lock();
                let Some((_, blob)) = select(&conn, &tenant, &name)? else {
                    return Ok(false);
                };
                conn.execute(
                    "DELETE FROM originals WHERE tenant = ?1 AND name = ?2",
                    params![tenant, name],
                )
                .map_err(storage)?;
                blob
            };
            let _ = std::fs::remove_file(s.blob_path(&tenant, &blob));
            Ok(true)
        })
        .await
    }

    async fn totals(&self, tenant: &TenantId) -> Result<Totals, OriginalsError> {
        let tenant = tenant.to_string();
        self.blocking(move |s| totals(&s.lock(), &tenant)).await
    }

    async fn stored_by_tenant(&self) -> Result<Vec<(TenantId, Totals)>, OriginalsError> {
        self.blocking(|s| {
            let conn = s.lock();
            let mut stmt = conn
                .prepare("SELECT tenant, COUNT(*), COALESCE(SUM(bytes), 0) FROM originals GROUP BY tenant")
                .map_err(storage)?;
            let rows = stmt
                .query_map([], |r| {
                    let totals = Totals {
                        count: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                    };
                    Ok((r.get::<_, String>(0)?, totals))
                })
                .map_err(storage)?;
            let rows: Vec<(String, Totals)> = rows.collect::<Result<_, _>>().map_err(storage)?;
            Ok(rows
                .into_iter()
                .filter_map(|(t, totals)| Some((TenantId::parse(&t)?, totals)))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_local_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalOriginals::open(dir.path()).unwrap());
        crate::testsuite::run_all(store).await;
    }

    #[tokio::test]
    async fn test_refused_and_replaced_files_are_removed_and_leftovers_swept_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::random();
        let q = Quota {
            max_bytes: 10,
            max_count: 2,
        };
        let meta = crate::testsuite::meta;
        {
            let store = LocalOriginals::open(dir.path()).unwrap();
            store
                .put(&t, meta("a", b"12345"), Bytes::from_static(b"12345"), q)
                .await
                .unwrap();
            assert!(
                store
                    .put(&t, meta("b", b"123456"), Bytes::from_static(b"123456"), q)
                    .await
                    .is_err()
            );
            store
                .put(&t, meta("a", b"1234567890"), Bytes::from_static(b"1234567890"), q)
                .await
                .unwrap();
        }
        let blobs = dir.path().join("blobs").join(t.as_str());
        assert_eq!(
            std::fs::read_dir(&blobs).unwrap().count(),
            1,
            "the refused upload and the replaced file are gone"
        );
        let stray = blobs.join("deadbeef");
        std::fs::write(&stray, b"crash").unwrap();
        let store = LocalOriginals::open(dir.path()).unwrap();
        assert!(!stray.exists());
        let name = OriginalName::parse("a").unwrap();
        assert_eq!(store.get(&t, &name).await.unwrap().unwrap().1.len(), 10);
    }
}
