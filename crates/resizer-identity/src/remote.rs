//! A tenant's own credentials managed through a remote identity service: what
//! a distributed API node does for `/v1/signing-keys` and `/v1/keys`. The node
//! forwards the tenant's own API key with its cluster secret; the identity
//! service checks the key again against its authoritative state, so an API
//! node gains no power to mint or revoke keys for a tenant that did not ask.

use std::path::Path;
use std::time::Duration;

use resizer_core::ErrorCode;
use resizer_core::ids::{KeyId, SigningKeyId};

use crate::error::IdentityError;
use crate::feed::routes;
use crate::model::KeyRecord;
use crate::service::{IssuedKeyView, IssuedSigningKey};

/// The header carrying the tenant's API key to the identity service.
pub const TENANT_KEY_HEADER: &str = "x-resizer-tenant-key";

/// Time allowed for one call, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the identity service's delegated signing-key routes.
pub struct RemoteIdentity {
    base_url: String,
    cluster_secret: String,
    client: reqwest::Client,
}

fn unavailable(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Store(format!("identity service: {e}"))
}

impl RemoteIdentity {
    /// A client for the identity service at `base_url` (its admin listener);
    /// `ca_file` (PEM) is trusted for `https`.
    pub fn new(base_url: &str, cluster_secret: &str, ca_file: Option<&Path>) -> Result<Self, IdentityError> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            cluster_secret: cluster_secret.to_string(),
            client: crate::feed::client(CALL_TIMEOUT, ca_file)?,
        })
    }

    /// Issues a signing key for the tenant owning `tenant_key`.
    pub async fn issue_signing_key(&self, tenant_key: &str) -> Result<IssuedSigningKey, IdentityError> {
        let url = format!("{}{}", self.base_url, routes::SIGNING_KEYS);
        let response = self.send(self.client.post(url), tenant_key).await?;
        response.json().await.map_err(unavailable)
    }

    /// Revokes signing key `id` of the tenant owning `tenant_key`.
    pub async fn revoke_signing_key(&self, tenant_key: &str, id: &SigningKeyId) -> Result<(), IdentityError> {
        let url = format!("{}{}/{id}", self.base_url, routes::SIGNING_KEYS);
        self.send(self.client.delete(url), tenant_key).await.map(drop)
    }

    /// The API keys of the tenant owning `tenant_key`.
    pub async fn list_keys(&self, tenant_key: &str) -> Result<Vec<KeyRecord>, IdentityError> {
        let url = format!("{}{}", self.base_url, routes::KEYS);
        let response = self.send(self.client.get(url), tenant_key).await?;
        response.json().await.map_err(unavailable)
    }

    /// Issues an API key for the tenant owning `tenant_key`.
    pub async fn issue_key(&self, tenant_key: &str) -> Result<IssuedKeyView, IdentityError> {
        let url = format!("{}{}", self.base_url, routes::KEYS);
        let response = self.send(self.client.post(url), tenant_key).await?;
        response.json().await.map_err(unavailable)
    }

    /// Revokes API key `id` of the tenant owning `tenant_key` (not `tenant_key` itself).
    pub async fn revoke_key(&self, tenant_key: &str, id: &KeyId) -> Result<(), IdentityError> {
        let url = format!("{}{}/{id}", self.base_url, routes::KEYS);
        self.send(self.client.delete(url), tenant_key).await.map(drop)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        tenant_key: &str,
    ) -> Result<reqwest::Response, IdentityError> {
        let response = request
            .bearer_auth(&self.cluster_secret)
            .header(TENANT_KEY_HEADER, tenant_key)
            .send()
            .await
            .map_err(unavailable)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Err(refusal(status.as_u16(), &body))
    }
}

/// The identity service's refusal, as the error the API node answers with.
fn refusal(status: u16, body: &serde_json::Value) -> IdentityError {
    let code = serde_json::from_value::<ErrorCode>(body["error"]["code"].clone()).ok();
    let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
    match code {
        Some(ErrorCode::NotFound) => IdentityError::NotFound(message),
        Some(ErrorCode::QuotaExceeded) => IdentityError::Quota(message),
        Some(ErrorCode::InvalidParameter) => IdentityError::Invalid(message),
        // The key was revoked or its tenant suspended since this node's cache last heard.
        Some(code @ (ErrorCode::Unauthenticated | ErrorCode::TenantSuspended)) => {
            IdentityError::Refused { code, message }
        }
        // A wrong cluster secret, a 5xx, a proxy's page: the operator's problem, not the tenant's.
        _ => unavailable(format!("status {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_refusals_keep_the_tenants_answer_and_hide_the_clusters() {
        let body = |code: &str| serde_json::json!({"error": {"code": code, "message": "m"}});
        assert!(matches!(
            refusal(404, &body("not_found")),
            IdentityError::NotFound(_)
        ));
        assert!(matches!(
            refusal(403, &body("quota_exceeded")),
            IdentityError::Quota(_)
        ));
        assert!(matches!(
            refusal(401, &body("unauthenticated")),
            IdentityError::Refused {
                code: ErrorCode::Unauthenticated,
                ..
            }
        ));
        assert!(matches!(
            refusal(502, &serde_json::Value::Null),
            IdentityError::Store(_)
        ));
    }
}
