//! The internal port of an API node in distributed mode: workers fetch staged
//! input here and hand results back.
//!
//! Each request carries the job's own token (HMAC of the job id with the
//! cluster secret, see [`resizer_core::capability`]), which opens that job and
//! no other: workers never hold the cluster secret. A result for a job nobody
//! waits for (a duplicate after redelivery, a request already answered) is dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resizer_core::ErrorCode;
use resizer_core::ids::JobId;
use resizer_jobs::results::ResultWaiters;
use resizer_jobs::staging::StagingArea;
use resizer_jobs::transport::{META_HEADER, OUTCOME_HEADER, routes};
use resizer_jobs::{JobFailure, JobOutput, JobOutputMeta};

use axum::extract::Request;
use axum::middleware::Next;
use resizer_core::capability::JobSigner;

use crate::admission::bearer;
use crate::body::read_body;
use crate::error::{self, ApiError};

/// What the internal handlers share.
#[derive(Clone)]
pub struct InternalState {
    signer: JobSigner,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    max_result_bytes: u64,
}

impl InternalState {
    /// Serves each job's staged input and result slot to holders of its
    /// token from `signer`; results above `max_result_bytes` are refused.
    pub fn new(
        signer: JobSigner,
        staging: Arc<StagingArea>,
        results: Arc<ResultWaiters>,
        max_result_bytes: u64,
    ) -> Self {
        Self {
            signer,
            staging,
            results,
            max_result_bytes,
        }
    }

    /// Returns the internal router.
    pub fn router(self) -> Router {
        Router::new()
            .route(routes::STAGING, get(fetch_staged))
            .route(routes::RESULTS, post(deliver_result))
            .route_layer(axum::middleware::from_fn_with_state(
                self.signer.clone(),
                require_job_token,
            ))
            .route(
                "/healthz",
                get(|| async { Json(serde_json::json!({"status": "ok"})) }),
            )
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .with_state(self)
    }
}

/// Lets through a request whose bearer token is the token of the job (or
/// staging key, the same id) its path ends with.
async fn require_job_token(State(signer): State<JobSigner>, request: Request, next: Next) -> Response {
    let job = request.uri().path().rsplit('/').next().unwrap_or_default();
    match bearer(request.headers()) {
        Some(token) if !job.is_empty() && signer.verify(job, token) => next.run(request).await,
        _ => ApiError::new(
            ErrorCode::Unauthenticated,
            "a valid token for this job is required",
        )
        .into_response(),
    }
}

async fn fetch_staged(State(state): State<InternalState>, Path(key): Path<String>) -> Response {
    match state.staging.get(&key) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(bytes),
        )
            .into_response(),
        None => ApiError::new(ErrorCode::NotFound, "nothing is staged under this key").into_response(),
    }
}

async fn deliver_result(
    State(state): State<InternalState>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let job_id = JobId::parse(&job_id).ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such job"))?;
    let bytes = read_body(&headers, body, state.max_result_bytes, Duration::from_secs(10)).await?;
    let outcome = headers.get(OUTCOME_HEADER).and_then(|v| v.to_str().ok());
    let result = match outcome {
        Some("ok") => {
            let meta: JobOutputMeta = headers
                .get(META_HEADER)
                .and_then(|v| serde_json::from_slice(v.as_bytes()).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidParameter,
                        "a valid result metadata header is required",
                    )
                })?;
            Ok(JobOutput { bytes, meta })
        }
        Some("failed") => Err(serde_json::from_slice::<JobFailure>(&bytes)
            .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "a failure must be a JSON job failure"))?),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "the outcome header must be `ok` or `failed`",
            ));
        }
    };
    let claimed = state.results.complete(&job_id, result);
    Ok((StatusCode::OK, Json(serde_json::json!({ "claimed": claimed }))).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "cluster-secret-0123456789";

    async fn fetch(router: &Router, key: &str, token: &str) -> u16 {
        let request = HttpRequest::get(routes::staging_url("", key))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        router.clone().oneshot(request).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn test_a_job_token_opens_that_job_and_the_cluster_secret_opens_nothing() {
        let staging = StagingArea::new(1 << 20);
        let signer = JobSigner::new(SECRET);
        let (a, b) = (JobId::random().to_string(), JobId::random().to_string());
        let _ga = staging
            .put(a.clone(), bytes::Bytes::from_static(b"input a"))
            .unwrap();
        let _gb = staging
            .put(b.clone(), bytes::Bytes::from_static(b"input b"))
            .unwrap();
        let router = InternalState::new(signer.clone(), staging, ResultWaiters::new(), 1 << 20).router();
        assert_eq!(fetch(&router, &a, &signer.token(&a)).await, 200);
        assert_eq!(
            fetch(&router, &b, &signer.token(&a)).await,
            401,
            "a's token opened b"
        );
        assert_eq!(
            fetch(&router, &a, SECRET).await,
            401,
            "the cluster secret is not a job token"
        );
        assert_eq!(fetch(&router, &a, "").await, 401);
        // Delivering a result needs the job's token too.
        let deliver = |token: String| {
            HttpRequest::post(routes::result_url("", &a))
                .header("authorization", format!("Bearer {token}"))
                .header(OUTCOME_HEADER, "failed")
                .body(Body::from(r#"{"code":"internal","message":"x"}"#))
                .unwrap()
        };
        let wrong = router.clone().oneshot(deliver(signer.token(&b))).await.unwrap();
        assert_eq!(wrong.status(), 401);
        let right = router.clone().oneshot(deliver(signer.token(&a))).await.unwrap();
        assert_eq!(right.status(), 200);
    }
}
