//! The sink: events in, files out, durable positions back.
//!
//! An event goes to its key's open file ([`files`](crate::files)); a key seen for the first
//! time is first looked up in the store ([`recovery`](crate::recovery)); files close by
//! [`Rotation`](crate::Rotation) rule, schema change, memory pressure or flush and go up
//! through [`upload`](crate::upload); the [`ledger`](crate::ledger) says which positions
//! are durable.

use crate::error::{Result, S3SinkError};
use crate::files::{Failed, Fast, FileTable};
use crate::format::Encoders;
use crate::ledger::Ledger;
use crate::recovery;
use crate::retry::RetryCounter;
use crate::rotation::Reason;
use crate::settings::Settings;
use crate::stats::SinkStats;
use crate::upload::{Uploaded, Uploader, upload};
use async_trait::async_trait;
use cdc_core::{ChangeEvent, Position, SchemaChange, Sink};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use std::sync::Arc;
use tokio::time::Instant;

/// What the synchronous fast path did with the events at the start of a slice.
enum Step {
    /// `n` events were appended or skipped; nothing else to do.
    Done(usize),
    /// The first event needs the store (recovery, a new file, a rotation first): take the
    /// slow path.
    Slow,
    /// `n` events were appended to entry `i`'s file; now upload parts, rotate or relieve the
    /// budget.
    After(usize, usize),
}

/// A [`Sink`] writing Parquet or NDJSON files to any object store in the Kafka Connect
/// layout, exactly once.
///
/// Build one with [`S3Sink::builder`](crate::S3Sink::builder). See the crate documentation for the guarantees.
///
/// ```
/// use cdc_core::testing::sample_events;
/// use cdc_core::Sink;
/// use s3_sink::S3Sink;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut sink = S3Sink::builder().url("memory:///lake").build()?;
/// let events = sample_events("demo", 10);
/// assert!(sink.write(&events).await?.is_empty()); // the file is still open
/// let durable = sink.flush().await?;
/// assert_eq!(durable, vec![events[9].position().clone()]);
/// assert_eq!(sink.stats().files_written, 1);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct S3Sink {
    settings: Arc<Settings>,
    uploader: Uploader,
    /// Makes new files' encoders and reads stored files back, for the configured format.
    encoders: Encoders,
    /// Which file each event goes to, and the files open now.
    files: FileTable,
    /// What the sink holds of each source partition and what it reported durable.
    ledger: Ledger,
    stats: SinkStats,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("settings", &self.settings)
            .field("encoders", &self.encoders)
            .field("store", &self.uploader.store.to_string())
            .field("open_files", &self.files.open_count())
            .field("buffered_bytes", &self.files.budget().used())
            .finish()
    }
}

impl S3Sink {
    pub(crate) fn from_settings(
        store: Arc<dyn ObjectStore>,
        settings: Settings,
        encoders: Encoders,
    ) -> Self {
        let uploader = Uploader {
            store,
            retry: settings.retry.clone(),
            retries: Arc::new(RetryCounter::default()),
        };
        Self {
            files: FileTable::new(settings.memory_budget),
            settings: Arc::new(settings),
            uploader,
            encoders,
            ledger: Ledger::default(),
            stats: SinkStats::default(),
        }
    }

    /// The object store the sink writes to.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.uploader.store)
    }

    /// The key prefix under which topics are written.
    pub fn prefix(&self) -> &Path {
        &self.settings.prefix
    }

    /// What the sink has done so far.
    pub fn stats(&self) -> SinkStats {
        let budget = self.files.budget();
        SinkStats {
            retries: self.uploader.retries.get(),
            open_files: self.files.open_count(),
            buffered_bytes: budget.used(),
            peak_buffered_bytes: budget.peak(),
            ..self.stats.clone()
        }
    }

    fn sink_error(&self, position: Option<Position>, error: S3SinkError) -> cdc_core::Error {
        cdc_core::Error::Sink {
            name: self.settings.name.clone(),
            position,
            source: Box::new(error),
        }
    }

    /// Appends the run of events starting at `events[index]` without touching the store,
    /// when that is all it needs (see [`FileTable::append_fast`]). The ledger notes the
    /// run's last event once. On an error, which event failed (its index in `events`).
    fn write_fast(
        &mut self,
        events: &[ChangeEvent],
        index: usize,
    ) -> std::result::Result<Step, Failed> {
        let settings = &*self.settings;
        let fast = self
            .files
            .append_fast(
                events.get(index..).unwrap_or_default(),
                &*settings.partitioner,
                &settings.rotation,
                settings.part_size,
            )
            .map_err(|f| Failed {
                at: index + f.at,
                error: f.error,
            })?;
        Ok(match fast {
            Fast::Stored(partition) => {
                // A replay of an event a stored file already holds.
                self.stats.events_skipped += 1;
                self.ledger.note(partition, index);
                Step::Done(1)
            }
            Fast::Appended {
                source_partition,
                entry,
                count,
                more,
            } => {
                self.ledger.note(source_partition, index + count - 1);
                if more {
                    Step::After(entry, count)
                } else {
                    Step::Done(count)
                }
            }
            Fast::Slow => Step::Slow,
        })
    }

    /// The general path: recovery, rotation before the event, a new file, then the append.
    async fn write_slow(&mut self, event: &ChangeEvent) -> Result<()> {
        let position = event.position();
        let (key, origin) = self.files.key(event, &*self.settings.partitioner)?;
        let i = match self.files.find(&key) {
            Some(i) => i,
            None => {
                let dir = key.directory(&self.settings.prefix);
                let stored_end =
                    recovery::stored_end(&self.uploader, &self.encoders, &dir, &key.file_prefix())
                        .await?;
                self.files.insert(key.clone(), stored_end)
            }
        };
        if self.files.stored(i, position) {
            self.stats.events_skipped += 1;
            self.ledger.advance(&key.source_partition, position);
            return Ok(());
        }
        if self.ledger.holds(&key.source_partition, position) {
            // A re-read (a consumer back at its committed offset) of an event this sink
            // already holds, in an open file or an uploaded one: appending it again would
            // store it twice.
            self.stats.events_skipped += 1;
            return Ok(());
        }
        if let Some(reason) = self
            .files
            .rotation_before(i, event, &self.settings.rotation)
        {
            self.close(i, reason).await?;
        }
        // For a new file, the source partition's last event so far (this one is recorded after
        // the append).
        let ledger = &self.ledger;
        self.files.append(
            i,
            event,
            &origin,
            || ledger.written(&key.source_partition).cloned(),
            &self.encoders,
            &self.settings.prefix,
        )?;
        self.ledger.advance(&key.source_partition, position);
        self.after_append(i).await
    }

    /// After an append: upload finished parts, close a full file, keep within the budget.
    async fn after_append(&mut self, i: usize) -> Result<()> {
        let settings = &*self.settings;
        let full = self
            .files
            .upload_parts(i, &self.uploader, settings.part_size, &settings.rotation)
            .await?;
        if let Some(reason) = full {
            self.close(i, reason).await?;
        }
        while let Some(largest) = self.files.over_budget() {
            self.close(largest, Reason::Budget).await?;
        }
        Ok(())
    }

    /// Records an uploaded file: its events are durable.
    fn uploaded(&mut self, done: Uploaded) {
        tracing::debug!(key = %done.path, records = done.records, reason = ?done.reason, "file written");
        self.stats
            .file_written(done.len, done.multipart, done.reason);
        self.files.stored_to(done.entry, done.last);
    }

    /// Ends a file and uploads it; its events are durable when this returns.
    async fn close(&mut self, i: usize, reason: Reason) -> Result<()> {
        if let Some(sealed) = self.files.seal(i, reason).await? {
            let done = upload(&self.uploader, sealed).await?;
            self.uploaded(done);
        }
        Ok(())
    }

    /// Closes the given entries' files (in opening order), up to `upload_concurrency`
    /// uploads at a time. Each entry has one file here, so per-directory order is kept;
    /// positions are reported only after all of them completed.
    async fn close_all(&mut self, entries: Vec<usize>, reason: Reason) -> Result<()> {
        let mut sealed = Vec::with_capacity(entries.len());
        for i in entries {
            if let Some(s) = self.files.seal(i, reason).await? {
                sealed.push(s);
            }
        }
        let uploader = self.uploader.clone();
        let results: Vec<Result<Uploaded>> = futures::stream::iter(sealed)
            .map(|s| upload(&uploader, s))
            .buffer_unordered(self.settings.upload_concurrency)
            .collect()
            .await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(done) => self.uploaded(done),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn close_scheduled(&mut self) -> Result<()> {
        let due = self.files.due(Instant::now(), &self.settings.rotation);
        self.close_all(due, Reason::Schedule).await
    }

    /// Per source partition, the highest position not yet reported such that everything at or
    /// before it is stored (see [`Ledger::report`]).
    fn report(&mut self) -> Vec<Position> {
        self.ledger.report(self.files.marks())
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        let mut index = 0;
        while let Some(event) = events.get(index) {
            let step = match self.write_fast(events, index) {
                Ok(Step::Done(n)) => {
                    index += n;
                    Ok(())
                }
                Ok(Step::Slow) => {
                    self.ledger.settle(events);
                    index += 1;
                    self.write_slow(event).await.map_err(|e| (index - 1, e))
                }
                Ok(Step::After(i, n)) => {
                    self.ledger.settle(events);
                    index += n;
                    self.after_append(i).await.map_err(|e| (index - 1, e))
                }
                Err(failed) => Err((failed.at, *failed.error)),
            };
            if let Err((at, e)) = step {
                self.ledger.forget_noted();
                let position = events.get(at).map(|e| e.position().clone());
                return Err(self.sink_error(position, e));
            }
        }
        self.ledger.settle(events);
        if let Err(e) = self.close_scheduled().await {
            return Err(self.sink_error(None, e));
        }
        Ok(self.report())
    }

    async fn schema_changed(&mut self, change: &SchemaChange) -> cdc_core::Result<()> {
        let stale = self.files.stale(change);
        self.close_all(stale, Reason::Schema)
            .await
            .map_err(|e| self.sink_error(Some(change.position.clone()), e))
    }

    async fn tick(&mut self) -> cdc_core::Result<Vec<Position>> {
        if let Err(e) = self.close_scheduled().await {
            return Err(self.sink_error(None, e));
        }
        Ok(self.report())
    }

    /// Drops the revoked source partitions' open files (aborting their multipart uploads): the
    /// source partition's next owner rewrites them byte-identically from the committed offset,
    /// and this sink never uploads different bytes under a name the other owner uses. The
    /// source partition's written position falls back to the event before its oldest dropped
    /// file, and its stored-file knowledge is forgotten, so if the source partition comes back
    /// the store is read again (the other owner may have written files meanwhile).
    async fn partitions_revoked(
        &mut self,
        partitions: &[cdc_core::SourcePartition],
    ) -> cdc_core::Result<()> {
        let dropped = self.files.drop_source_partitions(partitions).await;
        self.stats.files_dropped += dropped.files;
        self.stats.events_dropped += dropped.events;
        for (partition, prev) in dropped.rewind {
            self.ledger.rewind(&partition, prev);
        }
        Ok(())
    }

    /// Reports what closed files hold, without closing any (Kafka Connect's `preCommit`
    /// returns the offsets of committed files only): file boundaries follow the rotation
    /// rule, not the pipeline's commit schedule. Files due by the wall-clock schedule are
    /// closed first, as on `tick`.
    async fn pre_commit(&mut self) -> cdc_core::Result<Vec<Position>> {
        self.tick().await
    }

    async fn flush(&mut self) -> cdc_core::Result<Vec<Position>> {
        let all = self.files.open_entries();
        if let Err(e) = self.close_all(all, Reason::Flush).await {
            return Err(self.sink_error(None, e));
        }
        self.files.prune();
        Ok(self.report())
    }
}
