//! A tenant's own API keys on the public port (`GET`/`POST /v1/keys`,
//! `DELETE /v1/keys/{key_id}`), through [`crate::credentials::Credentials`].
//!
//! The rule: any live key of a tenant manages that tenant's keys, and no
//! other tenant's; at most 20 live keys issued this way (`quota_exceeded`);
//! a key cannot revoke itself (revoke it with another, after issuing one), so
//! a tenant cannot lock itself out by mistake. Operators' admin API is not
//! bound by either rule.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use resizer_core::ErrorCode;
use resizer_core::ids::KeyId;
use resizer_core::time::rfc3339;
use resizer_identity::{IssuedKeyView, KeyRecord};
use serde::Serialize;

use crate::credentials::caller;
use crate::error::{ApiError, ErrorBody};
use crate::public::ApiState;

/// One of the tenant's keys; never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id (what `DELETE /v1/keys/{key_id}` takes).
    pub key_id: KeyId,
    /// Issue time, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Revocation time, RFC 3339; `null` while the key is live.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Whether this is the key that made the request.
    pub current: bool,
}

/// `GET /v1/keys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The tenant's keys, live and revoked, oldest first.
    pub keys: Vec<KeyView>,
}

impl KeyList {
    /// As the admin API shows them: no key is "current" (the operator holds none).
    pub(crate) fn of_operator(keys: Vec<KeyRecord>) -> Self {
        let none = KeyId::random();
        Self {
            keys: keys.into_iter().map(|k| view(k, &none)).collect(),
        }
    }
}

fn view(k: KeyRecord, current: &KeyId) -> KeyView {
    KeyView {
        current: &k.key_id == current,
        created_at: rfc3339(k.created_at),
        revoked_at: k.revoked_at.map(rfc3339),
        key_id: k.key_id,
    }
}

/// Parses a key id from a path; a malformed one is simply not found.
pub(crate) fn key_id_in_path(raw: &str) -> Result<KeyId, ApiError> {
    KeyId::parse(raw).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("key {raw} not found")))
}

/// Lists the caller's tenant's keys (ids and times only).
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "list_own_keys",
    responses(
        (status = 200, description = "The tenant's keys.", body = KeyList),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The identity service is unreachable.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn list_own(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (credentials, auth, key) = caller(&state, &headers)?;
    let caller = key.of(&auth)?;
    let keys = credentials.list_keys(&caller).await?;
    let keys = keys.into_iter().map(|k| view(k, caller.key_id)).collect();
    Ok(Json(KeyList { keys }).into_response())
}

/// Issues a key for the caller's tenant; the secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "create_own_key",
    responses(
        (status = 201, description = "The key; its secret is shown this once.", body = IssuedKeyView),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended, or already has 20 live keys (`quota_exceeded`).", body = ErrorBody),
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
    let issued = credentials.issue_key(&key.of(&auth)?).await?;
    tracing::info!(tenant_id = %auth.tenant_id, key_id = %issued.key_id, "key issued by the tenant");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Revokes one of the caller's tenant's keys, at once on every API node (not the calling key itself).
#[utoipa::path(
    delete,
    path = "/v1/keys/{key_id}",
    tag = "keys",
    operation_id = "revoke_own_key",
    params(("key_id" = KeyId, Path, description = "The key to revoke.")),
    responses(
        (status = 204, description = "Revoked (or already revoked)."),
        (status = 400, description = "The key named is the calling key (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 404, description = "The tenant has no such key.", body = ErrorBody),
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
    let id = key_id_in_path(&id)?;
    credentials.revoke_key(&key.of(&auth)?, &id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, key_id = %id, "key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}
