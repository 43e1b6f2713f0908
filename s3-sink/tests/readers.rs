//! Independent readers (DuckDB and pyarrow) read every file the sink writes, locally and on
//! moto's S3, in both formats and both layouts, with the right column types and row counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::{every_type_events, sample_events};
use cdc_core::{ChangeEvent, DataType, KafkaOffset, Position, Sink};
use s3_sink::{Format, Layout, NdjsonCompression, ParquetCompression, ParquetOptions, S3Sink};
use serde_json::Value as Json;

/// Seven SQL Server events on a table of every type, and twenty Kafka-borne events.
fn events() -> Vec<ChangeEvent> {
    let mut all = every_type_events();
    all.extend(
        sample_events("k", 20)
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.transport = Some(Position::Kafka(KafkaOffset {
                    topic: "erp.demo.dbo.items".into(),
                    partition: 2,
                    offset: 100 + i as i64,
                }));
                e
            }),
    );
    all
}

fn cases() -> Vec<(&'static str, Format)> {
    let parquet = |compression| {
        Format::Parquet(ParquetOptions {
            compression,
            ..ParquetOptions::default()
        })
    };
    vec![
        ("parquet-flat-zstd", Format::parquet()),
        (
            "parquet-envelope",
            Format::parquet().with_layout(Layout::Debezium),
        ),
        ("parquet-snappy", parquet(ParquetCompression::Snappy)),
        ("parquet-gzip", parquet(ParquetCompression::Gzip(6))),
        ("parquet-none", parquet(ParquetCompression::None)),
        ("ndjson-flat", Format::ndjson()),
        (
            "ndjson-envelope",
            Format::ndjson().with_layout(Layout::Debezium),
        ),
        (
            "ndjson-flat-gzip",
            Format::ndjson_compressed(NdjsonCompression::Gzip),
        ),
        (
            "ndjson-envelope-zstd",
            Format::ndjson_compressed(NdjsonCompression::Zstd).with_layout(Layout::Debezium),
        ),
    ]
}

/// DuckDB's name for the type a column of `data_type` should have in Parquet.
fn duckdb_type(data_type: &DataType) -> String {
    use DataType as D;
    match data_type {
        D::Bit => "BOOLEAN".into(),
        D::TinyInt | D::SmallInt => "SMALLINT".into(),
        D::Int => "INTEGER".into(),
        D::BigInt => "BIGINT".into(),
        D::Real => "FLOAT".into(),
        D::Float => "DOUBLE".into(),
        D::Decimal { .. } | D::Money | D::SmallMoney => {
            let (p, s) = data_type.decimal_precision_scale().unwrap();
            format!("DECIMAL({p},{s})")
        }
        D::Binary { .. } | D::VarBinary { .. } | D::Image | D::RowVersion | D::Opaque { .. } => {
            "BLOB".into()
        }
        D::Date => "DATE".into(),
        D::Time { .. } => "TIME".into(),
        D::DateTime | D::SmallDateTime | D::DateTime2 { .. } => "TIMESTAMP".into(),
        D::DateTimeOffset { .. } => "TIMESTAMP WITH TIME ZONE".into(),
        _ => "VARCHAR".into(),
    }
}

/// Checks what DuckDB and pyarrow saw for one case.
fn check(case: &str, format: &Format, seen: &serde_json::Map<String, Json>) {
    let every = every_type_events();
    let table = &every[0].table;
    assert_eq!(
        seen.len(),
        2,
        "{case}: one file per topic, got {:?}",
        seen.keys().collect::<Vec<_>>()
    );
    for (name, entry) in seen {
        let expected_rows = if name.contains("every_type") {
            every.len()
        } else {
            20
        };
        assert_eq!(
            entry["duckdb_rows"], expected_rows,
            "{case} {name}: DuckDB row count"
        );
        let types = entry["duckdb_types"].as_object().unwrap();
        let flat = matches!(format, Format::Parquet(o) if o.layout == Layout::Flattened)
            || matches!(format, Format::Ndjson(o) if o.layout == Layout::Flattened);
        if let Format::Parquet(options) = format {
            assert_eq!(
                entry["pyarrow_rows"], expected_rows,
                "{case} {name}: pyarrow row count"
            );
            let arrow = entry["pyarrow_types"].as_object().unwrap();
            if name.contains("every_type") && options.layout == Layout::Flattened {
                for column in &table.columns {
                    assert_eq!(
                        types[&column.name],
                        duckdb_type(&column.data_type),
                        "{case}: DuckDB type of {} ({})",
                        column.name,
                        column.data_type
                    );
                    if column.data_type.time_precision() == Some(7) {
                        assert_eq!(types[&format!("{}__nanos", column.name)], "SMALLINT");
                    }
                }
                assert_eq!(arrow["c6_decimal_38_10_"], "decimal128(38, 10)");
                assert_eq!(arrow["__commit_time"], "timestamp[us, tz=UTC]");
                assert_eq!(types["__op"], "VARCHAR");
                assert_eq!(types["__deleted"], "BOOLEAN");
                assert_eq!(types["__commit_lsn"], "VARCHAR");
            }
            if name.contains("every_type") && options.layout == Layout::Debezium {
                let after = types["after"].as_str().unwrap();
                assert!(after.starts_with("STRUCT("), "{case}: after is {after}");
                assert!(after.contains("DECIMAL(38,10)"), "{case}: after is {after}");
                assert!(arrow["before"].as_str().unwrap().starts_with("struct<"));
                assert!(
                    types["source"]
                        .as_str()
                        .unwrap()
                        .contains("commit_lsn VARCHAR")
                );
            }
        }
        if name.contains("items") {
            // Kafka-borne events carry topic, partition and offset.
            assert!(
                types.contains_key("__kafka_partition"),
                "{case} {name}: {types:?}"
            );
            assert_eq!(
                types["__kafka_partition"],
                if matches!(format, Format::Parquet(_)) {
                    "INTEGER"
                } else {
                    "BIGINT"
                }
            );
            assert_eq!(types["__kafka_offset"], "BIGINT", "{case}");
            assert!(
                name.contains("erp.demo.dbo.items/partition=2/erp.demo.dbo.items+2+0000000100."),
                "{name}"
            );
        }
        if !flat {
            for column in ["before", "after", "source", "op"] {
                assert!(
                    types.contains_key(column),
                    "{case}: no {column} in {types:?}"
                );
            }
        } else {
            assert!(
                types.contains_key("__op") && types.contains_key("__position"),
                "{case}: {types:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_local_files_of_every_format_and_layout() {
    for (case, format) in cases() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let mut sink = S3Sink::builder()
            .url(url)
            .format(format.clone())
            .build()
            .unwrap();
        sink.write(&events()).await.unwrap();
        sink.flush().await.unwrap();
        check(case, &format, &support::read_back(dir.path()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_files_written_to_moto_s3() {
    let moto = support::Moto::start();
    moto.create_bucket("lake");
    for (case, format) in cases() {
        let mut builder = S3Sink::builder()
            .url(format!("s3://lake/{case}"))
            .format(format.clone());
        for (key, value) in moto.options() {
            builder = builder.option(key, value);
        }
        let mut sink = builder.build().unwrap();
        sink.write(&events()).await.unwrap();
        let durable = sink.flush().await.unwrap();
        assert_eq!(durable.len(), 2, "{case}: one source partition per source");
        let dir = tempfile::tempdir().unwrap();
        let store = moto.store("lake");
        let listed = support::objects(&store, Some(&case.into())).await;
        for (key, bytes) in &listed {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        check(case, &format, &support::read_back(&dir.path().join(case)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetime2_100ns_and_offsets_survive_in_extra_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = S3Sink::builder()
        .url(format!("file://{}", dir.path().display()))
        .build()
        .unwrap();
    sink.write(&every_type_events()).await.unwrap();
    sink.flush().await.unwrap();
    // Typical datetime2(7) is 2024-05-17 08:30:00.1234567; datetimeoffset(7) 06:30:00.1234567 UTC at +02:00.
    let script = r#"
import duckdb, sys, glob
f = glob.glob(sys.argv[1] + '/**/*every_type*.parquet', recursive=True)[0]
con = duckdb.connect()
cols = [r[0] for r in con.execute(f"describe select * from read_parquet('{f}')").fetchall()]
dt2 = [c for c in cols if c.startswith('c') and c.endswith('_datetime2_7_')][0]
dto = [c for c in cols if c.startswith('c') and c.endswith('_datetimeoffset_7_')][0]
con.execute("set timezone='UTC'")
r = con.execute(f"select strftime({dt2}, '%Y-%m-%d %H:%M:%S.%f'), {dt2}__nanos, strftime({dto}, '%Y-%m-%d %H:%M:%S.%f'), {dto}__nanos, {dto}__offset_minutes from read_parquet('{f}') where id = 1").fetchone()
print('|'.join(str(x) for x in r))
"#;
    let out = support::run_python(script, &[dir.path().to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        "2024-05-17 08:30:00.123456|700|2024-05-17 06:30:00.123456|700|120"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_hive_time_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = S3Sink::builder()
        .url(format!("file://{}", dir.path().display()))
        .partitioner(
            s3_sink::TimeBasedPartitioner::commit_time()
                .with_zone("America/New_York")
                .unwrap(),
        )
        .build()
        .unwrap();
    sink.write(&every_type_events()).await.unwrap();
    sink.flush().await.unwrap();
    // Committed 2026-01-01T00:00:00.123Z: 19:00 on New Year's Eve in New York.
    let script = r#"
import duckdb, sys
con = duckdb.connect()
r = con.execute(f"select year, month, day, hour, count(*) from read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true) group by all").fetchall()
print(r)
"#;
    let out = support::run_python(script, &[dir.path().to_str().unwrap()]);
    assert_eq!(out.trim(), "[(2025, 12, 31, 19, 7)]");
}
