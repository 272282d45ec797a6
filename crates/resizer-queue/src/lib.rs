//! Moving jobs from API nodes to workers and results back.
//!
//! # Layout
//! - [`job`]: the small descriptor that travels through the queue and the result that comes back.
//! - [`queue`]: the [`JobQueue`] handle over a [`JobQueueBackend`] (FIFO, bounded, explicit ack).
//! - [`memory`]: the embedded backend, a bounded in-process FIFO.
//! - [`jetstream`]: the distributed backend on NATS JetStream.
//! - `testing` (feature `testing`): a sample job descriptor for tests.
//! - [`transport`]: [`StagingClient`] (worker fetches input bytes from the API node that
//!   holds them) and [`ResultSink`] (worker hands the result back).
//!
//! # Backends
//! Embedded: [`memory::MemoryJobQueue`]. Distributed: [`jetstream::JetStreamQueue`],
//! work-queue streams replicated by Raft. Image bytes never ride the queue.

pub mod jetstream;
pub mod job;
pub mod memory;
pub mod queue;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;

pub use job::{JobDescriptor, JobFailure, JobOutput, JobOutputMeta, JobResult, StagingLocator};
pub use queue::{Delivery, JobQueue, JobQueueBackend, QueueError};
pub use transport::{ResultSink, StagingClient, TransportError};
