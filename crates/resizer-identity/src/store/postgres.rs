//! The distributed identity store: PostgreSQL, authoritative and consistency-first.
//!
//! One connection, reconnected on failure, serves the management plane: writes
//! are rare and reads come from followers catching up, not from requests.
//! Every write transaction takes an exclusive lock on the change log first, so
//! sequence numbers are handed out in commit order and a follower reading
//! `seq > n` can never skip a change that commits later with a lower number.

use std::time::Duration;

use async_trait::async_trait;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use crate::error::IdentityError;
use crate::flags::Flag;
use crate::model::{
    Change, ChangeEvent, CreateOutcome, KeyRecord, OriginalsQuota, Snapshot, Tenant, TenantPatch,
};
use resizer_core::time::now_unix_ms;

use crate::store::{ChangeSource, IdentityStore, quota_column};

/// Migrations, applied in order under an advisory lock; `schema_migrations` records them.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    rate_limit_rps BIGINT NOT NULL,
    burst BIGINT NOT NULL,
    suspended BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    event TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE signing_keys (
    signing_key_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX signing_keys_tenant ON signing_keys(tenant_id);
"#,
    r#"
ALTER TABLE tenants ADD COLUMN originals_max_bytes BIGINT;
ALTER TABLE tenants ADD COLUMN originals_max_count BIGINT;
"#,
    r#"
CREATE TABLE flags (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
];

/// An arbitrary constant naming the migration lock.
const MIGRATION_LOCK: i64 = 0x7265_7369_7a65;

/// Time allowed for connecting and for any one operation.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Identity store on PostgreSQL.
pub struct PostgresIdentityStore {
    url: String,
    client: Mutex<Option<Client>>,
}

fn store_err(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Store(e.to_string())
}

const TENANT_COLUMNS: &str = "id, name, rate_limit_rps, burst, suspended, created_at, updated_at, \
                              originals_max_bytes, originals_max_count";

fn row_to_tenant(row: &Row) -> Result<Tenant, IdentityError> {
    let id: String = row.get(0);
    Ok(Tenant {
        id: TenantId::parse(&id).ok_or_else(|| store_err("bad tenant id in store"))?,
        name: row.get(1),
        rate_limit_rps: row.get::<_, i64>(2) as u32,
        burst: row.get::<_, i64>(3) as u32,
        suspended: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
        originals_quota: OriginalsQuota {
            max_bytes: row.get::<_, Option<i64>>(7).map(|v| v.max(0) as u64),
            max_count: row.get::<_, Option<i64>>(8).map(|v| v.max(0) as u64),
        },
    })
}

impl PostgresIdentityStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, IdentityError> {
        let store = Self {
            url: url.to_string(),
            client: Mutex::new(None),
        };
        store
            .with_client(|client| {
                Box::pin(async move {
                    let tx = client.transaction().await.map_err(store_err)?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                        .await
                        .map_err(store_err)?;
                    tx.batch_execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY)",
                    )
                    .await
                    .map_err(store_err)?;
                    let applied: i64 = tx
                        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
                        .await
                        .map_err(store_err)?
                        .get(0);
                    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
                        tx.batch_execute(migration).await.map_err(store_err)?;
                        tx.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)",
                            &[&(i as i32 + 1)],
                        )
                        .await
                        .map_err(store_err)?;
                    }
                    tx.commit().await.map_err(store_err)
                })
            })
            .await?;
        Ok(store)
    }

    /// Runs `f` on a live connection, reconnecting first if needed; a failed
    /// operation drops the connection so the next call starts afresh.
    async fn with_client<T, F>(&self, f: F) -> Result<T, IdentityError>
    where
        F: for<'c> FnOnce(
            &'c mut Client,
        )
            -> std::pin::Pin<Box<dyn Future<Output = Result<T, IdentityError>> + Send + 'c>>,
    {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) =
                tokio::time::timeout(OP_TIMEOUT, tokio_postgres::connect(&self.url, NoTls))
                    .await
                    .map_err(|_| store_err("timed out connecting to PostgreSQL"))?
                    .map_err(store_err)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres connection closed");
                }
            });
            *guard = Some(client);
        }
        let client = guard.as_mut().ok_or_else(|| store_err("no connection"))?;
        let result = match tokio::time::timeout(OP_TIMEOUT, f(client)).await {
            Ok(r) => r,
            Err(_) => Err(store_err("PostgreSQL operation timed out")),
        };
        if result.is_err() {
            *guard = None;
        }
        result
    }
}

async fn append_change(
    tx: &tokio_postgres::Transaction<'_>,
    event: &ChangeEvent,
) -> Result<(), IdentityError> {
    let json = serde_json::to_string(event).map_err(store_err)?;
    tx.execute(
        "INSERT INTO changes (at_ms, event) VALUES ($1, $2)",
        &[&(now_unix_ms() as i64), &json],
    )
    .await
    .map_err(store_err)?;
    Ok(())
}

/// Starts a write transaction that owns the change log until commit.
async fn begin_write(client: &mut Client) -> Result<tokio_postgres::Transaction<'_>, IdentityError> {
    let tx = client.transaction().await.map_err(store_err)?;
    tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")
        .await
        .map_err(store_err)?;
    Ok(tx)
}

async fn select_tenant(
    tx: &tokio_postgres::Transaction<'_>,
    id: &str,
) -> Result<Option<Tenant>, IdentityError> {
    let row = tx
        .query_opt(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(store_err)?;
    row.as_ref().map(row_to_tenant).transpose()
}

#[async_trait]
impl IdentityStore for PostgresIdentityStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), IdentityError> {
        let t = tenant.clone();
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                tx.execute(
                    &format!(
                        "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    ),
                    &[
                        &t.id.as_str(),
                        &t.name,
                        &i64::from(t.rate_limit_rps),
                        &i64::from(t.burst),
                        &t.suspended,
                        &t.created_at,
                        &t.updated_at,
                        &quota_column(t.originals_quota.max_bytes),
                        &quota_column(t.originals_quota.max_count),
                    ],
                )
                .await
                .map_err(store_err)?;
                append_change(&tx, &ChangeEvent::TenantUpserted { tenant: t.clone() }).await?;
                tx.commit().await.map_err(store_err)
            })
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, IdentityError> {
        self.with_client(|client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id"),
                        &[],
                    )
                    .await
                    .map_err(store_err)?;
                rows.iter().map(row_to_tenant).collect()
            })
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, IdentityError> {
        let id = id.to_string();
        self.with_client(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt(
                        &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
                        &[&id],
                    )
                    .await
                    .map_err(store_err)?;
                row.as_ref().map(row_to_tenant).transpose()
            })
        })
        .await
    }

    async fn update_tenant(
        &self,
        id: &TenantId,
        patch: &TenantPatch,
        now: i64,
    ) -> Result<Option<Tenant>, IdentityError> {
        let (id, patch) = (id.to_string(), patch.clone());
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                let Some(mut tenant) = select_tenant(&tx, &id).await? else {
                    return Ok(None);
                };
                patch.apply_to(&mut tenant, now);
                tx.execute(
                    "UPDATE tenants SET name = $2, rate_limit_rps = $3, burst = $4, suspended = $5, updated_at = $6, \
                     originals_max_bytes = $7, originals_max_count = $8 WHERE id = $1",
                    &[
                        &id,
                        &tenant.name,
                        &i64::from(tenant.rate_limit_rps),
                        &i64::from(tenant.burst),
                        &tenant.suspended,
                        &now,
                        &quota_column(tenant.originals_quota.max_bytes),
                        &quota_column(tenant.originals_quota.max_count),
                    ],
                )
                .await
                .map_err(store_err)?;
                append_change(&tx, &ChangeEvent::TenantUpserted { tenant: tenant.clone() }).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(Some(tenant))
            })
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
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                if select_tenant(&tx, tenant.as_str()).await?.is_none() {
                    return Ok(CreateOutcome::UnknownTenant);
                }
                let live: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
                        &[&tenant.as_str()],
                    )
                    .await
                    .map_err(store_err)?
                    .get(0);
                if live >= i64::from(max_live) {
                    return Ok(CreateOutcome::TooMany);
                }
                tx.execute(
                    "INSERT INTO api_keys (key_id, tenant_id, hash, created_at) VALUES ($1, $2, $3, $4)",
                    &[&key_id.as_str(), &tenant.as_str(), &hash, &now],
                )
                .await
                .map_err(store_err)?;
                append_change(
                    &tx,
                    &ChangeEvent::KeyCreated {
                        key_id,
                        tenant_id: tenant,
                        hash,
                    },
                )
                .await?;
                tx.commit().await.map_err(store_err)?;
                Ok(CreateOutcome::Created)
            })
        })
        .await
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<KeyRecord>, IdentityError> {
        let tenant = tenant.to_string();
        self.with_client(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT key_id, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 \
                         ORDER BY created_at, key_id",
                        &[&tenant],
                    )
                    .await
                    .map_err(store_err)?;
                Ok(rows
                    .iter()
                    .filter_map(|r| {
                        Some(KeyRecord {
                            key_id: KeyId::parse(r.get::<_, &str>(0))?,
                            created_at: r.get(1),
                            revoked_at: r.get(2),
                        })
                    })
                    .collect())
            })
        })
        .await
    }

    async fn revoke_key(&self, key_id: &KeyId, now: i64) -> Result<bool, IdentityError> {
        let key_id = key_id.clone();
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                let row = tx
                    .query_opt(
                        "SELECT revoked_at FROM api_keys WHERE key_id = $1",
                        &[&key_id.as_str()],
                    )
                    .await
                    .map_err(store_err)?;
                let Some(row) = row else { return Ok(false) };
                if row.get::<_, Option<i64>>(0).is_some() {
                    return Ok(true);
                }
                tx.execute(
                    "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1",
                    &[&key_id.as_str(), &now],
                )
                .await
                .map_err(store_err)?;
                append_change(&tx, &ChangeEvent::KeyRevoked { key_id }).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(true)
            })
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
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                if select_tenant(&tx, tenant.as_str()).await?.is_none() {
                    return Ok(CreateOutcome::UnknownTenant);
                }
                let active: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM signing_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
                        &[&tenant.as_str()],
                    )
                    .await
                    .map_err(store_err)?
                    .get(0);
                if active >= i64::from(max_active) {
                    return Ok(CreateOutcome::TooMany);
                }
                tx.execute(
                    "INSERT INTO signing_keys (signing_key_id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4)",
                    &[&id.as_str(), &tenant.as_str(), &secret, &now],
                )
                .await
                .map_err(store_err)?;
                let event = ChangeEvent::SigningKeyCreated {
                    signing_key_id: id,
                    tenant_id: tenant,
                    secret,
                };
                append_change(&tx, &event).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(CreateOutcome::Created)
            })
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
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                let row = tx
                    .query_opt(
                        "SELECT revoked_at FROM signing_keys WHERE signing_key_id = $1 AND tenant_id = $2",
                        &[&id.as_str(), &tenant.as_str()],
                    )
                    .await
                    .map_err(store_err)?;
                let Some(row) = row else { return Ok(false) };
                if row.get::<_, Option<i64>>(0).is_some() {
                    return Ok(true);
                }
                tx.execute(
                    "UPDATE signing_keys SET revoked_at = $2 WHERE signing_key_id = $1",
                    &[&id.as_str(), &now],
                )
                .await
                .map_err(store_err)?;
                append_change(&tx, &ChangeEvent::SigningKeyRevoked { signing_key_id: id }).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(true)
            })
        })
        .await
    }

    async fn put_flag(&self, flag: &Flag) -> Result<(), IdentityError> {
        let flag = flag.clone();
        self.with_client(move |client| {
            Box::pin(async move {
                let body = serde_json::to_string(&flag).map_err(store_err)?;
                let tx = begin_write(client).await?;
                tx.execute(
                    "INSERT INTO flags (name, body, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at",
                    &[&flag.name, &body, &flag.updated_at],
                )
                .await
                .map_err(store_err)?;
                append_change(&tx, &ChangeEvent::FlagUpserted { flag }).await?;
                tx.commit().await.map_err(store_err)
            })
        })
        .await
    }

    async fn delete_flag(&self, name: &str) -> Result<bool, IdentityError> {
        let name = name.to_string();
        self.with_client(move |client| {
            Box::pin(async move {
                let tx = begin_write(client).await?;
                let deleted = tx
                    .execute("DELETE FROM flags WHERE name = $1", &[&name])
                    .await
                    .map_err(store_err)?;
                if deleted == 0 {
                    return Ok(false);
                }
                append_change(&tx, &ChangeEvent::FlagDeleted { name }).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(true)
            })
        })
        .await
    }

    async fn list_flags(&self) -> Result<Vec<Flag>, IdentityError> {
        self.with_client(|client| Box::pin(async move { all_flags(&*client).await }))
            .await
    }

    async fn latest_seq(&self) -> Result<u64, IdentityError> {
        self.with_client(|client| {
            Box::pin(async move {
                let seq: i64 = client
                    .query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
                    .await
                    .map_err(store_err)?
                    .get(0);
                Ok(seq as u64)
            })
        })
        .await
    }
}

/// Every feature flag, by name.
async fn all_flags(client: &impl tokio_postgres::GenericClient) -> Result<Vec<Flag>, IdentityError> {
    let rows = client
        .query("SELECT body FROM flags ORDER BY name", &[])
        .await
        .map_err(store_err)?;
    rows.iter()
        .map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(store_err))
        .collect()
}

/// Every live signing key: id, owner, secret.
async fn live_signing_keys(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<(SigningKeyId, TenantId, String)>, IdentityError> {
    let rows = tx
        .query(
            "SELECT signing_key_id, tenant_id, secret FROM signing_keys WHERE revoked_at IS NULL ORDER BY signing_key_id",
            &[],
        )
        .await
        .map_err(store_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (k, t, secret): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if let (Some(k), Some(t)) = (SigningKeyId::parse(&k), TenantId::parse(&t)) {
            out.push((k, t, secret));
        }
    }
    Ok(out)
}

#[async_trait]
impl ChangeSource for PostgresIdentityStore {
    async fn snapshot(&self) -> Result<Snapshot, IdentityError> {
        self.with_client(|client| {
            Box::pin(async move {
                // REPEATABLE READ: the records and the sequence number come from one snapshot.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(store_err)?;
                let seq: i64 = tx
                    .query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
                    .await
                    .map_err(store_err)?
                    .get(0);
                let tenants = tx
                    .query(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"), &[])
                    .await
                    .map_err(store_err)?
                    .iter()
                    .map(row_to_tenant)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut keys = Vec::new();
                for row in tx
                    .query(
                        "SELECT key_id, tenant_id, hash FROM api_keys WHERE revoked_at IS NULL ORDER BY key_id",
                        &[],
                    )
                    .await
                    .map_err(store_err)?
                {
                    let (k, t, h): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                    if let (Some(k), Some(t)) = (KeyId::parse(&k), TenantId::parse(&t)) {
                        keys.push((k, t, h));
                    }
                }
                let signing_keys = live_signing_keys(&tx).await?;
                let flags = all_flags(&tx).await?;
                tx.commit().await.map_err(store_err)?;
                Ok(Snapshot {
                    seq: seq as u64,
                    tenants,
                    keys,
                    signing_keys,
                    flags,
                })
            })
        })
        .await
    }

    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, IdentityError> {
        self.with_client(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT seq, at_ms, event FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                        &[&(seq as i64), &i64::from(limit)],
                    )
                    .await
                    .map_err(store_err)?;
                rows.iter()
                    .map(|row| {
                        let event: ChangeEvent =
                            serde_json::from_str(row.get::<_, &str>(2)).map_err(store_err)?;
                        Ok(Change {
                            seq: row.get::<_, i64>(0) as u64,
                            at_ms: row.get::<_, i64>(1) as u64,
                            event,
                        })
                    })
                    .collect()
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn test_postgres_store_passes_contract() {
        let Some(url) = resizer_testing::fresh_database("resizer_test").await else {
            return;
        };
        let store = Arc::new(PostgresIdentityStore::connect(&url).await.unwrap());
        crate::store::testsuite::run_all(store.clone()).await;
        // Migrations are idempotent and the data survives a new connection.
        let before = store.snapshot().await.unwrap();
        let again = PostgresIdentityStore::connect(&url).await.unwrap();
        assert_eq!(again.snapshot().await.unwrap(), before);
        assert_eq!(again.latest_seq().await.unwrap(), before.seq);
    }

    #[tokio::test]
    async fn test_postgres_concurrent_writes_keep_seq_in_commit_order() {
        let Some(url) = resizer_testing::fresh_database("resizer_test").await else {
            return;
        };
        let store = Arc::new(PostgresIdentityStore::connect(&url).await.unwrap());
        let stores: Vec<_> = (0..4).map(|_| PostgresIdentityStore::connect(&url)).collect();
        let mut handles = Vec::new();
        for s in stores {
            let s = Arc::new(s.await.unwrap());
            handles.push(tokio::spawn(async move {
                let svc = crate::IdentityService::new(s);
                for i in 0..10 {
                    svc.create_tenant(crate::NewTenant {
                        name: format!("t{i}"),
                        rate_limit_rps: None,
                        burst: None,
                        originals_quota: None,
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let changes = store.changes_since(0, 1000).await.unwrap();
        assert_eq!(changes.len(), 40);
        assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
