//! The one place errors become HTTP responses:
//! `{"error": {"code": "snake_case_code", "message": "human sentence"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resizer_core::params::ParamError;
use resizer_core::{ErrorCode, PublicError};
use resizer_identity::{AuthError, IdentityError};
use resizer_imaging::ImagingError;
use resizer_jobs::RunError;
use resizer_queue::QueueError;
use resizer_usage::query::QueryError;

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Public code; decides the status.
    pub code: ErrorCode,
    /// Public message; never contains secrets or internal detail.
    pub message: String,
    /// Seconds for `Retry-After`, on 429 and 503.
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only (internal errors and failed
    /// dependencies); [`crate::observe`] logs it once, with the request id.
    pub detail: Option<String>,
}

/// The unsent detail of an error response, handed from the response to the
/// middleware that logs it.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

impl ApiError {
    /// Creates an error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    /// The client's view of `e`; for internal and dependency errors its full
    /// text is kept as the detail to log.
    pub fn public(e: &impl PublicError) -> Self {
        let code = e.code();
        let mut error = Self::new(code, e.public_message());
        error.retry_after = e.retry_after();
        if matches!(code, ErrorCode::Internal | ErrorCode::DependencyUnavailable) {
            error.detail = Some(e.to_string());
        }
        error
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The refusal for a full queue, pool or staging area: immediate, retryable.
    pub fn overloaded(what: &str) -> Self {
        Self::new(
            ErrorCode::Overloaded,
            format!("the service is overloaded ({what}); retry shortly"),
        )
        .retry_after(1)
    }
}

/// Every error answer's body: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorObject,
}

/// The error itself.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable, machine-readable; see docs/errors.md.
    pub code: ErrorCode,
    /// A sentence for people; may change between versions.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(ErrorDetail(detail));
        }
        response
    }
}

/// Every crate's error reaches the client through its [`PublicError`]
/// contract; internal detail rides along, unsent, for the middleware to log.
macro_rules! public_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                Self::public(&e)
            }
        }
    )*};
}

public_errors!(
    ParamError,
    ImagingError,
    IdentityError,
    AuthError,
    QueueError,
    RunError,
    QueryError,
    resizer_originals::OriginalsError,
);

/// Answers unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// Answers known routes with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
}
