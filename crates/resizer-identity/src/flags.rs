//! Feature flags: named switches with a default, per-tenant overrides and a
//! percentage rollout, kept in the identity store and replicated with the
//! rest of the auth state, so a flip reaches every API node through the
//! change feed. Evaluation is pure and the same on every node: a tenant's
//! place in a rollout is a hash of the flag's name and the tenant's id, not
//! a random draw, so 10 % means the same tenants everywhere and raising it to
//! 20 % keeps the first 10 % in.

use std::collections::BTreeMap;

use resizer_core::ids::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::IdentityError;

/// The flags the code reads. Others may be defined (ship dark before the code
/// that reads them lands); these are the ones with an effect today.
pub mod known {
    /// On: decode at the smallest scale that covers the output
    /// (`worker.shrink_on_load = "fast"` for this tenant). Off: the deployment's setting.
    pub const SHRINK_ON_LOAD: &str = "shrink_on_load";
    /// On: `format=jxl` (lossless JPEG XL) is accepted. Off: it is a 400.
    pub const FORMAT_JXL: &str = "format_jxl";

    /// Every known flag with what it does, for the consoles.
    pub const ALL: [(&str, &str); 2] = [
        (
            SHRINK_ON_LOAD,
            "Fast shrink-on-load: decode JPEG and WebP at the smallest scale that covers the output (about a fifth faster, SSIM about 0.003 lower).",
        ),
        (FORMAT_JXL, "Lossless JPEG XL output: format=jxl."),
    ];
}

/// Most tenants a flag names individually; past this, a percentage is the tool.
pub const MAX_OVERRIDES: usize = 1000;
const MAX_NAME_LEN: usize = 64;
const MAX_DESCRIPTION_LEN: usize = 500;

/// A feature flag as stored and replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flag {
    /// `[a-z0-9_]`, 1–64 characters.
    pub name: String,
    /// What turning it on does, for people.
    pub description: String,
    /// The value for tenants with no override and outside the rollout.
    pub default: bool,
    /// This share of tenants (0–100), chosen by a stable hash, get `true`.
    pub rollout_percent: u8,
    /// Per-tenant values, which win over the rollout and the default.
    #[schema(value_type = BTreeMap<String, bool>)]
    pub overrides: BTreeMap<TenantId, bool>,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// The body of `PUT /admin/v1/flags/{name}`: the whole flag (absent fields
/// take their defaults, so a PUT says everything the flag is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    /// What turning it on does; default empty.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// The value for everyone else; default `false`.
    #[serde(default)]
    pub default: bool,
    /// 0–100; default 0.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub rollout_percent: u8,
    /// Tenant id → value; at most 1000.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, bool>)]
    pub overrides: BTreeMap<TenantId, bool>,
}

impl Flag {
    /// Builds a flag from a PUT body, or says why it is refused.
    pub fn from_spec(name: &str, spec: FlagSpec, now: i64) -> Result<Self, IdentityError> {
        check_name(name)?;
        let description = spec.description.trim().to_string();
        if description.chars().count() > MAX_DESCRIPTION_LEN || description.chars().any(char::is_control) {
            return Err(IdentityError::Invalid(format!(
                "`description` must be at most {MAX_DESCRIPTION_LEN} characters of text without control characters"
            )));
        }
        if spec.rollout_percent > 100 {
            return Err(IdentityError::Invalid(
                "`rollout_percent` must be from 0 to 100".into(),
            ));
        }
        if spec.overrides.len() > MAX_OVERRIDES {
            return Err(IdentityError::Invalid(format!(
                "at most {MAX_OVERRIDES} `overrides`; use `rollout_percent` for more tenants"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            description,
            default: spec.default,
            rollout_percent: spec.rollout_percent,
            overrides: spec.overrides,
            updated_at: now,
        })
    }

    /// The flag's value for `tenant`: its override, else on inside the rollout, else the default.
    pub fn enabled_for(&self, tenant: &TenantId) -> bool {
        match self.overrides.get(tenant) {
            Some(&value) => value,
            // The hash only where a rollout is under way: most flags are at 0 or 100.
            None => match self.rollout_percent {
                0 => self.default,
                100.. => true,
                percent => self.default || rollout_bucket(&self.name, tenant) < percent,
            },
        }
    }
}

/// Refuses names that are not `[a-z0-9_]{1,64}` (they appear in URLs, logs and metrics).
pub fn check_name(name: &str) -> Result<(), IdentityError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Invalid(format!(
            "a flag name is 1 to {MAX_NAME_LEN} characters of a-z, 0-9 and _"
        )))
    }
}

/// Where `tenant` falls in `flag`'s rollout, 0–99, the same on every node and
/// independent between flags (a tenant early in one rollout is not early in all).
pub fn rollout_bucket(flag: &str, tenant: &TenantId) -> u8 {
    let digest = Sha256::new()
        .chain_update(flag.as_bytes())
        .chain_update([0])
        .chain_update(tenant.as_str().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Every flag, as an auth cache holds them: shared by the requests that read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagTable {
    flags: BTreeMap<String, Flag>,
}

impl FlagTable {
    /// A table of `flags`.
    pub fn new(flags: impl IntoIterator<Item = Flag>) -> Self {
        Self {
            flags: flags.into_iter().map(|f| (f.name.clone(), f)).collect(),
        }
    }

    /// Whether `name` is on for `tenant`; an undefined flag is off.
    pub fn enabled(&self, name: &str, tenant: &TenantId) -> bool {
        self.flags.get(name).is_some_and(|f| f.enabled_for(tenant))
    }

    /// Every flag, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.flags.values()
    }

    /// Sets or replaces one flag.
    pub fn upsert(&mut self, flag: Flag) {
        self.flags.insert(flag.name.clone(), flag);
    }

    /// Removes one flag.
    pub fn remove(&mut self, name: &str) {
        self.flags.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(default: bool, percent: u8) -> Flag {
        Flag::from_spec(
            "new_codec",
            FlagSpec {
                default,
                rollout_percent: percent,
                ..FlagSpec::default()
            },
            1,
        )
        .unwrap()
    }

    #[test]
    fn test_an_override_wins_then_the_rollout_then_the_default() {
        let tenants: Vec<TenantId> = (0..2000).map(|_| TenantId::random()).collect();
        let on = |f: &Flag| tenants.iter().filter(|t| f.enabled_for(t)).count();
        assert_eq!(on(&flag(false, 0)), 0);
        assert_eq!(on(&flag(true, 0)), 2000);
        assert_eq!(on(&flag(false, 100)), 2000);
        let ten = on(&flag(false, 10));
        assert!((120..=280).contains(&ten), "10 % of 2000 gave {ten}");
        // Raising the percentage keeps everyone who was in.
        let (f10, f30) = (flag(false, 10), flag(false, 30));
        assert!(tenants.iter().all(|t| !f10.enabled_for(t) || f30.enabled_for(t)));
        let mut f = flag(true, 100);
        f.overrides.insert(tenants[0].clone(), false);
        assert!(!f.enabled_for(&tenants[0]) && f.enabled_for(&tenants[1]));
        let mut f = flag(false, 0);
        f.overrides.insert(tenants[1].clone(), true);
        assert!(f.enabled_for(&tenants[1]) && !f.enabled_for(&tenants[0]));
    }

    #[test]
    fn test_buckets_are_stable_and_independent_between_flags() {
        let t = TenantId::parse(&TenantId::random().to_string()).unwrap();
        assert_eq!(rollout_bucket("a", &t), rollout_bucket("a", &t));
        let tenants: Vec<TenantId> = (0..500).map(|_| TenantId::random()).collect();
        let same = tenants
            .iter()
            .filter(|t| rollout_bucket("a", t) == rollout_bucket("b", t))
            .count();
        assert!(same < 30, "{same} of 500 tenants share a bucket in two flags");
    }

    #[test]
    fn test_specs_are_validated() {
        let ok = FlagSpec::default();
        assert!(Flag::from_spec("shrink_on_load", ok.clone(), 1).is_ok());
        for bad in ["", "Upper", "a-b", "sp ace", &"x".repeat(65), "<img>"] {
            assert!(Flag::from_spec(bad, ok.clone(), 1).is_err(), "{bad:?}");
        }
        let over = FlagSpec {
            rollout_percent: 101,
            ..FlagSpec::default()
        };
        assert!(Flag::from_spec("a", over, 1).is_err());
        let control = FlagSpec {
            description: "a\u{1b}[31m".into(),
            ..FlagSpec::default()
        };
        assert!(Flag::from_spec("a", control, 1).is_err());
        let many = FlagSpec {
            overrides: (0..=MAX_OVERRIDES).map(|_| (TenantId::random(), true)).collect(),
            ..FlagSpec::default()
        };
        assert!(Flag::from_spec("a", many, 1).is_err());
        let bad_tenant = serde_json::from_str::<FlagSpec>(r#"{"overrides": {"nope": true}}"#);
        assert!(bad_tenant.is_err());
    }
}
