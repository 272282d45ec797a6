//! Originals' bytes in the usage archive's object store (the S3-compatible
//! bucket when distributed): the one adapter between the two crates' traits,
//! here where the binary wires them, so neither crate depends on the other.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use resizer_originals::shared::BlobStore;
use resizer_usage::archive::ObjectStore;

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
