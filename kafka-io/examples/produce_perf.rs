//! Throughput of `KafkaSink` with the Debezium JSON codec (schemas embedded) against a real
//! broker, for the side-by-side comparison with Kafka's own `kafka-producer-perf-test` that
//! `scripts/kafka-perf.sh` runs (docs/benchmarks.md).
//!
//! ```text
//! cargo run --release -p kafka-io --example produce_perf -- BROKERS EVENTS TOPIC_PREFIX
//! ```
//!
//! Writes EVENTS sample change events (cdc_core's sample table: keyed, with the cdc.* headers)
//! to `<TOPIC_PREFIX>.demo.dbo.items` (created beforehand with 4 partitions), flushes, and
//! prints one line of `key=value` figures: records, mean record size (key + value bytes, as
//! encoded by the codec before the run), seconds, records/s and MB/s. The producer runs with
//! librdkafka's defaults as `KafkaSink` sets them: acks=all, enable.idempotence=true,
//! compression none, linger.ms 5.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cdc_core::testing::sample_events;
use cdc_core::{DebeziumJson, EventCodec, Sink};
use kafka_io::{KafkaConfig, KafkaSink, TopicCreator, TopicSpec};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, events, prefix] = args.as_slice() else {
        eprintln!("usage: produce_perf BROKERS EVENTS TOPIC_PREFIX");
        std::process::exit(2);
    };
    let n: usize = events.parse().expect("EVENTS is a number");
    let config = KafkaConfig::new(brokers.as_str());
    let codec = Arc::new(DebeziumJson::with_schema());
    let events: Vec<_> = sample_events("perf", n)
        .into_iter()
        .map(|mut e| {
            e.source.name = prefix.as_str().into();
            e
        })
        .collect();
    // Sizes as the codec encodes them, outside the timed run.
    let bytes: usize = events
        .iter()
        .map(|e| {
            let r = codec.encode(e).unwrap();
            r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len())
        })
        .sum();
    TopicCreator::new(&config, TopicSpec::new(4, 1).compacted(false))
        .unwrap()
        .ensure(&format!("{prefix}.demo.dbo.items"))
        .await
        .unwrap();
    let mut sink = KafkaSink::builder(config, codec)
        .tombstones(false)
        .build()
        .unwrap();
    let started = Instant::now();
    for chunk in events.chunks(1000) {
        sink.write(chunk).await.unwrap();
    }
    let durable = sink.flush().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(!durable.is_empty(), "every event delivered");
    println!(
        "records={n} record_size={} seconds={seconds:.3} records_per_s={:.0} mb_per_s={:.2}",
        bytes / n,
        n as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}
