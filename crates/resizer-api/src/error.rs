//! The one place errors become HTTP responses:
//! `{"error": {"code": "snake_case_code", "message": "human sentence"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resizer_core::ErrorCode;
use resizer_core::params::ParamError;
use resizer_identity::{AuthError, IdentityError};
use resizer_imaging::ImagingError;
use resizer_jobs::RunError;
use resizer_queue::QueueError;

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Public code; decides the status.
    pub code: ErrorCode,
    /// Public message; never contains secrets or internal detail.
    pub message: String,
    /// Seconds for `Retry-After`, on 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Creates an error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        let code = match e {
            ParamError::Invalid { .. } => ErrorCode::InvalidParameter,
            ParamError::OutputTooLarge { .. } => ErrorCode::OutputTooLarge,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ImagingError> for ApiError {
    fn from(e: ImagingError) -> Self {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "imaging error");
            return Self::new(code, "an internal error occurred");
        }
        Self::new(code, e.to_string())
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        let code = e.code();
        if let IdentityError::Store(_) = e {
            tracing::error!(error = %e, "identity store error");
            return Self::new(code, "the identity store is unavailable").retry_after(1);
        }
        Self::new(code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => Self::new(ErrorCode::Unauthenticated, e.to_string()),
            AuthError::Suspended(_) => Self::new(ErrorCode::TenantSuspended, e.to_string()),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Full => Self::overloaded("job queue full"),
            QueueError::Unavailable(_) | QueueError::Closed => Self::new(
                ErrorCode::DependencyUnavailable,
                "the job queue is unavailable; retry shortly",
            )
            .retry_after(1),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::StagingFull => Self::overloaded("staging area full"),
            RunError::Queue(q) => q.into(),
            RunError::DeadlineExceeded => Self::new(ErrorCode::DeadlineExceeded, e.to_string()),
            RunError::Lost => Self::new(ErrorCode::Internal, e.to_string()),
            // A worker's internal detail stays in the worker's log.
            RunError::Failed(f) if f.code == ErrorCode::Internal => {
                Self::new(ErrorCode::Internal, "an internal error occurred")
            }
            RunError::Failed(f)
                if matches!(f.code, ErrorCode::Overloaded | ErrorCode::DependencyUnavailable) =>
            {
                Self::new(f.code, f.message).retry_after(1)
            }
            RunError::Failed(f) => Self::new(f.code, f.message),
        }
    }
}

/// Answers unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// Answers known routes with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
}
