//! Identity records and the change events that replicate them.

use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use serde::{Deserialize, Serialize};

/// A customer account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Unguessable id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Sustained requests per second allowed on each API node.
    pub rate_limit_rps: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
    /// A suspended tenant's keys authenticate but every request gets 403.
    pub suspended: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// This tenant's originals quota, where it differs from the deployment's.
    #[serde(default)]
    pub originals_quota: OriginalsQuota,
}

/// A tenant's own bounds on stored originals; a `None` field keeps the
/// deployment's setting (`delivery.max_bytes_per_tenant`, `delivery.max_originals_per_tenant`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct OriginalsQuota {
    /// Most bytes of originals; `null` for the deployment's default.
    #[schema(minimum = 0, maximum = 1_125_899_906_842_624_u64)]
    pub max_bytes: Option<u64>,
    /// Most originals; `null` for the deployment's default.
    #[schema(minimum = 0, maximum = 1_000_000_000_u64)]
    pub max_count: Option<u64>,
}

/// Only a JSON object, as the schema says (serde's derive would also take
/// `[bytes, count]`), with known fields of non-negative integers or `null`.
impl TryFrom<serde_json::Map<String, serde_json::Value>> for OriginalsQuota {
    type Error = String;

    fn try_from(fields: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut quota = Self::default();
        for (name, value) in fields {
            let field = match name.as_str() {
                "max_bytes" => &mut quota.max_bytes,
                "max_count" => &mut quota.max_count,
                other => {
                    return Err(format!(
                        "unknown field `{other}`, expected `max_bytes` or `max_count`"
                    ));
                }
            };
            *field = match value {
                serde_json::Value::Null => None,
                v => Some(
                    v.as_u64()
                        .ok_or_else(|| format!("`{name}` must be a non-negative integer or null"))?,
                ),
            };
        }
        Ok(quota)
    }
}

impl OriginalsQuota {
    /// Largest settable byte quota: 1 PiB.
    pub const MAX_BYTES: u64 = 1 << 50;
    /// Largest settable count.
    pub const MAX_COUNT: u64 = 1_000_000_000;

    /// Whether both fields are within their bounds.
    pub fn is_valid(&self) -> bool {
        self.max_bytes.is_none_or(|b| b <= Self::MAX_BYTES)
            && self.max_count.is_none_or(|c| c <= Self::MAX_COUNT)
    }
}

/// A partial update of a tenant; absent fields are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// New name (the rules of `NewTenant::name`).
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// New sustained rate.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_rps: Option<u32>,
    /// New burst.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub burst: Option<u32>,
    /// Suspend or reinstate.
    pub suspended: Option<bool>,
    /// Replaces the tenant's originals quota (both fields; `null` in one keeps
    /// the deployment's setting for it).
    pub originals_quota: Option<OriginalsQuota>,
}

impl TenantPatch {
    /// Applies the fields present to `tenant`; the one place the patch rules live,
    /// so every store changes a tenant the same way.
    pub fn apply_to(&self, tenant: &mut Tenant, now: i64) {
        if let Some(name) = &self.name {
            tenant.name.clone_from(name);
        }
        if let Some(rps) = self.rate_limit_rps {
            tenant.rate_limit_rps = rps;
        }
        if let Some(burst) = self.burst {
            tenant.burst = burst;
        }
        if let Some(suspended) = self.suspended {
            tenant.suspended = suspended;
        }
        if let Some(quota) = self.originals_quota {
            tenant.originals_quota = quota;
        }
        tenant.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_patch_changes_only_given_fields() {
        let mut t = Tenant {
            id: TenantId::random(),
            name: "a".into(),
            rate_limit_rps: 10,
            burst: 20,
            suspended: false,
            created_at: 1,
            updated_at: 1,
            originals_quota: OriginalsQuota::default(),
        };
        let before = t.clone();
        TenantPatch {
            suspended: Some(true),
            ..TenantPatch::default()
        }
        .apply_to(&mut t, 5);
        assert!(t.suspended);
        assert_eq!((t.name.as_str(), t.rate_limit_rps, t.burst), ("a", 10, 20));
        let quota = |json: &str| serde_json::from_str::<OriginalsQuota>(json);
        assert_eq!(quota(r#"{"max_count": 3}"#).unwrap().max_count, Some(3));
        assert_eq!(
            quota(r#"{"max_bytes": null}"#).unwrap(),
            OriginalsQuota::default()
        );
        for bad in [
            "[null, null]",
            r#"{"max_count": -1}"#,
            r#"{"max_count": "3"}"#,
            r#"{"other": 1}"#,
        ] {
            assert!(quota(bad).is_err(), "{bad}");
        }
        assert_eq!((t.created_at, t.updated_at), (before.created_at, 5));
    }
}

/// One replicated change, in the order the store committed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeEvent {
    /// A tenant was created or changed (limits, suspension, name).
    TenantUpserted {
        /// The tenant as it now is.
        tenant: Tenant,
    },
    /// A key was issued.
    KeyCreated {
        /// Key id.
        key_id: KeyId,
        /// Owner.
        tenant_id: TenantId,
        /// SHA-256 of the secret, hex.
        hash: String,
    },
    /// A key was revoked; it must never authenticate again.
    KeyRevoked {
        /// Key id.
        key_id: KeyId,
    },
    /// A URL signing secret was issued. Unlike an API key it travels in the
    /// clear: checking an HMAC needs the secret itself (the feed is behind TLS
    /// and the cluster secret).
    SigningKeyCreated {
        /// Signing key id.
        signing_key_id: SigningKeyId,
        /// Owner.
        tenant_id: TenantId,
        /// The secret.
        secret: String,
    },
    /// A signing secret was revoked; URLs signed with it stop working.
    SigningKeyRevoked {
        /// Signing key id.
        signing_key_id: SigningKeyId,
    },
    /// A feature flag was defined or changed (the whole flag).
    FlagUpserted {
        /// The flag as it now is.
        flag: crate::flags::Flag,
    },
    /// A feature flag was deleted: it reads as off everywhere.
    FlagDeleted {
        /// The flag's name.
        name: String,
    },
}

/// How creating a key or a signing key went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored.
    Created,
    /// No such tenant.
    UnknownTenant,
    /// The tenant already has the most live keys of that kind allowed.
    TooMany,
}

/// An API key as its tenant may see it: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Key id.
    pub key_id: KeyId,
    /// Issue time, Unix seconds.
    pub created_at: i64,
    /// Revocation time, Unix seconds; `None` while live.
    pub revoked_at: Option<i64>,
}

/// A change with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Strictly increasing sequence number.
    pub seq: u64,
    /// Commit time on the management plane, Unix ms; followers measure replication lag from it.
    pub at_ms: u64,
    /// What changed.
    pub event: ChangeEvent,
}

/// Everything authentication needs, as of `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last change included.
    pub seq: u64,
    /// All tenants.
    pub tenants: Vec<Tenant>,
    /// Live (unrevoked) keys: id, owner, hash.
    pub keys: Vec<(KeyId, TenantId, String)>,
    /// Live signing keys: id, owner, secret (absent in snapshot files of older versions).
    #[serde(default)]
    pub signing_keys: Vec<(SigningKeyId, TenantId, String)>,
    /// Every feature flag (absent in snapshot files of older versions).
    #[serde(default)]
    pub flags: Vec<crate::flags::Flag>,
}
