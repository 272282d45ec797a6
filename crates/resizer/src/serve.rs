//! `resizer serve`: every role in one process, wired to embedded backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer_api::transport::InProcessTransport;
use resizer_api::{AdminState, ApiConfig, ApiState};
use resizer_identity::{AuthCache, IdentityService, IdentityStore, LocalFollower, SqliteIdentityStore};
use resizer_imaging::Limits;
use resizer_queue::JobQueue;
use resizer_worker::{ImagingPool, Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

/// Node id of the single API node in embedded mode.
const EMBEDDED_NODE: &str = "embedded";

/// Runs until SIGTERM or SIGINT, then drains and returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let limits = Limits {
        max_input_pixels: config.limits.max_input_pixels,
        max_output_side: config.limits.max_output_side,
    };

    // Identity: the authoritative store, and the auth cache that follows it.
    let store: Arc<dyn IdentityStore> = Arc::new(SqliteIdentityStore::open(
        &config.data_dir.join("identity.sqlite"),
    )?);
    let identity = Arc::new(IdentityService::new(store.clone()));
    let auth = Arc::new(AuthCache::new());
    auth.catch_up(store.as_ref())
        .await
        .context("loading the auth cache")?;
    identity.subscribe(Arc::new(LocalFollower {
        cache: auth.clone(),
        store: store.clone(),
    }));
    let admin_token = crate::admin_token::resolve(&config.data_dir)?;

    // The job path: API → queue → workers → back to the API, all in process.
    let queue = JobQueue::memory(config.queue.capacity);
    let staging = resizer_api::staging::StagingArea::new(config.api.staging_max_bytes);
    let results = resizer_api::results::ResultWaiters::new();
    let transport = Arc::new(InProcessTransport {
        node_id: EMBEDDED_NODE.into(),
        staging: staging.clone(),
        results: results.clone(),
    });
    let threads = config.worker_threads();
    let pool = Arc::new(ImagingPool::start(threads, limits));
    let (stop_workers, workers_stopped) = watch::channel(false);
    let worker = Worker::new(
        WorkerConfig {
            name: format!("{EMBEDDED_NODE}-worker"),
            pull_wait: Duration::from_millis(500),
        },
        queue.clone(),
        transport.clone(),
        transport,
        pool,
    );
    let worker_task = tokio::spawn(worker.run(workers_stopped));

    let ready = Arc::new(AtomicBool::new(false));
    let api = ApiState::new(
        ApiConfig {
            node_id: EMBEDDED_NODE.into(),
            max_body_bytes: config.limits.max_body_bytes,
            limits,
            job_deadline: Duration::from_millis(config.api.job_deadline_ms),
            body_read_timeout: Duration::from_millis(config.api.body_read_timeout_ms),
            max_in_flight: config.api.max_in_flight,
        },
        auth,
        queue,
        staging,
        results,
        ready.clone(),
    );
    let admin = AdminState::new(identity, admin_token);

    let public_listener = bind(&config.listen).await?;
    let admin_listener = bind(&config.admin_listen).await?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let (stop_serving, serving_stopped) = watch::channel(false);
    let public_server = serve_until(public_listener, api.router(), serving_stopped.clone());
    let admin_server = serve_until(admin_listener, admin.router(), serving_stopped);
    let servers = tokio::spawn(async move { tokio::join!(public_server, admin_server) });

    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        %public_addr,
        %admin_addr,
        worker_threads = threads,
        data_dir = %config.data_dir.display(),
        "resizer ready"
    );

    shutdown_signal().await;
    tracing::info!("shutdown requested; draining in-flight requests");
    ready.store(false, Ordering::Relaxed);
    let _ = stop_serving.send(true);
    let drain = Duration::from_millis(config.api.drain_timeout_ms);
    if tokio::time::timeout(drain, servers).await.is_err() {
        tracing::warn!(?drain, "drain timeout reached; abandoning remaining requests");
    }
    let _ = stop_workers.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), worker_task).await;
    tracing::info!("resizer stopped");
    Ok(())
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad listen address {addr}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

async fn serve_until(listener: TcpListener, router: axum::Router, mut stop: watch::Receiver<bool>) {
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "server failed");
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
