#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Kafka's own clients judge what the sink writes: every change event of the every-type table
//! goes to a real broker with the Debezium JSON codec (schemas embedded), and the Java judge
//! (tools/kafka, `Judge expect`) reads it back with Kafka's consumer (read_committed) and decodes
//! it with Kafka Connect's `JsonConverter`, comparing every column with the source rows.
//!
//! The expectation file states, per column, the Connect type and Debezium semantic type that
//! Debezium's SQL Server connector documents for the column's SQL type (`time.precision.mode`
//! adaptive, `decimal.handling.mode` precise), and the source value in the judge's canonical
//! form (see `Judge.canonical`), computed here from the `Value` alone.

mod common;

use cdc_core::testing::every_type_events;
use cdc_core::{ChangeEvent, DataType, DebeziumJson, Op, Row, Sink, TableSchema, Value};
use common::broker::{blocking, shared};
use kafka_io::{KafkaConfig, KafkaSink, TopicCreator, TopicSpec};
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// Debezium's Connect type and semantic type name for a SQL Server column type.
fn debezium_type(data_type: &DataType) -> (&'static str, Option<&'static str>) {
    use DataType as D;
    const DECIMAL: Option<&str> = Some("org.apache.kafka.connect.data.Decimal");
    match data_type {
        D::Bit => ("boolean", None),
        D::TinyInt | D::SmallInt => ("int16", None),
        D::Int => ("int32", None),
        D::BigInt => ("int64", None),
        D::Real => ("float32", None),
        D::Float => ("float64", None),
        D::Decimal { .. } | D::Money | D::SmallMoney => ("bytes", DECIMAL),
        D::Char { .. } | D::VarChar { .. } | D::NChar { .. } | D::NVarChar { .. } => {
            ("string", None)
        }
        D::Text | D::NText => ("string", None),
        // Debezium 3.6.1 writes xml and uniqueidentifier as plain strings (mssql-jdbc reports
        // them as LONGNVARCHAR and CHAR): mssql-sim/tests/debezium_compare.rs.
        D::Xml => ("string", None),
        D::Binary { .. } | D::VarBinary { .. } | D::Image | D::RowVersion | D::Opaque { .. } => {
            ("bytes", None)
        }
        D::Date => ("int32", Some("io.debezium.time.Date")),
        D::Time { precision: 0..=3 } => ("int32", Some("io.debezium.time.Time")),
        D::Time { precision: 4..=6 } => ("int64", Some("io.debezium.time.MicroTime")),
        D::Time { .. } => ("int64", Some("io.debezium.time.NanoTime")),
        D::DateTime | D::SmallDateTime | D::DateTime2 { precision: 0..=3 } => {
            ("int64", Some("io.debezium.time.Timestamp"))
        }
        D::DateTime2 { precision: 4..=6 } => ("int64", Some("io.debezium.time.MicroTimestamp")),
        D::DateTime2 { .. } => ("int64", Some("io.debezium.time.NanoTimestamp")),
        D::DateTimeOffset { .. } => ("string", Some("io.debezium.time.ZonedTimestamp")),
        D::UniqueIdentifier => ("string", None),
        other => panic!("no Debezium mapping stated for {other}: add it to the judge test"),
    }
}

/// Nanoseconds since midnight of a `HH:MM:SS.fffffffff` time.
fn nanos_of_day(text: &str) -> i128 {
    let (hms, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let seconds = hms
        .split(':')
        .fold(0i128, |acc, part| acc * 60 + part.parse::<i128>().unwrap());
    seconds * 1_000_000_000 + format!("{fraction:0<9}").parse::<i128>().unwrap()
}

/// The value in the judge's canonical form.
fn canonical(value: &Value) -> Json {
    let text = match value {
        Value::Null => return Json::Null,
        Value::Bool(b) => b.to_string(),
        Value::U8(v) => v.to_string(),
        Value::I16(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::F32(v) => (v.to_bits() as i32).to_string(),
        Value::F64(v) => (v.to_bits() as i64).to_string(),
        Value::Decimal(d) => format!("{}/{}", d.unscaled, d.scale),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Date(d) => {
            let seconds = d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
            seconds.div_euclid(86_400).to_string()
        }
        Value::Time(t) => nanos_of_day(&t.format("%H:%M:%S%.9f").to_string()).to_string(),
        Value::DateTime(dt) => {
            let utc = dt.and_utc();
            (i128::from(utc.timestamp()) * 1_000_000_000 + i128::from(utc.timestamp_subsec_nanos()))
                .to_string()
        }
        Value::DateTimeOffset(dt) => format!(
            "{}@{}",
            i128::from(dt.timestamp()) * 1_000_000_000 + i128::from(dt.timestamp_subsec_nanos()),
            dt.offset().local_minus_utc() / 60
        ),
        // A plain string as Debezium writes it: upper case, like SQL Server's text of it.
        Value::Uuid(u) => u.hyphenated().to_string().to_ascii_uppercase(),
        other => panic!("no canonical form stated for {other:?}: add it to the judge test"),
    };
    Json::String(text)
}

fn expected_row(table: &TableSchema, row: Option<&Row>) -> Json {
    let Some(row) = row else {
        return Json::Null;
    };
    let columns: serde_json::Map<String, Json> = table
        .columns
        .iter()
        .zip(row.values())
        .map(|(column, value)| {
            let (connect_type, name) = debezium_type(&column.data_type);
            (
                column.name.clone(),
                json!({"type": connect_type, "name": name, "value": canonical(value)}),
            )
        })
        .collect();
    Json::Object(columns)
}

fn expected(events: &[ChangeEvent]) -> Json {
    Json::Array(
        events
            .iter()
            .map(|e| {
                let op = match e.op {
                    Op::Create => "c",
                    Op::Update => "u",
                    Op::Delete => "d",
                    Op::Read => "r",
                    Op::Truncate => "t",
                };
                json!({
                    "op": op,
                    "before": expected_row(&e.table, e.before.as_ref()),
                    "after": expected_row(&e.table, e.after.as_ref()),
                })
            })
            .collect(),
    )
}

/// Runs `scripts/kafka.sh java io.github.cdcrs.judge.Judge ARGS...`; panics with its output
/// unless it passes.
pub fn run_judge(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(["java", "io.github.cdcrs.judge.Judge"])
        .args(args)
        .output()
        .expect("bash runs scripts/kafka.sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the judge refused ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("judge: passed"), "{stdout}");
}

/// Every column of every `DataType` on the every-type table, in each operation with typical,
/// minimum, maximum and NULL values: Kafka Connect's JsonConverter decodes each message into
/// Connect data whose types are Debezium's (Decimal as a BigDecimal of the column's scale,
/// Date, Time/MicroTime/NanoTime, Timestamp/MicroTimestamp/NanoTimestamp, ZonedTimestamp;
/// uniqueidentifier and xml as plain strings) and whose values equal the source rows; keys equal the rows' primary keys and each
/// delete's tombstone follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_converter_decodes_every_data_type_to_the_source_values() {
    let config = KafkaConfig::new(shared());
    let prefix = format!("judge{}", std::process::id());
    let events: Vec<ChangeEvent> = every_type_events()
        .into_iter()
        .map(|mut e| {
            e.source.name = prefix.as_str().into();
            e
        })
        .collect();
    let covered: std::collections::HashSet<String> = events[0]
        .table
        .columns
        .iter()
        .map(|c| c.data_type.to_string())
        .collect();
    for data_type in DataType::samples() {
        assert!(
            covered.contains(&data_type.to_string()),
            "{data_type} is not in the every-type table"
        );
    }
    let topic = format!("{prefix}.demo.dbo.every_type");
    // One partition: the judge compares the events in the order they were written. Not
    // compacted: the truncate event has no key, which a compacted topic refuses.
    TopicCreator::new(&config, TopicSpec::new(1, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();

    let file = std::env::temp_dir().join(format!("{prefix}-expected.json"));
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&expected(&events)).unwrap(),
    )
    .unwrap();
    let bootstrap = config.bootstrap_servers().to_string();
    let path = file.display().to_string();
    blocking(move || {
        run_judge(&[
            "expect",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
            "--expected",
            &path,
        ])
    })
    .await;
    let _ = std::fs::remove_file(&file);
}
