//! Wiring shared by the roles: the in-process job path, HTTP listeners and
//! the shutdown sequence. The only module that names concrete backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer_api::listener::{self, ListenerLimits};
use resizer_api::{ApiConfig, ApiState, InternalState};
use resizer_core::capability::JobSigner;
use resizer_identity::{AuthCache, IdentityStore, SqliteIdentityStore};
use resizer_imaging::Limits;
use resizer_jobs::in_process::InProcessTransport;
use resizer_jobs::results::ResultWaiters;
use resizer_jobs::staging::StagingArea;
use resizer_jobs::{JobDescriptor, JobRunner};
use resizer_queue::JobQueue;
use resizer_queue::jetstream::{JetStreamConfig, JetStreamQueue};
use resizer_usage::archive::{Archive, LocalDirStore, ObjectStore};
use resizer_usage::s3::{S3Config, S3Store};
use resizer_usage::ship::{self, JetStreamUsageSink};
use resizer_usage::{UsageLog, UsageLogConfig};
use resizer_worker::{ImagingPool, Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use resizer::config::Config;

/// Largest result a worker may deliver to an API node (an 8192² PNG fits).
const MAX_RESULT_BYTES: u64 = 512 * 1024 * 1024;

/// How often an API node checks that the queue's stream leaders are spread over the servers.
const LEADER_BALANCE_EVERY: Duration = Duration::from_secs(5);

/// Starts the imaging threads with a ready slot per job `worker.prefetch` lets a
/// worker hold; the worker sizes its pulls from the pool, so the two always agree.
pub fn imaging_pool(config: &Config) -> ImagingPool {
    let threads = config.worker_threads();
    ImagingPool::start(threads, config.worker_jobs_held() - threads, limits(config))
}

/// Returns the imaging limits from the configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_input_pixels: config.limits.max_input_pixels,
        max_output_side: config.limits.max_output_side,
        shrink_on_load: match config.worker.shrink_on_load {
            resizer::config::ShrinkOnLoadSetting::Quality => resizer_imaging::ShrinkOnLoad::Quality,
            resizer::config::ShrinkOnLoadSetting::Fast => resizer_imaging::ShrinkOnLoad::Fast,
        },
        max_frames: config.limits.max_frames,
    }
}

/// The job path of one API node: queue, staging area, result waiters and,
/// in embedded mode, the worker pool.
pub struct JobPath {
    queue: JobQueue<JobDescriptor>,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    /// In-process workers (embedded mode); none when workers are separate processes.
    local: Option<(JoinHandle<()>, CancellationToken)>,
    /// Housekeeping tasks, aborted at stop.
    background: Vec<JoinHandle<()>>,
    /// The node's local usage log.
    usage: Arc<UsageLog>,
    threads: usize,
}

/// Returns the JetStream queue settings from the configuration.
pub fn jetstream_config(config: &Config) -> JetStreamConfig {
    let mut js = JetStreamConfig::new(config.nats_servers());
    js.streams = config.queue.streams;
    js.replicas = config.queue.replicas;
    js.in_memory = config.queue.storage == crate::config::QueueStorage::Memory;
    js.max_jobs = config.queue_capacity() as u64;
    js.publish_timeout = Duration::from_millis(config.queue.publish_timeout_ms);
    js.ack_wait = Duration::from_millis(config.queue.ack_wait_ms);
    js.hold_for = Duration::from_millis(config.queue.hold_ms);
    js.single_replica_consumers = config.queue.single_replica_consumers;
    js.access = config.nats_access();
    js
}

impl JobPath {
    /// The distributed job path: jobs go to JetStream; workers are other processes
    /// and reach this node's staging and results over its internal port.
    pub async fn distributed(config: &Config) -> anyhow::Result<Self> {
        let queue = Arc::new(
            JetStreamQueue::connect(jetstream_config(config), false)
                .await
                .context("connecting to NATS JetStream")?,
        );
        let balancer = {
            let queue = queue.clone();
            tokio::spawn(async move {
                loop {
                    // Jittered, so API nodes rarely act at the same moment.
                    let mut jitter = [0u8; 1];
                    resizer_core::ids::random_bytes(&mut jitter);
                    tokio::time::sleep(
                        LEADER_BALANCE_EVERY + Duration::from_millis(u64::from(jitter[0]) * 20),
                    )
                    .await;
                    if let Err(e) = queue.balance_leaders().await {
                        tracing::debug!(error = %e, "leader balancing skipped");
                    }
                }
            })
        };
        let usage = usage_log(config)?;
        let shipper = {
            let (log, servers, replicas) = (usage.clone(), config.nats_servers(), config.queue.replicas);
            let access = config.nats_access();
            let every = Duration::from_millis(config.usage.ship_every_ms.max(10));
            tokio::spawn(async move {
                // Until the stream answers, records wait in the local log.
                loop {
                    match JetStreamUsageSink::connect(servers.clone(), replicas, &access).await {
                        Ok(sink) => break ship::ship_forever(log, Arc::new(sink), every).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "usage staging stream unavailable; records stay in the local log");
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                    }
                }
            })
        };
        Ok(Self {
            queue: JobQueue::new(queue),
            staging: StagingArea::new(config.api.staging_max_bytes),
            results: ResultWaiters::new(),
            local: None,
            background: vec![balancer, shipper],
            usage,
            threads: 0,
        })
    }

    /// Returns the internal port's state (staging and results, behind the cluster secret).
    pub fn internal(&self, config: &Config) -> anyhow::Result<InternalState> {
        Ok(InternalState::new(
            JobSigner::new(config.cluster_secret()?),
            self.staging.clone(),
            self.results.clone(),
            MAX_RESULT_BYTES,
        ))
    }

    /// The embedded job path: a bounded in-process queue and this process's
    /// workers, which stop at [`JobPath::stop`] or when `shutdown` is cancelled.
    pub fn embedded(config: &Config, node: &str, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let threads = config.worker_threads();
        let queue = if config.queue.max_wait_ms == 0 {
            JobQueue::memory(config.queue_capacity())
        } else {
            JobQueue::memory_with_max_wait(
                config.queue_capacity(),
                Duration::from_millis(config.queue.max_wait_ms),
                config.worker_jobs_held(),
            )
        };
        let staging = StagingArea::new(config.api.staging_max_bytes);
        let results = ResultWaiters::new();
        let transport = Arc::new(InProcessTransport {
            node: node.into(),
            staging: staging.clone(),
            results: results.clone(),
        });
        let pool = Arc::new(imaging_pool(config));
        let stop_workers = shutdown.child_token();
        let worker = Worker::new(
            WorkerConfig {
                name: format!("{node}-worker"),
                pull_wait: Duration::from_millis(500),
            },
            queue.clone(),
            transport.clone(),
            transport,
            pool,
        );
        let worker_task = tokio::spawn(worker.run(stop_workers.clone()));
        Ok(Self {
            queue,
            staging,
            results,
            local: Some((worker_task, stop_workers)),
            background: Vec::new(),
            usage: usage_log(config)?,
            threads,
        })
    }

    /// Returns the node's usage log.
    pub fn usage_log(&self) -> Arc<UsageLog> {
        self.usage.clone()
    }

    /// Returns the number of imaging threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Builds the public API over this job path; `node` is how workers reach
    /// this node (its name in process, its internal URL when distributed).
    pub fn api(&self, config: &Config, node: &str, auth: Arc<AuthCache>, ready: Arc<AtomicBool>) -> ApiState {
        // Workers in other processes prove each job with its token.
        let signer = if config.distributed_queue() {
            config.cluster_secret().ok().map(JobSigner::new)
        } else {
            None
        };
        let jobs = JobRunner::new(
            node.into(),
            self.queue.clone(),
            self.staging.clone(),
            self.results.clone(),
        )
        .with_signer(signer)
        .with_joins(config.api.join_identical);
        ApiState::new(
            api_config(config, node),
            auth,
            Arc::new(jobs),
            ready,
            Some(self.usage.clone()),
        )
    }

    /// Stops pulling and waits (bounded) for jobs in progress.
    pub async fn stop(self) {
        for task in &self.background {
            task.abort();
        }
        if let Err(e) = self.usage.sync(true) {
            tracing::error!(error = %e, "closing the usage log");
        }
        if let Some((task, stop)) = self.local {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Opens the node's usage log in `data_dir/usage`.
fn usage_log(config: &Config) -> anyhow::Result<Arc<UsageLog>> {
    let mut c = UsageLogConfig::new(config.data_dir.join("usage"));
    c.fsync_interval = Duration::from_millis(config.usage.fsync_interval_ms.max(1));
    c.segment_max_age = Duration::from_millis(config.usage.segment_max_age_ms.max(1));
    c.segment_max_bytes = config.usage.segment_max_bytes.max(4096);
    UsageLog::open(c).context("opening the usage log")
}

/// Opens the embedded identity store in the data directory.
pub fn sqlite_store(config: &Config) -> anyhow::Result<Arc<dyn IdentityStore>> {
    Ok(Arc::new(SqliteIdentityStore::open(
        &config.data_dir.join("identity.sqlite"),
    )?))
}

/// The usage archive: in the S3-compatible bucket of `usage.archive_s3_*` when an
/// endpoint is set, else in `usage.archive_dir` (or `default_dir`).
pub fn usage_archive(config: &Config, default_dir: std::path::PathBuf) -> anyhow::Result<Arc<Archive>> {
    Ok(Arc::new(Archive::new(object_store(config, default_dir)?)))
}

/// The object store of the usage archive (and of originals when distributed):
/// the S3-compatible bucket when configured, else a directory.
pub fn object_store(
    config: &Config,
    default_dir: std::path::PathBuf,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let usage = &config.usage;
    let store: Arc<dyn ObjectStore> = if let Some(endpoint) = &usage.archive_s3_endpoint {
        let s3 = S3Config {
            endpoint: endpoint.clone(),
            bucket: usage.archive_s3_bucket.clone().unwrap_or_default(),
            region: usage.archive_s3_region.clone(),
            access_key_id: usage.archive_s3_access_key_id.clone().unwrap_or_default(),
            secret_access_key: usage.archive_s3_secret_access_key.expose().to_string(),
            virtual_host: usage.archive_s3_virtual_host,
            timeout: Duration::from_millis(usage.archive_s3_timeout_ms.max(100)),
        };
        if s3.bucket.is_empty() || s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
            anyhow::bail!(
                "usage.archive_s3_endpoint is set: usage.archive_s3_bucket and the access key id and secret are required"
            );
        }
        tracing::info!(endpoint = %s3.endpoint, bucket = %s3.bucket, "usage archive in S3");
        Arc::new(S3Store::new(&s3).context("configuring the S3 archive")?)
    } else {
        let dir = usage
            .archive_dir
            .as_ref()
            .map_or(default_dir, std::path::PathBuf::from);
        Arc::new(LocalDirStore::new(dir))
    };
    Ok(store)
}

/// `/healthz` and `/metrics` for roles without a public API (worker, aggregator).
pub fn health_router() -> axum::Router {
    let metrics = resizer_telemetry::Metrics::global();
    axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
}

/// Binds a listener.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad listen address {addr}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// A listener, the router it serves and its name in metrics (`public`, `admin`, …).
pub struct Served {
    /// Metric label and log field.
    pub name: &'static str,
    /// The bound socket.
    pub listener: TcpListener,
    /// What it serves.
    pub router: axum::Router,
    /// TLS, for listeners between roles when `tls.cert_file` is set.
    pub tls: Option<Arc<resizer_api::tls::ServerConfig>>,
}

impl Served {
    /// Names a listener and its router (plain HTTP).
    pub fn new(name: &'static str, listener: TcpListener, router: axum::Router) -> Self {
        Self {
            name,
            listener,
            router,
            tls: None,
        }
    }

    /// Serves TLS with `config` (none: plain HTTP).
    pub fn with_tls(mut self, config: Option<Arc<resizer_api::tls::ServerConfig>>) -> Self {
        self.tls = config;
        self
    }
}

/// The TLS server configuration of the listeners between roles (admin with the
/// identity feed, internal), when `tls.cert_file` and `tls.key_file` are set.
pub fn tls_server(config: &Config) -> anyhow::Result<Option<Arc<resizer_api::tls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) else {
        return Ok(None);
    };
    Ok(Some(resizer_api::tls::server_config(cert, key)?))
}

/// Serves routers on their listeners until SIGTERM/SIGINT (or `shutdown` is
/// cancelled), then stops accepting, marks the node not ready and waits
/// (bounded) for in-flight requests.
pub async fn serve_until_signal(
    servers: Vec<Served>,
    limits: ListenerLimits,
    ready: Arc<AtomicBool>,
    drain: Duration,
    shutdown: &CancellationToken,
) {
    let stages = Stages {
        lame_duck: Duration::ZERO,
        drain,
    };
    serve_in_stages(servers, Vec::new(), limits, ready, stages, shutdown).await;
}

/// How a node stops serving.
#[derive(Debug, Clone, Copy)]
pub struct Stages {
    /// Not ready but still accepting, while the load balancer notices.
    pub lame_duck: Duration,
    /// The most time requests in progress get to finish.
    pub drain: Duration,
}

/// Like [`serve_until_signal`], with two additions for a node behind a load
/// balancer. For `lame_duck` after the signal it reports not ready but keeps
/// accepting, so the balancer stops sending before the listener closes and no
/// request meets a closing socket. `late` servers keep serving until the others
/// have drained: a draining API node still lets workers fetch the input and
/// deliver the result of the requests it is finishing.
///
/// Cancelling `shutdown` (a role's fatal error) stops it like a signal does.
pub async fn serve_in_stages(
    servers: Vec<Served>,
    late: Vec<Served>,
    limits: ListenerLimits,
    ready: Arc<AtomicBool>,
    Stages { lame_duck, drain }: Stages,
    shutdown: &CancellationToken,
) {
    let stop_serving = shutdown.child_token();
    let stop_late = shutdown.child_token();
    let spawn_all = |servers: Vec<Served>, stopped: CancellationToken| {
        servers
            .into_iter()
            .map(|s| {
                tokio::spawn(listener::serve(
                    s.listener,
                    s.router,
                    s.name,
                    limits,
                    s.tls,
                    stopped.clone(),
                ))
            })
            .collect::<Vec<_>>()
    };
    let tasks = spawn_all(servers, stop_serving.clone());
    let late_tasks = spawn_all(late, stop_late.clone());
    tokio::select! {
        () = shutdown_signal() => {}
        () = shutdown.cancelled() => tracing::warn!("a task of this role failed; stopping"),
    }
    ready.store(false, Ordering::Relaxed);
    if !lame_duck.is_zero() {
        tracing::info!(
            ?lame_duck,
            "shutdown requested; not ready, still serving while the load balancer notices"
        );
        tokio::time::sleep(lame_duck).await;
    }
    tracing::info!("draining in-flight requests");
    stop_serving.cancel();
    let deadline = tokio::time::Instant::now() + drain;
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout_at(deadline, all).await.is_err() {
        tracing::warn!(?drain, "drain timeout reached; abandoning remaining requests");
    }
    stop_late.cancel();
    let late_all = async {
        for t in late_tasks {
            let _ = t.await;
        }
    };
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), late_all).await;
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// The public API's settings for a node called `node`.
/// Delivery by URL over `store`, with the configured quota and variant cache.
pub fn delivery(
    config: &Config,
    store: Arc<dyn resizer_originals::OriginalStore>,
) -> resizer_api::originals::Delivery {
    let d = &config.delivery;
    resizer_api::originals::Delivery {
        store,
        quota: resizer_originals::Quota {
            max_bytes: d.max_bytes_per_tenant,
            max_count: d.max_originals_per_tenant,
        },
        cache: resizer_api::variant_cache::VariantCache::new(d.cache_bytes),
        max_age_secs: d.max_age_secs,
    }
}

pub fn api_config(config: &Config, node: &str) -> ApiConfig {
    ApiConfig {
        node: node.into(),
        max_body_bytes: config.limits.max_body_bytes,
        limits: limits(config),
        job_deadline: Duration::from_millis(config.api.job_deadline_ms),
        body_read_timeout: Duration::from_millis(config.api.body_read_timeout_ms),
        max_in_flight: config.api.max_in_flight,
        max_in_flight_per_tenant: config.tenant_in_flight_cap(),
    }
}
