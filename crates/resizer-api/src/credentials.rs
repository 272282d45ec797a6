//! A tenant's own credentials — its API keys and URL signing keys — managed
//! with one of its keys (`/v1/keys`, `/v1/signing-keys`). The authoritative
//! writes are the identity service's; [`Credentials`] is how an API node
//! reaches it: in process in `resizer serve`, and on a distributed `resizer
//! api` over the identity service's internal routes with the tenant's own key
//! ([`RemoteIdentity`]), which the identity service authenticates again
//! ([`delegated_routes`]).

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use resizer_core::ErrorCode;
use resizer_core::ids::{CredentialId, KeyId, SigningKeyId, TenantId};
use resizer_identity::feed::routes;
use resizer_identity::remote::{RemoteIdentity, TENANT_KEY_HEADER};
use resizer_identity::{
    AuthCache, AuthContext, IdentityError, IdentityService, IssuedKeyView, IssuedSigningKey, KeyRecord,
};
use std::sync::Arc;

use crate::admin::AdminState;
use crate::admission::{authorize, bearer};
use crate::error::ApiError;
use crate::public::ApiState;

/// Who asks: a tenant, by one of its API keys (id and secret as presented; a
/// remote identity service authenticates the secret again).
pub struct Caller<'a> {
    /// The key's tenant.
    pub tenant: &'a TenantId,
    /// The key's id.
    pub key_id: &'a KeyId,
    /// The key as presented.
    pub api_key: &'a str,
}

/// A tenant's self-service on its credentials.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// A new URL signing secret.
    async fn issue_signing_key(&self, caller: &Caller<'_>) -> Result<IssuedSigningKey, IdentityError>;
    /// Revokes signing key `id`.
    async fn revoke_signing_key(&self, caller: &Caller<'_>, id: &SigningKeyId) -> Result<(), IdentityError>;
    /// The tenant's API keys, live and revoked.
    async fn list_keys(&self, caller: &Caller<'_>) -> Result<Vec<KeyRecord>, IdentityError>;
    /// A new API key.
    async fn issue_key(&self, caller: &Caller<'_>) -> Result<IssuedKeyView, IdentityError>;
    /// Revokes API key `id` (not the caller's own).
    async fn revoke_key(&self, caller: &Caller<'_>, id: &KeyId) -> Result<(), IdentityError>;
}

#[async_trait]
impl Credentials for IdentityService {
    async fn issue_signing_key(&self, c: &Caller<'_>) -> Result<IssuedSigningKey, IdentityError> {
        IdentityService::issue_signing_key(self, c.tenant).await
    }

    async fn revoke_signing_key(&self, c: &Caller<'_>, id: &SigningKeyId) -> Result<(), IdentityError> {
        IdentityService::revoke_signing_key(self, c.tenant, id).await
    }

    async fn list_keys(&self, c: &Caller<'_>) -> Result<Vec<KeyRecord>, IdentityError> {
        IdentityService::list_keys(self, c.tenant).await
    }

    async fn issue_key(&self, c: &Caller<'_>) -> Result<IssuedKeyView, IdentityError> {
        self.issue_own_key(c.tenant).await
    }

    async fn revoke_key(&self, c: &Caller<'_>, id: &KeyId) -> Result<(), IdentityError> {
        self.revoke_own_key(c.tenant, c.key_id, id).await
    }
}

/// The identity service's own check decides the tenant; this node's cache
/// already agreed, so a mismatch means the key changed hands in between.
fn same_tenant(c: &Caller<'_>, answered: &TenantId) -> Result<(), IdentityError> {
    if answered == c.tenant {
        return Ok(());
    }
    Err(IdentityError::Store(
        "the identity service answered for another tenant".into(),
    ))
}

#[async_trait]
impl Credentials for RemoteIdentity {
    async fn issue_signing_key(&self, c: &Caller<'_>) -> Result<IssuedSigningKey, IdentityError> {
        let issued = RemoteIdentity::issue_signing_key(self, c.api_key).await?;
        same_tenant(c, &issued.tenant_id)?;
        Ok(issued)
    }

    async fn revoke_signing_key(&self, c: &Caller<'_>, id: &SigningKeyId) -> Result<(), IdentityError> {
        RemoteIdentity::revoke_signing_key(self, c.api_key, id).await
    }

    async fn list_keys(&self, c: &Caller<'_>) -> Result<Vec<KeyRecord>, IdentityError> {
        RemoteIdentity::list_keys(self, c.api_key).await
    }

    async fn issue_key(&self, c: &Caller<'_>) -> Result<IssuedKeyView, IdentityError> {
        let issued = RemoteIdentity::issue_key(self, c.api_key).await?;
        same_tenant(c, &issued.tenant_id)?;
        Ok(issued)
    }

    async fn revoke_key(&self, c: &Caller<'_>, id: &KeyId) -> Result<(), IdentityError> {
        RemoteIdentity::revoke_key(self, c.api_key, id).await
    }
}

/// The API key a request presented.
pub(crate) struct Presented(String);

impl Presented {
    /// The caller: the key's tenant and id from `auth`, with the key itself.
    pub(crate) fn of<'a>(&'a self, auth: &'a AuthContext) -> Result<Caller<'a>, ApiError> {
        Ok(Caller {
            tenant: &auth.tenant_id,
            key_id: key_id_of(auth)?,
            api_key: &self.0,
        })
    }
}

/// Authenticates a credentials request: the node's way to the identity
/// service (503 where there is none), who asks, and the key it presented.
pub(crate) fn caller(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<(Arc<dyn Credentials>, AuthContext, Presented), ApiError> {
    let auth = authorize(&state.inner, headers)?;
    let credentials = state.inner.credentials.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::DependencyUnavailable,
            "credentials are managed on the admin port of this deployment",
        )
        .retry_after(60)
    })?;
    let key = bearer(headers).unwrap_or_default().to_string();
    Ok((credentials, auth, Presented(key)))
}

/// The API key id of a bearer-authenticated request.
pub(crate) fn key_id_of(auth: &AuthContext) -> Result<&KeyId, ApiError> {
    match &auth.key_id {
        CredentialId::Key(k) => Ok(k),
        CredentialId::Signing(_) => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "an API key is required",
        )),
    }
}

/// The identity service's end of [`RemoteIdentity`]: what the delegated
/// routes need (behind the cluster secret, like the feed).
#[derive(Clone)]
pub struct Delegation {
    /// The authoritative writes.
    pub identity: Arc<IdentityService>,
    /// The identity service's own copy of the auth state, caught up before each check.
    pub auth: Arc<AuthCache>,
}

/// The internal routes API nodes call on a tenant's behalf.
pub(crate) fn delegated_routes() -> Router<AdminState> {
    Router::new()
        .route(routes::SIGNING_KEYS, post(delegated_issue_signing_key))
        .route(
            &format!("{}/{{id}}", routes::SIGNING_KEYS),
            delete(delegated_revoke_signing_key),
        )
        .route(routes::KEYS, post(delegated_issue_key).get(delegated_list_keys))
        .route(&format!("{}/{{id}}", routes::KEYS), delete(delegated_revoke_key))
}

/// The tenant and key the API node forwarded, authenticated against the
/// authoritative state now (a key revoked a moment ago is refused here even
/// if the node's cache has not heard yet).
async fn delegating(state: &AdminState, headers: &HeaderMap) -> Result<(Delegation, AuthContext), ApiError> {
    let d = state
        .delegation()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such route"))?;
    let key = headers
        .get(TENANT_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "the tenant's API key is required"))?;
    let store = d.identity.store();
    d.auth.catch_up(store.as_ref()).await?;
    let auth = d.auth.authenticate(key)?;
    Ok((d, auth))
}

async fn delegated_issue_signing_key(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (d, auth) = delegating(&state, &headers).await?;
    let issued = d.identity.issue_signing_key(&auth.tenant_id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %issued.signing_key_id, "signing key issued by the tenant");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn delegated_revoke_signing_key(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (d, auth) = delegating(&state, &headers).await?;
    let id = crate::admin::signing_key_id_of(&id)?;
    d.identity.revoke_signing_key(&auth.tenant_id, &id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, signing_key_id = %id, "signing key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delegated_list_keys(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (d, auth) = delegating(&state, &headers).await?;
    Ok(Json(d.identity.list_keys(&auth.tenant_id).await?).into_response())
}

async fn delegated_issue_key(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (d, auth) = delegating(&state, &headers).await?;
    let issued = d.identity.issue_own_key(&auth.tenant_id).await?;
    tracing::info!(tenant_id = %auth.tenant_id, key_id = %issued.key_id, "key issued by the tenant");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn delegated_revoke_key(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (d, auth) = delegating(&state, &headers).await?;
    let id = crate::keys::key_id_in_path(&id)?;
    d.identity
        .revoke_own_key(&auth.tenant_id, key_id_of(&auth)?, &id)
        .await?;
    tracing::info!(tenant_id = %auth.tenant_id, key_id = %id, "key revoked by the tenant");
    Ok(StatusCode::NO_CONTENT.into_response())
}
