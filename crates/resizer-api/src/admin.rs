//! The admin port: tenants and keys, behind the admin token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use resizer_core::ErrorCode;
use resizer_core::api_key::KeyHash;
use resizer_core::ids::{KeyId, SigningKeyId, TenantId};
use resizer_core::time::rfc3339;
use resizer_identity::feed;
use resizer_identity::{IdentityService, NewTenant, Tenant, TenantPatch};
use resizer_usage::query::UsageQueries;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admission::bearer;
use crate::body::read_body;
use crate::error::{self, ApiError, ErrorBody};
use crate::observe::observe;
use crate::openapi;
use resizer_identity::{IssuedKeyView, IssuedSigningKey};

/// Largest admin request body.
const MAX_ADMIN_BODY: u64 = 64 * 1024;

/// A bearer secret of ours (the admin token, the cluster secret), kept only as
/// its SHA-256 and compared in constant time, exactly like an API key.
#[derive(Clone)]
pub struct HashedSecret(KeyHash);

impl HashedSecret {
    /// Derives from the plain token.
    pub fn from_secret(token: &str) -> Self {
        Self(KeyHash::of(token))
    }

    /// Wraps a stored hash.
    pub fn from_hash(hash: KeyHash) -> Self {
        Self(hash)
    }

    /// Returns the stored hash.
    pub fn hash(&self) -> &KeyHash {
        &self.0
    }

    /// Compares a presented token in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        self.0.verify(presented)
    }
}

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    identity: Arc<IdentityService>,
    token: HashedSecret,
    /// When set, the identity change feed is served too, to holders of this cluster secret.
    feed_secret: Option<HashedSecret>,
    /// Where usage and audit queries read; none where this node does not serve them.
    usage: Option<Arc<dyn UsageQueries>>,
    /// Wrong admin tokens per client address.
    guesses: Arc<crate::rate_limit::GuessThrottle>,
    /// The public port's OpenAPI document, for the reference pages.
    public_document: Option<openapi::RenderedDocument>,
    /// When set (with the feed), API nodes may issue and revoke signing keys
    /// on a tenant's behalf, presenting that tenant's own key.
    delegation: Option<crate::credentials::Delegation>,
    /// The nodes `/admin/v1/fleet` reports.
    fleet: crate::fleet::Fleet,
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    /// Unguessable id.
    id: TenantId,
    /// Display name.
    name: String,
    /// Sustained requests per second on each API node.
    rate_limit_rps: u32,
    /// Requests allowed in a burst.
    burst: u32,
    /// A suspended tenant's requests get 403.
    suspended: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    updated_at: String,
    /// The tenant's own originals quota; a `null` field means the deployment's setting.
    originals_quota: resizer_identity::OriginalsQuota,
}

/// `GET /admin/v1/tenants`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantList {
    /// Every tenant.
    tenants: Vec<TenantView>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            name: t.name,
            rate_limit_rps: t.rate_limit_rps,
            burst: t.burst,
            suspended: t.suspended,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
            originals_quota: t.originals_quota,
        }
    }
}

impl AdminState {
    /// Assembles the state.
    pub fn new(identity: Arc<IdentityService>, token: HashedSecret) -> Self {
        Self {
            identity,
            token,
            feed_secret: None,
            usage: None,
            guesses: Arc::default(),
            public_document: None,
            delegation: None,
            fleet: crate::fleet::Fleet::new("serve", Vec::new(), None),
        }
    }

    /// Reports `fleet` on `/admin/v1/fleet` (default: this process alone, named `serve`).
    pub fn with_fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
        self.fleet = fleet;
        self
    }

    /// The nodes `/admin/v1/fleet` reports.
    pub(crate) fn fleet(&self) -> &crate::fleet::Fleet {
        &self.fleet
    }

    /// Allows `burst` wrong admin tokens per client address before throttling.
    pub fn with_wrong_token_burst(mut self, burst: u32) -> Self {
        self.guesses = Arc::new(crate::rate_limit::GuessThrottle::new(burst));
        self
    }

    /// Also serves the public port's document (`/openapi/public.json`, `/docs/public`).
    pub fn with_public_document(mut self, doc: serde_json::Value) -> Self {
        self.public_document = Some(openapi::RenderedDocument::new(&doc));
        self
    }

    /// Serves `/admin/v1/usage` and `/admin/v1/audit` from `queries`.
    pub fn with_usage(mut self, queries: Arc<dyn UsageQueries>) -> Self {
        self.usage = Some(queries);
        self
    }

    /// Also serves the change feed (`/internal/v1/identity/*`) to API nodes
    /// presenting the cluster secret.
    pub fn with_feed(mut self, cluster_secret: HashedSecret) -> Self {
        self.feed_secret = Some(cluster_secret);
        self
    }

    /// Also serves the delegated signing-key routes (behind the cluster
    /// secret, like the feed), checking tenant keys against `auth`, a cache
    /// following this service's store.
    pub fn with_credentials_delegation(mut self, auth: Arc<resizer_identity::AuthCache>) -> Self {
        self.delegation = Some(crate::credentials::Delegation {
            identity: self.identity.clone(),
            auth,
        });
        self
    }

    /// The management plane.
    pub(crate) fn identity(&self) -> &Arc<IdentityService> {
        &self.identity
    }

    /// The delegated signing-key routes' needs, when served.
    pub(crate) fn delegation(&self) -> Option<crate::credentials::Delegation> {
        self.delegation.clone()
    }

    /// Returns the admin router.
    pub fn router(self) -> Router {
        let mut router = Router::new()
            .route("/admin/v1/tenants", post(create_tenant).get(list_tenants))
            .route("/admin/v1/tenants/{id}", get(get_tenant).patch(update_tenant))
            .route(
                "/admin/v1/tenants/{id}/keys",
                post(create_key).get(list_tenant_keys),
            )
            .route("/admin/v1/keys/{key_id}", delete(revoke_key))
            .route("/admin/v1/tenants/{id}/signing-keys", post(create_signing_key))
            .route(
                "/admin/v1/tenants/{id}/signing-keys/{signing_key_id}",
                delete(revoke_signing_key),
            )
            .route("/admin/v1/flags", get(crate::flags::list_flags))
            .route(
                "/admin/v1/flags/{name}",
                axum::routing::put(crate::flags::put_flag).delete(crate::flags::delete_flag),
            )
            .route("/admin/v1/usage", get(tenant_usage))
            .route("/admin/v1/usage/top", get(top_tenants))
            .route("/admin/v1/fleet", get(crate::fleet::fleet))
            .route("/admin/v1/audit", get(tenant_audit))
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), require_token))
            .merge(resizer_console::routes(resizer_console::Console::Operator));
        if let Some(secret) = self.feed_secret.clone() {
            let mut internal = Router::new()
                .route(feed::routes::SNAPSHOT, get(feed_snapshot))
                .route(feed::routes::CHANGES, get(feed_changes));
            if self.delegation.is_some() {
                internal = internal.merge(crate::credentials::delegated_routes());
            }
            router = router.merge(internal.route_layer(axum::middleware::from_fn_with_state(
                secret,
                require_cluster_secret,
            )));
        }
        let admin_doc = openapi::RenderedDocument::new(&openapi::admin_document());
        if let Some(public_doc) = self.public_document.clone() {
            router = router
                .route(
                    "/openapi/public.json",
                    get(move || async move { public_doc.response() }),
                )
                .route("/docs/public", get(openapi::public_docs_page));
        }
        router
            .route("/healthz", get(crate::public::healthz))
            .route("/openapi.json", get(move || async move { admin_doc.response() }))
            .route("/docs", get(openapi::admin_docs_page))
            .route("/docs/redoc.standalone.js", get(openapi::redoc_script))
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn(observe))
            .with_state(self)
    }
}

/// A tenant's usage by bucket.
#[utoipa::path(
    get,
    path = "/admin/v1/usage",
    tag = "admin",
    operation_id = "tenant_usage",
    params(crate::usage::UsageParams),
    responses(
        (status = 200, description = "The usage.", body = crate::usage::UsageReport),
        (status = 400, description = "Bad parameters (`tenant` is required).", body = ErrorBody),
        (status = 503, description = "Usage is not served by this node right now.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn tenant_usage(
    State(state): State<AdminState>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let params = crate::usage::params(&uri)?;
    let tenant = params.tenant()?;
    crate::usage::buckets(state.usage.clone(), tenant, &params).await
}

/// The busiest tenants over a slice, by requests, bytes or CPU.
#[utoipa::path(
    get,
    path = "/admin/v1/usage/top",
    tag = "admin",
    operation_id = "top_tenants",
    params(crate::usage::TopParams),
    responses(
        (status = 200, description = "The busiest tenants first.", body = crate::usage::TopReport),
        (status = 400, description = "Bad parameters.", body = ErrorBody),
        (status = 503, description = "Usage is not served by this node right now.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn top_tenants(
    State(state): State<AdminState>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let params = crate::usage::params(&uri)?;
    let tenants = state.identity.list_tenants().await?;
    let tenants = tenants.into_iter().map(|t| (t.id, t.name)).collect();
    crate::usage::top(state.usage.clone(), tenants, &params).await
}

/// A tenant's raw usage records.
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "admin",
    operation_id = "tenant_audit",
    params(crate::usage::UsageParams),
    responses(
        (status = 200, description = "The records.", body = crate::usage::AuditReport),
        (status = 400, description = "Bad parameters (`tenant` is required).", body = ErrorBody),
        (status = 503, description = "Usage is not served by this node right now.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn tenant_audit(
    State(state): State<AdminState>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let params = crate::usage::params(&uri)?;
    let tenant = params.tenant()?;
    crate::usage::audit(state.usage.clone(), tenant, &params).await
}

/// Lets through only requests bearing the cluster secret (internal endpoints).
pub(crate) async fn require_cluster_secret(
    State(secret): State<HashedSecret>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        Some(token) if secret.verify(token) => next.run(request).await,
        _ => ApiError::new(ErrorCode::Unauthenticated, "a valid cluster secret is required").into_response(),
    }
}

async fn feed_snapshot(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let snapshot = state.identity.store().snapshot().await?;
    Ok(Json(snapshot).into_response())
}

#[derive(serde::Deserialize)]
struct ChangesQuery {
    after: u64,
    limit: Option<u32>,
    wait_ms: Option<u64>,
}

/// Long-poll: answers at once when there are changes after `after`,
/// otherwise waits up to `wait_ms` (at most the feed's long-poll bound) for one.
async fn feed_changes(State(state): State<AdminState>, uri: axum::http::Uri) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = axum::extract::Query::<ChangesQuery>::try_from_uri(&uri).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "`after` (a sequence number) is required; `limit` and `wait_ms` are integers",
        )
    })?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let wait =
        std::time::Duration::from_millis(q.wait_ms.unwrap_or(0)).min(resizer_identity::feed::LONG_POLL);
    let deadline = tokio::time::Instant::now() + wait;
    let store = state.identity.store();
    loop {
        // Subscribe before reading, so a write between the two still wakes us.
        let mut changed = state.identity.watch_changes();
        let head = store.latest_seq().await?;
        let changes = store.changes_since(q.after, limit).await?;
        // A follower ahead of the store (which was reset) is told at once.
        if !changes.is_empty() || head < q.after || tokio::time::Instant::now() >= deadline {
            let page = resizer_identity::feed::ChangesPage {
                changes,
                head: Some(head),
            };
            return Ok(Json(page).into_response());
        }
        if tokio::time::timeout_at(deadline, changed.changed())
            .await
            .is_err()
        {
            let page = resizer_identity::feed::ChangesPage {
                changes: Vec::new(),
                head: Some(head),
            };
            return Ok(Json(page).into_response());
        }
    }
}

/// Lets through only requests bearing the admin token; an address that keeps
/// presenting wrong ones is refused (429) before its next try is checked.
async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(wait) = client.and_then(|c| state.guesses.blocked(c)) {
        metrics::counter!("resizer_admin_auth_throttled_total").increment(1);
        return ApiError::new(
            ErrorCode::RateLimited,
            "too many wrong admin tokens from this address; wait before trying again",
        )
        .retry_after(resizer_core::rate_limit::retry_after_secs(wait))
        .into_response();
    }
    match bearer(request.headers()) {
        Some(token) if state.token.verify(token) => next.run(request).await,
        presented => {
            // Only a token presented is a guess; asking without one searches nothing.
            if let (Some(c), Some(_)) = (client, presented) {
                state.guesses.failed(c);
            }
            ApiError::new(ErrorCode::Unauthenticated, "a valid admin token is required").into_response()
        }
    }
}

pub(crate) async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, MAX_ADMIN_BODY, std::time::Duration::from_secs(10)).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON for this endpoint: {e}"),
        )
    })
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("tenant {raw} not found")))
}

/// Creates a tenant.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    tag = "admin",
    operation_id = "create_tenant",
    request_body = NewTenant,
    responses(
        (status = 201, description = "Created.", body = TenantView, links(("create_key" = (operation_id = "create_key", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Bad fields (`invalid_parameter`) or not JSON for this endpoint (`invalid_json`).", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn create_tenant(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let new: NewTenant = read_json(&headers, body).await?;
    let tenant = state.identity.create_tenant(new).await?;
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

/// Lists every tenant.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    tag = "admin",
    operation_id = "list_tenants",
    responses(
        (status = 200, description = "The tenants.", body = TenantList),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn list_tenants(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let tenants: Vec<TenantView> = state
        .identity
        .list_tenants()
        .await?
        .into_iter()
        .map(TenantView::from)
        .collect();
    Ok(Json(TenantList { tenants }).into_response())
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{id}",
    tag = "admin",
    operation_id = "get_tenant",
    params(("id" = TenantId, Path, description = "The tenant.")),
    responses(
        (status = 200, description = "The tenant.", body = TenantView),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn get_tenant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = state.identity.get_tenant(&tenant_id(&id)?).await?;
    Ok(Json(TenantView::from(tenant)).into_response())
}

/// Changes limits, name or suspension.
#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{id}",
    tag = "admin",
    operation_id = "update_tenant",
    params(("id" = TenantId, Path, description = "The tenant.")),
    request_body = TenantPatch,
    responses(
        (status = 200, description = "The tenant as it now is.", body = TenantView),
        (status = 400, description = "Bad fields (`invalid_parameter`) or not JSON for this endpoint (`invalid_json`).", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn update_tenant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    let patch: TenantPatch = read_json(&headers, body).await?;
    let tenant = state.identity.update_tenant(&id, patch).await?;
    tracing::info!(tenant_id = %tenant.id, suspended = tenant.suspended, "tenant updated");
    Ok(Json(TenantView::from(tenant)).into_response())
}

/// Issues an API key; the secret is in this answer only.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/keys",
    tag = "admin",
    operation_id = "create_key",
    params(("id" = TenantId, Path, description = "The tenant.")),
    responses(
        (status = 201, description = "The key.", body = IssuedKeyView, links(("revoke_key" = (operation_id = "revoke_key", parameters(("key_id" = "$response.body#/key_id")))))),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn create_key(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    let issued = state.identity.issue_key(&id).await?;
    tracing::info!(tenant_id = %id, key_id = %issued.key_id, "key issued");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// A tenant's keys, live and revoked (ids and times, never secrets).
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{id}/keys",
    tag = "admin",
    operation_id = "list_tenant_keys",
    params(("id" = TenantId, Path, description = "The tenant.")),
    responses(
        (status = 200, description = "The keys, oldest first.", body = crate::keys::KeyList),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn list_tenant_keys(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    state.identity.get_tenant(&id).await?;
    let keys = state.identity.list_keys(&id).await?;
    Ok(Json(crate::keys::KeyList::of_operator(keys)).into_response())
}

/// Revokes a key, on every API node within a second.
#[utoipa::path(
    delete,
    path = "/admin/v1/keys/{key_id}",
    tag = "admin",
    operation_id = "revoke_key",
    params(("key_id" = KeyId, Path, description = "The key.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such key.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn revoke_key(
    State(state): State<AdminState>,
    Path(key_id): Path<String>,
) -> Result<Response, ApiError> {
    let key_id = crate::keys::key_id_in_path(&key_id)?;
    state.identity.revoke_key(&key_id).await?;
    tracing::info!(key_id = %key_id, "key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Issues a URL signing secret for variant URLs; the secret is in this answer only.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/signing-keys",
    tag = "admin",
    operation_id = "create_signing_key",
    params(("id" = TenantId, Path, description = "The tenant.")),
    responses(
        (status = 201, description = "The signing key; sign with the secret's characters as given.", body = IssuedSigningKey),
        (status = 403, description = "The tenant already has 5 live signing keys (`quota_exceeded`).", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn create_signing_key(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    let issued = state.identity.issue_signing_key(&id).await?;
    tracing::info!(tenant_id = %id, signing_key_id = %issued.signing_key_id, "signing key issued");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Revokes a signing key: URLs signed with it stop working on every API node within a second.
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{id}/signing-keys/{signing_key_id}",
    tag = "admin",
    operation_id = "revoke_signing_key",
    params(
        ("id" = TenantId, Path, description = "The tenant."),
        ("signing_key_id" = SigningKeyId, Path, description = "The signing key."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such signing key for that tenant.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn revoke_signing_key(
    State(state): State<AdminState>,
    Path((id, signing_key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    let sk = signing_key_id_of(&signing_key_id)?;
    state.identity.revoke_signing_key(&id, &sk).await?;
    tracing::info!(tenant_id = %id, signing_key_id = %sk, "signing key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parses a signing key id from a path; a malformed one is simply not found.
pub(crate) fn signing_key_id_of(raw: &str) -> Result<SigningKeyId, ApiError> {
    SigningKeyId::parse(raw)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("signing key {raw} not found")))
}
