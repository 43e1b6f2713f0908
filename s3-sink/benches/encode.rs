//! Encode throughput: events → Parquet (zstd) and → NDJSON through the sink into an
//! in-memory store, against arrow-rs's `ArrowWriter` on prebuilt record batches of the same
//! rows. Run: `cargo bench -p s3-sink --bench encode -- --warm-up-time 1 --measurement-time 4`,
//! under `setsid benches/prio.sh` on a shared machine (see that script).
//!
//! The sink runs with its defaults (encoding thread, dictionaries only where they pay) and
//! on the caller's thread alone. `ArrowWriter` runs with dictionaries on every column (its
//! and pyarrow's default) and with the columns the sink chose, so each difference shows; the
//! run stops unless the sink's file and `ArrowWriter`'s with the same encodings are the same
//! size within 2%. Instruction counts: see [`main`].
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, Sink, Value};
use criterion::{Criterion, Throughput, criterion_group};
use object_store::memory::InMemory;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use s3_sink::{Format, ParquetOptions, S3Sink};
use std::sync::Arc;

const EVENTS: usize = 100_000;

fn parquet_one_thread() -> Format {
    Format::Parquet(ParquetOptions {
        encode_in_background: false,
        ..ParquetOptions::default()
    })
}

async fn through_sink(events: &[ChangeEvent], format: &Format) -> u64 {
    let mut sink = S3Sink::builder()
        .store(Arc::new(InMemory::new()), "bench")
        .format(format.clone())
        .rotation(s3_sink::Rotation {
            max_records: None,
            max_bytes: None,
            ..Default::default()
        })
        .build()
        .unwrap();
    for chunk in events.chunks(1000) {
        sink.write(chunk).await.unwrap();
    }
    sink.flush().await.unwrap();
    sink.stats().bytes_written
}

/// The same rows and columns the flattened layout writes, as prebuilt record batches of as
/// many rows as the sink's (8192): the writer's per-batch work is then the same on both
/// sides (with 1024-row batches `ArrowWriter` is about 5% slower).
fn prebuilt(events: &[ChangeEvent]) -> (Arc<Schema>, Vec<RecordBatch>) {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("__op", DataType::Utf8, false),
        Field::new("__deleted", DataType::Boolean, false),
        Field::new("__commit_time", utc.clone(), true),
        Field::new("__commit_lsn", DataType::Utf8, true),
        Field::new("__change_lsn", DataType::Utf8, true),
        Field::new("__event_serial_no", DataType::Int64, true),
        Field::new("__position", DataType::Utf8, false),
    ]));
    let batches = events
        .chunks(ParquetOptions::default().batch_rows)
        .map(|chunk| {
            let (mut id, mut name, mut op, mut pos) = (
                Int32Builder::new(),
                StringBuilder::new(),
                StringBuilder::new(),
                StringBuilder::new(),
            );
            let mut price = Decimal128Builder::new().with_data_type(DataType::Decimal128(10, 2));
            let mut deleted = BooleanBuilder::new();
            let mut time = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            let (mut lsn1, mut lsn2, mut serial) = (
                StringBuilder::new(),
                StringBuilder::new(),
                Int64Builder::new(),
            );
            for e in chunk {
                let row = e.row().unwrap();
                match (&row.0[0], &row.0[1], &row.0[2]) {
                    (Value::I32(i), Value::String(s), Value::Decimal(d)) => {
                        id.append_value(*i);
                        name.append_value(s);
                        price.append_value(d.unscaled);
                    }
                    _ => unreachable!(),
                }
                op.append_value(e.op.code());
                deleted.append_value(e.op == cdc_core::Op::Delete);
                time.append_option(e.source.commit_time.map(|t| t.timestamp_micros()));
                lsn1.append_null();
                lsn2.append_null();
                serial.append_null();
                pos.append_value(serde_json::to_string(e.position()).unwrap());
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(id.finish()),
                Arc::new(name.finish()),
                Arc::new(price.finish()),
                Arc::new(op.finish()),
                Arc::new(deleted.finish()),
                Arc::new(time.finish()),
                Arc::new(lsn1.finish()),
                Arc::new(lsn2.finish()),
                Arc::new(serial.finish()),
                Arc::new(pos.finish()),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        })
        .collect();
    (schema, batches)
}

/// Columns the sink writes plain for these rows (distinct values: no dictionary pays).
const PLAIN: [&str; 5] = ["id", "name", "price", "__commit_time", "__position"];

fn arrow_writer(schema: &Arc<Schema>, batches: &[RecordBatch], sink_encodings: bool) -> usize {
    arrow_writer_bytes(schema, batches, sink_encodings).len()
}

fn arrow_writer_bytes(
    schema: &Arc<Schema>,
    batches: &[RecordBatch],
    sink_encodings: bool,
) -> Vec<u8> {
    let mut props = WriterProperties::builder();
    if sink_encodings {
        for column in PLAIN {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
    }
    let props = props
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(Some(32 * 1024 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some(props)).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.into_inner().unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let events = sample_events("bench", EVENTS);
    let (schema, batches) = prebuilt(&events);
    let parquet_bytes = runtime.block_on(through_sink(&events, &Format::parquet()));
    let one_thread_bytes = runtime.block_on(through_sink(&events, &parquet_one_thread()));
    assert_eq!(parquet_bytes, one_thread_bytes);
    let ndjson_bytes = runtime.block_on(through_sink(&events, &Format::ndjson()));
    let arrow_bytes = arrow_writer(&schema, &batches, false);
    let same_bytes = arrow_writer(&schema, &batches, true);
    eprintln!(
        "output per run of {EVENTS} events: sink parquet zstd {parquet_bytes} B, sink ndjson {ndjson_bytes} B, ArrowWriter {arrow_bytes} B, ArrowWriter with the sink's encodings {same_bytes} B"
    );
    // The comparison that counts is at equal output: same encodings, same bytes within 2%
    // (the sink's footer also records the last position).
    let ratio = parquet_bytes as f64 / same_bytes as f64;
    assert!(
        (0.98..=1.02).contains(&ratio),
        "the sink writes {parquet_bytes} B, ArrowWriter with its encodings {same_bytes} B: not the same output"
    );

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("sink_parquet_zstd", |b| {
        b.iter(|| runtime.block_on(through_sink(&events, &Format::parquet())))
    });
    group.bench_function("sink_parquet_zstd_one_thread", |b| {
        b.iter(|| runtime.block_on(through_sink(&events, &parquet_one_thread())))
    });
    group.bench_function("sink_ndjson", |b| {
        b.iter(|| runtime.block_on(through_sink(&events, &Format::ndjson())))
    });
    group.bench_function("arrow_writer_prebuilt_zstd", |b| {
        b.iter(|| arrow_writer(&schema, &batches, false))
    });
    group.bench_function("arrow_writer_prebuilt_sink_encodings_zstd", |b| {
        b.iter(|| arrow_writer(&schema, &batches, true))
    });
    // The same, building the record batches from the events inside the measurement: the
    // least any events → Parquet path can cost.
    group.bench_function("arrow_writer_with_conversion_zstd", |b| {
        b.iter(|| {
            let (schema, batches) = prebuilt(&events);
            arrow_writer(&schema, &batches, false)
        })
    });
    group.finish();
}

/// One pass of one contender, for `valgrind --tool=callgrind --toggle-collect=*measured*`:
/// instruction counts are repeatable whatever else the machine runs.
#[inline(never)]
fn measured(
    runtime: &tokio::runtime::Runtime,
    case: &str,
    events: &[ChangeEvent],
    batches: &(Arc<Schema>, Vec<RecordBatch>),
) -> u64 {
    match case {
        "sink" => runtime.block_on(through_sink(events, &Format::parquet())),
        "sink_one_thread" => runtime.block_on(through_sink(events, &parquet_one_thread())),
        "arrow_writer_sink_encodings" => arrow_writer(&batches.0, &batches.1, true) as u64,
        "arrow_writer" => arrow_writer(&batches.0, &batches.1, false) as u64,
        other => panic!("unknown ENCODE_ONCE case {other}"),
    }
}

criterion_group!(benches, bench);

/// `ENCODE_ONCE=<case>` runs one contender once over the events instead of the criterion
/// benches (cases: `sink`, `sink_one_thread`, `arrow_writer_sink_encodings`, `arrow_writer`):
///
/// ```text
/// cargo bench -p s3-sink --bench encode --no-run
/// ENCODE_ONCE=sink_one_thread valgrind --tool=callgrind --toggle-collect='*measured*' \
///     target/release/deps/encode-<hash>
/// ```
/// Instructions per event = the run's total `Ir` / 100 000.
fn main() {
    if let Some(path) = std::env::var_os("ENCODE_WRITE_FILE") {
        // The file `ArrowWriter` writes with the sink's encodings, to compare its column
        // chunks (encodings, sizes) with pyarrow's file of `benches/pyarrow_write.py`.
        let (schema, batches) = prebuilt(&sample_events("bench", EVENTS));
        std::fs::write(path, arrow_writer_bytes(&schema, &batches, true)).unwrap();
        return;
    }
    if let Ok(case) = std::env::var("ENCODE_ONCE") {
        let events = sample_events("bench", EVENTS);
        let batches = prebuilt(&events);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // `ENCODE_TIMES=<n>` repeats the pass and prints each one's wall time: a quick look
        // at one contender (with `/usr/bin/time` for its CPU and system time), not a result.
        let times = std::env::var("ENCODE_TIMES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 0..times {
            let start = std::time::Instant::now();
            let bytes = measured(&runtime, &case, &events, &batches);
            eprintln!("{case}: {EVENTS} events, {bytes} B, {:?}", start.elapsed());
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
