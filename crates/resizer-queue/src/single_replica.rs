//! Single-replica consumers and their failover, done by the workers.
//!
//! A replicated (R3) consumer puts every delivery and every ack through Raft:
//! about half of what the servers spend on a job (ADR 0009). A consumer of one
//! replica does not, but NATS does not move it when its server dies or is cut
//! off. So with `single_replica_consumers` the consuming processes watch their
//! stream's consumer and replace it themselves:
//!
//! - Consumers are named by epoch, `workers-<n>`; everybody pulls from the
//!   newest. Creating the next epoch is create-only, so processes that notice a
//!   failure together make one consumer, not several.
//! - Each process asks its consumer for its state twice a second and remembers
//!   the ack floor (the stream sequence below which every job was acked); it
//!   also asks the stream's leader whether the consumer's server is still in
//!   touch, since a server cut off from the others answers for a consumer that
//!   no longer gets new jobs. (Every consuming process watches: a few requests
//!   per second per stream each; with many workers one elected watcher would do.)
//! - A consumer that fails three checks in a row (no answer), whose server is
//!   cut off, or whose ack floor went backwards (its server restarted and it came
//!   back empty), is replaced by the next epoch starting just after the floor
//!   last seen; the old one is deleted. Jobs after that floor are delivered
//!   again, acked since or not: at-least-once, as with a worker that dies. The
//!   API node answers a job once, and a job already answered finds its input
//!   gone and is dropped.
//! - A consumer that no longer exists was replaced by someone else: rebind to
//!   the newest epoch.
//!
//! The streams keep acked jobs (limits retention: a work-queue stream refuses a
//! consumer of fewer replicas than itself) until they age out; the bound on
//! waiting jobs is then the API nodes' `api.max_in_flight`.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{ClusterInfo, PeerInfo};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::jetstream::unavailable;
use crate::queue::QueueError;

/// Consumer names are this prefix and an epoch.
const PREFIX: &str = "workers-";
/// How often each process checks its consumer.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Time one check may take: an answer takes a millisecond on a healthy
/// cluster, so this is a stalled server.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
/// A replica the stream's leader has not heard from for this long is cut off
/// (Raft heartbeats come every second when there is no traffic).
const UNHEARD: Duration = Duration::from_secs(2);
/// Time one step of a replacement (a request to the meta leader) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed checks in a row after which the consumer is replaced.
const FAILED_CHECKS: u32 = 3;

/// The consumer of one stream that this process pulls from now.
pub(crate) struct Slot {
    stream: String,
    /// Every connection of the process, the lane's own first.
    contexts: Vec<jetstream::Context>,
    template: pull::Config,
    current: RwLock<(u64, Arc<PullConsumer>)>,
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The consumer answered with its ack floor.
    Floor(u64),
    /// The consumer does not exist (any more).
    Gone,
    /// No answer in time, or an error.
    Failed,
    /// It answered, but from a server that the stream's leader (holding a
    /// quorum) has not heard from for [`UNHEARD`]: already evidence over time.
    CutOff,
}

/// What to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Pull from a newer consumer, or replace this one from `start` if there is none.
    Rebind {
        start: u64,
    },
    /// Replace with the next epoch, starting at this stream sequence.
    Replace {
        start: u64,
    },
}

/// What a process remembers of its consumer between checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) epoch: u64,
    pub(crate) floor: u64,
    pub(crate) failures: u32,
}

/// Decides on one check of consumer `epoch`; pure, so the rules are unit-tested.
pub(crate) fn judge(watch: &mut Watch, epoch: u64, check: Check) -> Verdict {
    if watch.epoch != epoch {
        // A new consumer (ours or another process's): its floor starts over.
        *watch = Watch {
            epoch,
            ..Watch::default()
        };
    }
    match check {
        Check::Floor(floor) if floor < watch.floor => Verdict::Replace {
            start: watch.floor + 1,
        },
        Check::Floor(floor) => {
            watch.floor = floor;
            watch.failures = 0;
            Verdict::Keep
        }
        Check::Gone => Verdict::Rebind {
            start: watch.floor + 1,
        },
        Check::CutOff => Verdict::Replace {
            start: watch.floor + 1,
        },
        Check::Failed => {
            watch.failures += 1;
            if watch.failures >= FAILED_CHECKS {
                Verdict::Replace {
                    start: watch.floor + 1,
                }
            } else {
                Verdict::Keep
            }
        }
    }
}

fn name(epoch: u64) -> String {
    format!("{PREFIX}{epoch}")
}

fn epoch_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

async fn within<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r.map_err(unavailable),
        Err(_) => Err(QueueError::Unavailable("no answer in time".into())),
    }
}

impl Slot {
    /// Binds to the stream's newest consumer, creating the first if there is none.
    pub(crate) async fn open(
        stream: String,
        contexts: Vec<jetstream::Context>,
        template: pull::Config,
    ) -> Result<Arc<Self>, QueueError> {
        let handle = within(contexts[0].get_stream(&stream)).await?;
        let bound = match newest(&handle).await? {
            Some(epoch) => (epoch, within(handle.get_consumer(&name(epoch))).await?),
            None => create(&handle, &template, 0, DeliverPolicy::All).await?,
        };
        Ok(Arc::new(Self {
            stream,
            contexts,
            template,
            current: RwLock::new((bound.0, Arc::new(bound.1))),
        }))
    }

    /// The consumer to pull from now.
    pub(crate) fn consumer(&self) -> Arc<PullConsumer> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    fn epoch(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0
    }

    fn set(&self, (epoch, consumer): (u64, PullConsumer)) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Never back to an older epoch (two fixes racing).
        if epoch >= current.0 {
            *current = (epoch, Arc::new(consumer));
        }
    }

    /// Watches the consumer until the queue is dropped.
    pub(crate) fn watch(self: &Arc<Self>) {
        let slot = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut watch = Watch::default();
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let Some(slot) = Weak::upgrade(&slot) else {
                    return;
                };
                let epoch = slot.epoch();
                let check = slot.check().await;
                let verdict = judge(&mut watch, epoch, check);
                if verdict != Verdict::Keep
                    && let Err(e) = slot.fix(epoch, verdict).await
                {
                    tracing::warn!(stream = %slot.stream, error = %e, "could not mend the stream's consumer; trying again");
                }
            }
        });
    }

    /// Asks the consumer for its state (through another connection if its own
    /// fails: a connection of ours to a stalled server is not a failed consumer),
    /// and the stream's leader whether the consumer's server is still with it: a
    /// server cut off from the others still answers for its consumer, which no
    /// longer gets the stream's new jobs.
    async fn check(&self) -> Check {
        let (answer, cut_off) = tokio::join!(self.ask_consumer(), self.cut_off_servers());
        match answer {
            Some((Check::Floor(_), Some(server))) if cut_off.contains(&server) => Check::CutOff,
            Some((check, _)) => check,
            None => Check::Failed,
        }
    }

    /// The consumer's state through its own connection or, failing that, the
    /// first of the others to answer.
    async fn ask_consumer(&self) -> Option<Answer> {
        let (epoch, consumer) = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let half = CHECK_TIMEOUT / 2;
        if let Ok(answer) = tokio::time::timeout(half, consumer.get_info()).await
            && let Some(answer) = judge_answer(answer)
        {
            return Some(answer);
        }
        let mut answers: FuturesUnordered<_> = self
            .contexts
            .iter()
            .map(|js| async move {
                let handle = js.get_stream_no_info(&self.stream).await.ok()?;
                judge_answer(handle.consumer_info(name(epoch)).await)
            })
            .collect();
        let first = async {
            while let Some(answer) = answers.next().await {
                if answer.is_some() {
                    return answer;
                }
            }
            None
        };
        tokio::time::timeout(half, first).await.ok().flatten()
    }

    /// The stream's replicas that a leader of the stream holding a quorum, asked
    /// through each of our connections, has not heard from lately.
    async fn cut_off_servers(&self) -> Vec<String> {
        let asks = self.contexts.iter().map(|js| {
            tokio::time::timeout(CHECK_TIMEOUT, async move {
                let info = js.get_stream(&self.stream).await.ok()?;
                info.cached_info().cluster.clone()
            })
        });
        let views = futures_util::future::join_all(asks).await;
        views
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|cluster| unheard_by_a_quorum(&cluster))
            .collect()
    }

    /// Binds to a newer consumer that answers, if any of our connections lists
    /// one; otherwise creates the one after the newest listed (a newer one that
    /// does not answer was placed on a server that is gone).
    async fn fix(&self, epoch: u64, verdict: Verdict) -> Result<(), QueueError> {
        let start = match verdict {
            Verdict::Keep => return Ok(()),
            Verdict::Rebind { start } | Verdict::Replace { start } => start,
        };
        let (newest, handle) = self.newest_anywhere().await?;
        if newest > epoch
            && let Ok(consumer) = within(handle.get_consumer(&name(newest))).await
        {
            tracing::info!(stream = %self.stream, consumer = %name(newest), "pulling from the stream's newest consumer");
            metrics::counter!("resizer_queue_operations_total", "op" => "consumer_rebound").increment(1);
            self.set((newest, consumer));
            return Ok(());
        }
        let policy = DeliverPolicy::ByStartSequence {
            start_sequence: start.max(1),
        };
        let bound = create(&handle, &self.template, newest.max(epoch) + 1, policy).await?;
        tracing::warn!(stream = %self.stream, from = %name(epoch), to = %name(bound.0), start, "replaced the stream's consumer");
        metrics::counter!("resizer_queue_operations_total", "op" => "consumer_replaced").increment(1);
        self.set(bound);
        // Their servers may be gone: a deletion then waits for them, or fails.
        for old in [epoch, newest] {
            if old < self.epoch() {
                let _ = within(handle.delete_consumer(&name(old))).await;
            }
        }
        Ok(())
    }

    /// The newest consumer epoch any of our connections lists, asked at once
    /// (a server that was cut off may list only older ones), with a stream
    /// handle on a connection that answered.
    async fn newest_anywhere(&self) -> Result<(u64, stream::Stream), QueueError> {
        let listings = self.contexts.iter().map(|js| {
            tokio::time::timeout(CHECK_TIMEOUT, async move {
                let handle = js.get_stream(&self.stream).await.ok()?;
                let newest = newest(&handle).await.ok()?.unwrap_or(0);
                Some((newest, handle))
            })
        });
        let listings = futures_util::future::join_all(listings).await;
        listings
            .into_iter()
            .flatten()
            .flatten()
            .max_by_key(|(n, _)| *n)
            .ok_or_else(|| unavailable("no connection lists the stream's consumers"))
    }
}

/// Creates consumer `epoch` unless another process just did; binds to it either way.
async fn create(
    handle: &stream::Stream,
    template: &pull::Config,
    epoch: u64,
    deliver_policy: DeliverPolicy,
) -> Result<(u64, PullConsumer), QueueError> {
    let config = pull::Config {
        durable_name: Some(name(epoch)),
        deliver_policy,
        ..template.clone()
    };
    match within(handle.create_consumer_strict(config)).await {
        Ok(consumer) => Ok((epoch, consumer)),
        // Created meanwhile by another process, perhaps from another floor.
        Err(_) => Ok((epoch, within(handle.get_consumer(&name(epoch))).await?)),
    }
}

/// The newest consumer epoch of the stream, if any.
async fn newest(handle: &stream::Stream) -> Result<Option<u64>, QueueError> {
    let listing = async {
        let mut names = handle.consumer_names();
        let mut newest = None;
        while let Some(n) = names.next().await {
            let n = n.map_err(unavailable)?;
            newest = newest.max(epoch_of(&n));
        }
        Ok::<_, QueueError>(newest)
    };
    within(listing).await
}

/// The replicas a stream leader has not heard from lately, if that leader hears
/// from a majority (itself included); a leader cut off from the others hears
/// nobody, and its view says nothing about them.
fn unheard_by_a_quorum(cluster: &ClusterInfo) -> Vec<String> {
    if cluster.leader.is_none() {
        return Vec::new();
    }
    let unheard = |peer: &&PeerInfo| peer.offline || peer.active > UNHEARD;
    let gone: Vec<String> = cluster
        .replicas
        .iter()
        .filter(unheard)
        .map(|p| p.name.clone())
        .collect();
    let members = cluster.replicas.len() + 1;
    let heard = members - gone.len();
    if heard * 2 > members { gone } else { Vec::new() }
}

/// What a consumer's state says, and on which server it lives.
type Answer = (Check, Option<String>);

/// An answer that settles a check; `None` when another connection should be asked.
fn judge_answer(
    answer: Result<async_nats::jetstream::consumer::Info, async_nats::jetstream::context::ConsumerInfoError>,
) -> Option<Answer> {
    match answer {
        Ok(info) => {
            let server = info.cluster.as_ref().and_then(|c| c.leader.clone());
            Some((Check::Floor(info.ack_floor.stream_sequence), server))
        }
        Err(e) if not_found(&e) => Some((Check::Gone, None)),
        Err(_) => None,
    }
}

fn not_found(e: &async_nats::jetstream::context::ConsumerInfoError) -> bool {
    e.kind() == async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_consumer_that_stops_answering_is_replaced_after_the_floor_last_seen() {
        let mut w = Watch::default();
        assert_eq!(judge(&mut w, 0, Check::Floor(40)), Verdict::Keep);
        assert_eq!(judge(&mut w, 0, Check::Failed), Verdict::Keep);
        assert_eq!(judge(&mut w, 0, Check::Failed), Verdict::Keep);
        assert_eq!(judge(&mut w, 0, Check::Failed), Verdict::Replace { start: 41 });
    }

    #[test]
    fn test_a_consumer_on_a_cut_off_server_is_replaced_at_once() {
        let mut w = Watch::default();
        judge(&mut w, 1, Check::Floor(7));
        assert_eq!(judge(&mut w, 1, Check::CutOff), Verdict::Replace { start: 8 });
    }

    #[test]
    fn test_an_answer_resets_the_count_of_failures() {
        let mut w = Watch::default();
        judge(&mut w, 0, Check::Failed);
        judge(&mut w, 0, Check::Failed);
        assert_eq!(judge(&mut w, 0, Check::Floor(5)), Verdict::Keep);
        assert_eq!(judge(&mut w, 0, Check::Failed), Verdict::Keep);
    }

    #[test]
    fn test_a_consumer_that_came_back_empty_is_replaced() {
        let mut w = Watch::default();
        judge(&mut w, 2, Check::Floor(100));
        assert_eq!(judge(&mut w, 2, Check::Floor(0)), Verdict::Replace { start: 101 });
    }

    #[test]
    fn test_a_new_epoch_starts_its_floor_over_and_a_gone_consumer_is_rebound() {
        let mut w = Watch::default();
        judge(&mut w, 2, Check::Floor(100));
        // Another process replaced it from an older floor: not "went backwards".
        assert_eq!(judge(&mut w, 3, Check::Floor(90)), Verdict::Keep);
        assert_eq!(judge(&mut w, 3, Check::Gone), Verdict::Rebind { start: 91 });
    }

    fn cluster(leader: &str, peers: &[(&str, u64)]) -> ClusterInfo {
        let replicas: Vec<_> = peers
            .iter()
            .map(|(name, active_ms)| {
                serde_json::json!({"name": name, "current": true, "active": active_ms * 1_000_000})
            })
            .collect();
        serde_json::from_value(serde_json::json!({"leader": leader, "replicas": replicas})).unwrap()
    }

    #[test]
    fn test_only_a_leader_with_a_quorum_says_who_is_cut_off() {
        // The majority's leader has not heard from s3 for 10 s: s3 is cut off.
        assert_eq!(
            unheard_by_a_quorum(&cluster("s1", &[("s2", 200), ("s3", 10_000)])),
            vec!["s3"]
        );
        // s3, cut off and still believing it leads, hears nobody: its view is ignored.
        assert!(unheard_by_a_quorum(&cluster("s3", &[("s1", 10_000), ("s2", 10_000)])).is_empty());
        // Everybody heard from.
        assert!(unheard_by_a_quorum(&cluster("s1", &[("s2", 200), ("s3", 900)])).is_empty());
    }

    #[test]
    fn test_names_carry_the_epoch() {
        assert_eq!(epoch_of(&name(17)), Some(17));
        assert_eq!(epoch_of("workers"), None);
        assert_eq!(epoch_of("workers-x"), None);
    }
}
