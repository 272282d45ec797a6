//! Originals: the images tenants upload once and deliver as variants by URL.
//!
//! This crate owns what an original is (its name grammar, its metadata), the
//! per-tenant quotas on them, and where they are kept behind the
//! [`OriginalStore`] trait: a local directory with a SQLite index in
//! `resizer serve`, an S3-compatible bucket with a PostgreSQL index when
//! distributed. Every key is namespaced by tenant inside the store, and
//! callers pass the tenant from the authenticated request, never from a name.
//!
//! # Layout
//! - [`name`]: [`OriginalName`], the safe grammar of names.
//! - [`model`]: [`OriginalMeta`], [`Quota`], [`Totals`], a list [`Page`].
//! - [`store`]: the [`OriginalStore`] trait and the quota rule every backend applies.
//! - [`local`]: [`LocalOriginals`], files plus a SQLite index (`resizer serve`).
//! - [`shared`]: [`shared::SharedOriginals`], a bucket plus a PostgreSQL index (the distributed roles).
//! - `testsuite` (feature): the contract every backend keeps.
//! - [`error`]: [`OriginalsError`], with its public codes.

pub mod error;
pub mod local;
pub mod model;
pub mod name;
pub mod shared;
pub mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use error::OriginalsError;
pub use local::LocalOriginals;
pub use model::{OriginalMeta, Page, Quota, Totals};
pub use name::OriginalName;
pub use store::OriginalStore;
