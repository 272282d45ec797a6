//! The distributed originals store keeps the same contract as the embedded
//! one, on the real engines: the index in a throwaway PostgreSQL database, the
//! bytes in a one-node Garage (S3) through the archive's S3 client.

use std::sync::Arc;

use resizer::blobs::ObjectBlobs;
use resizer_originals::shared::SharedOriginals;
use resizer_usage::s3::S3Store;
use resizer_usage::testing::Garage;

#[tokio::test]
async fn test_shared_originals_keep_the_contract_on_postgres_and_garage() {
    let Some(url) = resizer_testing::fresh_database("originals").await else {
        return;
    };
    let garage = Garage::start();
    let s3 = Arc::new(S3Store::new(&garage.config).unwrap());
    let store = SharedOriginals::connect(&url, Box::new(ObjectBlobs(s3.clone())))
        .await
        .unwrap();
    let store = Arc::new(store);
    resizer_originals::testsuite::run_all(store.clone()).await;
    // The bytes are in the bucket, under originals/{tenant}/.
    let tenants = resizer_usage::archive::ObjectStore::list(s3.as_ref(), "originals/")
        .await
        .unwrap();
    assert!(!tenants.is_empty());
    // Reconnecting after a fresh connect sees the same table.
    let again = SharedOriginals::connect(&url, Box::new(ObjectBlobs(s3)))
        .await
        .unwrap();
    resizer_originals::testsuite::run_all(Arc::new(again)).await;
}

/// A peer that accepts connections and never answers: what a hung process looks like.
fn black_hole() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

#[tokio::test]
async fn test_hung_index_or_bucket_costs_a_bounded_wait_and_leaves_nothing_half_stored() {
    use bytes::Bytes;
    use resizer_core::ids::TenantId;
    use resizer_originals::{OriginalName, OriginalStore, Quota};
    use std::time::{Duration, Instant};
    let Some(url) = resizer_testing::fresh_database("originals").await else {
        return;
    };
    let garage = Garage::start();
    let (_hole, hole) = black_hole();

    // An index that never answers: connecting fails within its bound.
    let started = Instant::now();
    let s3 = Arc::new(S3Store::new(&garage.config).unwrap());
    let hung_index = format!("postgres://resizer@{hole}/postgres?connect_timeout=30");
    assert!(
        SharedOriginals::connect(&hung_index, Box::new(ObjectBlobs(s3)))
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A bucket that never answers: the put fails within the S3 bounds (1 s × 3 attempts here)
    // and no row names bytes that are not there.
    let mut config = garage.config.clone();
    config.endpoint = format!("http://{hole}");
    config.timeout = Duration::from_secs(1);
    let hung_bucket = Arc::new(S3Store::new(&config).unwrap());
    let store = SharedOriginals::connect(&url, Box::new(ObjectBlobs(hung_bucket)))
        .await
        .unwrap();
    let (tenant, name) = (TenantId::random(), OriginalName::parse("hung.jpg").unwrap());
    let meta = resizer_originals::OriginalMeta {
        name: name.to_string(),
        bytes: 3,
        format: "jpeg".into(),
        width: 1,
        height: 1,
        frames: 1,
        content_hash: "00".repeat(32),
        uploaded_at: resizer_originals::local::uploaded_now(),
    };
    let quota = Quota {
        max_bytes: 1 << 20,
        max_count: 10,
    };
    let started = Instant::now();
    let put = store.put(&tenant, meta, Bytes::from_static(b"abc"), quota).await;
    assert!(put.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(store.head(&tenant, &name).await.unwrap().is_none());
    assert_eq!(store.totals(&tenant).await.unwrap().count, 0);
}
