//! Usage and audit queries: the caller's own usage on the public port
//! (`GET /v1/usage`), any tenant's usage and raw records on the admin port.
//! Reading is never metered.

use std::sync::Arc;

use axum::Json;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use resizer_core::ErrorCode;
use resizer_core::ids::TenantId;
use resizer_core::time::{now_unix_ms, parse_rfc3339_ms, rfc3339};
use resizer_usage::query::UsageQueries;
use resizer_usage::{Bucket, BucketSize};
use serde::Deserialize;

use crate::error::ApiError;

/// Longest slice one query may cover.
const MAX_SPAN_MS: u64 = 400 * 86_400_000;
/// Most raw records one audit query returns.
const MAX_AUDIT_RECORDS: usize = 10_000;

/// The query string of the usage endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Start of the slice, inclusive (RFC 3339); default `to` minus 24 hours.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the slice, exclusive (RFC 3339); default now. At most 400 days after `from`.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Bucket width; default `hour`.
    #[param(inline)]
    bucket: Option<BucketParam>,
    /// The tenant (admin port only, where it is required).
    #[param(value_type = Option<TenantId>)]
    tenant: Option<String>,
    /// Most records to return (audit only; 1–10000, default 10000); for
    /// `/admin/v1/usage/top`, tenants (1–100, default 10).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// What ranks tenants (`/admin/v1/usage/top` only, documented by [`TopParams`]).
    #[param(ignore)]
    by: Option<RankBy>,
}

/// The query string of `/admin/v1/usage/top` (parsed as [`UsageParams`], `tenant` refused).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// Start of the slice, inclusive (RFC 3339); default `to` minus 24 hours.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// End of the slice, exclusive (RFC 3339); default now. At most 400 days after `from`.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// What ranks tenants; default `requests`.
    #[param(inline)]
    pub by: Option<RankBy>,
    /// Most tenants to return, 1–100; default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// What `/admin/v1/usage/top` ranks tenants by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    /// Metered requests.
    #[default]
    Requests,
    /// Bytes in plus bytes out.
    Bytes,
    /// Worker CPU time.
    Cpu,
}

/// One tenant's totals over a slice.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TenantTotals {
    /// The tenant.
    pub tenant: TenantId,
    /// Its name.
    pub name: String,
    /// Metered requests.
    pub requests: u64,
    /// Of which 2xx.
    pub succeeded: u64,
    /// Of which otherwise.
    pub failed: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response image bytes.
    pub bytes_out: u64,
    /// Worker CPU time, ms.
    pub cpu_ms: u64,
}

/// `GET /admin/v1/usage/top`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopReport {
    /// What ranked them.
    pub by: RankBy,
    /// The busiest tenants first (those with no usage in the slice are left out).
    pub tenants: Vec<TenantTotals>,
}

/// Most tenants one top query reads (one roll-up query each).
const MAX_TOP_SCAN: usize = 5_000;

impl TenantTotals {
    fn rank(&self, by: RankBy) -> u64 {
        match by {
            RankBy::Requests => self.requests,
            RankBy::Bytes => self.bytes_in.saturating_add(self.bytes_out),
            RankBy::Cpu => self.cpu_ms,
        }
    }
}

/// The busiest of `tenants` over the slice of `p`, by `p.by`.
pub async fn top(
    queries: Option<Arc<dyn UsageQueries>>,
    tenants: Vec<(TenantId, String)>,
    p: &UsageParams,
) -> Result<Response, ApiError> {
    if p.has_tenant() {
        return Err(invalid(
            "`tenant` is not accepted here: the top list ranks every tenant",
        ));
    }
    let limit = p.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(invalid("`limit` must be from 1 to 100"));
    }
    let slice = p.slice(now_unix_ms())?;
    let queries = queries.ok_or_else(unavailable)?;
    let by = p.by.unwrap_or_default();
    let mut totals = Vec::new();
    for (tenant, name) in tenants.into_iter().take(MAX_TOP_SCAN) {
        let buckets = queries
            .buckets(&tenant, slice.from_ms, slice.to_ms, BucketSize::Day)
            .await
            .map_err(ApiError::from)?;
        let t = tenant_totals(tenant, name, &buckets);
        if t.requests > 0 {
            totals.push(t);
        }
    }
    Ok(Json(TopReport {
        by,
        tenants: busiest(totals, by, limit),
    })
    .into_response())
}

/// One tenant's buckets summed as the roll-ups sum them (saturating; CPU
/// rounded down to ms once, at the end).
fn tenant_totals(tenant: TenantId, name: String, buckets: &[Bucket]) -> TenantTotals {
    let mut sum = Bucket::default();
    for b in buckets {
        sum.merge(b);
    }
    TenantTotals {
        tenant,
        name,
        requests: sum.requests,
        succeeded: sum.succeeded,
        failed: sum.failed,
        bytes_in: sum.bytes_in,
        bytes_out: sum.bytes_out,
        cpu_ms: sum.cpu_micros / 1000,
    }
}

/// The first `limit` of `totals` by `by`, ties by tenant id (a stable order).
fn busiest(mut totals: Vec<TenantTotals>, by: RankBy, limit: usize) -> Vec<TenantTotals> {
    totals.sort_by(|a, b| b.rank(by).cmp(&a.rank(by)).then_with(|| a.tenant.cmp(&b.tenant)));
    totals.truncate(limit);
    totals
}

/// The `bucket` values, as the query spells them.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BucketParam {
    /// Hourly buckets.
    Hour,
    /// Daily buckets (UTC days).
    Day,
}

/// A validated time slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Inclusive start, Unix ms.
    pub from_ms: u64,
    /// Exclusive end, Unix ms.
    pub to_ms: u64,
    /// Bucket width.
    pub size: BucketSize,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, message)
}

/// Parses the query string of a usage endpoint.
pub fn params(uri: &Uri) -> Result<UsageParams, ApiError> {
    axum::extract::Query::<UsageParams>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| invalid("the query takes `from`, `to` (RFC 3339), `bucket` (hour|day), and on the admin port `tenant`"))
}

impl UsageParams {
    /// The slice asked for: defaults to the last 24 hours in hourly buckets.
    pub fn slice(&self, now_ms: u64) -> Result<Slice, ApiError> {
        let time = |v: &Option<String>, name: &str| -> Result<Option<u64>, ApiError> {
            v.as_deref()
                .map(|s| {
                    parse_rfc3339_ms(s)
                        .and_then(|ms| u64::try_from(ms).ok())
                        .ok_or_else(|| {
                            invalid(&format!(
                                "`{name}` must be an RFC 3339 time, e.g. 2026-11-22T00:00:00Z"
                            ))
                        })
                })
                .transpose()
        };
        let to_ms = time(&self.to, "to")?.unwrap_or(now_ms);
        let from_ms = time(&self.from, "from")?.unwrap_or(to_ms.saturating_sub(86_400_000));
        let size = match self.bucket {
            None | Some(BucketParam::Hour) => BucketSize::Hour,
            Some(BucketParam::Day) => BucketSize::Day,
        };
        if from_ms >= to_ms {
            return Err(invalid("`from` must be before `to`"));
        }
        if to_ms - from_ms > MAX_SPAN_MS {
            return Err(invalid("a usage query covers at most 400 days"));
        }
        Ok(Slice { from_ms, to_ms, size })
    }

    /// The tenant named by `tenant` (admin port).
    pub fn tenant(&self) -> Result<TenantId, ApiError> {
        self.tenant
            .as_deref()
            .and_then(TenantId::parse)
            .ok_or_else(|| invalid("`tenant` must be a tenant id"))
    }

    /// The `tenant` parameter is for the admin port only.
    pub fn has_tenant(&self) -> bool {
        self.tenant.is_some()
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::DependencyUnavailable,
        "usage queries are not served by this node",
    )
    .retry_after(5)
}

/// `GET /v1/usage` and `GET /admin/v1/usage`: one tenant's usage by bucket.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// Whose usage this is.
    pub tenant: TenantId,
    /// UTC-aligned buckets in time order; empty ones are left out.
    pub buckets: Vec<UsageBucket>,
}

/// The counters of one hour or day. Every metered request counts in the
/// bucket of the time it was received; stored originals are sampled (every
/// five minutes by default) and each hour keeps its highest sample.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub start: String,
    /// Metered requests.
    pub requests: u64,
    /// Of which answered 2xx.
    pub succeeded: u64,
    /// Of which answered otherwise.
    pub failed: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response image bytes.
    pub bytes_out: u64,
    /// Input pixels (from the header).
    pub pixels_in: u64,
    /// Output pixels.
    pub pixels_out: u64,
    /// Worker CPU time, milliseconds (rounded down).
    pub cpu_ms: u64,
    /// Bytes of originals stored: the highest hourly sample in the bucket.
    #[serde(default)]
    pub stored_bytes: u64,
    /// Originals stored: the highest hourly sample in the bucket.
    #[serde(default)]
    pub stored_originals: u64,
    /// Storage over time, what storage is billed by: each hour's
    /// `stored_bytes` times one hour, summed over the bucket's hours.
    #[serde(default)]
    pub stored_byte_hours: u64,
}

impl From<&Bucket> for UsageBucket {
    fn from(b: &Bucket) -> Self {
        Self {
            start: rfc3339((b.start_unix_ms / 1000) as i64),
            requests: b.requests,
            succeeded: b.succeeded,
            failed: b.failed,
            bytes_in: b.bytes_in,
            bytes_out: b.bytes_out,
            pixels_in: b.pixels_in,
            pixels_out: b.pixels_out,
            cpu_ms: b.cpu_micros / 1000,
            stored_bytes: b.stored_bytes,
            stored_originals: b.stored_originals,
            stored_byte_hours: b.stored_byte_hours,
        }
    }
}

/// `GET /admin/v1/audit`: the raw usage records of a tenant.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    /// One record per metered request, oldest first.
    pub records: Vec<resizer_usage::UsageRecord>,
}

/// Answers a usage query for `tenant`.
pub async fn buckets(
    queries: Option<Arc<dyn UsageQueries>>,
    tenant: TenantId,
    p: &UsageParams,
) -> Result<Response, ApiError> {
    let slice = p.slice(now_unix_ms())?;
    let queries = queries.ok_or_else(unavailable)?;
    let found = queries
        .buckets(&tenant, slice.from_ms, slice.to_ms, slice.size)
        .await
        .map_err(ApiError::from)?;
    let buckets = found.iter().map(UsageBucket::from).collect();
    Ok(Json(UsageReport { tenant, buckets }).into_response())
}

/// Answers an audit query for `tenant`.
pub async fn audit(
    queries: Option<Arc<dyn UsageQueries>>,
    tenant: TenantId,
    p: &UsageParams,
) -> Result<Response, ApiError> {
    let slice = p.slice(now_unix_ms())?;
    let limit = p.limit.unwrap_or(MAX_AUDIT_RECORDS).clamp(1, MAX_AUDIT_RECORDS);
    let queries = queries.ok_or_else(unavailable)?;
    let records = queries
        .audit(&tenant, slice.from_ms, slice.to_ms, limit)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(AuditReport { records }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_top_sums_like_the_rollups_and_ranks_by_the_asked_measure() {
        let bucket = |requests, bytes_in, cpu_micros| Bucket {
            requests,
            succeeded: requests,
            bytes_in,
            cpu_micros,
            ..Bucket::default()
        };
        let (a, b) = (TenantId::random(), TenantId::random());
        // Two half-milliseconds are one: CPU is rounded once, after summing.
        let ta = tenant_totals(a.clone(), "a".into(), &[bucket(1, 10, 500), bucket(2, 10, 500)]);
        assert_eq!((ta.requests, ta.succeeded, ta.bytes_in, ta.cpu_ms), (3, 3, 20, 1));
        // Hostile counters saturate instead of wrapping or panicking.
        let tb = tenant_totals(b.clone(), "b".into(), &[bucket(1, u64::MAX, 0), bucket(1, 5, 0)]);
        assert_eq!(tb.bytes_in, u64::MAX);
        let by_requests = busiest(vec![ta.clone(), tb.clone()], RankBy::Requests, 10);
        assert_eq!(by_requests[0].tenant, a);
        let by_bytes = busiest(vec![ta, tb], RankBy::Bytes, 1);
        assert_eq!((by_bytes.len(), &by_bytes[0].tenant), (1, &b));
    }

    fn p(q: &str) -> Result<UsageParams, ApiError> {
        params(&format!("/x?{q}").parse::<Uri>().unwrap())
    }

    #[test]
    fn test_slice_defaults_and_validation() {
        let now = 1_795_314_645_000;
        let s = p("").unwrap().slice(now).unwrap();
        assert_eq!(
            (s.from_ms, s.to_ms, s.size),
            (now - 86_400_000, now, BucketSize::Hour)
        );
        let s = p("from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=day")
            .unwrap()
            .slice(now)
            .unwrap();
        assert_eq!(s.to_ms - s.from_ms, 86_400_000);
        assert_eq!(s.size, BucketSize::Day);
        assert!(p("from=yesterday").unwrap().slice(now).is_err());
        assert!(p("bucket=week").is_err(), "read as the documented enum");
        assert!(
            p("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z")
                .unwrap()
                .slice(now)
                .is_err()
        );
        assert!(
            p("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z")
                .unwrap()
                .slice(now)
                .is_err()
        );
        assert!(p("colour=red").is_err());
        assert!(p("tenant=ten_nope").unwrap().tenant().is_err());
    }
}
