//! Admission: whether this node takes a resize request at all, decided before
//! its body is read: room on the node, a valid key, the tenant's rate, the
//! tenant's share of the node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, header};
use resizer_core::ErrorCode;
use resizer_core::ids::TenantId;
use resizer_core::rate_limit::retry_after_secs;
use resizer_identity::{AuthContext, AuthError};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::metering::Meter;
use crate::public::{Inner, reject};

/// Returns the token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// An admitted request: who it is, and the slots it holds until it ends.
pub(crate) struct Admitted {
    pub auth: AuthContext,
    _permit: OwnedSemaphorePermit,
    _tenant_slot: TenantSlot,
}

/// Admits a resize request or says why not; a valid key is noted in `meter`
/// (refusals of a valid key are metered too).
pub(crate) fn admit(s: &Inner, headers: &HeaderMap, meter: &mut Meter) -> Result<Admitted, ApiError> {
    let auth = |meter: &mut Meter| authenticate(s, headers, meter);
    admit_with(s, meter, auth)
}

/// [`admit`] with another way to tell who it is (a signed URL).
pub(crate) fn admit_with(
    s: &Inner,
    meter: &mut Meter,
    who: impl FnOnce(&mut Meter) -> Result<AuthContext, ApiError>,
) -> Result<Admitted, ApiError> {
    let permit = s
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| reject("in_flight", ApiError::overloaded("too many requests in progress")))?;
    let auth = who(meter)?;
    within_rate(s, &auth)?;
    let tenant_slot = s
        .tenant_slots
        .try_take(&auth.tenant_id, s.config.max_in_flight_per_tenant)
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
    Ok(Admitted {
        auth,
        _permit: permit,
        _tenant_slot: tenant_slot,
    })
}

/// Who a request without a body is (a bearer key, from the cache) within the
/// tenant's rate: for metadata calls that hold no slot while they run.
pub(crate) fn authorize(s: &Inner, headers: &HeaderMap) -> Result<AuthContext, ApiError> {
    let auth = authenticate(s, headers, &mut Meter::default())?;
    within_rate(s, &auth)?;
    Ok(auth)
}

/// Spends one request of the tenant's rate, or says when to retry.
pub(crate) fn within_rate(s: &Inner, auth: &AuthContext) -> Result<(), ApiError> {
    s.limiters
        .try_acquire(&auth.tenant_id, auth.rate_limit_rps, auth.burst)
        .map_err(|wait| {
            reject(
                "rate_limited",
                ApiError::new(ErrorCode::RateLimited, "the tenant's rate limit is exceeded")
                    .retry_after(retry_after_secs(wait)),
            )
        })
}

/// Who it is, from the local auth cache only.
fn authenticate(s: &Inner, headers: &HeaderMap, meter: &mut Meter) -> Result<AuthContext, ApiError> {
    let secret = bearer(headers).ok_or_else(|| {
        reject(
            "unauthenticated",
            ApiError::new(
                ErrorCode::Unauthenticated,
                "an `Authorization: Bearer <key>` header is required",
            ),
        )
    })?;
    match s.auth.authenticate(secret) {
        Ok(auth) => {
            meter.auth = Some((auth.tenant_id.clone(), auth.key_id.clone()));
            Ok(auth)
        }
        Err(e) => {
            // A suspended tenant's valid key is metered too.
            if let AuthError::Suspended(ctx) = &e {
                meter.auth = Some((ctx.tenant_id.clone(), ctx.key_id.clone()));
            }
            Err(reject("unauthenticated", e.into()))
        }
    }
}

/// Requests in progress per tenant, so one tenant cannot take every slot.
#[derive(Default)]
pub struct TenantSlots {
    inner: Mutex<HashMap<TenantId, usize>>,
}

/// Gives the slot back when the request ends.
pub struct TenantSlot {
    slots: Arc<TenantSlots>,
    tenant: TenantId,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut map = self.slots.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

impl TenantSlots {
    /// Creates an empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes one of `max` slots for `tenant`, or `None` when all are taken.
    pub fn try_take(self: &Arc<Self>, tenant: &TenantId, max: usize) -> Option<TenantSlot> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(tenant.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(TenantSlot {
            slots: self.clone(),
            tenant: tenant.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tenant_slots_cap_each_tenant_separately() {
        let slots = TenantSlots::new();
        let (a, b) = (TenantId::random(), TenantId::random());
        let s1 = slots.try_take(&a, 2).unwrap();
        let _s2 = slots.try_take(&a, 2).unwrap();
        assert!(slots.try_take(&a, 2).is_none());
        assert!(slots.try_take(&b, 2).is_some());
        drop(s1);
        assert!(slots.try_take(&a, 2).is_some());
    }
}
