//! An offset store in an object store (S3, GCS, Azure, local files), fenced against a second
//! writer.

use super::{Fenced, OffsetStore};
use crate::{Checkpoint, Error, Result};
use async_trait::async_trait;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, path::Path};
use std::sync::{Arc, Mutex, PoisonError};

/// The digits of a generation in an object name: zero-padded so names sort as numbers do.
const GENERATION_DIGITS: usize = 20;
/// Object names are `checkpoint-<generation>.json`.
const NAME_PREFIX: &str = "checkpoint-";
const NAME_SUFFIX: &str = ".json";

/// Keeps checkpoints as numbered JSON objects under a prefix, and fences a second writer.
///
/// Each save creates the next generation, `<prefix>/checkpoint-<20-digit generation>.json`,
/// with [`PutMode::Create`] (S3 `If-None-Match: *`; a hard link on local disks), and
/// [`load`](OffsetStore::load) reads the highest generation. This is the protocol Delta Lake
/// uses for its log on object stores; it needs only conditional *create*, which every
/// object_store backend offers (conditional *update* is missing on local file systems).
///
/// Fencing: a store's generation is the one it loaded (or, at its first save without a load,
/// the highest one then). When two instances run against the same prefix, only one can create
/// any given generation; the other's save fails with [`Error::OffsetStore`] whose source is
/// [`Fenced`] (see [`Error::is_fenced`]), and so does a save that finds a newer generation
/// already written — so an instance that lost the race learns it at its next save and never
/// moves the checkpoint of the instance that won. After each save, generations older than the
/// previous one are deleted (best effort), so the prefix holds two objects in steady state.
///
/// A single save is still atomic: readers see a whole checkpoint, old or new.
#[derive(Debug)]
pub struct ObjectOffsetStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// The generation this instance last loaded or wrote; `None` before the first load.
    generation: Mutex<Option<u64>>,
}

impl ObjectOffsetStore {
    /// A store keeping its checkpoints under `prefix` in `store` (a "folder": the objects are
    /// `<prefix>/checkpoint-<generation>.json`; give each pipeline a prefix of its own).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: impl Into<Path>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            generation: Mutex::new(None),
        }
    }

    /// The prefix the checkpoints are kept under.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn name(&self) -> String {
        format!("{}/{}", self.store, self.prefix)
    }

    fn error(&self, source: impl Into<crate::BoxError>) -> Error {
        Error::OffsetStore {
            store: self.name(),
            source: source.into(),
        }
    }

    fn location(&self, generation: u64) -> Path {
        self.prefix.clone().join(format!(
            "{NAME_PREFIX}{generation:0width$}{NAME_SUFFIX}",
            width = GENERATION_DIGITS
        ))
    }

    /// Every generation directly under the prefix, ascending. Objects that are not
    /// checkpoints are ignored.
    async fn generations(&self) -> Result<Vec<u64>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| self.error(e))?;
        let mut generations: Vec<u64> = listing
            .objects
            .iter()
            .filter_map(|meta| parse_generation(meta.location.filename()?))
            .collect();
        generations.sort_unstable();
        Ok(generations)
    }

    fn remember(&self, generation: u64) {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(generation);
    }

    fn remembered(&self) -> Option<u64> {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn fenced(&self, attempted: u64, found: u64) -> Error {
        self.error(Fenced {
            store: self.name(),
            detail: format!(
                "this instance tried to write generation {attempted}, the store holds generation {found}"
            ),
            source: None,
        })
    }
}

/// The generation in a checkpoint object's name, or `None` for any other name.
fn parse_generation(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    (digits.len() == GENERATION_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[async_trait]
impl OffsetStore for ObjectOffsetStore {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        // The newest generation may be deleted by a concurrent writer between the list and the
        // get only if two writers share the prefix; then the list is simply taken again.
        for _ in 0..3 {
            let Some(&newest) = self.generations().await?.last() else {
                self.remember(0);
                return Ok(None);
            };
            let bytes = match self.store.get(&self.location(newest)).await {
                Ok(found) => found.bytes().await.map_err(|e| self.error(e))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.error(e)),
            };
            let checkpoint = serde_json::from_slice(&bytes).map_err(|e| self.error(e))?;
            self.remember(newest);
            return Ok(Some(checkpoint));
        }
        Err(self.error("the newest checkpoint kept disappearing while it was read"))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let base = match self.remembered() {
            Some(generation) => generation,
            None => self.generations().await?.last().copied().unwrap_or(0),
        };
        let next = base + 1;
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| self.error(e))?;
        let create = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&self.location(next), PutPayload::from(bytes), create)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                let found = self.generations().await?.last().copied().unwrap_or(next);
                return Err(self.fenced(next, found));
            }
            Err(e) => return Err(self.error(e)),
        }
        // Another instance may have moved on past `next` and deleted it before we created it
        // again: then ours is not the newest, and this instance has lost.
        let generations = self.generations().await?;
        if let Some(&newest) = generations.last()
            && newest > next
        {
            return Err(self.fenced(next, newest));
        }
        self.remember(next);
        // Keep the previous generation (a reader may be reading it) and delete the rest.
        for old in generations.into_iter().filter(|&g| g + 1 < next) {
            if let Err(e) = self.store.delete(&self.location(old)).await {
                tracing::debug!(store = %self.name(), generation = old, error = %e, "old checkpoint not deleted");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn generations_are_parsed_only_from_checkpoint_names() {
        assert_eq!(
            parse_generation("checkpoint-00000000000000000042.json"),
            Some(42)
        );
        assert_eq!(parse_generation("checkpoint-42.json"), None);
        assert_eq!(
            parse_generation("checkpoint-0000000000000000004x.json"),
            None
        );
        assert_eq!(parse_generation("offsets.json"), None);
    }

    #[tokio::test]
    async fn names_sort_as_generations_do() {
        let store = ObjectOffsetStore::new(Arc::new(InMemory::new()), "p");
        assert!(store.location(9).to_string() < store.location(10).to_string());
        assert_eq!(
            store.location(7).to_string(),
            "p/checkpoint-00000000000000000007.json"
        );
    }
}
