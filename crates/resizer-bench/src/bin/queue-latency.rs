//! `queue-latency`: the job queue alone, through Resizer's own JetStream client.
//!
//! Publishes small jobs open-loop at `--rate` (each publish on the schedule, not
//! after the previous one's ack) while `--consumers` tasks pull, ack and record the
//! time from the scheduled publish to the pull's return. Publisher and consumers
//! share one monotonic clock (one process), so the figures need no clock agreement.
//! Prints publish-ack and publish-to-receive percentiles from HDR histograms, and
//! the client's JetStream operations per job.
//!
//! Used by `bench/queue-latency.sh` against `deploy/cluster.sh`'s three servers
//! with the cluster's own workers stopped (they would take the jobs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use resizer_core::credentials::{Login, NatsAccess, Redacted};
use resizer_core::ids::{JobId, TenantId};
use resizer_queue::QueueItem;
use resizer_queue::jetstream::{JetStreamConfig, JetStreamQueue};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(
    name = "queue-latency",
    about = "Publish-to-receive latency of Resizer's JetStream queue"
)]
struct Cli {
    /// NATS server URLs, comma-separated.
    #[arg(long)]
    servers: String,
    /// Jobs per second, open loop.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds measured (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent pulling tasks (a worker pulls with one per free slot).
    #[arg(long, default_value_t = 16)]
    consumers: usize,
    /// Streams and replicas, as the cluster's API nodes create them.
    #[arg(long, default_value_t = 3)]
    streams: usize,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Keep jobs on the servers' disks (`queue.storage = file`) instead of in memory.
    /// The streams must not exist yet (a fresh cluster).
    #[arg(long)]
    file: bool,
    /// Measure the queue with limits-retention streams and single-replica consumers
    /// (ADR 0009), on streams of their own (`QUEUE_BENCH_R1_*`).
    #[arg(long)]
    unreplicated_consumers: bool,
    /// Limits-retention streams with replicated consumers: acked jobs are not
    /// deleted (`QUEUE_BENCH_LIM_*`).
    #[arg(long)]
    limits_retention: bool,
    /// NATS user and password of the publishing side (`api`) and the pulling side (`worker`).
    #[arg(long, env = "QUEUE_BENCH_PUBLISHER")]
    publisher: Option<String>,
    #[arg(long, env = "QUEUE_BENCH_CONSUMER")]
    consumer: Option<String>,
}

/// A job as small as a real descriptor's header fields; the payload is padding.
#[derive(Clone, Serialize, Deserialize)]
struct Probe {
    id: String,
    tenant_id: TenantId,
    /// Microseconds since the run's epoch at the scheduled publish.
    sent_us: u64,
    pad: String,
}

impl QueueItem for Probe {
    fn id(&self) -> &str {
        &self.id
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
}

fn access(user_password: &Option<String>) -> NatsAccess {
    NatsAccess {
        login: user_password.as_ref().and_then(|up| {
            up.split_once(':').map(|(u, p)| Login {
                user: u.to_string(),
                password: Redacted::from(p),
            })
        }),
        ca_file: None,
    }
}

async fn connect(cli: &Cli, who: &Option<String>, consume: bool) -> anyhow::Result<JetStreamQueue> {
    let mut config = JetStreamConfig::new(cli.servers.split(',').map(str::to_string).collect());
    config.streams = cli.streams;
    config.replicas = cli.replicas;
    config.in_memory = !cli.file;
    if cli.unreplicated_consumers {
        config.single_replica_consumers = true;
        config.stream_prefix = "QUEUE_BENCH_R1".into();
    } else if cli.limits_retention {
        config.limits_retention = true;
        config.stream_prefix = "QUEUE_BENCH_LIM".into();
    }
    config.access = access(who);
    config.connect_timeout = Duration::from_secs(10);
    JetStreamQueue::connect(config, consume)
        .await
        .context("connecting to NATS")
}

type Hist = Arc<Mutex<Histogram<u64>>>;

fn hist() -> Hist {
    Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    ))
}

fn print(name: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name}: n={} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
}

/// The run's clock and measurement window.
#[derive(Clone, Copy)]
struct Window {
    epoch: Instant,
    warmup: Duration,
    total: Duration,
}

impl Window {
    fn measured(&self, sent_us: u64) -> bool {
        Duration::from_micros(sent_us) >= self.warmup
    }
}

/// Tasks that pull, record publish-to-receive and ack until the run (and a 2-s drain) is over.
fn spawn_pullers(
    consumer: Arc<JetStreamQueue>,
    n: usize,
    w: Window,
    received: Hist,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (consumer, received) = (consumer.clone(), received.clone());
            tokio::spawn(async move {
                use resizer_queue::JobQueueBackend;
                while w.epoch.elapsed() < w.total + Duration::from_secs(2) {
                    let Ok(Some(d)) =
                        JobQueueBackend::<Probe>::pull(&*consumer, Duration::from_millis(500)).await
                    else {
                        continue;
                    };
                    let now = w.epoch.elapsed().as_micros() as u64;
                    if w.measured(d.job.sent_us) {
                        let _ = received
                            .lock()
                            .await
                            .record(now.saturating_sub(d.job.sent_us).max(1));
                    }
                    let _ = d.ack().await;
                }
            })
        })
        .collect()
}

/// Publishes on a fixed schedule, each publish its own task; returns the failures.
async fn publish_open_loop(publisher: Arc<JetStreamQueue>, rate: f64, w: Window, published: Hist) -> u64 {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = w.epoch;
    let mut failed = 0u64;
    let mut publishes = tokio::task::JoinSet::new();
    while next.duration_since(w.epoch) < w.total {
        tokio::time::sleep_until(next.into()).await;
        let sent_us = next.duration_since(w.epoch).as_micros() as u64;
        let (publisher, published) = (publisher.clone(), published.clone());
        publishes.spawn(async move {
            use resizer_queue::JobQueueBackend;
            let probe = Probe {
                id: JobId::random().to_string(),
                tenant_id: TenantId::random(),
                sent_us,
                pad: "x".repeat(300),
            };
            let ok = publisher.publish(&probe).await.is_ok();
            if ok && w.measured(sent_us) {
                let took = w.epoch.elapsed().as_micros() as u64 - sent_us;
                let _ = published.lock().await.record(took.max(1));
            }
            ok
        });
        while let Some(done) = publishes.try_join_next() {
            failed += u64::from(!done.unwrap_or(false));
        }
        next += interval;
    }
    while let Some(done) = publishes.join_next().await {
        failed += u64::from(!done.unwrap_or(false));
    }
    failed
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let recorder = resizer_telemetry::Metrics::global();
    let publisher = Arc::new(connect(&cli, &cli.publisher, false).await?);
    let consumer = Arc::new(connect(&cli, &cli.consumer, true).await?);
    let warmup = Duration::from_secs(1);
    let w = Window {
        epoch: Instant::now(),
        warmup,
        total: warmup + Duration::from_secs_f64(cli.duration),
    };
    let (received, published) = (hist(), hist());
    let pullers = spawn_pullers(consumer, cli.consumers, w, received.clone());
    let failed = publish_open_loop(publisher, cli.rate, w, published.clone()).await;
    for p in pullers {
        let _ = p.await;
    }
    println!(
        "rate {:.0} jobs/s for {:.0} s, {} consumers, {} {} streams × R{} in {}, consumers R{}; failed publishes: {failed}",
        cli.rate,
        cli.duration,
        cli.consumers,
        cli.streams,
        if cli.unreplicated_consumers || cli.limits_retention {
            "limits"
        } else {
            "work-queue"
        },
        cli.replicas,
        if cli.file { "files" } else { "memory" },
        if cli.unreplicated_consumers {
            1
        } else {
            cli.replicas
        }
    );
    print("publish → stream ack", &*published.lock().await);
    print("publish → worker receive", &*received.lock().await);
    // What it took in JetStream operations, warm-up and drain included.
    let sent = (cli.rate * (cli.duration + 1.0)).max(1.0);
    for line in recorder.render().lines() {
        if let Some(rest) = line.strip_prefix("resizer_queue_operations_total{op=\"")
            && let Some((op, count)) = rest.split_once("\"} ")
        {
            println!(
                "  {op}: {:.2} per job",
                count.parse::<f64>().unwrap_or(0.0) / sent
            );
        }
    }
    Ok(())
}
