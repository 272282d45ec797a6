//! Errors of the identity service.

use resizer_core::ErrorCode;

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No tenant or key with that id.
    #[error("{0} not found")]
    NotFound(String),
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The authoritative store failed.
    #[error("identity store error: {0}")]
    Store(String),
}

impl IdentityError {
    /// Returns the public error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Invalid(_) => ErrorCode::InvalidParameter,
            Self::Store(_) => ErrorCode::DependencyUnavailable,
        }
    }
}
