//! proptest strategies for values and events of every type.

use crate::{
    ChangeEvent, Column, DataType, Decimal, Lsn, LsnPosition, Op, Position, Row, SourceInfo,
    TableId, TableSchema, TransactionInfo, Value,
};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use proptest::prelude::*;
use std::sync::Arc;

fn fraction(precision: u8) -> impl Strategy<Value = u32> {
    let step = 10u32.pow(9 - u32::from(precision.min(7)));
    (0..1_000_000_000 / step).prop_map(move |n| n * step)
}

fn date(min_year: i32, max_year: i32) -> impl Strategy<Value = NaiveDate> {
    (min_year..=max_year, 1u32..=366).prop_map(|(y, d)| {
        NaiveDate::from_yo_opt(y, d)
            .or_else(|| NaiveDate::from_yo_opt(y, 365))
            .unwrap_or_default()
    })
}

fn time(precision: u8) -> impl Strategy<Value = NaiveTime> {
    (0u32..86_400, fraction(precision))
        .prop_map(|(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n).unwrap_or_default())
}

fn date_time(min_year: i32, max_year: i32, precision: u8) -> impl Strategy<Value = NaiveDateTime> {
    (date(min_year, max_year), time(precision)).prop_map(|(d, t)| NaiveDateTime::new(d, t))
}

fn decimal(precision: u8, scale: u8) -> impl Strategy<Value = Decimal> {
    let limit = 10i128.pow(u32::from(precision)) - 1;
    (-limit..=limit).prop_map(move |n| Decimal::new(n, scale))
}

/// Values a column of `data_type` can hold, SQL `NULL` included.
pub fn value(data_type: &DataType) -> BoxedStrategy<Value> {
    use DataType as D;
    let some = match data_type.clone() {
        D::Bit => any::<bool>().prop_map(Value::Bool).boxed(),
        D::TinyInt => any::<u8>().prop_map(Value::U8).boxed(),
        D::SmallInt => any::<i16>().prop_map(Value::I16).boxed(),
        D::Int => any::<i32>().prop_map(Value::I32).boxed(),
        D::BigInt => any::<i64>().prop_map(Value::I64).boxed(),
        D::Real => proptest::num::f32::NORMAL.prop_map(Value::F32).boxed(),
        D::Float => proptest::num::f64::NORMAL.prop_map(Value::F64).boxed(),
        D::Decimal { precision, scale } => {
            decimal(precision, scale).prop_map(Value::Decimal).boxed()
        }
        D::Money => any::<i64>()
            .prop_map(|n| Value::Decimal(Decimal::new(n.into(), 4)))
            .boxed(),
        D::SmallMoney => any::<i32>()
            .prop_map(|n| Value::Decimal(Decimal::new(n.into(), 4)))
            .boxed(),
        D::Char { .. } | D::VarChar { .. } | D::Text => {
            "[ -~]{0,40}".prop_map(Value::String).boxed()
        }
        D::NChar { .. } | D::NVarChar { .. } | D::NText | D::Xml => {
            any::<String>().prop_map(Value::String).boxed()
        }
        D::Binary { .. } | D::VarBinary { .. } | D::Image | D::RowVersion | D::Opaque { .. } => {
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(Value::Bytes)
                .boxed()
        }
        D::Date => date(1, 9999).prop_map(Value::Date).boxed(),
        D::Time { precision } => time(precision).prop_map(Value::Time).boxed(),
        D::DateTime => date_time(1753, 9999, 3).prop_map(Value::DateTime).boxed(),
        D::SmallDateTime => (date(1900, 2078), 0u32..1440)
            .prop_map(|(d, m)| {
                let t =
                    NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0).unwrap_or_default();
                Value::DateTime(NaiveDateTime::new(d, t))
            })
            .boxed(),
        // NanoTimestamp is an i64 of nanoseconds since 1970: years 1678 to 2261.
        D::DateTime2 { precision: 7 } => date_time(1678, 2261, 7).prop_map(Value::DateTime).boxed(),
        D::DateTime2 { precision } => date_time(1, 9999, precision)
            .prop_map(Value::DateTime)
            .boxed(),
        D::DateTimeOffset { precision } => (date_time(2, 9998, precision), -840i32..=840)
            .prop_map(|(utc, minutes)| {
                let offset = FixedOffset::east_opt(minutes * 60)
                    .unwrap_or_else(|| unreachable!("±14 h is a valid offset"));
                let at: DateTime<FixedOffset> = offset.from_utc_datetime(&utc);
                Value::DateTimeOffset(at)
            })
            .boxed(),
        D::UniqueIdentifier => any::<u128>()
            .prop_map(|n| Value::Uuid(uuid::Uuid::from_u128(n)))
            .boxed(),
    };
    prop_oneof![1 => Just(Value::Null), 6 => some].boxed()
}

/// A table of 1 to 6 columns of arbitrary types, keyed by a leading `bigint id`.
pub fn table() -> impl Strategy<Value = Arc<TableSchema>> {
    proptest::collection::vec(proptest::sample::select(DataType::samples()), 1..6).prop_map(
        |types| {
            let mut columns = vec![Column::new("id", DataType::BigInt, false)];
            columns.extend(
                types
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| Column::new(format!("c{i}"), t, true)),
            );
            Arc::new(
                TableSchema::new(TableId::new("db", "dbo", "t"), columns, vec!["id".into()])
                    .unwrap_or_else(|e| unreachable!("id is a column: {e}")),
            )
        },
    )
}

fn row(table: &TableSchema) -> BoxedStrategy<Row> {
    let values: Vec<BoxedStrategy<Value>> = table
        .columns
        .iter()
        .map(|c| {
            if c.nullable {
                value(&c.data_type)
            } else {
                any::<i64>().prop_map(Value::I64).boxed()
            }
        })
        .collect();
    values.prop_map(Row::new).boxed()
}

/// An arbitrary event on an arbitrary table, at a SQL Server position.
pub fn event() -> impl Strategy<Value = ChangeEvent> {
    table()
        .prop_flat_map(|table| {
            let op = prop_oneof![
                Just(Op::Create),
                Just(Op::Update),
                Just(Op::Delete),
                Just(Op::Read)
            ];
            (
                Just(table.clone()),
                op,
                row(&table),
                row(&table),
                any::<[u8; 10]>(),
                1u64..1000,
                any::<i64>(),
                any::<bool>(),
            )
        })
        .prop_map(|(table, op, a, b, lsn, serial, nanos, in_snapshot)| {
            let (before, after) = match op {
                Op::Create | Op::Read => (None, Some(a)),
                Op::Update => (Some(a), Some(b)),
                _ => (Some(a), None),
            };
            let commit_lsn = Lsn::new(lsn);
            let mut source = SourceInfo::new(
                "sqlserver",
                "prop",
                Position::SqlServer(LsnPosition {
                    database: table.id.database.as_str().into(),
                    commit_lsn,
                    change_lsn: commit_lsn.decrement(),
                    event_serial_no: serial,
                    total_order: serial,
                    snapshot: in_snapshot.then(|| {
                        Box::new(crate::SnapshotCursor {
                            table: "dbo.t".into(),
                            key: format!("[{serial}]"),
                            blocking_row: 0,
                        })
                    }),
                }),
            );
            source.commit_time = Some(DateTime::from_timestamp_nanos(nanos));
            source.transaction = Some(TransactionInfo {
                id: commit_lsn.to_string().into(),
                total_order: serial,
                data_collection_order: serial,
            });
            ChangeEvent::new(table, op, before, after, source)
        })
}
