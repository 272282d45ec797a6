//! The distributed queue: NATS JetStream work-queue streams, replicated by Raft.
//!
//! The queue is spread over several streams (`<prefix>_0..N`), each with its
//! own Raft group and, in a cluster, usually its own leader. A publish goes to
//! the next stream in turn and, when that stream has no leader (its leader just
//! died and the election takes seconds) or does not answer in time, to the
//! next one: publishing stays available while any stream has a leader. FIFO
//! then holds per stream, not across streams, which is all a work queue of
//! independent jobs needs. See docs/adr/0003-queue-over-several-streams.md.
//!
//! Each stream has one durable pull consumer shared by all workers, with
//! explicit ack: a worker that dies mid-job is covered by redelivery after
//! the ack wait. Streams are bounded (`max_msgs`, discard new), so a full
//! queue is refused at once.
//!
//! With [`JetStreamConfig::single_replica_consumers`] the consumer has one
//! replica and the workers replace it when it fails (`single_replica`); the
//! streams then keep acked jobs until they age out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::handoff::{Joined, Outcome, Taker, Takers};
use crate::queue::{Acker, Delivery, JobQueueBackend, QueueError, QueueItem};
use crate::single_replica::Slot;

/// The API error code JetStream answers when a bounded stream refuses a message.
const STREAM_FULL_CODES: [u64; 2] = [10077, 10078];

/// The oldest a job can be: streams discard older messages. It has long passed
/// any deadline; a worker that computes an older age from the job's timestamps is
/// looking at a publisher's clock that disagrees with its own.
pub const MAX_JOB_AGE: Duration = Duration::from_secs(120);

/// Settings of the JetStream queue.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// NATS server URLs; the client fails over between them.
    pub servers: Vec<String>,
    /// Stream name prefix; streams are `<prefix>_0..streams`.
    pub stream_prefix: String,
    /// Number of streams the queue is spread over.
    pub streams: usize,
    /// Replicas per stream (3 in a cluster, 1 on a single server).
    pub replicas: usize,
    /// Jobs (and their Raft logs) kept in the servers' memory, not on disk: a job
    /// lives seconds and its loss is a 504, so it need not pay for a disk write and
    /// an fsync on three servers. Replication is unchanged; a stream loses its jobs
    /// only when a majority of its servers die at once. Applies when streams are created.
    pub in_memory: bool,
    /// Jobs the whole queue may hold; split evenly over the streams.
    pub max_jobs: u64,
    /// Limits-retention streams, each with an in-memory consumer of a single
    /// replica that the consuming processes replace when it fails
    /// ([`crate::single_replica`]), so deliveries and acks are not replicated
    /// (about half of the servers' CPU per job, ADR 0009). The stream then
    /// does not bound waiting jobs; the API nodes' in-flight bound does.
    /// Applies when streams are created.
    pub single_replica_consumers: bool,
    /// For measurement only: limits-retention streams with their replicated
    /// consumers, so what deleting acked jobs costs can be read off on its own.
    pub limits_retention: bool,
    /// Time one publish attempt waits for the stream's ack.
    pub publish_timeout: Duration,
    /// Total time a publish may spend trying streams before answering unavailable.
    pub publish_budget: Duration,
    /// Time a delivered job may stay unacked before another worker gets it.
    pub ack_wait: Duration,
    /// How long a stream that failed is skipped before it is tried again.
    pub skip_for: Duration,
    /// How long a job brought by a request whose pull already returned waits for
    /// another pull of this process before it is handed back to the queue.
    pub hold_for: Duration,
    /// Time allowed to connect and to create the streams at start.
    pub connect_timeout: Duration,
    /// This role's NATS user and TLS trust.
    pub access: resizer_core::credentials::NatsAccess,
}

/// Connect options carrying a role's NATS user and, with a CA, required TLS;
/// every NATS connection of every role starts from these.
pub fn nats_options(access: &resizer_core::credentials::NatsAccess) -> async_nats::ConnectOptions {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(l) = &access.login {
        options = options.user_and_password(l.user.clone(), l.password.expose().to_string());
    }
    if let Some(ca) = &access.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    options
}

impl JetStreamConfig {
    /// Defaults for `servers`: 3 streams, single replica, 1,024 jobs.
    pub fn new(servers: Vec<String>) -> Self {
        Self {
            servers,
            stream_prefix: "RESIZER_JOBS".into(),
            streams: 3,
            replicas: 1,
            in_memory: true,
            max_jobs: 1024,
            single_replica_consumers: false,
            limits_retention: false,
            publish_timeout: Duration::from_millis(250),
            publish_budget: Duration::from_millis(1500),
            ack_wait: Duration::from_secs(2),
            skip_for: Duration::from_millis(1000),
            hold_for: Duration::from_millis(25),
            connect_timeout: Duration::from_secs(30),
            access: Default::default(),
        }
    }

    fn per_stream_jobs(&self) -> i64 {
        let streams = self.streams.max(1) as u64;
        i64::try_from(self.max_jobs.div_ceil(streams).max(1)).unwrap_or(i64::MAX)
    }
}

/// One stream of the queue and the client's view of its health.
struct Lane {
    name: String,
    subject: String,
    /// Present on consuming clients.
    consumer: Option<LaneConsumer>,
    /// Milliseconds since `epoch` before which publishes skip this lane.
    skip_publish_until: AtomicU64,
    /// Same, for pulls.
    skip_pull_until: AtomicU64,
    /// Idle pull requests of this process open on this stream now, whether their
    /// pull still waits or already returned (see `handoff`).
    waiters: Arc<AtomicUsize>,
}

/// The consumer a lane pulls from.
enum LaneConsumer {
    /// Replicated: NATS moves it with its Raft group.
    Replicated(Arc<PullConsumer>),
    /// Single replica: replaced by the workers when it fails.
    Single(Arc<Slot>),
}

impl LaneConsumer {
    /// Shared, not copied: a consumer handle is over a kilobyte and every pull takes one.
    fn get(&self) -> Arc<PullConsumer> {
        match self {
            Self::Replicated(c) => c.clone(),
            Self::Single(slot) => slot.consumer(),
        }
    }
}

/// The JetStream queue client of one process.
pub struct JetStreamQueue {
    config: JetStreamConfig,
    /// One connection per server, each preferring a different one, so a stalled
    /// server (paused, partitioned) stalls only the attempts that go through it.
    contexts: Vec<jetstream::Context>,
    lanes: Vec<Lane>,
    next_publish: AtomicUsize,
    next_pull: AtomicUsize,
    /// Streams whose leaders were misplaced at the last balancing round.
    misplaced: std::sync::Mutex<Vec<String>>,
    /// Idle pull requests still open after their pull returned, and jobs they
    /// brought that are being passed on; see [`JetStreamQueue::quiesce`].
    open_requests: Arc<AtomicUsize>,
    /// This process's pulls waiting now, for what those requests bring.
    takers: Arc<Takers<jetstream::Message>>,
    /// Held while an idle pull chooses its streams and counts itself on them.
    claim: std::sync::Mutex<()>,
    /// Where this process starts looking for the least-waited stream: random, so
    /// processes with fewer idle slots than streams do not all leave the same one uncovered.
    wait_offset: usize,
    epoch: Instant,
}

/// The consumer shared by all workers of every stream.
const CONSUMER: &str = "workers";

/// Counts one JetStream operation of this client: the cost of a job in broker
/// round trips is read from these (bench/cluster-cost.sh).
fn op(name: &'static str) {
    metrics::counter!("resizer_queue_operations_total", "op" => name).increment(1);
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// Returns whether a publish error means "the stream is full".
fn is_full(e: &async_nats::jetstream::context::PublishError) -> bool {
    if e.kind() != PublishErrorKind::Other {
        return false;
    }
    let source = std::error::Error::source(e);
    source
        .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|api| STREAM_FULL_CODES.contains(&api.error_code().0))
}

/// One connection per server, each preferring a different one, so a stalled
/// server stalls only the attempts that go through it.
async fn connect_each(config: &JetStreamConfig) -> Result<Vec<jetstream::Context>, QueueError> {
    let mut contexts = Vec::new();
    for c in 0..config.servers.len().max(1) {
        let mut servers = config.servers.clone();
        let len = servers.len().max(1);
        servers.rotate_left(c % len);
        let client = nats_options(&config.access)
            .connection_timeout(Duration::from_secs(1))
            .request_timeout(Some(Duration::from_secs(2)))
            // A server that stops answering (paused, partitioned) is left after
            // two missed pings, not the default two minutes.
            .ping_interval(Duration::from_secs(1))
            .retain_servers_order()
            .retry_on_initial_connect()
            .name("resizer")
            .connect(servers)
            .await
            .map_err(unavailable)?;
        contexts.push(jetstream::new(client));
    }
    Ok(contexts)
}

/// A job stream: a bounded work queue (full refuses at once), old jobs discarded.
fn job_stream_config(config: &JetStreamConfig, name: &str, subject: &str) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        retention: RetentionPolicy::WorkQueue,
        discard: DiscardPolicy::New,
        max_messages: config.per_stream_jobs(),
        // Descriptors are a few hundred bytes; this only guards against misuse.
        max_bytes: config.per_stream_jobs().saturating_mul(4096),
        max_age: MAX_JOB_AGE,
        storage: if config.in_memory {
            StorageType::Memory
        } else {
            StorageType::File
        },
        num_replicas: config.replicas.max(1),
        duplicate_window: Duration::from_secs(60),
        ..Default::default()
    }
}

/// [`JetStreamConfig::single_replica_consumers`]'s stream: acked jobs stay (a work
/// queue refuses a consumer of fewer replicas than itself) and age out, the oldest
/// dropped first, bounded for the servers' memory.
fn limits_stream_config(config: stream::Config) -> stream::Config {
    stream::Config {
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_messages: 20_000,
        max_bytes: 20_000 * 2048,
        ..config
    }
}

/// Creates stream `i` if missing and, when `consume`, its shared consumer; the
/// lane's consumer lives on the lane's own connection (`contexts[i % n]`).
async fn open_lane(
    config: &JetStreamConfig,
    i: usize,
    contexts: &[jetstream::Context],
    consume: bool,
    deadline: Instant,
) -> Result<Lane, QueueError> {
    let name = format!("{}_{i}", config.stream_prefix);
    let subject = format!(
        "{}.{i}",
        config.stream_prefix.to_ascii_lowercase().replace('_', ".")
    );
    let mut stream_config = job_stream_config(config, &name, &subject);
    if config.single_replica_consumers || config.limits_retention {
        stream_config = limits_stream_config(stream_config);
    }
    retry_until(deadline, || {
        contexts[0].get_or_create_stream(stream_config.clone())
    })
    .await?;
    let consumer = if consume {
        Some(open_consumer(config, &name, i, contexts, deadline).await?)
    } else {
        None
    };
    Ok(Lane {
        name,
        subject,
        consumer,
        skip_publish_until: AtomicU64::new(0),
        skip_pull_until: AtomicU64::new(0),
        waiters: Arc::new(AtomicUsize::new(0)),
    })
}

/// The lane's consumer: the replicated one, or the newest single-replica one,
/// watched from now on.
async fn open_consumer(
    config: &JetStreamConfig,
    name: &str,
    i: usize,
    contexts: &[jetstream::Context],
    deadline: Instant,
) -> Result<LaneConsumer, QueueError> {
    let single = config.single_replica_consumers;
    let template = pull::Config {
        durable_name: Some(CONSUMER.into()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        // No delivery limit: extras handed back by idle pulls (nak) count as
        // deliveries, and a job that kills every worker it reaches is retried
        // only until its deadline, after which workers drop it unprocessed.
        max_ack_pending: 100_000,
        num_replicas: usize::from(single),
        memory_storage: single,
        ..Default::default()
    };
    let lane_js = &contexts[i % contexts.len()];
    if single {
        // The lane's own connection first, then the others, for mending.
        let mut order = contexts.to_vec();
        order.rotate_left(i % contexts.len());
        let slot = retry_until(deadline, || {
            Slot::open(name.to_string(), order.clone(), template.clone())
        })
        .await?;
        slot.watch();
        return Ok(LaneConsumer::Single(slot));
    }
    let stream = retry_until(deadline, || lane_js.get_stream(name)).await?;
    let consumer = retry_until(deadline, || {
        stream.get_or_create_consumer(CONSUMER, template.clone())
    })
    .await?;
    Ok(LaneConsumer::Replicated(Arc::new(consumer)))
}

impl JetStreamQueue {
    /// Connects, creates the streams if missing and, when `consume`, their consumers.
    /// Retries until `connect_timeout`, so roles may start before the cluster is ready.
    pub async fn connect(config: JetStreamConfig, consume: bool) -> Result<Self, QueueError> {
        let deadline = Instant::now() + config.connect_timeout;
        let contexts = connect_each(&config).await?;
        let mut lanes = Vec::with_capacity(config.streams);
        for i in 0..config.streams.max(1) {
            lanes.push(open_lane(&config, i, &contexts, consume, deadline).await?);
        }
        let open_requests = Arc::new(AtomicUsize::new(0));
        Ok(Self {
            config,
            contexts,
            lanes,
            next_publish: AtomicUsize::new(0),
            next_pull: AtomicUsize::new(0),
            open_requests: open_requests.clone(),
            takers: Arc::new(Takers::new(nak_later(open_requests.clone()))),
            claim: std::sync::Mutex::new(()),
            wait_offset: {
                let mut b = [0u8; 1];
                resizer_core::ids::random_bytes(&mut b);
                usize::from(b[0])
            },
            misplaced: std::sync::Mutex::new(Vec::new()),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn skip(&self, flag: &AtomicU64) {
        flag.store(
            self.now_ms() + self.config.skip_for.as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    fn skipped(&self, flag: &AtomicU64) -> bool {
        flag.load(Ordering::Relaxed) > self.now_ms()
    }

    /// Waits (at most `limit`) until no idle pull request is still open, so a
    /// stopping worker hands back a job that reaches it late instead of taking it
    /// down with the process (which would delay the job by the ack wait).
    pub async fn quiesce(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.open_requests.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Spreads the streams' leaders over the servers (stream `i` on the `i`-th server
    /// by name) and puts each consumer's leader with its stream's, so losing one
    /// server stalls publishing and consuming on one stream only, and the others take
    /// its share. Asks for a leader step-down where that is not so; returns how many
    /// it asked for. A no-op on a single server.
    ///
    /// A stream is moved only when it was found misplaced at the previous round too,
    /// and only when every replica is current: a server that just rejoined catches up
    /// first, and an election is never added to a cluster that is still settling.
    pub async fn balance_leaders(&self) -> Result<usize, QueueError> {
        let previously = std::mem::take(&mut *self.misplaced.lock().unwrap_or_else(|e| e.into_inner()));
        let mut misplaced = Vec::new();
        let mut moves = 0;
        for (i, lane) in self.lanes.iter().enumerate() {
            let stream = self.contexts[0]
                .get_stream(&lane.name)
                .await
                .map_err(unavailable)?;
            let info = stream.get_info().await.map_err(unavailable)?;
            let Some(cluster) = info.cluster else { continue };
            let Some(leader) = cluster.leader else { continue };
            if cluster.replicas.iter().any(|p| p.offline || !p.current) {
                // Moving a leader onto a lagging or lost peer would only add an election.
                continue;
            }
            let mut peers: Vec<String> = cluster.replicas.iter().map(|p| p.name.clone()).collect();
            peers.push(leader.clone());
            peers.sort();
            peers.dedup();
            if peers.len() < 2 {
                continue;
            }
            let target = &peers[i % peers.len()];
            // No consumer yet: no worker has connected; only the stream is placed.
            let consumer_leader = match stream.consumer_info(CONSUMER).await {
                Ok(info) => info.cluster.and_then(|c| c.leader),
                Err(_) => None,
            };
            let stream_misplaced = &leader != target;
            let consumer_misplaced = consumer_leader.as_ref().is_some_and(|l| l != target);
            if !stream_misplaced && !consumer_misplaced {
                continue;
            }
            misplaced.push(lane.name.clone());
            if !previously.contains(&lane.name) {
                continue;
            }
            let preferred = serde_json::json!({ "placement": { "preferred": target } });
            let stream_subject = format!("STREAM.LEADER.STEPDOWN.{}", lane.name);
            if stream_misplaced && self.step_down(stream_subject, &preferred).await {
                tracing::info!(stream = %lane.name, from = %leader, to = %target, "moved the stream leader");
                moves += 1;
            }
            if consumer_misplaced {
                let subject = format!("CONSUMER.LEADER.STEPDOWN.{}.{CONSUMER}", lane.name);
                if self.step_down(subject, &preferred).await {
                    tracing::info!(stream = %lane.name, to = %target, "moved the consumer leader to its stream's");
                    moves += 1;
                }
            }
        }
        *self.misplaced.lock().unwrap_or_else(|e| e.into_inner()) = misplaced;
        Ok(moves)
    }

    /// Asks a Raft group's leader to step down in favour of a preferred server.
    async fn step_down(&self, subject: String, preferred: &serde_json::Value) -> bool {
        match self.contexts[0]
            .request::<_, _, serde_json::Value>(subject, preferred)
            .await
        {
            Ok(v) if v["success"] == serde_json::Value::Bool(true) => true,
            Ok(v) => {
                tracing::debug!(response = %v, "leader step-down refused");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "leader step-down failed");
                false
            }
        }
    }

    async fn publish_once(
        &self,
        js: &jetstream::Context,
        lane: &Lane,
        id: &str,
        payload: &bytes::Bytes,
    ) -> Result<(), Attempt> {
        let message = PublishMessage::build().payload(payload.clone()).message_id(id);
        let attempt = async {
            let ack = js.send_publish(lane.subject.clone(), message).await?;
            ack.await
        };
        let outcome = tokio::time::timeout(self.config.publish_timeout, attempt).await;
        op(if matches!(outcome, Ok(Ok(_))) {
            "publish"
        } else {
            "publish_failed"
        });
        match outcome {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(e)) if is_full(&e) => Err(Attempt::Full),
            Ok(Err(e)) => Err(Attempt::Failed(e.to_string())),
            Err(_) => Err(Attempt::Failed("no ack in time".into())),
        }
    }

    /// Waits up to `max_wait` for one message from any stream; see [`JobQueueBackend::pull`].
    async fn pull_any(&self, max_wait: Duration) -> Result<Option<jetstream::Message>, QueueError> {
        let n = self.lanes.len();
        let start = self.next_pull.fetch_add(1, Ordering::Relaxed);
        let usable = |lane: &&Lane| lane.consumer.is_some() && !self.skipped(&lane.skip_pull_until);
        if !self.lanes.iter().any(|lane| usable(&lane)) {
            tokio::time::sleep(max_wait.min(Duration::from_millis(200))).await;
            return Ok(None);
        }
        // A job held for us (`handoff`), then the head of the first stream that
        // has one, without waiting.
        if let Some(message) = self.takers.take_held() {
            return Ok(Some(message));
        }
        if let Some(message) = self.take_ready(start).await {
            return Ok(Some(message));
        }
        let taker = match self.takers.join() {
            Joined::Held(message) => return Ok(Some(message)),
            Joined::InLine(taker) => taker,
        };
        // Idle: streams none of our requests waits on get a request each from this
        // pull; once every stream has one, further pulls wait on one stream each.
        // Chosen and counted under one lock, so pulls starting together spread out.
        let waits: Vec<(Arc<PullConsumer>, Counted)> = {
            let _claim = self.claim.lock().unwrap_or_else(|e| e.into_inner());
            let order: Vec<&Lane> = (0..n)
                .map(|k| &self.lanes[(self.wait_offset + start + k) % n])
                .filter(usable)
                .collect();
            let uncovered: Vec<&Lane> = order
                .iter()
                .copied()
                .filter(|lane| lane.waiters.load(Ordering::Relaxed) == 0)
                .collect();
            let lanes: Vec<&Lane> = if uncovered.is_empty() {
                order
                    .into_iter()
                    .min_by_key(|lane| lane.waiters.load(Ordering::Relaxed))
                    .into_iter()
                    .collect()
            } else {
                uncovered
            };
            lanes
                .iter()
                .filter_map(|lane| Some((lane.consumer.as_ref()?.get(), Counted::on(&lane.waiters))))
                .collect()
        };
        Ok(self.wait_on(taker, waits, max_wait).await)
    }

    /// Takes one waiting message from the first stream (from lane `start` on)
    /// that has one, skipping streams one of our idle pulls waits on; a stream
    /// that fails is skipped for a while.
    async fn take_ready(&self, start: usize) -> Option<jetstream::Message> {
        let n = self.lanes.len();
        for lane in (0..n).map(|k| &self.lanes[(start + k) % n]) {
            let Some(consumer) = lane.consumer.as_ref().map(LaneConsumer::get) else {
                continue;
            };
            // A stream on which one of our pulls is waiting has no backlog: the
            // server hands a job to a waiting request as soon as it is stored.
            if self.skipped(&lane.skip_pull_until) || lane.waiters.load(Ordering::Relaxed) > 0 {
                continue;
            }
            op("fetch");
            let fetched = tokio::time::timeout(self.config.publish_timeout, async {
                let mut batch = consumer
                    .fetch()
                    .max_messages(1)
                    .messages()
                    .await
                    .map_err(unavailable)?;
                match batch.next().await {
                    Some(Ok(m)) => Ok(Some(m)),
                    Some(Err(e)) => Err(unavailable(e)),
                    None => Ok(None),
                }
            })
            .await;
            match fetched {
                Ok(Ok(Some(message))) => return Some(message),
                Ok(Ok(None)) => op("fetch_empty"),
                Ok(Err(e)) => {
                    tracing::debug!(stream = %lane.name, error = %e, "pull failed; skipping the stream for a while");
                    self.skip(&lane.skip_pull_until);
                }
                Err(_) => self.skip(&lane.skip_pull_until),
            }
        }
        None
    }

    /// Idle queue: waits on the given streams at once with a request for one
    /// message on each, and for a job passed on by an earlier pull's request. The
    /// requests still open when a job came stay this process's: what they bring
    /// goes to the next waiting pull (`handoff`), and only a job that finds none
    /// within the hold is handed back. With the choice of streams in
    /// [`JetStreamQueue::pull_any`], a process with fewer idle pulls than streams
    /// thus covers every stream without redeliveries (ADR 0009).
    async fn wait_on(
        &self,
        mut taker: Taker<'_, jetstream::Message>,
        waits: Vec<(Arc<PullConsumer>, Counted)>,
        max_wait: Duration,
    ) -> Option<jetstream::Message> {
        let limit = max_wait + Duration::from_millis(250);
        let mut requests: FuturesUnordered<_> = waits
            .into_iter()
            .map(|(consumer, waiting)| {
                op("wait");
                async move {
                    let _counted = waiting;
                    let request = async {
                        let batch = consumer.batch().max_messages(1).expires(max_wait);
                        let mut messages = batch.messages().await.ok()?;
                        messages.next().await.and_then(|r| r.ok())
                    };
                    tokio::time::timeout(limit, request).await.ok().flatten()
                }
            })
            .collect();
        let winner = loop {
            tokio::select! {
                next = requests.next() => match next {
                    Some(Some(message)) => break Some(message),
                    Some(None) => continue,
                    None => break None,
                },
                Some(message) = taker.offered() => break Some(message),
            }
        };
        self.leave(taker);
        if !requests.is_empty() {
            self.adopt(requests);
        }
        winner
    }

    /// Takes a pull out of line; a job offered to it too late is passed on again.
    fn leave(&self, taker: Taker<'_, jetstream::Message>) {
        if let Some(late) = taker.leave() {
            self.pass_on(late);
        }
    }

    /// Keeps the open requests of a pull that returned, passing on what they bring;
    /// [`JetStreamQueue::quiesce`] waits for them.
    fn adopt<F>(&self, mut requests: FuturesUnordered<F>)
    where
        F: std::future::Future<Output = Option<jetstream::Message>> + Send + 'static,
    {
        let open = Counted::on(&self.open_requests);
        let (takers, open_requests, hold) = (
            self.takers.clone(),
            self.open_requests.clone(),
            self.config.hold_for,
        );
        tokio::spawn(async move {
            let _open = open;
            while let Some(extra) = requests.next().await {
                if let Some(message) = extra {
                    pass_on(&takers, &open_requests, hold, message);
                }
            }
        });
    }

    fn pass_on(&self, message: jetstream::Message) {
        pass_on(&self.takers, &self.open_requests, self.config.hold_for, message);
    }
}

/// Offers a job to this process's waiting pulls for up to `hold`, in the
/// background; the takers hand it back if none comes.
fn pass_on(
    takers: &Arc<Takers<jetstream::Message>>,
    open_requests: &Arc<AtomicUsize>,
    hold: Duration,
    message: jetstream::Message,
) {
    let open = Counted::on(open_requests);
    let takers = takers.clone();
    tokio::spawn(async move {
        let _open = open;
        if takers.pass_on(message, hold).await == Outcome::Taken {
            op("passed_on");
        }
    });
}

/// Hands a job back (nak) in the background, so another worker may have it at once.
fn nak_later(open_requests: Arc<AtomicUsize>) -> impl Fn(jetstream::Message) + Send + Sync + 'static {
    move |message| {
        op("handed_back");
        let open = Counted::on(&open_requests);
        tokio::spawn(async move {
            let _open = open;
            let _ = message.ack_with(AckKind::Nak(None)).await;
        });
    }
}

/// One thing counted for as long as it lives: an idle pull request on its
/// stream's `waiters`, or a background task in `open_requests`.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn on(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Attempt {
    Full,
    Failed(String),
}

/// Turns a delivered message into an item; a message that is not one is
/// terminated so it is never redelivered.
async fn decode<M: QueueItem>(message: jetstream::Message) -> Result<Delivery<M>, QueueError> {
    match serde_json::from_slice::<M>(&message.payload) {
        Ok(job) => Ok(Delivery {
            job,
            acker: Box::new(JetStreamAcker(message)),
        }),
        Err(e) => {
            tracing::error!(error = %e, "a queue message is not a job descriptor; terminating it");
            op("term");
            let _ = message.ack_with(AckKind::Term).await;
            Err(QueueError::Unavailable("malformed job descriptor".into()))
        }
    }
}

async fn retry_until<T, E, F, Fut>(deadline: Instant, mut f: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() + delay >= deadline => return Err(unavailable(e)),
            Err(e) => {
                tracing::info!(error = %e, "job queue not ready yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Time from the stream storing the job to its arrival here, both on wall clocks
/// (the stream leader's and this worker's): sub-millisecond where they agree.
fn record_receive_delay(message: &jetstream::Message) {
    let Ok(info) = message.info() else { return };
    let stored = info.published.unix_timestamp_nanos();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(stored);
    metrics::histogram!("resizer_queue_receive_delay_seconds").record((now - stored).max(0) as f64 / 1e9);
}

struct JetStreamAcker(jetstream::Message);

#[async_trait]
impl Acker for JetStreamAcker {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        op("ack");
        self.0.ack().await.map_err(unavailable)
    }

    async fn in_progress(&self) -> Result<(), QueueError> {
        op("progress");
        self.0.ack_with(AckKind::Progress).await.map_err(unavailable)
    }
}

/// One client serves any item type: the streams carry JSON.
#[async_trait]
impl<M: QueueItem> JobQueueBackend<M> for JetStreamQueue {
    async fn publish(&self, job: &M) -> Result<(), QueueError> {
        let payload = bytes::Bytes::from(serde_json::to_vec(job).map_err(unavailable)?);
        let started = Instant::now();
        let n = self.lanes.len();
        let first = self.next_publish.fetch_add(1, Ordering::Relaxed);
        let mut last_error = String::from("no stream is available");
        // First pass skips streams that failed lately; the second tries them all.
        for pass in 0..2 {
            let (mut tried, mut full) = (0, 0);
            for k in 0..n {
                let lane = &self.lanes[(first + k) % n];
                let js = &self.contexts[(first + k) % self.contexts.len()];
                if pass == 0 && self.skipped(&lane.skip_publish_until) {
                    continue;
                }
                if started.elapsed() >= self.config.publish_budget {
                    return Err(QueueError::Unavailable(last_error));
                }
                tried += 1;
                match self.publish_once(js, lane, job.id(), &payload).await {
                    Ok(()) => return Ok(()),
                    Err(Attempt::Full) => full += 1,
                    Err(Attempt::Failed(e)) => {
                        metrics::counter!("resizer_queue_stream_failures_total", "stream" => lane.name.clone())
                            .increment(1);
                        tracing::debug!(stream = %lane.name, error = %e, "publish failed; trying the next stream");
                        self.skip(&lane.skip_publish_until);
                        last_error = format!("{}: {e}", lane.name);
                    }
                }
            }
            if tried > 0 && full == tried {
                return Err(QueueError::Full);
            }
            if pass == 0 {
                // Every stream tried failed: a short jittered pause before the last pass.
                let jitter = u64::from(started.elapsed().subsec_nanos() % 40);
                tokio::time::sleep(Duration::from_millis(20 + jitter)).await;
            }
        }
        Err(QueueError::Unavailable(last_error))
    }

    async fn pull(&self, max_wait: Duration) -> Result<Option<Delivery<M>>, QueueError> {
        match self.pull_any(max_wait).await? {
            Some(message) => {
                record_receive_delay(&message);
                decode(message).await.map(Some)
            }
            None => Ok(None),
        }
    }

    fn depth(&self) -> Option<u64> {
        None
    }

    /// Any server connection up: the client pings every second and drops a
    /// connection after two missed pings, so a partition shows within ~3 s.
    fn reachable(&self) -> bool {
        self.contexts
            .iter()
            .any(|js| js.client().connection_state() == async_nats::connection::State::Connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_per_stream_bound_splits_total_rounding_up() {
        let mut c = JetStreamConfig::new(vec![]);
        c.max_jobs = 1000;
        c.streams = 3;
        assert_eq!(c.per_stream_jobs(), 334);
        c.max_jobs = 0;
        assert_eq!(c.per_stream_jobs(), 1);
    }
}
