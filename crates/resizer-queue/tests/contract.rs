//! The contract every `JobQueueBackend` keeps, run against each backend: the
//! in-process queue and JetStream (a real nats-server on loopback).
//! What differs by design (redelivery, fairness across tenants) is tested
//! beside each backend, not here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resizer_queue::jetstream::{JetStreamConfig, JetStreamQueue};
use resizer_queue::testing::{TestItem, sample_item};
use resizer_queue::{JobQueue, QueueError};

const BOUND: usize = 4;

/// Runs every clause against `queue`, which holds at most [`BOUND`] items on one stream.
async fn keeps_the_contract(name: &str, queue: JobQueue<TestItem>) {
    empty_pull_waits_then_answers_none(name, &queue).await;
    one_producer_is_served_in_order_and_acked_items_are_gone(name, &queue).await;
    a_full_queue_refuses_at_once(name, &queue).await;
    a_waiting_consumer_wakes_on_publish(name, &queue).await;
}

async fn empty_pull_waits_then_answers_none(name: &str, queue: &JobQueue<TestItem>) {
    let started = Instant::now();
    let pulled = queue.pull(Duration::from_millis(300)).await.unwrap();
    assert!(pulled.is_none(), "{name}: an empty queue delivered");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "{name}: an empty pull took {waited:?}"
    );
}

async fn one_producer_is_served_in_order_and_acked_items_are_gone(name: &str, queue: &JobQueue<TestItem>) {
    let tenant = sample_item().tenant_id;
    let items: Vec<TestItem> = (0..3)
        .map(|_| TestItem {
            tenant_id: tenant.clone(),
            ..sample_item()
        })
        .collect();
    for item in &items {
        queue.publish(item).await.unwrap();
    }
    for item in &items {
        let d = queue
            .pull(Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: a published item was not delivered"));
        assert_eq!(&d.job, item, "{name}: out of order");
        d.ack().await.unwrap();
    }
    let after = queue.pull(Duration::from_millis(300)).await.unwrap();
    assert!(after.is_none(), "{name}: an acked item came back");
}

async fn a_full_queue_refuses_at_once(name: &str, queue: &JobQueue<TestItem>) {
    let mut published = HashSet::new();
    for _ in 0..BOUND {
        let item = sample_item();
        queue.publish(&item).await.unwrap();
        published.insert(item.id);
    }
    let started = Instant::now();
    assert_eq!(
        queue.publish(&sample_item()).await,
        Err(QueueError::Full),
        "{name}: published beyond the bound"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{name}: refusing took {took:?}");
    // Every admitted item is still delivered, once.
    while !published.is_empty() {
        let d = queue.pull(Duration::from_secs(2)).await.unwrap();
        let d = d.unwrap_or_else(|| panic!("{name}: {} admitted items never came", published.len()));
        assert!(
            published.remove(&d.job.id),
            "{name}: delivered an unknown or repeated item"
        );
        d.ack().await.unwrap();
    }
}

async fn a_waiting_consumer_wakes_on_publish(name: &str, queue: &JobQueue<TestItem>) {
    let consumer = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pull(Duration::from_secs(5)).await })
    };
    // Publish once the consumer is (very likely) waiting; correctness does not depend on it.
    tokio::task::yield_now().await;
    let item = sample_item();
    queue.publish(&item).await.unwrap();
    let d = consumer.await.unwrap().unwrap();
    let d = d.unwrap_or_else(|| panic!("{name}: the waiting consumer never got the item"));
    assert_eq!(d.job, item, "{name}");
    d.ack().await.unwrap();
}

#[tokio::test]
async fn test_the_in_process_queue_keeps_the_contract() {
    keeps_the_contract("memory", JobQueue::memory(BOUND)).await;
}

#[tokio::test]
async fn test_jetstream_keeps_the_contract() {
    let nats = resizer_testing::nats::start_nats().await;
    let mut config = JetStreamConfig::new(vec![nats.url.clone()]);
    config.streams = 1;
    config.max_jobs = BOUND as u64;
    config.connect_timeout = Duration::from_secs(10);
    let queue = JetStreamQueue::connect(config, true).await.unwrap();
    keeps_the_contract("jetstream", JobQueue::new(Arc::new(queue))).await;
}

/// A client that loses its server says so within seconds (two missed 1 s
/// pings), and recovers when the server returns: what an API node's readiness reads.
#[tokio::test]
async fn test_jetstream_reports_whether_it_reaches_a_server() {
    let nats = resizer_testing::nats::start_nats().await;
    let mut config = JetStreamConfig::new(vec![nats.url.clone()]);
    config.streams = 1;
    config.connect_timeout = Duration::from_secs(10);
    let queue = JobQueue::<TestItem>::new(Arc::new(JetStreamQueue::connect(config, false).await.unwrap()));
    assert!(queue.reachable());
    let pid = nats.pid().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // A stalled server, as a partition looks to the client: no reset, no answer.
    signal("-STOP");
    let started = Instant::now();
    while queue.reachable() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let noticed = started.elapsed();
    signal("-CONT");
    assert!(
        noticed < Duration::from_secs(10),
        "a stalled server went unnoticed for {noticed:?}"
    );
    let started = Instant::now();
    while !queue.reachable() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        queue.reachable(),
        "not reachable again 10 s after the server resumed"
    );
    println!(
        "unreachable noticed after {noticed:?}, reachable again after {:?}",
        started.elapsed()
    );
}

/// Jobs live in the servers' memory unless files are asked for (ADR 0009), and
/// the queue works the same either way.
#[tokio::test]
async fn test_jetstream_keeps_jobs_where_configured() {
    let nats = resizer_testing::nats::start_nats().await;
    for (in_memory, prefix) in [(true, "MEMJOBS"), (false, "FILEJOBS")] {
        let mut config = JetStreamConfig::new(vec![nats.url.clone()]);
        config.streams = 1;
        config.stream_prefix = prefix.into();
        config.in_memory = in_memory;
        config.connect_timeout = Duration::from_secs(10);
        let queue = JobQueue::<TestItem>::new(Arc::new(JetStreamQueue::connect(config, true).await.unwrap()));
        let item = sample_item();
        queue.publish(&item).await.unwrap();
        let d = queue.pull(Duration::from_secs(2)).await.unwrap().unwrap();
        assert_eq!(d.job, item);
        d.ack().await.unwrap();
        let client = async_nats::connect(&nats.url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(format!("{prefix}_0")).await.unwrap();
        let storage = stream.info().await.unwrap().config.storage;
        let expected = if in_memory {
            async_nats::jetstream::stream::StorageType::Memory
        } else {
            async_nats::jetstream::stream::StorageType::File
        };
        assert_eq!(storage, expected, "{prefix}");
    }
}

/// Idle pulls spread over the streams instead of each waiting on all of them:
/// a job published to an idle queue reaches a pull that wants it, so none is
/// handed back and redelivered (ADR 0009). Six idle pulls on three streams.
#[tokio::test]
async fn test_jetstream_idle_pulls_take_jobs_without_redeliveries() {
    idle_pulls_take_jobs_without_redeliveries(6).await;
}

/// Fewer idle pulls than streams (a worker of one imaging thread): one pull waits
/// on two streams, and a job reaching the request of a pull that already returned
/// goes to the next pull instead of back to the queue (`handoff`).
#[tokio::test]
async fn test_jetstream_fewer_idle_pulls_than_streams_take_jobs_without_redeliveries() {
    idle_pulls_take_jobs_without_redeliveries(2).await;
}

async fn idle_pulls_take_jobs_without_redeliveries(pulls: usize) {
    let nats = resizer_testing::nats::start_nats().await;
    let mut config = JetStreamConfig::new(vec![nats.url.clone()]);
    config.streams = 3;
    config.stream_prefix = "IDLEJOBS".into();
    config.connect_timeout = Duration::from_secs(10);
    let queue = JobQueue::<TestItem>::new(Arc::new(JetStreamQueue::connect(config, true).await.unwrap()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let pullers: Vec<_> = (0..pulls)
        .map(|_| {
            let (queue, tx) = (queue.clone(), tx.clone());
            tokio::spawn(async move {
                loop {
                    if let Ok(Some(d)) = queue.pull(Duration::from_secs(2)).await {
                        let id = d.job.id.clone();
                        d.ack().await.unwrap();
                        let _ = tx.send(id).await;
                    }
                }
            })
        })
        .collect();
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let consumer_info = |i: usize| {
        let js = js.clone();
        async move {
            let stream = js.get_stream(format!("IDLEJOBS_{i}")).await.unwrap();
            stream.consumer_info("workers").await.unwrap().clone()
        }
    };
    // Every stream has a waiting request before the first job.
    let started = Instant::now();
    loop {
        let mut waiting = 0;
        for i in 0..3 {
            waiting += usize::from(consumer_info(i).await.num_waiting > 0);
        }
        if waiting == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "idle pulls never covered every stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The consumers' delivery sequences count every delivery, hand-backs' redeliveries too.
    let deliveries = || async {
        let mut n = 0;
        for i in 0..3 {
            n += consumer_info(i).await.delivered.consumer_sequence;
        }
        n
    };
    let mut counted_from = 0;
    for round in 0..36 {
        // The first round settles the pulls that started together (one of them waits
        // on every stream); the count starts after it.
        if round == 6 {
            counted_from = deliveries().await;
        }
        let item = sample_item();
        queue.publish(&item).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
        assert_eq!(
            got.ok().flatten(),
            Some(item.id),
            "a job on an idle queue was not taken within 1 s"
        );
    }
    let counted = deliveries().await - counted_from;
    for p in pullers {
        p.abort();
    }
    assert_eq!(counted, 30, "idle pulls handed jobs back");
}
