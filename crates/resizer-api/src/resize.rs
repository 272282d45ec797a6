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
use resizer_core::params::{FormatChoice, Frames, ResizeParams};
use resizer_core::time::now_unix_ms;
use resizer_core::trace::TraceContext;
use resizer_core::{ErrorCode, ImageFormat};
use resizer_jobs::{JobOutput, JobRequest, RunError};

use crate::admission::admit;
use crate::body::{drain_after_refusal, read_body};
use crate::error::{ApiError, ErrorBody};
use crate::metering::{Meter, answer};
use crate::openapi::ImageBytes;
use crate::public::{ApiState, Inner, reject};

/// The query of `POST /v1/resize`, for the OpenAPI document. The handler
/// reads the pairs itself ([`ResizeParams::parse`]: strict digits, no repeats);
/// a test holds the two to the same names and values.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ResizeQuery {
    /// Output width in pixels (decimal digits), up to the output side limit. `width`, `height` or both.
    #[param(minimum = 1, maximum = 8192)]
    width: Option<u32>,
    /// Output height in pixels (decimal digits), up to the output side limit.
    #[param(minimum = 1, maximum = 8192)]
    height: Option<u32>,
    /// How the image fits the box when both sides are given; default `contain`.
    #[param(inline)]
    fit: Option<resizer_core::params::Fit>,
    /// Output format; default `auto`: AVIF or WebP when `Accept` names them (WebP for an animation), else the input's (JPEG for HEIC).
    #[param(inline)]
    format: Option<OutputFormat>,
    /// Encoder quality of JPEG, WebP and AVIF, 1–100; default 80 (AVIF 55; PNG is lossless and ignores it).
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
    /// Whether the output may be larger than the input; default `false`.
    enlarge: Option<bool>,
    /// An animated GIF or WebP: `all` (default) keeps every frame, its timing and the loop count in a GIF or WebP output (other formats take the first frame); `first` takes a still.
    #[param(inline)]
    frames: Option<resizer_core::params::Frames>,
}

/// The `format` values, as the query spells them.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OutputFormat {
    /// Negotiated from the input and `Accept`.
    Auto,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF (still).
    Avif,
    /// GIF.
    Gif,
}

/// Resize one image.
///
/// The body is the image's bytes. Limits (this node's settings) are in the
/// request body's description; EXIF orientation is applied and metadata
/// stripped. Every request with a valid key is metered, whatever its answer.
#[utoipa::path(
    post,
    path = "/v1/resize",
    tag = "resize",
    operation_id = "resize",
    params(
        ResizeQuery,
        ("Accept" = Option<String>, Header, description = "With `format=auto`: the formats the client takes, by q-value."),
    ),
    request_body(
        description = "The image: JPEG, PNG, WebP (still or animated), AVIF, HEIC or GIF (still or animated).",
        content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"), (ImageBytes = "image/avif"), (ImageBytes = "image/heic"), (ImageBytes = "image/gif"), (ImageBytes = "application/octet-stream")),
    ),
    responses(
        (status = 200, description = "The resized image.",
            content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"), (ImageBytes = "image/avif"), (ImageBytes = "image/gif")),
            headers(
                ("X-Request-Id" = String, description = "This request's id, also in its usage record and logs."),
                ("Vary" = String, description = "`accept` when the format was negotiated."),
            )),
        (status = 400, description = "Bad parameters (`invalid_parameter`, `output_too_large`) or an empty body (`empty_body`).", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time.", body = ErrorBody),
        (status = 413, description = "The body is over the size limit.", body = ErrorBody),
        (status = 415, description = "Not an image format we read.", body = ErrorBody),
        (status = 422, description = "The image does not decode, or has too many pixels (an animation: too many frames, or frames with too many pixels together).", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate or concurrency limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Overloaded or a dependency is down.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 504, description = "The job missed its deadline.", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
    let mut meter = Meter::new("POST /v1/resize");
    let mut body_slot = Some(body);
    let result = resize_metered(s, &request_id, trace, &headers, &uri, &mut body_slot, &mut meter).await;
    let result = answer(s, meter, request_id, received_unix_ms, &uri, result);
    drain_after_refusal(result.is_err(), &headers, body_slot, s.config.max_body_bytes).await;
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
    crate::flags::check_format(&admitted.auth, &params)?;
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
        fast_shrink_on_load: crate::flags::fast_shrink_on_load(&admitted.auth),
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
pub(crate) fn check_input(
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
    let plan = resizer_imaging::plan(ow, oh, params, limits.max_output_side)?;
    let animated = probe.frames > 1 && params.frames == Frames::All;
    let format = match params.format {
        FormatChoice::Fixed(f) => f,
        FormatChoice::Auto => negotiate(
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            probe.format,
            animated,
        ),
    };
    resizer_imaging::check_output(format, plan.out_w, plan.out_h)?;
    if resizer_imaging::animates(&probe, params, format) {
        resizer_imaging::check_animation(&probe, plan.out_w, plan.out_h, limits)?;
    }
    Ok(format)
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
pub(crate) fn job_error(e: RunError) -> ApiError {
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
