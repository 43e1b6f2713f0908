//! The producer sink: events to a topic per table, many messages in flight, positions
//! reported durable only once delivered in lane order.

use crate::delivery::{DeliveryContext, DeliveryTracker, LaneQueues};
use crate::record::{OutRecord, records_for};
use crate::{DefaultTopicNamer, KafkaConfig, KafkaIoError, TopicCreator, TopicNamer, TopicSpec};
use async_trait::async_trait;
use cdc_core::{ChangeEvent, EventCodec, Position, Sink};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) type DeliveryProducer = ThreadedProducer<DeliveryContext>;

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
        let context = DeliveryContext {
            auth: self.kafka.auth_context(),
            ..DeliveryContext::default()
        };
        let tracker = context.tracker.clone();
        let producer = producer_config(&self.kafka)
            .create_with_context(context)
            .map_err(|source| KafkaIoError::Client {
                role: "producer",
                source,
            })?;
        Ok(KafkaSink {
            name: self.name,
            producer: Arc::new(producer),
            tracker,
            lanes: LaneQueues::default(),
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

/// The producer properties this crate sets before the user's pass-through ones.
pub(crate) fn producer_config(kafka: &KafkaConfig) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    // Idempotence gives ordered, duplicate-free retries per partition (acks=all, bounded
    // in-flight requests); a user may still turn it off through a pass-through property.
    config.set("enable.idempotence", "true");
    for (key, value) in kafka.client_config().config_map() {
        config.set(key, value);
    }
    config
}

/// A [`Sink`] producing each event to its table's topic.
///
/// - key and value come from the codec; a tombstone follows each delete (configurable);
/// - headers [`HEADER_OP`](crate::HEADER_OP), [`HEADER_TABLE`](crate::HEADER_TABLE) and
///   [`HEADER_POSITION`](crate::HEADER_POSITION) say what the record is;
/// - `write` only queues messages (librdkafka batches and sends them in the background) and
///   returns the positions whose messages, and all before them in the lane, were delivered;
/// - `flush` waits for every delivery; a failed delivery is a [`KafkaIoError::Delivery`]
///   naming the position, and nothing at or after it in its lane is reported;
/// - the idempotent producer (`enable.idempotence=true`) keeps per-partition order across
///   retries; replays after a restart produce duplicates (at-least-once). For exactly-once
///   use [`TransactionalSink`](crate::TransactionalSink).
pub struct KafkaSink {
    name: String,
    producer: Arc<DeliveryProducer>,
    tracker: DeliveryTracker,
    lanes: LaneQueues,
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
            .field("in_flight", &self.tracker.in_flight())
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
        self.tracker.in_flight()
    }

    async fn write_events(
        &mut self,
        events: &[ChangeEvent],
    ) -> Result<Vec<Position>, KafkaIoError> {
        if self.failed {
            return Err(KafkaIoError::Poisoned);
        }
        let encoded = encode_all(
            events,
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
        let tickets: Vec<u64> = events
            .iter()
            .map(|e| self.lanes.push(e.position()))
            .collect();
        self.tracker.expect_all(
            tickets
                .iter()
                .zip(&encoded)
                .map(|(&t, r)| (t, r.len() as u32)),
        );
        for ((ticket, records), event) in tickets.into_iter().zip(&encoded).zip(events) {
            for record in records {
                if let Err(source) = send(&self.producer, record, ticket).await {
                    // Not even queued: stop here; nothing from this event on is reported.
                    self.tracker.fail(ticket, &record.topic, source.clone());
                    return Err(KafkaIoError::Delivery {
                        position: Box::new(event.position().clone()),
                        topic: record.topic.clone(),
                        source,
                    });
                }
            }
        }
        self.advance()
    }

    fn advance(&mut self) -> Result<Vec<Position>, KafkaIoError> {
        self.lanes.advance(&self.tracker).map_err(|failure| {
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
        flush_producer(&self.producer, &self.tracker, self.flush_timeout).await?;
        let durable = self.advance()?;
        if !self.lanes.is_empty() {
            return Err(KafkaIoError::FlushTimeout {
                in_flight: self.tracker.in_flight(),
            });
        }
        Ok(durable)
    }
}

/// Below this many events a batch is encoded on the calling thread.
const PARALLEL_ENCODE_MIN: usize = 256;

/// Encodes a batch, in order. Encoding is CPU-bound and runs on the caller's thread either
/// way; large batches are split over scoped threads (up to the available cores, at most 4) so
/// that the codec keeps up with librdkafka's own threads.
pub(crate) fn encode_all(
    events: &[ChangeEvent],
    codec: &dyn EventCodec,
    namer: &dyn TopicNamer,
    tombstones: bool,
) -> Result<Vec<Vec<OutRecord>>, KafkaIoError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    if events.len() < PARALLEL_ENCODE_MIN || threads < 2 {
        return events
            .iter()
            .map(|e| records_for(e, codec, namer, tombstones))
            .collect();
    }
    let chunk = events.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Vec<OutRecord>>, KafkaIoError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = events
            .chunks(chunk)
            .skip(1)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| records_for(e, codec, namer, tombstones))
                        .collect()
                })
            })
            .collect();
        let first = events[..chunk.min(events.len())]
            .iter()
            .map(|e| records_for(e, codec, namer, tombstones))
            .collect();
        std::iter::once(first)
            .chain(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(KafkaIoError::Task("encoder thread panicked".into())))
            }))
            .collect()
    });
    let mut out = Vec::with_capacity(events.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Queues one record, waiting (without blocking the runtime) while librdkafka's queue is full.
pub(crate) async fn send(
    producer: &DeliveryProducer,
    record: &OutRecord,
    ticket: u64,
) -> Result<(), KafkaError> {
    let mut backoff = Duration::from_micros(200);
    loop {
        let mut base = BaseRecord::with_opaque_to(&record.topic, ticket as usize)
            .headers(record.owned_headers());
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        match producer.send::<[u8], [u8]>(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // The polling thread serves delivery reports meanwhile and frees room.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(20));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Waits until every message was delivered or failed.
///
/// Not `Producer::flush`: its wait polls the delivery queue that the producer's own polling
/// thread also serves, so it sleeps in 100 ms steps. Instead this asks librdkafka to send
/// lingering messages now (a zero-timeout flush) and watches the tracker, which the polling
/// thread updates as reports arrive.
pub(crate) async fn flush_producer(
    producer: &Arc<DeliveryProducer>,
    tracker: &DeliveryTracker,
    timeout: Duration,
) -> Result<(), KafkaIoError> {
    let started = Instant::now();
    let mut wait = Duration::from_micros(250);
    while tracker.in_flight() > 0 {
        if started.elapsed() >= timeout {
            return Err(KafkaIoError::Timeout {
                operation: "flush",
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        // Only wakes the brokers' threads; the time-out result is expected.
        let _ = producer.flush(Duration::ZERO);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(5));
    }
    Ok(())
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
