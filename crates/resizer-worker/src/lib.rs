//! The worker role: pull jobs, fetch their input, resize, hand results back.
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`pool`]: [`ImagingPool`], dedicated OS threads that own the CPU work
//!   (one per core by default), so resizing never blocks the async runtime.
//! - [`worker`]: [`Worker`], the pull loop: it takes no more jobs than the pool
//!   has free threads, drops expired or orphaned jobs, and acks after delivery.
//! - [`cpu_time`]: the calling thread's own CPU time, for metering.

pub mod cpu_time;
pub mod inventory;
pub mod pool;
pub mod worker;

pub use pool::{ImagingPool, PoolError};
pub use worker::{Worker, WorkerConfig};
