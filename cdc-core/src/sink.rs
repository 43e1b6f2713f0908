//! The sink role: where events go.

use crate::{ChangeEvent, Position, Result, SchemaChange, SourcePartition};
use async_trait::async_trait;

/// A destination that makes events durable and says when they are.
///
/// The contract, modelled on DataFusion's `DataSink::write_all` (commit or roll back before
/// returning):
/// - [`write`](Sink::write) accepts events in source order. It may make some durable on its
///   own schedule (a file rotated, messages delivered) and returns their positions;
/// - [`flush`](Sink::flush) makes **everything written so far** durable before it returns, or
///   fails; on failure nothing it did not report is considered durable;
/// - a reported position means every event at or before it *in its source partition*
///   ([`SourcePartition`]) is durable, so the caller may acknowledge it upstream. Each call
///   reports the highest such position per source partition (an empty vector if nothing new);
/// - [`pre_commit`](Sink::pre_commit) (Kafka Connect's `SinkTask.preCommit`) reports what is
///   durable now without forcing anything; the pipeline calls it on its commit schedule and
///   calls `flush` only at shutdown, so a sink whose unit of durability is a file closes
///   files by its own rotation rule only. The default flushes (for sinks where delivery is
///   durability, such as a Kafka producer);
/// - [`partitions_revoked`](Sink::partitions_revoked) says the source gave up some source
///   partitions (a Kafka rebalance): the sink drops their open, not yet durable work and never
///   reports it; events of those partitions may come again from their last durable position;
/// - after an error the sink is not used again; the pipeline restarts from the last
///   acknowledged position, so a sink must tolerate seeing events again (idempotent writes,
///   deterministic file names).
///
/// # Example
///
/// ```
/// use cdc_core::testing::{sample_events, MemorySink};
/// use cdc_core::Sink;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut sink = MemorySink::new();
/// let events = sample_events("demo", 4);
/// sink.write(&events).await?;
/// let durable = sink.flush().await?;
/// assert_eq!(durable, vec![events[3].position().clone()]);
/// assert_eq!(sink.durable_events().len(), 4);
/// # Ok::<_, cdc_core::Error>(())
/// # }).unwrap();
/// ```
///
/// # Implementing a sink
///
/// A sink where a written event is durable at once (it prints, or each call commits)
/// reports, per source partition, the last position it wrote; `flush` then has nothing left
/// to do. A sink that buffers reports nothing from `write` and everything from `flush`.
///
/// ```
/// use cdc_core::{async_trait, ChangeEvent, Position, Result, Sink};
/// use std::collections::HashMap;
///
/// struct PrintSink;
///
/// #[async_trait]
/// impl Sink for PrintSink {
///     fn name(&self) -> &str {
///         "print"
///     }
///
///     async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
///         let mut last = HashMap::new();
///         for event in events {
///             println!("{} {:?}", event.table.id, event.op);
///             last.insert(event.position().source_partition(), event.position().clone());
///         }
///         Ok(last.into_values().collect())
///     }
///
///     async fn flush(&mut self) -> Result<Vec<Position>> {
///         Ok(Vec::new())
///     }
/// }
/// ```
///
/// `async_trait` keeps the trait object-safe, so `Box<dyn Sink>` can be chosen at run time.
#[async_trait]
pub trait Sink: Send {
    /// A short name for logs and errors.
    fn name(&self) -> &str;

    /// Accepts events; returns positions that became durable meanwhile.
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>>;

    /// A table's schema changed; called before any event with the new schema.
    async fn schema_changed(&mut self, change: &SchemaChange) -> Result<()> {
        let _ = change;
        Ok(())
    }

    /// Time-driven housekeeping (idle files closed on a schedule); returns positions that
    /// became durable. Called by the pipeline on its tick.
    async fn tick(&mut self) -> Result<Vec<Position>> {
        Ok(Vec::new())
    }

    /// The source gave up `partitions` (a Kafka partition revoked in a rebalance; Kafka
    /// Connect's `SinkTask.close`). Drops their written but not yet durable work (open files,
    /// buffers), so that nothing of it is reported durable, written twice when the
    /// partition's events come again from its last durable position, or written by two
    /// owners under one name. Called in stream order: before the events read after the
    /// revocation. A position is in a revoked partition iff
    /// [`SourcePartition::contains`] says so.
    ///
    /// The default does nothing, which is right for sinks that make each event durable on
    /// its own (a producer: delivered is durable, a re-read is an at-least-once duplicate).
    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> Result<()> {
        let _ = partitions;
        Ok(())
    }

    /// Returns positions durable now, per source partition, without forcing open work to close (Kafka
    /// Connect's `SinkTask.preCommit`: a file sink reports what its closed files hold). The
    /// pipeline calls it on its commit schedule and [`flush`](Sink::flush) only at shutdown.
    ///
    /// The default is [`flush`](Sink::flush), for sinks whose durability does not depend on
    /// a rotation rule (a producer waits for delivery).
    async fn pre_commit(&mut self) -> Result<Vec<Position>> {
        self.flush().await
    }

    /// Makes everything written so far durable; returns the highest durable position per source
    /// partition.
    async fn flush(&mut self) -> Result<Vec<Position>>;
}

#[async_trait]
impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        (**self).write(events).await
    }
    async fn schema_changed(&mut self, change: &SchemaChange) -> Result<()> {
        (**self).schema_changed(change).await
    }
    async fn tick(&mut self) -> Result<Vec<Position>> {
        (**self).tick().await
    }
    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> Result<()> {
        (**self).partitions_revoked(partitions).await
    }
    async fn pre_commit(&mut self) -> Result<Vec<Position>> {
        (**self).pre_commit().await
    }
    async fn flush(&mut self) -> Result<Vec<Position>> {
        (**self).flush().await
    }
}
