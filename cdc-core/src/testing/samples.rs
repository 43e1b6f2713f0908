//! Sample tables and events, deterministic, covering every data type.

use crate::{
    ChangeEvent, Column, DataType, Decimal, Lsn, LsnPosition, Op, Position, Row, SnapshotMarker,
    SourceInfo, TableId, TableSchema, TransactionInfo, Value,
};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::sync::Arc;

/// `demo.dbo.items (id int primary key, name nvarchar(100) null, price decimal(10,2))`.
pub fn sample_table() -> Arc<TableSchema> {
    let columns = vec![
        Column::new("id", DataType::Int, false),
        Column::new("name", DataType::NVarChar { length: Some(100) }, true),
        Column::new(
            "price",
            DataType::Decimal {
                precision: 10,
                scale: 2,
            },
            false,
        ),
    ];
    Arc::new(
        TableSchema::new(
            TableId::new("demo", "dbo", "items"),
            columns,
            vec!["id".into()],
        )
        .unwrap_or_else(|e| unreachable!("the sample key is a column: {e}")),
    )
}

/// `n` events on [`sample_table`] with sequence positions 1..=n in `stream`: inserts, with an
/// update every fifth event and a delete every seventh.
pub fn sample_events(stream: &str, n: usize) -> Vec<ChangeEvent> {
    let table = sample_table();
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    (1..=n as u64)
        .map(|seq| {
            let id = i32::try_from(seq).unwrap_or(i32::MAX);
            let row = |version: i64| {
                Row::new(vec![
                    Value::I32(id),
                    Value::String(format!("item {id} v{version}")),
                    Value::Decimal(Decimal::new(i128::from(id) * 100 + i128::from(version), 2)),
                ])
            };
            let (op, before, after) = match seq {
                s if s % 7 == 0 => (Op::Delete, Some(row(1)), None),
                s if s % 5 == 0 => (Op::Update, Some(row(1)), Some(row(2))),
                _ => (Op::Create, None, Some(row(1))),
            };
            let mut source = SourceInfo::new(
                "memory",
                "demo",
                Position::Sequence {
                    stream: stream.to_string(),
                    seq,
                },
            );
            source.commit_time = Some(base + chrono::Duration::milliseconds(seq as i64 * 10));
            ChangeEvent::new(Arc::clone(&table), op, before, after, source)
        })
        .collect()
}

/// A table with one nullable column of every [`DataType::samples`] type, keyed by `id`.
pub fn every_type_table() -> Arc<TableSchema> {
    let mut columns = vec![Column::new("id", DataType::BigInt, false)];
    for (i, data_type) in DataType::samples().into_iter().enumerate() {
        columns.push(Column::new(
            format!("c{i}_{}", column_suffix(&data_type)),
            data_type,
            true,
        ));
    }
    Arc::new(
        TableSchema::new(
            TableId::new("demo", "dbo", "every_type"),
            columns,
            vec!["id".into()],
        )
        .unwrap_or_else(|e| unreachable!("the key is a column: {e}")),
    )
}

fn column_suffix(data_type: &DataType) -> String {
    data_type
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Which sample value to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extreme {
    /// An everyday value.
    Typical,
    /// The smallest value the type holds.
    Min,
    /// The largest value the type holds.
    Max,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn time(h: u32, m: u32, s: u32, nanos: u32) -> NaiveTime {
    NaiveTime::from_hms_nano_opt(h, m, s, nanos).unwrap_or_default()
}

/// `nanos` cut to `precision` fractional digits.
fn truncate(nanos: u32, precision: u8) -> u32 {
    let step = 10u32.pow(9 - u32::from(precision.min(7)));
    nanos / step * step
}

/// The largest fraction of a second with `precision` digits, in nanoseconds.
fn max_fraction(precision: u8) -> u32 {
    truncate(999_999_999, precision)
}

/// The declared length of a `(n)` type, `None` for `(max)` and unsized types.
fn declared(data_type: &DataType) -> Option<usize> {
    match data_type {
        DataType::VarChar { length }
        | DataType::NVarChar { length }
        | DataType::VarBinary { length } => length.map(|l| l as usize),
        _ => None,
    }
}

fn pick<T>(which: Extreme, typical: T, min: T, max: T) -> T {
    match which {
        Extreme::Typical => typical,
        Extreme::Min => min,
        Extreme::Max => max,
    }
}

/// A value of `data_type` that SQL Server could store.
pub fn sample_value(data_type: &DataType, which: Extreme) -> Value {
    use DataType as D;
    use Extreme::*;
    match data_type {
        D::Bit => Value::Bool(which != Min),
        D::TinyInt => Value::U8(pick(which, 42, 0, u8::MAX)),
        D::SmallInt => Value::I16(pick(which, -1234, i16::MIN, i16::MAX)),
        D::Int => Value::I32(pick(which, 123_456, i32::MIN, i32::MAX)),
        D::BigInt => Value::I64(pick(which, -9_876_543_210, i64::MIN, i64::MAX)),
        D::Real => Value::F32(pick(which, 3.25, f32::MIN, f32::MAX)),
        D::Float => Value::F64(pick(which, -2.5e-300, f64::MIN, f64::MAX)),
        D::Decimal { .. } | D::Money | D::SmallMoney => {
            let (precision, scale) = data_type.decimal_precision_scale().unwrap_or((18, 0));
            let limit = match data_type {
                D::Money => i128::from(i64::MAX),
                D::SmallMoney => i128::from(i32::MAX),
                _ => 10i128.pow(u32::from(precision)) - 1,
            };
            let min = if *data_type == D::Money {
                i128::from(i64::MIN)
            } else {
                -limit
            };
            Value::Decimal(Decimal::new(
                pick(which, 1_234_567 % limit.max(1), min, limit),
                scale,
            ))
        }
        D::Char { length } | D::NChar { length } => {
            let n = *length as usize;
            let text = if matches!(data_type, D::NChar { .. }) {
                "Zür"
            } else {
                "abc"
            };
            Value::String(pick(
                which,
                format!("{text:<n$}"),
                " ".repeat(n),
                "z".repeat(n),
            ))
        }
        D::VarChar { .. } | D::Text => {
            let longest = declared(data_type).unwrap_or(4000);
            Value::String(pick(
                which,
                "hello".into(),
                String::new(),
                "x".repeat(longest),
            ))
        }
        D::NVarChar { .. } | D::NText => Value::String(pick(
            which,
            "Grüße, 世界 🚀".into(),
            String::new(),
            "ß".repeat(declared(data_type).unwrap_or(2000)),
        )),
        D::Xml => Value::String(pick(
            which,
            "<a b=\"1\">t</a>".into(),
            "<r/>".into(),
            "<r>é</r>".into(),
        )),
        D::Binary { length } => Value::Bytes(vec![pick(which, 0xab, 0, 0xff); *length as usize]),
        D::VarBinary { .. } | D::Image | D::Opaque { .. } => Value::Bytes(pick(
            which,
            vec![0, 1, 2, 0xfe],
            Vec::new(),
            vec![0xff; declared(data_type).unwrap_or(1000)],
        )),
        D::RowVersion => Value::Bytes(pick(which, 7u64, 0, u64::MAX).to_be_bytes().to_vec()),
        D::Date => Value::Date(pick(
            which,
            date(2024, 2, 29),
            date(1, 1, 1),
            date(9999, 12, 31),
        )),
        D::Time { precision } => {
            let p = *precision;
            Value::Time(pick(
                which,
                time(13, 45, 7, truncate(123_456_789, p)),
                time(0, 0, 0, 0),
                time(23, 59, 59, max_fraction(p)),
            ))
        }
        D::DateTime => Value::DateTime(pick(
            which,
            NaiveDateTime::new(date(2024, 5, 17), time(8, 30, 0, 997_000_000)),
            NaiveDateTime::new(date(1753, 1, 1), time(0, 0, 0, 0)),
            NaiveDateTime::new(date(9999, 12, 31), time(23, 59, 59, 997_000_000)),
        )),
        D::SmallDateTime => Value::DateTime(pick(
            which,
            NaiveDateTime::new(date(2024, 5, 17), time(8, 30, 0, 0)),
            NaiveDateTime::new(date(1900, 1, 1), time(0, 0, 0, 0)),
            NaiveDateTime::new(date(2079, 6, 6), time(23, 59, 0, 0)),
        )),
        D::DateTime2 { precision } => {
            // NanoTimestamp (precision 7) is an i64 of nanoseconds: years 1678 to 2261.
            let (min_year, max_year) = if *precision == 7 {
                (1678, 2261)
            } else {
                (1, 9999)
            };
            Value::DateTime(pick(
                which,
                NaiveDateTime::new(
                    date(2024, 5, 17),
                    time(8, 30, 0, truncate(123_456_789, *precision)),
                ),
                NaiveDateTime::new(date(min_year, 1, 1), time(0, 0, 0, 0)),
                NaiveDateTime::new(
                    date(max_year, 12, 31),
                    time(23, 59, 59, max_fraction(*precision)),
                ),
            ))
        }
        D::DateTimeOffset { precision } => {
            let at = |naive: NaiveDateTime, offset_minutes: i32| -> Value {
                let offset = FixedOffset::east_opt(offset_minutes * 60)
                    .unwrap_or_else(|| unreachable!("offsets within ±14 h are valid"));
                Value::DateTimeOffset(offset.from_utc_datetime(&naive))
            };
            match which {
                Typical => at(
                    NaiveDateTime::new(
                        date(2024, 5, 17),
                        time(6, 30, 0, truncate(123_456_789, *precision)),
                    ),
                    120,
                ),
                Min => at(
                    NaiveDateTime::new(date(1, 1, 1), time(14, 0, 0, 0)),
                    -14 * 60,
                ),
                Max => at(
                    NaiveDateTime::new(
                        date(9999, 12, 31),
                        time(9, 59, 59, max_fraction(*precision)),
                    ),
                    14 * 60,
                ),
            }
        }
        D::UniqueIdentifier => Value::Uuid(uuid::Uuid::from_u128(pick(
            which,
            0x6f9619ff_8b86_d011_b42d_00c04fc964ff,
            0,
            u128::MAX,
        ))),
    }
}

/// Events on [`every_type_table`]: one of each operation, with typical, minimum, maximum and
/// NULL values, at SQL Server positions with transaction metadata.
pub fn every_type_events() -> Vec<ChangeEvent> {
    let table = every_type_table();
    let row = |id: i64, which: Option<Extreme>| {
        let mut values = vec![Value::I64(id)];
        values.extend(table.columns[1..].iter().map(|c| match which {
            Some(w) => sample_value(&c.data_type, w),
            None => Value::Null,
        }));
        Row::new(values)
    };
    let commit = DateTime::from_timestamp_nanos(1_767_225_600_123_456_789);
    let shapes: Vec<(Op, Option<Row>, Option<Row>, SnapshotMarker)> = vec![
        (
            Op::Read,
            None,
            Some(row(1, Some(Extreme::Typical))),
            SnapshotMarker::Last,
        ),
        (
            Op::Create,
            None,
            Some(row(2, Some(Extreme::Min))),
            SnapshotMarker::False,
        ),
        (
            Op::Create,
            None,
            Some(row(3, Some(Extreme::Max))),
            SnapshotMarker::False,
        ),
        (Op::Create, None, Some(row(4, None)), SnapshotMarker::False),
        (
            Op::Update,
            Some(row(2, Some(Extreme::Min))),
            Some(row(2, Some(Extreme::Typical))),
            SnapshotMarker::False,
        ),
        (
            Op::Delete,
            Some(row(3, Some(Extreme::Max))),
            None,
            SnapshotMarker::False,
        ),
        (Op::Truncate, None, None, SnapshotMarker::False),
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, (op, before, after, snapshot))| {
            let serial = i as u64 + 1;
            let commit_lsn = Lsn::from_parts(0x27, 0x758, 5);
            let mut source = SourceInfo::new(
                "sqlserver",
                "erp",
                Position::SqlServer(LsnPosition {
                    database: "demo".into(),
                    commit_lsn,
                    change_lsn: Lsn::from_parts(0x27, 0x750, u16::try_from(serial).unwrap_or(0)),
                    // Debezium's: each sample has a change LSN of its own, where an
                    // update reads two rows.
                    event_serial_no: if op == Op::Update { 2 } else { 1 },
                    total_order: serial,
                    snapshot: None,
                }),
            );
            source.commit_time = Some(commit);
            source.snapshot = snapshot;
            source.transaction = Some(TransactionInfo {
                id: commit_lsn.to_string().into(),
                total_order: serial,
                data_collection_order: serial,
            });
            ChangeEvent::new(Arc::clone(&table), op, before, after, source)
        })
        .collect()
}
