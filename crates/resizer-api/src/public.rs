//! The public port: resize, health, readiness and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use resizer_core::ErrorCode;
use resizer_core::format::negotiate;
use resizer_core::ids::{JobId, RequestId};
use resizer_core::params::{FormatChoice, ResizeParams};
use resizer_core::rate_limit::retry_after_secs;
use resizer_core::time::now_unix_ms;
use resizer_identity::{AuthCache, AuthError};
use resizer_imaging::Limits;
use resizer_queue::{JobDescriptor, JobQueue, StagingLocator};
use resizer_telemetry::Metrics;
use resizer_usage::query::UsageQueries;
use resizer_usage::{UsageLog, UsageRecord};

use crate::admin::AdminToken;
use crate::error::{self, ApiError};
use crate::joins::{Joins, Part, TenantSlots, join_key};
use crate::observe::observe;
use crate::rate_limit::RateLimiters;
use crate::results::ResultWaiters;
use crate::staging::StagingArea;

/// Settings of the public API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// This node's id, written into staging locators.
    pub node_id: String,
    /// Largest request body; checked while reading.
    pub max_body_bytes: u64,
    /// Input and output limits.
    pub limits: Limits,
    /// Time a job may take from publish to result.
    pub job_deadline: Duration,
    /// Time allowed to receive a whole request body.
    pub body_read_timeout: Duration,
    /// Resize requests served at once; the next is refused with 503 before its body is read.
    pub max_in_flight: usize,
    /// Resize requests one tenant may have in progress on this node (fairness); 429 above.
    pub max_in_flight_per_tenant: usize,
    /// Whether identical concurrent requests of a tenant share one job.
    pub join_identical: bool,
    /// Signs each job's token for workers in other processes (distributed mode).
    pub job_signer: Option<resizer_core::capability::JobSigner>,
}

/// Everything the public handlers share.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    auth: Arc<AuthCache>,
    queue: JobQueue,
    staging: Arc<StagingArea>,
    results: Arc<ResultWaiters>,
    limiters: RateLimiters,
    /// `/v1/usage` has its own, fixed budget: reading roll-ups costs more than a
    /// resize's bookkeeping, and polling them must not eat the resize rate.
    usage_limiters: RateLimiters,
    /// Refusals (429, 403) of a valid key are recorded at most this fast per
    /// tenant: a refused request costs us nothing else, and must not grow the
    /// log, the seen-ids table and the archive at the client's wire speed.
    refusal_limiters: RateLimiters,
    /// One permit per resize request in progress; bounds memory held by bodies being read.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Requests in progress per tenant.
    tenant_slots: Arc<TenantSlots>,
    /// Identical requests in flight, sharing one job.
    joins: Arc<Joins>,
    metrics: Metrics,
    /// False until startup completes and again once draining starts.
    ready: Arc<AtomicBool>,
    /// Where every metered request is recorded before it is answered.
    usage: Option<Arc<UsageLog>>,
    /// Where `/v1/usage` reads; none on nodes that do not serve usage queries.
    usage_queries: Option<Arc<dyn UsageQueries>>,
    /// Who may read `/metrics` and `/readyz`'s detail (the admin token, the
    /// cluster secret): both tell tenant and key counts and traffic, which are
    /// nobody's business on the Internet. None set: nobody.
    observers: Vec<AdminToken>,
}

impl ApiState {
    /// Assembles the state.
    pub fn new(
        config: ApiConfig,
        auth: Arc<AuthCache>,
        queue: JobQueue,
        staging: Arc<StagingArea>,
        results: Arc<ResultWaiters>,
        ready: Arc<AtomicBool>,
        usage: Option<Arc<UsageLog>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                auth,
                queue,
                staging,
                results,
                limiters: RateLimiters::default(),
                usage_limiters: RateLimiters::default(),
                refusal_limiters: RateLimiters::default(),
                in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
                tenant_slots: TenantSlots::new(),
                joins: Joins::new(),
                metrics: Metrics::global(),
                ready,
                usage,
                usage_queries: None,
                observers: Vec::new(),
                config,
            }),
        }
    }

    /// Serves `/v1/usage` from `queries`.
    pub fn with_usage_queries(mut self, queries: Arc<dyn UsageQueries>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.usage_queries = Some(queries);
        }
        self
    }

    /// Lets holders of `token` read `/metrics` and `/readyz`'s detail.
    pub fn with_observer(mut self, token: AdminToken) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.observers.push(token);
        }
        self
    }

    /// Returns the public router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/resize", post(resize))
            .route("/v1/usage", get(own_usage))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn(observe))
            .with_state(self)
    }
}

/// Refusal records per second and burst, per tenant and API node: enough to
/// show a tenant (in its audit trail) and us the pattern of a client that
/// ignores `Retry-After`; beyond it they are only counted on the node.
const REFUSAL_RECORDS_PER_SEC: u32 = 10;
const REFUSAL_RECORDS_BURST: u32 = 50;

/// Usage queries per second and burst, per tenant and API node (dashboards poll
/// every few seconds; a month by hour is under a millisecond to answer).
const USAGE_QUERIES_PER_SEC: u32 = 5;
const USAGE_QUERIES_BURST: u32 = 10;

/// The caller's own usage; the tenant comes from the key, never from the query.
async fn own_usage(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let secret = bearer(&headers).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "an `Authorization: Bearer <key>` header is required",
        )
    })?;
    let auth = s.auth.authenticate(secret)?;
    if let Err(wait) =
        s.usage_limiters
            .try_acquire(&auth.tenant_id, USAGE_QUERIES_PER_SEC, USAGE_QUERIES_BURST)
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!("too many usage queries; they are limited to {USAGE_QUERIES_PER_SEC} per second"),
        )
        .retry_after(retry_after_secs(wait)));
    }
    let params = crate::usage::params(&uri)?;
    if params.has_tenant() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`tenant` is not accepted here: a key sees its own tenant's usage",
        ));
    }
    crate::usage::buckets(s.usage_queries.clone(), auth.tenant_id, &params).await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

impl Inner {
    /// Whether the request carries a token allowed to observe this node.
    fn observer(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|t| self.observers.iter().any(|o| o.verify(t)))
    }
}

/// Ready or not for anyone (the load balancer's check); the detail only for observers.
async fn readyz(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let s = &state.inner;
    let ready = s.ready.load(Ordering::Relaxed) && s.auth.is_loaded();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ready { "ready" } else { "not_ready" };
    if !s.observer(&headers) {
        return (status, Json(serde_json::json!({ "status": word }))).into_response();
    }
    let age_opt = s.auth.age().map(|a| a.as_secs_f64());
    let body = serde_json::json!({
        "status": word,
        "auth_cache_loaded": s.auth.is_loaded(),
        "auth_cache_seq": s.auth.seq(),
        "auth_cache_source": s.auth.source().as_str(),
        // Seconds since the identity feed last answered; null if it never did in this process.
        "auth_cache_age_seconds": age_opt,
        "auth_cache_stale": age_opt.is_none_or(|age| age > STALE_AFTER_SECS),
        "queue_depth": s.queue.depth(),
        "staging_bytes": s.staging.used(),
    });
    (status, Json(body)).into_response()
}

async fn metrics_text(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !state.inner.observer(&headers) {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "metrics need `Authorization: Bearer` with the admin token (or, on API nodes, the cluster secret)",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.inner.metrics.render(),
    )
        .into_response())
}

fn reject(reason: &'static str, e: ApiError) -> ApiError {
    metrics::counter!("resizer_api_rejections_total", "reason" => reason).increment(1);
    e
}

/// Returns the token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Reads the body up to `max` bytes, refusing early on a declared length and
/// while streaming otherwise, so an oversized body is never buffered whole.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: u64,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let limited = Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX));
    let too_slow = || {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body was not received in time (too slow, or not whole before the deadline)",
        )
    };
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(too_slow()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) if crate::listener::is_body_too_slow(e.as_ref()) => Err(too_slow()),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "the request body could not be read",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Past this age the auth cache is reported stale (still serving: availability first).
const STALE_AFTER_SECS: f64 = 30.0;

/// Time spent draining an unread body after an early refusal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

async fn resize(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let received_unix_ms = now_unix_ms();
    let mut meter = Meter::default();
    let mut body_slot = Some(body);
    let mut result = resize_inner(
        &state,
        request_id.clone(),
        &headers,
        &uri,
        &mut body_slot,
        &mut meter,
    )
    .await;
    if let Err(e) = meter_request(&state, meter, &result, request_id, received_unix_ms, &uri) {
        result = Err(e);
    }
    if result.is_err()
        && let Some(unread) = body_slot
    {
        drain_unread(&headers, unread, state.inner.config.max_body_bytes).await;
    }
    result
}

/// Appends the request's usage record before it is answered. Only requests
/// with a valid key are metered; refusals (403, 429) at most
/// [`REFUSAL_RECORDS_PER_SEC`] per tenant. An error means the record could not
/// be written and the request must not be answered with its result.
fn meter_request(
    state: &ApiState,
    mut meter: Meter,
    result: &Result<Response, ApiError>,
    request_id: RequestId,
    received_unix_ms: u64,
    uri: &Uri,
) -> Result<(), ApiError> {
    let s = &state.inner;
    let (Some(log), Some((tenant_id, key_id))) = (&s.usage, meter.auth.take()) else {
        return Ok(());
    };
    let status = match result {
        Ok(_) => 200,
        Err(e) => e.code.http_status(),
    };
    if matches!(status, 403 | 429)
        && s.refusal_limiters
            .try_acquire(&tenant_id, REFUSAL_RECORDS_PER_SEC, REFUSAL_RECORDS_BURST)
            .is_err()
    {
        metrics::counter!("resizer_usage_refusals_unrecorded_total").increment(1);
        return Ok(());
    }
    let record = meter.record(MeterContext {
        tenant_id,
        key_id,
        request_id,
        received_unix_ms,
        params: uri.query().unwrap_or_default(),
        status,
        api_node: &s.config.node_id,
    });
    // Written before the response leaves, and no answer without it: we are
    // paid by these records. (The log counts and logs the failure.)
    log.append(&record).map_err(|_| {
        reject(
            "metering",
            ApiError::new(
                ErrorCode::DependencyUnavailable,
                "the request could not be metered, so it is not answered; retry shortly",
            )
            .retry_after(1),
        )
    })
}

/// What a resize request used, gathered along the way for its usage record.
#[derive(Default)]
struct Meter {
    /// Set once the key is known valid: only such requests are metered.
    auth: Option<(resizer_core::ids::TenantId, resizer_core::ids::KeyId)>,
    input_bytes: u64,
    input: Option<(resizer_core::ImageFormat, u32, u32)>,
    output: Option<resizer_queue::JobOutput>,
    /// The request shared another request's job: it used no CPU of its own.
    joined: bool,
}

struct MeterContext<'a> {
    tenant_id: resizer_core::ids::TenantId,
    key_id: resizer_core::ids::KeyId,
    request_id: RequestId,
    received_unix_ms: u64,
    params: &'a str,
    status: u16,
    api_node: &'a str,
}

impl Meter {
    fn record(self, c: MeterContext<'_>) -> UsageRecord {
        let finished_unix_ms = now_unix_ms();
        let out = self.output.as_ref();
        UsageRecord {
            record_id: resizer_core::ids::RecordId::random(),
            tenant_id: c.tenant_id,
            key_id: c.key_id,
            request_id: c.request_id,
            received_unix_ms: c.received_unix_ms,
            queued_unix_ms: out.map(|o| o.meta.enqueued_unix_ms),
            started_unix_ms: out.map(|o| o.meta.started_unix_ms),
            finished_unix_ms,
            route: "POST /v1/resize".into(),
            params: c.params.chars().take(512).collect(),
            input_format: self.input.map(|(f, _, _)| f.as_str().to_string()),
            input_bytes: self.input_bytes,
            input_width: self.input.map(|(_, w, _)| w),
            input_height: self.input.map(|(_, _, h)| h),
            output_format: out.map(|o| o.meta.format.as_str().to_string()),
            output_bytes: out.map_or(0, |o| o.bytes.len() as u64),
            output_width: out.map(|o| o.meta.width),
            output_height: out.map(|o| o.meta.height),
            cpu_micros: if self.joined {
                0
            } else {
                out.map_or(0, |o| o.meta.cpu_micros)
            },
            queue_wait_ms: out.map(|o| o.meta.started_unix_ms.saturating_sub(o.meta.enqueued_unix_ms)),
            processing_ms: out.map(|o| o.meta.finished_unix_ms.saturating_sub(o.meta.started_unix_ms)),
            total_ms: finished_unix_ms.saturating_sub(c.received_unix_ms),
            status: c.status,
            api_node: c.api_node.to_string(),
            worker: out.map(|o| o.meta.worker.clone()),
        }
    }
}

/// Reads and discards a body the handler refused before reading, so the
/// client, which may still be sending it, gets to read the error instead of
/// a reset connection. Bounded in bytes and time; nothing is kept. A client
/// that asked `Expect: 100-continue` has not sent the body, so nothing is read.
async fn drain_unread(headers: &HeaderMap, body: Body, max: u64) {
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let declared_too_large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max);
    if expects_continue || declared_too_large {
        return;
    }
    let mut body = body;
    let mut seen = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > max {
                    break;
                }
            }
        }
    })
    .await;
}

async fn resize_inner(
    state: &ApiState,
    request_id: RequestId,
    headers: &HeaderMap,
    uri: &Uri,
    body_slot: &mut Option<Body>,
    meter: &mut Meter,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    let cfg = &s.config;
    // 0. Room for one more? Refused before anything is read.
    let _permit = s
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| reject("in_flight", ApiError::overloaded("too many requests in progress")))?;
    // 1. Who is it? From the local cache only.
    let secret = bearer(headers).ok_or_else(|| {
        reject(
            "unauthenticated",
            ApiError::new(
                ErrorCode::Unauthenticated,
                "an `Authorization: Bearer <key>` header is required",
            ),
        )
    })?;
    let auth = match s.auth.authenticate(secret) {
        Ok(auth) => auth,
        Err(e) => {
            // A suspended tenant's valid key is metered too.
            if let AuthError::Suspended(ctx) = &e {
                meter.auth = Some((ctx.tenant_id.clone(), ctx.key_id.clone()));
            }
            return Err(reject("unauthenticated", e.into()));
        }
    };
    meter.auth = Some((auth.tenant_id.clone(), auth.key_id.clone()));
    // 2. Within its rate? Before any body is read.
    if let Err(wait) = s
        .limiters
        .try_acquire(&auth.tenant_id, auth.rate_limit_rps, auth.burst)
    {
        return Err(reject(
            "rate_limited",
            ApiError::new(ErrorCode::RateLimited, "the tenant's rate limit is exceeded")
                .retry_after(retry_after_secs(wait)),
        ));
    }
    // 2b. Within its fair share of this node? One tenant cannot take every slot.
    let _tenant_slot = s
        .tenant_slots
        .try_take(&auth.tenant_id, cfg.max_in_flight_per_tenant)
        .ok_or_else(|| {
            reject(
                "tenant_in_flight",
                ApiError::new(
                    ErrorCode::RateLimited,
                    "too many requests in progress for this tenant",
                )
                .retry_after(1),
            )
        })?;
    // 3. Sensible parameters?
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "the query string is malformed"))?;
    let params = ResizeParams::parse(&pairs, cfg.limits.max_output_side)?;
    // 4. The body, bounded while reading; then the header, before any decode.
    let body = body_slot
        .take()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the body was already read"))?;
    let input = read_body(headers, body, cfg.max_body_bytes, cfg.body_read_timeout).await?;
    meter.input_bytes = input.len() as u64;
    if input.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty; send the image bytes",
        ));
    }
    let probe = resizer_imaging::check(&input, &cfg.limits)?;
    meter.input = Some((probe.format, probe.width, probe.height));
    let (ow, oh) = probe.oriented_size();
    resizer_imaging::plan(ow, oh, &params, cfg.limits.max_output_side)?;
    // With `format=auto` the answer depends on `Accept`, present or not; caches must know.
    let negotiated = params.format == FormatChoice::Auto;
    let output = match params.format {
        FormatChoice::Fixed(f) => f,
        FormatChoice::Auto => negotiate(
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            probe.format,
        ),
    };
    // 5. Join an identical job in flight, or run one.
    let deadline = Instant::now() + cfg.job_deadline;
    // Hashing the body is the join's only cost, so it is paid only when joining is on.
    let key_opt = cfg
        .join_identical
        .then(|| join_key(&auth.tenant_id, &input, &params, output));
    let mut input_opt = Some(input);
    let outcome = loop {
        let part = match key_opt {
            Some(key) => s.joins.enter(key),
            None => Part::Alone,
        };
        match part {
            Part::Alone => {
                let input = input_opt.take().unwrap_or_default();
                break run_job(s, &auth.tenant_id, &request_id, params, output, input, deadline).await;
            }
            Part::Leader(leader) => {
                let input = input_opt.take().unwrap_or_default();
                let outcome = run_job(s, &auth.tenant_id, &request_id, params, output, input, deadline).await;
                leader.complete(&outcome);
                break outcome;
            }
            Part::Follower(mut rx) => {
                metrics::counter!("resizer_api_joins_total").increment(1);
                meter.joined = true;
                match tokio::time::timeout_at(deadline.into(), rx.wait_for(|v| v.is_some())).await {
                    Ok(Ok(shared)) => break shared.clone().unwrap_or_else(|| Err(lost())),
                    // The leader's client went away before an outcome: lead ourselves.
                    Ok(Err(_)) => continue,
                    Err(_) => break Err(deadline_exceeded()),
                }
            }
        }
    };
    let out = outcome?;
    meter.output = Some(out.clone());
    tracing::debug!(
        request_id = %request_id,
        tenant_id = %auth.tenant_id,
        width = out.meta.width,
        height = out.meta.height,
        "resized"
    );
    let mut response = Response::new(Body::from(out.bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(out.meta.format.mime()),
    );
    if negotiated {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
    }
    Ok(response)
}

fn lost() -> ApiError {
    ApiError::new(ErrorCode::Internal, "the job was lost")
}

fn deadline_exceeded() -> ApiError {
    reject(
        "deadline",
        ApiError::new(
            ErrorCode::DeadlineExceeded,
            "the resize did not finish before its deadline",
        ),
    )
}

/// Stages the input, publishes a small descriptor and waits for the first
/// result up to the deadline.
async fn run_job(
    s: &Inner,
    tenant_id: &resizer_core::ids::TenantId,
    request_id: &RequestId,
    params: ResizeParams,
    output: resizer_core::ImageFormat,
    input: Bytes,
    deadline: Instant,
) -> Result<resizer_queue::JobOutput, ApiError> {
    let cfg = &s.config;
    let job_id = JobId::random();
    let staging_key = job_id.to_string();
    let _staged = s
        .staging
        .put(staging_key.clone(), input)
        .map_err(|_| reject("staging_full", ApiError::overloaded("staging area full")))?;
    let (result_rx, _waiter) = s.results.register(job_id.clone());
    let now = now_unix_ms();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let job = JobDescriptor {
        job_id,
        tenant_id: tenant_id.clone(),
        request_id: request_id.clone(),
        staging: StagingLocator {
            node: cfg.node_id.clone(),
            token: cfg
                .job_signer
                .as_ref()
                .map(|j| j.token(&staging_key))
                .unwrap_or_default(),
            key: staging_key,
        },
        params,
        output,
        deadline_unix_ms: now + remaining.as_millis() as u64,
        enqueued_unix_ms: now,
    };
    s.queue
        .publish(&job)
        .await
        .map_err(|e| reject("queue", e.into()))?;
    let result = match tokio::time::timeout_at(deadline.into(), result_rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => return Err(lost()),
        Err(_) => return Err(deadline_exceeded()),
    };
    result.map_err(|failure| match failure.code {
        ErrorCode::Internal => ApiError::new(ErrorCode::Internal, "an internal error occurred"),
        ErrorCode::Overloaded | ErrorCode::DependencyUnavailable => {
            ApiError::new(failure.code, failure.message).retry_after(1)
        }
        code => ApiError::new(code, failure.message),
    })
}
