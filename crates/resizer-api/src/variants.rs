//! `GET|HEAD /v1/img/{tenant_id}/{name}`: a variant of a stored original,
//! made on first request and cached. Public when signed (`sig`, optional
//! `exp`), else for the tenant's bearer key. A bad or expired signature is
//! refused from the auth cache alone: no store read, no imaging.
//!
//! The ETag derives from the original's content hash, the normalised
//! parameters and the output format, so `If-None-Match` is answered from the
//! original's metadata without reading it or touching the imaging pool, and
//! a replaced original gets new ETags at once.

use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use resizer_core::format::negotiate;
use resizer_core::ids::{RequestId, TenantId, to_hex};
use resizer_core::params::{FormatChoice, Frames, ResizeParams};
use resizer_core::signing::{EXP, SIG};
use resizer_core::time::{now_unix_ms, now_unix_secs};
use resizer_core::trace::TraceContext;
use resizer_core::{ErrorCode, ImageFormat};
use resizer_identity::AuthError;
use resizer_jobs::JobRequest;
use resizer_originals::{OriginalMeta, OriginalName};
use sha2::{Digest, Sha256};

use crate::admission::{Admitted, admit, admit_with};
use crate::error::{ApiError, ErrorBody};
use crate::metering::{Meter, answer};
use crate::openapi::ImageBytes;
use crate::originals::{Delivery, delivery, name_of};
use crate::public::{ApiState, Inner, reject};
use crate::resize::{ResizeQuery, check_input, job_error};
use crate::variant_cache::Variant;

/// One variant of a stored original.
#[utoipa::path(
    get,
    path = "/v1/img/{tenant_id}/{name}",
    tag = "delivery",
    operation_id = "get_variant",
    params(
        ("tenant_id" = TenantId, Path, description = "The original's tenant."),
        ("name" = String, Path, description = "The original's name."),
        ResizeQuery,
        ("exp" = Option<u64>, Query, description = "Unix seconds after which the signed URL is refused."),
        ("sig" = Option<String>, Query, description = "Unpadded base64url HMAC-SHA256 of the path, `?`, and the other parameters sorted, with a signing secret of the tenant. Without it, the tenant's bearer key is required."),
        ("Accept" = Option<String>, Header, description = "With `format=auto`: the formats the client takes."),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client holds; a match is a 304."),
    ),
    responses(
        (status = 200, description = "The variant.",
            content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"), (ImageBytes = "image/avif"), (ImageBytes = "image/gif")),
            headers(
                ("ETag" = String, description = "Strong; from the original's content, the parameters and the format."),
                ("Cache-Control" = String, description = "`public, max-age=…, immutable` when signed; `private, max-age=…` with a key."),
                ("Vary" = String, description = "`accept` when the format was negotiated."),
            )),
        (status = 304, description = "The client's copy is current.",
            headers(("ETag" = String, description = "The variant's ETag."))),
        (status = 400, description = "Bad parameters or name.", body = ErrorBody),
        (status = 401, description = "Neither a signature nor a bearer key.", body = ErrorBody),
        (status = 403, description = "Bad or expired signature, or a key of another tenant (`invalid_signature`); the tenant is suspended.", body = ErrorBody),
        (status = 404, description = "No such original.", body = ErrorBody),
        (status = 422, description = "The original has too many pixels for this node's limits.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate or concurrency limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Overloaded or a dependency is down.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 504, description = "The job missed its deadline.", body = ErrorBody),
    ),
    security((), ("api_key" = [])),
)]
pub(crate) async fn variant(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    Extension(trace): Extension<TraceContext>,
    headers: HeaderMap,
    Path((tenant, name)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let received_unix_ms = now_unix_ms();
    let mut meter = Meter::new("GET /v1/img");
    let target = Target {
        tenant: &tenant,
        name: &name,
        uri: &uri,
        headers: &headers,
    };
    let result = variant_metered(s, &request_id, trace, target, &mut meter).await;
    answer(s, meter, request_id, received_unix_ms, &uri, result)
}

struct Target<'a> {
    tenant: &'a str,
    name: &'a str,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

/// What the URL asks for, once its caller is known.
struct Ask {
    tenant: TenantId,
    name: OriginalName,
    params: ResizeParams,
    /// `Cache-Control` of the answer.
    cache_control: String,
    /// The tenant's `shrink_on_load` flag.
    fast_shrink_on_load: bool,
}

async fn variant_metered(
    s: &Inner,
    request_id: &RequestId,
    trace: TraceContext,
    t: Target<'_>,
    meter: &mut Meter,
) -> Result<Response, ApiError> {
    let d = delivery(s)?;
    let (admitted, ask) = authorize_url(s, d, &t, meter)?;
    let Some(meta) = d.store.head(&ask.tenant, &ask.name).await? else {
        return Err(not_found());
    };
    meter.input = ImageFormat::parse(&meta.format).map(|f| (f, meta.width, meta.height));
    let (format, negotiated) = output_format(&meta, &ask.params, t.headers);
    let etag = etag(&meta, &ask.params, format);
    let fresh = Fresh {
        etag: &etag,
        cache_control: &ask.cache_control,
        negotiated,
    };
    if if_none_match(t.headers, &etag) {
        metrics::counter!("resizer_variant_not_modified_total").increment(1);
        meter.cache = Some("revalidated");
        return Ok(fresh.respond(StatusCode::NOT_MODIFIED, None));
    }
    if let Some(v) = d.cache.get(&ask.tenant, &etag) {
        meter.cached = Some((v.format, v.width, v.height, v.bytes.len() as u64));
        meter.cache = Some("hit");
        return Ok(fresh.respond(StatusCode::OK, Some(v)));
    }
    meter.cache = Some("miss");
    let job = Job {
        request_id,
        trace,
        headers: t.headers,
    };
    let variant = make_variant(s, d, job, &ask, &meta, meter).await?;
    drop(admitted);
    d.cache.insert(&ask.tenant, &etag, variant.clone());
    Ok(fresh.respond(StatusCode::OK, Some(variant)))
}

/// What a miss's job carries from its request.
struct Job<'a> {
    request_id: &'a RequestId,
    trace: TraceContext,
    headers: &'a HeaderMap,
}

/// Reads the original (the one `meta` describes) and runs its job, as a resize would.
async fn make_variant(
    s: &Inner,
    d: &Delivery,
    job: Job<'_>,
    ask: &Ask,
    meta: &OriginalMeta,
    meter: &mut Meter,
) -> Result<Variant, ApiError> {
    let Some((stored, input)) = d.store.get(&ask.tenant, &ask.name).await? else {
        return Err(not_found());
    };
    if stored.content_hash != meta.content_hash {
        // Replaced between the two reads: the client retries and gets the new one's ETag.
        return Err(ApiError::new(
            ErrorCode::DependencyUnavailable,
            "the original changed while being read; retry",
        )
        .retry_after(1));
    }
    meter.input_bytes = input.len() as u64;
    let format = check_input(s, job.headers, &input, &ask.params, meter)?;
    let request = JobRequest {
        tenant_id: ask.tenant.clone(),
        request_id: job.request_id.clone(),
        trace: Some(job.trace),
        params: ask.params.clone(),
        output: format,
        fast_shrink_on_load: ask.fast_shrink_on_load,
        input,
        deadline: Instant::now() + s.config.job_deadline,
    };
    let ran = s.jobs.run(request).await.map_err(job_error)?;
    meter.joined = ran.joined;
    meter.output = Some(ran.output.clone());
    Ok(Variant {
        bytes: ran.output.bytes,
        format: ran.output.meta.format,
        width: ran.output.meta.width,
        height: ran.output.meta.height,
    })
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such original")
}

fn bad_signature(why: &str) -> ApiError {
    reject(
        "invalid_signature",
        ApiError::new(ErrorCode::InvalidSignature, why.to_string()),
    )
}

/// Who asks (a signature of the tenant, or its bearer key) and for what;
/// admitted like a resize (node room, tenant rate and share).
fn authorize_url(
    s: &Inner,
    d: &Delivery,
    t: &Target<'_>,
    meter: &mut Meter,
) -> Result<(Admitted, Ask), ApiError> {
    let tenant = TenantId::parse(t.tenant).ok_or_else(not_found)?;
    let name = name_of(t.name)?;
    let Query(mut pairs) = Query::<Vec<(String, String)>>::try_from_uri(t.uri)
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "the query string is malformed"))?;
    let sig = take_once(&mut pairs, SIG)?;
    let exp = pairs.iter().find(|(k, _)| k == EXP).map(|(_, v)| v.clone());
    let path = format!("/v1/img/{tenant}/{name}");
    let admitted = match &sig {
        Some(sig) => admit_with(s, meter, |meter| {
            let verified = s.auth.verify_signed(&tenant, &path, &pairs, sig);
            let signer = match &verified {
                Ok(ctx) => Some(ctx),
                Err(AuthError::Suspended(ctx)) => Some(&**ctx),
                Err(AuthError::Unauthenticated) => None,
            };
            if let Some(ctx) = signer {
                meter.auth = Some((ctx.tenant_id.clone(), ctx.key_id.clone()));
            }
            verified.map_err(|e| match e {
                AuthError::Unauthenticated => bad_signature(
                    "the signature does not match this URL under any of the tenant's signing keys",
                ),
                suspended => suspended.into(),
            })
        })?,
        None => {
            let admitted = admit(s, t.headers, meter)?;
            if admitted.auth.tenant_id != tenant {
                return Err(bad_signature(
                    "this URL needs a signature, or an API key of its own tenant",
                ));
            }
            admitted
        }
    };
    let remaining = expiry(exp.as_deref())?;
    pairs.retain(|(k, _)| k != EXP);
    let params = ResizeParams::parse(&pairs, s.config.limits.max_output_side)?;
    crate::flags::check_format(&admitted.auth, &params)?;
    let ask = Ask {
        tenant,
        name,
        params,
        cache_control: cache_control(sig.is_some(), remaining, d.max_age_secs),
        fast_shrink_on_load: crate::flags::fast_shrink_on_load(&admitted.auth),
    };
    Ok((admitted, ask))
}

/// Shared caches may keep a signed variant (its URL is its authority) until the
/// URL expires at the latest; one fetched with a key is the caller's alone.
fn cache_control(signed: bool, remaining: Option<u64>, max_age_secs: u64) -> String {
    let max_age = remaining.map_or(max_age_secs, |r| r.min(max_age_secs));
    if signed {
        format!("public, max-age={max_age}, immutable")
    } else {
        format!("private, max-age={max_age}")
    }
}

/// Seconds the URL stays valid (None: no `exp`), or 403 once it has passed.
fn expiry(exp: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(exp) = exp else { return Ok(None) };
    let at: i64 = exp
        .parse()
        .map_err(|_| bad_signature("`exp` must be Unix seconds"))?;
    let now = now_unix_secs();
    if at <= now {
        return Err(bad_signature("the URL has expired"));
    }
    Ok(Some((at - now) as u64))
}

/// Removes `name` from the pairs; given twice is a 400.
fn take_once(pairs: &mut Vec<(String, String)>, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    for (k, v) in std::mem::take(pairs) {
        if k != name {
            pairs.push((k, v));
        } else if found.replace(v).is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("`{name}` is given twice"),
            ));
        }
    }
    Ok(found)
}

/// The output format from the stored header and `Accept`, and whether it was negotiated.
fn output_format(meta: &OriginalMeta, params: &ResizeParams, headers: &HeaderMap) -> (ImageFormat, bool) {
    match params.format {
        FormatChoice::Fixed(f) => (f, false),
        FormatChoice::Auto => {
            let input = ImageFormat::parse(&meta.format).unwrap_or(ImageFormat::Jpeg);
            let animated = meta.frames > 1 && params.frames == Frames::All;
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            (negotiate(accept, input, animated), true)
        }
    }
}

/// A strong ETag: the original's content, the normalised parameters, the format.
pub(crate) fn etag(meta: &OriginalMeta, params: &ResizeParams, format: ImageFormat) -> String {
    let mut h = Sha256::new();
    h.update(b"resizer variant v1\n");
    h.update(meta.content_hash.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(params).unwrap_or_default());
    h.update(b"\n");
    h.update(format.as_str().as_bytes());
    format!("\"{}\"", &to_hex(&h.finalize())[..40])
}

/// Whether `If-None-Match` names `etag` (or `*`); weak forms match too (RFC 9110 §13.1.2).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        })
    })
}

/// The caching headers every answer of one URL shares.
struct Fresh<'a> {
    etag: &'a str,
    cache_control: &'a str,
    negotiated: bool,
}

impl Fresh<'_> {
    fn respond(&self, status: StatusCode, variant: Option<Variant>) -> Response {
        let mut response = match variant {
            Some(v) if status == StatusCode::OK => {
                let mut r = Response::new(Body::from(v.bytes));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(v.format.mime()));
                r
            }
            _ => Response::new(Body::empty()),
        };
        *response.status_mut() = status;
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(self.cache_control) {
            h.insert(header::CACHE_CONTROL, v);
        }
        if self.negotiated {
            h.insert(header::VARY, HeaderValue::from_static("accept"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(hash: &str) -> OriginalMeta {
        OriginalMeta {
            name: "a".into(),
            bytes: 1,
            format: "jpeg".into(),
            width: 10,
            height: 10,
            frames: 1,
            content_hash: hash.into(),
            uploaded_at: String::new(),
        }
    }

    #[test]
    fn test_etag_changes_with_content_params_and_format_only() {
        let p = ResizeParams::width(100);
        let base = etag(&meta("aa"), &p, ImageFormat::Jpeg);
        assert!(base.starts_with('"') && base.ends_with('"') && base.len() == 42);
        assert_eq!(base, etag(&meta("aa"), &p, ImageFormat::Jpeg));
        assert_ne!(base, etag(&meta("ab"), &p, ImageFormat::Jpeg));
        assert_ne!(
            base,
            etag(&meta("aa"), &ResizeParams::width(101), ImageFormat::Jpeg)
        );
        assert_ne!(base, etag(&meta("aa"), &p, ImageFormat::Webp));
    }

    #[test]
    fn test_if_none_match_lists_and_weak_forms() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"x\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"x\""));
        assert!(if_none_match(&h, "\"x\""));
        assert!(!if_none_match(&h, "\"y\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"y\""));
    }

    #[test]
    fn test_expiry_and_repeated_sig() {
        assert_eq!(expiry(None).unwrap(), None);
        assert!(expiry(Some("1")).is_err());
        assert!(expiry(Some("soon")).is_err());
        let later = (now_unix_secs() + 100).to_string();
        assert!(expiry(Some(&later)).unwrap().unwrap() <= 100);
        let mut pairs = vec![
            ("sig".to_string(), "a".to_string()),
            ("sig".to_string(), "b".to_string()),
        ];
        assert!(take_once(&mut pairs, SIG).is_err());
    }
}
