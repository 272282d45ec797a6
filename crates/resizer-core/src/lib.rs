//! Pure domain types shared by every role: ids, API keys, resize parameters,
//! format negotiation, error codes and rate-limit arithmetic.
//!
//! Nothing here does I/O or depends on an async runtime, so every rule can be
//! unit-tested with plain values (time is passed in, never read).
//!
//! # Layout
//! - [`ids`]: unguessable random identifiers (`ten_…`, `key_…`, `job_…`, `req_…`).
//! - [`api_key`]: key secrets, their hashes and the constant-time check.
//! - [`credentials`]: engine logins whose `Debug` hides the password.
//! - [`capability`]: per-job tokens (HMAC of the job id) that workers use instead of the cluster secret.
//! - [`format`]: the image formats we speak and `Accept` negotiation.
//! - [`params`]: `POST /v1/resize` query parsing and validation.
//! - [`error_code`]: the closed set of public error codes and their HTTP status.
//! - [`rate_limit`]: a token bucket driven by an explicit clock.
//! - [`signing`]: signed variant URLs (HMAC-SHA256 over the canonical path and query).
//! - [`metric`]: how each crate declares the metrics it records.
//! - [`trace`]: W3C `traceparent`, the trace a request and its job belong to.

pub mod api_key;
pub mod capability;
pub mod credentials;
pub mod error_code;
pub mod format;
pub mod ids;
pub mod metric;
pub mod params;
pub mod rate_limit;
pub mod signing;
pub mod time;
pub mod trace;

pub use error_code::{ErrorCode, PublicError};
pub use format::ImageFormat;
