//! Positions in a change stream: SQL Server's (commit and change LSN, snapshot cursors) and
//! Kafka's (topic, partition, offset), their order and their file-name tokens.

use super::Lsn;
use super::source_partition::{PartitionRef, SourcePartition};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Where an event sits in a SQL Server database's change stream.
///
/// Ordered by `(commit_lsn, total_order)`: the transaction's commit, then the event's place
/// among the transaction's events in the order the reader emits them, which is what exact
/// resume needs (then a blocking snapshot's rows after the transaction's end:
/// [`SnapshotCursor::blocking_row`]). `change_lsn` (`__$seqval`) and `event_serial_no` are
/// Debezium's fields, kept for the output: neither orders events, because `__$seqval` goes
/// backwards inside a transaction when a statement moves several primary keys (the reader
/// emits every delete of the statement before its inserts), and Debezium's serial starts
/// again at each `__$seqval`.
/// [`LsnPosition::end_of`] marks a whole transaction (or a quiet log up to an LSN) as passed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "StoredLsnPosition")]
pub struct LsnPosition {
    /// The database whose log the LSNs belong to (shared by the events of a database).
    pub database: Arc<str>,
    /// Commit LSN of the transaction (`__$start_lsn`).
    pub commit_lsn: Lsn,
    /// LSN of the change inside the transaction (`__$seqval`).
    pub change_lsn: Lsn,
    /// Debezium's `source.event_serial_no`: the change-table rows read so far at this
    /// `(commit_lsn, change_lsn)`, an update's before and after rows counting two — so 1 for an
    /// insert or a delete, 2 for an update, and 2 for the insert half of a single-row primary
    /// key move, which shares its delete's `__$seqval` (Debezium's
    /// `SqlServerOffsetContext::setChangePosition`). Not unique inside a transaction.
    pub event_serial_no: u64,
    /// The event's place among its transaction's events, from 1, in the order the reader emits
    /// them (Debezium's `transaction.total_order`); `u64::MAX`: after every event. Orders
    /// positions; a snapshot numbers its rows with it.
    pub total_order: u64,
    /// For snapshot events: how far the snapshot has come, so a restart continues it.
    /// (Boxed: it is rare, and positions travel inside every event and error.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Box<SnapshotCursor>>,
}

/// How far a snapshot has come: the table being read and the key of its last row read.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotCursor {
    /// `schema.table`.
    pub table: String,
    /// The primary-key values of the last row read, as JSON (empty for keyless tables,
    /// which are read in one go).
    pub key: String,
    /// A blocking snapshot's row number, from 1 (cdc-mssql's `SnapshotType::Blocking`): the
    /// row sits after every event of the transaction at the position's `commit_lsn` (whose
    /// `total_order` it shares, `u64::MAX`) and before the next transaction, so it orders
    /// positions after that transaction's end. 0 for every other snapshot (and left out of
    /// the serialised form then).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocking_row: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `clone_from` reuses the target's strings: a sink overwrites "the last position" with
/// every snapshot row's (see [`Position`]'s `Clone`).
impl Clone for SnapshotCursor {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            key: self.key.clone(),
            blocking_row: self.blocking_row,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.table.clone_from(&source.table);
        self.key.clone_from(&source.key);
        self.blocking_row = source.blocking_row;
    }
}

impl LsnPosition {
    /// The position after every event of the transaction committed at `commit_lsn` (and of
    /// everything before it): what a heartbeat or a finished transaction stores.
    pub fn end_of(database: impl Into<Arc<str>>, commit_lsn: Lsn) -> Self {
        Self {
            database: database.into(),
            commit_lsn,
            change_lsn: Lsn::MAX,
            event_serial_no: u64::MAX,
            total_order: u64::MAX,
            snapshot: None,
        }
    }

    /// Whether this position is past every event of its transaction.
    pub fn is_end_of_transaction(&self) -> bool {
        self.total_order == u64::MAX
    }

    /// What orders positions of one database: the commit, the place in the transaction, then
    /// a blocking snapshot's rows after the transaction's end.
    fn key(&self) -> (Lsn, u64, u64) {
        (
            self.commit_lsn,
            self.total_order,
            self.snapshot.as_ref().map_or(0, |s| s.blocking_row),
        )
    }
}

/// [`LsnPosition`] as stored: checkpoints written before `total_order` existed kept the event's
/// place in its transaction in `event_serial_no`, so that stands in when `total_order` is
/// missing (a restart from such a checkpoint resumes exactly where it stopped).
#[derive(Deserialize)]
struct StoredLsnPosition {
    database: Arc<str>,
    commit_lsn: Lsn,
    change_lsn: Lsn,
    event_serial_no: u64,
    total_order: Option<u64>,
    #[serde(default)]
    snapshot: Option<Box<SnapshotCursor>>,
}

impl From<StoredLsnPosition> for LsnPosition {
    fn from(s: StoredLsnPosition) -> Self {
        Self {
            database: s.database,
            commit_lsn: s.commit_lsn,
            change_lsn: s.change_lsn,
            event_serial_no: s.event_serial_no,
            total_order: s.total_order.unwrap_or(s.event_serial_no),
            snapshot: s.snapshot,
        }
    }
}

/// Where a record sits in a Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaOffset {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset of the record in the partition.
    pub offset: i64,
}

/// A place in a change stream: ordered inside its [`SourcePartition`], serialisable, defined
/// by the source.
///
/// Positions of different source partitions (two databases, two Kafka partitions) are not
/// comparable: `partial_cmp` returns `None` for them. A [`Checkpoint`](super::Checkpoint) keeps one position per
/// source partition.
///
/// ```
/// use cdc_core::{Lsn, LsnPosition, Position};
/// let at = |commit: u32, order| Position::SqlServer(LsnPosition {
///     database: "shop".into(),
///     commit_lsn: Lsn::from_parts(0x27, commit, 1),
///     change_lsn: Lsn::from_parts(0x27, commit, 1),
///     event_serial_no: 1,
///     total_order: order,
///     snapshot: None,
/// });
/// assert!(at(0x758, 1) < at(0x758, 2));
/// assert!(at(0x758, 9) < at(0x760, 1));
/// ```
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Position {
    /// A SQL Server change-table position.
    SqlServer(LsnPosition),
    /// A Kafka record position.
    Kafka(KafkaOffset),
    /// A plain sequence number in a named stream, for sources with no richer notion of place
    /// (in-memory test sources, files).
    Sequence {
        /// The stream's name.
        stream: String,
        /// Sequence number, increasing.
        seq: u64,
    },
}

/// `clone_from` reuses the target's string buffers when both positions are of one kind: sinks
/// keep "the last position of this file/source partition" and overwrite it for every event,
/// and the derived `clone_from` allocated a new topic or stream name each time (≈ 280
/// instructions per event in the S3 sink's profile).
impl Clone for Position {
    fn clone(&self) -> Self {
        match self {
            Position::SqlServer(p) => Position::SqlServer(p.clone()),
            Position::Kafka(k) => Position::Kafka(k.clone()),
            Position::Sequence { stream, seq } => Position::Sequence {
                stream: stream.clone(),
                seq: *seq,
            },
        }
    }

    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Position::SqlServer(to), Position::SqlServer(from)) => {
                // Every field named, so that a new one cannot be left uncopied.
                let LsnPosition {
                    database,
                    commit_lsn,
                    change_lsn,
                    event_serial_no,
                    total_order,
                    snapshot,
                } = from;
                to.database.clone_from(database);
                to.commit_lsn = *commit_lsn;
                to.change_lsn = *change_lsn;
                to.event_serial_no = *event_serial_no;
                to.total_order = *total_order;
                // A snapshot row's cursor: the box and its strings are reused.
                to.snapshot.clone_from(snapshot);
            }
            (Position::Kafka(to), Position::Kafka(from)) => {
                to.topic.clone_from(&from.topic);
                to.partition = from.partition;
                to.offset = from.offset;
            }
            (
                Position::Sequence { stream, seq },
                Position::Sequence {
                    stream: from_stream,
                    seq: from_seq,
                },
            ) => {
                stream.clone_from(from_stream);
                *seq = *from_seq;
            }
            (to, from) => *to = from.clone(),
        }
    }
}

impl Position {
    /// The source partition this position orders within: one database, one Kafka topic
    /// partition, one stream. Shares a SQL Server position's database name; a Kafka topic or
    /// stream name is copied once (per-event paths compare with
    /// [`same_source_partition`](Self::same_source_partition) or
    /// [`SourcePartition::contains`] instead, which allocate nothing).
    pub fn source_partition(&self) -> SourcePartition {
        match self {
            Position::SqlServer(p) => SourcePartition::SqlServer {
                database: Arc::clone(&p.database),
            },
            other => other.partition_ref().to_owned(),
        }
    }

    /// Whether two positions are in the same source partition, without building one.
    pub fn same_source_partition(&self, other: &Position) -> bool {
        self.partition_ref() == other.partition_ref()
    }

    /// The source partition, borrowed.
    pub(crate) fn partition_ref(&self) -> PartitionRef<'_> {
        match self {
            Position::SqlServer(p) => PartitionRef::SqlServer(&p.database),
            Position::Kafka(k) => PartitionRef::Kafka(&k.topic, k.partition),
            Position::Sequence { stream, .. } => PartitionRef::Sequence(stream),
        }
    }

    /// A token for file names that sort in position order: the start-offset part of a Kafka
    /// Connect object name (`<topic>+<partition>+<token>.<ext>`).
    ///
    /// Shapes (ASCII digits, lowercase hex and `-` only, so safe in any object store path):
    ///
    /// ```text
    /// Kafka offset 42          → 0000000042   (at least 10 digits, as Kafka Connect pads;
    ///                                          a negative offset: -000000001)
    /// SQL Server               → <commit LSN, 20 hex digits>-<total_order, 20 digits>-<change LSN, 20 hex digits>
    ///                            00000027000007580005-00000000000000000003-00000027000007500002
    /// sequence 7               → 00000000000000000007   (20 digits)
    /// ```
    ///
    /// Ordering guarantee: for two positions `a < b` of one source partition, `a`'s token is
    /// byte-wise below `b`'s — for Kafka offsets from 0 to 9 999 999 999 (beyond ten digits
    /// the padding Kafka Connect uses no longer sorts, as in Kafka Connect). A SQL Server
    /// token orders by commit LSN then `total_order` (the position's order); the change LSN
    /// only makes tokens of positions that compare equal readable and distinct.
    ///
    /// The shapes are part of the on-store layout: a replay after a crash must produce the
    /// same object names, so they never change.
    ///
    /// ```
    /// use cdc_core::{KafkaOffset, Lsn, LsnPosition, Position};
    /// let kafka = Position::Kafka(KafkaOffset { topic: "t".into(), partition: 3, offset: 42 });
    /// assert_eq!(kafka.sort_token(), "0000000042");
    /// let sql = Position::SqlServer(LsnPosition {
    ///     database: "shop".into(),
    ///     commit_lsn: Lsn::from_parts(0x27, 0x758, 5),
    ///     change_lsn: Lsn::from_parts(0x27, 0x750, 2),
    ///     event_serial_no: 2,
    ///     total_order: 3,
    ///     snapshot: None,
    /// });
    /// assert_eq!(sql.sort_token(), "00000027000007580005-00000000000000000003-00000027000007500002");
    /// assert_eq!(Position::Sequence { stream: "s".into(), seq: 7 }.sort_token(), "00000000000000000007");
    /// ```
    pub fn sort_token(&self) -> String {
        use std::fmt::Write as _;
        match self {
            Position::Kafka(k) => format!("{:010}", k.offset),
            Position::SqlServer(p) => {
                let mut out = String::with_capacity(62);
                let hex = |out: &mut String, lsn: Lsn| {
                    for byte in lsn.to_bytes() {
                        let _ = write!(out, "{byte:02x}");
                    }
                };
                hex(&mut out, p.commit_lsn);
                let _ = write!(out, "-{:020}-", p.total_order);
                hex(&mut out, p.change_lsn);
                // A blocking snapshot's rows follow their transaction's end, whose token is
                // this one's prefix (so it sorts first); other positions' tokens are unchanged.
                if let Some(row) = p
                    .snapshot
                    .as_ref()
                    .map(|s| s.blocking_row)
                    .filter(|&r| r > 0)
                {
                    let _ = write!(out, "-{row:020}");
                }
                out
            }
            Position::Sequence { seq, .. } => format!("{seq:020}"),
        }
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if !self.same_source_partition(other) {
            return None;
        }
        Some(match (self, other) {
            (Position::SqlServer(a), Position::SqlServer(b)) => a.key().cmp(&b.key()),
            (Position::Kafka(a), Position::Kafka(b)) => a.offset.cmp(&b.offset),
            (Position::Sequence { seq: x, .. }, Position::Sequence { seq: y, .. }) => x.cmp(y),
            _ => return None,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::SqlServer(p) => write!(
                f,
                "{}@{}/{}#{}",
                p.database, p.commit_lsn, p.change_lsn, p.total_order
            ),
            Position::Kafka(k) => write!(f, "{}[{}]@{}", k.topic, k.partition, k.offset),
            Position::Sequence { stream, seq } => write!(f, "{stream}#{seq}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn moved(change: u32, serial: u64, order: u64) -> Position {
        Position::SqlServer(LsnPosition {
            database: "shop".into(),
            commit_lsn: Lsn::from_parts(0x27, 0x900, 3),
            change_lsn: Lsn::from_parts(0x27, change, 2),
            event_serial_no: serial,
            total_order: order,
            snapshot: None,
        })
    }

    /// A blocking snapshot's rows sit after the end of the transaction the stream stopped at
    /// (already handed out, maybe checkpointed) and before the next transaction, in row order;
    /// their file-name tokens sort the same way, and the field stays out of the stored form
    /// of every other position.
    #[test]
    fn blocking_snapshot_rows_order_after_their_transactions_end_and_before_the_next() {
        let commit = Lsn::from_parts(0x27, 0x758, 5);
        let end = Position::SqlServer(LsnPosition::end_of("shop", commit));
        let row = |n: u64| {
            let mut p = LsnPosition::end_of("shop", commit);
            p.snapshot = Some(Box::new(SnapshotCursor {
                table: "dbo.items".into(),
                key: "{}".into(),
                blocking_row: n,
            }));
            Position::SqlServer(p)
        };
        let next = Position::SqlServer(LsnPosition {
            total_order: 1,
            change_lsn: Lsn::from_parts(0x27, 0x760, 2),
            ..LsnPosition::end_of("shop", Lsn::from_parts(0x27, 0x760, 3))
        });
        let in_order = [end, row(1), row(2), row(10), next];
        for pair in in_order.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
            assert!(pair[0].sort_token() < pair[1].sort_token());
        }
        let stored = serde_json::to_string(&in_order[1]).unwrap();
        assert!(stored.contains("\"blocking_row\":1"), "{stored}");
        assert_eq!(
            serde_json::from_str::<Position>(&stored).unwrap(),
            in_order[1]
        );
        let mut target = in_order[0].clone();
        target.clone_from(&in_order[3]);
        assert_eq!(target, in_order[3]);
        assert!(
            !serde_json::to_string(&in_order[0])
                .unwrap()
                .contains("blocking_row")
        );
    }

    /// `UPDATE t SET id = id + 100` over two rows, as the reader emits it: both deletes, then
    /// both inserts, whose `__$seqval`s go back to the first delete's; Debezium's serial is 1
    /// for each. Only `total_order` tells the four apart and orders them.
    #[test]
    fn positions_order_by_total_order_when_the_change_lsn_goes_backwards() {
        let events = [
            moved(0x8f0, 1, 1),
            moved(0x8f8, 1, 2),
            moved(0x8f0, 1, 3),
            moved(0x8f8, 1, 4),
        ];
        for pair in events.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
        assert!(
            events[3]
                < Position::SqlServer(LsnPosition::end_of("shop", Lsn::from_parts(0x27, 0x900, 3)))
        );
    }

    /// A checkpoint stored before `total_order` existed kept the place in the transaction in
    /// `event_serial_no`: it resumes at the same event.
    #[test]
    fn a_position_stored_without_total_order_takes_its_event_serial_no() -> serde_json::Result<()> {
        let stored = r#"{"kind":"sql_server","database":"shop","commit_lsn":"00000027:00000900:0003","change_lsn":"00000027:000008f0:0002","event_serial_no":3}"#;
        let position: Position = serde_json::from_str(stored)?;
        assert_eq!(position, moved(0x8f0, 3, 3));
        let written = serde_json::to_string(&moved(0x8f0, 1, 3))?;
        assert!(
            written.contains(r#""event_serial_no":1,"total_order":3"#),
            "{written}"
        );
        assert_eq!(
            serde_json::from_str::<Position>(&written)?,
            moved(0x8f0, 1, 3)
        );
        Ok(())
    }

    #[test]
    fn clone_from_gives_the_source_whatever_the_kinds() {
        let kafka = |topic: &str, offset| {
            Position::Kafka(KafkaOffset {
                topic: topic.into(),
                partition: 3,
                offset,
            })
        };
        let sequence = |stream: &str, seq| Position::Sequence {
            stream: stream.into(),
            seq,
        };
        let sql = Position::SqlServer(LsnPosition {
            database: "shop".into(),
            commit_lsn: Lsn::from_parts(0x27, 0x758, 5),
            change_lsn: Lsn::from_parts(0x27, 0x758, 2),
            event_serial_no: 1,
            total_order: 1,
            snapshot: None,
        });
        let snapshot = |table: &str, key: &str| {
            Position::SqlServer(LsnPosition {
                database: "shop".into(),
                commit_lsn: Lsn::from_parts(0x27, 0x760, 1),
                change_lsn: Lsn::ZERO,
                event_serial_no: 0,
                total_order: 0,
                snapshot: Some(Box::new(SnapshotCursor {
                    table: table.into(),
                    key: key.into(),
                    blocking_row: 0,
                })),
            })
        };
        let all = [
            kafka("orders", 7),
            kafka("a-much-longer-topic-name", 9),
            sequence("s", 1),
            sequence("another", 2),
            sql,
            snapshot("dbo.orders", "[41]"),
            snapshot("dbo.order_lines_with_a_longer_name", "[7,\"x\"]"),
        ];
        for to in &all {
            for from in &all {
                let mut target = to.clone();
                target.clone_from(from);
                assert_eq!(&target, from);
            }
        }
    }
}
