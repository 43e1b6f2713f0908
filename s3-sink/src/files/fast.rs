//! The fast path: appending a run of events to the open file they all go to, with one file
//! lookup, one key and one last position per run instead of per event.

use super::key::{partition_into, resolve};
use super::{FileTable, same_table};
use crate::error::S3SinkError;
use crate::ledger::covers;
use crate::partitioner::Partitioner;
use crate::rotation::Rotation;
use cdc_core::{ChangeEvent, SourcePartition};
use std::sync::Arc;

/// What [`FileTable::append_fast`] did with the events at the start of a slice.
pub(crate) enum Fast<'a> {
    /// A stored file of the first event's key already holds it (a replay): skipped.
    Stored(&'a SourcePartition),
    /// The first `count` events (at least one) were appended to the open file of entry
    /// `entry`: a run of events with the first one's key, each after the one before it;
    /// `more` when the file now has parts ready, is full or the budget is exceeded.
    Appended {
        source_partition: &'a SourcePartition,
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

impl FileTable {
    /// Appends the events at the start of `events` to the open file of the first one's key
    /// when nothing else is needed: no store call, no rotation before them, no new file.
    ///
    /// The first event is checked in full (its key, stored files, the file's last event, table
    /// version, record time). Each following event joins the run while it has the first one's
    /// table (the same `Arc`, so the same key and table version), source and source partition,
    /// comes after the event before it (so after everything the file, the stored files and the
    /// source partition hold), gets the same encoded partition and is within the record-time
    /// rule; the run ends after an event that leaves parts ready, fills the file or exceeds the
    /// budget, so rotation by count and size cuts at the same event as one event at a time
    /// would. The file lookup, key building and the file's last position are done once per run,
    /// not per event.
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
                    entry.key.source_partition == resolved.source_partition
                        && Arc::ptr_eq(&entry.key.topic, &resolved.origin.topic)
                        && entry.key.partition == self.scratch
                }) =>
            {
                i
            }
            _ => {
                let key = resolved.key(&self.scratch);
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
            return Ok(Fast::Stored(&entry.key.source_partition));
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
            source_partition: &entry.key.source_partition,
            entry: i,
            count,
            more,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::tests::{append_all, opened, two_tables};
    use super::*;
    use crate::format::{Encoders, Format};
    use crate::partitioner::DefaultPartitioner;
    use crate::rotation::Reason;
    use cdc_core::Position;
    use cdc_core::testing::sample_events;
    use object_store::path::Path;

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
        // Another table in the same source partition: another file.
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
        // Same table, source and source partition, but each id is its own partition.
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
