//! The encode/flush path across crates, in process: the Debezium JSON codec, Parquet and
//! NDJSON files flushed to an in-memory object store, and a whole pipeline from an in-memory
//! source into the Parquet sink.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cdc_core::testing::{MemorySource, sample_events};
use cdc_core::{
    ChangeEvent, DebeziumJson, EventCodec, MemoryOffsetStore, Pipeline, PipelineConfig, Sink,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use s3_sink::{Format, S3Sink};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 50_000;

fn codec(c: &mut Criterion, events: &[ChangeEvent]) {
    let mut group = c.benchmark_group("debezium_json_encode");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, codec) in [
        ("schemaless", DebeziumJson::schemaless()),
        ("with_schema", DebeziumJson::with_schema()),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                events
                    .iter()
                    .map(|e| codec.encode(e).unwrap().value.map_or(0, |v| v.len()))
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

fn sink(format: Format) -> S3Sink {
    S3Sink::builder()
        .url("memory:///bench")
        .format(format)
        .build()
        .unwrap()
}

fn flush(c: &mut Criterion, rt: &tokio::runtime::Runtime, events: &[ChangeEvent]) {
    let mut group = c.benchmark_group("sink_flush_to_memory_store");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, format) in [
        ("parquet_zstd", Format::parquet()),
        ("ndjson", Format::ndjson()),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || sink(format.clone()),
                |mut sink| {
                    rt.block_on(async {
                        for chunk in events.chunks(2048) {
                            sink.write(chunk).await.unwrap();
                        }
                        sink.flush().await.unwrap()
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion, rt: &tokio::runtime::Runtime, events: &[ChangeEvent]) {
    let mut group = c.benchmark_group("pipeline_memory_source_to_parquet");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("end_to_end", |b| {
        b.iter_batched(
            || {
                MemorySource::new("bench", events.to_vec())
                    .batch_size(2048)
                    .ending_when_drained()
            },
            |source| {
                let pipeline = Pipeline::new(
                    PipelineConfig::new("bench").flush_max_events(EVENTS),
                    source,
                    sink(Format::parquet()),
                    MemoryOffsetStore::new(),
                )
                .unwrap();
                rt.block_on(pipeline.run(CancellationToken::new())).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let events = sample_events("bench", EVENTS);
    codec(c, &events);
    flush(c, &rt, &events);
    pipeline(c, &rt, &events);
}

criterion_group! {
    name = encode_flush;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(encode_flush);
