#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Committed offsets reach the end of every partition once everything before is durable,
//! however the partitions end (issue 13, item 5): tombstones at the end of several partitions
//! at once, on librdkafka's mock cluster; transaction markers on a real broker (the shared one
//! of `common::broker`: `KAFKA_BROKERS`, or one this process starts with `scripts/kafka.sh`).

mod common;

use cdc_core::testing::{MemorySink, sample_events};
use cdc_core::{DebeziumJson, EventCodec, MemoryOffsetStore, Pipeline, PipelineConfig};
use common::try_committed;
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::rdkafka::producer::{FutureProducer, FutureRecord};
use kafka_io::{KafkaConfig, KafkaSource};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "demo.demo.dbo.items";

/// Partition 0 holds two events and a tombstone, partition 1 one event and a tombstone. The
/// source reads both tombstones in one batch; before, a batch carried one skipped position
/// only, so the committed offsets ended at `{0: 3, 1: 1}` or `{0: 2, 1: 2}` and one partition
/// kept a lag of 1 forever. Now they end at `{0: 3, 1: 2}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_ending_on_tombstones_are_all_committed_to_their_end() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 2, 1).unwrap();
    let config = KafkaConfig::new(mock.bootstrap_servers())
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300");
    let codec = DebeziumJson::with_schema();
    let producer: FutureProducer = config.client_config().create().unwrap();
    let events = sample_events("demo", 3);
    let layout = [(0, &events[0]), (0, &events[1]), (1, &events[2])];
    for (partition, event) in layout {
        let record = codec.encode(event).unwrap();
        let key = record.key.unwrap();
        let value = record.value.unwrap();
        producer
            .send(
                FutureRecord::to(TOPIC)
                    .partition(partition)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    for partition in [0, 1] {
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to(TOPIC)
                    .partition(partition)
                    .key(b"k".as_slice()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    let source = KafkaSource::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        "tombstones",
    )
    .topic(TOPIC)
    .commit_interval(Duration::from_millis(100))
    .build()
    .unwrap();
    let sink = MemorySink::new();
    let pipeline_config = PipelineConfig::new("tombstones")
        .flush_interval(Some(Duration::from_millis(100)))
        .tick_interval(Duration::from_millis(50));
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        Pipeline::new(
            pipeline_config,
            source,
            sink.handle(),
            MemoryOffsetStore::new(),
        )
        .unwrap()
        .run(stop.clone()),
    );
    let ends = HashMap::from([(0, 3), (1, 2)]);
    let started = Instant::now();
    let mut seen = HashMap::new();
    while seen != ends && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = try_committed(&config, "tombstones", TOPIC, 2).unwrap_or_default();
    }
    stop.cancel();
    let report = running.await.unwrap().unwrap();
    assert_eq!(sink.durable_events().len(), 3);
    assert_eq!(
        seen, ends,
        "committed offsets at the end of every partition"
    );
    assert_eq!(
        try_committed(&config, "tombstones", TOPIC, 2).unwrap_or_default(),
        ends,
        "and after the stop"
    );
    assert_eq!(report.checkpoint.positions().count(), 2);
}

/// On a real broker (the mock cluster writes no transaction markers). Partition 0 holds a committed
/// transaction of two events, partition 1 an aborted one of one event; each ends on its
/// transaction marker. A `read_committed` consumer never sees the markers or the aborted
/// record, yet the committed offsets must reach the end of both partitions: `{0: 3, 1: 2}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_ending_on_transaction_markers_are_committed_to_their_end() {
    use kafka_io::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use kafka_io::rdkafka::client::DefaultClientContext;
    use kafka_io::rdkafka::producer::Producer;

    let brokers = common::broker::shared();
    let run = format!("markers{}", std::process::id());
    let topic = format!("{run}.demo.dbo.items");
    let config = KafkaConfig::new(brokers);
    let admin: AdminClient<DefaultClientContext> = config.client_config().create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();

    let codec = DebeziumJson::with_schema();
    let producer: FutureProducer = config
        .client_config()
        .set("transactional.id", &run)
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    let events = sample_events(&run, 3);
    for (partition, chunk, commit) in [(0, &events[..2], true), (1, &events[2..], false)] {
        producer.begin_transaction().unwrap();
        for event in chunk {
            let record = codec.encode(event).unwrap();
            let (key, value) = (record.key.unwrap(), record.value.unwrap());
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&value),
                    timeout,
                )
                .await
                .unwrap();
        }
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.abort_transaction(timeout).unwrap();
        }
    }

    let group = format!("{run}-group");
    let source = KafkaSource::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        &group,
    )
    .topic(&topic)
    .commit_interval(Duration::from_millis(100))
    .build()
    .unwrap();
    let sink = MemorySink::new();
    let pipeline_config = PipelineConfig::new("markers")
        .flush_interval(Some(Duration::from_millis(100)))
        .tick_interval(Duration::from_millis(50));
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        Pipeline::new(
            pipeline_config,
            source,
            sink.handle(),
            MemoryOffsetStore::new(),
        )
        .unwrap()
        .run(stop.clone()),
    );
    let ends = HashMap::from([(0, 3), (1, 2)]);
    let started = Instant::now();
    let mut seen = HashMap::new();
    while seen != ends && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = try_committed(&config, &group, &topic, 2).unwrap_or_default();
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        sink.durable_events().len(),
        2,
        "the aborted event is not read"
    );
    assert_eq!(
        seen, ends,
        "committed offsets at the end of every partition"
    );
}
