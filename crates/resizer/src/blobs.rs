//! The adapters between the originals and usage crates, here where the binary
//! wires them, so neither crate depends on the other: originals' bytes in the
//! usage archive's object store (the S3-compatible bucket when distributed),
//! and the originals store's totals as the storage meter's samples.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use resizer_originals::OriginalStore;
use resizer_originals::shared::BlobStore;
use resizer_usage::StoredSample;
use resizer_usage::archive::ObjectStore;
use resizer_usage::storage::StoredTotals;

/// A [`BlobStore`] over an [`ObjectStore`].
pub struct ObjectBlobs(pub Arc<dyn ObjectStore>);

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn put(&self, key: &str, bytes: Bytes) -> std::io::Result<()> {
        self.0.put(key, bytes).await
    }

    async fn get(&self, key: &str) -> std::io::Result<Option<Bytes>> {
        match self.0.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        self.0.delete(key).await
    }
}

/// The storage meter's source: every tenant's totals in an [`OriginalStore`].
pub struct OriginalsTotals(pub Arc<dyn OriginalStore>);

#[async_trait]
impl StoredTotals for OriginalsTotals {
    async fn stored(&self) -> Result<Vec<StoredSample>, String> {
        let all = self.0.stored_by_tenant().await.map_err(|e| e.to_string())?;
        Ok(all
            .into_iter()
            .map(|(tenant_id, t)| StoredSample {
                tenant_id,
                bytes: t.bytes,
                originals: t.count,
            })
            .collect())
    }
}
