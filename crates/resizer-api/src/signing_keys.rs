//! URL signing keys on the public port: a tenant's own key issues and revokes
//! its signing secrets (`POST /v1/signing-keys`, `DELETE /v1/signing-keys/{id}`).
//! The authoritative write is the identity service's; [`SigningKeys`] is how an
//! API node reaches it (in process in `resizer serve`).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use resizer_core::ErrorCode;
use resizer_core::ids::{SigningKeyId, TenantId};
use resizer_identity::{IdentityError, IdentityService, IssuedSigningKey};

use crate::admission::authorize;
use crate::error::{ApiError, ErrorBody};
use crate::public::ApiState;

/// Issues and revokes a tenant's signing secrets.
#[async_trait]
pub trait SigningKeys: Send + Sync + 'static {
    /// A new secret for `tenant`.
    async fn issue(&self, tenant: &TenantId) -> Result<IssuedSigningKey, IdentityError>;
    /// Revokes `tenant`'s key `id`.
    async fn revoke(&self, tenant: &TenantId, id: &SigningKeyId) -> Result<(), IdentityError>;
}

#[async_trait]
impl SigningKeys for IdentityService {
    async fn issue(&self, tenant: &TenantId) -> Result<IssuedSigningKey, IdentityError> {
        self.issue_signing_key(tenant).await
    }

    async fn revoke(&self, tenant: &TenantId, id: &SigningKeyId) -> Result<(), IdentityError> {
        self.revoke_signing_key(tenant, id).await
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
        (status = 503, description = "Not served by this node.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn create_own(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = authorize(&state.inner, &headers)?;
    let issued = signing_keys(&state)?.issue(&auth.tenant_id).await?;
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
        (status = 503, description = "Not served by this node.", body = ErrorBody,
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
    signing_keys(&state)?.revoke(&auth.tenant_id, &id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %id, "signing key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}
