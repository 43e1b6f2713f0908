//! The sink role: where events go.

use crate::{ChangeEvent, Position, Result, SchemaChange};
use async_trait::async_trait;

/// A destination that makes events durable and says when they are.
///
/// The contract, modelled on DataFusion's `DataSink::write_all` (commit or roll back before
/// returning):
/// - [`write`](Sink::write) accepts events in source order. It may make some durable on its
///   own schedule (a file rotated, messages delivered) and returns their positions;
/// - [`flush`](Sink::flush) makes **everything written so far** durable before it returns, or
///   fails; on failure nothing it did not report is considered durable;
/// - a reported position means every event at or before it *in its lane* is durable, so the
///   caller may acknowledge it upstream. Each call reports the highest such position per lane
///   (an empty vector if nothing new);
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

    /// Makes everything written so far durable; returns the highest durable position per lane.
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
    async fn flush(&mut self) -> Result<Vec<Position>> {
        (**self).flush().await
    }
}
