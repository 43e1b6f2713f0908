//! Source partitions: the parts of a change stream inside which positions are ordered.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Where a [`Position`](crate::Position) orders: one SQL Server database's log, one Kafka topic
/// partition, one named stream. Kafka Connect's term (a source record's `sourcePartition`,
/// whose `sourceOffset` is the position); earlier versions of this crate said "lane".
///
/// Positions of one source partition are totally ordered; positions of two are not comparable.
/// A [`Checkpoint`](crate::Checkpoint) keeps one position per source partition, and a source
/// that gives some up (a Kafka rebalance) names them to the sink
/// ([`Sink::partitions_revoked`](crate::Sink::partitions_revoked)).
///
/// Cheap to clone, compare and hash: the names are shared (`Arc<str>`), and a SQL Server
/// position's partition shares the position's database name
/// ([`Position::source_partition`](crate::Position::source_partition)).
///
/// Its text form (`Display`) is the key checkpoints are stored under, unchanged since the
/// first release: `sqlserver/<database>`, `kafka/<topic>/<partition>`, `sequence/<stream>`.
/// Source partitions are ordered as their text forms (byte-wise), the order checkpoints have
/// always listed them in, so `kafka/t/10` comes before `kafka/t/2`.
///
/// ```
/// use cdc_core::{KafkaOffset, Position, SourcePartition};
/// let at = Position::Kafka(KafkaOffset { topic: "erp.shop.dbo.orders".into(), partition: 2, offset: 41 });
/// let partition = at.source_partition();
/// assert_eq!(partition, SourcePartition::kafka("erp.shop.dbo.orders", 2));
/// assert_eq!(partition.to_string(), "kafka/erp.shop.dbo.orders/2");
/// assert!(partition.contains(&at));
/// assert!(SourcePartition::kafka("erp.shop.dbo.orders", 10) < partition);
/// assert_eq!(SourcePartition::sql_server("shop").to_string(), "sqlserver/shop");
/// assert_eq!(SourcePartition::sequence("s").to_string(), "sequence/s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourcePartition {
    /// One SQL Server database's log: `sqlserver/<database>`.
    SqlServer {
        /// The database name, as in [`LsnPosition::database`](crate::LsnPosition::database).
        database: Arc<str>,
    },
    /// One Kafka topic partition: `kafka/<topic>/<partition>`.
    Kafka {
        /// The topic name.
        topic: Arc<str>,
        /// The partition number.
        partition: i32,
    },
    /// One named stream of a sequence-numbered source: `sequence/<stream>`.
    Sequence {
        /// The stream's name.
        stream: Arc<str>,
    },
}

impl SourcePartition {
    /// A SQL Server database's log.
    pub fn sql_server(database: impl Into<Arc<str>>) -> Self {
        SourcePartition::SqlServer {
            database: database.into(),
        }
    }

    /// A Kafka topic partition.
    pub fn kafka(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        SourcePartition::Kafka {
            topic: topic.into(),
            partition,
        }
    }

    /// A named stream.
    pub fn sequence(stream: impl Into<Arc<str>>) -> Self {
        SourcePartition::Sequence {
            stream: stream.into(),
        }
    }

    /// Whether `position` orders in this source partition. Allocates nothing.
    pub fn contains(&self, position: &crate::Position) -> bool {
        self.as_ref() == position.partition_ref()
    }

    pub(crate) fn as_ref(&self) -> PartitionRef<'_> {
        match self {
            SourcePartition::SqlServer { database } => PartitionRef::SqlServer(database),
            SourcePartition::Kafka { topic, partition } => PartitionRef::Kafka(topic, *partition),
            SourcePartition::Sequence { stream } => PartitionRef::Sequence(stream),
        }
    }
}

impl fmt::Display for SourcePartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_ref(), f)
    }
}

/// Byte-wise order of the text forms (see the type's documentation).
impl Ord for SourcePartition {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp_text(other.as_ref())
    }
}

impl PartialOrd for SourcePartition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A source partition borrowed from a position or a [`SourcePartition`]: what the per-event
/// paths (checkpoint look-ups, "same partition?") compare, without building names.
///
/// Equal iff the text forms are equal: the text form is injective (the kinds have distinct
/// prefixes, and a Kafka partition's number, the part after the last `/`, has no `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionRef<'a> {
    SqlServer(&'a str),
    Kafka(&'a str, i32),
    Sequence(&'a str),
}

impl PartitionRef<'_> {
    /// The text form's bytes, produced on the stack.
    fn text_bytes(self) -> impl Iterator<Item = u8> {
        let (prefix, name) = match self {
            PartitionRef::SqlServer(database) => ("sqlserver/", database),
            PartitionRef::Kafka(topic, _) => ("kafka/", topic),
            PartitionRef::Sequence(stream) => ("sequence/", stream),
        };
        // `/` and the partition number: at most 1 + 11 bytes (`/-2147483648`).
        let mut suffix = [0u8; 12];
        let mut len = 0;
        if let PartitionRef::Kafka(_, partition) = self {
            suffix[0] = b'/';
            len = 1;
            if partition < 0 {
                suffix[1] = b'-';
                len = 2;
            }
            let mut n = partition.unsigned_abs();
            let digits_from = len;
            loop {
                // `n % 10` is a single digit.
                suffix[len] = b'0' + (n % 10) as u8;
                len += 1;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            suffix[digits_from..len].reverse();
        }
        prefix
            .bytes()
            .chain(name.bytes())
            .chain(suffix.into_iter().take(len))
    }

    /// Byte-wise order of the text forms.
    pub(crate) fn cmp_text(self, other: PartitionRef<'_>) -> Ordering {
        self.text_bytes().cmp(other.text_bytes())
    }

    /// The owned value; shares `database` when the caller has it as an `Arc`.
    pub(crate) fn to_owned(self) -> SourcePartition {
        match self {
            PartitionRef::SqlServer(database) => SourcePartition::sql_server(database),
            PartitionRef::Kafka(topic, partition) => SourcePartition::kafka(topic, partition),
            PartitionRef::Sequence(stream) => SourcePartition::sequence(stream),
        }
    }
}

impl fmt::Display for PartitionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionRef::SqlServer(database) => write!(f, "sqlserver/{database}"),
            PartitionRef::Kafka(topic, partition) => write!(f, "kafka/{topic}/{partition}"),
            PartitionRef::Sequence(stream) => write!(f, "sequence/{stream}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<SourcePartition> {
        vec![
            SourcePartition::sql_server("shop"),
            SourcePartition::sql_server("shop/2"),
            SourcePartition::sql_server(""),
            SourcePartition::kafka("t", 2),
            SourcePartition::kafka("t", 10),
            SourcePartition::kafka("t", 0),
            SourcePartition::kafka("t", -1),
            SourcePartition::kafka("t", i32::MIN),
            SourcePartition::kafka("t", i32::MAX),
            SourcePartition::kafka("t/1", 2),
            SourcePartition::kafka("t0", 1),
            SourcePartition::sequence("a"),
            SourcePartition::sequence("a b"),
        ]
    }

    #[test]
    fn source_partitions_are_ordered_as_their_text_forms() {
        for a in all() {
            for b in all() {
                assert_eq!(
                    a.cmp(&b),
                    a.to_string().cmp(&b.to_string()),
                    "{a} against {b}"
                );
                assert_eq!(a == b, a.to_string() == b.to_string(), "{a} against {b}");
            }
        }
    }

    #[test]
    fn the_text_form_is_the_lane_name_checkpoints_are_stored_under() {
        let texts: Vec<String> = all().iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "sqlserver/shop",
                "sqlserver/shop/2",
                "sqlserver/",
                "kafka/t/2",
                "kafka/t/10",
                "kafka/t/0",
                "kafka/t/-1",
                "kafka/t/-2147483648",
                "kafka/t/2147483647",
                "kafka/t/1/2",
                "kafka/t0/1",
                "sequence/a",
                "sequence/a b",
            ]
        );
    }
}
