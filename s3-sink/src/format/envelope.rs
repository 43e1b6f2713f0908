//! Row builders of the Debezium envelope layout: `before` and `after` structs of the table
//! columns, a `source` struct, `op` and `ts_ms`.

use super::columns::ImageBuilder;
use super::meta::LsnColumns;
use crate::error::S3SinkError;
use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType as ArrowType, Field, Fields};
use cdc_core::{ChangeEvent, TableSchema};
use std::sync::Arc;

/// The `source` struct.
struct SourceBuilder {
    connector: StringBuilder,
    name: StringBuilder,
    ts_ms: Int64Builder,
    snapshot: StringBuilder,
    db: StringBuilder,
    schema: StringBuilder,
    table: StringBuilder,
    lsns: LsnColumns,
}

impl SourceBuilder {
    fn new() -> Self {
        Self {
            connector: StringBuilder::with_capacity(0, 0),
            name: StringBuilder::with_capacity(0, 0),
            ts_ms: Int64Builder::with_capacity(0),
            snapshot: StringBuilder::with_capacity(0, 0),
            db: StringBuilder::with_capacity(0, 0),
            schema: StringBuilder::with_capacity(0, 0),
            table: StringBuilder::with_capacity(0, 0),
            lsns: LsnColumns::new(),
        }
    }

    fn fields() -> Fields {
        let s = |n: &str| Field::new(n, ArrowType::Utf8, true);
        let mut fields = vec![
            s("connector"),
            s("name"),
            Field::new("ts_ms", ArrowType::Int64, true),
            s("snapshot"),
            s("db"),
            s("schema"),
            s("table"),
        ];
        fields.extend(LsnColumns::fields([
            "commit_lsn",
            "change_lsn",
            "event_serial_no",
        ]));
        Fields::from(fields)
    }

    fn append(&mut self, event: &ChangeEvent) {
        let source = &event.source;
        self.connector.append_value(&source.connector);
        self.name.append_value(&source.name);
        self.ts_ms
            .append_option(source.commit_time.map(|t| t.timestamp_millis()));
        self.snapshot.append_value(source.snapshot.as_str());
        self.db.append_value(&event.table.id.database);
        self.schema.append_value(&event.table.id.schema);
        self.table.append_value(&event.table.id.table);
        self.lsns.append(&source.position);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(self.connector.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.ts_ms.finish()),
            Arc::new(self.snapshot.finish()),
            Arc::new(self.db.finish()),
            Arc::new(self.schema.finish()),
            Arc::new(self.table.finish()),
        ];
        self.lsns.finish(&mut out);
        out
    }
}

/// Builders of the envelope layout.
pub(crate) struct EnvelopeBuilder {
    image_fields: Fields,
    before: ImageBuilder,
    before_valid: Vec<bool>,
    after: ImageBuilder,
    after_valid: Vec<bool>,
    source: SourceBuilder,
    op: StringBuilder,
    ts_ms: Int64Builder,
}

impl EnvelopeBuilder {
    pub(crate) fn new(table: &Arc<TableSchema>) -> Self {
        Self {
            image_fields: Fields::from(ImageBuilder::fields(table)),
            before: ImageBuilder::new(table, 0),
            before_valid: Vec::new(),
            after: ImageBuilder::new(table, 0),
            after_valid: Vec::new(),
            source: SourceBuilder::new(),
            op: StringBuilder::with_capacity(0, 0),
            ts_ms: Int64Builder::with_capacity(0),
        }
    }

    /// The layout's fields, in the order [`finish`](Self::finish) returns arrays.
    pub(crate) fn fields(table: &TableSchema) -> Vec<Field> {
        let image = Fields::from(ImageBuilder::fields(table));
        vec![
            Field::new("before", ArrowType::Struct(image.clone()), true),
            Field::new("after", ArrowType::Struct(image), true),
            Field::new("source", ArrowType::Struct(SourceBuilder::fields()), false),
            Field::new("op", ArrowType::Utf8, false),
            Field::new("ts_ms", ArrowType::Int64, true),
        ]
    }

    pub(crate) fn append(&mut self, event: &ChangeEvent) -> Result<(), S3SinkError> {
        self.before.append(event.before.as_ref())?;
        self.before_valid.push(event.before.is_some());
        self.after.append(event.after.as_ref())?;
        self.after_valid.push(event.after.is_some());
        self.source.append(event);
        self.op.append_value(event.op.code());
        self.ts_ms
            .append_option(event.source.commit_time.map(|t| t.timestamp_millis()));
        Ok(())
    }

    /// The arrays built so far; the builders start over.
    pub(crate) fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut out: Vec<ArrayRef> = Vec::with_capacity(5);
        for (image, valid) in [
            (&mut self.before, &mut self.before_valid),
            (&mut self.after, &mut self.after_valid),
        ] {
            let nulls = NullBuffer::from(std::mem::take(valid));
            let array =
                StructArray::try_new(self.image_fields.clone(), image.finish(), Some(nulls))?;
            out.push(Arc::new(array));
        }
        let source = StructArray::try_new(SourceBuilder::fields(), self.source.finish(), None)?;
        out.push(Arc::new(source));
        out.push(Arc::new(self.op.finish()));
        out.push(Arc::new(self.ts_ms.finish()));
        Ok(out)
    }
}
