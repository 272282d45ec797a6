//! The distributed roles: `resizer identity` (management plane) and
//! `resizer api` (REST tier with its auth cache fed from the identity service).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use resizer_api::{AdminState, AdminToken};
use resizer_identity::feed::{FeedFollower, HttpChangeSource, load_snapshot_file};
use resizer_identity::store::postgres::PostgresIdentityStore;
use resizer_identity::{AuthCache, IdentityService, IdentityStore};
use tokio::sync::watch;

use crate::config::Config;
use crate::node::{self, JobPath};

/// How often the identity service looks for writes made by another instance sharing its store.
const STORE_POLL: Duration = Duration::from_secs(1);

/// `resizer identity`: the admin API and the change feed over the authoritative store.
pub async fn run_identity(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let cluster_secret = AdminToken::from_secret(config.cluster_secret()?);
    let (store, backend): (Arc<dyn IdentityStore>, &str) = if config.identity.database_url.is_empty() {
        (node::sqlite_store(&config)?, "sqlite")
    } else {
        let store = PostgresIdentityStore::connect(&config.identity.database_url)
            .await
            .context("connecting to PostgreSQL")?;
        (Arc::new(store), "postgres")
    };
    let identity = Arc::new(IdentityService::new(store.clone()));
    let admin_token = crate::admin_token::resolve(&config.data_dir)?;
    let admin = AdminState::new(identity.clone(), admin_token).with_feed(cluster_secret);

    // Writes by another identity instance on the same store wake feed readers too.
    let poller = {
        let (identity, store) = (identity.clone(), store.clone());
        tokio::spawn(async move {
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
        })
    };

    let admin_listener = node::bind(&config.admin_listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(%admin_addr, store = backend, "resizer identity ready");
    node::serve_until_signal(
        vec![(admin_listener, admin.router())],
        ready,
        Duration::from_millis(config.api.drain_timeout_ms),
    )
    .await;
    poller.abort();
    tracing::info!("resizer stopped");
    Ok(())
}

/// `resizer api`: the public REST tier. Authenticates from an auth cache that
/// follows the identity service's feed, starting from a local snapshot file
/// when one exists; resizes with its own in-process workers.
pub async fn run_api(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let node_id = format!("api-{}", &resizer_core::ids::JobId::random().as_str()[4..12]);
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
    )?);
    let (stop_follower, follower_stopped) = watch::channel(false);
    let follower = tokio::spawn(
        FeedFollower {
            cache: auth.clone(),
            source,
            snapshot_path: Some(snapshot_path),
        }
        .run(follower_stopped),
    );

    let jobs = JobPath::start(&config, &node_id);
    let ready = Arc::new(AtomicBool::new(false));
    let api = jobs.api(&config, &node_id, auth, ready.clone());
    let public_listener = node::bind(&config.listen).await?;
    let public_addr = public_listener.local_addr()?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%public_addr, node_id, identity_url = %config.identity.url, "resizer api ready");
    node::serve_until_signal(
        vec![(public_listener, api.router())],
        ready,
        Duration::from_millis(config.api.drain_timeout_ms),
    )
    .await;
    let _ = stop_follower.send(true);
    let _ = follower.await;
    jobs.stop().await;
    tracing::info!("resizer stopped");
    Ok(())
}
