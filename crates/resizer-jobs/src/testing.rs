//! Test support (feature `testing`, and this crate's own tests): a valid job
//! descriptor for tests of queues and workers.

use resizer_core::ImageFormat;
use resizer_core::ids::{JobId, RequestId, TenantId};
use resizer_core::params::{Fit, FormatChoice, ResizeParams};

use crate::job::{JobDescriptor, StagingLocator};

/// A small JPEG job of a fresh tenant that never expires, staged under key `k` on node `local`.
pub fn sample_job() -> JobDescriptor {
    JobDescriptor {
        job_id: JobId::random(),
        tenant_id: TenantId::random(),
        request_id: RequestId::random(),
        traceparent: None,
        staging: StagingLocator {
            node: "local".into(),
            token: String::new(),
        },
        params: ResizeParams {
            width: Some(10),
            height: None,
            fit: Fit::Contain,
            format: FormatChoice::Auto,
            quality: None,
            enlarge: false,
            frames: resizer_core::params::Frames::All,
        },
        output: ImageFormat::Jpeg,
        fast_shrink_on_load: false,
        deadline_unix_ms: u64::MAX,
        enqueued_unix_ms: 0,
    }
}
