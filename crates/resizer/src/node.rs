//! Wiring shared by the roles: the in-process job path, HTTP listeners and
//! the shutdown sequence. The only module that names concrete backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer_api::results::ResultWaiters;
use resizer_api::staging::StagingArea;
use resizer_api::transport::InProcessTransport;
use resizer_api::{ApiConfig, ApiState};
use resizer_identity::{AuthCache, IdentityStore, SqliteIdentityStore};
use resizer_imaging::Limits;
use resizer_queue::JobQueue;
use resizer_worker::{ImagingPool, Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Returns the imaging limits from the configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_input_pixels: config.limits.max_input_pixels,
        max_output_side: config.limits.max_output_side,
    }
}

/// The job path of one API node with its own workers: bounded in-process
/// queue, staging area, result waiters and the worker pool.
pub struct JobPath {
    queue: JobQueue,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    worker_task: JoinHandle<()>,
    stop_workers: watch::Sender<bool>,
    threads: usize,
}

impl JobPath {
    /// Starts the workers.
    pub fn start(config: &Config, node_id: &str) -> Self {
        let queue = JobQueue::memory(config.queue_capacity());
        let staging = StagingArea::new(config.api.staging_max_bytes);
        let results = ResultWaiters::new();
        let transport = Arc::new(InProcessTransport {
            node_id: node_id.into(),
            staging: staging.clone(),
            results: results.clone(),
        });
        let threads = config.worker_threads();
        let pool = Arc::new(ImagingPool::start(threads, limits(config)));
        let (stop_workers, workers_stopped) = watch::channel(false);
        let worker = Worker::new(
            WorkerConfig {
                name: format!("{node_id}-worker"),
                pull_wait: Duration::from_millis(500),
            },
            queue.clone(),
            transport.clone(),
            transport,
            pool,
        );
        let worker_task = tokio::spawn(worker.run(workers_stopped));
        Self {
            queue,
            staging,
            results,
            worker_task,
            stop_workers,
            threads,
        }
    }

    /// Returns the number of imaging threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Builds the public API over this job path.
    pub fn api(
        &self,
        config: &Config,
        node_id: &str,
        auth: Arc<AuthCache>,
        ready: Arc<AtomicBool>,
    ) -> ApiState {
        ApiState::new(
            ApiConfig {
                node_id: node_id.into(),
                max_body_bytes: config.limits.max_body_bytes,
                limits: limits(config),
                job_deadline: Duration::from_millis(config.api.job_deadline_ms),
                body_read_timeout: Duration::from_millis(config.api.body_read_timeout_ms),
                max_in_flight: config.api.max_in_flight,
                max_in_flight_per_tenant: config.tenant_in_flight_cap(),
                join_identical: config.api.join_identical,
            },
            auth,
            self.queue.clone(),
            self.staging.clone(),
            self.results.clone(),
            ready,
        )
    }

    /// Stops pulling and waits (bounded) for jobs in progress.
    pub async fn stop(self) {
        let _ = self.stop_workers.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.worker_task).await;
    }
}

/// Opens the embedded identity store in the data directory.
pub fn sqlite_store(config: &Config) -> anyhow::Result<Arc<dyn IdentityStore>> {
    Ok(Arc::new(SqliteIdentityStore::open(
        &config.data_dir.join("identity.sqlite"),
    )?))
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

/// Serves routers on their listeners until SIGTERM/SIGINT, then stops
/// accepting, marks the node not ready and waits (bounded) for in-flight requests.
pub async fn serve_until_signal(
    servers: Vec<(TcpListener, axum::Router)>,
    ready: Arc<AtomicBool>,
    drain: Duration,
) {
    let (stop_serving, serving_stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for (listener, router) in servers {
        let mut stop = serving_stopped.clone();
        tasks.push(tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "server failed");
            }
        }));
    }
    shutdown_signal().await;
    tracing::info!("shutdown requested; draining in-flight requests");
    ready.store(false, Ordering::Relaxed);
    let _ = stop_serving.send(true);
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(drain, all).await.is_err() {
        tracing::warn!(?drain, "drain timeout reached; abandoning remaining requests");
    }
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
