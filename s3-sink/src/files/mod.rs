//! The open-file table: which file each event goes to, and the files open now.
//!
//! A file key is a source partition, a topic and an encoded partition (one directory of the
//! Kafka Connect layout, one source partition's files in it); [`naming`] turns keys and
//! positions into object names. Each key seen has an entry: where its stored files end (read
//! back from the store the first time the key is seen) and its open file, if any. The memory of
//! open files is counted against the sink's budget here. How an event's key is worked out is in
//! `key`; appending a run of events without the store, in `fast`.

mod fast;
mod key;
mod naming;

pub(crate) use fast::{Failed, Fast};
pub(crate) use key::FileKey;

use crate::budget::MemoryBudget;
use crate::error::Result;
use crate::format::{Encoders, FileEncoder};
use crate::ledger::{OpenFileMark, covers};
use crate::partitioner::Partitioner;
use crate::rotation::{Reason, Rotation};
use crate::upload::{Multipart, Sealed, Uploader};
use cdc_core::{ChangeEvent, Position, SchemaChange, SourcePartition, TableSchema};
use chrono::{DateTime, Utc};
use key::{Resolved, partition_into, resolve};
use naming::Origin;
use object_store::path::Path;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

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

struct OpenFile {
    path: Path,
    table: Arc<TableSchema>,
    first_time: Option<DateTime<Utc>>,
    opened_at: Instant,
    /// Opening order; within a source partition, the smallest is the file with the oldest first
    /// event.
    seq: u64,
    /// The source partition's last event before this file's first: durable if this file is the
    /// source partition's oldest open file.
    prev: Option<Position>,
    last: Position,
    records: u64,
    memory: usize,
    encoder: Box<dyn FileEncoder>,
    multipart: Option<Multipart>,
}

impl OpenFile {
    /// Appends `event`; the caller sets [`last`](Self::last) (once per run of events).
    fn append(&mut self, event: &ChangeEvent, budget: &mut MemoryBudget) -> Result<()> {
        self.encoder.append(event)?;
        self.records += 1;
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

/// Whether a file of table version `a` can hold events of `b`.
fn same_table(a: &Arc<TableSchema>, b: &Arc<TableSchema>) -> bool {
    Arc::ptr_eq(a, b) || (a.version == b.version && a.same_shape(b))
}

/// The files the events go to (see the module documentation).
pub(crate) struct FileTable {
    /// One entry per file key seen.
    entries: Vec<Entry>,
    index: HashMap<FileKey, usize>,
    /// Entries with an open file.
    open: HashSet<usize>,
    /// The entry of the previous event: consecutive events usually share it.
    last_entry: Option<usize>,
    /// Reused buffer for encoded partitions.
    scratch: String,
    resolved: Option<Resolved>,
    budget: MemoryBudget,
    next_seq: u64,
}

impl FileTable {
    /// An empty table whose open files may hold `memory_budget` bytes together.
    pub(crate) fn new(memory_budget: usize) -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::new(),
            open: HashSet::new(),
            last_entry: None,
            scratch: String::new(),
            resolved: None,
            budget: MemoryBudget::new(memory_budget),
            next_seq: 0,
        }
    }

    /// How many files are open.
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The budget open files are counted against.
    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The file key of an event, and its origin.
    pub(crate) fn key(
        &mut self,
        event: &ChangeEvent,
        partitioner: &dyn Partitioner,
    ) -> Result<(FileKey, Origin)> {
        let resolved = resolve(&mut self.resolved, event);
        partition_into(partitioner, event, &resolved.origin, &mut self.scratch)?;
        let origin = resolved.origin.clone();
        let key = resolved.key(&self.scratch);
        Ok((key, origin))
    }

    /// The entry of `key`, if the table has one.
    pub(crate) fn find(&mut self, key: &FileKey) -> Option<usize> {
        let found = self.index.get(key).copied();
        if found.is_some() {
            self.last_entry = found;
        }
        found
    }

    /// Adds an entry for a key seen for the first time, whose stored files end at
    /// `stored_end`.
    pub(crate) fn insert(&mut self, key: FileKey, stored_end: Option<Position>) -> usize {
        let i = self.entries.len();
        self.index.insert(key.clone(), i);
        self.entries.push(Entry {
            key,
            stored_end,
            file: None,
        });
        self.last_entry = Some(i);
        i
    }

    /// Whether a stored file of entry `i` already holds `position`.
    pub(crate) fn stored(&self, i: usize, position: &Position) -> bool {
        self.entries
            .get(i)
            .and_then(|e| e.stored_end.as_ref())
            .is_some_and(|end| covers(end, position))
    }

    /// record-time rule.
    pub(crate) fn rotation_before(
        &self,
        i: usize,
        event: &ChangeEvent,
        rotation: &Rotation,
    ) -> Option<Reason> {
        let file = self.entries.get(i)?.file.as_ref()?;
        if !same_table(&file.table, &event.table) {
            Some(Reason::Schema)
        } else if rotation.record_time_exceeded(file.first_time, event.source.commit_time) {
            Some(Reason::RecordTime)
        } else {
            None
        }
    }

    /// Appends `event` to entry `i`'s open file, opening one first (named after the event's
    /// position, under `prefix`) when there is none. `prev` is the source partition's last
    /// event before this one.
    pub(crate) fn append(
        &mut self,
        i: usize,
        event: &ChangeEvent,
        origin: &Origin,
        prev: impl FnOnce() -> Option<Position>,
        encoders: &Encoders,
        prefix: &Path,
    ) -> Result<()> {
        let Some(entry) = self.entries.get_mut(i) else {
            return Ok(());
        };
        let file = match &mut entry.file {
            Some(file) => file,
            empty => {
                let dir = entry.key.directory(prefix);
                let path =
                    naming::object_path(&dir, origin, event.position(), encoders.extension());
                let kafka = matches!(event.position(), Position::Kafka(_));
                let encoder = encoders.open(path.as_ref(), &event.table, kafka)?;
                self.next_seq += 1;
                self.open.insert(i);
                empty.insert(OpenFile {
                    path,
                    table: Arc::clone(&event.table),
                    first_time: event.source.commit_time,
                    opened_at: Instant::now(),
                    seq: self.next_seq,
                    prev: prev(),
                    last: event.position().clone(),
                    records: 0,
                    memory: 0,
                    encoder,
                    multipart: None,
                })
            }
        };
        let appended = file.append(event, &mut self.budget);
        if appended.is_ok() {
            file.last.clone_from(event.position());
        }
        if appended.is_err() && file.records == 0 {
            // A file whose first event failed holds nothing: uploaded at the next flush, it
            // would be named after (and, for Parquet, record as its end) an event it does
            // not hold, and a restarted sink would skip that event.
            if let Some(file) = entry.file.take() {
                self.open.remove(&i);
                self.budget.update(file.memory, 0);
            }
        }
        appended
    }

    /// Uploads the finished parts of entry `i`'s open file (starting its multipart upload
    /// with the first); then whether the file is full.
    pub(crate) async fn upload_parts(
        &mut self,
        i: usize,
        uploader: &Uploader,
        part_size: usize,
        rotation: &Rotation,
    ) -> Result<Option<Reason>> {
        let Some(file) = self.entries.get_mut(i).and_then(|e| e.file.as_mut()) else {
            return Ok(None);
        };
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
                file.multipart = Some(uploader.start_multipart(&file.path).await?);
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
        Ok(rotation.full(file.records, file.encoder.size()))
    }

    /// The entry whose open file holds the most memory, while the budget is exceeded.
    pub(crate) fn over_budget(&self) -> Option<usize> {
        if !self.budget.exceeded() {
            return None;
        }
        self.open
            .iter()
            .filter_map(|&j| self.entries[j].file.as_ref().map(|f| (j, f.memory)))
            .max_by_key(|&(j, memory)| (memory, std::cmp::Reverse(j)))
            .map(|(j, _)| j)
    }

    /// The entries with an open file, in opening order.
    pub(crate) fn open_entries(&self) -> Vec<usize> {
        self.open_where(|_| true)
    }

    /// The entries whose open file is due by the wall-clock schedule at `now`.
    pub(crate) fn due(&self, now: Instant, rotation: &Rotation) -> Vec<usize> {
        self.open_where(|f| rotation.scheduled(now.saturating_duration_since(f.opened_at)))
    }

    /// The entries whose open file holds another version of the changed table.
    pub(crate) fn stale(&self, change: &SchemaChange) -> Vec<usize> {
        self.open_where(|f| f.table.id == change.table.id && !same_table(&f.table, &change.table))
    }

    fn open_where(&self, mut keep: impl FnMut(&OpenFile) -> bool) -> Vec<usize> {
        let mut found: Vec<(u64, usize)> = self
            .open
            .iter()
            .filter_map(|&i| self.entries[i].file.as_ref().map(|f| (f.seq, i, f)))
            .filter(|(_, _, f)| keep(f))
            .map(|(seq, i, _)| (seq, i))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, i)| i).collect()
    }

    /// Ends entry `i`'s file and takes it out of the open set; the upload is separate so
    /// several files can go up at once.
    pub(crate) async fn seal(&mut self, i: usize, reason: Reason) -> Result<Option<Sealed>> {
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

    /// Records that entry `i`'s stored files now end at `last`.
    pub(crate) fn stored_to(&mut self, i: usize, last: Position) {
        if let Some(entry) = self.entries.get_mut(i) {
            entry.stored_end = Some(last);
        }
    }

    /// Forgets idle entries once there are too many.
    pub(crate) fn prune(&mut self) {
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

    /// The open files as the ledger sees them.
    pub(crate) fn marks(&self) -> impl Iterator<Item = OpenFileMark<'_>> {
        self.open.iter().filter_map(|&i| {
            let e = &self.entries[i];
            e.file.as_ref().map(|f| OpenFileMark {
                source_partition: &e.key.source_partition,
                seq: f.seq,
                prev: f.prev.as_ref(),
            })
        })
    }

    /// Drops the open files of `partitions` (aborting their multipart uploads) and forgets
    /// their keys, so the store is read again if a source partition comes back. Returns, per
    /// source partition that had open files, the source partition's last event before the
    /// oldest of them, and the number of files and events dropped.
    pub(crate) async fn drop_source_partitions(
        &mut self,
        partitions: &[SourcePartition],
    ) -> Dropped {
        let mut dropped = Dropped::default();
        let mut oldest: HashMap<SourcePartition, (u64, Option<Position>)> = HashMap::new();
        for i in 0..self.entries.len() {
            if !partitions.contains(&self.entries[i].key.source_partition) {
                continue;
            }
            self.index.remove(&self.entries[i].key);
            let partition = self.entries[i].key.source_partition.clone();
            let Some(file) = self.entries[i].file.take() else {
                continue;
            };
            self.open.remove(&i);
            self.budget.update(file.memory, 0);
            dropped.files += 1;
            dropped.events += file.records;
            tracing::debug!(key = %file.path, records = file.records, "revoked source partition: open file dropped");
            let first = oldest
                .entry(partition)
                .or_insert((file.seq, file.prev.clone()));
            if file.seq < first.0 {
                *first = (file.seq, file.prev.clone());
            }
            if let Some(upload) = file.multipart {
                upload.abort().await;
            }
        }
        self.last_entry = None;
        dropped.rewind = oldest
            .into_iter()
            .map(|(partition, (_, prev))| (partition, prev))
            .collect();
        dropped
    }
}

/// What [`FileTable::drop_source_partitions`] dropped.
#[derive(Debug, Default)]
pub(crate) struct Dropped {
    /// Open files dropped.
    pub(crate) files: u64,
    /// Events they held.
    pub(crate) events: u64,
    /// Per source partition, the last event before its oldest dropped file.
    pub(crate) rewind: Vec<(SourcePartition, Option<Position>)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::format::Format;
    use crate::partitioner::DefaultPartitioner;
    use cdc_core::testing::sample_events;
    use cdc_core::{TableId, TableSchema};

    /// `n` sample events of stream `s` (one source partition), every other one on a second
    /// table, so the source partition has two keys.
    pub(super) fn two_tables(n: usize) -> Vec<ChangeEvent> {
        let mut events = sample_events("s", n);
        let first = &events[0].table;
        let other = Arc::new(
            TableSchema::new(
                TableId::new("demo", "dbo", "other"),
                first.columns.clone(),
                first.primary_key.clone(),
            )
            .unwrap(),
        );
        for event in events.iter_mut().skip(1).step_by(2) {
            event.table = Arc::clone(&other);
        }
        events
    }

    /// Appends each event through the general path, as the sink does for a new key.
    pub(super) fn append_all(files: &mut FileTable, events: &[ChangeEvent], encoders: &Encoders) {
        let mut prev: Option<Position> = None;
        for event in events {
            let (key, origin) = files.key(event, &DefaultPartitioner).unwrap();
            let i = match files.find(&key) {
                Some(i) => i,
                None => files.insert(key, None),
            };
            let before = prev.clone();
            files
                .append(i, event, &origin, || before, encoders, &Path::from("lake"))
                .unwrap();
            prev = Some(event.position().clone());
        }
    }

    #[test]
    fn open_files_are_listed_in_opening_order_not_entry_order() {
        let encoders = Encoders::new(Format::ndjson(), None, "__");
        let mut files = FileTable::new(1 << 30);
        let events = two_tables(2);
        let prefix = Path::from("lake");
        let (key0, origin0) = files.key(&events[0], &DefaultPartitioner).unwrap();
        let (key1, origin1) = files.key(&events[1], &DefaultPartitioner).unwrap();
        let (i0, i1) = (files.insert(key0, None), files.insert(key1, None));
        // Entry 1's file is opened first.
        files
            .append(i1, &events[1], &origin1, || None, &encoders, &prefix)
            .unwrap();
        let prev = Some(events[1].position().clone());
        files
            .append(i0, &events[0], &origin0, || prev, &encoders, &prefix)
            .unwrap();
        assert_eq!(files.open_entries(), vec![i1, i0]);
        let mut marks: Vec<(u64, Option<Position>)> =
            files.marks().map(|m| (m.seq, m.prev.cloned())).collect();
        marks.sort_by_key(|m| m.0);
        assert_eq!(
            marks,
            vec![(1, None), (2, Some(events[1].position().clone()))]
        );
    }

    #[tokio::test]
    async fn dropping_a_source_partition_rewinds_it_to_the_event_before_its_oldest_open_file() {
        let encoders = Encoders::new(Format::ndjson(), None, "__");
        let mut files = FileTable::new(1 << 30);
        let events = two_tables(6);
        append_all(&mut files, &events[..2], &encoders);
        assert_eq!(files.open_count(), 2);
        let used = files.budget().used();
        assert!(used > 0);

        let dropped = files
            .drop_source_partitions(&[events[0].position().source_partition()])
            .await;
        assert_eq!((dropped.files, dropped.events), (2, 2));
        // The oldest dropped file is the source partition's first: nothing before it.
        assert_eq!(dropped.rewind.len(), 1);
        assert_eq!(dropped.rewind[0].1, None);
        assert_eq!(files.open_count(), 0);
        assert_eq!(files.budget().used(), 0);
        // The keys are forgotten: the store is read again if the source partition comes back.
        let (key, _) = files.key(&events[0], &DefaultPartitioner).unwrap();
        assert_eq!(files.find(&key), None);
    }

    /// A table holding `events[0]` in an open file (opened through the general path).
    pub(super) fn opened(events: &[ChangeEvent], encoders: &Encoders) -> (FileTable, usize) {
        let mut files = FileTable::new(1 << 30);
        append_all(&mut files, &events[..1], encoders);
        let (key, _) = files.key(&events[0], &DefaultPartitioner).unwrap();
        let i = files.find(&key).unwrap();
        (files, i)
    }
}
