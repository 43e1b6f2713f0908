//! Checkpoints: the last durable position of every source partition, and their stored
//! form `{"lanes":{"<source partition>":…}}` (keys checked on load).

use super::Position;
use super::source_partition::{PartitionRef, SourcePartition};
use serde::{Deserialize, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The last durable position of every source partition: what an offset store saves and a
/// source resumes from.
///
/// ```
/// use cdc_core::{Checkpoint, Position, SourcePartition};
/// let mut cp = Checkpoint::default();
/// cp.advance(Position::Sequence { stream: "a".into(), seq: 5 });
/// cp.advance(Position::Sequence { stream: "a".into(), seq: 3 }); // older: ignored
/// let five = Position::Sequence { stream: "a".into(), seq: 5 };
/// assert_eq!(cp.get(&SourcePartition::sequence("a")), Some(&five));
/// assert_eq!(serde_json::to_string(&cp).unwrap(),
///            r#"{"lanes":{"sequence/a":{"kind":"sequence","stream":"a","seq":5}}}"#);
/// ```
///
/// # Stored form
///
/// `{"lanes":{"<source partition>":<position>,…}}`, keyed by each source partition's text
/// form in its order — the form every release has written ("lane" was the old name of a
/// source partition). Loading checks that each key is its position's source partition and
/// refuses the checkpoint otherwise.
///
/// Look-ups and [`advance`](Self::advance) of a partition already held allocate nothing
/// (sinks and sources call them per event).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "StoredCheckpoint")]
pub struct Checkpoint {
    /// One position per source partition, in source-partition order.
    positions: Vec<Position>,
}

impl Checkpoint {
    /// Where `partition`'s position is, or would be inserted.
    fn find(&self, partition: PartitionRef<'_>) -> Result<usize, usize> {
        self.positions
            .binary_search_by(|p| p.partition_ref().cmp_text(partition))
    }

    /// Records `position` unless its source partition already holds a later one. Returns
    /// whether it moved.
    pub fn advance(&mut self, position: Position) -> bool {
        match self.find(position.partition_ref()) {
            Ok(i) => {
                if matches!(
                    self.positions[i].partial_cmp(&position),
                    Some(Ordering::Less)
                ) {
                    self.positions[i] = position;
                    true
                } else {
                    false
                }
            }
            Err(i) => {
                self.positions.insert(i, position);
                true
            }
        }
    }

    /// The position stored for `partition`.
    pub fn get(&self, partition: &SourcePartition) -> Option<&Position> {
        let i = self.find(partition.as_ref()).ok()?;
        self.positions.get(i)
    }

    /// The stored position in the same source partition as `position`.
    pub fn get_for(&self, position: &Position) -> Option<&Position> {
        let i = self.find(position.partition_ref()).ok()?;
        self.positions.get(i)
    }

    /// Whether `position` is at or before what this checkpoint holds for its source
    /// partition, that is, whether a source resuming from here must skip it.
    pub fn covers(&self, position: &Position) -> bool {
        self.get_for(position)
            .is_some_and(|stored| matches!(position.partial_cmp(stored), Some(o) if o.is_le()))
    }

    /// Forgets `partition`, returning what it held.
    pub fn remove(&mut self, partition: &SourcePartition) -> Option<Position> {
        let i = self.find(partition.as_ref()).ok()?;
        Some(self.positions.remove(i))
    }

    /// All stored positions, one per source partition, in source-partition order.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.iter()
    }

    /// Whether no source partition has a position yet.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// The stored form (see [`Checkpoint`]): `{"lanes":{…}}`.
impl Serialize for Checkpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "Checkpoint")]
        struct Stored<'a> {
            lanes: Lanes<'a>,
        }
        Stored {
            lanes: Lanes(&self.positions),
        }
        .serialize(s)
    }
}

/// The positions as a map from their source partition's text form.
struct Lanes<'a>(&'a [Position]);

impl Serialize for Lanes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|p| (PartitionText(p.partition_ref()), p)))
    }
}

struct PartitionText<'a>(PartitionRef<'a>);

impl Serialize for PartitionText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// [`Checkpoint`] as stored.
#[derive(Deserialize)]
struct StoredCheckpoint {
    lanes: BTreeMap<String, Position>,
}

/// A stored checkpoint whose key is not the source partition of the position under it.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint entry {key:?} holds a position of source partition {found:?}")]
struct MismatchedEntry {
    key: String,
    found: String,
}

impl TryFrom<StoredCheckpoint> for Checkpoint {
    type Error = MismatchedEntry;

    fn try_from(stored: StoredCheckpoint) -> Result<Self, Self::Error> {
        let mut positions = Vec::with_capacity(stored.lanes.len());
        for (key, position) in stored.lanes {
            let found = position.partition_ref().to_string();
            if found != key {
                return Err(MismatchedEntry { key, found });
            }
            positions.push(position);
        }
        // Keys are distinct texts, so the partitions are distinct; the map's string order is
        // the partitions' order already, sorting only makes that independent of the map.
        positions.sort_by(|a, b| a.partition_ref().cmp_text(b.partition_ref()));
        Ok(Checkpoint { positions })
    }
}
