//! The HTTP edge: the public REST tier and the admin port.
//!
//! Stateless apart from bounded, per-request state (staged input bytes, result
//! waiters, rate-limit buckets). Errors from every crate are mapped to HTTP
//! here, once, in [`error`].
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`public`]: the public port's state and routes, `/healthz`, `/readyz`, `/metrics`, `/v1/usage`.
//! - [`resize`]: `POST /v1/resize`, a thin handler over the steps below and
//!   [`resizer_jobs::JobRunner`].
//! - [`originals`]: `/v1/originals`, a tenant's stored images, and the node's [`originals::Delivery`] settings.
//! - [`variants`]: `GET /v1/img/{tenant}/{name}`, variants by (signed) URL, with ETags and 304s.
//! - [`variant_cache`]: finished variants in memory, bounded by bytes, per tenant and ETag.
//! - [`credentials`]: a tenant's self-service on its keys and signing keys, in
//!   process or through the identity service with the tenant's own key.
//! - [`keys`]: a tenant's own API keys (`/v1/keys`).
//! - [`signing_keys`]: a tenant's own URL signing keys (`/v1/signing-keys`).
//! - [`admission`]: room on the node, the key, the tenant's rate and share (before the body).
//! - [`body`]: reading bodies within their limits; draining an early refusal's.
//! - [`metering`]: the usage record every metered request leaves before it is answered.
//! - [`admin`]: tenants and keys on the admin port, behind the admin token.
//! - [`flags`]: feature flags on the admin port (`/admin/v1/flags`) and a tenant's own (`/v1/flags`).
//! - [`fleet`]: every node's health and headline numbers (`/admin/v1/fleet`), for the operator console.
//! - [`internal`]: the internal port of a distributed API node: workers fetch staged
//!   input and deliver results there, each behind its job's token
//!   (routes in [`resizer_jobs::transport::routes`]).
//! - [`rate_limit`]: per-tenant token buckets.
//! - [`usage`]: usage and audit queries (`/v1/usage`, `/admin/v1/usage`, `/admin/v1/audit`).
//! - [`listener`]: every HTTP listener: connection cap, head/idle/body timeouts, graceful stop.
//! - [`tls`]: certificates for the listeners between roles (admin/feed, internal).
//! - [`observe`]: request ids and request metrics, applied to every route.
//! - [`error`]: [`ApiError`] and the JSON error body.
//! - [`openapi`]: the OpenAPI documents of both ports (`/openapi.json`) and the rendered reference (`/docs`).

pub mod admin;
pub mod admission;
pub mod body;
pub mod credentials;
pub mod error;
pub mod flags;
pub mod fleet;
pub mod internal;
pub mod inventory;
pub mod keys;
pub mod listener;
pub mod metering;
pub mod observe;
pub mod openapi;
pub mod originals;
pub mod public;
pub mod rate_limit;
pub mod resize;
pub mod signing_keys;
pub mod tls;
pub mod usage;
pub mod variant_cache;
pub mod variants;

pub use admin::{AdminState, HashedSecret};
pub use error::ApiError;
pub use internal::InternalState;
pub use public::{ApiConfig, ApiState};
