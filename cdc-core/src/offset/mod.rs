//! The offset store role: where checkpoints live between runs.

mod file;
mod memory;
mod object;

pub use file::FileOffsetStore;
pub use memory::MemoryOffsetStore;
pub use object::ObjectOffsetStore;

/// Why a save was refused: another instance of the pipeline writes the same checkpoint and got
/// there first. The source of an [`Error::OffsetStore`](crate::Error::OffsetStore); test for it
/// with [`Error::is_fenced`](crate::Error::is_fenced).
///
/// The instance that gets this error has lost: it must stop without acknowledging anything
/// more, and leave the pipeline to the instance that won. Restarting it makes it load the
/// winner's checkpoint (and fence the winner in turn, if both keep running).
#[derive(Debug, thiserror::Error)]
#[error("checkpoint store {store} is written by another instance: {detail}")]
pub struct Fenced {
    /// Which store.
    pub store: String,
    /// How the store found out (generations compared, a producer epoch bumped).
    pub detail: String,
    /// The store's own error, when it reported the fencing (a Kafka producer's, say).
    #[source]
    pub source: Option<crate::BoxError>,
}

use crate::{Checkpoint, Result};
use async_trait::async_trait;

/// Loads and saves a pipeline's checkpoint, atomically: a load after a crash returns either
/// the previous checkpoint or the new one, never a mix or a torn file.
///
/// Stores that several instances could share fence them: a save by an instance that is no
/// longer the store's only writer fails (for [`ObjectOffsetStore`], with [`Fenced`]) instead
/// of overwriting the other instance's checkpoint.
///
/// # Example
///
/// ```
/// use cdc_core::{Checkpoint, MemoryOffsetStore, OffsetStore, Position};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryOffsetStore::new();
/// assert_eq!(store.load().await?, None);
/// let mut checkpoint = Checkpoint::default();
/// checkpoint.advance(Position::Sequence { stream: "orders".into(), seq: 42 });
/// store.save(&checkpoint).await?;
/// assert_eq!(store.load().await?, Some(checkpoint));
/// # Ok::<_, cdc_core::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait OffsetStore: Send + Sync {
    /// The last saved checkpoint, or `None` if nothing was ever saved.
    async fn load(&self) -> Result<Option<Checkpoint>>;

    /// Replaces the saved checkpoint.
    async fn save(&self, checkpoint: &Checkpoint) -> Result<()>;
}

#[async_trait]
impl<S: OffsetStore + ?Sized> OffsetStore for std::sync::Arc<S> {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        (**self).load().await
    }
    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        (**self).save(checkpoint).await
    }
}

#[async_trait]
impl<S: OffsetStore + ?Sized> OffsetStore for Box<S> {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        (**self).load().await
    }
    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        (**self).save(checkpoint).await
    }
}
