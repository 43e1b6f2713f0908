//! Events → Kafka throughput of [`KafkaSink`] against a raw librdkafka producer sending the
//! same (pre-encoded) payloads to the same mock cluster.
//!
//! `cargo bench -p kafka-io --bench produce`; the sink's time includes encoding with the
//! Debezium JSON codec, the headers and the delivery tracking.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, DebeziumJson, EncodedRecord, EventCodec, Position, Sink};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_io::rdkafka::ClientConfig;
use kafka_io::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use kafka_io::{DefaultTopicNamer, KafkaConfig, KafkaSink, TopicNamer};
use std::sync::Arc;
use std::time::Duration;

const EVENTS: usize = 20_000;

/// Topic, key and value of one record.
type Raw = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// A codec returning records encoded beforehand, looked up by the event's sequence number.
struct Prepared(Vec<EncodedRecord>);

impl EventCodec for Prepared {
    fn name(&self) -> &str {
        "prepared"
    }
    fn encode(&self, event: &ChangeEvent) -> cdc_core::Result<EncodedRecord> {
        let Position::Sequence { seq, .. } = event.position() else {
            unreachable!()
        };
        Ok(self.0[*seq as usize - 1].clone())
    }
    fn decode(&self, _: &EncodedRecord) -> cdc_core::Result<Option<ChangeEvent>> {
        unreachable!("the bench only encodes")
    }
}

fn produce(c: &mut Criterion) {
    // One mock cluster per contender: the mock keeps every message in memory, and a cluster
    // already holding the other's data would slow the second one down.
    let cluster = || {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("demo.demo.dbo.items", 4, 1).unwrap();
        mock
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let codec = Arc::new(DebeziumJson::schemaless());
    let events = sample_events("bench", EVENTS);
    let namer = DefaultTopicNamer::new();
    let encoded: Vec<Raw> = events
        .iter()
        .map(|e| {
            let r = codec.encode(e).unwrap();
            (namer.topic(e), r.key, r.value)
        })
        .collect();

    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));

    let mock = cluster();
    let raw: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    // What a hand-written producer does: send, serve delivery reports now and then, flush.
    let send_all = |records: &mut dyn Iterator<Item = Raw>| {
        for (i, (topic, key, value)) in records.enumerate() {
            let mut record = BaseRecord::<[u8], [u8]>::to(&topic);
            if let Some(k) = &key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &value {
                record = record.payload(v.as_slice());
            }
            let mut pending = record;
            loop {
                match raw.send(pending) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        raw.poll(Duration::from_millis(1));
                        pending = r;
                    }
                    Err((e, _)) => panic!("{e}"),
                }
            }
            if i % 1000 == 999 {
                raw.poll(Duration::ZERO);
            }
        }
        raw.flush(Duration::from_secs(60)).unwrap();
    };
    // The payloads encoded beforehand: librdkafka's cost alone.
    group.bench_function("raw_base_producer", |b| {
        b.iter(|| send_all(&mut encoded.iter().cloned()))
    });
    // Encoding each event with the same codec on the way: the hand-written equivalent of the sink.
    group.bench_function("raw_base_producer_encoding", |b| {
        b.iter(|| {
            send_all(&mut events.iter().map(|e| {
                let r = codec.encode(e).unwrap();
                (namer.topic(e), r.key, r.value)
            }))
        })
    });
    drop(raw);
    drop(mock);
    let mock = cluster();
    let mut sink = KafkaSink::builder(KafkaConfig::new(mock.bootstrap_servers()), codec.clone())
        .tombstones(false) // the raw producer sends no tombstones either
        .build()
        .unwrap();
    group.bench_function("kafka_sink", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for chunk in events.chunks(1000) {
                    sink.write(chunk).await.unwrap();
                }
                sink.flush().await.unwrap();
            })
        })
    });
    drop(sink);
    drop(mock);

    // The same sink with a codec that hands out the pre-encoded records: what kafka-io itself
    // costs (headers, delivery tracking, lane order), without the JSON encoding.
    let mock = cluster();
    let prepared = Arc::new(Prepared(
        events.iter().map(|e| codec.encode(e).unwrap()).collect(),
    ));
    let mut sink = KafkaSink::builder(KafkaConfig::new(mock.bootstrap_servers()), prepared)
        .tombstones(false)
        .build()
        .unwrap();
    group.bench_function("kafka_sink_pre_encoded", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for chunk in events.chunks(1000) {
                    sink.write(chunk).await.unwrap();
                }
                sink.flush().await.unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, produce);
criterion_main!(benches);
