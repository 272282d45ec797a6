//! URL signing keys on the public port: a tenant's own key issues and revokes
//! its signing secrets (`POST /v1/signing-keys`, `DELETE /v1/signing-keys/{id}`).
//! The authoritative write is the identity service's; [`SigningKeys`] is how an
//! API node reaches it: in process in `resizer serve`, over the internal
//! routes with the tenant's own key ([`RemoteSigningKeys`]) on a distributed
//! `resizer api`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use resizer_core::ErrorCode;
use resizer_core::ids::{SigningKeyId, TenantId};
use resizer_identity::feed::routes;
use resizer_identity::remote::{RemoteSigningKeys, TENANT_KEY_HEADER};
use resizer_identity::{AuthCache, IdentityError, IdentityService, IssuedSigningKey};

use crate::admin::AdminState;
use crate::admission::authorize;
use crate::error::{ApiError, ErrorBody};
use crate::public::ApiState;

/// Issues and revokes a tenant's signing secrets. `api_key` is the tenant's
/// key as presented: a remote identity service checks it again.
#[async_trait]
pub trait SigningKeys: Send + Sync + 'static {
    /// A new secret for `tenant`.
    async fn issue(&self, tenant: &TenantId, api_key: &str) -> Result<IssuedSigningKey, IdentityError>;
    /// Revokes `tenant`'s key `id`.
    async fn revoke(&self, tenant: &TenantId, api_key: &str, id: &SigningKeyId) -> Result<(), IdentityError>;
}

#[async_trait]
impl SigningKeys for IdentityService {
    async fn issue(&self, tenant: &TenantId, _: &str) -> Result<IssuedSigningKey, IdentityError> {
        self.issue_signing_key(tenant).await
    }

    async fn revoke(&self, tenant: &TenantId, _: &str, id: &SigningKeyId) -> Result<(), IdentityError> {
        self.revoke_signing_key(tenant, id).await
    }
}

/// The identity service's own check decides the tenant; this node's cache
/// already agreed, so a mismatch means the key changed hands in between.
#[async_trait]
impl SigningKeys for RemoteSigningKeys {
    async fn issue(&self, tenant: &TenantId, api_key: &str) -> Result<IssuedSigningKey, IdentityError> {
        let issued = RemoteSigningKeys::issue(self, api_key).await?;
        if &issued.tenant_id != tenant {
            return Err(IdentityError::Store(
                "the identity service answered for another tenant".into(),
            ));
        }
        Ok(issued)
    }

    async fn revoke(&self, _: &TenantId, api_key: &str, id: &SigningKeyId) -> Result<(), IdentityError> {
        RemoteSigningKeys::revoke(self, api_key, id).await
    }
}

fn signing_keys(state: &ApiState) -> Result<Arc<dyn SigningKeys>, ApiError> {
    state.inner.signing_keys.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::DependencyUnavailable,
            "signing keys are managed on the admin port of this deployment",
        )
        .retry_after(60)
    })
}

/// Issues a URL signing secret for the caller's tenant; the secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/signing-keys",
    tag = "delivery",
    operation_id = "create_own_signing_key",
    responses(
        (status = 201, description = "The signing key; sign with the secret's characters as given.", body = IssuedSigningKey),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended, or already has 5 live signing keys (`quota_exceeded`).", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The identity service is unreachable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn create_own(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = authorize(&state.inner, &headers)?;
    let key = crate::admission::bearer(&headers).unwrap_or_default();
    let issued = signing_keys(&state)?.issue(&auth.tenant_id, key).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %issued.signing_key_id, "signing key issued by the tenant");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Revokes one of the caller's signing keys; URLs signed with it stop working.
#[utoipa::path(
    delete,
    path = "/v1/signing-keys/{signing_key_id}",
    tag = "delivery",
    operation_id = "revoke_own_signing_key",
    params(("signing_key_id" = SigningKeyId, Path, description = "The signing key.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 404, description = "The tenant has no such signing key.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The identity service is unreachable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn revoke_own(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let auth = authorize(&state.inner, &headers)?;
    let id = crate::admin::signing_key_id_of(&id)?;
    let key = crate::admission::bearer(&headers).unwrap_or_default();
    signing_keys(&state)?.revoke(&auth.tenant_id, key, &id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %id, "signing key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The identity service's end of [`RemoteSigningKeys`]: what the delegated
/// routes need (behind the cluster secret, like the feed).
#[derive(Clone)]
pub struct Delegation {
    /// The authoritative writes.
    pub identity: Arc<IdentityService>,
    /// The identity service's own copy of the auth state, caught up before each check.
    pub auth: Arc<AuthCache>,
}

/// `POST /internal/v1/identity/signing-keys` and `DELETE …/{id}` for API nodes.
pub(crate) fn delegated_routes() -> Router<AdminState> {
    Router::new()
        .route(routes::SIGNING_KEYS, post(delegated_issue))
        .route(
            &format!("{}/{{id}}", routes::SIGNING_KEYS),
            delete(delegated_revoke),
        )
}

/// The tenant whose key the API node forwarded, checked against the
/// authoritative state now (a key revoked a moment ago is refused here even
/// if the node's cache has not heard yet).
async fn delegating_tenant(
    state: &AdminState,
    headers: &HeaderMap,
) -> Result<(Delegation, TenantId), ApiError> {
    let d = state
        .delegation()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such route"))?;
    let key = headers
        .get(TENANT_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "the tenant's API key is required"))?;
    let store = d.identity.store();
    d.auth.catch_up(store.as_ref()).await?;
    let tenant = d.auth.authenticate(key)?.tenant_id;
    Ok((d, tenant))
}

async fn delegated_issue(State(state): State<AdminState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (d, tenant) = delegating_tenant(&state, &headers).await?;
    let issued = d.identity.issue_signing_key(&tenant).await?;
    tracing::info!(tenant_id = %tenant, signing_key_id = %issued.signing_key_id, "signing key issued by the tenant");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn delegated_revoke(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (d, tenant) = delegating_tenant(&state, &headers).await?;
    let id = crate::admin::signing_key_id_of(&id)?;
    d.identity.revoke_signing_key(&tenant, &id).await?;
    tracing::info!(tenant_id = %tenant, signing_key_id = %id, "signing key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}
