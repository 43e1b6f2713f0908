//! The producer sink: events to a topic per table, many messages in flight, positions
//! reported durable only once delivered in source-partition order.

use crate::producer::{ProducerCore, encode_all};
use crate::{DefaultTopicNamer, KafkaConfig, KafkaIoError, TopicCreator, TopicNamer, TopicSpec};
use async_trait::async_trait;
use cdc_core::{ChangeEvent, EventCodec, Position, Sink};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`KafkaSink`]; [`build`](Self::build) validates every field and names the bad one.
///
/// ```no_run
/// use std::sync::Arc;
/// use cdc_core::DebeziumJson;
/// use kafka_io::{KafkaConfig, KafkaSink, TopicSpec};
/// # fn main() -> Result<(), kafka_io::KafkaIoError> {
/// let sink = KafkaSink::builder(KafkaConfig::new("localhost:9092"), Arc::new(DebeziumJson::schemaless()))
///     .name("orders-to-kafka")
///     .create_topics(TopicSpec::new(6, 3))
///     .build()?;
/// # Ok(()) }
/// ```
pub struct KafkaSinkBuilder {
    kafka: KafkaConfig,
    codec: Arc<dyn EventCodec>,
    namer: Arc<dyn TopicNamer>,
    name: String,
    tombstones: bool,
    flush_timeout: Duration,
    create_topics: Option<TopicSpec>,
}

impl std::fmt::Debug for KafkaSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSinkBuilder")
            .field("kafka", &self.kafka)
            .field("codec", &self.codec.name())
            .field("name", &self.name)
            .field("tombstones", &self.tombstones)
            .field("flush_timeout", &self.flush_timeout)
            .field("create_topics", &self.create_topics)
            .finish_non_exhaustive()
    }
}

impl KafkaSinkBuilder {
    /// Name for logs and errors (default `kafka`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How topics are named (default [`DefaultTopicNamer`]).
    pub fn topic_namer(mut self, namer: impl TopicNamer + 'static) -> Self {
        self.namer = Arc::new(namer);
        self
    }

    /// Whether a tombstone follows each delete (default on).
    pub fn tombstones(mut self, on: bool) -> Self {
        self.tombstones = on;
        self
    }

    /// How long a flush waits for deliveries before failing (default 5 minutes, a little
    /// more than librdkafka's `message.timeout.ms` so that its own retries come first).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Create each topic through the admin client before its first message.
    pub fn create_topics(mut self, spec: TopicSpec) -> Self {
        self.create_topics = Some(spec);
        self
    }

    /// The sink; fails naming the first invalid field.
    pub fn build(self) -> Result<KafkaSink, KafkaIoError> {
        if self.name.trim().is_empty() {
            return Err(KafkaIoError::config("name", "must not be empty"));
        }
        if self.flush_timeout.is_zero() {
            return Err(KafkaIoError::config(
                "flush_timeout",
                "must be greater than zero",
            ));
        }
        self.kafka.validate()?;
        let creator = match self.create_topics {
            Some(spec) => Some(TopicCreator::new(&self.kafka, spec)?),
            None => None,
        };
        Ok(KafkaSink {
            name: self.name,
            core: ProducerCore::new(&self.kafka, &[])?,
            codec: self.codec,
            namer: self.namer,
            tombstones: self.tombstones,
            flush_timeout: self.flush_timeout,
            creator,
            created: HashSet::new(),
            failed: false,
        })
    }
}

/// A [`Sink`] producing each event to its table's topic.
///
/// - key and value come from the codec; a tombstone follows each delete (configurable);
/// - headers [`HEADER_OP`](crate::HEADER_OP), [`HEADER_TABLE`](crate::HEADER_TABLE) and
///   [`HEADER_POSITION`](crate::HEADER_POSITION) say what the record is;
/// - `write` only queues messages (librdkafka batches and sends them in the background) and
///   returns the positions whose messages, and all before them in their source partition, were delivered;
/// - `flush` waits for every delivery; a failed delivery is a [`KafkaIoError::Delivery`]
///   naming the position, and nothing at or after it in its source partition is reported;
/// - the idempotent producer (`enable.idempotence=true`) keeps per-partition order across
///   retries; replays after a restart produce duplicates (at-least-once). For exactly-once
///   use [`TransactionalSink`](crate::TransactionalSink).
pub struct KafkaSink {
    name: String,
    core: ProducerCore,
    codec: Arc<dyn EventCodec>,
    namer: Arc<dyn TopicNamer>,
    tombstones: bool,
    flush_timeout: Duration,
    creator: Option<TopicCreator>,
    created: HashSet<String>,
    failed: bool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("codec", &self.codec.name())
            .field("tombstones", &self.tombstones)
            .field("in_flight", &self.core.in_flight())
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A builder producing to `kafka` with `codec`.
    pub fn builder(kafka: KafkaConfig, codec: Arc<dyn EventCodec>) -> KafkaSinkBuilder {
        KafkaSinkBuilder {
            kafka,
            codec,
            namer: Arc::new(DefaultTopicNamer::new()),
            name: "kafka".into(),
            tombstones: true,
            flush_timeout: Duration::from_secs(300),
            create_topics: None,
        }
    }

    /// Messages queued or sent but not yet acknowledged by the brokers.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    async fn write_events(
        &mut self,
        events: &[ChangeEvent],
    ) -> Result<Vec<Position>, KafkaIoError> {
        if self.failed {
            return Err(KafkaIoError::Poisoned);
        }
        let refs: Vec<&ChangeEvent> = events.iter().collect();
        let encoded = encode_all(
            &refs,
            self.codec.as_ref(),
            self.namer.as_ref(),
            self.tombstones,
        )?;
        if let Some(creator) = &self.creator {
            for record in encoded.iter().flatten() {
                if !self.created.contains(&record.topic) {
                    creator.ensure(&record.topic).await?;
                    self.created.insert(record.topic.clone());
                }
            }
        }
        if let Err(failure) = self.core.send_events(&refs, &encoded).await {
            let (position, topic, source) = *failure;
            return Err(KafkaIoError::Delivery {
                position: Box::new(position),
                topic,
                source,
            });
        }
        self.advance()
    }

    fn advance(&mut self) -> Result<Vec<Position>, KafkaIoError> {
        self.core.advance().map_err(|failure| {
            let (position, topic, source) = *failure;
            KafkaIoError::Delivery {
                position: Box::new(position),
                topic,
                source,
            }
        })
    }

    async fn flush_all(&mut self) -> Result<Vec<Position>, KafkaIoError> {
        if self.failed {
            return Err(KafkaIoError::Poisoned);
        }
        self.core.wait_for_deliveries(self.flush_timeout).await?;
        let durable = self.advance()?;
        if !self.core.is_idle() {
            return Err(KafkaIoError::FlushTimeout {
                in_flight: self.core.in_flight(),
            });
        }
        Ok(durable)
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        let result = self.write_events(events).await;
        result.map_err(|e| {
            self.failed = true;
            e.into_sink_error(&self.name)
        })
    }

    async fn tick(&mut self) -> cdc_core::Result<Vec<Position>> {
        let result = if self.failed {
            Err(KafkaIoError::Poisoned)
        } else {
            self.advance()
        };
        result.map_err(|e| {
            self.failed = true;
            e.into_sink_error(&self.name)
        })
    }

    async fn flush(&mut self) -> cdc_core::Result<Vec<Position>> {
        let result = self.flush_all().await;
        result.map_err(|e| {
            self.failed = true;
            e.into_sink_error(&self.name)
        })
    }
}
