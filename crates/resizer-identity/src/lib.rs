//! Identity: tenants, API keys and the authentication data plane.
//!
//! The management plane ([`IdentityService`] over an [`IdentityStore`]) is
//! authoritative and consistency-first: every write lands in the store together
//! with an entry in an ordered change log. The data plane ([`AuthCache`]) is an
//! in-memory copy built from a snapshot plus those ordered changes; requests
//! authenticate against it alone.
//!
//! # Layout
//! - [`inventory`]: the metrics this crate records (listed in docs/metrics.md).
//! - [`model`]: tenants, keys and change events.
//! - [`flags`]: feature flags and how one is evaluated for a tenant.
//! - [`store`]: the [`IdentityStore`] trait and its SQLite backend.
//! - [`service`]: validation rules and the write path that notifies caches.
//! - [`cache`]: the [`AuthCache`]: apply changes, authenticate in constant time.
//! - [`feed`]: following the change log over HTTP, with a local snapshot file for restarts.
//! - [`remote`]: signing keys issued through a remote identity service, on the tenant's own key.
//! - [`error`]: [`IdentityError`], mapped to public error codes.

pub mod cache;
pub mod error;
pub mod feed;
pub mod flags;
pub mod inventory;
pub mod model;
pub mod remote;
pub mod service;
pub mod store;

pub use cache::LocalFollower;
pub use cache::{AuthCache, AuthContext, AuthError, CacheSource};
pub use error::IdentityError;
pub use flags::{Flag, FlagSpec, FlagTable};
pub use model::{Change, ChangeEvent, KeyRecord, OriginalsQuota, Snapshot, Tenant, TenantPatch};
pub use service::{ChangeSubscriber, IdentityService, IssuedKeyView, IssuedSigningKey, NewTenant};
pub use store::sqlite::SqliteIdentityStore;
pub use store::{ChangeSource, IdentityStore};
