//! The public error codes of the external contract. Adding a variant is an API change.

use serde::{Deserialize, Serialize};

/// A stable, snake_case error code rendered as `{"error": {"code": …}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A query parameter or JSON field is missing, malformed or out of range.
    InvalidParameter,
    /// The request body is not valid JSON for the endpoint.
    InvalidJson,
    /// The request body is empty where an image was expected.
    EmptyBody,
    /// The requested output would exceed the output side limit.
    OutputTooLarge,
    /// Missing, unknown or revoked API key (or admin token).
    Unauthenticated,
    /// The tenant exists but is suspended.
    TenantSuspended,
    /// A variant URL's signature is missing, wrong or expired.
    InvalidSignature,
    /// The tenant's stored originals would pass its quota (bytes or count).
    QuotaExceeded,
    /// No such resource.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The request body came too slowly, or not whole within its deadline.
    RequestTimeout,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The bytes are not an image format we support.
    UnsupportedFormat,
    /// The bytes claim a supported format but do not decode.
    UndecodableImage,
    /// The image header declares more pixels than the limit.
    TooManyPixels,
    /// The tenant is over its rate limit.
    RateLimited,
    /// A bounded queue, pool or staging area is full.
    Overloaded,
    /// A dependency (queue, store) is unavailable.
    DependencyUnavailable,
    /// The job did not finish before its deadline.
    DeadlineExceeded,
    /// A bug or unexpected condition; details are logged, never rendered.
    Internal,
}

impl ErrorCode {
    /// Returns the HTTP status this code is rendered with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidParameter | Self::InvalidJson | Self::EmptyBody | Self::OutputTooLarge => 400,
            Self::Unauthenticated => 401,
            Self::TenantSuspended | Self::InvalidSignature | Self::QuotaExceeded => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedFormat => 415,
            Self::UndecodableImage | Self::TooManyPixels => 422,
            Self::RateLimited => 429,
            Self::Overloaded | Self::DependencyUnavailable => 503,
            Self::DeadlineExceeded => 504,
            Self::Internal => 500,
        }
    }

    /// Returns the snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "invalid_parameter",
            Self::InvalidJson => "invalid_json",
            Self::EmptyBody => "empty_body",
            Self::OutputTooLarge => "output_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::TenantSuspended => "tenant_suspended",
            Self::InvalidSignature => "invalid_signature",
            Self::QuotaExceeded => "quota_exceeded",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedFormat => "unsupported_format",
            Self::UndecodableImage => "undecodable_image",
            Self::TooManyPixels => "too_many_pixels",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::DependencyUnavailable => "dependency_unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_error_code_serde_name_matches_as_str() {
        for code in [
            ErrorCode::TooManyPixels,
            ErrorCode::RateLimited,
            ErrorCode::InvalidParameter,
            ErrorCode::DeadlineExceeded,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn test_error_code_statuses_follow_contract() {
        assert_eq!(ErrorCode::PayloadTooLarge.http_status(), 413);
        assert_eq!(ErrorCode::UnsupportedFormat.http_status(), 415);
        assert_eq!(ErrorCode::TooManyPixels.http_status(), 422);
        assert_eq!(ErrorCode::Overloaded.http_status(), 503);
        assert_eq!(ErrorCode::DeadlineExceeded.http_status(), 504);
    }
}

/// The error contract every crate's error enum signs: what the client hears.
///
/// The HTTP edge (`resizer-api::error`) renders any `PublicError` the same
/// way, so a crate decides its codes and messages once, beside the error, and
/// nothing between the error and the client re-maps it.
pub trait PublicError: std::error::Error {
    /// The public code; it decides the HTTP status.
    fn code(&self) -> ErrorCode;

    /// The sentence the client reads. For internal errors it says no more
    /// than that: the detail (`Display`) is logged with the request id, never sent.
    fn public_message(&self) -> String {
        if self.code() == ErrorCode::Internal {
            INTERNAL_MESSAGE.to_string()
        } else {
            self.to_string()
        }
    }

    /// Seconds after which a retry may succeed, for refusals that pass.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

/// What a client reads for any internal error.
pub const INTERNAL_MESSAGE: &str = "an internal error occurred";

impl PublicError for crate::params::ParamError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::InvalidParameter,
            Self::OutputTooLarge { .. } => ErrorCode::OutputTooLarge,
        }
    }
}

#[cfg(test)]
mod contract_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("secret detail: disk /dev/sda1 failed")]
    struct Bug;

    impl PublicError for Bug {
        fn code(&self) -> ErrorCode {
            ErrorCode::Internal
        }
    }

    #[test]
    fn test_internal_detail_never_reaches_the_message() {
        assert_eq!(Bug.public_message(), INTERNAL_MESSAGE);
        let p = crate::params::ParamError::Invalid {
            name: "w".into(),
            reason: "is not a number".into(),
        };
        assert_eq!(p.code().http_status(), 400);
        assert_eq!(p.public_message(), "parameter `w` is not a number");
    }
}
