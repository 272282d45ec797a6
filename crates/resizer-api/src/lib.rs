//! The HTTP edge: the public REST tier and the admin port.
//!
//! Stateless apart from bounded, per-request state (staged input bytes, result
//! waiters, rate-limit buckets). Errors from every crate are mapped to HTTP
//! here, once, in [`error`].
//!
//! # Layout
//! - [`public`]: `POST /v1/resize`, `/healthz`, `/readyz`, `/metrics`.
//! - [`admin`]: tenants and keys on the admin port, behind the admin token.
//! - [`internal`]: the internal port of a distributed API node: workers fetch staged
//!   input and deliver results there, behind the cluster secret.
//! - [`staging`]: the bounded staging area holding input bytes until a worker fetches them.
//! - [`results`]: job id → waiting request; the first result wins.
//! - [`transport`]: in-process [`resizer_queue::StagingClient`] and
//!   [`resizer_queue::ResultSink`] over the two above, for embedded mode.
//! - [`rate_limit`]: per-tenant token buckets.
//! - [`joins`]: identical in-flight requests share one job; per-tenant in-flight caps.
//! - [`usage`]: usage and audit queries (`/v1/usage`, `/admin/v1/usage`, `/admin/v1/audit`).
//! - [`listener`]: every HTTP listener: connection cap, head/idle/body timeouts, graceful stop.
//! - [`tls`]: certificates for the listeners between roles (admin/feed, internal).
//! - [`observe`]: request ids and request metrics, applied to every route.
//! - [`error`]: [`ApiError`] and the JSON error body.

pub mod admin;
pub mod error;
pub mod internal;
pub mod joins;
pub mod listener;
pub mod observe;
pub mod public;
pub mod rate_limit;
pub mod results;
pub mod staging;
pub mod tls;
pub mod transport;
pub mod usage;

pub use admin::{AdminState, AdminToken};
pub use error::ApiError;
pub use internal::InternalState;
pub use public::{ApiConfig, ApiState};
