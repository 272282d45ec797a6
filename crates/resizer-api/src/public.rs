//! The public port: its state and routes, health, readiness, metrics and the
//! caller's own usage. The resize route is [`crate::resize`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resizer_core::ErrorCode;
use resizer_core::rate_limit::retry_after_secs;
use resizer_identity::{AuthCache, AuthContext};
use resizer_imaging::Limits;
use resizer_jobs::JobRunner;
use resizer_telemetry::Metrics;
use resizer_usage::UsageLog;
use resizer_usage::query::UsageQueries;

use crate::admin::HashedSecret;
use crate::admission::{TenantSlots, bearer};
use crate::error::{self, ApiError, ErrorBody};
use crate::observe::observe;
use crate::rate_limit::RateLimiters;

/// Settings of the public API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// This node's name in usage records (its internal URL when distributed).
    pub node: String,
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
}

/// Everything the public handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: ApiConfig,
    pub auth: Arc<AuthCache>,
    /// Runs each request's job: join, stage, publish, wait.
    pub jobs: Arc<JobRunner>,
    pub limiters: RateLimiters,
    /// `/v1/usage` has its own, fixed budget: reading roll-ups costs more than a
    /// resize's bookkeeping, and polling them must not eat the resize rate.
    usage_limiters: RateLimiters,
    /// Refusals (429, 403) of a valid key are recorded at most this fast per
    /// tenant: a refused request costs us nothing else, and must not grow the
    /// log, the seen-ids table and the archive at the client's wire speed.
    pub refusal_limiters: RateLimiters,
    /// One permit per resize request in progress; bounds memory held by bodies being read.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Requests in progress per tenant.
    pub tenant_slots: Arc<TenantSlots>,
    metrics: Metrics,
    /// False until startup completes and again once draining starts.
    ready: Arc<AtomicBool>,
    /// Where every metered request is recorded before it is answered.
    pub usage: Option<Arc<UsageLog>>,
    /// Where `/v1/usage` reads; none on nodes that do not serve usage queries.
    usage_queries: Option<Arc<dyn UsageQueries>>,
    /// Who may read `/metrics` and `/readyz`'s detail (the admin token, the
    /// cluster secret): both tell tenant and key counts and traffic, which are
    /// nobody's business on the Internet. None set: nobody.
    observers: Vec<HashedSecret>,
    /// Originals and variants by URL; none where this node does not serve them.
    pub delivery: Option<crate::originals::Delivery>,
    /// Where a tenant's own key manages its keys and signing keys; none where only the admin port does.
    pub credentials: Option<Arc<dyn crate::credentials::Credentials>>,
}

impl ApiState {
    /// Assembles the state.
    pub fn new(
        config: ApiConfig,
        auth: Arc<AuthCache>,
        jobs: Arc<JobRunner>,
        ready: Arc<AtomicBool>,
        usage: Option<Arc<UsageLog>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                auth,
                jobs,
                limiters: RateLimiters::default(),
                usage_limiters: RateLimiters::default(),
                refusal_limiters: RateLimiters::default(),
                in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
                tenant_slots: TenantSlots::new(),
                metrics: Metrics::global(),
                ready,
                usage,
                usage_queries: None,
                observers: Vec::new(),
                delivery: None,
                credentials: None,
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

    /// Serves originals and variants by URL.
    pub fn with_delivery(mut self, delivery: crate::originals::Delivery) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.delivery = Some(delivery);
        }
        self
    }

    /// Lets a tenant's key manage its keys and signing keys here.
    pub fn with_credentials(mut self, credentials: Arc<dyn crate::credentials::Credentials>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.credentials = Some(credentials);
        }
        self
    }

    /// Lets holders of `token` read `/metrics` and `/readyz`'s detail.
    pub fn with_observer(mut self, token: HashedSecret) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.observers.push(token);
        }
        self
    }

    /// Returns the public router.
    pub fn router(self) -> Router {
        let doc = crate::openapi::RenderedDocument::new(&crate::openapi::public_document(&self.inner.config));
        Router::new()
            .route("/openapi.json", get(move || async move { doc.response() }))
            .route("/v1/resize", post(crate::resize::resize))
            .route("/v1/usage", get(own_usage))
            .route("/v1/flags", get(crate::flags::own_flags))
            .route("/v1/audit", get(own_audit))
            .route("/v1/originals", get(crate::originals::list_originals))
            .route(
                "/v1/originals/{*name}",
                get(crate::originals::original_route)
                    .put(crate::originals::original_route)
                    .delete(crate::originals::original_route),
            )
            .route("/v1/img/{tenant}/{*name}", get(crate::variants::variant))
            .route(
                "/v1/keys",
                get(crate::keys::list_own).post(crate::keys::create_own),
            )
            .route("/v1/keys/{id}", axum::routing::delete(crate::keys::revoke_own))
            .route("/v1/signing-keys", post(crate::signing_keys::create_own))
            .route(
                "/v1/signing-keys/{id}",
                axum::routing::delete(crate::signing_keys::revoke_own),
            )
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .merge(resizer_console::routes(resizer_console::Console::Tenant))
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn(observe))
            .with_state(self)
    }
}

/// Usage queries per second and burst, per tenant and API node (dashboards poll
/// every few seconds; a month by hour is under a millisecond to answer).
const USAGE_QUERIES_PER_SEC: u32 = 5;
const USAGE_QUERIES_BURST: u32 = 10;

/// The caller's own usage; the tenant comes from the key, never from the query.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "usage",
    operation_id = "own_usage",
    params(
        ("from" = Option<String>, Query, format = DateTime, description = "Start, inclusive (RFC 3339); default `to` minus 24 hours."),
        ("to" = Option<String>, Query, format = DateTime, description = "End, exclusive (RFC 3339); default now; at most 400 days after `from`."),
        ("bucket" = Option<crate::usage::BucketParam>, Query, description = "Bucket width; default `hour`."),
    ),
    responses(
        (status = 200, description = "The calling tenant's usage.", body = crate::usage::UsageReport),
        (status = 400, description = "Bad parameters.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 429, description = "More than 5 usage queries a second.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Usage is not served by this node right now.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn own_usage(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (auth, params) = usage_caller(&state.inner, &headers, &uri)?;
    crate::usage::buckets(state.inner.usage_queries.clone(), auth.tenant_id, &params).await
}

/// The caller's own recent requests, one usage record each.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "usage",
    operation_id = "own_audit",
    params(
        ("from" = Option<String>, Query, format = DateTime, description = "Start, inclusive (RFC 3339); default `to` minus 24 hours."),
        ("to" = Option<String>, Query, format = DateTime, description = "End, exclusive (RFC 3339); default now; at most 400 days after `from`."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Most records (the oldest in the slice first); default 10000."),
    ),
    responses(
        (status = 200, description = "The calling tenant's records, oldest first.", body = crate::usage::AuditReport),
        (status = 400, description = "Bad parameters.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 429, description = "More than 5 usage queries a second.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Usage is not served by this node right now.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn own_audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (auth, params) = usage_caller(&state.inner, &headers, &uri)?;
    crate::usage::audit(state.inner.usage_queries.clone(), auth.tenant_id, &params).await
}

/// Authenticates a usage or audit query (bounded per tenant: dashboards poll)
/// and parses its parameters; the tenant comes from the key, never the query.
fn usage_caller(
    s: &Inner,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(AuthContext, crate::usage::UsageParams), ApiError> {
    let secret = bearer(headers).ok_or_else(|| {
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
    let params = crate::usage::params(uri)?;
    if params.has_tenant() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`tenant` is not accepted here: a key sees its own tenant's records",
        ));
    }
    Ok((auth, params))
}

/// `{"status": "ok"}`: the process answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness, and for observers (admin token or cluster secret) its detail.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Whether the auth cache holds a snapshot (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache_loaded: Option<bool>,
    /// The identity change the cache is at (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache_seq: Option<u64>,
    /// Where the cache's state came from (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache_source: Option<&'static str>,
    /// Seconds since the identity feed last answered; null if never in this process (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache_age_seconds: Option<Option<f64>>,
    /// Whether that age is past 30 s (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache_stale: Option<bool>,
    /// Jobs waiting in the queue; null when the queue cannot tell (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<Option<u64>>,
    /// Whether this node holds a live connection to the job queue (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_reachable: Option<bool>,
    /// Whether this node's usage log can take records: enough free space and no
    /// refused write since the last successful probe (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_log_writable: Option<bool>,
    /// Bytes of input held for jobs in flight (observers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_bytes: Option<u64>,
}

impl Inner {
    /// Whether the request carries a token allowed to observe this node.
    fn observer(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|t| self.observers.iter().any(|o| o.verify(t)))
    }
}

/// Ready or not for anyone (the load balancer's check); the detail only for observers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to take requests.", body = Readiness),
        (status = 503, description = "Not ready (starting, draining, no auth state yet, cut off from the job queue, or its usage log cannot write).", body = Readiness),
    ))]
pub(crate) async fn readyz(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let s = &state.inner;
    let queue_reachable = s.jobs.queue_reachable();
    let usage_writable = s.usage.as_ref().is_none_or(|log| log.writable());
    let ready = s.ready.load(Ordering::Relaxed) && s.auth.is_loaded() && queue_reachable && usage_writable;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ready { "ready" } else { "not_ready" };
    if !s.observer(&headers) {
        return (
            status,
            Json(Readiness {
                status: word,
                ..Readiness::default()
            }),
        )
            .into_response();
    }
    let age_opt = s.auth.age().map(|a| a.as_secs_f64());
    let body = Readiness {
        status: word,
        auth_cache_loaded: Some(s.auth.is_loaded()),
        auth_cache_seq: Some(s.auth.seq()),
        auth_cache_source: Some(s.auth.source().as_str()),
        auth_cache_age_seconds: Some(age_opt),
        auth_cache_stale: Some(age_opt.is_none_or(|age| age > STALE_AFTER_SECS)),
        queue_depth: Some(s.jobs.queue_depth()),
        queue_reachable: Some(queue_reachable),
        usage_log_writable: Some(usage_writable),
        staging_bytes: Some(s.jobs.staged_bytes()),
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics of this node, for the admin token (or cluster secret).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4; docs/metrics.md lists every series.", body = String, content_type = "text/plain"),
        (status = 401, description = "The admin token (or cluster secret) is required.", body = ErrorBody),
    ),
    security(("admin_token" = [])))]
pub(crate) async fn metrics_text(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
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

pub(crate) fn reject(reason: &'static str, e: ApiError) -> ApiError {
    metrics::counter!("resizer_api_rejections_total", "reason" => reason).increment(1);
    e
}

/// Past this age the auth cache is reported stale (still serving: availability first).
const STALE_AFTER_SECS: f64 = 30.0;
