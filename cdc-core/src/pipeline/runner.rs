//! The pipeline: wiring, flush policy, checkpoints and shutdown.

use super::{PipelineConfig, PipelineMetrics, reader::read_loop};
use crate::{
    ChangeSource, Checkpoint, Error, OffsetStore, Position, Result, Sink, SourceBatch,
    SourcePartition,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Runs a source into a sink until the source ends, the sink fails or shutdown is requested.
///
/// Guarantees:
/// - back-pressure: at most [`queue_capacity`](PipelineConfig::queue_capacity) batches wait
///   between source and sink;
/// - a position is saved to the offset store, and then acknowledged to the source, only after
///   the sink reported it durable;
/// - on the commit schedule (events, bytes, interval) the sink is asked what is durable
///   ([`Sink::pre_commit`]), which does not force files closed; [`Sink::flush`] runs only at
///   shutdown, so file boundaries follow the sink's rotation rule, not timing;
/// - source partitions the source gave up ([`SourceBatch::revoked_partitions`]) are dropped
///   in the sink and their written-not-durable positions forgotten before the batch's events
///   are written;
/// - on shutdown the sink is flushed and the checkpoint saved before `run` returns; batches
///   still queued are not written, and are read again on the next start; a shutdown while the
///   source is still starting (e.g. retrying a server that is down) returns at once;
/// - on a sink error nothing more is acknowledged and the error is returned.
///
/// # Example
///
/// ```
/// use cdc_core::testing::{sample_events, MemorySink, MemorySource};
/// use cdc_core::{MemoryOffsetStore, Pipeline, PipelineConfig};
/// use tokio_util::sync::CancellationToken;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let source = MemorySource::new("demo", sample_events("demo", 100)).ending_when_drained();
/// let sink = MemorySink::new();
/// let stored = sink.handle();
/// let offsets = MemoryOffsetStore::new();
/// let pipeline = Pipeline::new(PipelineConfig::new("demo"), source, sink, offsets.clone())?;
/// let report = pipeline.run(CancellationToken::new()).await?;
/// assert_eq!(report.events_written, 100);
/// assert_eq!(stored.durable_events().len(), 100);
/// # Ok::<_, cdc_core::Error>(())
/// # }).unwrap();
/// ```
pub struct Pipeline<Src, Snk, Off> {
    config: PipelineConfig,
    source: Src,
    sink: Snk,
    offsets: Off,
    metrics: Arc<PipelineMetrics>,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineReport {
    /// Events handed to the sink.
    pub events_written: u64,
    /// Commits: sink pre-commits on the schedule plus the flush at shutdown.
    pub flushes: u64,
    /// The checkpoint saved last.
    pub checkpoint: Checkpoint,
}

impl<Src, Snk, Off> std::fmt::Debug for Pipeline<Src, Snk, Off> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<Src, Snk, Off> Pipeline<Src, Snk, Off>
where
    Src: ChangeSource + 'static,
    Snk: Sink,
    Off: OffsetStore,
{
    /// A pipeline; fails if the configuration is invalid.
    pub fn new(config: PipelineConfig, source: Src, sink: Snk, offsets: Off) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            source,
            sink,
            offsets,
            metrics: Arc::default(),
        })
    }

    /// Uses `metrics` for the counters, to share them with an exporter made beforehand.
    pub fn with_metrics(mut self, metrics: Arc<PipelineMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Live counters; clone the `Arc` before calling [`run`](Self::run).
    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs until the source ends or `shutdown` is cancelled (then flushes, checkpoints and
    /// returns), or until an error.
    pub async fn run(self, shutdown: CancellationToken) -> Result<PipelineReport> {
        let span = tracing::info_span!("pipeline", name = %self.config.name);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(mut self, shutdown: CancellationToken) -> Result<PipelineReport> {
        let checkpoint = self.offsets.load().await?.unwrap_or_default();
        tracing::info!(?checkpoint, "starting");
        // A source may take long to start (a server that is down is retried for tens of
        // seconds): shutdown must not wait for it. Nothing was read, so nothing is lost.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                tracing::info!("shutdown before the source started");
                return Ok(PipelineReport {
                    events_written: 0,
                    flushes: 0,
                    checkpoint,
                });
            }
            started = self.source.start((!checkpoint.is_empty()).then_some(&checkpoint)) => started?,
        }

        let (batch_tx, batch_rx) = mpsc::channel(self.config.queue_capacity);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let stop_reader = CancellationToken::new();
        let reader = tokio::spawn(
            read_loop(
                self.source,
                batch_tx,
                ack_rx,
                stop_reader.clone(),
                Arc::clone(&self.metrics),
            )
            .in_current_span(),
        );
        let mut writer = Writer {
            config: &self.config,
            sink: &mut self.sink,
            offsets: &self.offsets,
            metrics: &self.metrics,
            acks: ack_tx,
            durable: checkpoint,
            written: Checkpoint::default(),
            heartbeats: Checkpoint::default(),
            commit_times: HashMap::new(),
            pending_events: 0,
            pending_bytes: 0,
            last_flush: Instant::now(),
        };
        let written = writer.run(batch_rx, &shutdown).await;
        let checkpoint = writer.durable.clone();
        drop(writer);
        stop_reader.cancel();
        let read = reader.await.map_err(|e| Error::Pipeline {
            reason: format!("source task failed: {e}"),
        })?;
        written?;
        read?;
        let metrics = self.metrics.snapshot();
        tracing::info!(events = metrics.events_written, "stopped");
        Ok(PipelineReport {
            events_written: metrics.events_written,
            flushes: metrics.flushes,
            checkpoint,
        })
    }
}

/// The sink side: writes batches, pre-commits on the schedule, flushes at shutdown, and turns
/// durable positions into checkpoints and acknowledgements.
struct Writer<'a, Snk, Off> {
    config: &'a PipelineConfig,
    sink: &'a mut Snk,
    offsets: &'a Off,
    metrics: &'a PipelineMetrics,
    acks: mpsc::UnboundedSender<Position>,
    /// What is durable: saved to the offset store after every change.
    durable: Checkpoint,
    /// The last position handed to the sink, per source partition.
    written: Checkpoint,
    /// Heartbeat positions waiting for the events before them to become durable.
    heartbeats: Checkpoint,
    /// Commit time of the last written event per source partition, for the lag metric.
    commit_times: HashMap<SourcePartition, DateTime<Utc>>,
    pending_events: usize,
    pending_bytes: usize,
    last_flush: Instant,
}

impl<Snk: Sink, Off: OffsetStore> Writer<'_, Snk, Off> {
    async fn run(
        &mut self,
        mut batches: mpsc::Receiver<SourceBatch>,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let mut ticker = tokio::time::interval(self.config.tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                batch = batches.recv() => match batch {
                    Some(batch) => self.write(batch).await?,
                    None => break,
                },
                _ = ticker.tick() => self.tick().await?,
            }
        }
        // Queued batches are not written (they are read again after a restart), but their
        // revocations are applied: the flush must not upload files of a partition another
        // owner now writes.
        while let Ok(batch) = batches.try_recv() {
            if !batch.revoked_partitions.is_empty() {
                self.revoke(&batch.revoked_partitions).await?;
            }
        }
        drop(batches);
        self.flush().await
    }

    async fn write(&mut self, batch: SourceBatch) -> Result<()> {
        if !batch.revoked_partitions.is_empty() {
            self.revoke(&batch.revoked_partitions).await?;
        }
        for change in &batch.schema_changes {
            self.sink.schema_changed(change).await?;
        }
        if !batch.events.is_empty() {
            let bytes: usize = batch.events.iter().map(|e| e.approx_size()).sum();
            // Events come in source order, so within a run of one source partition only the
            // last one moves the written position: no partition or clone per event here.
            let mut events = batch.events.iter().peekable();
            while let Some(event) = events.next() {
                let position = event.position();
                if events
                    .peek()
                    .is_some_and(|next| next.position().same_source_partition(position))
                {
                    continue;
                }
                self.written.advance(position.clone());
                if let Some(time) = event.source.commit_time {
                    self.commit_times.insert(position.source_partition(), time);
                }
            }
            let durable = self.sink.write(&batch.events).await?;
            self.metrics.written(batch.events.len(), bytes);
            self.pending_events += batch.events.len();
            self.pending_bytes += bytes;
            self.commit(durable).await?;
        }
        let mut heartbeats = batch.all_heartbeats().peekable();
        if heartbeats.peek().is_some() {
            for heartbeat in heartbeats {
                self.heartbeats.advance(heartbeat.clone());
            }
            self.commit(Vec::new()).await?;
        }
        if self.pending_events >= self.config.flush_max_events
            || self.pending_bytes >= self.config.flush_max_bytes
        {
            self.pre_commit().await?;
        }
        Ok(())
    }

    /// The source gave up `partitions`: the sink drops their open work, and what was written
    /// for them but is not durable is forgotten, so a partition's written position falls back
    /// to its durable one (heartbeats wait on it) and its heartbeats are dropped (they
    /// belonged to the old ownership; the next one comes with the re-read).
    async fn revoke(&mut self, partitions: &[SourcePartition]) -> Result<()> {
        self.sink.partitions_revoked(partitions).await?;
        for partition in partitions {
            self.written.remove(partition);
            if let Some(durable) = self.durable.get(partition) {
                self.written.advance(durable.clone());
            }
            self.heartbeats.remove(partition);
            self.commit_times.remove(partition);
        }
        tracing::debug!(partitions = partitions.len(), "source partitions revoked");
        Ok(())
    }

    async fn tick(&mut self) -> Result<()> {
        let durable = self.sink.tick().await?;
        self.commit(durable).await?;
        let due = self
            .config
            .flush_interval
            .is_some_and(|i| self.last_flush.elapsed() >= i);
        if due && self.pending_events > 0 {
            self.pre_commit().await?;
        }
        Ok(())
    }

    /// The commit schedule: asks the sink what is durable now, without forcing it.
    async fn pre_commit(&mut self) -> Result<()> {
        let durable = self.sink.pre_commit().await?;
        self.committed_schedule(durable, "pre-committed").await
    }

    /// Shutdown: makes everything written durable.
    async fn flush(&mut self) -> Result<()> {
        let durable = self.sink.flush().await?;
        self.committed_schedule(durable, "flushed").await
    }

    async fn committed_schedule(&mut self, durable: Vec<Position>, what: &str) -> Result<()> {
        self.metrics.flushed();
        self.pending_events = 0;
        self.pending_bytes = 0;
        self.last_flush = Instant::now();
        tracing::debug!(positions = durable.len(), "{what}");
        self.commit(durable).await
    }

    /// Records what the sink reported durable, releases heartbeats that are now covered, and
    /// saves and acknowledges whatever moved.
    async fn commit(&mut self, reported: Vec<Position>) -> Result<()> {
        let mut moved = Vec::new();
        for position in reported {
            if !self.written.covers(&position) {
                return Err(Error::Sink {
                    name: self.sink.name().to_string(),
                    position: Some(position),
                    source: "the sink reported a position durable that it was never given".into(),
                });
            }
            if self.durable.advance(position.clone()) {
                moved.push(position);
            }
        }
        let ready: Vec<Position> = self
            .heartbeats
            .positions()
            .filter(|hb| {
                self.written
                    .get_for(hb)
                    .is_none_or(|w| self.durable.covers(w))
            })
            .cloned()
            .collect();
        for heartbeat in ready {
            self.heartbeats.remove(&heartbeat.source_partition());
            if self.durable.advance(heartbeat.clone()) {
                moved.push(heartbeat);
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        self.offsets.save(&self.durable).await?;
        for position in moved {
            let commit_time = self.commit_times.get(&position.source_partition()).copied();
            self.metrics
                .checkpointed(Some(position.clone()), commit_time);
            // The source task may already have stopped (shutdown); the checkpoint is saved.
            let _ = self.acks.send(position);
        }
        Ok(())
    }
}
