//! Object names in the Kafka Connect layout:
//! `<prefix>/<topic>/<encoded partition>/<topic>+<kafka partition>+<start offset>.<ext>`.
//!
//! Events that did not come through Kafka have no Kafka partition or offset: the second field
//! is `0` for SQL Server (the topic already names the database, which is the source partition)
//! or the stream name for other positions, and the third is the first event's position as a
//! token that sorts in position order ([`Position::sort_token`]).

use crate::partitioner::escape;
use cdc_core::{ChangeEvent, Position, SourcePartition};
use object_store::path::Path;
use std::sync::Arc;

/// Where an event's file belongs before partitioning: its topic and source-partition slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// The topic: Kafka's, or `<server>.<db>.<schema>.<table>` made a legal topic name
    /// ([`cdc_core::topic::data_change_topic`]).
    pub(crate) topic: Arc<str>,
    /// The second field of the file name.
    pub(crate) slot: Arc<str>,
    /// The Kafka partition, when the event came through Kafka.
    pub(crate) kafka_partition: Option<i32>,
}

/// The topic and slot of an event: the file name's second field is Kafka Connect's Kafka
/// partition, so it is made from the event's source partition.
pub(crate) fn origin(event: &ChangeEvent) -> Origin {
    match event.position().source_partition() {
        SourcePartition::Kafka { topic, partition } => Origin {
            topic,
            slot: partition.to_string().into(),
            kafka_partition: Some(partition),
        },
        other => {
            // The topic Kafka's sink would have used: the same name, made legal the same way.
            let topic = cdc_core::topic::data_change_topic(&event.source.name, &event.table.id);
            let slot = match &other {
                // The topic already names the database, which is the source partition.
                SourcePartition::SqlServer { .. } => "0".to_string(),
                SourcePartition::Sequence { stream } => escape(stream),
                other => escape(&other.to_string()),
            };
            Origin {
                topic: topic.into(),
                slot: slot.into(),
                kafka_partition: None,
            }
        }
    }
}

/// The directory of a topic partition: `<prefix>/<topic>/<encoded partition>`.
pub(crate) fn directory(prefix: &Path, topic: &str, partition: &str) -> Path {
    let mut path = prefix.clone().join(topic);
    for segment in partition.split('/').filter(|s| !s.is_empty()) {
        path = path.join(crate::partitioner::escaped_segment(segment));
    }
    path
}

/// The file-name prefix shared by every file of one source partition in a directory:
/// `<topic>+<slot>+`.
pub(crate) fn file_prefix(topic: &str, slot: &str) -> String {
    format!("{topic}+{slot}+")
}

/// The full object path of a file starting at `start`.
pub(crate) fn object_path(dir: &Path, origin: &Origin, start: &Position, extension: &str) -> Path {
    let name = format!(
        "{}{}.{extension}",
        file_prefix(&origin.topic, &origin.slot),
        start.sort_token()
    );
    dir.clone().join(crate::partitioner::escaped_segment(&name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::KafkaOffset;
    use cdc_core::testing::{every_type_events, sample_events};

    #[test]
    fn names_follow_the_kafka_connect_layout() {
        let mut event = sample_events("s", 1).remove(0);
        event.transport = Some(Position::Kafka(KafkaOffset {
            topic: "erp.demo.dbo.items".into(),
            partition: 3,
            offset: 42,
        }));
        let o = origin(&event);
        let dir = directory(&Path::from("lake/raw"), &o.topic, "partition=3");
        let path = object_path(&dir, &o, event.position(), "parquet");
        assert_eq!(
            path.as_ref(),
            "lake/raw/erp.demo.dbo.items/partition=3/erp.demo.dbo.items+3+0000000042.parquet"
        );
    }

    #[test]
    fn sql_server_names_sort_like_positions_even_when_change_lsns_do_not() {
        let at = |serial, change| {
            Position::SqlServer(cdc_core::LsnPosition {
                database: "db".into(),
                commit_lsn: cdc_core::Lsn::from_parts(0x27, 0x758, 5),
                change_lsn: cdc_core::Lsn::from_parts(0x27, change, 1),
                event_serial_no: 1,
                total_order: serial,
                snapshot: None,
            })
        };
        // A primary-key update can make seqval go backwards inside a transaction.
        let (first, second) = (at(1, 0x760), at(2, 0x750));
        assert!(first < second);
        assert!(first.sort_token() < second.sort_token());
    }

    #[test]
    fn sql_server_names_sort_in_position_order() {
        let events = every_type_events();
        let tokens: Vec<String> = events.iter().map(|e| e.position().sort_token()).collect();
        let mut sorted = tokens.clone();
        sorted.sort();
        assert_eq!(tokens, sorted);
        assert_eq!(&*origin(&events[0]).topic, "erp.demo.dbo.every_type");
        assert_eq!(&*origin(&events[0]).slot, "0");
    }

    #[test]
    fn a_table_name_kafka_refuses_gets_the_topic_kafkas_sink_would_use() {
        let mut event = every_type_events().remove(0);
        let mut table = (*event.table).clone();
        table.id.table = "Order Details".into();
        event.table = Arc::new(table);
        assert_eq!(&*origin(&event).topic, "erp.demo.dbo.Order_Details");
    }

    /// What the release before [`Position::sort_token`] named files for these start positions
    /// (exactly-once relies on a replay writing the same names): the names must not change.
    #[test]
    fn names_are_those_the_release_before_sort_tokens_wrote() {
        use cdc_core::{Lsn, LsnPosition, SnapshotCursor};
        let sql_server = |database: &str, commit, change, order, snapshot| {
            Position::SqlServer(LsnPosition {
                database: database.into(),
                commit_lsn: commit,
                change_lsn: change,
                event_serial_no: 2,
                total_order: order,
                snapshot,
            })
        };
        let kafka = |offset| {
            Position::Kafka(KafkaOffset {
                topic: "t".into(),
                partition: 3,
                offset,
            })
        };
        let cases = [
            (kafka(42), "lake/t+3+0000000042.parquet"),
            (kafka(12_345_678_901), "lake/t+3+12345678901.parquet"),
            (kafka(-1), "lake/t+3+-000000001.parquet"),
            (
                Position::Sequence {
                    stream: "s/x y".into(),
                    seq: 7,
                },
                "lake/erp.demo.dbo.every_type+s%2Fx y+00000000000000000007.parquet",
            ),
            (
                Position::Sequence {
                    stream: "s".into(),
                    seq: u64::MAX,
                },
                "lake/erp.demo.dbo.every_type+s+18446744073709551615.parquet",
            ),
            (
                sql_server(
                    "shop",
                    Lsn::from_parts(0x27, 0x758, 5),
                    Lsn::from_parts(0x27, 0x750, 2),
                    3,
                    None,
                ),
                "lake/erp.demo.dbo.every_type+0+00000027000007580005-00000000000000000003-00000027000007500002.parquet",
            ),
            (
                sql_server(
                    "crm",
                    Lsn::from_parts(0x30, 0x10, 1),
                    Lsn::ZERO,
                    41,
                    // Built from its stored form: fields added later with a default do not
                    // change this test.
                    Some(Box::new(
                        serde_json::from_value::<SnapshotCursor>(serde_json::json!({
                            "table": "dbo.customers",
                            "key": "[41]",
                        }))
                        .unwrap(),
                    )),
                ),
                "lake/erp.demo.dbo.every_type+0+00000030000000100001-00000000000000000041-00000000000000000000.parquet",
            ),
            (
                Position::SqlServer(LsnPosition::end_of("hr", Lsn::MAX)),
                "lake/erp.demo.dbo.every_type+0+ffffffffffffffffffff-18446744073709551615-ffffffffffffffffffff.parquet",
            ),
        ];
        let template = every_type_events().remove(0);
        for (position, expected) in cases {
            let mut event = template.clone();
            if matches!(position, Position::Kafka(_)) {
                event.transport = Some(position);
            } else {
                event.source.position = position;
            }
            let o = origin(&event);
            let path = object_path(&Path::from("lake"), &o, event.position(), "parquet");
            assert_eq!(path.as_ref(), expected);
        }
    }
}
