//! Metadata columns: what happened, where and when.

use super::columns::utc_micros;
use arrow_array::ArrayRef;
use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_schema::{DataType as ArrowType, Field};
use cdc_core::{ChangeEvent, Op, Position};
use std::sync::Arc;

/// Operation letter: `c`, `u`, `d`, `r` or `t`.
pub const OP: &str = "__op";
/// Whether the event deleted the row (`__op = 'd'`).
pub const DELETED: &str = "__deleted";
/// Commit time at the source, UTC, microseconds.
pub const COMMIT_TIME: &str = "__commit_time";
/// SQL Server commit LSN (`00000027:00000758:0005`), NULL for other sources.
pub const COMMIT_LSN: &str = "__commit_lsn";
/// SQL Server change LSN.
pub const CHANGE_LSN: &str = "__change_lsn";
/// Serial of the event inside its transaction.
pub const EVENT_SERIAL_NO: &str = "__event_serial_no";
/// The acknowledged position (`ChangeEvent::position`) as JSON: exact, whatever the source.
pub const POSITION: &str = "__position";
/// Kafka topic the event was read from (only in files of Kafka-borne events).
pub const KAFKA_TOPIC: &str = "__kafka_topic";
/// Kafka partition.
pub const KAFKA_PARTITION: &str = "__kafka_partition";
/// Kafka offset.
pub const KAFKA_OFFSET: &str = "__kafka_offset";

/// Builders for the metadata columns. `full` adds operation, deleted flag, commit time and
/// LSNs (the flattened layout); the envelope layout has those in `op` and `source` already.
pub(crate) struct MetaBuilder {
    full: bool,
    op: StringBuilder,
    deleted: BooleanBuilder,
    commit_time: TimestampMicrosecondBuilder,
    lsns: LsnColumns,
    position: StringBuilder,
    kafka: Option<(StringBuilder, Int32Builder, Int64Builder)>,
    scratch: Vec<u8>,
}

impl MetaBuilder {
    pub(crate) fn new(full: bool, kafka: bool) -> Self {
        Self {
            full,
            op: StringBuilder::with_capacity(0, 0),
            deleted: BooleanBuilder::with_capacity(0),
            commit_time: TimestampMicrosecondBuilder::with_capacity(0)
                .with_timezone(super::columns::UTC),
            lsns: LsnColumns::new(),
            position: StringBuilder::with_capacity(0, 0),
            kafka: kafka.then(|| {
                (
                    StringBuilder::with_capacity(0, 0),
                    Int32Builder::with_capacity(0),
                    Int64Builder::with_capacity(0),
                )
            }),
            scratch: Vec::new(),
        }
    }

    pub(crate) fn fields(full: bool, kafka: bool) -> Vec<Field> {
        let mut fields = Vec::new();
        if full {
            fields.extend([
                Field::new(OP, ArrowType::Utf8, false),
                Field::new(DELETED, ArrowType::Boolean, false),
                Field::new(COMMIT_TIME, utc_micros(), true),
            ]);
            fields.extend(LsnColumns::fields([
                COMMIT_LSN,
                CHANGE_LSN,
                EVENT_SERIAL_NO,
            ]));
        }
        fields.push(Field::new(POSITION, ArrowType::Utf8, false));
        if kafka {
            fields.extend([
                Field::new(KAFKA_TOPIC, ArrowType::Utf8, true),
                Field::new(KAFKA_PARTITION, ArrowType::Int32, true),
                Field::new(KAFKA_OFFSET, ArrowType::Int64, true),
            ]);
        }
        fields
    }

    pub(crate) fn append(&mut self, event: &ChangeEvent) {
        if self.full {
            self.op.append_value(event.op.code());
            self.deleted.append_value(event.op == Op::Delete);
            self.commit_time
                .append_option(event.source.commit_time.map(|t| t.timestamp_micros()));
            self.lsns.append(&event.source.position);
        }
        self.scratch.clear();
        write_position(&mut self.scratch, event.position());
        self.position
            .append_value(std::str::from_utf8(&self.scratch).unwrap_or_default());
        if let Some((topic, partition, offset)) = &mut self.kafka {
            match event.position() {
                Position::Kafka(k) => {
                    topic.append_value(&k.topic);
                    partition.append_value(k.partition);
                    offset.append_value(k.offset);
                }
                _ => {
                    topic.append_null();
                    partition.append_null();
                    offset.append_null();
                }
            }
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        if self.full {
            out.push(Arc::new(self.op.finish()));
            out.push(Arc::new(self.deleted.finish()));
            out.push(Arc::new(self.commit_time.finish()));
            self.lsns.finish(out);
        }
        out.push(Arc::new(self.position.finish()));
        if let Some((topic, partition, offset)) = &mut self.kafka {
            out.push(Arc::new(topic.finish()));
            out.push(Arc::new(partition.finish()));
            out.push(Arc::new(offset.finish()));
        }
    }
}

/// A SQL Server position's commit LSN, change LSN and event serial: text, text, Int64; NULL
/// for positions of other sources.
pub(crate) struct LsnColumns {
    commit_lsn: StringBuilder,
    change_lsn: StringBuilder,
    serial: Int64Builder,
}

impl LsnColumns {
    pub(crate) fn new() -> Self {
        Self {
            commit_lsn: StringBuilder::with_capacity(0, 0),
            change_lsn: StringBuilder::with_capacity(0, 0),
            serial: Int64Builder::with_capacity(0),
        }
    }

    /// The three fields, named `[commit LSN, change LSN, serial]`.
    pub(crate) fn fields([commit, change, serial]: [&str; 3]) -> [Field; 3] {
        [
            Field::new(commit, ArrowType::Utf8, true),
            Field::new(change, ArrowType::Utf8, true),
            Field::new(serial, ArrowType::Int64, true),
        ]
    }

    pub(crate) fn append(&mut self, position: &Position) {
        match position {
            Position::SqlServer(p) => {
                self.commit_lsn.append_value(p.commit_lsn.text().as_str());
                self.change_lsn.append_value(p.change_lsn.text().as_str());
                self.serial
                    .append_option(i64::try_from(p.event_serial_no).ok());
            }
            _ => {
                self.commit_lsn.append_null();
                self.change_lsn.append_null();
                self.serial.append_null();
            }
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        out.push(Arc::new(self.commit_lsn.finish()));
        out.push(Arc::new(self.change_lsn.finish()));
        out.push(Arc::new(self.serial.finish()));
    }
}

/// Appends a position as compact JSON to `out`: the same JSON as serde's, written by hand
/// for the per-event kinds because serde's path is a measurable share of encoding time.
pub(crate) fn write_position(out: &mut Vec<u8>, position: &Position) {
    match position {
        Position::Sequence { stream, seq } => {
            out.extend_from_slice(b"{\"kind\":\"sequence\",\"stream\":");
            let _ = serde_json::to_writer(&mut *out, stream);
            out.extend_from_slice(b",\"seq\":");
            out.extend_from_slice(itoa::Buffer::new().format(*seq).as_bytes());
            out.push(b'}');
        }
        Position::Kafka(k) => {
            let mut n = itoa::Buffer::new();
            out.extend_from_slice(b"{\"kind\":\"kafka\",\"topic\":");
            let _ = serde_json::to_writer(&mut *out, &k.topic);
            out.extend_from_slice(b",\"partition\":");
            out.extend_from_slice(n.format(k.partition).as_bytes());
            out.extend_from_slice(b",\"offset\":");
            out.extend_from_slice(n.format(k.offset).as_bytes());
            out.push(b'}');
        }
        Position::SqlServer(p) if p.snapshot.is_none() => {
            out.extend_from_slice(b"{\"kind\":\"sql_server\",\"database\":");
            let _ = serde_json::to_writer(&mut *out, &p.database);
            out.extend_from_slice(b",\"commit_lsn\":\"");
            out.extend_from_slice(p.commit_lsn.text().as_str().as_bytes());
            out.extend_from_slice(b"\",\"change_lsn\":\"");
            out.extend_from_slice(p.change_lsn.text().as_str().as_bytes());
            out.extend_from_slice(b"\",\"event_serial_no\":");
            out.extend_from_slice(itoa::Buffer::new().format(p.event_serial_no).as_bytes());
            out.push(b'}');
        }
        other => {
            if serde_json::to_writer(&mut *out, other).is_err() {
                out.extend_from_slice(position_json(other).as_bytes());
            }
        }
    }
}

/// A position as compact JSON (`{"kind":"kafka","topic":…,"partition":…,"offset":…}`).
pub(crate) fn position_json(position: &Position) -> String {
    // Serialising a Position (strings and integers) cannot fail; the fallback keeps library
    // code free of panics all the same.
    serde_json::to_string(position)
        .unwrap_or_else(|_| format!("{{\"lane\":{:?}}}", position.lane()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::KafkaOffset;

    #[test]
    fn lsn_columns_hold_the_text_form() {
        let events = cdc_core::testing::every_type_events();
        let mut meta = MetaBuilder::new(true, false);
        events.iter().for_each(|e| meta.append(e));
        let mut arrays = Vec::new();
        meta.finish(&mut arrays);
        let commit = arrays[3]
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        let change = arrays[4]
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(commit.value(0), "00000027:00000758:0005");
        assert_eq!(change.value(1), "00000027:00000750:0002");
        assert_eq!(arrow_array::Array::len(commit), events.len());
    }

    #[test]
    fn hand_written_positions_match_serde() {
        let positions = [
            Position::Sequence {
                stream: "a \"quoted\" ß".into(),
                seq: u64::MAX,
            },
            Position::Kafka(KafkaOffset {
                topic: "t.x".into(),
                partition: -1,
                offset: i64::MAX,
            }),
            cdc_core::testing::every_type_events()[0].position().clone(),
        ];
        for p in positions {
            let mut out = Vec::new();
            write_position(&mut out, &p);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&p).unwrap()
            );
        }
    }
}
