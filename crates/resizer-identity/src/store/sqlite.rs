//! The embedded identity store: one SQLite file in the data directory.
//!
//! SQLite calls block, so each runs on tokio's blocking pool behind one
//! connection lock (writes are rare; reads happen at startup and on change).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::IdentityError;
use crate::flags::Flag;
use crate::model::{
    Change, ChangeEvent, CreateOutcome, KeyRecord, OriginalsQuota, Snapshot, Tenant, TenantPatch,
};
use resizer_core::time::now_unix_ms;

use crate::store::{ChangeSource, IdentityStore, quota_column};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    rate_limit_rps INTEGER NOT NULL,
    burst INTEGER NOT NULL,
    suspended INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    event TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE signing_keys (
    signing_key_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX signing_keys_tenant ON signing_keys(tenant_id);
"#,
    r#"
ALTER TABLE tenants ADD COLUMN originals_max_bytes INTEGER;
ALTER TABLE tenants ADD COLUMN originals_max_count INTEGER;
"#,
    r#"
CREATE TABLE flags (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
];

/// Identity store on a SQLite file.
#[derive(Clone)]
pub struct SqliteIdentityStore {
    conn: Arc<Mutex<Connection>>,
}

fn store_err(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Store(e.to_string())
}

impl SqliteIdentityStore {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let conn = Connection::open(path).map_err(store_err)?;
        Self::init(conn)
    }

    /// Opens a private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self, IdentityError> {
        Self::init(Connection::open_in_memory().map_err(store_err)?)
    }

    fn init(mut conn: Connection) -> Result<Self, IdentityError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(store_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(store_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_err)?;
        let applied: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(store_err)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction().map_err(store_err)?;
            tx.execute_batch(migration).map_err(store_err)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(store_err)?;
            tx.commit().map_err(store_err)?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, IdentityError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, IdentityError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| store_err("connection lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(store_err)?
    }
}

fn row_to_tenant(row: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    let id: String = row.get(0)?;
    Ok(Tenant {
        id: TenantId::parse(&id).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "bad tenant id".into())
        })?,
        name: row.get(1)?,
        rate_limit_rps: row.get(2)?,
        burst: row.get(3)?,
        suspended: row.get::<_, i64>(4)? != 0,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        originals_quota: OriginalsQuota {
            max_bytes: row.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
            max_count: row.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64),
        },
    })
}

const TENANT_COLUMNS: &str = "id, name, rate_limit_rps, burst, suspended, created_at, updated_at, \
                              originals_max_bytes, originals_max_count";

fn append_change(tx: &rusqlite::Transaction<'_>, event: &ChangeEvent) -> Result<(), IdentityError> {
    let json = serde_json::to_string(event).map_err(store_err)?;
    tx.execute(
        "INSERT INTO changes (at, event) VALUES (?1, ?2)",
        params![now_unix_ms() as i64, json],
    )
    .map_err(store_err)?;
    Ok(())
}

fn select_tenant(conn: &Connection, id: &str) -> Result<Option<Tenant>, IdentityError> {
    conn.query_row(
        &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"),
        params![id],
        row_to_tenant,
    )
    .optional()
    .map_err(store_err)
}

#[async_trait]
impl IdentityStore for SqliteIdentityStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), IdentityError> {
        let t = tenant.clone();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            tx.execute(
                &format!(
                    "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    t.id.as_str(),
                    t.name,
                    t.rate_limit_rps,
                    t.burst,
                    t.suspended as i64,
                    t.created_at,
                    t.updated_at,
                    quota_column(t.originals_quota.max_bytes),
                    quota_column(t.originals_quota.max_count)
                ],
            )
            .map_err(store_err)?;
            append_change(&tx, &ChangeEvent::TenantUpserted { tenant: t.clone() })?;
            tx.commit().map_err(store_err)
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, IdentityError> {
        self.run(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id"
                ))
                .map_err(store_err)?;
            let rows = stmt.query_map([], row_to_tenant).map_err(store_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(store_err)
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, IdentityError> {
        let id = id.to_string();
        self.run(move |conn| select_tenant(conn, &id)).await
    }

    async fn update_tenant(
        &self,
        id: &TenantId,
        patch: &TenantPatch,
        now: i64,
    ) -> Result<Option<Tenant>, IdentityError> {
        let id = id.to_string();
        let patch = patch.clone();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            let Some(mut tenant) = select_tenant(&tx, &id)? else {
                return Ok(None);
            };
            patch.apply_to(&mut tenant, now);
            tx.execute(
                "UPDATE tenants SET name = ?2, rate_limit_rps = ?3, burst = ?4, suspended = ?5, updated_at = ?6, \
                 originals_max_bytes = ?7, originals_max_count = ?8 WHERE id = ?1",
                params![
                    id,
                    tenant.name,
                    tenant.rate_limit_rps,
                    tenant.burst,
                    tenant.suspended as i64,
                    now,
                    quota_column(tenant.originals_quota.max_bytes),
                    quota_column(tenant.originals_quota.max_count)
                ],
            )
            .map_err(store_err)?;
            append_change(&tx, &ChangeEvent::TenantUpserted { tenant: tenant.clone() })?;
            tx.commit().map_err(store_err)?;
            Ok(Some(tenant))
        })
        .await
    }

    async fn create_key(
        &self,
        tenant: &TenantId,
        key_id: &KeyId,
        hash_hex: &str,
        max_live: u32,
        now: i64,
    ) -> Result<CreateOutcome, IdentityError> {
        let (tenant, key_id, hash) = (tenant.clone(), key_id.clone(), hash_hex.to_string());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            if select_tenant(&tx, tenant.as_str())?.is_none() {
                return Ok(CreateOutcome::UnknownTenant);
            }
            let live: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE tenant_id = ?1 AND revoked_at IS NULL",
                    params![tenant.as_str()],
                    |r| r.get(0),
                )
                .map_err(store_err)?;
            if live >= i64::from(max_live) {
                return Ok(CreateOutcome::TooMany);
            }
            tx.execute(
                "INSERT INTO api_keys (key_id, tenant_id, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_id.as_str(), tenant.as_str(), hash, now],
            )
            .map_err(store_err)?;
            append_change(
                &tx,
                &ChangeEvent::KeyCreated {
                    key_id,
                    tenant_id: tenant,
                    hash,
                },
            )?;
            tx.commit().map_err(store_err)?;
            Ok(CreateOutcome::Created)
        })
        .await
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<KeyRecord>, IdentityError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT key_id, created_at, revoked_at FROM api_keys WHERE tenant_id = ?1 \
                     ORDER BY created_at, key_id",
                )
                .map_err(store_err)?;
            let rows = stmt
                .query_map(params![tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(store_err)?;
            let rows: Vec<(String, i64, Option<i64>)> = rows.collect::<Result<_, _>>().map_err(store_err)?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, created_at, revoked_at)| {
                    Some(KeyRecord {
                        key_id: KeyId::parse(&id)?,
                        created_at,
                        revoked_at,
                    })
                })
                .collect())
        })
        .await
    }

    async fn revoke_key(&self, key_id: &KeyId, now: i64) -> Result<bool, IdentityError> {
        let key_id = key_id.clone();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            let exists: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM api_keys WHERE key_id = ?1",
                    params![key_id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_err)?;
            match exists {
                None => Ok(false),
                Some(Some(_)) => Ok(true),
                Some(None) => {
                    tx.execute(
                        "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1",
                        params![key_id.as_str(), now],
                    )
                    .map_err(store_err)?;
                    append_change(&tx, &ChangeEvent::KeyRevoked { key_id })?;
                    tx.commit().map_err(store_err)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn create_signing_key(
        &self,
        tenant: &TenantId,
        id: &SigningKeyId,
        secret: &str,
        max_active: u32,
        now: i64,
    ) -> Result<CreateOutcome, IdentityError> {
        let (tenant, id, secret) = (tenant.clone(), id.clone(), secret.to_string());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            if select_tenant(&tx, tenant.as_str())?.is_none() {
                return Ok(CreateOutcome::UnknownTenant);
            }
            let active: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM signing_keys WHERE tenant_id = ?1 AND revoked_at IS NULL",
                    params![tenant.as_str()],
                    |r| r.get(0),
                )
                .map_err(store_err)?;
            if active >= i64::from(max_active) {
                return Ok(CreateOutcome::TooMany);
            }
            tx.execute(
                "INSERT INTO signing_keys (signing_key_id, tenant_id, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id.as_str(), tenant.as_str(), secret, now],
            )
            .map_err(store_err)?;
            append_change(
                &tx,
                &ChangeEvent::SigningKeyCreated {
                    signing_key_id: id,
                    tenant_id: tenant,
                    secret,
                },
            )?;
            tx.commit().map_err(store_err)?;
            Ok(CreateOutcome::Created)
        })
        .await
    }

    async fn revoke_signing_key(
        &self,
        tenant: &TenantId,
        id: &SigningKeyId,
        now: i64,
    ) -> Result<bool, IdentityError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            let revoked: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM signing_keys WHERE signing_key_id = ?1 AND tenant_id = ?2",
                    params![id.as_str(), tenant.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_err)?;
            match revoked {
                None => Ok(false),
                Some(Some(_)) => Ok(true),
                Some(None) => {
                    tx.execute(
                        "UPDATE signing_keys SET revoked_at = ?2 WHERE signing_key_id = ?1",
                        params![id.as_str(), now],
                    )
                    .map_err(store_err)?;
                    append_change(&tx, &ChangeEvent::SigningKeyRevoked { signing_key_id: id })?;
                    tx.commit().map_err(store_err)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn put_flag(&self, flag: &Flag) -> Result<(), IdentityError> {
        let flag = flag.clone();
        self.run(move |conn| {
            let body = serde_json::to_string(&flag).map_err(store_err)?;
            let tx = conn.transaction().map_err(store_err)?;
            tx.execute(
                "INSERT INTO flags (name, body, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                params![flag.name, body, flag.updated_at],
            )
            .map_err(store_err)?;
            append_change(&tx, &ChangeEvent::FlagUpserted { flag })?;
            tx.commit().map_err(store_err)
        })
        .await
    }

    async fn delete_flag(&self, name: &str) -> Result<bool, IdentityError> {
        let name = name.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_err)?;
            if tx
                .execute("DELETE FROM flags WHERE name = ?1", params![name])
                .map_err(store_err)?
                == 0
            {
                return Ok(false);
            }
            append_change(&tx, &ChangeEvent::FlagDeleted { name })?;
            tx.commit().map_err(store_err)?;
            Ok(true)
        })
        .await
    }

    async fn list_flags(&self) -> Result<Vec<Flag>, IdentityError> {
        self.run(|conn| all_flags(conn)).await
    }

    async fn latest_seq(&self) -> Result<u64, IdentityError> {
        self.run(|conn| {
            let seq: i64 = conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| r.get(0))
                .map_err(store_err)?;
            Ok(seq as u64)
        })
        .await
    }
}

fn all_flags(conn: &Connection) -> Result<Vec<Flag>, IdentityError> {
    let mut stmt = conn
        .prepare("SELECT body FROM flags ORDER BY name")
        .map_err(store_err)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(store_err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row.map_err(store_err)?).map_err(store_err)?);
    }
    Ok(out)
}

fn live_signing_keys(conn: &Connection) -> Result<Vec<(SigningKeyId, TenantId, String)>, IdentityError> {
    let mut stmt = conn
        .prepare("SELECT signing_key_id, tenant_id, secret FROM signing_keys WHERE revoked_at IS NULL ORDER BY signing_key_id")
        .map_err(store_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(store_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (k, t, secret) = row.map_err(store_err)?;
        if let (Some(k), Some(t)) = (SigningKeyId::parse(&k), TenantId::parse(&t)) {
            out.push((k, t, secret));
        }
    }
    Ok(out)
}

#[async_trait]
impl ChangeSource for SqliteIdentityStore {
    async fn snapshot(&self) -> Result<Snapshot, IdentityError> {
        self.run(|conn| {
            // One read transaction, so records and seq agree.
            let tx = conn.transaction().map_err(store_err)?;
            let seq: i64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| r.get(0))
                .map_err(store_err)?;
            let tenants = {
                let mut stmt = tx
                    .prepare(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
                    .map_err(store_err)?;
                let rows = stmt.query_map([], row_to_tenant).map_err(store_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(store_err)?
            };
            let keys = {
                let mut stmt = tx
                    .prepare("SELECT key_id, tenant_id, hash FROM api_keys WHERE revoked_at IS NULL ORDER BY key_id")
                    .map_err(store_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                    .map_err(store_err)?;
                let mut keys = Vec::new();
                for row in rows {
                    let (k, t, h) = row.map_err(store_err)?;
                    if let (Some(k), Some(t)) = (KeyId::parse(&k), TenantId::parse(&t)) {
                        keys.push((k, t, h));
                    }
                }
                keys
            };
            let signing_keys = live_signing_keys(&tx)?;
            let flags = all_flags(&tx)?;
            Ok(Snapshot {
                seq: seq as u64,
                tenants,
                keys,
                signing_keys,
                flags,
            })
        })
        .await
    }

    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, IdentityError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare("SELECT seq, at, event FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                .map_err(store_err)?;
            let rows = stmt
                .query_map(params![seq as i64, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(store_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at_ms, json) = row.map_err(store_err)?;
                let event: ChangeEvent = serde_json::from_str(&json).map_err(store_err)?;
                out.push(Change {
                    seq: seq as u64,
                    at_ms: at_ms as u64,
                    event,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_sqlite_store_passes_contract_in_memory() {
        let store = Arc::new(SqliteIdentityStore::open_in_memory().unwrap());
        crate::store::testsuite::run_all(store).await;
    }

    #[tokio::test]
    async fn test_sqlite_store_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.sqlite");
        let store = Arc::new(SqliteIdentityStore::open(&path).unwrap());
        crate::store::testsuite::run_all(store.clone()).await;
        let before = store.snapshot().await.unwrap();
        drop(store);
        let reopened = SqliteIdentityStore::open(&path).unwrap();
        assert_eq!(reopened.snapshot().await.unwrap(), before);
    }
}
