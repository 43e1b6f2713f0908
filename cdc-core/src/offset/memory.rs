//! An offset store in memory, for tests and for pipelines that keep offsets elsewhere.

use super::OffsetStore;
use crate::{Checkpoint, Result};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, PoisonError};

/// Keeps the checkpoint in memory. Clones share the same checkpoint, so a test can restart a
/// pipeline with the store the previous run saved to.
#[derive(Debug, Clone, Default)]
pub struct MemoryOffsetStore {
    saved: Arc<Mutex<Option<Checkpoint>>>,
}

impl MemoryOffsetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OffsetStore for MemoryOffsetStore {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        Ok(self
            .saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        *self.saved.lock().unwrap_or_else(PoisonError::into_inner) = Some(checkpoint.clone());
        Ok(())
    }
}
