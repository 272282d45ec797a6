//! `POST /v1/resize`: admit, read, check, run the job, answer; metered either way.

use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use resizer_core::format::negotiate;
use resizer_core::ids::RequestId;
use resizer_core::params::{FormatChoice, ResizeParams};
use resizer_core::time::now_unix_ms;
use resizer_core::trace::TraceContext;
use resizer_core::{ErrorCode, ImageFormat};
use resizer_jobs::{JobOutput, JobRequest, RunError};

use crate::admission::admit;
use crate::body::{drain_unread, read_body};
use crate::error::ApiError;
use crate::metering::{Meter, meter_request};
use crate::public::{ApiState, Inner, reject};

pub(crate) async fn resize(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    Extension(trace): Extension<TraceContext>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let received_unix_ms = now_unix_ms();
    let mut meter = Meter::default();
    let mut body_slot = Some(body);
    let mut result = resize_metered(s, &request_id, trace, &headers, &uri, &mut body_slot, &mut meter).await;
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.code.http_status(),
    };
    if let Err(e) = meter_request(s, meter, status, request_id, received_unix_ms, &uri) {
        result = Err(e);
    }
    if result.is_err()
        && let Some(unread) = body_slot
    {
        drain_unread(&headers, unread, s.config.max_body_bytes).await;
    }
    result
}

/// The request's work, noting in `meter` what it used; the body stays in
/// `body_slot` when refused before reading it.
async fn resize_metered(
    s: &Inner,
    request_id: &RequestId,
    trace: TraceContext,
    headers: &HeaderMap,
    uri: &Uri,
    body_slot: &mut Option<Body>,
    meter: &mut Meter,
) -> Result<Response, ApiError> {
    let cfg = &s.config;
    let admitted = admit(s, headers, meter)?;
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "the query string is malformed"))?;
    let params = ResizeParams::parse(&pairs, cfg.limits.max_output_side)?;
    let body = body_slot
        .take()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the body was already read"))?;
    let input = read_input(s, headers, body, meter).await?;
    let output = check_input(s, headers, &input, &params, meter)?;
    let negotiated = params.format == FormatChoice::Auto;
    let request = JobRequest {
        tenant_id: admitted.auth.tenant_id.clone(),
        request_id: request_id.clone(),
        trace: Some(trace),
        params,
        output,
        input,
        deadline: Instant::now() + cfg.job_deadline,
    };
    let ran = s.jobs.run(request).await.map_err(job_error)?;
    meter.joined = ran.joined;
    meter.output = Some(ran.output.clone());
    tracing::debug!(
        request_id = %request_id,
        tenant_id = %admitted.auth.tenant_id,
        width = ran.output.meta.width,
        height = ran.output.meta.height,
        "resized"
    );
    Ok(respond(ran.output, negotiated))
}

/// The body, bounded while reading; an empty one is refused.
async fn read_input(
    s: &Inner,
    headers: &HeaderMap,
    body: Body,
    meter: &mut Meter,
) -> Result<Bytes, ApiError> {
    let input = read_body(headers, body, s.config.max_body_bytes, s.config.body_read_timeout).await?;
    meter.input_bytes = input.len() as u64;
    if input.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty; send the image bytes",
        ));
    }
    Ok(input)
}

/// Reads the header (format, size, orientation) before any decode, enforces
/// the pixel limit, plans the output and negotiates its format.
fn check_input(
    s: &Inner,
    headers: &HeaderMap,
    input: &[u8],
    params: &ResizeParams,
    meter: &mut Meter,
) -> Result<ImageFormat, ApiError> {
    let limits = &s.config.limits;
    let probe = resizer_imaging::check(input, limits)?;
    meter.input = Some((probe.format, probe.width, probe.height));
    let (ow, oh) = probe.oriented_size();
    resizer_imaging::plan(ow, oh, params, limits.max_output_side)?;
    Ok(match params.format {
        FormatChoice::Fixed(f) => f,
        FormatChoice::Auto => negotiate(
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            probe.format,
        ),
    })
}

/// The image; with `format=auto` the answer depends on `Accept`, present or
/// not, and caches must know.
fn respond(output: JobOutput, negotiated: bool) -> Response {
    let mut response = Response::new(Body::from(output.bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.meta.format.mime()),
    );
    if negotiated {
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
    }
    response
}

/// A job that produced no image, as the client hears it; refusals of ours
/// (full, unavailable, too late) are counted by reason.
fn job_error(e: RunError) -> ApiError {
    let reason = match &e {
        RunError::StagingFull => Some("staging_full"),
        RunError::Queue(_) => Some("queue"),
        RunError::DeadlineExceeded => Some("deadline"),
        RunError::Lost | RunError::Failed(_) => None,
    };
    let error = ApiError::from(e);
    match reason {
        Some(reason) => reject(reason, error),
        None => error,
    }
}
