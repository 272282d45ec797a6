//! The queue item of this crate's tests, unit and integration: an id and a
//! tenant, nothing else.

use resizer_core::ids::{JobId, TenantId};
use serde::{Deserialize, Serialize};

use crate::QueueItem;

/// An item with an id and a tenant and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestItem {
    /// Random per item.
    pub id: String,
    /// Random per item unless set.
    pub tenant_id: TenantId,
}

impl QueueItem for TestItem {
    fn id(&self) -> &str {
        &self.id
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// An item of a fresh tenant.
pub fn sample_item() -> TestItem {
    TestItem {
        id: JobId::random().to_string(),
        tenant_id: TenantId::random(),
    }
}
