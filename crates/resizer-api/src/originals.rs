//! `/v1/originals`: a tenant's stored images, by name, under its API key.
//! Uploads are admitted, bounded, probed and limited exactly like
//! `POST /v1/resize` bodies, and metered; the tenant always comes from the key.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use resizer_core::ErrorCode;
use resizer_core::ids::{RequestId, to_hex};
use resizer_core::time::now_unix_ms;
use resizer_identity::OriginalsQuota;
use resizer_originals::{OriginalMeta, OriginalName, OriginalStore, Page, Quota};
use sha2::{Digest, Sha256};

use crate::admission::{admit, authorize};
use crate::body::{drain_after_refusal, read_body};
use crate::error::{ApiError, ErrorBody};
use crate::metering::{Meter, answer};
use crate::openapi::ImageBytes;
use crate::public::{ApiState, Inner};
use crate::variant_cache::VariantCache;

/// Delivery by URL on this node: where originals are, their quota, the variant cache.
pub struct Delivery {
    /// The originals.
    pub store: Arc<dyn OriginalStore>,
    /// The deployment's bound on a tenant's stored originals (a tenant's own
    /// setting, where it has one, replaces either field).
    pub quota: Quota,
    /// Finished variants.
    pub cache: VariantCache,
    /// `max-age` of variant answers, seconds (a signed URL's `exp` lowers it).
    pub max_age_secs: u64,
}

/// The quota of a tenant: its own setting where it has one, else the deployment's.
fn tenant_quota(deployment: Quota, own: OriginalsQuota) -> Quota {
    Quota {
        max_bytes: own.max_bytes.unwrap_or(deployment.max_bytes),
        max_count: own.max_count.unwrap_or(deployment.max_count),
    }
}

/// The node's delivery settings, or 503 where originals are not served.
pub(crate) fn delivery(s: &Inner) -> Result<&Delivery, ApiError> {
    s.delivery.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::DependencyUnavailable,
            "originals are not served by this node",
        )
        .retry_after(60)
    })
}

/// Parses a name from the path; a bad one is a 400 naming the rule.
pub(crate) fn name_of(raw: &str) -> Result<OriginalName, ApiError> {
    OriginalName::parse(raw)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, format!("invalid name: {e}")))
}

fn not_found(name: &OriginalName) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no original named {:?}", name.as_str()),
    )
}

/// Stores an image under a name (replacing any of that name).
#[utoipa::path(
    put,
    path = "/v1/originals/{name}",
    tag = "delivery",
    operation_id = "put_original",
    params(("name" = String, Path, description = "1–255 bytes of `[A-Za-z0-9._/-]`, no `.` or `..` segment, no leading, trailing or double `/`.")),
    request_body(
        description = "The image: any format `POST /v1/resize` takes, within the same limits.",
        content((ImageBytes = "application/octet-stream"), (ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"), (ImageBytes = "image/avif"), (ImageBytes = "image/heic"), (ImageBytes = "image/gif")),
    ),
    responses(
        (status = 201, description = "Stored.", body = OriginalMeta,
            headers(("Location" = String, description = "The original's metadata URL."))),
        (status = 400, description = "Bad name (`invalid_parameter`) or an empty body (`empty_body`).", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended, or storing it would pass the tenant's quota (`quota_exceeded`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time.", body = ErrorBody),
        (status = 413, description = "The body is over the size limit.", body = ErrorBody),
        (status = 415, description = "Not an image format we read.", body = ErrorBody),
        (status = 422, description = "Too many pixels (or frames).", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate or concurrency limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Overloaded, or the store is unavailable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn put_original(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(name): Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let received_unix_ms = now_unix_ms();
    let mut meter = Meter::new("PUT /v1/originals");
    let mut body_slot = Some(body);
    let result = put_metered(s, &headers, &name, &mut body_slot, &mut meter).await;
    let result = answer(s, meter, request_id, received_unix_ms, &uri, result);
    drain_after_refusal(result.is_err(), &headers, body_slot, s.config.max_body_bytes).await;
    result
}

async fn put_metered(
    s: &Inner,
    headers: &HeaderMap,
    raw_name: &str,
    body_slot: &mut Option<Body>,
    meter: &mut Meter,
) -> Result<Response, ApiError> {
    let admitted = admit(s, headers, meter)?;
    let name = name_of(raw_name)?;
    let d = delivery(s)?;
    let body = body_slot
        .take()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the body was already read"))?;
    let input = read_body(headers, body, s.config.max_body_bytes, s.config.body_read_timeout).await?;
    meter.input_bytes = input.len() as u64;
    if input.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty; send the image bytes",
        ));
    }
    let probe = resizer_imaging::check(&input, &s.config.limits)?;
    meter.input = Some((probe.format, probe.width, probe.height));
    if probe.frames > 1 {
        resizer_imaging::check_animation(&probe, probe.width, probe.height, &s.config.limits)?;
    }
    let meta = OriginalMeta {
        name: name.to_string(),
        bytes: input.len() as u64,
        format: probe.format.as_str().to_string(),
        width: probe.width,
        height: probe.height,
        frames: probe.frames,
        content_hash: to_hex(&Sha256::digest(&input)),
        uploaded_at: resizer_originals::local::uploaded_now(),
    };
    let replaced = d
        .store
        .put(
            &admitted.auth.tenant_id,
            meta.clone(),
            input,
            tenant_quota(d.quota, admitted.auth.originals_quota),
        )
        .await?;
    tracing::info!(tenant_id = %admitted.auth.tenant_id, bytes = meta.bytes, replaced = replaced.is_some(), "original stored");
    let mut response = (StatusCode::CREATED, Json(meta)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/originals/{name}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// An original's metadata (`HEAD`: its headers only).
#[utoipa::path(
    get,
    path = "/v1/originals/{name}",
    tag = "delivery",
    operation_id = "get_original",
    params(("name" = String, Path, description = "The original's name.")),
    responses(
        (status = 200, description = "Its metadata.", body = OriginalMeta),
        (status = 400, description = "Bad name.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 404, description = "The tenant has no original of that name.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The store is unavailable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn get_original(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let auth = authorize(s, &headers)?;
    let name = name_of(&name)?;
    let meta = delivery(s)?
        .store
        .head(&auth.tenant_id, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(meta).into_response())
}

/// Deletes an original; its variants stop being served at once.
#[utoipa::path(
    delete,
    path = "/v1/originals/{name}",
    tag = "delivery",
    operation_id = "delete_original",
    params(("name" = String, Path, description = "The original's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "Bad name.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 404, description = "The tenant has no original of that name.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The store is unavailable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn delete_original(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let auth = authorize(s, &headers)?;
    let name = name_of(&name)?;
    if !delivery(s)?.store.delete(&auth.tenant_id, &name).await? {
        return Err(not_found(&name));
    }
    tracing::info!(tenant_id = %auth.tenant_id, "original deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET|HEAD|PUT|DELETE /v1/originals/{name}`, one route: axum routes `HEAD` to `GET`.
pub(crate) async fn original_route(
    method: Method,
    state: State<ApiState>,
    request_id: Extension<RequestId>,
    headers: HeaderMap,
    name: Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    match method {
        Method::PUT => put_original(state, request_id, headers, name, uri, body).await,
        Method::DELETE => delete_original(state, headers, name).await,
        _ => get_original(state, headers, name).await,
    }
}

/// The query of `GET /v1/originals`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only names starting with this.
    prefix: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The caller's originals, by name, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/originals",
    tag = "delivery",
    operation_id = "list_originals",
    params(ListQuery),
    responses(
        (status = 200, description = "One page.", body = Page),
        (status = 400, description = "Bad parameters.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The store is unavailable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn list_originals(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let auth = authorize(s, &headers)?;
    let Query(q) = Query::<ListQuery>::try_from_uri(&uri).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("bad query: {}", e.body_text()),
        )
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`limit` must be from 1 to 1000",
        ));
    }
    let prefix = q.prefix.unwrap_or_default();
    if !resizer_originals::name::valid_prefix(&prefix) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`prefix` may hold only name characters",
        ));
    }
    if let Some(c) = &q.cursor
        && OriginalName::parse(c).is_err()
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`cursor` is not one this API gave",
        ));
    }
    let page = delivery(s)?
        .store
        .list(&auth.tenant_id, &prefix, q.cursor.as_deref(), limit)
        .await?;
    Ok(Json(page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_tenants_own_quota_replaces_only_the_fields_it_sets() {
        let deployment = Quota {
            max_bytes: 100,
            max_count: 10,
        };
        let own = |max_bytes, max_count| OriginalsQuota { max_bytes, max_count };
        let q = tenant_quota(deployment, own(None, None));
        assert_eq!((q.max_bytes, q.max_count), (100, 10));
        let q = tenant_quota(deployment, own(Some(5), None));
        assert_eq!((q.max_bytes, q.max_count), (5, 10));
        let q = tenant_quota(deployment, own(Some(1000), Some(0)));
        assert_eq!((q.max_bytes, q.max_count), (1000, 0));
    }
}
