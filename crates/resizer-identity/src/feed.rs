//! Following the identity change log over the network: the HTTP client for
//! the identity service's feed, and the follower task that keeps an API
//! node's [`AuthCache`] current and writes its local snapshot file.
//!
//! The feed is a snapshot plus long-polled increments from a sequence
//! number, so a follower resumes after a disconnect exactly where it stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::cache::{AuthCache, CacheSource};
use crate::error::IdentityError;
use crate::model::{Change, Snapshot};
use crate::store::ChangeSource;

/// Longest pause between attempts while the feed is down. Short, because the
/// replication SLA (1 s) counts from the management plane's return; the cost
/// is at most two cheap failed connects per second per API node.
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Longest a feed request waits for news before answering empty.
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// The feed's routes on the identity service's admin listener, served by
/// `resizer-api::admin` and read by [`HttpChangeSource`]; both carry
/// `Authorization: Bearer <cluster secret>`.
pub mod routes {
    /// The whole auth state: tenants, keys (hashes), and the sequence it is at.
    pub const SNAPSHOT: &str = "/internal/v1/identity/snapshot";
    /// Changes after a sequence number, long-polled (`after`, `limit`, `wait_ms`).
    pub const CHANGES: &str = "/internal/v1/identity/changes";
    /// Signing keys issued (`POST`) and revoked (`DELETE …/{id}`) on behalf of
    /// the tenant whose API key rides in [`crate::remote::TENANT_KEY_HEADER`].
    pub const SIGNING_KEYS: &str = "/internal/v1/identity/signing-keys";
    /// A tenant's API keys listed (`GET`), issued (`POST`) and revoked
    /// (`DELETE …/{id}`) on its own behalf, the same way.
    pub const KEYS: &str = "/internal/v1/identity/keys";
}

/// The body of `GET /internal/v1/identity/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ChangesPage {
    /// Changes after the requested sequence, in order.
    pub changes: Vec<Change>,
    /// The store's latest sequence when it answered. Below the follower's own
    /// sequence it means the store was reset (wiped, restored from an older
    /// backup): the follower's cache describes a store that no longer exists.
    #[serde(default)]
    pub head: Option<u64>,
}

/// The identity service's feed, over HTTP.
pub struct HttpChangeSource {
    base_url: String,
    secret: String,
    client: reqwest::Client,
}

fn unavailable(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Store(format!("identity feed: {e}"))
}

/// A client of the identity service: every call bounded by `timeout`,
/// `ca_file` (PEM) trusted for `https` across machines.
pub(crate) fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, IdentityError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        // The cluster secret goes to the identity service only, never where it points.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(unavailable)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(unavailable)
}

impl HttpChangeSource {
    /// Creates a client for the feed at `base_url` (the identity service's admin listener).
    /// `ca_file` (PEM) is trusted for an `https` feed across machines.
    pub fn new(base_url: &str, secret: &str, ca_file: Option<&Path>) -> Result<Self, IdentityError> {
        let client = client(LONG_POLL + Duration::from_secs(10), ca_file)?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            client,
        })
    }

    /// Returns changes after `seq`, waiting up to `wait` for the first one.
    pub async fn wait_changes(
        &self,
        seq: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<ChangesPage, IdentityError> {
        let url = format!(
            "{}{}?after={seq}&limit={limit}&wait_ms={}",
            self.base_url,
            routes::CHANGES,
            wait.as_millis()
        );
        self.get(&url).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, IdentityError> {
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(unavailable(format!("status {}", response.status())));
        }
        response.json().await.map_err(unavailable)
    }
}

#[async_trait]
impl ChangeSource for HttpChangeSource {
    async fn snapshot(&self) -> Result<Snapshot, IdentityError> {
        self.get(&format!("{}{}", self.base_url, routes::SNAPSHOT)).await
    }

    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, IdentityError> {
        Ok(self.wait_changes(seq, limit, Duration::ZERO).await?.changes)
    }
}

/// Loads a snapshot file written by an earlier run, if there is one.
pub fn load_snapshot_file(cache: &AuthCache, path: &Path) -> Result<bool, IdentityError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(IdentityError::Store(format!("reading {}: {e}", path.display()))),
    };
    let snapshot: Snapshot = serde_json::from_str(&text)
        .map_err(|e| IdentityError::Store(format!("parsing {}: {e}", path.display())))?;
    cache.load(snapshot);
    cache.mark_synced(CacheSource::SnapshotFile);
    Ok(true)
}

/// Writes the cache atomically (temp file, fsync, rename), readable by the owner only.
pub fn save_snapshot_file(cache: &AuthCache, path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let json = serde_json::to_vec(&cache.to_snapshot())?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The new name is durable only once its directory is.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Keeps an [`AuthCache`] current from an [`HttpChangeSource`].
pub struct FeedFollower {
    /// The cache to feed.
    pub cache: Arc<AuthCache>,
    /// The identity service's feed.
    pub source: Arc<HttpChangeSource>,
    /// Where to keep the local snapshot, for restarts while the feed is down.
    pub snapshot_path: Option<PathBuf>,
}

impl FeedFollower {
    /// Follows the feed until `shutdown` is cancelled. Failures back off
    /// exponentially with jitter up to [`MAX_BACKOFF`]; the cache keeps serving.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        let ticker = {
            let cache = self.cache.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    record_age(&cache);
                }
            })
        };
        let _stop_ticker = AbortOnDrop(ticker);
        while !shutdown.is_cancelled() {
            let outcome = tokio::select! {
                r = self.step() => r,
                () = shutdown.cancelled() => return,
            };
            record_age(&self.cache);
            match outcome {
                Ok(changed) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(
                            seq = self.cache.seq(),
                            "identity feed reachable again; auth cache caught up"
                        );
                    }
                    backoff = Duration::from_millis(100);
                    if changed {
                        self.save_snapshot();
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(
                            error = %e,
                            seq = self.cache.seq(),
                            "identity feed unreachable; authenticating from the cached copy"
                        );
                    }
                    let jitter = Duration::from_millis(u64::from(jitter_ms(backoff)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff / 2 + jitter) => {},
                        () = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One round: the first contact loads a snapshot, later ones long-poll for
    /// changes. Returns whether the cache changed.
    async fn step(&self) -> Result<bool, IdentityError> {
        if !self.cache.is_loaded() || self.cache.age().is_none() {
            // First contact in this process: the source's own snapshot, then increments.
            return self.cache.catch_up(self.source.as_ref()).await.map(|_| true);
        }
        let page = self
            .source
            .wait_changes(self.cache.seq(), 1000, LONG_POLL)
            .await?;
        if page.head.is_some_and(|head| head < self.cache.seq()) {
            // Applying the new store's changes on top of the old store's
            // state would keep keys alive that the new store never had.
            metrics::counter!("resizer_auth_cache_resets_total").increment(1);
            tracing::warn!(
                seq = self.cache.seq(),
                store_seq = page.head,
                "the identity store is behind this cache: it was reset; reloading its snapshot"
            );
            self.cache.load(self.source.snapshot().await?);
            self.cache.mark_synced(CacheSource::Feed);
            return Ok(true);
        }
        let applied = self.cache.apply(&page.changes);
        self.cache.mark_synced(CacheSource::Feed);
        Ok(applied > 0)
    }

    fn save_snapshot(&self) {
        if let Some(path) = &self.snapshot_path
            && let Err(e) = save_snapshot_file(&self.cache, path)
        {
            tracing::warn!(error = %e, path = %path.display(), "writing the auth snapshot failed");
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Exports the time since the feed last answered.
fn record_age(cache: &AuthCache) {
    if let Some(age) = cache.age() {
        metrics::gauge!("resizer_auth_cache_age_seconds").set(age.as_secs_f64());
    }
}

/// A random delay in `[0, backoff/2]`, so followers do not retry in lockstep.
fn jitter_ms(backoff: Duration) -> u32 {
    let mut b = [0u8; 4];
    resizer_core::ids::random_bytes(&mut b);
    let half = (backoff.as_millis() / 2).max(1) as u32;
    u32::from_le_bytes(b) % half
}
