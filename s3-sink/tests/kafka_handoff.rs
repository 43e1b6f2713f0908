//! Kafka → S3 through a consumer-group rebalance (issue 11, fault 5), on librdkafka's mock
//! cluster: two pipelines of one group share a store and prefix; every record is stored
//! exactly once and neither pipeline fails with a `Conflict`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// kafka-io's real-broker helper (`scripts/kafka.sh`), shared rather than copied.
#[allow(dead_code, unreachable_pub)]
#[path = "../../kafka-io/tests/common/broker.rs"]
mod broker;
mod support;

use async_trait::async_trait;
use cdc_core::testing::sample_events;
use cdc_core::{
    ChangeEvent, DebeziumJson, MemoryOffsetStore, Pipeline, PipelineConfig, Position, Sink,
    SourcePartition,
};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Rotation, S3Sink};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The topic sample events of stream `demo` go to with the default namer.
const TOPIC: &str = "demo.demo.dbo.items";

/// What a sink holds now, as the test sees it: per source partition, the events written and not
/// dropped by a revocation (origin position, transport offset), and how far the source
/// partition is durable.
#[derive(Default)]
struct Held {
    partitions: HashMap<SourcePartition, Vec<(Position, i64)>>,
    durable: HashMap<SourcePartition, i64>,
    revocations: usize,
}

impl Held {
    fn positions(&self) -> HashSet<Position> {
        self.partitions
            .values()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn reported(&mut self, positions: &[Position]) {
        for p in positions {
            if let Position::Kafka(k) = p {
                let durable = self.durable.entry(p.source_partition()).or_insert(k.offset);
                *durable = (*durable).max(k.offset);
            }
        }
    }
}

/// Forwards to the S3 sink and keeps [`Held`] up to date.
struct Watched {
    inner: S3Sink,
    held: Arc<Mutex<Held>>,
}

#[async_trait]
impl Sink for Watched {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        let reported = self.inner.write(events).await?;
        let mut held = self.held.lock().unwrap();
        for e in events {
            if let Position::Kafka(k) = e.position() {
                held.partitions
                    .entry(e.position().source_partition())
                    .or_default()
                    .push((e.source.position.clone(), k.offset));
            }
        }
        held.reported(&reported);
        Ok(reported)
    }
    async fn tick(&mut self) -> cdc_core::Result<Vec<Position>> {
        let reported = self.inner.tick().await?;
        self.held.lock().unwrap().reported(&reported);
        Ok(reported)
    }
    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> cdc_core::Result<()> {
        self.inner.partitions_revoked(partitions).await?;
        let mut held = self.held.lock().unwrap();
        held.revocations += 1;
        for partition in partitions {
            let durable = held.durable.get(partition).copied().unwrap_or(-1);
            if let Some(events) = held.partitions.get_mut(partition) {
                events.retain(|(_, offset)| *offset <= durable);
            }
        }
        Ok(())
    }
    async fn pre_commit(&mut self) -> cdc_core::Result<Vec<Position>> {
        let reported = self.inner.pre_commit().await?;
        self.held.lock().unwrap().reported(&reported);
        Ok(reported)
    }
    async fn flush(&mut self) -> cdc_core::Result<Vec<Position>> {
        let reported = self.inner.flush().await?;
        self.held.lock().unwrap().reported(&reported);
        Ok(reported)
    }
}

async fn produce(config: &KafkaConfig, events: &[ChangeEvent], create: bool) {
    let mut builder = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()));
    if create {
        builder = builder.create_topics(kafka_io::TopicSpec::new(4, 1));
    }
    let mut sink = builder.build().unwrap();
    sink.write(events).await.unwrap();
    sink.flush().await.unwrap();
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 11, fault 5: a 4-partition topic, one pipeline in group `g` into an NDJSON sink
/// rotating every 100 records; 1,000 records; a second identical pipeline joins (an eager
/// rebalance: the first gives up every partition and gets some back); 1,000 more; both stop.
/// Before: 2,100 rows for 2,000 records and a `Conflict` at stop. Now: each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_rebalance_hands_partitions_over_with_every_record_stored_once() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 4, 1).unwrap();
    // The mock coordinator waits `session.timeout.ms - 1 s` for members after a change.
    let config = KafkaConfig::new(mock.bootstrap_servers())
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300");
    rebalance_scenario(config, sample_events("demo", 2000), TOPIC, "g", false).await;
}

/// The same on a real broker (Apache Kafka 4.x): `KAFKA_BROKERS`, or one this process starts
/// with `scripts/kafka.sh`. A topic and group of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_rebalance_hands_partitions_over_with_every_record_stored_once() {
    let brokers = broker::shared();
    let run = format!("handoff{}", std::process::id());
    let topic = format!("{run}.demo.dbo.items");
    let events: Vec<ChangeEvent> = sample_events("demo", 2000)
        .into_iter()
        .map(|mut e| {
            e.source.name = run.as_str().into();
            e
        })
        .collect();
    let group = format!("{run}-g");
    rebalance_scenario(KafkaConfig::new(brokers), events, &topic, &group, true).await;
}

async fn rebalance_scenario(
    config: KafkaConfig,
    events: Vec<ChangeEvent>,
    topic: &str,
    group: &str,
    create: bool,
) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let start = |name: &str, held: Arc<Mutex<Held>>, stop: CancellationToken| {
        let source =
            KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), group)
                .topic(topic)
                .name(name)
                .commit_interval(Duration::from_millis(100))
                .build()
                .unwrap();
        let sink = S3Sink::builder()
            .store(Arc::clone(&store), "lake")
            .name(name)
            .format(Format::ndjson())
            .rotation(Rotation {
                max_records: Some(100),
                ..Rotation::default()
            })
            .build()
            .unwrap();
        let pipeline_config = PipelineConfig::new(name)
            .flush_interval(Some(Duration::from_millis(200)))
            .tick_interval(Duration::from_millis(50));
        let pipeline = Pipeline::new(
            pipeline_config,
            source,
            Watched { inner: sink, held },
            MemoryOffsetStore::new(),
        )
        .unwrap();
        tokio::spawn(pipeline.run(stop))
    };

    let (held_a, held_b) = (Arc::default(), Arc::default());
    let stop = CancellationToken::new();
    // On a real broker the topic must exist before a member subscribes.
    produce(&config, &events[..1000], create).await;
    let a = start("a", Arc::clone(&held_a), stop.clone());
    let first: HashSet<Position> = events[..1000]
        .iter()
        .map(|e| e.position().clone())
        .collect();
    wait_until("the first pipeline holds the first 1,000", || {
        first.is_subset(&held_a.lock().unwrap().positions())
    })
    .await;

    let b = start("b", Arc::clone(&held_b), stop.clone());
    // The second half goes out once the rebalance began: produced earlier, the first
    // pipeline may read it all and close every file before the second one gets its
    // partitions, which then hold nothing left to read.
    wait_until("the first pipeline gave its partitions up", || {
        held_a.lock().unwrap().revocations > 0
    })
    .await;
    produce(&config, &events[1000..], false).await;
    let all: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    let holds_all = || {
        let (a, b) = (held_a.lock().unwrap(), held_b.lock().unwrap());
        let mut union = a.positions();
        union.extend(b.positions());
        a.revocations > 0 && !b.partitions.is_empty() && all.is_subset(&union)
    };
    let started = Instant::now();
    while !holds_all() {
        if a.is_finished() {
            panic!(
                "pipeline a stopped before the test stopped it: {:?}",
                a.await
            );
        }
        if b.is_finished() {
            panic!(
                "pipeline b stopped before the test stopped it: {:?}",
                b.await
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            let report = {
                let (a, b) = (held_a.lock().unwrap(), held_b.lock().unwrap());
                let mut union = a.positions();
                union.extend(b.positions());
                let mut missing: Vec<String> = events
                    .iter()
                    .filter(|e| !union.contains(e.position()))
                    .map(|e| format!("{}", e.position()))
                    .collect();
                missing.sort();
                format!(
                    "revocations a={} b={}; partitions a={:?} b={:?}; durable a={:?} b={:?}; \
                     {} missing, first: {:?}",
                    a.revocations,
                    b.revocations,
                    a.partitions
                        .iter()
                        .map(|(l, v)| (l, v.len()))
                        .collect::<Vec<_>>(),
                    b.partitions
                        .iter()
                        .map(|(l, v)| (l, v.len()))
                        .collect::<Vec<_>>(),
                    a.durable,
                    b.durable,
                    missing.len(),
                    &missing[..missing.len().min(5)],
                )
            };
            panic!(
                "timed out waiting until the rebalance is done and the pipelines hold all 2,000 \
                 between them: {report}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();

    let stored = support::stored_positions(&store).await;
    let distinct: HashSet<&Position> = stored.iter().collect();
    assert_eq!(
        (stored.len(), distinct.len()),
        (2000, 2000),
        "every record stored exactly once"
    );
}
