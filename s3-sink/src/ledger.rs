//! The durability ledger: what the sink holds of each source partition, and what it may
//! report durable.
//!
//! A source partition (Kafka Connect's term: one Kafka topic partition, one SQL Server
//! database) arrives in position order. A position may be reported durable only once every
//! event at or before it in its source partition is in an uploaded file: with files of the
//! source partition still open, that is the source partition's last event before its oldest
//! open file (the file opened first); with none open, the source partition's last event. Each
//! position is reported once, and a source partition's report never goes backwards.

use cdc_core::{ChangeEvent, Position, SourcePartition};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Whether `position` is at or before `end` in the same source partition (positions of
/// different source partitions do not compare, so never cover each other).
pub(crate) fn covers(end: &Position, position: &Position) -> bool {
    matches!(position.partial_cmp(end), Some(o) if o.is_le())
}

#[derive(Debug, Default)]
struct PartitionState {
    /// The source partition's last event the sink holds, in an open or an uploaded file.
    written: Option<Position>,
    /// The last position reported durable.
    reported: Option<Position>,
}

/// An open file as the ledger needs to see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenFileMark<'a> {
    /// The file's source partition.
    pub(crate) source_partition: &'a SourcePartition,
    /// Opening order: within a source partition, the smallest is the file with the oldest first
    /// event.
    pub(crate) seq: u64,
    /// The source partition's last event before the file's first one.
    pub(crate) prev: Option<&'a Position>,
}

/// Per source partition: the last event held and the last position reported.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    partitions: HashMap<SourcePartition, PartitionState>,
    /// The last event of each source partition in the current batch not yet recorded in
    /// `partitions`, by its index in the batch: the per-event path notes an index instead of
    /// cloning a position.
    noted: Vec<(SourcePartition, usize)>,
}

impl Ledger {
    /// Notes that event `index` of the current batch is its source partition's latest (a source
    /// partition is cloned only the first time it is seen in a batch). [`settle`](Self::settle)
    /// records it.
    pub(crate) fn note(&mut self, partition: &SourcePartition, index: usize) {
        match self.noted.iter_mut().rev().find(|(p, _)| p == partition) {
            Some(noted) => noted.1 = index,
            None => self.noted.push((partition.clone(), index)),
        }
    }

    /// Records the noted source partition positions of the batch `events`.
    pub(crate) fn settle(&mut self, events: &[ChangeEvent]) {
        for (partition, index) in std::mem::take(&mut self.noted) {
            if let Some(event) = events.get(index) {
                self.advance(&partition, event.position());
            }
        }
    }

    /// Drops the notes of a batch that failed: its events are not held.
    pub(crate) fn forget_noted(&mut self) {
        self.noted.clear();
    }

    /// Records `position` as the source partition's last event held.
    pub(crate) fn advance(&mut self, partition: &SourcePartition, position: &Position) {
        match self.partitions.get_mut(partition) {
            Some(PartitionState {
                written: Some(written),
                ..
            }) => written.clone_from(position),
            Some(state) => state.written = Some(position.clone()),
            None => {
                self.partitions.insert(
                    partition.clone(),
                    PartitionState {
                        written: Some(position.clone()),
                        reported: None,
                    },
                );
            }
        }
    }

    /// The source partition's last event held, if any.
    pub(crate) fn written(&self, partition: &SourcePartition) -> Option<&Position> {
        self.partitions
            .get(partition)
            .and_then(|p| p.written.as_ref())
    }

    /// Whether the sink already holds `position` (it is at or before the source partition's
    /// last event).
    pub(crate) fn holds(&self, partition: &SourcePartition, position: &Position) -> bool {
        self.written(partition)
            .is_some_and(|written| covers(written, position))
    }

    /// Sets the source partition's last event held back to `to`: its open files were dropped,
    /// and `to` is the event before the oldest of them.
    pub(crate) fn rewind(&mut self, partition: &SourcePartition, to: Option<Position>) {
        if let Some(state) = self.partitions.get_mut(partition) {
            state.written = to;
        }
    }

    /// Per source partition, in their order, the highest position not reported yet such that
    /// everything at or before it is stored, given the files open now.
    pub(crate) fn report<'a>(
        &mut self,
        open: impl IntoIterator<Item = OpenFileMark<'a>>,
    ) -> Vec<Position> {
        let mut oldest: HashMap<&SourcePartition, OpenFileMark<'a>> = HashMap::new();
        for file in open {
            let entry = oldest.entry(file.source_partition).or_insert(file);
            if file.seq < entry.seq {
                *entry = file;
            }
        }
        let mut partitions: Vec<(&SourcePartition, &mut PartitionState)> =
            self.partitions.iter_mut().collect();
        // The text forms' order, as checkpoints list source partitions.
        partitions.sort_by(|a, b| a.0.cmp(b.0));
        let mut reported = Vec::new();
        for (partition, state) in partitions {
            let durable = match oldest.get(partition) {
                Some(file) => file.prev,
                None => state.written.as_ref(),
            };
            let Some(durable) = durable else { continue };
            let newer = match &state.reported {
                None => true,
                Some(old) => matches!(old.partial_cmp(durable), Some(Ordering::Less)),
            };
            if newer {
                state.reported = Some(durable.clone());
                reported.push(durable.clone());
            }
        }
        reported
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::testing::sample_events;

    fn at(stream: &str, seq: u64) -> Position {
        Position::Sequence {
            stream: stream.into(),
            seq,
        }
    }

    fn partition(name: &str) -> SourcePartition {
        SourcePartition::sequence(name)
    }

    fn mark<'a>(
        source_partition: &'a SourcePartition,
        seq: u64,
        prev: Option<&'a Position>,
    ) -> OpenFileMark<'a> {
        OpenFileMark {
            source_partition,
            seq,
            prev,
        }
    }

    #[test]
    fn with_no_file_open_the_source_partitions_last_event_is_durable() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 1));
        ledger.advance(&partition("a"), &at("a", 2));
        assert_eq!(ledger.report([]), vec![at("a", 2)]);
    }

    #[test]
    fn with_files_open_the_event_before_the_oldest_open_file_is_durable() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 9));
        let (p3, p6) = (at("a", 3), at("a", 6));
        // Opened second but listed first: the order of opening decides, not the listing.
        let a = partition("a");
        let open = [mark(&a, 8, Some(&p6)), mark(&a, 5, Some(&p3))];
        assert_eq!(ledger.report(open), vec![at("a", 3)]);
    }

    #[test]
    fn a_source_partition_whose_oldest_open_file_is_its_first_reports_nothing() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 4));
        let a = partition("a");
        assert!(ledger.report([mark(&a, 1, None)]).is_empty());
    }

    #[test]
    fn a_position_is_reported_once_and_never_backwards() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 5));
        assert_eq!(ledger.report([]), vec![at("a", 5)]);
        assert!(ledger.report([]).is_empty());
        // A revoked source partition falls back to an earlier event: nothing older is reported
        // again.
        ledger.rewind(&partition("a"), Some(at("a", 2)));
        assert!(ledger.report([]).is_empty());
        ledger.advance(&partition("a"), &at("a", 7));
        assert_eq!(ledger.report([]), vec![at("a", 7)]);
    }

    #[test]
    fn source_partitions_are_reported_in_their_order_each_by_its_own_open_files() {
        let mut ledger = Ledger::default();
        for name in ["b", "c", "a"] {
            ledger.advance(&partition(name), &at(name, 10));
        }
        let p4 = at("b", 4);
        let (b, c) = (partition("b"), partition("c"));
        assert_eq!(
            ledger.report([mark(&b, 1, Some(&p4)), mark(&c, 2, None)]),
            vec![at("a", 10), at("b", 4)]
        );
    }

    #[test]
    fn rewinding_a_source_partition_makes_its_dropped_events_new_again() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 8));
        assert!(ledger.holds(&partition("a"), &at("a", 6)));
        ledger.rewind(&partition("a"), Some(at("a", 5)));
        assert!(!ledger.holds(&partition("a"), &at("a", 6)));
        assert!(ledger.holds(&partition("a"), &at("a", 5)));
        ledger.rewind(&partition("a"), None);
        assert!(!ledger.holds(&partition("a"), &at("a", 1)));
        assert_eq!(ledger.written(&partition("a")), None);
    }

    #[test]
    fn positions_of_other_source_partitions_are_never_held() {
        let mut ledger = Ledger::default();
        ledger.advance(&partition("a"), &at("a", 8));
        assert!(!ledger.holds(&partition("a"), &at("b", 1)));
        assert!(!ledger.holds(&partition("b"), &at("a", 1)));
    }

    #[test]
    fn noted_events_are_recorded_when_the_batch_settles_and_dropped_when_it_fails() {
        let events = sample_events("s", 4);
        let source_partition = events[0].position().source_partition();
        let mut ledger = Ledger::default();
        ledger.note(&source_partition, 0);
        ledger.note(&source_partition, 2);
        assert_eq!(ledger.written(&source_partition), None);
        ledger.settle(&events);
        assert_eq!(
            ledger.written(&source_partition),
            Some(events[2].position())
        );

        ledger.note(&source_partition, 3);
        ledger.forget_noted();
        ledger.settle(&events);
        assert_eq!(
            ledger.written(&source_partition),
            Some(events[2].position())
        );
    }
}
