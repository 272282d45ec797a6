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
//!   the ack floor (the stream sequence below which every job was acked).
//! - A consumer that does not answer three checks in a row, or whose ack floor
//!   went backwards (its server restarted and it came back empty), is replaced
//!   by the next epoch starting just after the floor last seen; the old one is
//!   deleted. Jobs delivered but not acked before the floor are delivered
//!   again: at-least-once, as with a worker that dies. The API node answers a
//!   job once, and a job already answered finds its input gone and is dropped.
//! - A consumer that no longer exists was replaced by someone else: rebind to
//!   the newest epoch.
//!
//! The streams keep acked jobs (limits retention: a work-queue stream refuses a
//! consumer of fewer replicas than itself) until they age out; the bound on
//! waiting jobs is then the API nodes' `api.max_in_flight`.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

use crate::queue::QueueError;

/// Consumer names are this prefix and an epoch.
const PREFIX: &str = "workers-";
/// How often each process checks its consumer.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Time one check may take: an answer takes a millisecond on a healthy
/// cluster, so this is a stalled server.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
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
    current: RwLock<(u64, PullConsumer)>,
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
}

/// What to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Rebind,
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
        Check::Gone => Verdict::Rebind,
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

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
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
            current: RwLock::new(bound),
        }))
    }

    /// The consumer to pull from now.
    pub(crate) fn consumer(&self) -> PullConsumer {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    fn epoch(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0
    }

    fn set(&self, bound: (u64, PullConsumer)) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Never back to an older epoch (two fixes racing).
        if bound.0 >= current.0 {
            *current = bound;
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

    /// Asks through the consumer's own connection and the others at once: a
    /// connection of ours to a stalled server is not a failed consumer.
    async fn check(&self) -> Check {
        let (epoch, consumer) = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut answers: FuturesUnordered<BoxFuture<'_, Option<Check>>> = FuturesUnordered::new();
        answers.push(Box::pin(async move { judge_answer(consumer.get_info().await) }));
        for js in &self.contexts {
            answers.push(Box::pin(async move {
                let handle = js.get_stream(&self.stream).await.ok()?;
                judge_answer(handle.consumer_info(name(epoch)).await)
            }));
        }
        let first = async {
            while let Some(answer) = answers.next().await {
                if let Some(check) = answer {
                    return check;
                }
            }
            Check::Failed
        };
        tokio::time::timeout(CHECK_TIMEOUT, first)
            .await
            .unwrap_or(Check::Failed)
    }

    /// Rebinds or replaces, through the first connection that answers.
    async fn fix(&self, epoch: u64, verdict: Verdict) -> Result<(), QueueError> {
        let mut last = QueueError::Unavailable("no connection".into());
        for js in &self.contexts {
            let handle = match within(js.get_stream(&self.stream)).await {
                Ok(handle) => handle,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let fixed = match verdict {
                Verdict::Keep => return Ok(()),
                Verdict::Rebind => self.rebind(&handle).await,
                Verdict::Replace { start } => self.replace(&handle, epoch, start).await,
            };
            match fixed {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn rebind(&self, handle: &stream::Stream) -> Result<(), QueueError> {
        let epoch = newest(handle).await?.ok_or_else(|| unavailable("no consumer"))?;
        let consumer = within(handle.get_consumer(&name(epoch))).await?;
        tracing::info!(stream = %self.stream, consumer = %name(epoch), "pulling from the stream's newest consumer");
        metrics::counter!("resizer_queue_operations_total", "op" => "consumer_rebound").increment(1);
        self.set((epoch, consumer));
        Ok(())
    }

    async fn replace(&self, handle: &stream::Stream, epoch: u64, start: u64) -> Result<(), QueueError> {
        let policy = DeliverPolicy::ByStartSequence {
            start_sequence: start.max(1),
        };
        let bound = create(handle, &self.template, epoch + 1, policy).await?;
        tracing::warn!(stream = %self.stream, from = %name(epoch), to = %name(bound.0), start, "replaced the stream's consumer");
        metrics::counter!("resizer_queue_operations_total", "op" => "consumer_replaced").increment(1);
        self.set(bound);
        // The old one's server may be gone: its deletion then waits for it, or fails.
        let _ = within(handle.delete_consumer(&name(epoch))).await;
        Ok(())
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

/// An answer that settles a check; `None` when another connection should be asked.
fn judge_answer(
    answer: Result<async_nats::jetstream::consumer::Info, async_nats::jetstream::context::ConsumerInfoError>,
) -> Option<Check> {
    match answer {
        Ok(info) => Some(Check::Floor(info.ack_floor.stream_sequence)),
        Err(e) if not_found(&e) => Some(Check::Gone),
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
        assert_eq!(judge(&mut w, 3, Check::Gone), Verdict::Rebind);
    }

    #[test]
    fn test_names_carry_the_epoch() {
        assert_eq!(epoch_of(&name(17)), Some(17));
        assert_eq!(epoch_of("workers"), None);
        assert_eq!(epoch_of("workers-x"), None);
    }
}
