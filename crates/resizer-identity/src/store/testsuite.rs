//! The contract every [`IdentityStore`] backend must pass.

use std::sync::Arc;

use resizer_core::api_key;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};

use crate::cache::{AuthCache, AuthError};
use crate::error::IdentityError;
use crate::model::{ChangeEvent, OriginalsQuota, TenantPatch};
use crate::service::{IdentityService, NewTenant};
use crate::store::IdentityStore;

fn new_tenant(name: &str) -> NewTenant {
    NewTenant {
        name: name.into(),
        rate_limit_rps: None,
        burst: None,
        originals_quota: None,
    }
}

/// Runs every contract check against a fresh, empty store.
pub async fn run_all(store: Arc<dyn IdentityStore>) {
    tenants_and_changes(store.clone()).await;
    keys_are_hashed_and_revocable(store.clone()).await;
    cache_follows_snapshot_and_increments(store.clone()).await;
    signing_keys_are_tenant_scoped_capped_and_replicated(store.clone()).await;
    own_keys_are_listed_capped_and_revoked_only_by_their_tenant(store.clone()).await;
    originals_quota_round_trips(store.clone()).await;
    flags_are_stored_replicated_and_evaluated(store).await;
}

async fn flags_are_stored_replicated_and_evaluated(store: Arc<dyn IdentityStore>) {
    use crate::flags::FlagSpec;
    let svc = IdentityService::new(store.clone());
    let (a, b) = (
        svc.create_tenant(new_tenant("flag a")).await.unwrap(),
        svc.create_tenant(new_tenant("flag b")).await.unwrap(),
    );
    let key = svc.issue_key(&a.id).await.unwrap();
    let cache = AuthCache::new();
    cache.catch_up(store.as_ref()).await.unwrap();
    assert!(
        !cache.authenticate(&key.secret).unwrap().flag("beta"),
        "undefined is off"
    );
    let spec = FlagSpec {
        description: "a beta".into(),
        overrides: [(a.id.clone(), true)].into(),
        ..FlagSpec::default()
    };
    let flag = svc.put_flag("beta", spec.clone()).await.unwrap();
    assert_eq!(svc.list_flags().await.unwrap(), vec![flag.clone()]);
    cache.catch_up(store.as_ref()).await.unwrap();
    let ctx = cache.authenticate(&key.secret).unwrap();
    assert!(ctx.flag("beta"));
    assert!(!ctx.flags.enabled("beta", &b.id), "only the tenant named");
    flags_are_replaced_whole_validated_and_deleted(store, &svc, (&a.id, &b.id), &key.secret, spec).await;
}

async fn flags_are_replaced_whole_validated_and_deleted(
    store: Arc<dyn IdentityStore>,
    svc: &IdentityService,
    (a, b): (&TenantId, &TenantId),
    secret_a: &str,
    spec: crate::flags::FlagSpec,
) {
    use crate::flags::FlagSpec;
    let cache = AuthCache::new();
    cache.catch_up(store.as_ref()).await.unwrap();
    // Replacing the flag replaces it whole; a fresh cache's snapshot agrees.
    let everyone = FlagSpec {
        default: true,
        overrides: [(a.clone(), false)].into(),
        ..spec
    };
    svc.put_flag("beta", everyone).await.unwrap();
    cache.catch_up(store.as_ref()).await.unwrap();
    let fresh = AuthCache::new();
    fresh.catch_up(store.as_ref()).await.unwrap();
    for c in [&cache, &fresh] {
        assert!(!c.authenticate(secret_a).unwrap().flag("beta"));
        assert!(c.flags().enabled("beta", b));
    }
    // Overrides name real tenants; names are checked; delete turns it off.
    let ghost = FlagSpec {
        overrides: [(TenantId::random(), true)].into(),
        ..FlagSpec::default()
    };
    assert!(matches!(
        svc.put_flag("beta", ghost).await,
        Err(IdentityError::Invalid(_))
    ));
    assert!(matches!(
        svc.put_flag("Beta!", FlagSpec::default()).await,
        Err(IdentityError::Invalid(_))
    ));
    svc.delete_flag("beta").await.unwrap();
    assert!(matches!(
        svc.delete_flag("beta").await,
        Err(IdentityError::NotFound(_))
    ));
    cache.catch_up(store.as_ref()).await.unwrap();
    assert!(!cache.flags().enabled("beta", b));
    assert!(svc.list_flags().await.unwrap().is_empty());
}

async fn originals_quota_round_trips(store: Arc<dyn IdentityStore>) {
    let svc = IdentityService::new(store);
    let t = svc.create_tenant(new_tenant("quota")).await.unwrap();
    let t2 = svc
        .update_tenant(
            &t.id,
            TenantPatch {
                rate_limit_rps: Some(5),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        t2.originals_quota,
        OriginalsQuota::default(),
        "the deployment's until set"
    );
    let quota = OriginalsQuota {
        max_bytes: Some(1 << 40),
        max_count: None,
    };
    let t3 = svc
        .update_tenant(
            &t.id,
            TenantPatch {
                originals_quota: Some(quota),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((t3.originals_quota, t3.rate_limit_rps), (quota, 5));
    assert_eq!(
        svc.get_tenant(&t.id).await.unwrap().originals_quota,
        quota,
        "stored"
    );
    let too_big = OriginalsQuota {
        max_bytes: Some(OriginalsQuota::MAX_BYTES + 1),
        max_count: None,
    };
    let patch = TenantPatch {
        originals_quota: Some(too_big),
        ..TenantPatch::default()
    };
    assert!(svc.update_tenant(&t.id, patch).await.is_err());
}

async fn own_keys_are_listed_capped_and_revoked_only_by_their_tenant(store: Arc<dyn IdentityStore>) {
    use crate::service::MAX_OWN_KEYS;
    let svc = IdentityService::new(store);
    let (a, b) = (
        svc.create_tenant(new_tenant("a")).await.unwrap().id,
        svc.create_tenant(new_tenant("b")).await.unwrap().id,
    );
    let first = svc.issue_key(&a).await.unwrap().key_id;
    for _ in 1..MAX_OWN_KEYS {
        svc.issue_own_key(&a).await.unwrap();
    }
    let err = svc.issue_own_key(&a).await.unwrap_err();
    assert!(matches!(err, IdentityError::Quota(_)), "{err}");
    // The operator is not bound by the tenant's own cap.
    let extra = svc.issue_key(&a).await.unwrap().key_id;
    let keys = svc.list_keys(&a).await.unwrap();
    assert_eq!(keys.len(), MAX_OWN_KEYS as usize + 1);
    assert!(
        keys.windows(2).all(|w| w[0].created_at <= w[1].created_at),
        "oldest first"
    );
    assert!(keys.iter().any(|k| k.key_id == first && k.revoked_at.is_none()));
    assert!(svc.list_keys(&b).await.unwrap().is_empty());
    // Revoked only by the tenant, never by the key itself; a revoked key frees a slot.
    let other = svc.issue_key(&b).await.unwrap().key_id;
    assert!(matches!(
        svc.revoke_own_key(&b, &other, &first).await,
        Err(IdentityError::NotFound(_))
    ));
    assert!(matches!(
        svc.revoke_own_key(&a, &first, &first).await,
        Err(IdentityError::Invalid(_))
    ));
    svc.revoke_own_key(&a, &first, &extra).await.unwrap();
    svc.revoke_own_key(&a, &extra, &first).await.unwrap();
    let keys = svc.list_keys(&a).await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_some()).count(), 2);
    svc.issue_own_key(&a).await.unwrap();
}

async fn tenants_and_changes(store: Arc<dyn IdentityStore>) {
    let svc = IdentityService::new(store.clone());
    let before = store.snapshot().await.unwrap().seq;
    let t = svc.create_tenant(new_tenant("acme")).await.unwrap();
    assert_eq!((t.rate_limit_rps, t.burst, t.suspended), (100, 200, false));
    let t2 = svc
        .update_tenant(
            &t.id,
            TenantPatch {
                suspended: Some(true),
                rate_limit_rps: Some(5),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(t2.suspended);
    assert_eq!(t2.rate_limit_rps, 5);
    assert_eq!(svc.get_tenant(&t.id).await.unwrap(), t2);
    assert!(svc.list_tenants().await.unwrap().iter().any(|x| x.id == t.id));
    let changes = store.changes_since(before, 100).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[0].seq < changes[1].seq);
    assert!(matches!(&changes[1].event, ChangeEvent::TenantUpserted { tenant } if tenant.suspended));
    // Unknown tenants and invalid limits are refused.
    assert!(
        svc.update_tenant(&TenantId::random(), TenantPatch::default())
            .await
            .is_err()
    );
    let bad = NewTenant {
        name: "x".into(),
        rate_limit_rps: Some(0),
        burst: None,
        originals_quota: None,
    };
    assert!(svc.create_tenant(bad).await.is_err());
}

async fn keys_are_hashed_and_revocable(store: Arc<dyn IdentityStore>) {
    let svc = IdentityService::new(store.clone());
    let t = svc.create_tenant(new_tenant("keys")).await.unwrap();
    let k = svc.issue_key(&t.id).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    let (_, owner, hash) = snap.keys.iter().find(|(id, _, _)| *id == k.key_id).unwrap();
    assert_eq!(owner, &t.id);
    assert_ne!(hash, &k.secret, "the secret itself must never be stored");
    assert!(!hash.contains(&k.secret[20..]));
    assert!(api_key::KeyHash::from_hex(hash).unwrap().verify(&k.secret));
    svc.revoke_key(&k.key_id).await.unwrap();
    svc.revoke_key(&k.key_id).await.unwrap();
    assert!(svc.revoke_key(&KeyId::random()).await.is_err());
    assert!(svc.issue_key(&TenantId::random()).await.is_err());
    let snap = store.snapshot().await.unwrap();
    assert!(!snap.keys.iter().any(|(id, _, _)| *id == k.key_id));
}

async fn cache_follows_snapshot_and_increments(store: Arc<dyn IdentityStore>) {
    let svc = IdentityService::new(store.clone());
    let t = svc.create_tenant(new_tenant("cache")).await.unwrap();
    let k1 = svc.issue_key(&t.id).await.unwrap();
    let cache = AuthCache::new();
    cache.catch_up(store.as_ref()).await.unwrap();
    assert_eq!(cache.authenticate(&k1.secret).unwrap().tenant_id, t.id);
    // Increments after the snapshot.
    let k2 = svc.issue_key(&t.id).await.unwrap();
    assert_eq!(cache.authenticate(&k2.secret), Err(AuthError::Unauthenticated));
    cache.catch_up(store.as_ref()).await.unwrap();
    assert!(cache.authenticate(&k2.secret).is_ok());
    svc.revoke_key(&k1.key_id).await.unwrap();
    svc.update_tenant(
        &t.id,
        TenantPatch {
            suspended: Some(true),
            ..TenantPatch::default()
        },
    )
    .await
    .unwrap();
    cache.catch_up(store.as_ref()).await.unwrap();
    assert_eq!(cache.authenticate(&k1.secret), Err(AuthError::Unauthenticated));
    assert!(matches!(
        cache.authenticate(&k2.secret),
        Err(AuthError::Suspended(_))
    ));
    // Replaying old changes never resurrects a revoked key.
    let all = store.changes_since(0, 10_000).await.unwrap();
    cache.apply(&all);
    assert_eq!(cache.authenticate(&k1.secret), Err(AuthError::Unauthenticated));
    assert_eq!(cache.seq(), all.last().unwrap().seq);
}

async fn signing_keys_are_tenant_scoped_capped_and_replicated(store: Arc<dyn IdentityStore>) {
    let svc = IdentityService::new(store.clone());
    let (a, b) = (
        svc.create_tenant(new_tenant("signer a")).await.unwrap(),
        svc.create_tenant(new_tenant("signer b")).await.unwrap(),
    );
    let cache = AuthCache::new();
    cache.catch_up(store.as_ref()).await.unwrap();
    let old = svc.issue_signing_key(&a.id).await.unwrap();
    let new = svc.issue_signing_key(&a.id).await.unwrap();
    cache.catch_up(store.as_ref()).await.unwrap();
    let pairs = vec![("width".to_string(), "10".to_string())];
    let path = format!("/v1/img/{}/x.jpg", a.id);
    for key in [&old, &new] {
        let sig = resizer_core::signing::sign(&key.secret, &path, &pairs);
        let ctx = cache.verify_signed(&a.id, &path, &pairs, &sig).unwrap();
        assert_eq!(
            ctx.key_id.as_str(),
            key.signing_key_id.as_str(),
            "both keys are live (rotation)"
        );
        assert!(
            cache.verify_signed(&b.id, &path, &pairs, &sig).is_err(),
            "another tenant's key"
        );
    }
    // Another tenant cannot revoke it; revoking takes effect through the feed.
    assert!(svc.revoke_signing_key(&b.id, &old.signing_key_id).await.is_err());
    assert!(
        svc.revoke_signing_key(&a.id, &SigningKeyId::random())
            .await
            .is_err()
    );
    svc.revoke_signing_key(&a.id, &old.signing_key_id).await.unwrap();
    svc.revoke_signing_key(&a.id, &old.signing_key_id).await.unwrap();
    cache.catch_up(store.as_ref()).await.unwrap();
    let sig = resizer_core::signing::sign(&old.secret, &path, &pairs);
    assert_eq!(
        cache.verify_signed(&a.id, &path, &pairs, &sig),
        Err(AuthError::Unauthenticated)
    );
    // A fresh cache from the snapshot agrees.
    let fresh = AuthCache::new();
    fresh.catch_up(store.as_ref()).await.unwrap();
    let sig_new = resizer_core::signing::sign(&new.secret, &path, &pairs);
    assert!(fresh.verify_signed(&a.id, &path, &pairs, &sig_new).is_ok());
    assert!(fresh.verify_signed(&a.id, &path, &pairs, &sig).is_err());
    // At most MAX_SIGNING_KEYS live; unknown tenants are refused.
    for _ in 1..crate::service::MAX_SIGNING_KEYS {
        svc.issue_signing_key(&b.id).await.unwrap();
    }
    svc.issue_signing_key(&b.id).await.unwrap();
    assert!(matches!(
        svc.issue_signing_key(&b.id).await,
        Err(crate::IdentityError::Quota(_))
    ));
    assert!(svc.issue_signing_key(&TenantId::random()).await.is_err());
}
