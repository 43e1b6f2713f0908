//! Debezium's value handling modes (`time.precision.mode`, `decimal.handling.mode`,
//! `binary.handling.mode`, `unavailable.value.placeholder`): the exact JSON each writes, its
//! Connect schema, and values at the ends of SQL Server's ranges in every mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::codec::{BinaryHandlingMode, DecimalHandlingMode, TimePrecisionMode};
use cdc_core::testing::{Extreme, sample_value};
use cdc_core::{
    ChangeEvent, Column, DataType, DebeziumJson, Decimal, EventCodec, Op, Position, Row,
    SourceInfo, TableId, TableSchema, Value,
};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Value as Json, json};
use std::sync::Arc;

const TIME_MODES: [TimePrecisionMode; 3] = [
    TimePrecisionMode::Adaptive,
    TimePrecisionMode::AdaptiveTimeMicroseconds,
    TimePrecisionMode::Connect,
];
const DECIMAL_MODES: [DecimalHandlingMode; 3] = [
    DecimalHandlingMode::Precise,
    DecimalHandlingMode::Double,
    DecimalHandlingMode::String,
];
const BINARY_MODES: [BinaryHandlingMode; 4] = [
    BinaryHandlingMode::Bytes,
    BinaryHandlingMode::Base64,
    BinaryHandlingMode::Base64UrlSafe,
    BinaryHandlingMode::Hex,
];

/// A table `db.dbo.t` with an int key `id` and the given value columns.
fn table(columns: &[(&str, DataType)]) -> Arc<TableSchema> {
    let mut all = vec![Column::new("id", DataType::Int, false)];
    all.extend(
        columns
            .iter()
            .map(|(name, dt)| Column::new(*name, dt.clone(), true)),
    );
    Arc::new(TableSchema::new(TableId::new("db", "dbo", "t"), all, vec!["id".into()]).unwrap())
}

fn event(table: &Arc<TableSchema>, before: Option<Vec<Value>>, after: Vec<Value>) -> ChangeEvent {
    let row = |values: Vec<Value>| {
        let mut all = vec![Value::I32(1)];
        all.extend(values);
        Row::new(all)
    };
    let op = if before.is_some() {
        Op::Update
    } else {
        Op::Create
    };
    ChangeEvent::new(
        Arc::clone(table),
        op,
        before.map(row),
        Some(row(after)),
        SourceInfo::new(
            "sqlserver",
            "srv",
            Position::Sequence {
                stream: "s".into(),
                seq: 1,
            },
        ),
    )
}

fn codec(
    schemas: bool,
    time: TimePrecisionMode,
    decimal: DecimalHandlingMode,
    binary: BinaryHandlingMode,
) -> DebeziumJson {
    DebeziumJson::builder()
        .lossless(true)
        .schemas(schemas)
        .time_precision_mode(time)
        .decimal_handling_mode(decimal)
        .binary_handling_mode(binary)
        .build()
}

fn with_time(time: TimePrecisionMode) -> DebeziumJson {
    codec(
        true,
        time,
        DecimalHandlingMode::Precise,
        BinaryHandlingMode::Bytes,
    )
}

fn with_decimal(decimal: DecimalHandlingMode) -> DebeziumJson {
    codec(
        true,
        TimePrecisionMode::Adaptive,
        decimal,
        BinaryHandlingMode::Bytes,
    )
}

fn with_binary(binary: BinaryHandlingMode) -> DebeziumJson {
    codec(
        true,
        TimePrecisionMode::Adaptive,
        DecimalHandlingMode::Precise,
        binary,
    )
}

/// The encoded value document of `event`.
fn value_of(codec: &DebeziumJson, event: &ChangeEvent) -> Json {
    serde_json::from_slice(&codec.encode(event).unwrap().value.unwrap()).unwrap()
}

/// The `after` field schema of `column` in a schema-form document.
fn field_schema(doc: &Json, column: &str) -> Json {
    let after = doc["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == column)
        .unwrap()
        .clone()
}

fn roundtrip(codec: &DebeziumJson, event: &ChangeEvent) -> ChangeEvent {
    let record = codec.encode(event).unwrap();
    codec.decode(&record).unwrap().unwrap()
}

fn after(event: &ChangeEvent) -> &[Value] {
    event.after.as_ref().unwrap().values()
}

fn at(date: (i32, u32, u32), time: (u32, u32, u32, u32)) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(date.0, date.1, date.2)
        .unwrap()
        .and_time(NaiveTime::from_hms_nano_opt(time.0, time.1, time.2, time.3).unwrap())
}

fn offset(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

#[test]
fn datetime2_7_at_both_ends_of_sql_servers_range_encodes_in_every_time_mode() {
    let t = table(&[
        ("d2", DataType::DateTime2 { precision: 7 }),
        ("t7", DataType::Time { precision: 7 }),
        ("dto", DataType::DateTimeOffset { precision: 7 }),
        ("d", DataType::Date),
    ]);
    let last = at((9999, 12, 31), (23, 59, 59, 999_999_900));
    let first = at((1, 1, 1), (0, 0, 0, 0));
    let latest = event(
        &t,
        None,
        vec![
            Value::DateTime(last),
            Value::Time(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_900).unwrap()),
            Value::DateTimeOffset(offset("9999-12-31T23:59:59.9999999+14:00")),
            Value::Date(last.date()),
        ],
    );
    let earliest = event(
        &t,
        None,
        vec![
            Value::DateTime(first),
            Value::Time(NaiveTime::MIN),
            Value::DateTimeOffset(offset("0001-01-01T00:00:00-14:00")),
            Value::Date(first.date()),
        ],
    );
    // (mode, datetime2(7) last, first, time(7) last, date last)
    let expected = [
        (
            TimePrecisionMode::Adaptive,
            "253402300799999999900",
            "-62135596800000000000",
            "86399999999900",
        ),
        (
            TimePrecisionMode::AdaptiveTimeMicroseconds,
            "253402300799999999900",
            "-62135596800000000000",
            "86399999999",
        ),
        (
            TimePrecisionMode::Connect,
            "253402300799999",
            "-62135596800000",
            "86399999",
        ),
    ];
    for (mode, d2_last, d2_first, t7_last) in expected {
        for schemas in [true, false] {
            let c = codec(
                schemas,
                mode,
                DecimalHandlingMode::Precise,
                BinaryHandlingMode::Bytes,
            );
            let text = String::from_utf8(c.encode(&latest).unwrap().value.unwrap()).unwrap();
            assert!(
                text.contains(&format!("\"d2\":{d2_last},")),
                "{mode}: {text}"
            );
            assert!(
                text.contains(&format!("\"t7\":{t7_last},")),
                "{mode}: {text}"
            );
            assert!(
                text.contains("\"dto\":\"9999-12-31T23:59:59.9999999+14:00\""),
                "{mode}: {text}"
            );
            assert!(text.contains("\"d\":2932896}"), "{mode}: {text}");
            let text = String::from_utf8(c.encode(&earliest).unwrap().value.unwrap()).unwrap();
            assert!(
                text.contains(&format!("\"d2\":{d2_first},")),
                "{mode}: {text}"
            );
            assert!(text.contains("\"t7\":0,"), "{mode}: {text}");
            assert!(
                text.contains("\"dto\":\"0001-01-01T00:00:00-14:00\""),
                "{mode}: {text}"
            );
            assert!(text.contains("\"d\":-719162}"), "{mode}: {text}");

            if !schemas {
                c.register(Arc::clone(&t));
            }
            let back = roundtrip(&c, &latest);
            match mode {
                TimePrecisionMode::Adaptive => assert_eq!(back, latest),
                TimePrecisionMode::AdaptiveTimeMicroseconds => {
                    assert_eq!(after(&back)[1], Value::DateTime(last));
                    assert_eq!(
                        after(&back)[2],
                        Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap())
                    );
                }
                _ => {
                    assert_eq!(
                        after(&back)[1],
                        Value::DateTime(at((9999, 12, 31), (23, 59, 59, 999_000_000)))
                    );
                    assert_eq!(
                        after(&back)[2],
                        Value::Time(NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap())
                    );
                }
            }
            assert_eq!(after(&roundtrip(&c, &earliest))[1], Value::DateTime(first));
            assert_eq!(after(&back)[3], after(&latest)[3]);
            assert_eq!(after(&back)[4], after(&latest)[4]);
        }
    }
}

#[test]
fn time_precision_mode_names_the_connect_logical_types() {
    let t = table(&[
        ("d", DataType::Date),
        ("t3", DataType::Time { precision: 3 }),
        ("t7", DataType::Time { precision: 7 }),
        ("dt", DataType::DateTime),
        ("d2_3", DataType::DateTime2 { precision: 3 }),
        ("d2_6", DataType::DateTime2 { precision: 6 }),
        ("d2_7", DataType::DateTime2 { precision: 7 }),
        ("dto", DataType::DateTimeOffset { precision: 3 }),
    ]);
    let e = event(
        &t,
        None,
        vec![
            Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
            Value::Time(NaiveTime::from_hms_milli_opt(1, 2, 3, 456).unwrap()),
            Value::Time(NaiveTime::from_hms_nano_opt(1, 2, 3, 456_789_100).unwrap()),
            Value::DateTime(at((2024, 5, 17), (8, 30, 0, 997_000_000))),
            Value::DateTime(at((2024, 5, 17), (8, 30, 0, 123_000_000))),
            Value::DateTime(at((2024, 5, 17), (8, 30, 0, 123_456_000))),
            Value::DateTime(at((2024, 5, 17), (8, 30, 0, 123_456_700))),
            Value::DateTimeOffset(offset("2024-05-17T08:30:00.123+02:00")),
        ],
    );
    // (column, adaptive, adaptive_time_microseconds, connect): (type, name, value)
    let table = [
        (
            "d",
            ("int32", "io.debezium.time.Date", json!(19782)),
            ("int32", "io.debezium.time.Date", json!(19782)),
            ("int32", "org.apache.kafka.connect.data.Date", json!(19782)),
        ),
        (
            "t3",
            ("int32", "io.debezium.time.Time", json!(3_723_456)),
            (
                "int64",
                "io.debezium.time.MicroTime",
                json!(3_723_456_000_i64),
            ),
            (
                "int32",
                "org.apache.kafka.connect.data.Time",
                json!(3_723_456),
            ),
        ),
        (
            "t7",
            (
                "int64",
                "io.debezium.time.NanoTime",
                json!(3_723_456_789_100_i64),
            ),
            (
                "int64",
                "io.debezium.time.MicroTime",
                json!(3_723_456_789_i64),
            ),
            (
                "int32",
                "org.apache.kafka.connect.data.Time",
                json!(3_723_456),
            ),
        ),
        (
            "dt",
            (
                "int64",
                "io.debezium.time.Timestamp",
                json!(1_715_934_600_997_i64),
            ),
            (
                "int64",
                "io.debezium.time.Timestamp",
                json!(1_715_934_600_997_i64),
            ),
            (
                "int64",
                "org.apache.kafka.connect.data.Timestamp",
                json!(1_715_934_600_997_i64),
            ),
        ),
        (
            "d2_3",
            (
                "int64",
                "io.debezium.time.Timestamp",
                json!(1_715_934_600_123_i64),
            ),
            (
                "int64",
                "io.debezium.time.Timestamp",
                json!(1_715_934_600_123_i64),
            ),
            (
                "int64",
                "org.apache.kafka.connect.data.Timestamp",
                json!(1_715_934_600_123_i64),
            ),
        ),
        (
            "d2_6",
            (
                "int64",
                "io.debezium.time.MicroTimestamp",
                json!(1_715_934_600_123_456_i64),
            ),
            (
                "int64",
                "io.debezium.time.MicroTimestamp",
                json!(1_715_934_600_123_456_i64),
            ),
            (
                "int64",
                "org.apache.kafka.connect.data.Timestamp",
                json!(1_715_934_600_123_i64),
            ),
        ),
        (
            "d2_7",
            (
                "int64",
                "io.debezium.time.NanoTimestamp",
                json!(1_715_934_600_123_456_700_i64),
            ),
            (
                "int64",
                "io.debezium.time.NanoTimestamp",
                json!(1_715_934_600_123_456_700_i64),
            ),
            (
                "int64",
                "org.apache.kafka.connect.data.Timestamp",
                json!(1_715_934_600_123_i64),
            ),
        ),
        (
            "dto",
            (
                "string",
                "io.debezium.time.ZonedTimestamp",
                json!("2024-05-17T08:30:00.123+02:00"),
            ),
            (
                "string",
                "io.debezium.time.ZonedTimestamp",
                json!("2024-05-17T08:30:00.123+02:00"),
            ),
            (
                "string",
                "io.debezium.time.ZonedTimestamp",
                json!("2024-05-17T08:30:00.123+02:00"),
            ),
        ),
    ];
    for (column, adaptive, micro, connect) in table {
        for (mode, (ty, name, value)) in [
            (TimePrecisionMode::Adaptive, adaptive),
            (TimePrecisionMode::AdaptiveTimeMicroseconds, micro),
            (TimePrecisionMode::Connect, connect),
        ] {
            let doc = value_of(&with_time(mode), &e);
            let schema = field_schema(&doc, column);
            assert_eq!(schema["type"], ty, "{mode} {column}: {schema}");
            assert_eq!(schema["name"], name, "{mode} {column}: {schema}");
            assert_eq!(schema["version"], 1, "{mode} {column}: {schema}");
            assert_eq!(doc["payload"]["after"][column], value, "{mode} {column}");
        }
    }
}

#[test]
fn decimal_handling_mode_writes_precise_double_or_string() {
    let t = table(&[
        (
            "price",
            DataType::Decimal {
                precision: 4,
                scale: 2,
            },
        ),
        ("cash", DataType::Money),
        (
            "big",
            DataType::Decimal {
                precision: 38,
                scale: 0,
            },
        ),
    ]);
    let big = 10i128.pow(38) - 1;
    let e = event(
        &t,
        None,
        vec![
            Value::Decimal(Decimal::new(1234, 2)),
            Value::Decimal(Decimal::new(-123_400, 4)),
            Value::Decimal(Decimal::new(big, 0)),
        ],
    );
    let precise = value_of(&with_decimal(DecimalHandlingMode::Precise), &e);
    assert_eq!(precise["payload"]["after"]["price"], json!("BNI="));
    assert_eq!(precise["payload"]["after"]["cash"], json!("/h34"));
    let schema = field_schema(&precise, "price");
    assert_eq!(schema["type"], "bytes");
    assert_eq!(schema["name"], "org.apache.kafka.connect.data.Decimal");
    assert_eq!(schema["parameters"]["scale"], "2");
    assert_eq!(schema["parameters"]["connect.decimal.precision"], "4");

    let double = value_of(&with_decimal(DecimalHandlingMode::Double), &e);
    assert_eq!(double["payload"]["after"]["price"], json!(12.34));
    assert_eq!(double["payload"]["after"]["cash"], json!(-12.34));
    assert_eq!(double["payload"]["after"]["big"], json!(1e38));
    let schema = field_schema(&double, "price");
    assert_eq!(schema["type"], "double");
    assert_eq!(schema.get("name"), None, "{schema}");
    assert_eq!(schema["parameters"].get("scale"), None, "{schema}");

    let string = value_of(&with_decimal(DecimalHandlingMode::String), &e);
    assert_eq!(string["payload"]["after"]["price"], json!("12.34"));
    assert_eq!(string["payload"]["after"]["cash"], json!("-12.3400"));
    assert_eq!(
        string["payload"]["after"]["big"],
        json!("99999999999999999999999999999999999999")
    );
    let schema = field_schema(&string, "price");
    assert_eq!(schema["type"], "string");
    assert_eq!(schema.get("name"), None, "{schema}");

    // string is exact; double keeps what a double holds, at the column's scale.
    let c = with_decimal(DecimalHandlingMode::String);
    assert_eq!(roundtrip(&c, &e), e);
    let back = roundtrip(&with_decimal(DecimalHandlingMode::Double), &e);
    assert_eq!(after(&back)[1], Value::Decimal(Decimal::new(1234, 2)));
    assert_eq!(after(&back)[2], Value::Decimal(Decimal::new(-123_400, 4)));
    assert_eq!(
        after(&back)[3],
        Value::Decimal(Decimal::new(10i128.pow(38), 0))
    );
}

#[test]
fn binary_handling_mode_writes_bytes_base64_url_safe_or_hex() {
    let t = table(&[("blob", DataType::VarBinary { length: None })]);
    let e = event(&t, None, vec![Value::Bytes(vec![0xfb, 0xff, 0x00])]);
    for (mode, ty, text) in [
        (BinaryHandlingMode::Bytes, "bytes", "+/8A"),
        (BinaryHandlingMode::Base64, "string", "+/8A"),
        (BinaryHandlingMode::Base64UrlSafe, "string", "-_8A"),
        (BinaryHandlingMode::Hex, "string", "fbff00"),
    ] {
        let c = with_binary(mode);
        let doc = value_of(&c, &e);
        assert_eq!(doc["payload"]["after"]["blob"], json!(text), "{mode}");
        assert_eq!(field_schema(&doc, "blob")["type"], ty, "{mode}");
        assert_eq!(roundtrip(&c, &e), e, "{mode}");
        let schemaless = codec(
            false,
            TimePrecisionMode::Adaptive,
            DecimalHandlingMode::Precise,
            mode,
        );
        schemaless.register(Arc::clone(&t));
        assert_eq!(roundtrip(&schemaless, &e), e, "{mode} schemaless");
    }
}

#[test]
fn schema_form_decodes_by_the_writers_modes_whatever_the_readers() {
    let t = table(&[
        (
            "price",
            DataType::Decimal {
                precision: 4,
                scale: 2,
            },
        ),
        ("blob", DataType::Binary { length: 2 }),
        ("t7", DataType::Time { precision: 7 }),
    ]);
    let e = event(
        &t,
        None,
        vec![
            Value::Decimal(Decimal::new(1234, 2)),
            Value::Bytes(vec![0xab, 0xcd]),
            Value::Time(NaiveTime::from_hms_micro_opt(1, 2, 3, 456_789).unwrap()),
        ],
    );
    let reader = DebeziumJson::with_schema();
    for binary in [BinaryHandlingMode::Hex, BinaryHandlingMode::Base64UrlSafe] {
        let writer = codec(
            true,
            TimePrecisionMode::AdaptiveTimeMicroseconds,
            DecimalHandlingMode::String,
            binary,
        );
        let back = reader.decode(&writer.encode(&e).unwrap()).unwrap().unwrap();
        assert_eq!(back, e, "{binary}");
    }
}

#[test]
fn unavailable_large_object_is_debeziums_placeholder() {
    let t = table(&[
        ("body", DataType::NVarChar { length: None }),
        ("doc", DataType::VarBinary { length: None }),
    ]);
    let e = event(
        &t,
        Some(vec![Value::Unavailable, Value::Unavailable]),
        vec![Value::String("new".into()), Value::Bytes(vec![1])],
    );
    let c = DebeziumJson::with_schema();
    let doc = value_of(&c, &e);
    assert_eq!(
        doc["payload"]["before"]["body"],
        json!("__debezium_unavailable_value")
    );
    // The placeholder's bytes, base64 as Connect bytes are.
    assert_eq!(
        doc["payload"]["before"]["doc"],
        json!("X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==")
    );
    assert_eq!(roundtrip(&c, &e), e);

    let custom = DebeziumJson::builder()
        .lossless(true)
        .schemas(true)
        .binary_handling_mode(BinaryHandlingMode::Hex)
        .unavailable_value_placeholder("??")
        .build();
    let doc = value_of(&custom, &e);
    assert_eq!(doc["payload"]["before"]["body"], json!("??"));
    assert_eq!(doc["payload"]["before"]["doc"], json!("3f3f"));
    assert_eq!(roundtrip(&custom, &e), e);
}

#[test]
fn unavailable_value_in_a_column_that_cannot_be_unavailable_is_a_typed_error() {
    let t = table(&[("n", DataType::Int)]);
    let e = event(&t, Some(vec![Value::Unavailable]), vec![Value::I32(2)]);
    let err = DebeziumJson::with_schema().encode(&e).unwrap_err();
    assert!(
        matches!(&err, cdc_core::Error::Encode { column: Some(c), .. } if c == "n"),
        "{err}"
    );
}

#[test]
fn every_sample_value_encodes_in_every_combination_of_modes() {
    let types = DataType::samples();
    let columns: Vec<(String, DataType)> = types
        .iter()
        .enumerate()
        .map(|(i, dt)| (format!("c{i}"), dt.clone()))
        .collect();
    let named: Vec<(&str, DataType)> = columns
        .iter()
        .map(|(n, dt)| (n.as_str(), dt.clone()))
        .collect();
    let t = table(&named);
    let mut combinations = 0;
    for extreme in [Extreme::Typical, Extreme::Min, Extreme::Max] {
        let values: Vec<Value> = types.iter().map(|dt| sample_value(dt, extreme)).collect();
        let e = event(&t, None, values);
        for time in TIME_MODES {
            for decimal in DECIMAL_MODES {
                for binary in BINARY_MODES {
                    for schemas in [true, false] {
                        let c = codec(schemas, time, decimal, binary);
                        c.register(Arc::clone(&t));
                        let record = c.encode(&e).unwrap_or_else(|err| {
                            panic!("{extreme:?} {time} {decimal} {binary}: {err}")
                        });
                        let back = c.decode(&record).unwrap_or_else(|err| {
                            panic!("{extreme:?} {time} {decimal} {binary}: {err}")
                        });
                        let lossless = time == TimePrecisionMode::Adaptive
                            && decimal != DecimalHandlingMode::Double;
                        if lossless {
                            assert_eq!(back.as_ref(), Some(&e), "{extreme:?} {decimal} {binary}");
                        }
                        combinations += 1;
                    }
                }
            }
        }
    }
    assert_eq!(combinations, 3 * 3 * 3 * 4 * 2);
}

proptest::proptest! {
    /// Any `datetime2(7)` SQL Server can hold (years 1 to 9999, 100 ns steps) and any
    /// `time(7)` round-trip exactly in the adaptive modes, in both forms.
    #[test]
    fn any_datetime2_7_round_trips_exactly(
        days in 0i64..3_652_059,
        ticks in 0i64..864_000_000_000,
    ) {
        let t = table(&[
            ("d2", DataType::DateTime2 { precision: 7 }),
            ("t7", DataType::Time { precision: 7 }),
        ]);
        let date = NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::Duration::days(days);
        let time = NaiveTime::MIN + chrono::Duration::nanoseconds(ticks * 100);
        let e = event(
            &t,
            None,
            vec![Value::DateTime(date.and_time(time)), Value::Time(time)],
        );
        for schemas in [true, false] {
            let c = codec(
                schemas,
                TimePrecisionMode::Adaptive,
                DecimalHandlingMode::Precise,
                BinaryHandlingMode::Bytes,
            );
            c.register(Arc::clone(&t));
            proptest::prop_assert_eq!(roundtrip(&c, &e), e.clone());
        }
    }
}
