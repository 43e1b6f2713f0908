//! The open-file table: which file each event goes to, and the files open now.
//!
//! A file key is a lane, a topic and an encoded partition (one directory of the Kafka
//! Connect layout, one lane's files in it); [`naming`] turns keys and positions into object
//! names. Each key seen has an entry: where its stored files end
//! (read back from the store the first time the key is seen) and its open file, if any. The
//! memory of open files is counted against the sink's budget here.

mod naming;

use crate::budget::MemoryBudget;
use crate::error::{Result, S3SinkError};
use crate::format::{Encoders, FileEncoder};
use crate::ledger::{OpenFileMark, covers};
use crate::partitioner::{PartitionContext, Partitioner};
use crate::rotation::{Reason, Rotation};
use crate::upload::{Multipart, Sealed, Uploader};
use cdc_core::{ChangeEvent, Position, SchemaChange, TableSchema};
use chrono::{DateTime, Utc};
use naming::Origin;
use object_store::path::Path;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

/// Identifies an open file: one per lane, topic and encoded partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub(crate) lane: Arc<str>,
    pub(crate) topic: Arc<str>,
    /// The second field of the file name (see [`Origin::slot`]).
    pub(crate) slot: Arc<str>,
    /// The encoded partition: the directory under the topic.
    pub(crate) partition: String,
}

impl FileKey {
    /// The key's directory: `<prefix>/<topic>/<encoded partition>`.
    pub(crate) fn directory(&self, prefix: &Path) -> Path {
        naming::directory(prefix, &self.topic, &self.partition)
    }

    /// The name prefix every file of the key's lane in its directory shares.
    pub(crate) fn file_prefix(&self) -> String {
        naming::file_prefix(&self.topic, &self.slot)
    }
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

/// What [`FileTable::append_fast`] did with the events at the start of a slice.
pub(crate) enum Fast<'a> {
    /// A stored file of the first event's key already holds it (a replay): skipped.
    Stored(&'a Arc<str>),
    /// The first `count` events (at least one) were appended to the open file of entry
    /// `entry`: a run of events with the first one's key, each after the one before it;
    /// `more` when the file now has parts ready, is full or the budget is exceeded.
    Appended {
        lane: &'a Arc<str>,
        entry: usize,
        count: usize,
        more: bool,
    },
    /// The first event needs the store (recovery, a new file, a rotation first).
    Slow,
}

/// An append of a run that failed at event `at` of the slice; the events before it were
/// appended (their file holds them).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) at: usize,
    /// Boxed: the error path is rare, the `Ok` path per run.
    pub(crate) error: Box<S3SinkError>,
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

/// The lane and origin of `event`, kept from the previous event when it has the same table,
/// source and lane (recomputing them formats strings).
fn resolve<'a>(resolved: &'a mut Option<Resolved>, event: &ChangeEvent) -> &'a Resolved {
    let position = event.position();
    let same = resolved.as_ref().is_some_and(|r| {
        Arc::ptr_eq(&r.table, &event.table)
            && r.source_name == event.source.name
            && r.position.same_source_partition(position)
    });
    if !same {
        *resolved = None;
    }
    resolved.get_or_insert_with(|| Resolved {
        table: Arc::clone(&event.table),
        source_name: Arc::clone(&event.source.name),
        position: position.clone(),
        lane: position.source_partition().to_string().into(),
        origin: naming::origin(event),
    })
}

/// Writes the encoded partition of `event` into `out`.
fn partition_into(
    partitioner: &dyn Partitioner,
    event: &ChangeEvent,
    origin: &Origin,
    out: &mut String,
) -> Result<()> {
    let ctx = PartitionContext {
        topic: &origin.topic,
        kafka_partition: origin.kafka_partition,
    };
    out.clear();
    partitioner
        .partition_into(event, &ctx, out)
        .map_err(|e| S3SinkError::Partition {
            position: event.position().clone(),
            reason: e.to_string(),
        })
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
        let key = FileKey {
            lane: Arc::clone(&resolved.lane),
            topic: Arc::clone(&origin.topic),
            slot: Arc::clone(&origin.slot),
            partition: self.scratch.clone(),
        };
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

    /// Appends the events at the start of `events` to the open file of the first one's key
    /// when nothing else is needed: no store call, no rotation before them, no new file.
    ///
    /// The first event is checked in full (its key, stored files, the file's last event,
    /// table version, record time). Each following event joins the run while it has the
    /// first one's table (the same `Arc`, so the same key and table version), source and
    /// source partition, comes after the event before it (so after everything the file, the
    /// stored files and the lane hold), gets the same encoded partition and is within the
    /// record-time rule; the run ends after an event that leaves parts ready, fills the file
    /// or exceeds the budget, so rotation by count and size cuts at the same event as one
    /// event at a time would. The file lookup, key building and the file's last position
    /// are done once per run, not per event.
    pub(crate) fn append_fast(
        &mut self,
        events: &[ChangeEvent],
        partitioner: &dyn Partitioner,
        rotation: &Rotation,
        part_size: usize,
    ) -> std::result::Result<Fast<'_>, Failed> {
        let failed = |at, error| Failed {
            at,
            error: Box::new(error),
        };
        let Some(event) = events.first() else {
            return Ok(Fast::Slow);
        };
        let resolved = resolve(&mut self.resolved, event);
        partition_into(partitioner, event, &resolved.origin, &mut self.scratch)
            .map_err(|e| failed(0, e))?;
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
                match self.index.get(&key).copied() {
                    Some(i) => {
                        self.last_entry = Some(i);
                        i
                    }
                    None => return Ok(Fast::Slow),
                }
            }
        };
        let position = event.position();
        let entry = &mut self.entries[i];
        if let Some(end) = &entry.stored_end
            && covers(end, position)
        {
            return Ok(Fast::Stored(&entry.key.lane));
        }
        let Some(file) = entry.file.as_mut() else {
            return Ok(Fast::Slow);
        };
        if covers(&file.last, position)
            || !same_table(&file.table, &event.table)
            || rotation.record_time_exceeded(file.first_time, event.source.commit_time)
        {
            return Ok(Fast::Slow);
        }
        let origin = &resolved.origin;
        let per_event = partitioner.depends_on_event();
        let mut count = 0;
        let mut more = false;
        while let Some(next) = events.get(count) {
            if count > 0 {
                let prev = events[count - 1].position();
                let joins = Arc::ptr_eq(&next.table, &event.table)
                    && next.source.name == event.source.name
                    && matches!(
                        prev.partial_cmp(next.position()),
                        Some(std::cmp::Ordering::Less)
                    )
                    && !rotation.record_time_exceeded(file.first_time, next.source.commit_time);
                if !joins {
                    break;
                }
                if per_event {
                    partition_into(partitioner, next, origin, &mut self.scratch)
                        .map_err(|e| failed(count, e))?;
                    if entry.key.partition != self.scratch {
                        break;
                    }
                }
            }
            if let Err(e) = file.append(next, &mut self.budget) {
                if count > 0 {
                    file.last.clone_from(events[count - 1].position());
                }
                return Err(failed(count, e));
            }
            count += 1;
            more = file.encoder.ready() >= part_size
                || rotation.full(file.records, file.encoder.size()).is_some()
                || self.budget.exceeded();
            if more {
                break;
            }
        }
        file.last.clone_from(events[count - 1].position());
        Ok(Fast::Appended {
            lane: &entry.key.lane,
            entry: i,
            count,
            more,
        })
    }

    /// Whether entry `i`'s open file must close before `event`: a new table version, or the
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
    /// position, under `prefix`) when there is none. `prev` is the lane's last event before
    /// this one.
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
                lane: &e.key.lane,
                seq: f.seq,
                prev: f.prev.as_ref(),
            })
        })
    }

    /// Drops the open files of `lanes` (aborting their multipart uploads) and forgets their
    /// keys, so the store is read again if a lane comes back. Returns, per lane that had
    /// open files, the lane's last event before the oldest of them, and the number of files
    /// and events dropped.
    pub(crate) async fn drop_lanes(&mut self, lanes: &[String]) -> Dropped {
        let mut dropped = Dropped::default();
        let mut oldest: HashMap<Arc<str>, (u64, Option<Position>)> = HashMap::new();
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
            dropped.files += 1;
            dropped.events += file.records;
            tracing::debug!(key = %file.path, records = file.records, "revoked lane: open file dropped");
            let first = oldest.entry(lane).or_insert((file.seq, file.prev.clone()));
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
            .map(|(lane, (_, prev))| (lane, prev))
            .collect();
        dropped
    }
}

/// What [`FileTable::drop_lanes`] dropped.
#[derive(Debug, Default)]
pub(crate) struct Dropped {
    /// Open files dropped.
    pub(crate) files: u64,
    /// Events they held.
    pub(crate) events: u64,
    /// Per lane, the last event before its oldest dropped file.
    pub(crate) rewind: Vec<(Arc<str>, Option<Position>)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::format::Format;
    use crate::partitioner::DefaultPartitioner;
    use cdc_core::testing::sample_events;
    use cdc_core::{TableId, TableSchema};

    /// `n` sample events of stream `s` (one lane), every other one on a second table, so
    /// the lane has two keys.
    fn two_tables(n: usize) -> Vec<ChangeEvent> {
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
    fn append_all(files: &mut FileTable, events: &[ChangeEvent], encoders: &Encoders) {
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
    async fn dropping_a_lane_rewinds_it_to_the_event_before_its_oldest_open_file() {
        let encoders = Encoders::new(Format::ndjson(), None, "__");
        let mut files = FileTable::new(1 << 30);
        let events = two_tables(6);
        append_all(&mut files, &events[..2], &encoders);
        assert_eq!(files.open_count(), 2);
        let used = files.budget().used();
        assert!(used > 0);

        let dropped = files
            .drop_lanes(&[events[0].position().source_partition().to_string()])
            .await;
        assert_eq!((dropped.files, dropped.events), (2, 2));
        // The oldest dropped file is the lane's first: nothing before it.
        assert_eq!(dropped.rewind.len(), 1);
        assert_eq!(dropped.rewind[0].1, None);
        assert_eq!(files.open_count(), 0);
        assert_eq!(files.budget().used(), 0);
        // The keys are forgotten: the store is read again if the lane comes back.
        let (key, _) = files.key(&events[0], &DefaultPartitioner).unwrap();
        assert_eq!(files.find(&key), None);
    }

    /// A table holding `events[0]` in an open file (opened through the general path).
    fn opened(events: &[ChangeEvent], encoders: &Encoders) -> (FileTable, usize) {
        let mut files = FileTable::new(1 << 30);
        append_all(&mut files, &events[..1], encoders);
        let (key, _) = files.key(&events[0], &DefaultPartitioner).unwrap();
        let i = files.find(&key).unwrap();
        (files, i)
    }

    /// How many events `append_fast` took from the start of `events`, and whether it said
    /// there is more to do.
    fn run(
        files: &mut FileTable,
        events: &[ChangeEvent],
        partitioner: &dyn Partitioner,
        rotation: &Rotation,
    ) -> (usize, bool) {
        match files.append_fast(events, partitioner, rotation, 1 << 20) {
            Ok(Fast::Appended { count, more, .. }) => (count, more),
            Ok(Fast::Stored(_)) => panic!("stored"),
            Ok(Fast::Slow) => (0, false),
            Err(f) => panic!("failed at {}: {}", f.at, f.error),
        }
    }

    #[tokio::test]
    async fn consecutive_events_of_one_file_are_appended_as_one_run() {
        let encoders = Encoders::new(Format::parquet(), None, "__");
        let events = sample_events("s", 10);
        let (mut files, i) = opened(&events, &encoders);
        let rotation = Rotation::default();
        assert_eq!(
            run(&mut files, &events[1..], &DefaultPartitioner, &rotation),
            (9, false)
        );
        let sealed = files.seal(i, Reason::Flush).await.unwrap().unwrap();
        assert_eq!(sealed.records, 10);
        // The file's last position is the run's last event, set once for the run.
        assert_eq!(&sealed.last, events[9].position());
    }

    #[test]
    fn a_run_ends_before_an_event_of_another_file_or_not_after_the_one_before() {
        let encoders = Encoders::new(Format::parquet(), None, "__");
        let rotation = Rotation::default();
        // Another table in the same lane: another file.
        let events = two_tables(4);
        let mut files = FileTable::new(1 << 30);
        append_all(&mut files, &events[..2], &encoders);
        assert_eq!(
            run(&mut files, &events[2..], &DefaultPartitioner, &rotation),
            (1, false)
        );
        // A re-delivered event inside a batch (a consumer back at an older offset).
        let events = sample_events("s", 6);
        let (mut files, _) = opened(&events, &encoders);
        let batch = [
            events[1].clone(),
            events[2].clone(),
            events[2].clone(),
            events[3].clone(),
        ];
        assert_eq!(
            run(&mut files, &batch, &DefaultPartitioner, &rotation),
            (2, false)
        );
        // The repeat is not appended by the fast path: it needs the general one's checks.
        assert_eq!(
            run(&mut files, &batch[2..], &DefaultPartitioner, &rotation),
            (0, false)
        );
        // Another source partition (stream) of the same table.
        let other = sample_events("t", 3);
        let batch = [events[3].clone(), other[2].clone()];
        assert_eq!(
            run(&mut files, &batch, &DefaultPartitioner, &rotation),
            (1, false)
        );
    }

    #[test]
    fn a_run_ends_at_the_event_that_fills_the_file() {
        let encoders = Encoders::new(Format::parquet(), None, "__");
        let events = sample_events("s", 10);
        let (mut files, _) = opened(&events, &encoders);
        let rotation = Rotation {
            max_records: Some(4),
            ..Rotation::default()
        };
        // One event is in the file: three more fill it, and the caller is told.
        assert_eq!(
            run(&mut files, &events[1..], &DefaultPartitioner, &rotation),
            (3, true)
        );
    }

    #[test]
    fn a_run_ends_where_a_partitioner_that_reads_the_event_changes_partition() {
        let encoders = Encoders::new(Format::parquet(), None, "__");
        let events = sample_events("s", 4);
        let by_id = crate::partitioner::FieldPartitioner::new(["id"]);
        let mut files = FileTable::new(1 << 30);
        let (key, origin) = files.key(&events[0], &by_id).unwrap();
        let i = files.insert(key, None);
        files
            .append(
                i,
                &events[0],
                &origin,
                || None,
                &encoders,
                &Path::from("lake"),
            )
            .unwrap();
        // Same table, source and lane, but each id is its own partition.
        let mut batch = vec![events[0].clone(), events[1].clone()];
        if let Position::Sequence { seq, .. } = &mut batch[0].source.position {
            *seq = 100;
        }
        if let Position::Sequence { seq, .. } = &mut batch[1].source.position {
            *seq = 101;
        }
        assert_eq!(
            run(&mut files, &batch, &by_id, &Rotation::default()),
            (1, false)
        );
    }

    #[tokio::test]
    async fn an_event_that_fails_mid_run_leaves_the_file_ending_at_the_one_before() {
        let encoders = Encoders::new(Format::parquet(), None, "__");
        let mut events = sample_events("s", 5);
        // A text value in the int column `id`.
        let bad = events[3].after.as_mut().unwrap();
        bad.0[0] = cdc_core::Value::String("x".into());
        let (mut files, i) = opened(&events, &encoders);
        let Err(failed) = files.append_fast(
            &events[1..],
            &DefaultPartitioner,
            &Rotation::default(),
            1 << 20,
        ) else {
            panic!("the bad event was appended");
        };
        assert_eq!(failed.at, 2);
        assert!(matches!(*failed.error, S3SinkError::Encode { .. }));
        let entry = &files.entries[i];
        let file = entry.file.as_ref().unwrap();
        assert_eq!((file.records, &file.last), (3, events[2].position()));
    }

    #[tokio::test]
    async fn a_stored_event_is_skipped_and_the_next_one_appended_without_the_store() {
        let encoders = Encoders::new(Format::ndjson(), None, "__");
        let mut files = FileTable::new(1 << 30);
        let events = sample_events("s", 3);
        let (key, origin) = files.key(&events[0], &DefaultPartitioner).unwrap();
        let i = files.insert(key, Some(events[0].position().clone()));
        assert!(files.stored(i, events[0].position()));
        let rotation = Rotation::default();
        assert!(matches!(
            files.append_fast(&events[..1], &DefaultPartitioner, &rotation, 1 << 20),
            Ok(Fast::Stored(_))
        ));
        // No open file yet: the first new event takes the general path and opens one.
        assert!(matches!(
            files.append_fast(&events[1..2], &DefaultPartitioner, &rotation, 1 << 20),
            Ok(Fast::Slow)
        ));
        let prev = Some(events[0].position().clone());
        files
            .append(
                i,
                &events[1],
                &origin,
                || prev,
                &encoders,
                &Path::from("lake"),
            )
            .unwrap();
        assert!(matches!(
            files.append_fast(&events[2..], &DefaultPartitioner, &rotation, 1 << 20),
            Ok(Fast::Appended { entry, more: false, .. }) if entry == i
        ));
        let sealed = files.seal(i, Reason::Flush).await.unwrap().unwrap();
        assert_eq!(sealed.records, 2);
        assert_eq!(&sealed.last, events[2].position());
        assert!(sealed.path.as_ref().starts_with("lake/"));
    }
}
