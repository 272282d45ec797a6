//! The distributed roles: `resizer identity` (management plane), `resizer api`
//! (REST tier with its auth cache fed from the identity service) and
//! `resizer worker` (imaging, pulling from JetStream).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer_api::{AdminState, HashedSecret};
use resizer_identity::feed::{FeedFollower, HttpChangeSource, load_snapshot_file};
use resizer_identity::remote::RemoteIdentity;
use resizer_identity::store::postgres::PostgresIdentityStore;
use resizer_identity::{AuthCache, IdentityService, IdentityStore};
use tokio_util::sync::CancellationToken;

use resizer_jobs::http_client::HttpTransport;
use resizer_queue::JobQueue;
use resizer_queue::jetstream::JetStreamQueue;
use resizer_usage::lease::{StreamAggregator, StreamAggregatorConfig};
use resizer_usage::postgres::PostgresUsageStore;
use resizer_usage::query::{LocalUsage, UsageQueries};
use resizer_worker::{Worker, WorkerConfig};

use crate::node::{self, JobPath, Served};
use resizer::blobs::{ObjectBlobs, OriginalsTotals};
use resizer::config::Config;
use resizer_originals::OriginalStore;
use resizer_originals::shared::SharedOriginals;

/// How often the identity service looks for writes made by another instance sharing its store.
const STORE_POLL: Duration = Duration::from_secs(1);

/// `resizer identity`: the admin API and the change feed over the authoritative store.
pub async fn run_identity(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let cluster_secret = HashedSecret::from_secret(config.cluster_secret()?);
    let (store, backend): (Arc<dyn IdentityStore>, &str) = match &config.identity.database_url {
        None => (node::sqlite_store(&config)?, "sqlite"),
        Some(url) => {
            let store = PostgresIdentityStore::connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            (Arc::new(store), "postgres")
        }
    };
    let identity = Arc::new(IdentityService::new(store.clone()));
    let admin_token = crate::admin_token::resolve(&config.data_dir)?;
    let public_api = resizer_api::openapi::public_document(&node::api_config(&config, "api"));
    // Its own auth cache checks the tenant keys API nodes forward for signing keys.
    let tenant_auth = Arc::new(AuthCache::new());
    tenant_auth
        .catch_up(store.as_ref())
        .await
        .context("loading the identity service's auth cache")?;
    let mut admin = AdminState::new(identity.clone(), admin_token)
        .with_wrong_token_burst(config.http.wrong_token_burst)
        .with_feed(cluster_secret)
        .with_credentials_delegation(tenant_auth)
        .with_public_document(public_api)
        .with_fleet(resizer_api::fleet::Fleet::new(
            "identity",
            config.console_fleet()?,
            Some(config.cluster_secret()?.to_string()),
        ));
    if let Some(queries) = distributed_usage_queries(&config).await? {
        admin = admin.with_usage(queries);
    }

    let poller = tokio::spawn(poll_store(identity.clone(), store.clone()));

    let admin_listener = node::bind(&config.admin_listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(%admin_addr, store = backend, "resizer identity ready");
    node::serve_until_signal(
        vec![Served::new("admin", admin_listener, admin.router()).with_tls(node::tls_server(&config)?)],
        config.http_limits(),
        ready,
        Duration::from_millis(config.api.drain_timeout_ms),
        &CancellationToken::new(),
    )
    .await;
    poller.abort();
    tracing::info!("resizer stopped");
    Ok(())
}

/// Writes by another identity instance on the same store wake feed readers too.
async fn poll_store(identity: Arc<IdentityService>, store: Arc<dyn IdentityStore>) {
    let mut last = 0;
    let mut every = tokio::time::interval(STORE_POLL);
    loop {
        every.tick().await;
        if let Ok(seq) = store.latest_seq().await
            && seq != last
        {
            last = seq;
            identity.signal_change();
        }
    }
}

/// `resizer api`: the public REST tier. Authenticates from an auth cache that
/// follows the identity service's feed, starting from a local snapshot file
/// when one exists. With `queue.nats_url` set, jobs go to JetStream for
/// `resizer worker` processes; otherwise it resizes with in-process workers.
pub async fn run_api(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let shutdown = CancellationToken::new();
    let (auth, follower) = follow_identity(&config, &shutdown)?;
    let public_listener = node::bind(&config.listen).await?;
    let public_addr = public_listener.local_addr()?;
    let (jobs, reachable_at, late_servers) = api_job_path(&config, &shutdown).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let credentials = RemoteIdentity::new(
        &config.identity.url,
        config.cluster_secret()?,
        config.tls.ca_file.as_deref(),
    )?;
    let mut api = jobs
        .api(&config, &reachable_at, auth, ready.clone())
        .with_observer(HashedSecret::from_secret(config.cluster_secret()?))
        .with_credentials(Arc::new(credentials));
    if let Some(queries) = distributed_usage_queries(&config).await? {
        api = api.with_usage_queries(queries);
    }
    if let Some(delivery) = distributed_delivery(&config).await? {
        api = api.with_delivery(delivery);
    }
    let servers = vec![Served::new("public", public_listener, api.router())];
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        %public_addr,
        node = %reachable_at,
        queue = if config.distributed_queue() { "jetstream" } else { "in-process" },
        identity_url = %config.identity.url,
        "resizer api ready"
    );
    let stages = node::Stages {
        lame_duck: Duration::from_millis(config.api.lame_duck_ms),
        drain: Duration::from_millis(config.api.drain_timeout_ms),
    };
    node::serve_in_stages(
        servers,
        late_servers,
        config.http_limits(),
        ready,
        stages,
        &shutdown,
    )
    .await;
    shutdown.cancel();
    let _ = follower.await;
    jobs.stop().await;
    tracing::info!("resizer stopped");
    Ok(())
}

/// The auth cache of an API node and the task that keeps it following the
/// identity feed (until `shutdown`), starting from the local snapshot file.
fn follow_identity(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Arc<AuthCache>, tokio::task::JoinHandle<()>)> {
    let auth = Arc::new(AuthCache::new());
    let snapshot_path = config.data_dir.join("auth-snapshot.json");
    match load_snapshot_file(&auth, &snapshot_path) {
        Ok(true) => tracing::info!(
            seq = auth.seq(),
            path = %snapshot_path.display(),
            "auth cache starts from the local snapshot; following the identity feed for changes"
        ),
        Ok(false) => tracing::info!("no local auth snapshot; not ready until the identity feed answers"),
        Err(e) => tracing::warn!(error = %e, "local auth snapshot unusable; waiting for the identity feed"),
    }
    let source = Arc::new(HttpChangeSource::new(
        &config.identity.url,
        config.cluster_secret()?,
        config.tls.ca_file.as_deref(),
    )?);
    let follower = FeedFollower {
        cache: auth.clone(),
        source,
        snapshot_path: Some(snapshot_path),
    };
    Ok((auth, tokio::spawn(follower.run(shutdown.child_token()))))
}

/// An API node's job path, how workers reach it, and the servers that stop
/// last. Distributed: workers are other processes and reach this node's
/// staging area and result table on its internal port, by URL. Otherwise the
/// workers are in this process and the node is named by a random id.
async fn api_job_path(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<(JobPath, String, Vec<Served>)> {
    if !config.distributed_queue() {
        let name = config.node_name("api");
        return Ok((JobPath::embedded(config, &name, shutdown)?, name, Vec::new()));
    }
    let internal_listener = node::bind(&config.api.internal_listen).await?;
    let tls = node::tls_server(config)?;
    let internal_url = match &config.api.internal_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}", internal_listener.local_addr()?)
        }
    };
    let jobs = JobPath::distributed(config).await?;
    let internal = Served::new("internal", internal_listener, jobs.internal(config)?.router()).with_tls(tls);
    Ok((jobs, internal_url, vec![internal]))
}

/// `resizer worker`: pulls jobs from JetStream while it has free imaging
/// threads, fetches each input from the API node that staged it and delivers
/// the result there. Serves `/healthz` and `/metrics` on its listen address.
pub async fn run_worker(config: Config) -> anyhow::Result<()> {
    if !config.distributed_queue() {
        anyhow::bail!("`resizer worker` needs the JetStream queue: set RESIZER_QUEUE__NATS_URL");
    }
    let name = config.node_name("worker");
    let transport = Arc::new(HttpTransport::new(
        config.worker_api_nodes(),
        config.limits.max_body_bytes,
        config.tls.ca_file.as_deref(),
    )?);
    let queue = Arc::new(
        JetStreamQueue::connect(node::jetstream_config(&config), true)
            .await
            .context("connecting to NATS JetStream")?,
    );
    let threads = config.worker_threads();
    let pool = Arc::new(node::imaging_pool(&config));
    let shutdown = CancellationToken::new();
    let worker = Worker::new(
        WorkerConfig {
            name: name.clone(),
            pull_wait: Duration::from_millis(500),
        },
        JobQueue::new(queue.clone()),
        transport.clone(),
        transport,
        pool,
    );
    let worker_task = tokio::spawn(worker.run(shutdown.child_token()));
    let router = node::health_router();
    let listener = node::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(%addr, worker = %name, threads, "resizer worker ready");
    serve_health(listener, router, &config, ready, &shutdown).await;
    // Stop pulling; jobs in progress finish and are acked (bounded).
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), worker_task).await;
    queue.quiesce(Duration::from_secs(2)).await;
    tracing::info!("resizer stopped");
    Ok(())
}

/// `resizer aggregator`: while it holds the lease, consumes the usage staging
/// stream into the shared PostgreSQL roll-ups and the archive. Run two or more:
/// a standby takes over within the lease TTL. `/healthz` and `/metrics` on its
/// listen address.
pub async fn run_aggregator(config: Config) -> anyhow::Result<()> {
    let (Some(database_url), true) = (&config.usage.database_url, config.distributed_queue()) else {
        anyhow::bail!("`resizer aggregator` needs RESIZER_QUEUE__NATS_URL and RESIZER_USAGE__DATABASE_URL");
    };
    let name = config.node_name("aggregator");
    let store = Arc::new(
        PostgresUsageStore::connect(database_url)
            .await
            .context("connecting to the usage store")?,
    );
    let archive = node::usage_archive(&config, config.data_dir.join("archive"))?;
    let sampling = storage_sampling(&config, store.clone()).await?;
    let aggregator = StreamAggregator::connect(
        StreamAggregatorConfig {
            servers: config.nats_servers(),
            replicas: config.queue.replicas,
            name: name.clone(),
            lease_ttl: Duration::from_millis(config.usage.lease_ttl_ms.max(500)),
            access: config.nats_access(),
        },
        store,
        archive,
    )
    .await
    .map_err(|e| anyhow::anyhow!("connecting to NATS JetStream: {e}"))?;
    let shutdown = CancellationToken::new();
    let task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let result = aggregator.run(shutdown.child_token()).await;
            // Failing to set up the consumer or the lease bucket is not retried here:
            // the role stops and exits non-zero, so the supervisor restarts it.
            if result.is_err() {
                shutdown.cancel();
            }
            result
        })
    };
    let router = node::health_router();
    let listener = node::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(metrics_addr = %addr, aggregator = %name, "resizer aggregator ready");
    serve_health(listener, router, &config, ready, &shutdown).await;
    shutdown.cancel();
    if let Some(sampling) = sampling {
        sampling.abort();
    }
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(Err(e))) => return Err(anyhow::Error::new(e).context("the aggregator failed")),
        Err(_) => tracing::warn!("aggregator did not stop in time"),
        _ => {}
    }
    tracing::info!("resizer stopped");
    Ok(())
}

/// Every aggregator (not only the lease holder: raising an hour's peak is
/// idempotent) samples stored originals into the roll-ups when
/// `delivery.database_url` names the originals index.
async fn storage_sampling(
    config: &Config,
    store: Arc<PostgresUsageStore>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(originals) = shared_originals(config).await? else {
        return Ok(None);
    };
    let every = Duration::from_millis(config.usage.storage_sample_ms.max(10));
    Ok(Some(tokio::spawn(resizer_usage::storage::run(
        Arc::new(OriginalsTotals(originals)),
        store,
        every,
    ))))
}

/// Usage queries over the aggregators' shared roll-ups (PostgreSQL) and archive,
/// for `resizer identity` (admin) and `resizer api` (`/v1/usage`) when
/// `usage.database_url` is set; without it those endpoints answer 503.
async fn distributed_usage_queries(config: &Config) -> anyhow::Result<Option<Arc<dyn UsageQueries>>> {
    let Some(database_url) = &config.usage.database_url else {
        return Ok(None);
    };
    let store = PostgresUsageStore::connect(database_url)
        .await
        .context("connecting to the usage store")?;
    Ok(Some(Arc::new(LocalUsage {
        store: Arc::new(store),
        archive: node::usage_archive(config, config.data_dir.join("archive"))?,
    })))
}

/// Originals in the object store with their index in PostgreSQL, when
/// `delivery.database_url` is set; else this node answers their routes with 503.
async fn distributed_delivery(config: &Config) -> anyhow::Result<Option<resizer_api::originals::Delivery>> {
    Ok(shared_originals(config)
        .await?
        .map(|store| node::delivery(config, store)))
}

/// The originals shared by the distributed roles, when `delivery.database_url` is set.
async fn shared_originals(config: &Config) -> anyhow::Result<Option<Arc<dyn OriginalStore>>> {
    let Some(url) = &config.delivery.database_url else {
        return Ok(None);
    };
    let objects = node::object_store(config, config.data_dir.join("originals"))?;
    let store = SharedOriginals::connect(url, Box::new(ObjectBlobs(objects)))
        .await
        .context("connecting to the originals index")?;
    Ok(Some(Arc::new(store)))
}

/// Serves a role's `/healthz` and `/metrics` until SIGTERM/SIGINT or `shutdown`.
async fn serve_health(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: &Config,
    ready: Arc<AtomicBool>,
    shutdown: &CancellationToken,
) {
    let servers = vec![Served::new("health", listener, router)];
    node::serve_until_signal(
        servers,
        config.http_limits(),
        ready,
        Duration::from_secs(1),
        shutdown,
    )
    .await;
}
