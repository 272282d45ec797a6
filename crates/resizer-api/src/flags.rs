//! Feature flags on the admin port (`/admin/v1/flags`): defined, changed and
//! deleted here, stored by the identity service, read by every API node from
//! its auth cache (the change feed carries them), so a flip takes effect
//! cluster-wide as fast as a key revocation does.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use resizer_core::params::{FormatChoice, ResizeParams};
use resizer_core::{ErrorCode, ImageFormat};
use resizer_identity::flags::{self, known};
use resizer_identity::{AuthContext, Flag, FlagSpec};
use serde::Serialize;

use crate::admin::{AdminState, read_json};
use crate::error::{ApiError, ErrorBody};

/// Refuses an output format the tenant's flags keep dark (today `jxl`, behind
/// `format_jxl`): a 400 naming the flag, so the caller knows it is not a typo.
pub(crate) fn check_format(auth: &AuthContext, params: &ResizeParams) -> Result<(), ApiError> {
    if params.format == FormatChoice::Fixed(ImageFormat::Jxl) && !auth.flag(known::FORMAT_JXL) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`format=jxl` is not enabled for this account (feature flag `format_jxl`)",
        ));
    }
    Ok(())
}

/// Whether this tenant's jobs decode at the smallest covering scale (`shrink_on_load`).
pub(crate) fn fast_shrink_on_load(auth: &AuthContext) -> bool {
    auth.flag(known::SHRINK_ON_LOAD)
}

/// `GET /v1/flags`: the flags this version reads, as they are for the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OwnFlags {
    /// The caller's tenant.
    tenant: resizer_core::ids::TenantId,
    /// Known flag → on or off for this tenant.
    flags: std::collections::BTreeMap<&'static str, bool>,
}

/// Which features are on for the caller's tenant (what the console offers).
#[utoipa::path(
    get,
    path = "/v1/flags",
    tag = "flags",
    operation_id = "own_flags",
    responses(
        (status = 200, description = "The tenant's feature flags.", body = OwnFlags),
        (status = 401, description = "Missing, unknown or revoked key.", body = ErrorBody),
        (status = 403, description = "The tenant is suspended.", body = ErrorBody),
        (status = 429, description = "Over the tenant's rate limit.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn own_flags(
    State(state): State<crate::public::ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = crate::admission::authorize(&state.inner, &headers)?;
    let flags = known::ALL
        .iter()
        .map(|&(name, _)| (name, auth.flag(name)))
        .collect();
    Ok(Json(OwnFlags {
        tenant: auth.tenant_id,
        flags,
    })
    .into_response())
}

/// A flag the code reads, and what it does.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnownFlag {
    /// Its name.
    name: &'static str,
    /// What turning it on does.
    effect: &'static str,
}

/// `GET /admin/v1/flags`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagList {
    /// Every defined flag, by name.
    flags: Vec<Flag>,
    /// The flags this version of Resizer reads (defined or not: an undefined flag is off).
    known: Vec<KnownFlag>,
}

/// Every feature flag, and the ones the code reads.
#[utoipa::path(
    get,
    path = "/admin/v1/flags",
    tag = "admin",
    operation_id = "list_flags",
    responses(
        (status = 200, description = "The flags.", body = FlagList),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn list_flags(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let flags = state.identity().list_flags().await?;
    let known = known::ALL
        .iter()
        .map(|&(name, effect)| KnownFlag { name, effect })
        .collect();
    Ok(Json(FlagList { flags, known }).into_response())
}

/// Defines or replaces a flag (the body is the whole flag); every API node
/// applies it within about a second.
#[utoipa::path(
    put,
    path = "/admin/v1/flags/{name}",
    tag = "admin",
    operation_id = "put_flag",
    params(("name" = String, Path, description = "The flag: 1–64 characters of a-z, 0-9 and _.", pattern = "^[a-z0-9_]{1,64}$")),
    request_body = FlagSpec,
    responses(
        (status = 200, description = "The flag as it now is.", body = Flag),
        (status = 400, description = "Bad fields or name (`invalid_parameter`), or not JSON for this endpoint (`invalid_json`).", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn put_flag(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    flags::check_name(&name)?;
    let spec: FlagSpec = read_json(&headers, body).await?;
    let flag = state.identity().put_flag(&name, spec).await?;
    tracing::info!(
        flag = %flag.name,
        default = flag.default,
        rollout_percent = flag.rollout_percent,
        overrides = flag.overrides.len(),
        "flag set"
    );
    Ok(Json(flag).into_response())
}

/// Deletes a flag: it reads as off everywhere.
#[utoipa::path(
    delete,
    path = "/admin/v1/flags/{name}",
    tag = "admin",
    operation_id = "delete_flag",
    params(("name" = String, Path, description = "The flag.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such flag.", body = ErrorBody),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn delete_flag(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if flags::check_name(&name).is_err() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("flag {name} not found"),
        ));
    }
    state.identity().delete_flag(&name).await?;
    tracing::info!(flag = %name, "flag deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
