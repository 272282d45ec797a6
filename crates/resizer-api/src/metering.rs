//! Metering: every request with a valid key leaves a usage record before it
//! is answered, and no answer leaves without its record.

use axum::http::Uri;
use resizer_core::ErrorCode;
use resizer_core::ids::{CredentialId, RecordId, RequestId, TenantId};
use resizer_core::time::now_unix_ms;
use resizer_jobs::JobOutput;
use resizer_usage::UsageRecord;

use crate::error::ApiError;
use crate::public::{Inner, reject};

/// Refusal records per second and burst, per tenant and API node: enough to
/// show a tenant (in its audit trail) and us the pattern of a client that
/// ignores `Retry-After`; beyond it they are only counted on the node.
const REFUSAL_RECORDS_PER_SEC: u32 = 10;
const REFUSAL_RECORDS_BURST: u32 = 50;

/// Appends the request's usage record before it is answered. Only requests
/// with a valid key are metered; refusals (403, 429) at most
/// [`REFUSAL_RECORDS_PER_SEC`] per tenant. An error means the record could not
/// be written and the request must not be answered with its result.
fn meter_request(
    s: &Inner,
    mut meter: Meter,
    status: u16,
    request_id: RequestId,
    received_unix_ms: u64,
    uri: &Uri,
) -> Result<(), ApiError> {
    let (Some(log), Some((tenant_id, key_id))) = (&s.usage, meter.auth.take()) else {
        return Ok(());
    };
    if matches!(status, 403 | 429)
        && s.refusal_limiters
            .try_acquire(&tenant_id, REFUSAL_RECORDS_PER_SEC, REFUSAL_RECORDS_BURST)
            .is_err()
    {
        metrics::counter!("resizer_usage_refusals_unrecorded_total").increment(1);
        return Ok(());
    }
    let record = meter.record(MeterContext {
        tenant_id,
        key_id,
        request_id,
        received_unix_ms,
        params: uri.query().unwrap_or_default(),
        status,
        api_node: &s.config.node,
    });
    // Written before the response leaves, and no answer without it: we are
    // paid by these records. (The log counts and logs the failure.)
    log.append(&record).map_err(|_| {
        reject(
            "metering",
            ApiError::new(
                ErrorCode::DependencyUnavailable,
                "the request could not be metered, so it is not answered; retry shortly",
            )
            .retry_after(1),
        )
    })
}

/// The answer of a metered request, once its record is written: `result`,
/// or the refusal to answer without a record (its status is the answer's).
pub(crate) fn answer(
    s: &Inner,
    meter: Meter,
    request_id: RequestId,
    received_unix_ms: u64,
    uri: &Uri,
    result: Result<axum::response::Response, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.code.http_status(),
    };
    meter_request(s, meter, status, request_id, received_unix_ms, uri)?;
    result
}

/// What a metered request used, gathered along the way for its usage record.
#[derive(Default)]
pub(crate) struct Meter {
    /// The route as recorded; empty means `POST /v1/resize`.
    pub route: &'static str,
    /// A variant answered from the cache (or a 304): format, width, height, bytes sent.
    pub cached: Option<(resizer_core::ImageFormat, u32, u32, u64)>,
    /// A variant delivery's cache outcome: `hit`, `miss` or `revalidated`.
    pub cache: Option<&'static str>,
    /// Set once the key is known valid: only such requests are metered.
    pub auth: Option<(TenantId, CredentialId)>,
    pub input_bytes: u64,
    pub input: Option<(resizer_core::ImageFormat, u32, u32)>,
    pub output: Option<JobOutput>,
    /// The request shared another request's job: it used no CPU of its own.
    pub joined: bool,
}

struct MeterContext<'a> {
    tenant_id: TenantId,
    key_id: CredentialId,
    request_id: RequestId,
    received_unix_ms: u64,
    params: &'a str,
    status: u16,
    api_node: &'a str,
}

impl Meter {
    /// A meter for `route` (`METHOD /path` as the usage record shows it).
    pub fn new(route: &'static str) -> Self {
        Self {
            route,
            ..Self::default()
        }
    }

    fn record(self, c: MeterContext<'_>) -> UsageRecord {
        let finished_unix_ms = now_unix_ms();
        let out = self.output.as_ref();
        let cached = self.cached;
        UsageRecord {
            record_id: RecordId::random(),
            tenant_id: c.tenant_id,
            key_id: c.key_id,
            request_id: c.request_id,
            received_unix_ms: c.received_unix_ms,
            queued_unix_ms: out.map(|o| o.meta.enqueued_unix_ms),
            started_unix_ms: out.map(|o| o.meta.started_unix_ms),
            finished_unix_ms,
            route: if self.route.is_empty() {
                "POST /v1/resize".into()
            } else {
                self.route.into()
            },
            params: c.params.chars().take(512).collect(),
            input_format: self.input.map(|(f, _, _)| f.as_str().to_string()),
            input_bytes: self.input_bytes,
            input_width: self.input.map(|(_, w, _)| w),
            input_height: self.input.map(|(_, _, h)| h),
            output_format: out
                .map(|o| o.meta.format)
                .or(cached.map(|c| c.0))
                .map(|f| f.as_str().to_string()),
            output_bytes: out.map_or(cached.map_or(0, |c| c.3), |o| o.bytes.len() as u64),
            output_width: out.map(|o| o.meta.width).or(cached.map(|c| c.1)),
            output_height: out.map(|o| o.meta.height).or(cached.map(|c| c.2)),
            cpu_micros: if self.joined {
                0
            } else {
                out.map_or(0, |o| o.meta.cpu_micros)
            },
            queue_wait_ms: out.map(|o| o.meta.started_unix_ms.saturating_sub(o.meta.enqueued_unix_ms)),
            processing_ms: out.map(|o| o.meta.finished_unix_ms.saturating_sub(o.meta.started_unix_ms)),
            total_ms: finished_unix_ms.saturating_sub(c.received_unix_ms),
            status: c.status,
            api_node: c.api_node.to_string(),
            worker: out.map(|o| o.meta.worker.clone()),
            cache: self.cache.map(str::to_string),
        }
    }
}
