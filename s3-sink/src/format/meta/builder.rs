//! The metadata columns' Arrow arrays, appended per event and finished per batch.

use super::MetaNames;
use super::position::write_position;
use crate::format::columns::{finish_primitive, finish_strings, utc_micros};
use arrow_array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, BooleanArray, StringArray};
use arrow_buffer::{BooleanBuffer, Buffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType as ArrowType, Field};
use cdc_core::{ChangeEvent, Op, Position};
use std::fmt::Write as _;
use std::sync::Arc;

/// Builders for the metadata columns. `full` adds operation, deleted flag, commit time and
/// LSNs (the flattened layout); the envelope layout has those in `op` and `source` already.
pub(crate) struct MetaBuilder {
    full: bool,
    /// The operations of the rows so far: `__op` and `__deleted` are made from them when the
    /// batch is finished, in one pass each, instead of a string and a flag appended per event.
    ops: Vec<Op>,
    commit_time: TimestampMicrosecondBuilder,
    lsns: LsnColumns,
    position: PositionColumn,
    kafka: Option<(StringBuilder, Int32Builder, Int64Builder)>,
}

impl MetaBuilder {
    pub(crate) fn new(full: bool, kafka: bool) -> Self {
        Self {
            full,
            ops: Vec::new(),
            commit_time: TimestampMicrosecondBuilder::with_capacity(0)
                .with_timezone(crate::format::columns::UTC),
            lsns: LsnColumns::new(),
            position: PositionColumn::new(),
            kafka: kafka.then(|| {
                (
                    StringBuilder::with_capacity(0, 0),
                    Int32Builder::with_capacity(0),
                    Int64Builder::with_capacity(0),
                )
            }),
        }
    }

    pub(crate) fn fields(names: &MetaNames, full: bool, kafka: bool) -> Vec<Field> {
        let mut fields = Vec::new();
        if full {
            fields.extend([
                Field::new(&names.op, ArrowType::Utf8, false),
                Field::new(&names.deleted, ArrowType::Boolean, false),
                Field::new(&names.commit_time, utc_micros(), true),
            ]);
            fields.extend(LsnColumns::fields([
                names.commit_lsn.as_str(),
                names.change_lsn.as_str(),
                names.event_serial_no.as_str(),
            ]));
        }
        fields.push(Field::new(&names.position, ArrowType::Utf8, false));
        if kafka {
            fields.extend([
                Field::new(&names.kafka_topic, ArrowType::Utf8, true),
                Field::new(&names.kafka_partition, ArrowType::Int32, true),
                Field::new(&names.kafka_offset, ArrowType::Int64, true),
            ]);
        }
        fields
    }

    pub(crate) fn append(&mut self, event: &ChangeEvent) {
        if self.full {
            self.ops.push(event.op);
            self.commit_time
                .append_option(event.source.commit_time.map(|t| t.timestamp_micros()));
            self.lsns.append(&event.source.position);
        }
        self.position.append(event.position());
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

    /// The arrays built so far; the builders start over, sized for a batch like this one.
    ///
    /// # Errors
    /// Only if a batch's operation letters overflow an `i32` offset (never: a batch is far
    /// smaller).
    pub(crate) fn finish(&mut self, out: &mut Vec<ArrayRef>) -> Result<(), ArrowError> {
        if self.full {
            let (op, deleted) = op_columns(&self.ops)?;
            self.ops.clear();
            out.push(op);
            out.push(deleted);
            out.push(finish_primitive(&mut self.commit_time));
            self.lsns.finish(out);
        }
        out.push(finish_strings(&mut self.position.builder));
        if let Some((topic, partition, offset)) = &mut self.kafka {
            out.push(finish_strings(topic));
            out.push(finish_primitive(partition));
            out.push(finish_primitive(offset));
        }
        Ok(())
    }
}

/// `__op` (each operation's letter) and `__deleted` (whether it is a delete) of `ops`.
fn op_columns(ops: &[Op]) -> Result<(ArrayRef, ArrayRef), ArrowError> {
    let mut letters = Vec::with_capacity(ops.len());
    let mut one_letter = true;
    for op in ops {
        // Pushed byte by byte: a one-letter `extend_from_slice` is a `memcpy` call.
        match op.code().as_bytes() {
            [letter] => letters.push(*letter),
            code => {
                letters.extend_from_slice(code);
                one_letter = false;
            }
        }
    }
    let offsets = if one_letter {
        OffsetBuffer::<i32>::try_from_repeated_length(1, ops.len())
    } else {
        OffsetBuffer::<i32>::try_from_lengths(ops.iter().map(|op| op.code().len()))
    }
    .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
    let op = StringArray::try_new(offsets, Buffer::from_vec(letters), None)?;
    let deleted = BooleanBuffer::collect_bool(ops.len(), |i| ops.get(i) == Some(&Op::Delete));
    Ok((Arc::new(op), Arc::new(BooleanArray::new(deleted, None))))
}

/// Which kind of position a cached `__position` prefix was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrefixKind {
    None,
    Sequence,
    Kafka,
    SqlServer,
}

/// The `__position` column, written straight into the column's value buffer. The JSON up to
/// the first number depends only on the position's kind and its stream, topic or database,
/// which stay the same event after event, so that part is escaped once and reused; the
/// output is byte for byte what [`write_position`] (and serde) writes.
struct PositionColumn {
    builder: StringBuilder,
    kind: PrefixKind,
    /// The stream, topic or database the prefix was made for.
    name: String,
    prefix: String,
    /// For the positions written through [`write_position`].
    scratch: Vec<u8>,
}

impl PositionColumn {
    fn new() -> Self {
        Self {
            builder: StringBuilder::with_capacity(0, 0),
            kind: PrefixKind::None,
            name: String::new(),
            prefix: String::new(),
            scratch: Vec::new(),
        }
    }

    /// Makes the cached prefix `head` + `name` as a JSON string + `tail`, unless it is that
    /// already. False if the name cannot be written as JSON (never, for a `str`).
    #[inline]
    fn prefix(&mut self, kind: PrefixKind, name: &str, head: &str, tail: &str) -> bool {
        (self.kind == kind && self.name == name) || self.new_prefix(kind, name, head, tail)
    }

    #[cold]
    fn new_prefix(&mut self, kind: PrefixKind, name: &str, head: &str, tail: &str) -> bool {
        let Ok(quoted) = serde_json::to_string(name) else {
            self.kind = PrefixKind::None;
            return false;
        };
        self.prefix.clear();
        self.prefix.push_str(head);
        self.prefix.push_str(&quoted);
        self.prefix.push_str(tail);
        self.kind = kind;
        self.name.clear();
        self.name.push_str(name);
        true
    }

    fn append(&mut self, position: &Position) {
        let mut n = itoa::Buffer::new();
        // Writing into a string builder cannot fail; `append_value` ends the value.
        match position {
            Position::Sequence { stream, seq }
                if self.prefix(
                    PrefixKind::Sequence,
                    stream,
                    "{\"kind\":\"sequence\",\"stream\":",
                    ",\"seq\":",
                ) =>
            {
                let _ = self.builder.write_str(&self.prefix);
                let _ = self.builder.write_str(n.format(*seq));
                self.builder.append_value("}");
            }
            Position::Kafka(k)
                if self.prefix(
                    PrefixKind::Kafka,
                    &k.topic,
                    "{\"kind\":\"kafka\",\"topic\":",
                    ",\"partition\":",
                ) =>
            {
                let _ = self.builder.write_str(&self.prefix);
                let _ = self.builder.write_str(n.format(k.partition));
                let _ = self.builder.write_str(",\"offset\":");
                let _ = self.builder.write_str(n.format(k.offset));
                self.builder.append_value("}");
            }
            Position::SqlServer(p)
                if p.snapshot.is_none()
                    && self.prefix(
                        PrefixKind::SqlServer,
                        &p.database,
                        "{\"kind\":\"sql_server\",\"database\":",
                        ",\"commit_lsn\":\"",
                    ) =>
            {
                let _ = self.builder.write_str(&self.prefix);
                let _ = self.builder.write_str(p.commit_lsn.text().as_str());
                let _ = self.builder.write_str("\",\"change_lsn\":\"");
                let _ = self.builder.write_str(p.change_lsn.text().as_str());
                let _ = self.builder.write_str("\",\"event_serial_no\":");
                let _ = self.builder.write_str(n.format(p.event_serial_no));
                let _ = self.builder.write_str(",\"total_order\":");
                let _ = self.builder.write_str(n.format(p.total_order));
                self.builder.append_value("}");
            }
            other => {
                self.scratch.clear();
                write_position(&mut self.scratch, other);
                self.builder
                    .append_value(String::from_utf8_lossy(&self.scratch));
            }
        }
    }
}

/// A SQL Server position's commit LSN, change LSN and event serial: text, text, Int64; NULL
/// for positions of other sources.
pub(crate) struct LsnColumns {
    commit_lsn: StringBuilder,
    change_lsn: StringBuilder,
    serial: Int64Builder,
    /// NULL rows not yet appended: positions of other sources come in long runs, which
    /// cost one bulk append instead of three per event.
    nulls: usize,
}

impl LsnColumns {
    pub(crate) fn new() -> Self {
        Self {
            commit_lsn: StringBuilder::with_capacity(0, 0),
            change_lsn: StringBuilder::with_capacity(0, 0),
            serial: Int64Builder::with_capacity(0),
            nulls: 0,
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
            // A snapshot row (initial, incremental or blocking) has only a commit LSN, as
            // Debezium writes it: its change LSN and serial are the reader's placeholders
            // (zero, or numbers past i64 that order it after its transaction).
            Position::SqlServer(p) if p.snapshot.is_some() => {
                self.append_nulls();
                self.commit_lsn.append_value(p.commit_lsn.text().as_str());
                self.change_lsn.append_null();
                self.serial.append_null();
            }
            Position::SqlServer(p) => {
                self.append_nulls();
                self.commit_lsn.append_value(p.commit_lsn.text().as_str());
                self.change_lsn.append_value(p.change_lsn.text().as_str());
                self.serial
                    .append_option(i64::try_from(p.event_serial_no).ok());
            }
            _ => self.nulls += 1,
        }
    }

    fn append_nulls(&mut self) {
        if self.nulls > 0 {
            self.commit_lsn.append_nulls(self.nulls);
            self.change_lsn.append_nulls(self.nulls);
            self.serial.append_nulls(self.nulls);
            self.nulls = 0;
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        self.append_nulls();
        out.push(finish_strings(&mut self.commit_lsn));
        out.push(finish_strings(&mut self.change_lsn));
        out.push(finish_primitive(&mut self.serial));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::format::meta::position::tests::positions;
    use arrow_array::cast::AsArray;

    #[test]
    fn lsn_columns_hold_the_text_form() {
        let events = cdc_core::testing::every_type_events();
        let mut meta = MetaBuilder::new(true, false);
        events.iter().for_each(|e| meta.append(e));
        let mut arrays = Vec::new();
        meta.finish(&mut arrays).unwrap();
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

    /// A snapshot row carries only its commit LSN, as Debezium writes it: before, its change
    /// LSN was the reader's zero or all-ones placeholder and a blocking or incremental row's
    /// serial (past i64) a NULL beside a real change LSN.
    #[test]
    fn snapshot_rows_have_a_commit_lsn_and_null_change_lsn_and_serial() {
        let mut event = cdc_core::testing::every_type_events()[0].clone();
        let streamed = event.clone();
        if let Position::SqlServer(p) = &mut event.source.position {
            p.change_lsn = cdc_core::Lsn::MAX;
            p.event_serial_no = u64::MAX;
            p.snapshot = Some(Box::new(
                serde_json::from_str(r#"{"table":"dbo.t","key":"[1]","blocking_row":3}"#).unwrap(),
            ));
        }
        let mut meta = MetaBuilder::new(true, false);
        meta.append(&streamed);
        meta.append(&event);
        let mut arrays = Vec::new();
        meta.finish(&mut arrays).unwrap();
        let text = |i: usize| {
            arrays[i]
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .clone()
        };
        let serial = arrays[5]
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(text(3).value(1), text(3).value(0), "the commit LSN stays");
        assert!(!arrow_array::Array::is_null(&text(4), 0));
        assert!(arrow_array::Array::is_null(&text(4), 1));
        assert!(!arrow_array::Array::is_null(serial, 0));
        assert!(arrow_array::Array::is_null(serial, 1));
    }

    /// A position of every kind, with names that need escaping.
    #[test]
    fn position_column_holds_serde_json_whichever_stream_came_before() {
        // Every ordered pair of positions, so each cached prefix is followed by every other
        // kind and name: the column must never reuse a prefix made for another stream.
        let all = positions();
        let mut column = PositionColumn::new();
        let mut expected = Vec::new();
        for a in &all {
            for b in &all {
                for p in [a, b, a] {
                    column.append(p);
                    expected.push(serde_json::to_string(p).unwrap());
                }
            }
        }
        column.append(&Position::Sequence {
            stream: "b".into(),
            seq: 7,
        });
        expected.push(r#"{"kind":"sequence","stream":"b","seq":7}"#.to_string());
        let array = column.builder.finish();
        let got: Vec<&str> = array.iter().map(|v| v.unwrap()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn lsn_columns_keep_row_order_around_runs_of_other_sources() {
        let sql_server = cdc_core::testing::every_type_events()[0].position().clone();
        let sequence = Position::Sequence {
            stream: "s".into(),
            seq: 1,
        };
        let mut lsns = LsnColumns::new();
        for p in [
            &sequence,
            &sequence,
            &sql_server,
            &sequence,
            &sql_server,
            &sequence,
        ] {
            lsns.append(p);
        }
        let mut arrays = Vec::new();
        lsns.finish(&mut arrays);
        let commit = arrays[0].as_string::<i32>();
        let serial = arrays[2].as_primitive::<arrow_array::types::Int64Type>();
        let present =
            |a: &dyn arrow_array::Array| (0..a.len()).map(|i| a.is_valid(i)).collect::<Vec<_>>();
        let pattern = vec![false, false, true, false, true, false];
        assert_eq!(present(commit), pattern);
        assert_eq!(present(&arrays[1]), pattern);
        assert_eq!(present(serial), pattern);
        assert_eq!(commit.value(2), "00000027:00000758:0005");
        // The builders start the next batch empty, trailing NULLs included.
        lsns.append(&sql_server);
        let mut next = Vec::new();
        lsns.finish(&mut next);
        assert_eq!(next[0].len(), 1);
        assert_eq!(next[0].null_count(), 0);
    }
}
