//! Checkpoints in a compacted Kafka topic: an [`OffsetStore`] and the reader the
//! transactional sink uses at start.
//!
//! Each pipeline writes its whole [`Checkpoint`] as JSON under its own key; compaction keeps
//! the last value per key. Readers use `isolation.level=read_committed`, so a checkpoint
//! written inside an aborted transaction is never seen (on a real broker).

use crate::auth::AuthContext;
use crate::{KafkaConfig, KafkaIoError};
use async_trait::async_trait;
use cdc_core::{Checkpoint, OffsetStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Reads the last committed checkpoint stored under `key` in `topic`, blocking: call it from
/// `spawn_blocking`. `None` if the topic or the key does not exist, or the last value is a
/// tombstone.
pub(crate) fn read_checkpoint(
    kafka: &KafkaConfig,
    topic: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<Checkpoint>, KafkaIoError> {
    let err = |operation, source| KafkaIoError::OffsetsTopic {
        topic: topic.to_string(),
        operation,
        source,
    };
    let mut config = kafka.client_config();
    config
        .set("group.id", format!("kafka-io-checkpoint-reader-{key}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<AuthContext> = config
        .create_with_context(kafka.auth_context())
        .map_err(|source| KafkaIoError::Client {
            role: "consumer",
            source,
        })?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| err("fetch metadata", e))?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if meta.error().is_some() || meta.partitions().is_empty() {
        return Ok(None);
    }
    // High watermarks under read_committed are the last stable offsets: reading up to them
    // sees every committed checkpoint and waits for no open transaction.
    let mut targets = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for partition in meta.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), timeout)
            .map_err(|e| err("fetch watermarks", e))?;
        if high > low {
            targets.push((partition.id(), high));
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .map_err(|e| err("assign", e))?;
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }
    consumer.assign(&assignment).map_err(|e| err("assign", e))?;
    let started = Instant::now();
    let mut last: Option<(i32, i64, Option<Vec<u8>>)> = None;
    let mut reached = vec![false; targets.len()];
    while !reached.iter().all(|&r| r) {
        if started.elapsed() > timeout {
            return Err(KafkaIoError::Timeout {
                operation: "reading the offsets topic",
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.map_err(|e| err("poll", e))?;
            if message.key() == Some(key.as_bytes()) {
                last = Some((
                    message.partition(),
                    message.offset(),
                    message.payload().map(<[u8]>::to_vec),
                ));
            }
        }
        // Control records (transaction markers) and aborted data move the position without
        // being returned, so compare positions rather than offsets seen.
        let positions = consumer.position().map_err(|e| err("position", e))?;
        for (i, (partition, high)) in targets.iter().enumerate() {
            if let Some(Offset::Offset(at)) = positions
                .find_partition(topic, *partition)
                .map(|e| e.offset())
                && at >= *high
            {
                reached[i] = true;
            }
        }
    }
    match last {
        Some((partition, offset, Some(value))) => {
            serde_json::from_slice(&value)
                .map(Some)
                .map_err(|source| KafkaIoError::BadCheckpoint {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    source,
                })
        }
        _ => Ok(None),
    }
}

/// An [`OffsetStore`] in a compacted Kafka topic.
///
/// Two modes:
/// - [`new`](Self::new): `save` produces the checkpoint in a Kafka transaction of its own
///   (transactional.id `cdc-offsets-<key>`, or [`transactional_id`](Self::transactional_id))
///   and waits for the commit. The transactional producer is what fences a second instance,
///   as Kafka Connect fences zombie source tasks (KIP-618): `load` first initialises the
///   producer, which bumps its epoch on the broker, so the older instance's next `save` fails
///   with [`KafkaIoError::Fenced`] (a [`cdc_core::offset::Fenced`] through
///   [`OffsetStore`]) instead of overwriting the newer instance's checkpoint;
/// - [`written_by_transactions`](Self::written_by_transactions): a
///   [`TransactionalSink`](crate::TransactionalSink) already writes the checkpoint inside each
///   transaction, so `save` does nothing and `load` reads what the last committed
///   transaction wrote.
///
/// ```no_run
/// use kafka_io::{KafkaConfig, KafkaOffsetStore};
/// # fn main() -> Result<(), kafka_io::KafkaIoError> {
/// let store = KafkaOffsetStore::new(KafkaConfig::new("localhost:9092"), "cdc.offsets", "orders-pipeline")?;
/// # Ok(()) }
/// ```
pub struct KafkaOffsetStore {
    kafka: KafkaConfig,
    topic: String,
    key: String,
    writer: Option<Writer>,
    timeout: Duration,
}

/// The transactional producer of a store that saves its own checkpoints.
struct Writer {
    producer: FutureProducer<AuthContext>,
    transactional_id: String,
    /// Set once `init_transactions` succeeded (which fences every older instance).
    initialised: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for KafkaOffsetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOffsetStore")
            .field("kafka", &self.kafka)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field(
                "transactional_id",
                &self.writer.as_ref().map(|w| &w.transactional_id),
            )
            .finish_non_exhaustive()
    }
}

impl KafkaOffsetStore {
    /// A store that saves under `key` in `topic`.
    pub fn new(
        kafka: KafkaConfig,
        topic: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<Self, KafkaIoError> {
        let store = Self::written_by_transactions(kafka, topic, key)?;
        let transactional_id = format!("cdc-offsets-{}", store.key);
        store.with_writer(transactional_id)
    }

    /// Saves under the transactional.id `id` instead of `cdc-offsets-<key>` (only for a store
    /// made with [`new`](Self::new); two instances fence each other only if they share it).
    pub fn transactional_id(self, id: impl Into<String>) -> Result<Self, KafkaIoError> {
        let id = id.into();
        if id.trim().is_empty() {
            return Err(KafkaIoError::config(
                "transactional_id",
                "must not be empty",
            ));
        }
        if self.writer.is_none() {
            return Err(KafkaIoError::config(
                "transactional_id",
                "a store written by transactions saves nothing itself",
            ));
        }
        self.with_writer(id)
    }

    fn with_writer(mut self, transactional_id: String) -> Result<Self, KafkaIoError> {
        let mut config = crate::producer::producer_config(&self.kafka);
        config.set("transactional.id", &transactional_id).set(
            "transaction.timeout.ms",
            self.timeout.as_millis().to_string(),
        );
        let producer = config
            .create_with_context(self.kafka.auth_context())
            .map_err(|source| KafkaIoError::Client {
                role: "producer",
                source,
            })?;
        self.writer = Some(Writer {
            producer,
            transactional_id,
            initialised: tokio::sync::OnceCell::new(),
        });
        Ok(self)
    }

    /// A store whose checkpoints a [`TransactionalSink`](crate::TransactionalSink) writes:
    /// `load` reads them, `save` does nothing.
    pub fn written_by_transactions(
        kafka: KafkaConfig,
        topic: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<Self, KafkaIoError> {
        let (topic, key) = (topic.into(), key.into());
        kafka.validate()?;
        if topic.trim().is_empty() {
            return Err(KafkaIoError::config("offsets_topic", "must not be empty"));
        }
        if key.is_empty() {
            return Err(KafkaIoError::config("checkpoint_key", "must not be empty"));
        }
        Ok(Self {
            kafka,
            topic,
            key,
            writer: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// How long `load` and `save` may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn store_name(&self) -> String {
        format!("kafka:{}/{}", self.topic, self.key)
    }

    /// Initialises the transactional producer once, fencing every older instance that shares
    /// its transactional.id (and aborting a transaction one of them left open).
    async fn initialised(&self) -> Result<Option<&Writer>, KafkaIoError> {
        let Some(writer) = &self.writer else {
            return Ok(None);
        };
        writer
            .initialised
            .get_or_try_init(|| {
                let producer = writer.producer.clone();
                let (id, timeout) = (writer.transactional_id.clone(), self.timeout);
                async move {
                    tokio::task::spawn_blocking(move || producer.init_transactions(timeout))
                        .await
                        .map_err(|e| KafkaIoError::Task(Box::new(e)))?
                        .map_err(|source| self.transaction_error(&id, "init transactions", source))
                }
            })
            .await?;
        Ok(Some(writer))
    }

    fn transaction_error(
        &self,
        transactional_id: &str,
        operation: &'static str,
        source: rdkafka::error::KafkaError,
    ) -> KafkaIoError {
        let fatal = self
            .writer
            .as_ref()
            .and_then(|w| w.producer.client().fatal_error())
            .map(|(code, _)| code);
        if crate::error::is_fenced_given(&source, fatal) {
            KafkaIoError::Fenced {
                transactional_id: transactional_id.to_string(),
                source,
            }
        } else {
            KafkaIoError::OffsetsTopic {
                topic: self.topic.clone(),
                operation,
                source,
            }
        }
    }

    /// The last committed checkpoint. A store that saves its own checkpoints first fences
    /// every older instance, so nothing can overwrite what this load returns.
    pub async fn load_checkpoint(&self) -> Result<Option<Checkpoint>, KafkaIoError> {
        self.initialised().await?;
        let (kafka, topic, key, timeout) = (
            self.kafka.clone(),
            self.topic.clone(),
            self.key.clone(),
            self.timeout,
        );
        tokio::task::spawn_blocking(move || read_checkpoint(&kafka, &topic, &key, timeout))
            .await
            .map_err(|e| KafkaIoError::Task(Box::new(e)))?
    }

    /// Writes `checkpoint` in a transaction and waits for the commit (a no-op for a store
    /// written by transactions). Fails with [`KafkaIoError::Fenced`] once a newer instance
    /// has loaded.
    pub async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), KafkaIoError> {
        let Some(writer) = self.initialised().await? else {
            return Ok(());
        };
        let id = writer.transactional_id.as_str();
        let value =
            serde_json::to_vec(checkpoint).map_err(|source| KafkaIoError::BadCheckpoint {
                topic: self.topic.clone(),
                partition: -1,
                offset: -1,
                source,
            })?;
        let producer = writer.producer.clone();
        tokio::task::spawn_blocking(move || producer.begin_transaction())
            .await
            .map_err(|e| KafkaIoError::Task(Box::new(e)))?
            .map_err(|source| self.transaction_error(id, "begin transaction", source))?;
        let record = FutureRecord::to(&self.topic)
            .key(self.key.as_bytes())
            .payload(&value);
        let sent = writer
            .producer
            .send(record, self.timeout)
            .await
            .map(drop)
            .map_err(|(source, _)| source);
        let producer = writer.producer.clone();
        let timeout = self.timeout;
        let ended = tokio::task::spawn_blocking(move || match sent {
            Ok(_) => producer
                .commit_transaction(timeout)
                .map_err(|source| ("commit transaction", source)),
            Err(source) => {
                // Best effort: a fenced producer cannot abort, and the broker aborts an
                // abandoned transaction after transaction.timeout.ms anyway.
                let _ = producer.abort_transaction(timeout);
                Err(("save", source))
            }
        })
        .await
        .map_err(|e| KafkaIoError::Task(Box::new(e)))?;
        ended.map_err(|(operation, source)| self.transaction_error(id, operation, source))
    }
}

#[async_trait]
impl OffsetStore for KafkaOffsetStore {
    async fn load(&self) -> cdc_core::Result<Option<Checkpoint>> {
        self.load_checkpoint()
            .await
            .map_err(|e| e.into_store_error(&self.store_name()))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> cdc_core::Result<()> {
        self.save_checkpoint(checkpoint)
            .await
            .map_err(|e| e.into_store_error(&self.store_name()))
    }
}
