//! Single-replica consumers on a real three-server cluster on loopback: the
//! workers replace a consumer whose server dies, and no job is lost, acked or not.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use resizer_queue::JobQueue;
use resizer_queue::jetstream::{JetStreamConfig, JetStreamQueue};
use resizer_queue::testing::{TestItem, sample_item as item};

const STREAM: &str = "SOLO_0";

/// The names of the stream's consumers and the server of the newest.
async fn consumers(js: &async_nats::jetstream::Context) -> (Vec<String>, Option<String>) {
    let stream = js.get_stream(STREAM).await.unwrap();
    let mut names: Vec<String> = stream
        .consumer_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    names.sort_by_key(|n| n.trim_start_matches("workers-").parse::<u64>().unwrap_or(0));
    let server = match names.last() {
        Some(newest) => stream
            .consumer_info(newest)
            .await
            .ok()
            .and_then(|i| i.cluster)
            .and_then(|c| c.leader),
        None => None,
    };
    (names, server)
}

async fn publish(queue: &JobQueue<TestItem>, item: &TestItem) {
    let started = Instant::now();
    // The stream's leader may be the server that died: publish until its election is over.
    while let Err(e) = queue.publish(item).await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "publish kept failing: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn test_a_single_replica_consumer_whose_server_dies_is_replaced_and_no_job_is_lost() {
    let mut servers = resizer_testing::nats::start_nats_cluster(3).await;
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let mut config = JetStreamConfig::new(urls.clone());
    config.streams = 1;
    config.replicas = 3;
    config.stream_prefix = "SOLO".into();
    config.single_replica_consumers = true;
    config.connect_timeout = Duration::from_secs(30);
    let producer = JobQueue::<TestItem>::new(Arc::new(
        JetStreamQueue::connect(config.clone(), false).await.unwrap(),
    ));
    let consumer = JobQueue::<TestItem>::new(Arc::new(JetStreamQueue::connect(config, true).await.unwrap()));

    // Served and acked before the failure.
    for _ in 0..5 {
        let job = item();
        publish(&producer, &job).await;
        let d = consumer
            .pull(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("a job");
        assert_eq!(d.job, job);
        d.ack().await.unwrap();
    }
    // Delivered but not acked when the consumer's server dies: must come again.
    let unacked: Vec<TestItem> = (0..3).map(|_| item()).collect();
    for job in &unacked {
        publish(&producer, job).await;
    }
    let mut taken = Vec::new();
    while taken.len() < unacked.len() {
        let d = consumer
            .pull(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("a job");
        taken.push(d);
    }
    // A healthy idle cluster keeps its consumer: long enough for the watch to see
    // the floor of the acked five, and for any false alarm (three checks, a replica
    // unheard of for 3 s) to show.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let js = async_nats::jetstream::new(async_nats::connect(&urls[0]).await.unwrap());
    let (names, server) = consumers(&js).await;
    assert_eq!(names, vec!["workers-0".to_string()]);
    let victim: usize = server
        .expect("the consumer's server")
        .trim_start_matches('s')
        .parse()
        .unwrap();
    drop(taken);
    drop(servers.remove(victim));
    let killed = Instant::now();

    let later: Vec<TestItem> = (0..10).map(|_| item()).collect();
    for job in &later {
        publish(&producer, job).await;
    }
    let mut want: HashSet<String> = unacked.iter().chain(&later).map(|j| j.id.clone()).collect();
    while !want.is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "{} jobs not delivered 30 s after the consumer's server died",
            want.len()
        );
        if let Ok(Some(d)) = consumer.pull(Duration::from_millis(500)).await {
            want.remove(&d.job.id);
            d.ack().await.unwrap();
        }
    }
    println!(
        "every job delivered {:?} after the consumer's server died",
        killed.elapsed()
    );
    let js = async_nats::jetstream::new(async_nats::connect(&servers[0].url).await.unwrap());
    let (names, _) = consumers(&js).await;
    assert!(
        names.last().is_some_and(|n| n != "workers-0"),
        "the consumer was not replaced: {names:?}"
    );
}
