//! The producer core both sinks are built on: one librdkafka producer with its delivery
//! tracker and per-source-partition ticket queues, the properties this crate sets, batch encoding,
//! queueing the records of events, and waiting for their deliveries.
//!
//! [`KafkaSink`](crate::KafkaSink) reports what [`ProducerCore::advance`] pops;
//! [`TransactionalSink`](crate::TransactionalSink) uses the same queues only to surface failed
//! deliveries early, because its positions become durable with the transaction's commit.

use crate::delivery::{DeliveryContext, DeliveryTracker, Failure, PartitionQueues};
use crate::record::{OutRecord, records_for};
use crate::{KafkaConfig, KafkaIoError, TopicNamer};
use cdc_core::{ChangeEvent, EventCodec, Position};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) type DeliveryProducer = ThreadedProducer<DeliveryContext>;

/// A record that could not be queued: the event's position, the record's topic, the error.
pub(crate) type QueueFailure = (Position, String, KafkaError);

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

/// One producer, its delivery tracker and the events it has in flight per source partition.
pub(crate) struct ProducerCore {
    pub(crate) producer: Arc<DeliveryProducer>,
    tracker: DeliveryTracker,
    queues: PartitionQueues,
}

impl ProducerCore {
    /// A producer for `kafka` with `extra` properties set last (e.g. `transactional.id`).
    pub(crate) fn new(kafka: &KafkaConfig, extra: &[(&str, &str)]) -> Result<Self, KafkaIoError> {
        let context = DeliveryContext {
            auth: kafka.auth_context(),
            ..DeliveryContext::default()
        };
        let tracker = context.tracker.clone();
        let mut config = producer_config(kafka);
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let producer =
            config
                .create_with_context(context)
                .map_err(|source| KafkaIoError::Client {
                    role: "producer",
                    source,
                })?;
        Ok(Self {
            producer: Arc::new(producer),
            tracker,
            queues: PartitionQueues::default(),
        })
    }

    /// Messages queued or sent but not yet acknowledged by the brokers.
    pub(crate) fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    /// Whether no event waits for its deliveries.
    pub(crate) fn is_idle(&self) -> bool {
        self.queues.is_empty()
    }

    /// Forgets the queues (after a transaction commit made them durable).
    pub(crate) fn clear_queues(&mut self) {
        self.queues = PartitionQueues::default();
    }

    /// Queues `encoded[i]` for `events[i]`, each event under a ticket in its source partition's queue. A record
    /// that cannot even be queued fails its ticket and stops the batch: nothing from that
    /// event on is ever reported.
    pub(crate) async fn send_events(
        &mut self,
        events: &[&ChangeEvent],
        encoded: &[Vec<OutRecord>],
    ) -> Result<(), Box<QueueFailure>> {
        let tickets: Vec<u64> = events
            .iter()
            .map(|e| self.queues.push(e.position()))
            .collect();
        self.tracker.expect_all(
            tickets
                .iter()
                .zip(encoded)
                .map(|(&t, r)| (t, r.len() as u32)),
        );
        for ((ticket, records), event) in tickets.into_iter().zip(encoded).zip(events) {
            for record in records {
                if let Err(source) = self.send(record, ticket).await {
                    self.tracker.fail(ticket, &record.topic, source.clone());
                    return Err(Box::new((
                        event.position().clone(),
                        record.topic.clone(),
                        source,
                    )));
                }
            }
        }
        Ok(())
    }

    /// Queues one record outside the source partitions' queues (a transaction's checkpoint) under `ticket`.
    pub(crate) async fn send_record(
        &self,
        record: &OutRecord,
        ticket: u64,
    ) -> Result<(), KafkaError> {
        self.tracker.expect(ticket, 1);
        self.send(record, ticket).await
    }

    /// Pops every source partition's delivered prefix: the last delivered position per source partition, or the first
    /// failed delivery at the front of a source partition's queue.
    pub(crate) fn advance(&mut self) -> Result<Vec<Position>, Failure> {
        self.queues.advance(&self.tracker)
    }

    /// Queues one record, waiting (without blocking the runtime) while librdkafka's queue
    /// is full.
    async fn send(&self, record: &OutRecord, ticket: u64) -> Result<(), KafkaError> {
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
            match self.producer.send::<[u8], [u8]>(base) {
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
    /// Not `Producer::flush`: its wait polls the delivery queue that the producer's own
    /// polling thread also serves, so it sleeps in 100 ms steps. Instead this asks librdkafka
    /// to send lingering messages now (a zero-timeout flush) and watches the tracker, which
    /// the polling thread updates as reports arrive.
    pub(crate) async fn wait_for_deliveries(&self, timeout: Duration) -> Result<(), KafkaIoError> {
        let started = Instant::now();
        let mut wait = Duration::from_micros(250);
        while self.tracker.in_flight() > 0 {
            if started.elapsed() >= timeout {
                return Err(KafkaIoError::Timeout {
                    operation: "flush",
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            // Only wakes the brokers' threads; the time-out result is expected.
            let _ = self.producer.flush(Duration::ZERO);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(5));
        }
        Ok(())
    }
}

/// Below this many events a batch is encoded on the calling thread.
const PARALLEL_ENCODE_MIN: usize = 256;

/// The cores large batches are encoded on (at most 4). Asked once: on Linux std does not cache
/// `available_parallelism`, which reads the cgroup CPU quota files at every call.
fn encode_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    })
}

/// Encodes a batch, in order. Encoding is CPU-bound and runs on the caller's thread either
/// way; large batches are split over scoped threads (up to the available cores, at most 4) so
/// that the codec keeps up with librdkafka's own threads.
pub(crate) fn encode_all(
    events: &[&ChangeEvent],
    codec: &dyn EventCodec,
    namer: &dyn TopicNamer,
    tombstones: bool,
) -> Result<Vec<Vec<OutRecord>>, KafkaIoError> {
    let threads = if events.len() < PARALLEL_ENCODE_MIN {
        1
    } else {
        encode_threads()
    };
    if threads < 2 {
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
