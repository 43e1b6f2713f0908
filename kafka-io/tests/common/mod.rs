//! Helpers shared by the integration tests: mock clusters, reading topics back, events.
#![allow(dead_code, unreachable_pub)]

pub mod broker;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, Position, Value};
use kafka_io::KafkaConfig;
use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::message::{Headers, Message};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::rdkafka::producer::DefaultProducerContext;
use kafka_io::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// The topic the sample events go to with the default namer.
pub const SAMPLE_TOPIC: &str = "demo.demo.dbo.items";

pub type Mock = MockCluster<'static, DefaultProducerContext>;

/// A mock cluster of `brokers` with `topics` created (name, partitions).
pub fn mock(brokers: i32, topics: &[(&str, i32)]) -> Mock {
    let mock = MockCluster::new(brokers).unwrap();
    for (topic, partitions) in topics {
        mock.create_topic(topic, *partitions, 1).unwrap();
    }
    mock
}

pub fn kafka(mock: &Mock) -> KafkaConfig {
    KafkaConfig::new(mock.bootstrap_servers())
}

/// Settings for consumer-group members on the mock cluster. The mock coordinator waits
/// `session.timeout.ms - 1 s` for members after any membership change (librdkafka's default
/// 45 s would make every new member wait 44 s), so tests use a short session.
pub fn kafka_for_groups(mock: &Mock) -> KafkaConfig {
    kafka(mock)
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The origin position from the `cdc.position` header.
    pub fn position(&self) -> Position {
        serde_json::from_slice(self.header(kafka_io::HEADER_POSITION).unwrap()).unwrap()
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The text of `column` in the record's Debezium JSON value: `after.<column>`, else
    /// `before.<column>` (a delete carries only a before image), under `payload` in the
    /// with-schema form. A JSON string as is, any other JSON value as JSON text; `None` for a
    /// tombstone, a record without the column or with `null` in it.
    pub fn column_text(&self, column: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(self.value.as_deref()?).unwrap();
        let envelope = value.get("payload").unwrap_or(&value);
        let image = ["after", "before"]
            .into_iter()
            .filter_map(|image| envelope.get(image))
            .find(|image| !image.is_null())?;
        match image.get(column)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// Every record of `topic` up to the high watermarks, in partition then offset order.
pub fn read_topic(config: &KafkaConfig, topic: &str, read_committed: bool) -> Vec<Read> {
    let mut client: ClientConfig = config.client_config();
    client
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    let consumer: BaseConsumer = client.create().unwrap();
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut targets = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout).unwrap();
        if high > low {
            targets.push((*p, high));
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .unwrap();
        }
    }
    let mut out = Vec::new();
    if targets.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    let started = Instant::now();
    loop {
        let positions = consumer.position().unwrap();
        let done = targets.iter().all(|(p, high)| {
            matches!(positions.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(at)) if at >= *high)
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reading {topic} timed out"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.unwrap();
            out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// `n` sample events whose primary keys cycle through `keys` values, so that each key gets
/// many changes.
pub fn keyed_events(stream: &str, n: usize, keys: i32) -> Vec<ChangeEvent> {
    let mut events = sample_events(stream, n);
    for (i, event) in events.iter_mut().enumerate() {
        let id = Value::I32(i as i32 % keys);
        for row in [&mut event.before, &mut event.after].into_iter().flatten() {
            row.0[0] = id.clone();
        }
    }
    events
}

/// The sequence number of a `Position::Sequence`.
pub fn seq(position: &Position) -> u64 {
    match position {
        Position::Sequence { seq, .. } => *seq,
        other => panic!("not a sequence position: {other}"),
    }
}

/// The committed offsets of `group` for `topic` partitions `0..partitions` (partitions without
/// a committed offset are left out).
pub fn try_committed(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    partitions: i32,
) -> kafka_io::rdkafka::error::KafkaResult<std::collections::HashMap<i32, i64>> {
    let mut client: ClientConfig = config.client_config();
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = client.create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, partitions - 1);
    Ok(consumer
        .committed_offsets(tpl, Duration::from_secs(10))?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// A name unique to this test run, so tests sharing a broker never share topics or groups.
pub fn unique(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// `n` keyed events whose topic (with the default namer) is [`topic_of`]`(prefix)`.
pub fn events_for(prefix: &str, n: usize) -> Vec<ChangeEvent> {
    keyed_events(prefix, n, 37)
        .into_iter()
        .map(|mut e| {
            e.source.name = prefix.into();
            e
        })
        .collect()
}

/// `<prefix>.demo.dbo.items`.
pub fn topic_of(prefix: &str) -> String {
    format!("{prefix}.demo.dbo.items")
}
