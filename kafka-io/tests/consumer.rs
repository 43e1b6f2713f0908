#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The consumer source on librdkafka's mock cluster.

mod common;

use cdc_core::testing::{MemorySink, SourceHarness, sample_events, source_conformance};
use cdc_core::{
    ChangeSource, DebeziumJson, MemoryOffsetStore, Pipeline, PipelineConfig, Position, Sink,
};
use common::*;
use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::producer::{FutureProducer, FutureRecord};
use kafka_io::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use kafka_io::{
    DLQ_HEADER_OFFSET, DLQ_HEADER_REASON, DLQ_HEADER_TOPIC, DecodeFailurePolicy, KafkaConfig,
    KafkaIoError, KafkaSink, KafkaSource,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn source(config: &KafkaConfig, group: &str, policy: DecodeFailurePolicy) -> KafkaSource {
    KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), group)
        .topic(SAMPLE_TOPIC)
        .on_decode_failure(policy)
        .build()
        .unwrap()
}

async fn produce(config: &KafkaConfig, events: &[cdc_core::ChangeEvent]) {
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    sink.write(events).await.unwrap();
    sink.flush().await.unwrap();
}

struct Harness {
    config: KafkaConfig,
    produced: u64,
}

#[async_trait::async_trait]
impl SourceHarness for Harness {
    type Source = KafkaSource;

    async fn produce(&mut self, n: usize) -> cdc_core::Result<()> {
        // Positions continue from what was produced before, as a real upstream's would.
        let events: Vec<_> = sample_events("conformance", self.produced as usize + n)
            .split_off(self.produced as usize);
        self.produced += n as u64;
        produce(&self.config, &events).await;
        Ok(())
    }

    async fn new_source(&mut self) -> cdc_core::Result<KafkaSource> {
        Ok(source(
            &self.config,
            "conformance",
            DecodeFailurePolicy::Fail,
        ))
    }
}

/// The consumer source passes cdc-core's source conformance suite: order, exact resume from
/// a checkpoint, re-reading of what was not acknowledged. Tombstones among the records (a
/// delete is event 7) are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_conformance_on_mock() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let mut harness = Harness {
        config: kafka_for_groups(&mock),
        produced: 0,
    };
    source_conformance(&mut harness).await.unwrap();
}

/// Reads batches until `n` events arrived or `timeout`.
async fn read_events(
    source: &mut KafkaSource,
    n: usize,
    timeout: Duration,
) -> Vec<cdc_core::ChangeEvent> {
    let started = Instant::now();
    let mut events = Vec::new();
    while events.len() < n && started.elapsed() < timeout {
        events.extend(source.next_batch().await.unwrap().unwrap().events);
    }
    events
}

fn raw_producer(config: &KafkaConfig) -> FutureProducer {
    config.client_config().create().unwrap()
}

/// Events keep their origin position in `source` and get their Kafka position as
/// `transport`; tombstones are skipped; `ack` commits offset + 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_positions_and_commit_of_offset_plus_one() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let config = kafka_for_groups(&mock);
    let events = sample_events("transport", 8);
    produce(&config, &events).await;
    let mut source = source(&config, "transport", DecodeFailurePolicy::Fail);
    source.start(None).await.unwrap();
    let read = read_events(&mut source, 8, Duration::from_secs(20)).await;
    assert_eq!(
        read.len(),
        8,
        "8 events; the tombstone after event 7 is skipped"
    );
    assert_eq!(
        read[7].source.position,
        *events[7].position(),
        "origin position kept"
    );
    let Some(Position::Kafka(at)) = read[7].transport.clone() else {
        panic!("no Kafka transport position")
    };
    assert_eq!(
        (at.topic.as_str(), at.partition, at.offset),
        (SAMPLE_TOPIC, 0, 8),
        "offset 7 is the tombstone"
    );
    source.ack(read[3].position()).await.unwrap();
    source.close().await.unwrap();
    let committed = committed_offsets(&config, "transport", &[(SAMPLE_TOPIC, 1)]);
    assert_eq!(
        committed.get(&0),
        Some(&4),
        "offset of the acked record + 1"
    );
}

fn committed_offsets(
    config: &KafkaConfig,
    group: &str,
    topics: &[(&str, i32)],
) -> HashMap<i32, i64> {
    try_committed_offsets(config, group, topics).unwrap()
}

fn try_committed_offsets(
    config: &KafkaConfig,
    group: &str,
    topics: &[(&str, i32)],
) -> kafka_io::rdkafka::error::KafkaResult<HashMap<i32, i64>> {
    let mut client: ClientConfig = config.client_config();
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = client.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (topic, partitions) in topics {
        tpl.add_partition_range(topic, 0, partitions - 1);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// Two consumers of one group run pipelines into sinks while events are produced; the second
/// joins and leaves, forcing rebalances. Every event reaches a sink, and at every moment the
/// group's committed offsets cover only records some sink had already made durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancing_consumers_deliver_everything_and_commit_only_durable() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 4)]);
    rebalance_scenario(kafka_for_groups(&mock), "demo", "rebalance").await;
}

/// The same rebalance scenario on a real broker, whose group coordinator runs the real
/// protocol (`KAFKA_BROKERS`, or one this process starts through scripts/kafka.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_rebalancing_consumers_deliver_everything_and_commit_only_durable() {
    let config = KafkaConfig::new(common::broker::shared())
        // The broker's smallest allowed session (group.min.session.timeout.ms).
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    let prefix = format!("rebalance{}", std::process::id());
    kafka_io::TopicCreator::new(&config, kafka_io::TopicSpec::new(4, 1))
        .unwrap()
        .ensure(&format!("{prefix}.demo.dbo.items"))
        .await
        .unwrap();
    rebalance_scenario(config, &prefix, &format!("{prefix}-group")).await;
}

/// Runs the rebalance scenario on topic `<prefix>.demo.dbo.items` (4 partitions, existing).
async fn rebalance_scenario(config: KafkaConfig, prefix: &str, group: &str) {
    const PARTITIONS: i32 = 4;
    const EVENTS: usize = 3000;
    let topic = format!("{prefix}.demo.dbo.items");
    let topic = topic.as_str();

    let run = |sink: MemorySink, stop: CancellationToken| {
        let source =
            KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), group)
                .topic(topic)
                .commit_interval(Duration::from_millis(100))
                .build()
                .unwrap();
        let pipeline_config = PipelineConfig::new("rebalance")
            .flush_max_events(200)
            .flush_interval(Some(Duration::from_millis(200)))
            .tick_interval(Duration::from_millis(50));
        let pipeline =
            Pipeline::new(pipeline_config, source, sink, MemoryOffsetStore::new()).unwrap();
        tokio::spawn(pipeline.run(stop))
    };
    let (sink_a, sink_b) = (MemorySink::new(), MemorySink::new());
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = run(sink_a.handle(), stop_a.clone());

    // The monitor samples the committed offsets first, then the durable sets; a commit made
    // after the flush that preceded it is then always covered by the sample. Samples are
    // checked at the end, when the topic (and so which offsets are tombstones) is known.
    type Sample = (HashMap<i32, i64>, HashSet<(i32, i64)>);
    let stop_monitor = CancellationToken::new();
    // A panic below must stop the blocking monitor too, or the runtime waits for it forever.
    let _stop_monitor_on_panic = stop_monitor.clone().drop_guard();
    // Samples that saw a committed offset: the test waits on this before stopping.
    let commits_sampled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let monitor = {
        let commits_sampled = Arc::clone(&commits_sampled);
        let (config, sinks, stop, group, topic) = (
            config.clone(),
            [sink_a.handle(), sink_b.handle()],
            stop_monitor.clone(),
            group.to_string(),
            topic.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let mut samples: Vec<Sample> = Vec::new();
            while !stop.is_cancelled() {
                // The coordinator may be busy rebalancing: a sample that times out is skipped.
                let Ok(committed) =
                    try_committed_offsets(&config, &group, &[(topic.as_str(), PARTITIONS)])
                else {
                    continue;
                };
                let durable = sinks
                    .iter()
                    .flat_map(|s| s.durable_events())
                    .filter_map(|e| match e.transport {
                        Some(Position::Kafka(k)) => Some((k.partition, k.offset)),
                        _ => None,
                    })
                    .collect();
                if !committed.is_empty() {
                    commits_sampled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                samples.push((committed, durable));
                // The sampling rate, not a wait for anything.
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };

    let events: Vec<_> = keyed_events("flow", EVENTS, 97)
        .into_iter()
        .map(|mut e| {
            e.source.name = prefix.into();
            e
        })
        .collect();
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    let mut b = None;
    for (i, chunk) in events.chunks(100).enumerate() {
        sink.write(chunk).await.unwrap();
        if i == 2 {
            b = Some(run(sink_b.handle(), stop_b.clone())); // joins: rebalance
        }
        if i == 22 {
            // Leaves (rebalance back to one member) once it has taken part: a durable event.
            wait_until(
                Duration::from_secs(30),
                "the second consumer took part",
                || !sink_b.durable_events().is_empty(),
            )
            .await;
            stop_b.cancel();
        }
        // Pacing: production spreads over both rebalances (not a wait for anything).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sink.flush().await.unwrap();

    // Wait until every event is durable in one of the sinks.
    let expected: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    let started = Instant::now();
    loop {
        let seen: HashSet<Position> = [&sink_a, &sink_b]
            .iter()
            .flat_map(|s| s.durable_events())
            .map(|e| e.source.position)
            .collect();
        if expected.is_subset(&seen) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "missing {} events",
            expected.difference(&seen).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(
        Duration::from_secs(30),
        "the monitor sampled a commit",
        || commits_sampled.load(std::sync::atomic::Ordering::SeqCst) > 0,
    )
    .await;
    stop_a.cancel();
    a.await.unwrap().unwrap();
    b.unwrap().await.unwrap().unwrap();
    stop_monitor.cancel();
    let samples = monitor.await.unwrap();
    assert!(
        !sink_b.durable_events().is_empty(),
        "the second consumer took part"
    );
    assert!(samples.len() > 10, "the monitor ran");
    let records = read_topic(&config, topic, false);
    let mut violations = 0;
    let mut commits_seen = 0;
    for (committed, durable) in &samples {
        for (partition, next) in committed {
            commits_seen += 1;
            let undurable = records
                .iter()
                .filter(|r| r.partition == *partition && r.offset < *next && !r.is_tombstone())
                .filter(|r| !durable.contains(&(r.partition, r.offset)))
                .count();
            if undurable > 0 {
                violations += 1;
                eprintln!(
                    "partition {partition}: committed {next} with {undurable} records not durable"
                );
            }
        }
    }
    assert!(
        commits_seen > 0,
        "offsets were committed while the test ran"
    );
    assert_eq!(
        violations, 0,
        "an offset was committed before its record was durable"
    );
}

/// Polls `condition` every 20 ms until it holds; panics naming `what` after `limit`.
async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let polled = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(limit, polled).await.is_err() {
        panic!("timed out waiting: {what}");
    }
}

async fn produce_with_poison(config: &KafkaConfig) -> Vec<cdc_core::ChangeEvent> {
    let events = sample_events("poison", 6);
    produce(config, &events[..3]).await;
    raw_producer(config)
        .send(
            FutureRecord::to(SAMPLE_TOPIC)
                .key("bad-key")
                .payload("{not json"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    produce(config, &events[3..]).await;
    events
}

/// A record the codec cannot decode lands in the dead-letter topic with headers saying why
/// and where it came from; the events around it flow on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_land_in_the_dead_letter_topic() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1), ("cdc.dlq", 1)]);
    let config = kafka_for_groups(&mock);
    produce_with_poison(&config).await;
    let mut source = source(
        &config,
        "dlq",
        DecodeFailurePolicy::DeadLetter {
            topic: "cdc.dlq".into(),
        },
    );
    source.start(None).await.unwrap();
    let read = read_events(&mut source, 6, Duration::from_secs(20)).await;
    assert_eq!(read.len(), 6, "all good events arrive");
    let dead = read_topic(&config, "cdc.dlq", false);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"{not json"[..]));
    assert_eq!(dead[0].key.as_deref(), Some(&b"bad-key"[..]));
    assert_eq!(
        dead[0].header(DLQ_HEADER_TOPIC),
        Some(SAMPLE_TOPIC.as_bytes())
    );
    assert_eq!(dead[0].header(DLQ_HEADER_OFFSET), Some(&b"3"[..]));
    assert!(!dead[0].header(DLQ_HEADER_REASON).unwrap().is_empty());
    source.close().await.unwrap();
}

/// By default a poison record stops the source with a typed error naming its position; with
/// the skip policy it is passed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_record_fails_by_default_or_is_skipped() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let config = kafka_for_groups(&mock);
    produce_with_poison(&config).await;
    let mut failing = source(&config, "fail", DecodeFailurePolicy::Fail);
    failing.start(None).await.unwrap();
    let started = Instant::now();
    let error = loop {
        match failing.next_batch().await {
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(20), "no error"),
            Err(e) => break e,
        }
    };
    let cdc_core::Error::Source {
        position: Some(Position::Kafka(at)),
        source,
        ..
    } = &error
    else {
        panic!("unexpected {error:?}")
    };
    assert_eq!(at.offset, 3);
    assert!(matches!(
        source.downcast_ref::<KafkaIoError>(),
        Some(KafkaIoError::Decode { .. })
    ));

    let mut skipping = self::source(&config, "skip", DecodeFailurePolicy::Skip);
    skipping.start(None).await.unwrap();
    assert_eq!(
        read_events(&mut skipping, 6, Duration::from_secs(20))
            .await
            .len(),
        6
    );
}

/// The source builder rejects bad settings naming the field.
#[test]
fn source_builder_validates() {
    let codec = Arc::new(DebeziumJson::with_schema());
    let err = KafkaSource::builder(KafkaConfig::new("x:1"), codec.clone(), "g")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "topics"),
        "{err}"
    );
    let err = KafkaSource::builder(KafkaConfig::new("x:1"), codec, "g")
        .topic("t")
        .batch_size(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "batch_size"),
        "{err}"
    );
}

/// On a real broker (`KAFKA_BROKERS`, or one this process starts through scripts/kafka.sh):
/// creates a 3-partition compacted topic through the admin client, produces with the
/// idempotent sink, and runs a pipeline from a consumer-group source into a memory sink:
/// every event arrives and the group's committed offsets end at the topic's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_at_least_once() {
    let brokers = common::broker::shared();
    let run = std::process::id();
    let prefix = format!("alo{run}");
    let topic = format!("{prefix}.demo.dbo.items");
    let config = KafkaConfig::new(brokers);
    let events: Vec<_> = keyed_events("real-alo", 300, 50)
        .into_iter()
        .map(|mut e| {
            e.source.name = prefix.as_str().into();
            e
        })
        .collect();
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .create_topics(kafka_io::TopicSpec::new(3, 1))
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[299].position().clone()]
    );

    let group = format!("alo-group-{run}");
    let source = KafkaSource::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        &group,
    )
    .topic(&topic)
    .build()
    .unwrap();
    let memory = MemorySink::new();
    let stop = CancellationToken::new();
    let pipeline_config =
        PipelineConfig::new("real-alo").flush_interval(Some(Duration::from_millis(200)));
    let pipeline = Pipeline::new(
        pipeline_config,
        source,
        memory.handle(),
        MemoryOffsetStore::new(),
    )
    .unwrap();
    let running = tokio::spawn(pipeline.run(stop.clone()));
    let started = Instant::now();
    while memory.durable_events().len() < 300 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} events",
            memory.durable_events().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stopping the pipeline closes the source, which commits what was acknowledged.
    stop.cancel();
    running.await.unwrap().unwrap();
    let seen: HashSet<Position> = memory
        .durable_events()
        .into_iter()
        .map(|e| e.source.position)
        .collect();
    assert!(
        events.iter().all(|e| seen.contains(e.position())),
        "every event arrived"
    );
    let committed = committed_offsets(&config, &group, &[(topic.as_str(), 3)]);
    let records = read_topic(&config, &topic, true);
    for partition in 0..3 {
        let end = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.offset + 1)
            .max();
        let last_event = records
            .iter()
            .filter(|r| r.partition == partition && !r.is_tombstone())
            .map(|r| r.offset + 1)
            .max();
        let at = committed.get(&partition).copied();
        assert!(
            at >= last_event && at <= end,
            "partition {partition}: committed {at:?}, end {end:?}"
        );
    }
}

/// A batch that ends on a skipped record (here the tombstone after the last event, a delete)
/// carries it as a heartbeat, so acknowledging it commits past the tombstone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_tombstone_becomes_a_heartbeat() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let config = kafka_for_groups(&mock);
    produce(&config, &sample_events("heartbeat", 7)).await; // offsets 0..=6, tombstone at 7
    let mut source = source(&config, "heartbeat", DecodeFailurePolicy::Fail);
    source.start(None).await.unwrap();
    let started = Instant::now();
    let (mut events, mut heartbeat) = (0, None);
    while events < 7 || heartbeat.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{events} events, heartbeat {heartbeat:?}"
        );
        let batch = source.next_batch().await.unwrap().unwrap();
        events += batch.events.len();
        heartbeat = batch.heartbeat.or(heartbeat);
    }
    let Some(Position::Kafka(at)) = heartbeat.clone() else {
        panic!("no Kafka heartbeat")
    };
    assert_eq!(at.offset, 7);
    source.ack(&heartbeat.unwrap()).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(
        committed_offsets(&config, "heartbeat", &[(SAMPLE_TOPIC, 1)]).get(&0),
        Some(&8)
    );
}
