//! Why an originals operation failed, and what the client hears.

use resizer_core::{ErrorCode, PublicError};

/// Errors of the originals store.
#[derive(Debug, thiserror::Error)]
pub enum OriginalsError {
    /// The name breaks the grammar.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// No original of that name for this tenant.
    #[error("no original named {0:?}")]
    NotFound(String),
    /// Storing it would pass the tenant's quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The store failed (disk, index, network).
    #[error("originals store: {0}")]
    Storage(String),
}

impl PublicError for OriginalsError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidName(_) => ErrorCode::InvalidParameter,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::Storage(_) => ErrorCode::DependencyUnavailable,
        }
    }

    /// Paths and SQL stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Storage(_) => "the originals store is unavailable".into(),
            _ => self.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        matches!(self, Self::Storage(_)).then_some(1)
    }
}

/// Wraps any store failure.
pub(crate) fn storage(e: impl std::fmt::Display) -> OriginalsError {
    OriginalsError::Storage(e.to_string())
}
