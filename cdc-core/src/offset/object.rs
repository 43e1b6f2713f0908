//! An offset store in an object store (S3, GCS, Azure, local files).

use super::OffsetStore;
use crate::{Checkpoint, Error, Result};
use async_trait::async_trait;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
use std::sync::Arc;

/// Keeps the checkpoint as one JSON object.
///
/// Object stores replace an object atomically on a single PUT: readers see the old or the new
/// checkpoint, never part of one.
#[derive(Debug, Clone)]
pub struct ObjectOffsetStore {
    store: Arc<dyn ObjectStore>,
    location: Path,
}

impl ObjectOffsetStore {
    /// A store writing `location` in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<Path>) -> Self {
        Self {
            store,
            location: location.into(),
        }
    }

    fn error(&self, source: impl Into<crate::BoxError>) -> Error {
        Error::OffsetStore {
            store: format!("{}/{}", self.store, self.location),
            source: source.into(),
        }
    }
}

#[async_trait]
impl OffsetStore for ObjectOffsetStore {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        let bytes = match self.store.get(&self.location).await {
            Ok(found) => found.bytes().await.map_err(|e| self.error(e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| self.error(e))?;
        self.store
            .put(&self.location, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }
}
