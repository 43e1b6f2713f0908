#![allow(clippy::unwrap_used, clippy::expect_used)]
//! kafka-io on a real Apache Kafka broker (4.x, KRaft), started by `scripts/kafka.sh`: what the
//! mock cluster cannot show — topic configs as the broker stores them, an outage of the only
//! broker, and the consumer conditions librdkafka recovers from by itself (a topic created after
//! the subscription, a broker that went away, a poll interval exceeded by a slow sink).
//!
//! Tests that stop the broker run on a [`PrivateBroker`] of their own; the others share one
//! (`KAFKA_BROKERS`, or one this process starts).

mod common;

use cdc_core::{ChangeSource, DebeziumJson, Position, Sink, SourcePartition};
use common::broker::{PrivateBroker, blocking, shared};
use common::*;
use kafka_io::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use kafka_io::rdkafka::client::DefaultClientContext;
use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource, TopicCreator, TopicSpec};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn sink(config: &KafkaConfig) -> KafkaSink {
    KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap()
}

fn source(config: &KafkaConfig, group: &str, topic: &str) -> KafkaSource {
    KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), group)
        .topic(topic)
        .build()
        .unwrap()
}

/// The origin sequence numbers of the non-tombstone records of `topic`.
async fn stored_seqs(config: &KafkaConfig, topic: &str) -> Vec<u64> {
    let (config, topic) = (config.clone(), topic.to_string());
    blocking(move || {
        read_topic(&config, &topic, true)
            .iter()
            .filter(|r| !r.is_tombstone())
            .map(|r| seq(&r.position()))
            .collect()
    })
    .await
}

/// Polls `source` until every one of `expected` origin positions arrived, acknowledging each
/// batch as a sink would after making it durable; panics with the source's error if it stops,
/// or after `timeout`.
async fn consume_until(
    source: &mut KafkaSource,
    expected: &HashSet<Position>,
    seen: &mut HashSet<Position>,
    timeout: Duration,
) {
    let started = Instant::now();
    while !expected.is_subset(seen) {
        assert!(
            started.elapsed() < timeout,
            "{} of {} events after {timeout:?}; missing {:?}",
            expected.intersection(seen).count(),
            expected.len(),
            expected.difference(seen).take(5).collect::<Vec<_>>()
        );
        let batch = match source.next_batch().await {
            Ok(batch) => batch.unwrap(),
            Err(error) => panic!("the source stopped: {error} ({error:?})"),
        };
        // The last event of each partition (lane) in the batch, as a pipeline acknowledges.
        let mut last: HashMap<SourcePartition, Position> = HashMap::new();
        for event in batch.events {
            let at = event.transport.clone().unwrap();
            last.insert(at.source_partition(), at);
            seen.insert(event.source.position);
        }
        for at in last.values() {
            source.ack(at).await.unwrap();
        }
    }
}

/// Topics the sink creates get the partitions and cleanup policy of their `TopicSpec`, as the
/// broker reports them (metadata and DescribeConfigs), and other topic configs pass through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_partitions_and_cleanup_policy() {
    let config = KafkaConfig::new(shared());
    let (compacted, deleting) = (unique("compacted"), unique("deleting"));
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .create_topics(TopicSpec::new(3, 1))
        .build()
        .unwrap();
    sink.write(&events_for(&compacted, 10)).await.unwrap();
    sink.flush().await.unwrap();
    TopicCreator::new(
        &config,
        TopicSpec::new(5, 1)
            .compacted(false)
            .config("retention.ms", "3600000"),
    )
    .unwrap()
    .ensure(&deleting)
    .await
    .unwrap();

    let admin: AdminClient<DefaultClientContext> = config.client_config().create().unwrap();
    let described = admin
        .describe_configs(
            [
                &ResourceSpecifier::Topic(&topic_of(&compacted)),
                &ResourceSpecifier::Topic(&deleting),
            ],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    let value = |i: usize, key: &str| -> Option<String> {
        let resource = described[i].as_ref().unwrap();
        resource.get(key).and_then(|entry| entry.value.clone())
    };
    assert_eq!(value(0, "cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(value(1, "cleanup.policy").as_deref(), Some("delete"));
    assert_eq!(value(1, "retention.ms").as_deref(), Some("3600000"));

    let partitions = {
        let (config, topics) = (config.clone(), [topic_of(&compacted), deleting.clone()]);
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create().unwrap();
            topics.map(|topic| {
                let metadata = consumer
                    .fetch_metadata(Some(&topic), Duration::from_secs(10))
                    .unwrap();
                metadata.topics()[0].partitions().len()
            })
        })
        .await
    };
    assert_eq!(partitions, [3, 5]);
}

/// The only broker is stopped for 30 s in the middle of producing and started again: the
/// idempotent producer retries through the outage, the sink reports every position durable,
/// and the topic holds every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_30s_mid_produce_loses_and_duplicates_nothing() {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap());
    let prefix = unique("outage");
    let topic = topic_of(&prefix);
    TopicCreator::new(&config, TopicSpec::new(4, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let events = events_for(&prefix, 4000);
    let mut sink = sink(&config);
    sink.write(&events[..1000]).await.unwrap();
    sink.flush().await.unwrap();

    let chunks_written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (rest, chunks_written) = (events[1000..].to_vec(), Arc::clone(&chunks_written));
        async move {
            let mut reported = Vec::new();
            for chunk in rest.chunks(100) {
                reported.extend(sink.write(chunk).await?);
                chunks_written.fetch_add(1, Ordering::SeqCst);
                // Paces the writer so the outage falls in the middle of the stream.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            reported.extend(sink.flush().await?);
            Ok::<_, cdc_core::Error>(reported)
        }
    });
    let started = Instant::now();
    while chunks_written.load(Ordering::SeqCst) < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer is stuck"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    blocking({
        let broker = Arc::clone(&broker);
        move || broker.stop()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await; // the outage
    assert!(
        !writer.is_finished(),
        "the outage fell in the middle of the stream: the writer cannot flush without the broker"
    );
    blocking({
        let broker = Arc::clone(&broker);
        move || broker.restart()
    })
    .await;
    let reported = writer.await.unwrap().unwrap();
    assert_eq!(reported.last(), Some(events.last().unwrap().position()));

    let stored = stored_seqs(&config, &topic).await;
    let unique_seqs: HashSet<u64> = stored.iter().copied().collect();
    assert_eq!(unique_seqs.len(), events.len(), "no event lost");
    assert_eq!(stored.len(), events.len(), "no event duplicated");
}

/// Subscribed to a topic that does not exist yet (Debezium creates topics with the first
/// change), the source waits: the topic is created 4 s later and its events arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_waits_for_a_topic_created_after_the_subscription() {
    let config = KafkaConfig::new(shared());
    let prefix = unique("later");
    let topic = topic_of(&prefix);
    let events = events_for(&prefix, 50);
    let mut source = source(&config, &unique("later-group"), &topic);
    source.start(None).await.unwrap();
    let producer = tokio::spawn({
        let (config, topic, events) = (config.clone(), topic.clone(), events.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(4)).await; // the topic appears later
            TopicCreator::new(&config, TopicSpec::new(2, 1))
                .unwrap()
                .ensure(&topic)
                .await
                .unwrap();
            let mut sink = sink(&config);
            sink.write(&events).await.unwrap();
            sink.flush().await.unwrap();
        }
    });
    let expected: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    let mut seen = HashSet::new();
    consume_until(&mut source, &expected, &mut seen, Duration::from_secs(120)).await;
    producer.await.unwrap();
    source.close().await.unwrap();
}

/// Subscribed to two topics, one created at once and one 4 s later (Debezium creates each
/// table's topic with its first change): the second topic's events arrive within a minute,
/// not at librdkafka's next periodic metadata refresh (5 minutes by default; found when the
/// two legs of a pipeline were started together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_subscribed_topic_created_later_is_read_within_a_minute() {
    let config = KafkaConfig::new(shared());
    let first_prefix = unique("first");
    let later_prefix = unique("second");
    let (first, later) = (topic_of(&first_prefix), topic_of(&later_prefix));
    let creator = TopicCreator::new(&config, TopicSpec::new(1, 1)).unwrap();
    creator.ensure(&first).await.unwrap();
    let first_events = events_for(&first_prefix, 10);
    let later_events = events_for(&later_prefix, 10);
    let mut writer = sink(&config);
    writer.write(&first_events).await.unwrap();
    writer.flush().await.unwrap();
    let mut source = KafkaSource::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        unique("two-topics"),
    )
    .topic(&first)
    .topic(&later)
    .build()
    .unwrap();
    source.start(None).await.unwrap();
    let mut seen = HashSet::new();
    let expected: HashSet<Position> = first_events.iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &expected, &mut seen, Duration::from_secs(60)).await;

    tokio::time::sleep(Duration::from_secs(4)).await; // the second topic appears later
    creator.ensure(&later).await.unwrap();
    writer.write(&later_events).await.unwrap();
    writer.flush().await.unwrap();
    let expected: HashSet<Position> = later_events.iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &expected, &mut seen, Duration::from_secs(60)).await;
    source.close().await.unwrap();
}

/// The only broker goes down for 5 s while the source consumes: the source keeps polling
/// through the outage and delivers the records produced after the broker came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_resumes_after_the_only_broker_was_down_5s() {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap());
    let prefix = unique("down");
    let topic = topic_of(&prefix);
    TopicCreator::new(&config, TopicSpec::new(2, 1))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let events = events_for(&prefix, 200);
    let mut first = sink(&config);
    first.write(&events[..100]).await.unwrap();
    first.flush().await.unwrap();
    drop(first);

    let mut source = source(&config, &unique("down-group"), &topic);
    source.start(None).await.unwrap();
    let mut seen = HashSet::new();
    let first: HashSet<Position> = events[..100].iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &first, &mut seen, Duration::from_secs(60)).await;

    // The outage and the later records, while the source keeps polling.
    let outage = tokio::spawn({
        let (broker, config, later) = (Arc::clone(&broker), config.clone(), events[100..].to_vec());
        async move {
            blocking({
                let broker = Arc::clone(&broker);
                move || broker.stop()
            })
            .await;
            tokio::time::sleep(Duration::from_secs(5)).await; // the outage
            blocking(move || broker.restart()).await;
            let mut sink = sink(&config);
            sink.write(&later).await.unwrap();
            sink.flush().await.unwrap();
        }
    });
    let all: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &all, &mut seen, Duration::from_secs(180)).await;
    outage.await.unwrap();
    source.close().await.unwrap();
}

/// A sink slower than `max.poll.interval.ms` makes librdkafka leave the group
/// (`MaxPollExceeded`): the source subscribes again and goes on from the committed offsets,
/// every event arrives at least once (before, the first record after the error could go
/// missing), and the group's committed offsets end at the end of the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_survives_a_sink_slower_than_the_poll_interval() {
    let config = KafkaConfig::new(shared())
        // The broker's minimum session timeout; the poll interval must not be shorter.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "6000");
    let prefix = unique("slow");
    let topic = topic_of(&prefix);
    let group = unique("slow-group");
    TopicCreator::new(&config, TopicSpec::new(2, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let events = events_for(&prefix, 300);
    let mut sink = sink(&config);
    sink.write(&events[..150]).await.unwrap();
    sink.flush().await.unwrap();

    let mut source = KafkaSource::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        &group,
    )
    .topic(&topic)
    .batch_size(20)
    .build()
    .unwrap();
    source.start(None).await.unwrap();
    // The first batch takes the sink 9 s: longer than max.poll.interval.ms.
    let started = Instant::now();
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no first batch"
        );
        let batch = source.next_batch().await.unwrap().unwrap();
        if !batch.events.is_empty() {
            break batch;
        }
    };
    tokio::time::sleep(Duration::from_secs(9)).await; // the slow sink
    let mut seen: HashSet<Position> = first
        .events
        .iter()
        .map(|e| e.source.position.clone())
        .collect();
    let mut last: HashMap<SourcePartition, Position> = HashMap::new();
    for event in &first.events {
        let at = event.transport.clone().unwrap();
        last.insert(at.source_partition(), at);
    }
    for at in last.values() {
        source.ack(at).await.unwrap();
    }
    sink.write(&events[150..]).await.unwrap();
    sink.flush().await.unwrap();
    let all: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &all, &mut seen, Duration::from_secs(120)).await;
    source.close().await.unwrap();

    let records = {
        let (config, topic) = (config.clone(), topic.clone());
        blocking(move || read_topic(&config, &topic, true)).await
    };
    let committed = {
        let (config, topic, group) = (config.clone(), topic.clone(), group.clone());
        blocking(move || common::try_committed(&config, &group, &topic, 2).unwrap()).await
    };
    for partition in 0..2 {
        let last_event = records
            .iter()
            .filter(|r| r.partition == partition && !r.is_tombstone())
            .map(|r| r.offset + 1)
            .max();
        let end = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.offset + 1)
            .max();
        let at = committed.get(&partition).copied();
        assert!(
            at >= last_event && at <= end,
            "partition {partition}: committed {at:?}, last event ends at {last_event:?}"
        );
    }
}
