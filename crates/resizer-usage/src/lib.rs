//! Usage metering: what every metered request cost, recorded on the API node
//! that served it and rolled up per tenant for billing and usage queries.
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`record`]: [`UsageRecord`], one per metered request, success or failure.
//! - [`rollup`]: pure roll-ups of records into per-tenant hourly (or daily) buckets.
//! - [`log`]: [`UsageLog`], the API node's local append-only log: a record is
//!   written (to the OS) before the response is sent and fsynced on a short
//!   interval, in segment files that are shipped in batches once closed.
//! - [`ship`]: distributed mode: closed segments → the replicated JetStream staging stream.
//! - [`lease`]: the distributed aggregator: one active instance by a JetStream KV lease.
//! - [`store`]: [`store::UsageStore`], per-tenant hourly counters applied
//!   idempotently by record id (SQLite embedded).
//! - [`columnar`]: records as Parquet with zstd, the archive's file format.
//! - [`postgres`]: the roll-up store shared by distributed aggregators.
//! - [`archive`]: every raw record, partitioned by day, for audit queries, in an
//!   object store: a local directory or, by [`s3`], an S3-compatible bucket.
//! - [`query`]: [`query::UsageQueries`], buckets and audit records for any time slice.
//! - [`aggregator`]: [`aggregator::Aggregator`], closed segments → store + archive.
//! - [`storage`]: stored bytes per tenant, sampled into hourly peaks.

pub mod aggregator;
pub mod archive;
pub mod columnar;
pub mod error;
pub mod inventory;
pub mod lease;
pub mod log;
pub mod postgres;
pub mod query;
pub mod record;
pub mod rollup;
pub mod s3;
pub mod ship;
pub mod storage;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use log::{UsageLog, UsageLogConfig, UsageLogError};
pub use record::UsageRecord;
pub use rollup::{Bucket, BucketSize, StoredSample, rebucket, roll_up, with_storage};
