//! URL signing keys on the public port: a tenant's own key issues and revokes
//! its signing secrets (`POST /v1/signing-keys`, `DELETE /v1/signing-keys/{id}`),
//! through [`crate::credentials::Credentials`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use resizer_core::ids::SigningKeyId;
use resizer_identity::IssuedSigningKey;

use crate::credentials::caller;
use crate::error::{ApiError, ErrorBody};
use crate::public::ApiState;

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
    let (credentials, auth, key) = caller(&state, &headers)?;
    let issued = credentials.issue_signing_key(&key.of(&auth)?).await?;
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
    let (credentials, auth, key) = caller(&state, &headers)?;
    let id = crate::admin::signing_key_id_of(&id)?;
    credentials.revoke_signing_key(&key.of(&auth)?, &id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %id, "signing key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}
