//! The distributed aggregator on real engines: a nats-server with JetStream and
//! PostgreSQL, two `resizer aggregator` processes sharing the roll-up store and
//! the archive. Records published to the staging stream are counted exactly
//! once, also when the active aggregator is killed with -9 and the standby
//! takes the lease over.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Server, start_nats};
use resizer_core::ids::TenantId;
use resizer_usage::UsageRecord;
use resizer_usage::archive::ObjectStore;
use resizer_usage::s3::{S3Config, S3Store};
use resizer_usage::testing::Garage;

fn records(tenant: &TenantId, n: usize) -> Vec<UsageRecord> {
    let now = resizer_core::time::now_unix_ms();
    (0..n)
        .map(|i| UsageRecord::sample(tenant, now + i as u64, if i % 4 == 0 { 422 } else { 200 }))
        .collect()
}

async fn publish(js: &async_nats::jetstream::Context, batch: &[UsageRecord]) {
    for r in batch {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(r).unwrap().into())
            .message_id(r.record_id.as_str());
        js.send_publish("resizer.usage", message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// An aggregator's settings: NATS, PostgreSQL and the archive in the Garage
/// bucket, the secret passed the AWS way (as on separate machines).
fn aggregator_env(nats_url: &str, db_url: &str, s3: &S3Config) -> Vec<(String, String)> {
    vec![
        ("RESIZER_QUEUE__NATS_URL".into(), nats_url.into()),
        ("RESIZER_USAGE__DATABASE_URL".into(), db_url.into()),
        ("RESIZER_USAGE__ARCHIVE_S3_ENDPOINT".into(), s3.endpoint.clone()),
        ("RESIZER_USAGE__ARCHIVE_S3_BUCKET".into(), s3.bucket.clone()),
        ("RESIZER_USAGE__ARCHIVE_S3_REGION".into(), s3.region.clone()),
        (
            "RESIZER_USAGE__ARCHIVE_S3_ACCESS_KEY_ID".into(),
            s3.access_key_id.clone(),
        ),
        ("AWS_SECRET_ACCESS_KEY".into(), s3.secret_access_key.clone()),
    ]
}

/// (requests, succeeded) summed over the tenant's buckets.
async fn counted(db: &tokio_postgres::Client, tenant: &TenantId) -> (i64, i64) {
    let row = db
        .query_one(
            "SELECT COALESCE(SUM(requests), 0)::BIGINT, COALESCE(SUM(succeeded), 0)::BIGINT FROM usage_hourly WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn wait_counted(db: &tokio_postgres::Client, tenant: &TenantId, want: i64) -> (i64, i64) {
    let started = Instant::now();
    loop {
        let got = counted(db, tenant).await;
        // What a killed aggregator had fetched but not acknowledged comes back after the
        // consumer's ack wait (30 s) from its delivery: allow that, plus the takeover.
        if got.0 >= want || started.elapsed() > Duration::from_secs(45) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn test_standby_aggregator_takes_over_and_nothing_is_counted_twice() {
    let Some(db_url) = resizer_testing::fresh_database("agg").await else {
        return;
    };
    let nats = start_nats().await;
    // The aggregators share nothing but NATS, PostgreSQL and an S3 bucket (Garage),
    // as on separate machines; the archive's secret goes by the AWS variable.
    let garage = Garage::start();
    let s3 = garage.config.clone();
    let aggregator = |name: &str| {
        Server::start_with(Options {
            role: "aggregator",
            env: [
                aggregator_env(&nats.url, &db_url, &s3),
                vec![
                    ("RESIZER_USAGE__LEASE_TTL_MS".into(), "1500".into()),
                    ("RESIZER_NODE__NAME".into(), name.into()),
                ],
            ]
            .concat(),
            ..Options::default()
        })
    };
    let mut first = aggregator("agg-1");
    let mut second = aggregator("agg-2");

    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let (db, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tenant = TenantId::random();

    let batch1 = records(&tenant, 400);
    publish(&js, &batch1).await;
    assert_eq!(wait_counted(&db, &tenant, 400).await, (400, 300));

    // Kill the lease holder; the standby takes over within the lease TTL.
    let holds = |s: &Server| s.stderr.lock().unwrap().contains("acquired the aggregator lease");
    let (active, standby) = if holds(&first) {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(!holds(standby), "only one aggregator holds the lease");
    active.kill9();
    let batch2 = records(&tenant, 400);
    publish(&js, &batch2).await;
    // The same records again (an API node re-shipping after a failure): counted once.
    publish(&js, &batch1[..100]).await;
    assert_eq!(wait_counted(&db, &tenant, 800).await, (800, 600));
    assert!(holds(standby), "the standby took the lease");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(counted(&db, &tenant).await, (800, 600), "nothing counted twice");

    // The archive holds every record once (duplicates dropped on read). A batch
    // is counted, then filed, then acked: when the kill fell between counting and
    // filing batch 1, the standby files it on redelivery, after the 30 s ack wait.
    let store = std::sync::Arc::new(S3Store::new(&s3).unwrap());
    let from = batch1[0].received_unix_ms;
    let started = Instant::now();
    let archived = loop {
        let all = resizer_usage::archive::Archive::new(store.clone())
            .records(&tenant, from, from + 86_400_000, 10_000)
            .await
            .unwrap();
        if all.len() >= 800 || started.elapsed() > Duration::from_secs(45) {
            break all.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(archived, 800);

    // Every object is valid Parquet with zstd, read by the `parquet` crate's
    // generic reader (not our decoder), straight from the bucket.
    let mut objects = Vec::new();
    for day in store.list("usage/").await.unwrap() {
        for key in store.list(&format!("{day}/")).await.unwrap() {
            objects.push(store.get(&key).await.unwrap());
        }
    }
    let rows = tokio::task::spawn_blocking(move || {
        let mut rows = 0;
        for bytes in objects {
            {
                use parquet::file::reader::FileReader;
                let reader = parquet::file::reader::SerializedFileReader::new(bytes).unwrap();
                let meta = reader.metadata();
                assert!(matches!(
                    meta.row_group(0).column(0).compression(),
                    parquet::basic::Compression::ZSTD(_)
                ));
                rows += meta.file_metadata().num_rows();
            }
        }
        rows
    })
    .await
    .unwrap();
    // Each batch is filed once per delivery; re-shipped records may be filed again.
    assert!(rows >= 800, "{rows} rows in the bucket");
    drop(second);
    drop(first);
    drop(garage);
}

/// Not a check but a measurement (run it explicitly, release build):
/// `cargo test --release -p resizer --test aggregator -- --ignored --nocapture`.
/// Stages `RESIZER_BENCH_RECORDS` (default 100,000) records for 100 tenants,
/// then times one aggregator draining them into PostgreSQL and Garage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; see docs/benchmarks.md"]
async fn measure_distributed_aggregator_throughput() {
    let n: usize = std::env::var("RESIZER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let Some(db_url) = resizer_testing::fresh_database("agg").await else {
        return;
    };
    let nats = start_nats().await;
    let garage = Garage::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    resizer_usage::ship::ensure_usage_stream(&js, 1).await.unwrap();
    let tenants: Vec<TenantId> = (0..100).map(|_| TenantId::random()).collect();
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let r = &records(&tenants[i % tenants.len()], 1)[0];
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(r).unwrap().into())
            .message_id(r.record_id.as_str());
        acks.push(js.send_publish("resizer.usage", message).await.unwrap());
        if acks.len() >= 5000 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks.drain(..) {
        a.await.unwrap();
    }
    let s3 = garage.config.clone();
    let started = Instant::now();
    let aggregator = Server::start_with(Options {
        role: "aggregator",
        env: aggregator_env(&nats.url, &db_url, &s3),
        ..Options::default()
    });
    let (db, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let total = loop {
        let row = db
            .query_one("SELECT COALESCE(SUM(requests), 0)::BIGINT FROM usage_hourly", &[])
            .await
            .unwrap();
        let total: i64 = row.get(0);
        if total as usize >= n || started.elapsed() > Duration::from_secs(600) {
            break total;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    println!(
        "aggregator: {total} of {n} records counted in {:.2} s (each batch archived before the next is taken; process start included) = {:.0} records/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(total as usize, n);
    drop(aggregator);
}
