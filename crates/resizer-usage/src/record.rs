//! The usage record: one per metered request, whatever its outcome.

use resizer_core::ids::{CredentialId, RecordId, RequestId, TenantId};
use serde::{Deserialize, Serialize};

/// What one metered request cost and how it went. Metered: every `POST /v1/resize`
/// whose key was valid (suspended and rate-limited tenants included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageRecord {
    /// Unguessable; the aggregator deduplicates on it.
    pub record_id: RecordId,
    /// Who is billed.
    pub tenant_id: TenantId,
    /// The key used: an API key, or the signing key of a signed variant URL.
    pub key_id: CredentialId,
    /// The request (`X-Request-Id`).
    pub request_id: RequestId,
    /// When the API node received the request (Unix ms).
    pub received_unix_ms: u64,
    /// When its job was published, if it got that far.
    pub queued_unix_ms: Option<u64>,
    /// When a worker started the job, if one did.
    pub started_unix_ms: Option<u64>,
    /// When the response was ready.
    pub finished_unix_ms: u64,
    /// The route, e.g. `POST /v1/resize`.
    pub route: String,
    /// The query parameters as sent.
    pub params: String,
    /// Input format from the header, if it was read.
    pub input_format: Option<String>,
    /// Input body size.
    pub input_bytes: u64,
    /// Input width, if the header was read.
    pub input_width: Option<u32>,
    /// Input height, if the header was read.
    pub input_height: Option<u32>,
    /// Output format, on success.
    pub output_format: Option<String>,
    /// Output size (0 unless it succeeded).
    pub output_bytes: u64,
    /// Output width, on success.
    pub output_width: Option<u32>,
    /// Output height, on success.
    pub output_height: Option<u32>,
    /// CPU time of the worker thread on this job, in microseconds (not wall time).
    pub cpu_micros: u64,
    /// Time in the queue, publish to worker start, in ms.
    pub queue_wait_ms: Option<u64>,
    /// Time the worker spent, start to result, in ms.
    pub processing_ms: Option<u64>,
    /// Received to response, in ms.
    pub total_ms: u64,
    /// HTTP status of the response.
    pub status: u16,
    /// The API node that answered.
    pub api_node: String,
    /// The worker that resized, if one did.
    pub worker: Option<String>,
    /// A variant delivery (`GET /v1/img`): `hit` (from the API node's cache, no CPU),
    /// `miss` (made now) or `revalidated` (a 304); absent for other routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}

impl UsageRecord {
    /// Returns whether the request succeeded (2xx).
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Returns the input's pixels, or 0 when unknown.
    pub fn pixels_in(&self) -> u64 {
        u64::from(self.input_width.unwrap_or(0)) * u64::from(self.input_height.unwrap_or(0))
    }

    /// Returns the output's pixels, or 0 when there is none.
    pub fn pixels_out(&self) -> u64 {
        u64::from(self.output_width.unwrap_or(0)) * u64::from(self.output_height.unwrap_or(0))
    }
}

impl UsageRecord {
    /// A plausible record of a width-320 JPEG resize of `tenant`, received at
    /// `received_unix_ms`, answered with `status` (an output only on 200):
    /// for tests, examples and benchmarks, so they build records one way.
    pub fn sample(tenant: &TenantId, received_unix_ms: u64, status: u16) -> Self {
        UsageRecord {
            record_id: RecordId::random(),
            tenant_id: tenant.clone(),
            key_id: resizer_core::ids::KeyId::random().into(),
            request_id: RequestId::random(),
            received_unix_ms,
            queued_unix_ms: Some(received_unix_ms + 1),
            started_unix_ms: Some(received_unix_ms + 2),
            finished_unix_ms: received_unix_ms + 10,
            route: "POST /v1/resize".into(),
            params: "width=320".into(),
            input_format: Some("jpeg".into()),
            input_bytes: 1000,
            input_width: Some(1200),
            input_height: Some(800),
            output_format: (status == 200).then(|| "jpeg".into()),
            output_bytes: if status == 200 { 100 } else { 0 },
            output_width: (status == 200).then_some(320),
            output_height: (status == 200).then_some(213),
            cpu_micros: 4_500,
            queue_wait_ms: Some(1),
            processing_ms: Some(8),
            total_ms: 10,
            status,
            api_node: "embedded".into(),
            worker: Some("w".into()),
            cache: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record for tests.
    pub(crate) fn record(tenant: &TenantId, at_ms: u64, status: u16) -> UsageRecord {
        UsageRecord::sample(tenant, at_ms, status)
    }

    #[test]
    fn test_record_round_trips_as_json() {
        let r = record(&TenantId::random(), 1_000, 200);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<UsageRecord>(&line).unwrap(), r);
        assert!(r.succeeded());
        assert_eq!(r.pixels_in(), 960_000);
        assert_eq!(r.pixels_out(), 68_160);
    }
}
