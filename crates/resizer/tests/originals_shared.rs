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
