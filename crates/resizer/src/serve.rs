//! `resizer serve`: every role in one process, wired to embedded backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer::blobs::OriginalsTotals;
use resizer_api::AdminState;
use resizer_identity::{AuthCache, IdentityService, LocalFollower};
use resizer_originals::{LocalOriginals, OriginalStore};

use resizer_usage::aggregator::Aggregator;
use resizer_usage::query::{LocalUsage, UsageQueries};
use resizer_usage::store::{SqliteUsageStore, UsageStore};

use tokio_util::sync::CancellationToken;

use crate::node::{self, JobPath, Served};
use resizer::config::Config;

/// Node id of the single API node in embedded mode.
const EMBEDDED_NODE: &str = "embedded";

/// Runs until SIGTERM or SIGINT, then drains and returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let (identity, auth) = identity(&config).await?;
    let admin_token = crate::admin_token::resolve(&config.data_dir)?;

    // The job path: API → queue → workers → back to the API, all in process.
    let shutdown = CancellationToken::new();
    let jobs = JobPath::embedded(&config, EMBEDDED_NODE, &shutdown)?;

    let originals = originals(&config)?;
    let (queries, aggregating) = usage(&config, &jobs, originals.clone())?;

    let ready = Arc::new(AtomicBool::new(false));
    let api = jobs
        .api(&config, EMBEDDED_NODE, auth, ready.clone())
        .with_usage_queries(queries.clone())
        .with_observer(admin_token.clone())
        .with_delivery(node::delivery(&config, originals))
        .with_credentials(identity.clone());
    let admin = AdminState::new(identity, admin_token)
        .with_wrong_token_burst(config.http.wrong_token_burst)
        .with_usage(queries)
        .with_public_document(resizer_api::openapi::public_document(&node::api_config(
            &config,
            EMBEDDED_NODE,
        )));

    let public_listener = node::bind(&config.listen).await?;
    let admin_listener = node::bind(&config.admin_listen).await?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        %public_addr,
        %admin_addr,
        worker_threads = jobs.threads(),
        data_dir = %config.data_dir.display(),
        "resizer ready"
    );
    node::serve_until_signal(
        vec![
            Served::new("public", public_listener, api.router()),
            Served::new("admin", admin_listener, admin.router()),
        ],
        config.http_limits(),
        ready,
        Duration::from_millis(config.api.drain_timeout_ms),
        &shutdown,
    )
    .await;
    jobs.stop().await;
    aggregating.abort();
    tracing::info!("resizer stopped");
    Ok(())
}

/// Originals in `data_dir/originals`.
fn originals(config: &Config) -> anyhow::Result<Arc<dyn OriginalStore>> {
    let dir = config.data_dir.join("originals");
    let store =
        LocalOriginals::open(&dir).with_context(|| format!("opening originals in {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// Identity: the authoritative store, and the auth cache that follows it in process.
async fn identity(config: &Config) -> anyhow::Result<(Arc<IdentityService>, Arc<AuthCache>)> {
    let store = node::sqlite_store(config)?;
    let identity = Arc::new(IdentityService::new(store.clone()));
    let auth = Arc::new(AuthCache::new());
    auth.catch_up(store.as_ref())
        .await
        .context("loading the auth cache")?;
    identity.subscribe(Arc::new(LocalFollower {
        cache: auth.clone(),
        store,
    }));
    Ok((identity, auth))
}

/// Usage: the node's log → the in-process aggregator → roll-ups and archive,
/// and the stored originals sampled into the same roll-ups; returns what
/// answers usage queries and the task doing both.
fn usage(
    config: &Config,
    jobs: &JobPath,
    originals: Arc<dyn OriginalStore>,
) -> anyhow::Result<(Arc<dyn UsageQueries>, tokio::task::JoinHandle<()>)> {
    let usage_dir = config.data_dir.join("usage");
    let store: Arc<dyn UsageStore> = Arc::new(
        SqliteUsageStore::open(&usage_dir.join("rollup.sqlite")).context("opening the usage store")?,
    );
    let archive = node::usage_archive(config, usage_dir.join("archive"))?;
    let aggregator = Arc::new(Aggregator::new(jobs.usage_log(), store.clone(), archive.clone()));
    let every = Duration::from_millis(config.usage.aggregate_every_ms.max(10));
    let sampling = resizer_usage::storage::run(
        Arc::new(OriginalsTotals(originals)),
        store.clone(),
        Duration::from_millis(config.usage.storage_sample_ms.max(10)),
    );
    let aggregating = tokio::spawn(async move {
        tokio::join!(aggregator.run(every), sampling);
    });
    Ok((Arc::new(LocalUsage { store, archive }), aggregating))
}
