//! The one typed configuration of every role.
//!
//! Precedence, lowest first: built-in defaults < the TOML file given with
//! `--config` < `RESIZER_<SECTION>__<FIELD>` environment variables < the
//! contract's flags and variables (`--listen`/`RESIZER_LISTEN`, …).
//! Unknown keys are errors, so a typo never silently means a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use resizer_core::credentials::Redacted;
use serde::{Deserialize, Serialize};

/// Resizer's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public listener (`/v1/*`, health, metrics). Default `127.0.0.1:8080`.
    pub listen: String,
    /// Admin listener (`/admin/v1/*`). Default `127.0.0.1:8081`.
    pub admin_listen: String,
    /// Where the embedded mode keeps everything. Default `./resizer-data`.
    pub data_dir: PathBuf,
    /// Log filter, e.g. `info` or `info,resizer_api=debug`. Default `info`.
    pub log: String,
    /// This process, whatever its role.
    pub node: NodeSection,
    /// Request and image limits.
    pub limits: LimitsSection,
    /// The job queue.
    pub queue: QueueSection,
    /// The workers.
    pub worker: WorkerSection,
    /// The API tier.
    pub api: ApiSection,
    /// The identity service and how API nodes reach it.
    pub identity: IdentitySection,
    /// Secrets shared by the nodes of one cluster.
    pub cluster: ClusterSection,
    /// The local usage log of API nodes.
    pub usage: UsageSection,
    /// Bounds every HTTP listener of every role enforces on its clients.
    pub http: HttpSection,
    /// TLS between roles on different machines.
    pub tls: TlsSection,
    /// Stored originals and variants by URL.
    pub delivery: DeliverySection,
    /// The consoles (`/console/` on both ports).
    pub console: ConsoleSection,
}

/// The consoles (`/console/` on the public and the admin port).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// The nodes the operator console's fleet view asks besides the one
    /// serving it: comma-separated `name=url` pairs, each URL a listener of
    /// that node serving `/readyz` and `/metrics` to the cluster secret
    /// (`deploy/cluster.sh` lists every component for the identity service).
    /// Default empty: the node alone (in `resizer serve`, every role).
    pub fleet: Option<String>,
}

/// Stored originals and variants by URL (`/v1/originals`, `/v1/img`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Bytes of originals one tenant may store (403 `quota_exceeded` above). Default 1 GiB.
    pub max_bytes_per_tenant: u64,
    /// Originals one tenant may store. Default 10 000.
    pub max_originals_per_tenant: u64,
    /// Memory for finished variants on each API node. Default 256 MiB; 0 keeps none.
    pub cache_bytes: u64,
    /// `Cache-Control: max-age` of variants, seconds (a signed URL's `exp` lowers it).
    /// A replaced original is served new at once, but copies already in browsers and
    /// CDNs live this long: upload under a new name to change an image everywhere. Default 86 400.
    pub max_age_secs: u64,
    /// `resizer api`: PostgreSQL URL of the originals' index (names, metadata, quotas), shared
    /// by every API node; the images go to the usage archive's object store (the S3 bucket),
    /// under `originals/`. Unset: the node answers the originals and variant routes with 503.
    pub database_url: Option<String>,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            max_bytes_per_tenant: 1 << 30,
            max_originals_per_tenant: 10_000,
            cache_bytes: 256 * 1024 * 1024,
            max_age_secs: 86_400,
            database_url: None,
        }
    }
}

/// This process, whatever its role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Name in logs, metrics and usage records of a worker, an aggregator or an
    /// API node with in-process workers; unset (the default) means `<role>-<random>`.
    pub name: Option<String>,
}

/// TLS between roles (multi-machine deployments). Listeners between roles (the
/// identity service's admin port with its feed, API nodes' internal port) serve
/// TLS with `cert_file`/`key_file`; clients (workers, API nodes following the
/// feed, every NATS connection) trust `ca_file`. The public port is left to the
/// load balancer in front of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain of this node's listeners between roles. Default none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of that certificate. Default none.
    pub key_file: Option<PathBuf>,
    /// PEM certificate(s) this node trusts for other roles and NATS; set, NATS requires TLS. Default none.
    pub ca_file: Option<PathBuf>,
}

/// Bounds on HTTP clients, the same on every listener (public, admin, internal,
/// health): what one slow, idle or greedy client can hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Open connections per listener; beyond it a new connection is closed at once,
    /// before any byte is read. Default 1,024.
    pub max_connections: usize,
    /// Time to receive a whole request head: from the connection's opening for its first
    /// request, from the head's first byte for later ones. Default 10,000 ms.
    pub header_read_timeout_ms: u64,
    /// A kept-alive connection that sends no byte of a next request for this long is
    /// closed. Default 30,000 ms.
    pub idle_timeout_ms: u64,
    /// Largest request head (request line and headers); 431 above. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Slowest request body accepted, in bytes per second after the first second: a client
    /// that falls below it is cut off with 408 and frees its slot. Default 16 KiB/s.
    /// The whole body must also arrive within `api.body_read_timeout_ms`.
    pub min_body_bytes_per_sec: u64,
    /// Wrong admin tokens one client address may present in a burst; past it, one
    /// a second, and 429 in between (brute-force defence). A missing token is not a
    /// guess. Default 10.
    pub wrong_token_burst: u32,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = resizer_api::listener::ListenerLimits::default();
        Self {
            max_connections: d.max_connections,
            header_read_timeout_ms: d.header_read_timeout.as_millis() as u64,
            idle_timeout_ms: d.idle_timeout.as_millis() as u64,
            max_header_bytes: d.max_header_bytes,
            min_body_bytes_per_sec: d.min_body_bytes_per_sec,
            wrong_token_burst: resizer_api::rate_limit::GuessThrottle::DEFAULT_BURST,
        }
    }
}

/// The local usage log of an API node (`data_dir/usage`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageSection {
    /// Longest time a record written before its response waits for fsync: what an OS
    /// crash (not a process crash) may lose. Default 100 ms.
    pub fsync_interval_ms: u64,
    /// A log segment is closed for shipping after this long. Default 5,000 ms.
    pub segment_max_age_ms: u64,
    /// ...or this many bytes. Default 8 MiB.
    pub segment_max_bytes: u64,
    /// `resizer serve`: how often the in-process aggregator takes closed segments. Default 1,000 ms.
    pub aggregate_every_ms: u64,
    /// `resizer serve` and `resizer aggregator`: how often every tenant's stored originals
    /// are sampled into the roll-ups (each hour keeps its highest sample). Default 300,000 ms.
    pub storage_sample_ms: u64,
    /// Distributed `resizer api`: how often closed segments are shipped to the JetStream
    /// staging stream. Default 1,000 ms.
    pub ship_every_ms: u64,
    /// `resizer aggregator`: PostgreSQL URL of the roll-up store shared by all aggregators.
    /// Required by `resizer aggregator`. Default empty.
    pub database_url: Option<String>,
    /// `resizer aggregator`: the archive's directory (shared by all aggregators);
    /// empty means `data_dir/archive`. Default empty.
    pub archive_dir: Option<String>,
    /// `resizer aggregator`: how long the lease outlives its holder's last renewal
    /// (a standby takes over within about this). Default 6,000 ms.
    pub lease_ttl_ms: u64,
    /// The archive in an S3-compatible bucket instead of `archive_dir`: the endpoint URL
    /// (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:3900` for Garage, …).
    /// Empty (the default) keeps the archive in a local directory.
    pub archive_s3_endpoint: Option<String>,
    /// The archive's bucket (it must exist). Default empty.
    pub archive_s3_bucket: Option<String>,
    /// The bucket's signing region. Default `us-east-1`.
    pub archive_s3_region: String,
    /// Access key id; empty means `AWS_ACCESS_KEY_ID`. Default empty.
    pub archive_s3_access_key_id: Option<String>,
    /// Secret access key; prefer `RESIZER_USAGE__ARCHIVE_S3_SECRET_ACCESS_KEY` or
    /// `AWS_SECRET_ACCESS_KEY` to writing it in a file. Never logged. Default empty.
    pub archive_s3_secret_access_key: Redacted,
    /// Virtual-host-style bucket URLs (`bucket.endpoint-host`) instead of path style. Default false.
    pub archive_s3_virtual_host: bool,
    /// Timeout of one S3 request (a call retries twice). Default 10,000 ms.
    pub archive_s3_timeout_ms: u64,
}

impl Default for UsageSection {
    fn default() -> Self {
        Self {
            fsync_interval_ms: 100,
            segment_max_age_ms: 5000,
            segment_max_bytes: 8 * 1024 * 1024,
            aggregate_every_ms: 1000,
            storage_sample_ms: 300_000,
            ship_every_ms: 1000,
            database_url: None,
            archive_dir: None,
            lease_ttl_ms: 6000,
            archive_s3_endpoint: None,
            archive_s3_bucket: None,
            archive_s3_region: "us-east-1".into(),
            archive_s3_access_key_id: None,
            archive_s3_secret_access_key: Redacted::default(),
            archive_s3_virtual_host: false,
            archive_s3_timeout_ms: 10_000,
        }
    }
}

/// The identity service and how API nodes reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// PostgreSQL URL of the authoritative store (`resizer identity`); empty means
    /// SQLite in the data directory. Default empty.
    pub database_url: Option<String>,
    /// Base URL of the identity service's admin listener, where `resizer api`
    /// follows the change feed. Default `http://127.0.0.1:8081`.
    pub url: String,
}

impl Default for IdentitySection {
    fn default() -> Self {
        Self {
            database_url: None,
            url: "http://127.0.0.1:8081".into(),
        }
    }
}

/// Secrets shared by the nodes of one cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Bearer secret for internal endpoints (the identity feed); prefer
    /// `RESIZER_CLUSTER_SECRET` to writing it in a file. Required by `api` and `identity`.
    pub secret: Redacted,
}

/// Request and image limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body in bytes (413 above). Default 16 MiB.
    pub max_body_bytes: u64,
    /// Largest input in pixels, read from the header before decoding (422 above). Default 50 M.
    pub max_input_pixels: u64,
    /// Largest output side in pixels (400 above). Default 8192.
    pub max_output_side: u32,
    /// Most frames an animated output may carry (422 above; `frames=first`
    /// still gives a still). The frames' pixels together are also held to
    /// `max_input_pixels`. Default 500.
    pub max_frames: u32,
}

/// The job queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// Jobs that may wait; beyond it requests get 503 at once. 0 (the default) means
    /// 32 per imaging thread in process (the memory bound; `max_wait_ms` usually refuses
    /// first) and 1,024 for the whole JetStream queue.
    pub capacity: usize,
    /// In process: a job is refused (503) when the jobs ahead of it would take longer than
    /// this to drain at the measured rate, so queueing never spends the latency budget
    /// (p99 < 500 ms) before refusing, whatever the image sizes. 0 = count bound only.
    /// Default 250 ms, half the budget.
    pub max_wait_ms: u64,
    /// NATS server URLs, comma-separated (`nats://127.0.0.1:4222,...`). Empty (the default)
    /// means the in-process queue; set, `api` publishes to JetStream and `worker` pulls from it.
    pub nats_url: Option<String>,
    /// JetStream streams the queue is spread over, so publishing survives the loss of one
    /// stream's leader. Default 3.
    pub streams: usize,
    /// Replicas per stream: 3 on a three-server cluster, 1 on a single server. Default 1.
    pub replicas: usize,
    /// Where the streams keep jobs: `memory` (the default) or `file`. Replicated either
    /// way; in memory a job costs no disk write or fsync on any server, and jobs are lost
    /// only when a majority of servers die at once, which their clients see as 504s
    /// (ADR 0009). Applies when the streams are created.
    pub storage: QueueStorage,
    /// Time one publish attempt waits for the stream's ack before trying the next stream. Default 250 ms.
    pub publish_timeout_ms: u64,
    /// Time a job may go without an ack or a progress report (workers send one every
    /// 500 ms while resizing) before JetStream redelivers it to another worker. Default 2,000 ms.
    pub ack_wait_ms: u64,
    /// How long a job that reached one of a worker's idle pull requests after that
    /// pull had returned waits for the worker's next pull before it is handed back to
    /// the queue for another worker (ADR 0009). Default 25 ms: a few resizes.
    pub hold_ms: u64,
    /// Consumers of one replica, replaced by the workers when their server fails,
    /// instead of Raft-replicated ones: deliveries and acks are not replicated,
    /// about half of the queue's CPU per job (ADR 0009). The streams then keep
    /// acked jobs until they age out, so waiting jobs are bounded by
    /// `api.max_in_flight` per API node, not by `queue.capacity`; workers need the
    /// right to create and delete the job streams' consumers. Applies when the
    /// streams are created. Default false.
    pub single_replica_consumers: bool,
    /// This role's NATS user (each role its own, with only the permissions it needs;
    /// deploy/cluster.sh shows them). Empty (the default): connect without one.
    pub nats_user: Option<String>,
    /// Its password; prefer `RESIZER_QUEUE__NATS_PASSWORD` to a file. Never logged.
    pub nats_password: Redacted,
}

impl Default for QueueSection {
    fn default() -> Self {
        Self {
            capacity: 0,
            max_wait_ms: 250,
            nats_url: None,
            streams: 3,
            replicas: 1,
            storage: QueueStorage::Memory,
            publish_timeout_ms: 250,
            ack_wait_ms: 2000,
            hold_ms: 25,
            single_replica_consumers: false,
            nats_user: None,
            nats_password: Redacted::default(),
        }
    }
}

/// `queue.storage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStorage {
    /// Servers' memory, replicated.
    #[default]
    Memory,
    /// Servers' disks, replicated.
    File,
}

/// `worker.shrink_on_load`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShrinkOnLoadSetting {
    /// Pillow-SIMD's quality (reducing gap 2).
    #[default]
    Quality,
    /// sharp's default speed (no reducing gap).
    Fast,
}

/// The most jobs a worker may hold ready per imaging thread.
pub const MAX_PREFETCH: usize = 4;

/// The workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// Imaging threads; 0 means one per core. Default 0.
    pub threads: usize,
    /// How far the decoder may shrink before the Lanczos step: `quality` (the default)
    /// leaves the resampler at least a 2x shrink, as Pillow's `thumbnail()` does; `fast`
    /// decodes at the smallest scale that still covers the output, as sharp does by
    /// default: about a fifth more fit-320 thumbnails per core, mean SSIM ~0.003 lower.
    pub shrink_on_load: ShrinkOnLoadSetting,
    /// Jobs a worker holds ready per imaging thread, beyond the one it is resizing, so
    /// a thread that finishes starts the next job at once instead of idling while the
    /// worker acks, pulls and fetches the next input. 0 pulls only for a free thread.
    /// Default 1: on 2 cores the idle gaps cost a fifth of the throughput.
    pub prefetch: usize,
    /// `resizer worker`: the API nodes' internal URLs (comma-separated, as in their
    /// `api.internal_url`) that jobs may name; a job naming another is dropped. Empty
    /// (the default) trusts whatever the queue says: set it wherever others can
    /// publish to the queue.
    pub api_nodes: Option<String>,
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self {
            threads: 0,
            shrink_on_load: ShrinkOnLoadSetting::default(),
            prefetch: 1,
            api_nodes: None,
        }
    }
}

/// The API tier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Time a job may take from publish to result (504 after). Default 10 000 ms.
    pub job_deadline_ms: u64,
    /// Time allowed to receive a request body. Default 30 000 ms.
    pub body_read_timeout_ms: u64,
    /// Bytes of input the staging area may hold (503 above). Default 256 MiB.
    pub staging_max_bytes: u64,
    /// Time allowed to finish in-flight requests after SIGTERM. Default 30 000 ms.
    pub drain_timeout_ms: u64,
    /// `resizer api` only: after SIGTERM, time spent reporting not ready while still
    /// serving, so the load balancer stops sending before the listener closes. Longer
    /// than the balancer's health-check interval × fall count. Default 2,000 ms.
    pub lame_duck_ms: u64,
    /// Resize requests in progress at once; beyond it 503 before the body is read. Default 256.
    pub max_in_flight: usize,
    /// Resize requests one tenant may have in progress on a node, so a flood from one
    /// tenant leaves room for the others; beyond it 429. 0 (the default) means half of the
    /// node's job slots (queue bound + imaging threads): one tenant can never fill the queue.
    pub max_in_flight_per_tenant: usize,
    /// Concurrent identical requests of one tenant (same input bytes and parameters) share
    /// one job. Turn off only to benchmark against services that cannot. Default true.
    pub join_identical: bool,
    /// Internal listener of a distributed API node, where workers fetch staged input and
    /// deliver results (cluster secret required). Default `127.0.0.1:8082`.
    pub internal_listen: String,
    /// The URL workers use to reach `internal_listen`; empty means `http://` + the bound address.
    pub internal_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:8081".into(),
            data_dir: PathBuf::from("./resizer-data"),
            log: "info".into(),
            node: NodeSection::default(),
            limits: LimitsSection::default(),
            queue: QueueSection::default(),
            worker: WorkerSection::default(),
            api: ApiSection::default(),
            identity: IdentitySection::default(),
            cluster: ClusterSection::default(),
            usage: UsageSection::default(),
            http: HttpSection::default(),
            tls: TlsSection::default(),
            delivery: DeliverySection::default(),
            console: ConsoleSection::default(),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_input_pixels: 50_000_000,
            max_output_side: 8192,
            max_frames: resizer_imaging::limits::DEFAULT_MAX_FRAMES,
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            job_deadline_ms: 10_000,
            body_read_timeout_ms: 30_000,
            staging_max_bytes: 256 * 1024 * 1024,
            drain_timeout_ms: 30_000,
            lame_duck_ms: 2_000,
            max_in_flight: 256,
            max_in_flight_per_tenant: 0,
            join_identical: true,
            internal_listen: "127.0.0.1:8082".into(),
            internal_url: None,
        }
    }
}

/// The contract's flags and variables; `None` leaves lower layers in force.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `RESIZER_LISTEN`.
    pub listen: Option<String>,
    /// `--admin-listen` / `RESIZER_ADMIN_LISTEN`.
    pub admin_listen: Option<String>,
    /// `--data-dir` / `RESIZER_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
}

/// The non-empty, trimmed items of a comma-separated setting.
fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Layers `RESIZER_<SECTION>__<FIELD>` variables over `value`, each typed by
/// the field it sets; other variables are not ours.
fn apply_env(value: &mut toml::Value, env: &[(String, String)]) {
    for (name, raw) in env {
        let Some(path) = name.strip_prefix("RESIZER_") else {
            continue;
        };
        let Some((section, field)) = path.split_once("__") else {
            continue;
        };
        let (section, field) = (section.to_ascii_lowercase(), field.to_ascii_lowercase());
        let parsed = env_value(value.get(&section).and_then(|t| t.get(&field)), raw);
        let mut patch = toml::map::Map::new();
        let mut inner = toml::map::Map::new();
        inner.insert(field, parsed);
        patch.insert(section, toml::Value::Table(inner));
        merge(value, toml::Value::Table(patch));
    }
}

/// Types an environment value by the field it sets, not by its shape: a
/// secret or name made of digits stays a string; a malformed number or flag is
/// left a string so deserialization names the field in its error.
fn env_value(field: Option<&toml::Value>, raw: &str) -> toml::Value {
    let text = || toml::Value::String(raw.to_string());
    match field {
        Some(toml::Value::String(_)) => text(),
        Some(toml::Value::Integer(_)) => raw.parse().map(toml::Value::Integer).unwrap_or_else(|_| text()),
        Some(toml::Value::Boolean(_)) => raw.parse().map(toml::Value::Boolean).unwrap_or_else(|_| text()),
        // Unknown field: refused by `deny_unknown_fields` whatever its type.
        _ => text(),
    }
}

impl Config {
    /// The bounds every listener enforces.
    pub fn http_limits(&self) -> resizer_api::listener::ListenerLimits {
        use std::time::Duration;
        resizer_api::listener::ListenerLimits {
            max_connections: self.http.max_connections.max(1),
            header_read_timeout: Duration::from_millis(self.http.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(self.http.idle_timeout_ms.max(1)),
            max_header_bytes: self.http.max_header_bytes.max(1024),
            body_timeout: Duration::from_millis(self.api.body_read_timeout_ms.max(1)),
            min_body_bytes_per_sec: self.http.min_body_bytes_per_sec,
        }
    }

    /// Loads the configuration from all layers (defaults, `file_opt`,
    /// `RESIZER_<SECTION>__<FIELD>` variables of `env`, `overrides`, and the
    /// secrets' own variables) and validates it. `env` is the process
    /// environment in `main`, a list in tests.
    pub fn load(
        file_opt: Option<&Path>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let Some(file) = file_opt else {
            return Self::from_layers(None, overrides, env);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading config file {}", file.display()))?;
        Self::from_layers(Some(&text), overrides, env)
            .with_context(|| format!("config file {}", file.display()))
    }

    /// [`Config::load`] with the file's text already read: what the config
    /// fuzz target drives.
    pub fn from_layers(
        file_text: Option<&str>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let var = |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let mut value = toml::Value::try_from(Config::default())?;
        if let Some(text) = file_text {
            let from_file: toml::Value = toml::from_str(text).context("parsing the config file")?;
            merge(&mut value, from_file);
        }
        apply_env(&mut value, &env);
        let mut config: Config = value
            .try_into()
            .context("invalid configuration (file or RESIZER_<SECTION>__<FIELD> variables)")?;
        if let Some(v) = &overrides.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &overrides.admin_listen {
            config.admin_listen = v.clone();
        }
        if let Some(v) = &overrides.data_dir {
            config.data_dir = v.clone();
        }
        config.secrets_from(var);
        config.blank_is_unset();
        config.validate()?;
        Ok(config)
    }

    /// Secrets from their own variables (`var` answers set, non-empty ones):
    /// the cluster secret, and the S3 archive's credentials where the AWS
    /// tools keep them when the configuration leaves them unset.
    fn secrets_from(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(secret) = var("RESIZER_CLUSTER_SECRET") {
            self.cluster.secret = Redacted(secret);
        }
        if self.usage.archive_s3_access_key_id.is_none() {
            self.usage.archive_s3_access_key_id = var("AWS_ACCESS_KEY_ID");
        }
        if self.usage.archive_s3_secret_access_key.expose().is_empty()
            && let Some(secret) = var("AWS_SECRET_ACCESS_KEY")
        {
            self.usage.archive_s3_secret_access_key = Redacted(secret);
        }
    }

    /// An optional value set to nothing (`RESIZER_QUEUE__NATS_URL=`) is unset.
    fn blank_is_unset(&mut self) {
        for v in [
            &mut self.node.name,
            &mut self.identity.database_url,
            &mut self.queue.nats_url,
            &mut self.queue.nats_user,
            &mut self.worker.api_nodes,
            &mut self.api.internal_url,
            &mut self.usage.database_url,
            &mut self.usage.archive_dir,
            &mut self.usage.archive_s3_endpoint,
            &mut self.usage.archive_s3_bucket,
            &mut self.usage.archive_s3_access_key_id,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
    }

    /// This process's name in logs, metrics and usage records (`node.name`),
    /// or `<role>-<random>` when unset.
    pub fn node_name(&self, role: &str) -> String {
        self.node
            .name
            .clone()
            .unwrap_or_else(|| format!("{role}-{}", &resizer_core::ids::JobId::random().as_str()[4..12]))
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            bail!("`tls.cert_file` and `tls.key_file` go together");
        }
        self.listen
            .parse::<SocketAddr>()
            .with_context(|| format!("`listen` is not an address: {}", self.listen))?;
        self.admin_listen
            .parse::<SocketAddr>()
            .with_context(|| format!("`admin_listen` is not an address: {}", self.admin_listen))?;
        if self.limits.max_body_bytes == 0
            || self.limits.max_input_pixels == 0
            || self.limits.max_output_side == 0
            || self.limits.max_frames == 0
        {
            bail!("limits must be positive");
        }
        self.api.internal_listen.parse::<SocketAddr>().with_context(|| {
            format!(
                "`api.internal_listen` is not an address: {}",
                self.api.internal_listen
            )
        })?;
        if self.queue.streams == 0 || self.queue.replicas == 0 || self.queue.publish_timeout_ms == 0 {
            bail!("`queue.streams`, `queue.replicas` and `queue.publish_timeout_ms` must be positive");
        }
        // A held job's ack wait is already running: a hold near it would let
        // JetStream redeliver the job to another worker while this one starts it.
        if self.queue.hold_ms.saturating_mul(2) >= self.queue.ack_wait_ms {
            bail!(
                "`queue.hold_ms` ({}) must be less than half of `queue.ack_wait_ms` ({})",
                self.queue.hold_ms,
                self.queue.ack_wait_ms
            );
        }
        if self.api.max_in_flight == 0 {
            bail!("`api.max_in_flight` must be positive");
        }
        // Each ready job holds its input in memory (fetched, up to the body limit) and
        // waits a whole resize per job ahead of it: a few per thread is all that helps.
        if self.worker.prefetch > MAX_PREFETCH {
            bail!("`worker.prefetch` must be at most {MAX_PREFETCH}");
        }

        if self.api.job_deadline_ms == 0 || self.api.staging_max_bytes == 0 {
            bail!("`api.job_deadline_ms` and `api.staging_max_bytes` must be positive");
        }
        Ok(())
    }

    /// Returns the cluster secret, or an error naming how to set it.
    pub fn cluster_secret(&self) -> anyhow::Result<&str> {
        if self.cluster.secret.expose().len() < 16 {
            bail!("a cluster secret of at least 16 characters is required: set RESIZER_CLUSTER_SECRET");
        }
        Ok(self.cluster.secret.expose())
    }

    /// The other nodes of the fleet view (`console.fleet`), as (name, URL).
    pub fn console_fleet(&self) -> anyhow::Result<Vec<(String, String)>> {
        comma_list(self.console.fleet.as_deref())
            .into_iter()
            .map(|pair| {
                let (name, url) = pair
                    .split_once('=')
                    .filter(|(n, u)| !n.is_empty() && u.starts_with("http"))
                    .ok_or_else(|| {
                        anyhow::anyhow!("console.fleet: `{pair}` is not name=http(s)://host:port")
                    })?;
                Ok((name.to_string(), url.to_string()))
            })
            .collect()
    }

    /// The API node URLs a worker may talk to (`worker.api_nodes`); empty means any.
    pub fn worker_api_nodes(&self) -> Vec<String> {
        comma_list(self.worker.api_nodes.as_deref())
    }

    /// How this role reaches NATS: its user (`queue.nats_user`) and TLS trust (`tls.ca_file`).
    pub fn nats_access(&self) -> resizer_core::credentials::NatsAccess {
        resizer_core::credentials::NatsAccess {
            login: self
                .queue
                .nats_user
                .clone()
                .map(|user| resizer_core::credentials::Login {
                    user,
                    password: self.queue.nats_password.clone(),
                }),
            ca_file: self.tls.ca_file.clone(),
        }
    }

    /// Returns whether the job queue is NATS JetStream rather than in process.
    pub fn distributed_queue(&self) -> bool {
        self.queue.nats_url.is_some()
    }

    /// Returns the NATS server URLs.
    pub fn nats_servers(&self) -> Vec<String> {
        comma_list(self.queue.nats_url.as_deref())
    }

    /// Returns the queue bound: as configured, or the mode's default.
    pub fn queue_capacity(&self) -> usize {
        if self.queue.capacity == 0 && self.distributed_queue() {
            1024
        } else if self.queue.capacity == 0 {
            32 * self.worker_threads()
        } else {
            self.queue.capacity
        }
    }

    /// Returns the per-tenant in-flight cap: as configured, or half the node's job slots
    /// (and at most half its in-flight bound).
    pub fn tenant_in_flight_cap(&self) -> usize {
        if self.api.max_in_flight_per_tenant == 0 {
            ((self.queue_capacity() + self.worker_threads()) / 2)
                .min(self.api.max_in_flight / 2)
                .max(1)
        } else {
            self.api.max_in_flight_per_tenant
        }
    }

    /// Returns the most jobs one worker holds at a time: one running and
    /// `worker.prefetch` ready per imaging thread.
    pub fn worker_jobs_held(&self) -> usize {
        self.worker_threads() * (1 + self.worker.prefetch)
    }

    /// Returns the number of imaging threads to run.
    pub fn worker_threads(&self) -> usize {
        if self.worker.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.worker.threads
        }
    }
}

fn merge(base: &mut toml::Value, patch: toml::Value) {
    match (base, patch) {
        (toml::Value::Table(base), toml::Value::Table(patch)) => {
            for (k, v) in patch {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_environment_values_take_their_fields_type() {
        let value = toml::Value::try_from(Config::default()).unwrap();
        let field = |section: &str, name: &str| value.get(section).and_then(|t| t.get(name));
        // An all-digit secret is still a string.
        assert_eq!(
            env_value(field("queue", "nats_password"), "0123456789"),
            toml::Value::String("0123456789".into())
        );
        assert_eq!(env_value(field("queue", "streams"), "5"), toml::Value::Integer(5));
        assert_eq!(
            env_value(field("api", "join_identical"), "false"),
            toml::Value::Boolean(false)
        );
        // Malformed stays text, so loading names the field instead of guessing.
        assert_eq!(
            env_value(field("queue", "streams"), "five"),
            toml::Value::String("five".into())
        );
    }

    #[test]
    fn test_config_defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn test_a_hold_must_stay_well_inside_the_ack_wait() {
        let mut c = Config::default();
        c.queue.hold_ms = 1000;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("queue.hold_ms"), "{err}");
        c.queue.hold_ms = 999;
        c.validate().unwrap();
        c.queue.ack_wait_ms = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn test_default_bounds_follow_the_worker_count() {
        let mut c = Config::default();
        c.worker.threads = 2;
        assert_eq!(c.queue_capacity(), 64);
        // One tenant may hold at most half of the 66 job slots.
        assert_eq!(c.tenant_in_flight_cap(), 33);
        c.api.max_in_flight_per_tenant = 3;
        assert_eq!(c.tenant_in_flight_cap(), 3);
        // One running and one ready per thread by default.
        assert_eq!(c.worker_jobs_held(), 4);
        c.worker.prefetch = 0;
        assert_eq!(c.worker_jobs_held(), 2);
        c.worker.prefetch = MAX_PREFETCH + 1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn test_config_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resizer.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_output_side = 4000\n[queue]\ncapacity = 7\n[worker]\nshrink_on_load = \"fast\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default(), Vec::new()).unwrap();
        assert_eq!(c.worker.shrink_on_load, ShrinkOnLoadSetting::Fast);
        assert_eq!(
            Config::default().worker.shrink_on_load,
            ShrinkOnLoadSetting::Quality
        );
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.limits.max_output_side, 4000);
        assert_eq!(c.limits.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(c.queue.capacity, 7);
        let o = Overrides {
            listen: Some("127.0.0.1:9999".into()),
            ..Overrides::default()
        };
        assert_eq!(
            Config::load(Some(&file), &o, Vec::new()).unwrap().listen,
            "127.0.0.1:9999"
        );
    }

    #[test]
    fn test_queue_storage_is_memory_unless_files_are_asked_for() {
        assert_eq!(Config::default().queue.storage, QueueStorage::Memory);
        let c: Config = toml::from_str("[queue]\nstorage = \"file\"\n").unwrap();
        assert_eq!(c.queue.storage, QueueStorage::File);
        assert!(toml::from_str::<Config>("[queue]\nstorage = \"tape\"\n").is_err());
    }

    #[test]
    fn test_config_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resizer.toml");
        std::fs::write(&file, "[limits]\nmax_body = 5\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default(), Vec::new()).is_err());
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn test_the_environment_layer_types_values_by_their_field() {
        let c = Config::load(
            None,
            &Overrides::default(),
            env(&[
                ("RESIZER_QUEUE__NATS_PASSWORD", "0123456789"),
                ("RESIZER_QUEUE__NATS_USER", "4242"),
                ("RESIZER_QUEUE__NATS_URL", "nats://127.0.0.1:4222"),
                ("RESIZER_QUEUE__STREAMS", "5"),
                ("RESIZER_API__JOIN_IDENTICAL", "false"),
                ("RESIZER_NODE__NAME", "007"),
                ("RESIZER_CLUSTER_SECRET", "12345678901234567890"),
                ("AWS_ACCESS_KEY_ID", "GK0001"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        // All-digit secrets and names load as strings, numbers and flags as themselves.
        assert_eq!(c.queue.nats_password.expose(), "0123456789");
        assert_eq!(c.queue.nats_user.as_deref(), Some("4242"));
        assert_eq!(c.node.name.as_deref(), Some("007"));
        assert_eq!(c.queue.streams, 5);
        assert!(!c.api.join_identical);
        assert!(c.distributed_queue());
        assert_eq!(c.cluster_secret().unwrap(), "12345678901234567890");
        assert_eq!(c.usage.archive_s3_access_key_id.as_deref(), Some("GK0001"));
        // Secrets never show in a logged config.
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("0123456789") && !shown.contains("12345678901234567890"),
            "{shown}"
        );
    }

    #[test]
    fn test_the_environment_layer_refuses_what_the_file_would() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, &Overrides::default(), env(pairs));
        assert!(load(&[("RESIZER_QUEUE__STREAMS", "five")]).is_err());
        assert!(load(&[("RESIZER_QUEUE__NO_SUCH_FIELD", "1")]).is_err());
        assert!(load(&[("RESIZER_NOSECTION__X", "1")]).is_err());
        // Set to nothing is unset.
        let c = load(&[("RESIZER_QUEUE__NATS_URL", "")]).unwrap();
        assert!(!c.distributed_queue());
    }
}
