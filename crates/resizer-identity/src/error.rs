//! Errors of the identity service.

use resizer_core::{ErrorCode, PublicError};

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No tenant or key with that id.
    #[error("{0} not found")]
    NotFound(String),
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A per-tenant bound (live signing keys) would be passed.
    #[error("{0}")]
    Quota(String),
    /// The authoritative store failed.
    #[error("identity store error: {0}")]
    Store(String),
    /// A remote identity service refused the caller (its key was revoked or its
    /// tenant suspended after this node's auth cache last heard).
    #[error("{message}")]
    Refused {
        /// The identity service's code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
}

impl PublicError for IdentityError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Invalid(_) => ErrorCode::InvalidParameter,
            Self::Quota(_) => ErrorCode::QuotaExceeded,
            Self::Store(_) => ErrorCode::DependencyUnavailable,
            Self::Refused { code, .. } => *code,
        }
    }

    /// The store's own words (hosts, SQL) stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Store(_) => "the identity store is unavailable".into(),
            _ => self.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        matches!(self, Self::Store(_)).then_some(1)
    }
}
