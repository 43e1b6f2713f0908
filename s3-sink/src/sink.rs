//! The sink: events in, files out, durable positions back.

use crate::budget::MemoryBudget;
use crate::error::{Result, S3SinkError};
use crate::format::{Encoders, FileEncoder};
use crate::ledger::{Ledger, OpenFileMark, covers};
use crate::naming::{self, Origin};
use crate::partitioner::PartitionContext;
use crate::recovery;
use crate::retry::RetryCounter;
use crate::rotation::Reason;
use crate::settings::Settings;
use crate::stats::SinkStats;
use crate::upload::{Multipart, Sealed, Uploaded, Uploader, upload};
use async_trait::async_trait;
use cdc_core::{ChangeEvent, Position, SchemaChange, Sink, TableSchema};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

/// Identifies an open file: one per lane, topic and encoded partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    lane: Arc<str>,
    topic: Arc<str>,
    slot: Arc<str>,
    partition: String,
}

/// The lane and origin of the previous event: consecutive events of one table and lane share
/// them, and recomputing them (string formatting) per event is most of the per-event cost.
struct Resolved {
    table: Arc<TableSchema>,
    source_name: Arc<str>,
    /// Any position of the lane: another position is in the same lane iff they compare.
    position: Position,
    lane: Arc<str>,
    origin: Origin,
}

/// What the sink knows about one file key.
struct Entry {
    key: FileKey,
    /// The last position stored under the key, from this sink's uploads or read back from the
    /// store the first time the key is seen.
    stored_end: Option<Position>,
    file: Option<OpenFile>,
}

/// Entries without an open file are forgotten past this many (they are re-read from the
/// store if their key comes back), so hourly partitions do not accumulate forever.
const MAX_IDLE_ENTRIES: usize = 65_536;

/// What the synchronous fast path left to do.
enum Step {
    /// Nothing: the event was appended or skipped.
    Done,
    /// The event needs the store (recovery, a new file, a rotation first): take the slow path.
    Slow,
    /// Appended; now upload parts, rotate or relieve the budget.
    After(usize),
}

struct OpenFile {
    path: Path,
    table: Arc<TableSchema>,
    first_time: Option<DateTime<Utc>>,
    opened_at: Instant,
    /// Opening order; within a lane, the smallest is the file with the oldest first event.
    seq: u64,
    /// The lane's last event before this file's first: durable if this file is the lane's
    /// oldest open file.
    prev: Option<Position>,
    last: Position,
    records: u64,
    memory: usize,
    encoder: Box<dyn FileEncoder>,
    multipart: Option<Multipart>,
}

impl OpenFile {
    fn append(&mut self, event: &ChangeEvent, budget: &mut MemoryBudget) -> Result<()> {
        self.encoder.append(event)?;
        self.records += 1;
        self.last.clone_from(event.position());
        self.measure(budget);
        Ok(())
    }

    /// Brings the budget up to date with the memory the file holds now.
    fn measure(&mut self, budget: &mut MemoryBudget) {
        let memory = self.encoder.memory();
        budget.update(self.memory, memory);
        self.memory = memory;
    }
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
    /// One entry per file key seen: where its stored files end, and its open file.
    entries: Vec<Entry>,
    index: HashMap<FileKey, usize>,
    /// Entries with an open file.
    open: HashSet<usize>,
    /// The entry of the previous event: consecutive events usually share it.
    last_entry: Option<usize>,
    /// Reused buffer for encoded partitions.
    scratch: String,
    /// What the sink holds of each lane and what it reported durable.
    ledger: Ledger,
    resolved: Option<Resolved>,
    budget: MemoryBudget,
    next_seq: u64,
    stats: SinkStats,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("settings", &self.settings)
            .field("store", &self.uploader.store.to_string())
            .field("open_files", &self.open.len())
            .field("buffered_bytes", &self.budget.used())
            .finish()
    }
}

fn same_table(a: &Arc<TableSchema>, b: &Arc<TableSchema>) -> bool {
    Arc::ptr_eq(a, b) || (a.version == b.version && a.same_shape(b))
}

/// The lane and origin of `event`, kept from the previous event when it has the same table,
/// source and lane (recomputing them formats strings).
fn resolve<'a>(resolved: &'a mut Option<Resolved>, event: &ChangeEvent) -> &'a Resolved {
    let position = event.position();
    let same = resolved.as_ref().is_some_and(|r| {
        Arc::ptr_eq(&r.table, &event.table)
            && r.source_name == event.source.name
            && r.position.same_lane(position)
    });
    if !same {
        *resolved = None;
    }
    resolved.get_or_insert_with(|| Resolved {
        table: Arc::clone(&event.table),
        source_name: Arc::clone(&event.source.name),
        position: position.clone(),
        lane: position.lane().into(),
        origin: naming::origin(event),
    })
}

/// Writes the encoded partition of `event` into `out`.
fn partition_into(
    settings: &Settings,
    event: &ChangeEvent,
    origin: &Origin,
    out: &mut String,
) -> Result<()> {
    let ctx = PartitionContext {
        topic: &origin.topic,
        kafka_partition: origin.kafka_partition,
    };
    out.clear();
    settings
        .partitioner
        .partition_into(event, &ctx, out)
        .map_err(|e| S3SinkError::Partition {
            position: event.position().clone(),
            reason: e.to_string(),
        })
}

impl S3Sink {
    pub(crate) fn from_settings(store: Arc<dyn ObjectStore>, settings: Settings) -> Self {
        let encoders = Encoders::new(settings.format.clone(), None);
        let uploader = Uploader {
            store,
            retry: settings.retry.clone(),
            retries: Arc::new(RetryCounter::default()),
        };
        Self {
            budget: MemoryBudget::new(settings.memory_budget),
            settings: Arc::new(settings),
            uploader,
            encoders,
            entries: Vec::new(),
            index: HashMap::new(),
            open: HashSet::new(),
            last_entry: None,
            scratch: String::new(),
            ledger: Ledger::default(),
            resolved: None,
            next_seq: 0,
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
        SinkStats {
            retries: self.uploader.retries.get(),
            open_files: self.open.len(),
            buffered_bytes: self.budget.used(),
            peak_buffered_bytes: self.budget.peak(),
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

    /// The file key of an event.
    fn key(&mut self, event: &ChangeEvent) -> Result<(FileKey, Origin)> {
        let resolved = resolve(&mut self.resolved, event);
        partition_into(&self.settings, event, &resolved.origin, &mut self.scratch)?;
        let origin = resolved.origin.clone();
        let key = FileKey {
            lane: Arc::clone(&resolved.lane),
            topic: Arc::clone(&origin.topic),
            slot: Arc::clone(&origin.slot),
            partition: self.scratch.clone(),
        };
        Ok((key, origin))
    }

    /// The entry of `key`, if the sink has seen it.
    fn find(&mut self, key: &FileKey) -> Option<usize> {
        let found = self.index.get(key).copied();
        if found.is_some() {
            self.last_entry = found;
        }
        found
    }

    /// Appends an event without touching the store, when that is all it needs. Runs once per
    /// event, so it borrows what it can: no key is built, hashed or reference-counted when
    /// the event goes where the previous one went.
    fn write_fast(&mut self, event: &ChangeEvent, index: usize) -> Result<Step> {
        let resolved = resolve(&mut self.resolved, event);
        partition_into(&self.settings, event, &resolved.origin, &mut self.scratch)?;
        let i = match self.last_entry {
            Some(i)
                if self.entries.get(i).is_some_and(|entry| {
                    Arc::ptr_eq(&entry.key.lane, &resolved.lane)
                        && Arc::ptr_eq(&entry.key.topic, &resolved.origin.topic)
                        && entry.key.partition == self.scratch
                }) =>
            {
                i
            }
            _ => {
                let key = FileKey {
                    lane: Arc::clone(&resolved.lane),
                    topic: Arc::clone(&resolved.origin.topic),
                    slot: Arc::clone(&resolved.origin.slot),
                    partition: self.scratch.clone(),
                };
                match self.find(&key) {
                    Some(i) => i,
                    None => return Ok(Step::Slow),
                }
            }
        };
        let position = event.position();
        let entry = &mut self.entries[i];
        if let Some(end) = &entry.stored_end
            && covers(end, position)
        {
            // A replay of an event a stored file already holds.
            self.stats.events_skipped += 1;
            self.ledger.note(&entry.key.lane, index);
            return Ok(Step::Done);
        }
        let Some(file) = entry.file.as_mut() else {
            return Ok(Step::Slow);
        };
        if covers(&file.last, position)
            || !same_table(&file.table, &event.table)
            || self
                .settings
                .rotation
                .record_time_exceeded(file.first_time, event.source.commit_time)
        {
            return Ok(Step::Slow);
        }
        file.append(event, &mut self.budget)?;
        let more = file.encoder.ready() >= self.settings.part_size
            || self
                .settings
                .rotation
                .full(file.records, file.encoder.size())
                .is_some()
            || self.budget.exceeded();
        self.ledger.note(&entry.key.lane, index);
        Ok(if more { Step::After(i) } else { Step::Done })
    }

    /// The general path: recovery, rotation before the event, a new file, then the append.
    async fn write_slow(&mut self, event: &ChangeEvent) -> Result<()> {
        let position = event.position();
        let (key, origin) = self.key(event)?;
        let i = match self.find(&key) {
            Some(i) => i,
            None => {
                let dir = naming::directory(&self.settings.prefix, &key.topic, &key.partition);
                let prefix = naming::file_prefix(&key.topic, &key.slot);
                let stored_end =
                    recovery::stored_end(&self.uploader, &self.encoders, &dir, &prefix).await?;
                self.entries.push(Entry {
                    key: key.clone(),
                    stored_end,
                    file: None,
                });
                let i = self.entries.len() - 1;
                self.index.insert(key.clone(), i);
                i
            }
        };
        self.last_entry = Some(i);
        if let Some(end) = &self.entries[i].stored_end
            && covers(end, position)
        {
            self.stats.events_skipped += 1;
            self.ledger.advance(&key.lane, position);
            return Ok(());
        }
        if self.ledger.holds(&key.lane, position) {
            // A re-read (a consumer back at its committed offset) of an event this sink
            // already holds, in an open file or an uploaded one: appending it again would
            // store it twice.
            self.stats.events_skipped += 1;
            return Ok(());
        }
        let rotate = self.entries[i].file.as_ref().and_then(|file| {
            if !same_table(&file.table, &event.table) {
                Some(Reason::Schema)
            } else if self
                .settings
                .rotation
                .record_time_exceeded(file.first_time, event.source.commit_time)
            {
                Some(Reason::RecordTime)
            } else {
                None
            }
        });
        if let Some(reason) = rotate {
            self.close(i, reason).await?;
        }
        if self.entries[i].file.is_none() {
            // The lane's last event so far (this one is recorded after the append).
            let prev = self.ledger.written(&key.lane).cloned();
            let file = self.open(&origin, &key, event, prev)?;
            self.entries[i].file = Some(file);
            self.open.insert(i);
        }
        let Some(file) = self.entries[i].file.as_mut() else {
            return Ok(());
        };
        file.append(event, &mut self.budget)?;
        self.ledger.advance(&key.lane, position);
        self.after_append(i).await
    }

    /// After an append: upload finished parts, close a full file, keep within the budget.
    async fn after_append(&mut self, i: usize) -> Result<()> {
        let part_size = self.settings.part_size;
        if let Some(file) = self.entries[i].file.as_mut() {
            loop {
                let part = match file.encoder.take_part(part_size) {
                    Ok(Some(part)) => part,
                    Ok(None) => break,
                    Err(e) => {
                        if let Some(upload) = file.multipart.take() {
                            upload.abort().await;
                        }
                        return Err(e);
                    }
                };
                if file.multipart.is_none() {
                    file.multipart = Some(self.uploader.start_multipart(&file.path).await?);
                }
                if let Some(upload) = file.multipart.as_mut()
                    && let Err(e) = upload.put(part).await
                {
                    if let Some(upload) = file.multipart.take() {
                        upload.abort().await;
                    }
                    return Err(e);
                }
            }
            file.measure(&mut self.budget);
            if let Some(reason) = self
                .settings
                .rotation
                .full(file.records, file.encoder.size())
            {
                self.close(i, reason).await?;
            }
        }
        while self.budget.exceeded() {
            let largest = self
                .open
                .iter()
                .filter_map(|&j| self.entries[j].file.as_ref().map(|f| (j, f.memory)))
                .max_by_key(|&(j, memory)| (memory, std::cmp::Reverse(j)))
                .map(|(j, _)| j);
            let Some(largest) = largest else { break };
            self.close(largest, Reason::Budget).await?;
        }
        Ok(())
    }

    fn open(
        &mut self,
        origin: &Origin,
        key: &FileKey,
        event: &ChangeEvent,
        prev: Option<Position>,
    ) -> Result<OpenFile> {
        let dir = naming::directory(&self.settings.prefix, &key.topic, &key.partition);
        let path = naming::object_path(&dir, origin, event.position(), self.encoders.extension());
        let kafka = matches!(event.position(), Position::Kafka(_));
        let encoder = self.encoders.open(path.as_ref(), &event.table, kafka)?;
        self.next_seq += 1;
        Ok(OpenFile {
            path,
            table: Arc::clone(&event.table),
            first_time: event.source.commit_time,
            opened_at: Instant::now(),
            seq: self.next_seq,
            prev,
            last: event.position().clone(),
            records: 0,
            memory: 0,
            encoder,
            multipart: None,
        })
    }

    /// Ends a file's encoding and takes it out of the open set; the upload is separate so
    /// several files can go up at once.
    async fn seal(&mut self, i: usize, reason: Reason) -> Result<Option<Sealed>> {
        let Some(file) = self.entries.get_mut(i).and_then(|e| e.file.take()) else {
            return Ok(None);
        };
        self.open.remove(&i);
        self.budget.update(file.memory, 0);
        match file.encoder.finish(&file.last) {
            Ok(bytes) => Ok(Some(Sealed {
                entry: i,
                path: file.path,
                bytes,
                multipart: file.multipart,
                last: file.last,
                records: file.records,
                reason,
            })),
            Err(e) => {
                if let Some(upload) = file.multipart {
                    upload.abort().await;
                }
                Err(e)
            }
        }
    }

    /// Records an uploaded file: its events are durable.
    fn uploaded(&mut self, sealed: Uploaded) {
        tracing::debug!(key = %sealed.path, records = sealed.records, reason = ?sealed.reason, "file written");
        self.stats
            .file_written(sealed.len, sealed.multipart, sealed.reason);
        if let Some(entry) = self.entries.get_mut(sealed.entry) {
            entry.stored_end = Some(sealed.last);
        }
    }

    /// Ends a file and uploads it; its events are durable when this returns.
    async fn close(&mut self, i: usize, reason: Reason) -> Result<()> {
        if let Some(sealed) = self.seal(i, reason).await? {
            let done = upload(&self.uploader, sealed).await?;
            self.uploaded(done);
        }
        Ok(())
    }

    /// Closes the given entries' files, up to `upload_concurrency` uploads at a time. Each
    /// entry has one file here, so per-directory order is kept; positions are reported only
    /// after all of them completed.
    async fn close_all(&mut self, mut entries: Vec<usize>, reason: Reason) -> Result<()> {
        entries.sort_by_key(|&i| self.entries[i].file.as_ref().map_or(0, |f| f.seq));
        let mut sealed = Vec::with_capacity(entries.len());
        for i in entries {
            if let Some(s) = self.seal(i, reason).await? {
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

    /// Forgets idle entries once there are too many.
    fn prune(&mut self) {
        if self.entries.len() - self.open.len() <= MAX_IDLE_ENTRIES {
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        self.index.clear();
        self.open.clear();
        self.last_entry = None;
        for entry in entries.into_iter().filter(|e| e.file.is_some()) {
            self.index.insert(entry.key.clone(), self.entries.len());
            self.open.insert(self.entries.len());
            self.entries.push(entry);
        }
    }

    /// Per lane, the highest position not yet reported such that everything at or before it
    /// is stored (see [`Ledger::report`]).
    fn report(&mut self) -> Vec<Position> {
        let open = self.open.iter().filter_map(|&i| {
            let e = &self.entries[i];
            e.file.as_ref().map(|f| OpenFileMark {
                lane: &e.key.lane,
                seq: f.seq,
                prev: f.prev.as_ref(),
            })
        });
        self.ledger.report(open)
    }

    /// See [`Sink::lanes_revoked`].
    async fn drop_lanes(&mut self, lanes: &[String]) {
        let mut dropped: HashMap<Arc<str>, (u64, Option<Position>)> = HashMap::new();
        for i in 0..self.entries.len() {
            if !lanes.iter().any(|l| **l == *self.entries[i].key.lane) {
                continue;
            }
            self.index.remove(&self.entries[i].key);
            let lane = Arc::clone(&self.entries[i].key.lane);
            let Some(file) = self.entries[i].file.take() else {
                continue;
            };
            self.open.remove(&i);
            self.budget.update(file.memory, 0);
            self.stats.files_dropped += 1;
            self.stats.events_dropped += file.records;
            tracing::debug!(key = %file.path, records = file.records, "revoked lane: open file dropped");
            let oldest = dropped.entry(lane).or_insert((file.seq, file.prev.clone()));
            if file.seq < oldest.0 {
                *oldest = (file.seq, file.prev.clone());
            }
            if let Some(upload) = file.multipart {
                upload.abort().await;
            }
        }
        self.last_entry = None;
        for (lane, (_, prev)) in dropped {
            self.ledger.rewind(&lane, prev);
        }
    }

    async fn close_scheduled(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .open
            .iter()
            .copied()
            .filter(|&i| {
                self.entries[i].file.as_ref().is_some_and(|f| {
                    self.settings
                        .rotation
                        .scheduled(now.saturating_duration_since(f.opened_at))
                })
            })
            .collect();
        self.close_all(due, Reason::Schedule).await
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        for (index, event) in events.iter().enumerate() {
            let step = match self.write_fast(event, index) {
                Ok(Step::Done) => Ok(()),
                Ok(Step::Slow) => {
                    self.ledger.settle(events);
                    self.write_slow(event).await
                }
                Ok(Step::After(i)) => {
                    self.ledger.settle(events);
                    self.after_append(i).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                self.ledger.forget_noted();
                return Err(self.sink_error(Some(event.position().clone()), e));
            }
        }
        self.ledger.settle(events);
        if let Err(e) = self.close_scheduled().await {
            return Err(self.sink_error(None, e));
        }
        Ok(self.report())
    }

    async fn schema_changed(&mut self, change: &SchemaChange) -> cdc_core::Result<()> {
        let stale: Vec<usize> = self
            .open
            .iter()
            .copied()
            .filter(|&i| {
                self.entries[i].file.as_ref().is_some_and(|f| {
                    f.table.id == change.table.id && !same_table(&f.table, &change.table)
                })
            })
            .collect();
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

    /// Drops the revoked lanes' open files (aborting their multipart uploads): the lane's
    /// next owner rewrites them byte-identically from the committed offset, and this sink
    /// never uploads different bytes under a name the other owner uses. The lane's written
    /// position falls back to the event before its oldest dropped file, and its stored-file
    /// knowledge is forgotten, so if the lane comes back the store is read again (the other
    /// owner may have written files meanwhile).
    async fn lanes_revoked(&mut self, lanes: &[String]) -> cdc_core::Result<()> {
        self.drop_lanes(lanes).await;
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
        let all: Vec<usize> = self.open.iter().copied().collect();
        if let Err(e) = self.close_all(all, Reason::Flush).await {
            return Err(self.sink_error(None, e));
        }
        self.prune();
        Ok(self.report())
    }
}
