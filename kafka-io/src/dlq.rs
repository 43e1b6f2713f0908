//! What happens to a record the codec cannot decode.

use crate::auth::AuthContext;
use crate::{KafkaConfig, KafkaIoError};
use cdc_core::Position;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

/// Header on a dead-lettered record: why it could not be decoded (the error chain).
pub const DLQ_HEADER_REASON: &str = "dlq.reason";
/// Header on a dead-lettered record: the topic it was read from.
pub const DLQ_HEADER_TOPIC: &str = "dlq.source.topic";
/// Header on a dead-lettered record: its partition, in decimal.
pub const DLQ_HEADER_PARTITION: &str = "dlq.source.partition";
/// Header on a dead-lettered record: its offset, in decimal.
pub const DLQ_HEADER_OFFSET: &str = "dlq.source.offset";
/// Header on a dead-lettered record: the codec that failed (`debezium-json`).
pub const DLQ_HEADER_CODEC: &str = "dlq.codec";

/// What the consumer source does with a record it cannot decode (a poison record).
///
/// ```
/// use kafka_io::DecodeFailurePolicy;
/// let policy = DecodeFailurePolicy::DeadLetter { topic: "cdc.dlq".into() };
/// assert_ne!(policy, DecodeFailurePolicy::Fail);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeFailurePolicy {
    /// Stop with [`KafkaIoError::Decode`] naming the position (the default: nothing is lost
    /// silently).
    #[default]
    Fail,
    /// Log a warning and go on; the record's offset is committed with the ones after it.
    Skip,
    /// Copy the record (key, value, headers) to `topic` with `dlq.*` headers saying why and
    /// where it came from, wait for that delivery, then go on.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// Writes poison records to the dead-letter topic.
pub(crate) struct DeadLetterWriter {
    producer: FutureProducer<AuthContext>,
    topic: String,
    timeout: Duration,
}

/// A record that could not be decoded, and where it came from.
pub(crate) struct Poison<'a> {
    pub(crate) position: &'a Position,
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(String, Vec<u8>)],
    pub(crate) reason: String,
    pub(crate) codec: &'a str,
}

impl DeadLetterWriter {
    pub(crate) fn new(kafka: &KafkaConfig, topic: String) -> Result<Self, KafkaIoError> {
        if topic.trim().is_empty() {
            return Err(KafkaIoError::config(
                "decode_failure_policy.topic",
                "must not be empty",
            ));
        }
        let producer = crate::producer::producer_config(kafka)
            .create_with_context(kafka.auth_context())
            .map_err(|source| KafkaIoError::Client {
                role: "dead-letter producer",
                source,
            })?;
        Ok(Self {
            producer,
            topic,
            timeout: Duration::from_secs(60),
        })
    }

    /// Writes the record and waits for its delivery, so that committing later offsets never
    /// loses it.
    pub(crate) async fn write(&self, poison: Poison<'_>) -> Result<(), KafkaIoError> {
        let partition = poison.partition.to_string();
        let offset = poison.offset.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(poison.headers.len() + 5);
        for (key, value) in poison.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let dlq: [(&str, &[u8]); 5] = [
            (DLQ_HEADER_REASON, poison.reason.as_bytes()),
            (DLQ_HEADER_TOPIC, poison.topic.as_bytes()),
            (DLQ_HEADER_PARTITION, partition.as_bytes()),
            (DLQ_HEADER_OFFSET, offset.as_bytes()),
            (DLQ_HEADER_CODEC, poison.codec.as_bytes()),
        ];
        for (key, value) in dlq {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = poison.key {
            record = record.key(key);
        }
        if let Some(value) = poison.value {
            record = record.payload(value);
        }
        self.producer
            .send(record, self.timeout)
            .await
            .map_err(|(source, _)| KafkaIoError::DeadLetter {
                position: Box::new(poison.position.clone()),
                topic: self.topic.clone(),
                source,
            })?;
        Ok(())
    }
}
