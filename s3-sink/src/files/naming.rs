//! Object names in the Kafka Connect layout:
//! `<prefix>/<topic>/<encoded partition>/<topic>+<kafka partition>+<start offset>.<ext>`.
//!
//! Events that did not come through Kafka have no Kafka partition or offset: the second field
//! is `0` for SQL Server (the topic already names the database, which is the lane) or the
//! stream name for other positions, and the third is the first event's position padded to a
//! fixed width so that names sort in position order.

use crate::partitioner::escape;
use cdc_core::{ChangeEvent, Position};
use object_store::path::Path;
use std::sync::Arc;

/// Where an event's file belongs before partitioning: its topic and lane slot.
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

/// The topic and slot of an event.
pub(crate) fn origin(event: &ChangeEvent) -> Origin {
    match event.position() {
        Position::Kafka(k) => Origin {
            topic: k.topic.as_str().into(),
            slot: k.partition.to_string().into(),
            kafka_partition: Some(k.partition),
        },
        other => {
            // The topic Kafka's sink would have used: the same name, made legal the same way.
            let topic = cdc_core::topic::data_change_topic(&event.source.name, &event.table.id);
            let slot = match other {
                Position::SqlServer(_) => "0".to_string(),
                Position::Sequence { stream, .. } => escape(stream),
                lane => escape(&lane.lane()),
            };
            Origin {
                topic: topic.into(),
                slot: slot.into(),
                kafka_partition: None,
            }
        }
    }
}

/// The third field of a file name: the start position, fixed width so names sort in order.
///
/// ```text
/// Kafka offset 42                 → 0000000042  (10 digits, as Kafka Connect pads)
/// SQL Server commit/order/change → 00000027000007580005-00000000000000000001-00000027000007500001
/// sequence 7                      → 00000000000000000007
/// ```
pub(crate) fn position_token(position: &Position) -> String {
    match position {
        Position::Kafka(k) => format!("{:010}", k.offset),
        // The order of cdc-core's position key: commit LSN, total order (the change LSN
        // only makes names of equal positions readable).
        Position::SqlServer(p) => format!(
            "{}-{:020}-{}",
            hex(&p.commit_lsn.to_bytes()),
            p.total_order,
            hex(&p.change_lsn.to_bytes())
        ),
        Position::Sequence { seq, .. } => format!("{seq:020}"),
        other => escape(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The directory of a topic partition: `<prefix>/<topic>/<encoded partition>`.
pub(crate) fn directory(prefix: &Path, topic: &str, partition: &str) -> Path {
    let mut path = prefix.clone().join(topic);
    for segment in partition.split('/').filter(|s| !s.is_empty()) {
        path = path.join(crate::partitioner::escaped_segment(segment));
    }
    path
}

/// The file-name prefix shared by every file of one lane in a directory: `<topic>+<slot>+`.
pub(crate) fn file_prefix(topic: &str, slot: &str) -> String {
    format!("{topic}+{slot}+")
}

/// The full object path of a file starting at `start`.
pub(crate) fn object_path(dir: &Path, origin: &Origin, start: &Position, extension: &str) -> Path {
    let name = format!(
        "{}{}.{extension}",
        file_prefix(&origin.topic, &origin.slot),
        position_token(start)
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
        assert!(position_token(&first) < position_token(&second));
    }

    #[test]
    fn sql_server_names_sort_in_position_order() {
        let events = every_type_events();
        let tokens: Vec<String> = events
            .iter()
            .map(|e| position_token(e.position()))
            .collect();
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
}
