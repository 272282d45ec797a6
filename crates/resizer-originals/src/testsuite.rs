//! The contract every [`OriginalStore`] backend must keep (feature `testsuite`).

use std::sync::Arc;

use bytes::Bytes;
use resizer_core::ids::{TenantId, to_hex};

use crate::error::OriginalsError;
use crate::model::{OriginalMeta, Quota, Totals};
use crate::name::OriginalName;
use crate::store::OriginalStore;

/// Metadata for `bytes` under `name`.
pub fn meta(name: &str, bytes: &[u8]) -> OriginalMeta {
    OriginalMeta {
        name: name.into(),
        bytes: bytes.len() as u64,
        format: "png".into(),
        width: 1,
        height: 1,
        frames: 1,
        content_hash: to_hex(bytes),
        uploaded_at: "2026-12-06T00:00:00Z".into(),
    }
}

const BIG: Quota = Quota {
    max_bytes: 1 << 30,
    max_count: 1000,
};

fn name(s: &str) -> OriginalName {
    OriginalName::parse(s).unwrap()
}

/// Runs every check against `store` (fresh tenants each time, so a shared store is fine).
pub async fn run_all(store: Arc<dyn OriginalStore>) {
    by_tenant(store.as_ref()).await;
    quotas(store.as_ref()).await;
}

async fn put(
    store: &dyn OriginalStore,
    t: &TenantId,
    n: &str,
    bytes: &'static [u8],
    q: Quota,
) -> Result<Option<OriginalMeta>, OriginalsError> {
    store.put(t, meta(n, bytes), Bytes::from_static(bytes), q).await
}

async fn by_tenant(store: &dyn OriginalStore) {
    let (a, b) = (TenantId::random(), TenantId::random());
    for n in ["x/1", "x/2", "x/3", "y", "x", "x0", "x-"] {
        put(store, &a, n, b"abc", BIG).await.unwrap();
    }
    put(store, &b, "x/1", b"other", BIG).await.unwrap();
    let (m, bytes) = store.get(&a, &name("x/1")).await.unwrap().unwrap();
    assert_eq!((m, &bytes[..]), (meta("x/1", b"abc"), &b"abc"[..]));
    assert_eq!(
        &store.get(&b, &name("x/1")).await.unwrap().unwrap().1[..],
        b"other"
    );
    assert!(
        store.get(&b, &name("y")).await.unwrap().is_none(),
        "another tenant's name"
    );

    // Pages follow byte order of names ("-" < "/" < "0"), whatever the backend's collation.
    let all = store.list(&a, "", None, 100).await.unwrap();
    let names: Vec<_> = all.originals.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["x", "x-", "x/1", "x/2", "x/3", "x0", "y"]);
    let p1 = store.list(&a, "x/", None, 2).await.unwrap();
    let names: Vec<_> = p1.originals.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["x/1", "x/2"]);
    let p2 = store.list(&a, "x/", p1.next_cursor.as_deref(), 2).await.unwrap();
    assert_eq!(p2.originals.len(), 1);
    assert_eq!(p2.next_cursor, None);
    assert_eq!(store.totals(&a).await.unwrap(), Totals { count: 7, bytes: 21 });

    assert!(store.delete(&a, &name("x/2")).await.unwrap());
    assert!(!store.delete(&a, &name("x/2")).await.unwrap());
    assert!(store.head(&a, &name("x/2")).await.unwrap().is_none());
    assert!(store.get(&a, &name("x/2")).await.unwrap().is_none());
    assert!(!store.delete(&b, &name("y")).await.unwrap());
    assert!(store.head(&a, &name("y")).await.unwrap().is_some());

    // Every tenant's totals at once (what storage metering samples).
    let all = store.stored_by_tenant().await.unwrap();
    let of = |t: &TenantId| all.iter().find(|(x, _)| x == t).map(|(_, totals)| *totals);
    assert_eq!(of(&a), Some(Totals { count: 6, bytes: 18 }));
    assert_eq!(of(&b), Some(Totals { count: 1, bytes: 5 }));
    assert_eq!(
        of(&TenantId::random()),
        None,
        "no row for a tenant storing nothing"
    );
}

async fn quotas(store: &dyn OriginalStore) {
    let t = TenantId::random();
    let q = Quota {
        max_bytes: 10,
        max_count: 2,
    };
    put(store, &t, "a", b"12345", q).await.unwrap();
    let err = put(store, &t, "b", b"123456", q).await.unwrap_err();
    assert!(matches!(err, OriginalsError::QuotaExceeded(_)), "{err}");
    let replaced = put(store, &t, "a", b"1234567890", q).await.unwrap();
    assert_eq!(replaced.map(|m| m.bytes), Some(5));
    assert_eq!(
        &store.get(&t, &name("a")).await.unwrap().unwrap().1[..],
        b"1234567890"
    );
    assert!(
        store.get(&t, &name("b")).await.unwrap().is_none(),
        "the refused upload left nothing"
    );
    put(store, &t, "c", b"", q).await.unwrap();
    assert!(
        matches!(
            put(store, &t, "d", b"", q).await,
            Err(OriginalsError::QuotaExceeded(_))
        ),
        "a third original"
    );
}
