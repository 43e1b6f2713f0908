//! Table columns as typed Arrow arrays.
//!
//! | SQL Server                         | Arrow / Parquet                                   |
//! |------------------------------------|---------------------------------------------------|
//! | bit                                | Boolean                                           |
//! | tinyint, smallint                  | Int16 (tinyint is unsigned; Int16 holds 0–255 and every engine reads it) |
//! | int / bigint                       | Int32 / Int64                                     |
//! | decimal(p,s), money, smallmoney    | Decimal128(p,s) → Parquet DECIMAL                 |
//! | real / float                       | Float32 / Float64                                 |
//! | char, varchar, nchar, nvarchar, text, ntext, xml | Utf8                                |
//! | binary, varbinary, image, rowversion, geography, … | Binary                            |
//! | date                               | Date32                                            |
//! | time(p)                            | Time64(µs)                                        |
//! | datetime, smalldatetime, datetime2 | Timestamp(µs), no zone                            |
//! | datetimeoffset(p)                  | Timestamp(µs, "UTC"), the instant in UTC, plus `<col>__offset_minutes` Int16 |
//! | uniqueidentifier                   | Utf8, canonical lower-case hyphenated form        |
//!
//! Timestamps are MICROS because NANOS is unreadable by Spark, Athena and older DuckDB, and
//! because an i64 of nanoseconds cannot hold SQL Server's years 1 to 9999. The 100 ns digit
//! of `time(7)`, `datetime2(7)` and `datetimeoffset(7)` is kept in an extra Int16 column
//! `<col>__nanos` (0–999, the nanoseconds below the microsecond): value = column + nanos.

use crate::error::S3SinkError;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, GenericByteBuilder, Int16Builder, Int32Builder, Int64Builder, PrimitiveBuilder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::types::{ArrowPrimitiveType, ByteArrayType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType as ArrowType, Field, TimeUnit};
use cdc_core::codec::DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER as UNAVAILABLE;
use cdc_core::{Column, DataType, Row, TableSchema, Value};
use chrono::{DateTime, NaiveDate, Timelike};
use std::sync::Arc;

/// Suffix of the extra column holding nanoseconds below the microsecond.
pub const NANOS_SUFFIX: &str = "__nanos";
/// Suffix of the extra column holding a `datetimeoffset`'s offset in minutes.
pub const OFFSET_SUFFIX: &str = "__offset_minutes";

/// The time zone name Arrow uses for UTC-adjusted timestamps.
pub(crate) const UTC: &str = "UTC";

pub(crate) fn utc_micros() -> ArrowType {
    ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

// Finishing a builder leaves it empty with no capacity, so every batch would grow its
// buffers again from nothing, copying each value several times over. Batches of a file are
// alike in size, so each builder starts again with room for as many rows and bytes as the
// batch it just finished (a file's first batch grows; a file of few events keeps little).

/// The values built so far; the builder starts again sized for as many.
pub(crate) fn finish_primitive<T: ArrowPrimitiveType>(
    builder: &mut PrimitiveBuilder<T>,
) -> ArrayRef {
    let array = builder.finish();
    *builder =
        PrimitiveBuilder::with_capacity(array.len()).with_data_type(array.data_type().clone());
    Arc::new(array)
}

/// The strings (or byte strings) built so far; the builder starts again sized for as many
/// values and bytes.
pub(crate) fn finish_strings<T: ByteArrayType>(builder: &mut GenericByteBuilder<T>) -> ArrayRef {
    let bytes = builder.values_slice().len();
    let array = builder.finish();
    *builder = GenericByteBuilder::with_capacity(array.len(), bytes);
    Arc::new(array)
}

/// The booleans built so far; the builder starts again sized for as many.
pub(crate) fn finish_booleans(builder: &mut BooleanBuilder) -> ArrayRef {
    let array = builder.finish();
    *builder = BooleanBuilder::with_capacity(array.len());
    Arc::new(array)
}

enum Kind {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    /// The builder, the column's scale, and 10^precision: the bound every value stays
    /// below, computed once rather than per value.
    Decimal(Decimal128Builder, u8, u128),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(StringBuilder),
}

/// One table column's builders: the main array and its extra arrays.
struct ColumnBuilder {
    name: String,
    kind: Kind,
    nanos: Option<Int16Builder>,
    offset: Option<Int16Builder>,
}

/// The Arrow fields of one table column (the column, then its extras). Every field is
/// nullable: deletes, truncates and absent images produce NULLs whatever the source declared.
pub(crate) fn column_fields(column: &Column) -> Vec<Field> {
    let (data_type, nanos, offset) = arrow_type(&column.data_type);
    let mut fields = vec![Field::new(&column.name, data_type, true)];
    if nanos {
        fields.push(Field::new(
            format!("{}{NANOS_SUFFIX}", column.name),
            ArrowType::Int16,
            true,
        ));
    }
    if offset {
        fields.push(Field::new(
            format!("{}{OFFSET_SUFFIX}", column.name),
            ArrowType::Int16,
            true,
        ));
    }
    fields
}

/// The Arrow type of a SQL Server type, and whether it has a nanos and an offset column.
fn arrow_type(data_type: &DataType) -> (ArrowType, bool, bool) {
    use DataType as D;
    let seven = data_type.time_precision() == Some(7);
    let t = match data_type {
        D::Bit => ArrowType::Boolean,
        D::TinyInt | D::SmallInt => ArrowType::Int16,
        D::Int => ArrowType::Int32,
        D::BigInt => ArrowType::Int64,
        D::Real => ArrowType::Float32,
        D::Float => ArrowType::Float64,
        D::Decimal { .. } | D::Money | D::SmallMoney => {
            let (p, s) = data_type.decimal_precision_scale().unwrap_or((38, 0));
            ArrowType::Decimal128(p.clamp(1, 38), i8::try_from(s).unwrap_or(0))
        }
        D::Date => ArrowType::Date32,
        D::Time { .. } => ArrowType::Time64(TimeUnit::Microsecond),
        D::DateTime | D::SmallDateTime | D::DateTime2 { .. } => {
            ArrowType::Timestamp(TimeUnit::Microsecond, None)
        }
        D::DateTimeOffset { .. } => return (utc_micros(), seven, true),
        D::Binary { .. } | D::VarBinary { .. } | D::Image | D::RowVersion | D::Opaque { .. } => {
            ArrowType::Binary
        }
        _ => ArrowType::Utf8,
    };
    (t, seven, false)
}

impl ColumnBuilder {
    fn new(column: &Column, capacity: usize) -> Self {
        use DataType as D;
        let (arrow, nanos, offset) = arrow_type(&column.data_type);
        let kind = match (&column.data_type, &arrow) {
            (D::Bit, _) => Kind::Bool(BooleanBuilder::with_capacity(capacity)),
            (_, ArrowType::Int16) => Kind::I16(Int16Builder::with_capacity(capacity)),
            (_, ArrowType::Int32) => Kind::I32(Int32Builder::with_capacity(capacity)),
            (_, ArrowType::Int64) => Kind::I64(Int64Builder::with_capacity(capacity)),
            (_, ArrowType::Float32) => Kind::F32(Float32Builder::with_capacity(capacity)),
            (_, ArrowType::Float64) => Kind::F64(Float64Builder::with_capacity(capacity)),
            (_, ArrowType::Decimal128(p, s)) => Kind::Decimal(
                Decimal128Builder::with_capacity(capacity).with_data_type(arrow.clone()),
                u8::try_from(*s).unwrap_or(0),
                10u128.pow(u32::from(*p)),
            ),
            (_, ArrowType::Date32) => Kind::Date(Date32Builder::with_capacity(capacity)),
            (_, ArrowType::Time64(_)) => {
                Kind::Time(Time64MicrosecondBuilder::with_capacity(capacity))
            }
            (_, ArrowType::Timestamp(_, zone)) => Kind::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity)
                    .with_timezone_opt(zone.clone()),
            ),
            (_, ArrowType::Binary) => Kind::Binary(BinaryBuilder::with_capacity(capacity, 0)),
            (D::UniqueIdentifier, _) => Kind::Uuid(StringBuilder::with_capacity(capacity, 0)),
            _ => Kind::Utf8(StringBuilder::with_capacity(capacity, 0)),
        };
        Self {
            name: column.name.clone(),
            kind,
            nanos: nanos.then(|| Int16Builder::with_capacity(capacity)),
            offset: offset.then(|| Int16Builder::with_capacity(capacity)),
        }
    }

    fn append_null(&mut self) {
        match &mut self.kind {
            Kind::Bool(b) => b.append_null(),
            Kind::I16(b) => b.append_null(),
            Kind::I32(b) => b.append_null(),
            Kind::I64(b) => b.append_null(),
            Kind::F32(b) => b.append_null(),
            Kind::F64(b) => b.append_null(),
            Kind::Decimal(b, ..) => b.append_null(),
            Kind::Utf8(b) | Kind::Uuid(b) => b.append_null(),
            Kind::Binary(b) => b.append_null(),
            Kind::Date(b) => b.append_null(),
            Kind::Time(b) => b.append_null(),
            Kind::Timestamp(b) => b.append_null(),
        }
        if let Some(n) = &mut self.nanos {
            n.append_null();
        }
        if let Some(o) = &mut self.offset {
            o.append_null();
        }
    }

    /// Appends a value. The common pairs of column and value type (no extra arrays, no
    /// conversion) are matched first and return at once; the rest take
    /// [`append_general`](Self::append_general).
    #[inline]
    fn append(&mut self, value: &Value) -> Result<(), String> {
        match (&mut self.kind, value) {
            (Kind::I32(b), Value::I32(v)) => b.append_value(*v),
            (Kind::I64(b), Value::I64(v)) => b.append_value(*v),
            (Kind::Utf8(b), Value::String(s)) => b.append_value(s),
            (Kind::Decimal(b, scale, limit), Value::Decimal(d))
                if d.scale == *scale && d.unscaled.unsigned_abs() < *limit =>
            {
                b.append_value(d.unscaled)
            }
            _ => return self.append_general(value),
        }
        Ok(())
    }

    fn append_general(&mut self, value: &Value) -> Result<(), String> {
        if value.is_null() {
            self.append_null();
            return Ok(());
        }
        let mut nanos: i16 = 0;
        let mut offset: i16 = 0;
        let mismatch = || format!("value {value:?} does not fit the column's type");
        match (&mut self.kind, value) {
            (Kind::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Kind::I16(b), v) => b.append_value(
                int(v)
                    .and_then(|n| i16::try_from(n).ok())
                    .ok_or_else(mismatch)?,
            ),
            (Kind::I32(b), v) => b.append_value(
                int(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(mismatch)?,
            ),
            (Kind::I64(b), v) => b.append_value(int(v).ok_or_else(mismatch)?),
            (Kind::F32(b), Value::F32(v)) => b.append_value(*v),
            (Kind::F64(b), Value::F64(v)) => b.append_value(*v),
            (Kind::F64(b), Value::F32(v)) => b.append_value(f64::from(*v)),
            (Kind::Decimal(b, scale, limit), Value::Decimal(d)) => {
                if d.scale == *scale && d.unscaled.unsigned_abs() < *limit {
                    b.append_value(d.unscaled)
                } else {
                    b.append_value(rescale(d.unscaled, d.scale, *scale, *limit)?)
                }
            }
            (Kind::Utf8(b), Value::String(s)) => b.append_value(s),
            (Kind::Uuid(b), Value::Uuid(u)) => {
                let mut buf = uuid_buf();
                b.append_value(u.hyphenated().encode_lower(&mut buf));
            }
            (Kind::Uuid(b), Value::String(s)) => b.append_value(s),
            (Kind::Binary(b), Value::Bytes(v)) => b.append_value(v),
            // A large object the change row does not carry (unchanged in an update's before
            // image, text/ntext/image in a delete): Debezium's placeholder, its text or its
            // UTF-8 bytes, so readers can tell "unchanged" from NULL.
            (Kind::Utf8(b), Value::Unavailable) => b.append_value(UNAVAILABLE),
            (Kind::Binary(b), Value::Unavailable) => b.append_value(UNAVAILABLE.as_bytes()),
            (Kind::Date(b), Value::Date(d)) => b.append_value(days(*d).ok_or_else(mismatch)?),
            (Kind::Time(b), Value::Time(t)) => {
                let sub = t.nanosecond().min(999_999_999);
                let micros =
                    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(sub / 1000);
                nanos = i16::try_from(sub % 1000).unwrap_or(0);
                b.append_value(micros);
            }
            (Kind::Timestamp(b), Value::DateTime(t)) => {
                let at = t.and_utc();
                nanos = i16::try_from(at.timestamp_subsec_nanos() % 1000).unwrap_or(0);
                b.append_value(at.timestamp_micros());
            }
            (Kind::Timestamp(b), Value::DateTimeOffset(t)) => {
                nanos = i16::try_from(t.timestamp_subsec_nanos() % 1000).unwrap_or(0);
                offset = i16::try_from(t.offset().local_minus_utc() / 60).unwrap_or(0);
                b.append_value(t.timestamp_micros());
            }
            _ => return Err(mismatch()),
        }
        if let Some(n) = &mut self.nanos {
            n.append_value(nanos);
        }
        if let Some(o) = &mut self.offset {
            o.append_value(offset);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        let main: ArrayRef = match &mut self.kind {
            Kind::Bool(b) => finish_booleans(b),
            Kind::I16(b) => finish_primitive(b),
            Kind::I32(b) => finish_primitive(b),
            Kind::I64(b) => finish_primitive(b),
            Kind::F32(b) => finish_primitive(b),
            Kind::F64(b) => finish_primitive(b),
            Kind::Decimal(b, ..) => finish_primitive(b),
            Kind::Utf8(b) | Kind::Uuid(b) => finish_strings(b),
            Kind::Binary(b) => finish_strings(b),
            Kind::Date(b) => finish_primitive(b),
            Kind::Time(b) => finish_primitive(b),
            Kind::Timestamp(b) => finish_primitive(b),
        };
        out.push(main);
        if let Some(n) = &mut self.nanos {
            out.push(finish_primitive(n));
        }
        if let Some(o) = &mut self.offset {
            out.push(finish_primitive(o));
        }
    }
}

fn uuid_buf() -> [u8; 36] {
    [0; 36]
}

/// An integer value widened to i64.
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::U8(n) => Some(i64::from(*n)),
        Value::I16(n) => Some(i64::from(*n)),
        Value::I32(n) => Some(i64::from(*n)),
        Value::I64(n) => Some(*n),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// Days since 1970-01-01.
pub(crate) fn days(date: NaiveDate) -> Option<i32> {
    let epoch = DateTime::UNIX_EPOCH.date_naive();
    i32::try_from(date.signed_duration_since(epoch).num_days()).ok()
}

/// `unscaled × 10^-scale` as an unscaled value at the column's scale, checked against its
/// precision (`limit` = 10^precision). Never rounds: a value with more fraction digits than
/// the column is an error.
fn rescale(unscaled: i128, scale: u8, column_scale: u8, limit: u128) -> Result<i128, String> {
    let target = u32::from(column_scale);
    let have = u32::from(scale);
    let value = if have == target {
        Some(unscaled)
    } else if have < target {
        10i128
            .checked_pow(target - have)
            .and_then(|f| unscaled.checked_mul(f))
    } else {
        let f = 10i128.checked_pow(have - target);
        f.filter(|f| unscaled % f == 0).map(|f| unscaled / f)
    };
    match value {
        Some(v) if v.unsigned_abs() < limit => Ok(v),
        _ => Err(format!(
            "decimal {unscaled}e-{scale} does not fit decimal({},{column_scale}) without rounding",
            limit.ilog10()
        )),
    }
}

/// Builders for every column of a table: one row image per call.
pub(crate) struct ImageBuilder {
    table: Arc<TableSchema>,
    columns: Vec<ColumnBuilder>,
}

impl ImageBuilder {
    pub(crate) fn new(table: &Arc<TableSchema>, capacity: usize) -> Self {
        let columns = table
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c, capacity))
            .collect();
        Self {
            table: Arc::clone(table),
            columns,
        }
    }

    /// The fields, in the order [`finish`](Self::finish) returns arrays.
    pub(crate) fn fields(table: &TableSchema) -> Vec<Field> {
        table.columns.iter().flat_map(column_fields).collect()
    }

    /// Appends a row image, or NULLs for every column when there is none.
    pub(crate) fn append(&mut self, row: Option<&Row>) -> Result<(), S3SinkError> {
        let Some(row) = row else {
            self.columns.iter_mut().for_each(ColumnBuilder::append_null);
            return Ok(());
        };
        if row.values().len() != self.columns.len() {
            return Err(S3SinkError::Encode {
                table: self.table.id.clone(),
                column: None,
                reason: format!(
                    "row has {} values, the schema {} columns",
                    row.values().len(),
                    self.columns.len()
                ),
            });
        }
        for (builder, value) in self.columns.iter_mut().zip(row.values()) {
            builder
                .append(value)
                .map_err(|reason| S3SinkError::Encode {
                    table: self.table.id.clone(),
                    column: Some(builder.name.clone()),
                    reason,
                })?;
        }
        Ok(())
    }

    /// The arrays built so far; the builders start over.
    pub(crate) fn finish(&mut self) -> Vec<ArrayRef> {
        let mut out = Vec::with_capacity(self.columns.len() + 4);
        for column in &mut self.columns {
            column.finish(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use arrow_array::cast::AsArray;

    #[test]
    fn rescale_never_rounds() {
        let ten = 10u128.pow(10);
        assert_eq!(rescale(1234, 2, 4, ten), Ok(123_400));
        assert_eq!(rescale(123_400, 4, 2, ten), Ok(1234));
        assert!(rescale(123_456, 4, 2, ten).is_err());
        assert!(rescale(10i128.pow(10), 0, 0, ten).is_err());
        assert_eq!(
            rescale(-(10i128.pow(38) - 1), 0, 0, 10u128.pow(38)),
            Ok(-(10i128.pow(38) - 1))
        );
    }

    fn decimal_table() -> Arc<TableSchema> {
        Arc::new(
            TableSchema::new(
                cdc_core::TableId::new("d", "dbo", "t"),
                vec![Column::new(
                    "price",
                    DataType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                    true,
                )],
                vec![],
            )
            .unwrap(),
        )
    }

    fn decimal(unscaled: i128, scale: u8) -> Row {
        Row::new(vec![Value::Decimal(cdc_core::Decimal::new(
            unscaled, scale,
        ))])
    }

    #[test]
    fn decimals_at_the_column_scale_are_still_checked_against_its_precision() {
        let mut builder = ImageBuilder::new(&decimal_table(), 4);
        // 10 digits fit decimal(10,2); 11 do not, whether or not the scale matches.
        builder.append(Some(&decimal(9_999_999_999, 2))).unwrap();
        builder.append(Some(&decimal(-9_999_999_999, 2))).unwrap();
        assert!(builder.append(Some(&decimal(10_000_000_000, 2))).is_err());
        assert!(builder.append(Some(&decimal(-10_000_000_000, 2))).is_err());
        assert!(builder.append(Some(&decimal(10_000_000_000, 1))).is_err());
        builder.append(Some(&decimal(5, 1))).unwrap();
        let arrays = builder.finish();
        let prices = arrays[0].as_primitive::<arrow_array::types::Decimal128Type>();
        assert_eq!(
            prices.values().to_vec(),
            vec![9_999_999_999, -9_999_999_999, 50]
        );
    }

    #[test]
    fn finished_builders_start_again_with_room_for_a_batch_as_large() {
        let events = cdc_core::testing::sample_events("s", 100);
        let table = Arc::clone(&events[0].table);
        let mut builder = ImageBuilder::new(&table, 0);
        let mut meta = super::super::meta::MetaBuilder::new(true, false);
        for event in &events {
            builder.append(event.row()).unwrap();
            meta.append(event);
        }
        let first = builder.finish();
        meta.finish(&mut Vec::new()).unwrap();
        assert_eq!(first[0].len(), 100);
        // Room for 100 more rows and as many string bytes, before any is appended.
        let ColumnBuilder {
            kind: Kind::I32(ids),
            ..
        } = &builder.columns[0]
        else {
            panic!("id is an int column");
        };
        assert!(ids.capacity() >= 100, "{}", ids.capacity());
        // And the next batch is built right.
        for event in &events[..3] {
            builder.append(event.row()).unwrap();
        }
        let second = builder.finish();
        assert_eq!(second[1].as_string::<i32>().value(0), "item 1 v1");
        assert_eq!(second[0].len(), 3);
    }

    #[test]
    fn every_type_has_fields_and_accepts_its_samples() {
        let events = cdc_core::testing::every_type_events();
        let table = Arc::clone(&events[0].table);
        let mut builder = ImageBuilder::new(&table, 8);
        for event in &events {
            builder.append(event.before.as_ref()).unwrap();
            builder.append(event.after.as_ref()).unwrap();
        }
        let arrays = builder.finish();
        let fields = ImageBuilder::fields(&table);
        assert_eq!(arrays.len(), fields.len());
        for (a, f) in arrays.iter().zip(&fields) {
            assert_eq!(a.data_type(), f.data_type(), "{}", f.name());
            assert_eq!(a.len(), events.len() * 2);
        }
    }
}
