//! The internal port of an API node in distributed mode: workers fetch staged
//! input here and hand results back, behind the cluster secret.
//!
//! Staging keys and job ids are unguessable, and the secret keeps everyone
//! but the cluster's own workers out; a result for a job nobody waits for
//! (a duplicate after redelivery, a request already answered) is dropped.

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
use resizer_queue::transport::{META_HEADER, OUTCOME_HEADER};
use resizer_queue::{JobFailure, JobOutput, JobOutputMeta};

use crate::admin::{AdminToken, require_cluster_secret};
use crate::error::{self, ApiError};
use crate::public::read_body;
use crate::results::ResultWaiters;
use crate::staging::StagingArea;

/// What the internal handlers share.
#[derive(Clone)]
pub struct InternalState {
    secret: AdminToken,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    max_result_bytes: u64,
}

impl InternalState {
    /// Serves `staging` and `results` to holders of `secret`; results above
    /// `max_result_bytes` are refused.
    pub fn new(
        secret: AdminToken,
        staging: Arc<StagingArea>,
        results: Arc<ResultWaiters>,
        max_result_bytes: u64,
    ) -> Self {
        Self {
            secret,
            staging,
            results,
            max_result_bytes,
        }
    }

    /// Returns the internal router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/internal/v1/staging/{key}", get(fetch_staged))
            .route("/internal/v1/results/{job_id}", post(deliver_result))
            .route_layer(axum::middleware::from_fn_with_state(
                self.secret.clone(),
                require_cluster_secret,
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
