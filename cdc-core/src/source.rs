//! The change source role: where events come from.

use crate::{ChangeEvent, Checkpoint, Position, Result, SchemaChange, SourcePartition};
use async_trait::async_trait;

/// What one call to [`ChangeSource::next_batch`] returns: events in source order.
///
/// The parts take effect in this order: `revoked_partitions`, `schema_changes`, `events`, then
/// the heartbeats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceBatch {
    /// Source partitions the source gave up before this batch, e.g. Kafka partitions revoked
    /// in a consumer-group rebalance (Kafka Connect closes their writers in
    /// `SinkTask.close`). What the pipeline wrote for them and is not yet durable is dropped
    /// ([`Sink::partitions_revoked`](crate::Sink::partitions_revoked)); the partition's next
    /// owner (possibly this source again, later) re-reads it from the last committed
    /// position. They take effect before everything else in the batch.
    pub revoked_partitions: Vec<SourcePartition>,
    /// Schema changes that take effect before `events`. A source ends a batch before a schema
    /// change so that this rule is enough to keep them in order.
    pub schema_changes: Vec<SchemaChange>,
    /// Change events in source order.
    pub events: Vec<ChangeEvent>,
    /// The position the source has reached, at or after the last event's. A source sets it on
    /// a quiet database so that checkpoints keep moving (a heartbeat).
    pub heartbeat: Option<Position>,
    /// Further heartbeats, at most one per source partition, for sources with many (a Kafka source
    /// whose partitions end on skipped records: tombstones, transaction markers). Each one is
    /// acknowledged once everything written before it in its source partition is durable, like
    /// [`heartbeat`](Self::heartbeat).
    pub heartbeats: Vec<Position>,
}

impl SourceBatch {
    /// A batch of events.
    pub fn of(events: Vec<ChangeEvent>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }

    /// Whether the batch carries nothing at all.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.schema_changes.is_empty()
            && self.heartbeat.is_none()
            && self.heartbeats.is_empty()
            && self.revoked_partitions.is_empty()
    }

    /// Every heartbeat of the batch: [`heartbeat`](Self::heartbeat), then
    /// [`heartbeats`](Self::heartbeats).
    pub fn all_heartbeats(&self) -> impl Iterator<Item = &Position> {
        self.heartbeat.iter().chain(&self.heartbeats)
    }
}

/// A stream of change events that can be resumed from a checkpoint.
///
/// The contract:
/// - [`start`](ChangeSource::start) positions the source just after the checkpoint (or at its
///   configured beginning when there is none);
/// - [`next_batch`](ChangeSource::next_batch) returns events in source order and should come
///   back within the source's poll interval, with an empty batch if nothing happened, so the
///   caller can act on acknowledgements and shutdown; `Ok(None)` means the source has ended;
/// - dropping a `next_batch` future loses nothing: what was not acknowledged is read again
///   after a restart;
/// - [`ack`](ChangeSource::ack) is called only with positions that are durable downstream; the
///   source may then release what it kept to re-read them (a Kafka source commits the offset).
///
/// # Example
///
/// ```
/// use cdc_core::testing::{sample_events, MemorySource};
/// use cdc_core::ChangeSource;
/// # tokio_test_block(async {
/// let mut source = MemorySource::new("demo", sample_events("demo", 3));
/// source.start(None).await?;
/// let batch = source.next_batch().await?.expect("a batch");
/// assert_eq!(batch.events.len(), 3);
/// source.ack(batch.events[2].position()).await?;
/// # Ok::<_, cdc_core::Error>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future<Output = cdc_core::Result<()>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f).unwrap()
/// # }
/// ```
///
/// Methods are `async` through `async_trait` so that `Box<dyn ChangeSource>` works: a pipeline
/// can hold a source chosen at run time, which native `async fn` in traits does not allow.
#[async_trait]
pub trait ChangeSource: Send {
    /// A short name for logs and errors.
    fn name(&self) -> &str;

    /// Positions the source after `checkpoint`, or at its beginning.
    async fn start(&mut self, checkpoint: Option<&Checkpoint>) -> Result<()>;

    /// The next events, in source order; `Ok(None)` once the source has ended.
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Everything up to and including `position` (in its source partition) is durable downstream.
    async fn ack(&mut self, position: &Position) -> Result<()>;

    /// Releases connections; called once, after the last `ack`.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<S: ChangeSource + ?Sized> ChangeSource for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn start(&mut self, checkpoint: Option<&Checkpoint>) -> Result<()> {
        (**self).start(checkpoint).await
    }
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        (**self).next_batch().await
    }
    async fn ack(&mut self, position: &Position) -> Result<()> {
        (**self).ack(position).await
    }
    async fn close(&mut self) -> Result<()> {
        (**self).close().await
    }
}
