//! Metrics through the `metrics` crate: a sink wrapper that counts what passes through it per
//! table, and a sampler that turns the pipeline's own counters, the source's lag and the
//! snapshot's progress into gauges and counters.
//!
//! Every metric name this binary exports is in [`METRIC_NAMES`]; the Grafana dashboard test
//! checks each panel's query against that list.

use async_trait::async_trait;
use cdc_core::Lsn;
use cdc_core::{
    ChangeEvent, PipelineMetrics, Position, Result, SchemaChange, Sink, SourcePartition,
};
use cdc_mssql::SnapshotProgress;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Events handed to the sink, by `table` (`database.schema.table`) and `op` (c/u/d/r/t).
pub const EVENTS: &str = "cdc_events_total";
/// Approximate bytes of row data handed to the sink, by `table`.
pub const EVENT_BYTES: &str = "cdc_event_bytes_total";
/// Events the source delivered.
pub const EVENTS_READ: &str = "cdc_events_read_total";
/// Sink flushes.
pub const FLUSHES: &str = "cdc_flushes_total";
/// Checkpoints saved.
pub const CHECKPOINTS: &str = "cdc_checkpoints_total";
/// Milliseconds between now and the commit time of the newest event handed to the sink:
/// grows while a stalled source delivers nothing.
pub const SOURCE_LAG_MS: &str = "cdc_source_lag_ms";
/// Milliseconds from commit to durable for the last event made durable.
pub const DURABLE_LAG_MS: &str = "cdc_durable_lag_ms";
/// Snapshot rows read, by `database` and `table`.
pub const SNAPSHOT_ROWS_DONE: &str = "cdc_snapshot_rows_done";
/// Snapshot rows expected (`sys.partitions` estimate), by `database` and `table`.
pub const SNAPSHOT_ROWS_TOTAL: &str = "cdc_snapshot_rows_total";
/// Object-store files written by the S3 sink.
pub const FILES_WRITTEN: &str = "cdc_files_written_total";
/// Bytes in those files.
pub const FILE_BYTES_WRITTEN: &str = "cdc_file_bytes_written_total";
/// Object-store calls retried.
pub const RETRIES: &str = "cdc_retries_total";
/// Errors, by `kind` (`source`, `sink`, `offsets`, `pipeline`).
pub const ERRORS: &str = "cdc_errors_total";
/// 1 while the pipeline runs and has not failed, else 0.
pub const READY: &str = "cdc_ready";
/// SQL Server source, by `database`: `sys.fn_cdc_get_max_lsn()` (the highest LSN the capture
/// job has written to the change tables) minus the commit LSN of the newest event of that
/// database handed to the sink, both read as 80-bit unsigned big-endian integers
/// (`vlf × 2^48 + block × 2^16 + slot`), never below 0. Within one virtual log file it is a
/// distance in log blocks × 2^16 plus slots; each VLF boundary between the two adds 2^48. It is
/// an upper bound of the work pending: the capture job also moves the max LSN for transactions
/// with nothing to capture (`tran_id = 0x00` rows of `cdc.lsn_time_mapping`), which the source
/// never delivers, so a caught-up pipeline can show a small distance until the next captured
/// change. Read every `lag_interval_ms` on a connection of its own; absent until the first
/// event of the database is delivered.
pub const SOURCE_LSN_DISTANCE: &str = "cdc_source_lsn_distance";
/// SQL Server source, by `database`: errors of the capture job's latest log scan session
/// (`sys.dm_cdc_errors`), 0 while it works. Above 0 the capture job captures nothing more
/// — and [`SOURCE_LSN_DISTANCE`] stays at 0, since the max LSN stands still too — until the
/// cause is fixed (cdc-mssql's `CaptureJobError` names the known one). Read every
/// `lag_interval_ms` on the lag poller's connection; needs VIEW DATABASE STATE (absent
/// without it).
pub const CAPTURE_JOB_ERRORS: &str = "cdc_source_capture_job_errors";
/// Kafka source, by `topic` and `partition`: the partition's high watermark minus the consumer
/// group's committed offset (the checkpoint: committed only after the sink made the records
/// durable); with nothing committed yet, the high watermark minus the low one. Read every
/// `lag_interval_ms` by a client of its own that does not join the group.
pub const CONSUMER_LAG: &str = "cdc_consumer_lag";

/// The `kind` labels of [`ERRORS`].
pub const ERROR_KINDS: &[&str] = &[
    "config", "source", "sink", "encode", "decode", "offsets", "pipeline",
];

/// Every metric name the binary exports.
pub const METRIC_NAMES: &[&str] = &[
    EVENTS,
    EVENT_BYTES,
    EVENTS_READ,
    FLUSHES,
    CHECKPOINTS,
    SOURCE_LAG_MS,
    DURABLE_LAG_MS,
    SNAPSHOT_ROWS_DONE,
    SNAPSHOT_ROWS_TOTAL,
    FILES_WRITTEN,
    FILE_BYTES_WRITTEN,
    RETRIES,
    ERRORS,
    READY,
    SOURCE_LSN_DISTANCE,
    CAPTURE_JOB_ERRORS,
    CONSUMER_LAG,
];

/// Shared between the metered sink (which records commit times) and the sampler.
#[derive(Debug, Clone, Default)]
pub struct SinkCounters {
    pipeline: Arc<str>,
    newest_commit: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// The newest commit LSN handed to the sink, by database (SQL Server sources).
    delivered_lsn: Arc<Mutex<HashMap<Arc<str>, Lsn>>>,
}

impl SinkCounters {
    /// Counters labelled with `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        Self {
            pipeline: pipeline.into(),
            newest_commit: Arc::default(),
            delivered_lsn: Arc::default(),
        }
    }

    /// The pipeline's name, the `pipeline` label.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The commit LSN of the newest event of `database` handed to the sink, if any.
    pub fn delivered_lsn(&self, database: &str) -> Option<Lsn> {
        self.delivered_lsn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(database)
            .copied()
    }

    fn saw_positions(&self, events: &[ChangeEvent]) {
        // The newest position is the last one of its database in the batch (positions only
        // grow within a database), so the batch is read backwards and each database once.
        let mut delivered = self
            .delivered_lsn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut seen: Option<&Arc<str>> = None;
        for e in events.iter().rev() {
            let Position::SqlServer(p) = &e.source.position else {
                continue;
            };
            if seen.is_some_and(|d| Arc::ptr_eq(d, &p.database)) {
                continue;
            }
            seen = Some(&p.database);
            match delivered.get_mut(&p.database) {
                Some(lsn) => *lsn = (*lsn).max(p.commit_lsn),
                None => {
                    delivered.insert(Arc::clone(&p.database), p.commit_lsn);
                }
            }
        }
    }

    fn saw(&self, commit: DateTime<Utc>) {
        let mut newest = self
            .newest_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if newest.is_none_or(|n| commit > n) {
            *newest = Some(commit);
        }
    }

    /// Exports every error kind's counter at 0 from the start, so a dashboard or alert on
    /// `increase(cdc_errors_total[5m])` has a series before the first error (Prometheus's
    /// advice for counters: initialise them; a newcomer found none exported).
    pub fn zero_errors(&self) {
        for kind in ERROR_KINDS {
            metrics::counter!(ERRORS, "pipeline" => self.pipeline.to_string(), "kind" => *kind)
                .increment(0);
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &'static str) {
        metrics::counter!(ERRORS, "pipeline" => self.pipeline.to_string(), "kind" => kind)
            .increment(1);
    }

    /// Sets the readiness gauge.
    pub fn ready(&self, ready: bool) {
        metrics::gauge!(READY, "pipeline" => self.pipeline.to_string()).set(if ready {
            1.0
        } else {
            0.0
        });
    }

    /// Samples the pipeline's counters, the lag and the snapshot progress into metrics.
    pub fn sample(&self, pipeline: &PipelineMetrics, snapshot: Option<&SnapshotProgress>) {
        let name = self.pipeline.to_string();
        let m = pipeline.snapshot();
        metrics::counter!(EVENTS_READ, "pipeline" => name.clone()).absolute(m.events_read);
        metrics::counter!(FLUSHES, "pipeline" => name.clone()).absolute(m.flushes);
        metrics::counter!(CHECKPOINTS, "pipeline" => name.clone()).absolute(m.checkpoints);
        if let Some(lag) = m.lag {
            metrics::gauge!(DURABLE_LAG_MS, "pipeline" => name.clone())
                .set(lag.as_secs_f64() * 1000.0);
        }
        let newest = *self
            .newest_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(newest) = newest {
            let lag = (Utc::now() - newest).num_milliseconds().max(0);
            metrics::gauge!(SOURCE_LAG_MS, "pipeline" => name.clone()).set(lag as f64);
        }
        if let Some(snapshot) = snapshot {
            for (database, table) in snapshot.tables() {
                let labels = [
                    ("pipeline", name.clone()),
                    ("database", database.clone()),
                    ("table", table.table.clone()),
                ];
                metrics::gauge!(SNAPSHOT_ROWS_DONE, &labels).set(table.rows_done as f64);
                metrics::gauge!(SNAPSHOT_ROWS_TOTAL, &labels)
                    .set(table.rows_estimated.max(table.rows_done) as f64);
            }
        }
    }
}

type FileStats<S> = Box<dyn Fn(&S) -> (u64, u64, u64) + Send>;

/// A sink that counts events and bytes per table, sink errors and (for the S3 sink) files,
/// then hands everything to the sink it wraps unchanged.
pub struct MeteredSink<S> {
    inner: S,
    counters: SinkCounters,
    file_stats: Option<FileStats<S>>,
}

impl<S> std::fmt::Debug for MeteredSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredSink")
            .field("pipeline", &self.counters.pipeline)
            .finish_non_exhaustive()
    }
}

impl<S: Sink> MeteredSink<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, counters: SinkCounters) -> Self {
        Self {
            inner,
            counters,
            file_stats: None,
        }
    }

    /// Reads `(files, bytes, retries)` from the sink after each flush and tick.
    pub fn with_file_stats(
        mut self,
        stats: impl Fn(&S) -> (u64, u64, u64) + Send + 'static,
    ) -> Self {
        self.file_stats = Some(Box::new(stats));
        self
    }

    fn record_files(&self) {
        if let Some(stats) = &self.file_stats {
            let (files, bytes, retries) = stats(&self.inner);
            let name = self.counters.pipeline.to_string();
            metrics::counter!(FILES_WRITTEN, "pipeline" => name.clone()).absolute(files);
            metrics::counter!(FILE_BYTES_WRITTEN, "pipeline" => name.clone()).absolute(bytes);
            metrics::counter!(RETRIES, "pipeline" => name).absolute(retries);
        }
    }

    fn checked<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.counters.error("sink");
        }
        result
    }
}

#[async_trait]
impl<S: Sink> Sink for MeteredSink<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        let name = self.counters.pipeline.to_string();
        // Runs of one table and op are counted together: batches are mostly such runs.
        let mut i = 0;
        while let Some(first) = events.get(i) {
            let mut j = i + 1;
            let mut bytes = first.approx_size();
            while let Some(e) = events.get(j) {
                if !Arc::ptr_eq(&e.table, &first.table) || e.op != first.op {
                    break;
                }
                bytes += e.approx_size();
                j += 1;
            }
            let table = first.table.id.to_string();
            metrics::counter!(EVENTS, "pipeline" => name.clone(), "table" => table.clone(), "op" => first.op.code())
                .increment((j - i) as u64);
            metrics::counter!(EVENT_BYTES, "pipeline" => name.clone(), "table" => table)
                .increment(bytes as u64);
            i = j;
        }
        if let Some(commit) = events.iter().rev().find_map(|e| e.source.commit_time) {
            self.counters.saw(commit);
        }
        self.counters.saw_positions(events);
        let result = self.inner.write(events).await;
        self.checked(result)
    }

    async fn schema_changed(&mut self, change: &SchemaChange) -> Result<()> {
        let result = self.inner.schema_changed(change).await;
        self.checked(result)
    }

    async fn tick(&mut self) -> Result<Vec<Position>> {
        let result = self.inner.tick().await;
        self.record_files();
        self.checked(result)
    }

    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> Result<()> {
        let result = self.inner.partitions_revoked(partitions).await;
        self.record_files();
        self.checked(result)
    }

    async fn pre_commit(&mut self) -> Result<Vec<Position>> {
        let result = self.inner.pre_commit().await;
        self.record_files();
        self.checked(result)
    }

    async fn flush(&mut self) -> Result<Vec<Position>> {
        let result = self.inner.flush().await;
        self.record_files();
        self.checked(result)
    }
}
