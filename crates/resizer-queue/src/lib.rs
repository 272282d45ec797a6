//! The replicated FIFO between API nodes and workers: bounded, fair between
//! tenants, explicit ack. It carries any [`QueueItem`]; what a job is and how
//! its bytes and result travel is `resizer-jobs`'s.
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`queue`]: the [`JobQueue`] handle over a [`JobQueueBackend`], and [`QueueItem`].
//! - [`memory`]: the embedded backend, a bounded in-process FIFO, round-robin over tenants.
//! - [`jetstream`]: the distributed backend on NATS JetStream.
//! - `handoff`: how a job that reaches an idle pull request after its pull returned
//!   goes to another waiting pull of the process instead of back to the queue.
//! - `single_replica`: consumers of one replica, replaced by the workers when they fail.
//! - [`testing`]: the item the queue's own tests (unit and integration) carry.
//!
//! # Backends
//! Embedded: [`memory::MemoryJobQueue`]. Distributed: [`jetstream::JetStreamQueue`],
//! work-queue streams replicated by Raft. Items are small; image bytes never ride the queue.

mod handoff;
pub mod inventory;
pub mod jetstream;
pub mod memory;
pub mod queue;
mod single_replica;
pub mod testing;

pub use queue::{Delivery, JobQueue, JobQueueBackend, QueueError, QueueItem};
