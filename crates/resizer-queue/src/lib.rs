//! Moving jobs from API nodes to workers and results back.
//!
//! # Layout
//! - [`job`]: the small descriptor that travels through the queue and the result that comes back.
//! - [`queue`]: the [`JobQueue`] handle over a [`JobQueueBackend`] (FIFO, bounded, explicit ack).
//! - [`memory`]: the embedded backend, a bounded in-process FIFO.
//! - [`transport`]: [`StagingClient`] (worker fetches input bytes from the API node that
//!   holds them) and [`ResultSink`] (worker hands the result back).
//!
//! # Backends
//! Embedded: [`memory::MemoryJobQueue`]. The distributed (NATS JetStream)
//! backend implements the same trait; image bytes never ride the queue.

pub mod job;
pub mod memory;
pub mod queue;
pub mod transport;

pub use job::{JobDescriptor, JobFailure, JobOutput, JobResult, StagingLocator};
pub use queue::{Delivery, JobQueue, JobQueueBackend, QueueError};
pub use transport::{ResultSink, StagingClient, TransportError};
