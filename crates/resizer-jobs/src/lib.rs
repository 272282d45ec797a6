//! A job's round trip, end to end: what travels, where the input waits, who
//! waits for the result, and how a worker reaches the API node that owns it.
//!
//! An API node stages the input bytes here, publishes a small
//! [`JobDescriptor`] to the queue (`resizer-queue`), and waits; a worker
//! pulls the descriptor, fetches the bytes from the node named in its
//! [`StagingLocator`], resizes, and delivers a [`JobResult`] back. Image
//! bytes never ride the queue.
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`job`]: the descriptor and the result.
//! - [`runner`]: [`JobRunner::run`], the one call a handler makes: join or stage, publish, wait.
//! - [`staging`]: the bounded area holding input bytes until a worker fetches them.
//! - [`results`]: job id → waiting request; the first result wins.
//! - [`joins`]: identical in-flight requests of a tenant share one job.
//! - [`transport`]: how a worker reaches the owning node ([`StagingClient`],
//!   [`ResultSink`]) and the internal routes both sides use.
//! - [`in_process`]: the embedded transport, over shared memory.
//! - [`http_client`]: the distributed worker's transport, over the API node's
//!   internal port (served by `resizer-api::internal`).
//! - `testing` (feature `testing`): a sample descriptor for tests.

pub mod http_client;
pub mod in_process;
pub mod inventory;
pub mod job;
pub mod joins;
pub mod results;
pub mod runner;
pub mod staging;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;

pub use job::{JobDescriptor, JobFailure, JobOutput, JobOutputMeta, JobResult, StagingLocator};
pub use runner::{JobRequest, JobRunner, Ran, RunError};
pub use transport::{ResultSink, StagingClient, TransportError};
