//! The crate's error type.

use cdc_core::Position;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Everything that can go wrong in this crate.
///
/// At the cdc-core trait boundaries it becomes the `source` of [`cdc_core::Error::Sink`] or
/// [`cdc_core::Error::Source`], so `downcast_ref::<KafkaIoError>()` on the chain recovers it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaIoError {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// librdkafka refused to create a client from the configuration.
    #[error("cannot create the Kafka {role}")]
    Client {
        /// Which client (`producer`, `consumer`, `admin client`).
        role: &'static str,
        /// The cause.
        source: KafkaError,
    },
    /// An event could not be encoded by the codec.
    #[error("cannot encode the event at {position}")]
    Encode {
        /// The event's position.
        position: Box<Position>,
        /// The codec's error (boxed: errors are rare, results stay small).
        source: Box<cdc_core::Error>,
    },
    /// A message could not be queued or delivered; nothing at or after `position` in its source partition
    /// was reported durable.
    #[error("delivery of the event at {position} to topic {topic} failed")]
    Delivery {
        /// The event whose message failed.
        position: Box<Position>,
        /// The topic it was sent to.
        topic: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// A flush did not see every message delivered in time.
    #[error("flush timed out with {in_flight} messages in flight")]
    FlushTimeout {
        /// Messages not yet acknowledged by the brokers.
        in_flight: usize,
    },
    /// Another producer with the same `transactional.id` took over: this one must stop.
    #[error("producer {transactional_id} was fenced by a newer instance")]
    Fenced {
        /// The transactional id.
        transactional_id: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// A transaction operation failed (the transaction was aborted if it could be).
    #[error("transaction {operation} failed (aborted: {aborted})")]
    Transaction {
        /// `init`, `begin`, `commit`, `abort`.
        operation: &'static str,
        /// Whether the open transaction was aborted, so none of its messages are visible.
        aborted: bool,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// A topic could not be created.
    #[error("cannot create topic {topic}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// librdkafka's or the broker's error.
        source: KafkaError,
    },
    /// The consumer failed (subscribe, poll, store or commit offsets).
    #[error("consumer {operation} failed")]
    Consumer {
        /// What it was doing.
        operation: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Another live consumer uses this consumer's `group.instance.id` (static membership): the
    /// broker fenced this member (FencedInstanceId) again within `window` of the new consumer
    /// built after the previous fencing. One fencing follows a broker outage longer than
    /// `session.timeout.ms` and is recovered from; a second one that soon means two processes
    /// take the membership from each other, which only a configuration change ends.
    #[error(
        "consumer fenced twice within {window:?}: another live consumer of the group uses group.instance.id {group_instance_id:?}; give each process its own group.instance.id"
    )]
    DuplicateGroupInstanceId {
        /// The `group.instance.id` in use twice.
        group_instance_id: String,
        /// How soon after the rebuild the second fencing came.
        window: std::time::Duration,
        /// librdkafka's fatal error.
        source: KafkaError,
    },
    /// A record could not be decoded and the policy says fail.
    #[error("cannot decode the record at {position}")]
    Decode {
        /// Where the record is.
        position: Box<Position>,
        /// The codec's error (boxed: errors are rare, results stay small).
        source: Box<cdc_core::Error>,
    },
    /// A poison record could not be written to the dead-letter topic.
    #[error("cannot write the record at {position} to dead-letter topic {topic}")]
    DeadLetter {
        /// Where the poison record is.
        position: Box<Position>,
        /// The dead-letter topic.
        topic: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// An acknowledged position is not a Kafka position of this source.
    #[error("position {position} is not a Kafka position")]
    NotKafkaPosition {
        /// The position passed to `ack`.
        position: Box<Position>,
    },
    /// The offsets topic holds a value that is not a checkpoint.
    #[error(
        "offsets topic {topic} holds an unreadable checkpoint at partition {partition} offset {offset}"
    )]
    BadCheckpoint {
        /// The offsets topic.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Reading or writing the offsets topic failed.
    #[error("offsets topic {topic}: {operation} failed")]
    OffsetsTopic {
        /// The offsets topic.
        topic: String,
        /// What was being done.
        operation: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {seconds:.1} s")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// How long it waited.
        seconds: f64,
    },
    /// The sink already failed; the pipeline must restart it from the last acknowledged position.
    #[error("the sink failed earlier and cannot be used again")]
    Poisoned,
    /// A blocking task on the runtime's blocking pool (or an encoder thread) panicked or was
    /// cancelled; the source is tokio's [`JoinError`](tokio::task::JoinError) where there is one.
    #[error("background task failed")]
    Task(#[source] cdc_core::BoxError),
}

impl KafkaIoError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        KafkaIoError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The position this error is about, if any.
    pub fn position(&self) -> Option<&Position> {
        match self {
            KafkaIoError::Encode { position, .. }
            | KafkaIoError::Delivery { position, .. }
            | KafkaIoError::Decode { position, .. }
            | KafkaIoError::DeadLetter { position, .. }
            | KafkaIoError::NotKafkaPosition { position } => Some(&**position),
            _ => None,
        }
    }

    /// This error as a [`cdc_core::Error::Sink`] of the sink `name`.
    pub fn into_sink_error(self, name: &str) -> cdc_core::Error {
        match self {
            KafkaIoError::Config { field, reason } => cdc_core::Error::config(field, reason),
            other => cdc_core::Error::Sink {
                name: name.to_string(),
                position: other.position().cloned(),
                source: Box::new(other),
            },
        }
    }

    /// This error as a [`cdc_core::Error::Source`] of the source `name`.
    pub fn into_source_error(self, name: &str) -> cdc_core::Error {
        match self {
            KafkaIoError::Config { field, reason } => cdc_core::Error::config(field, reason),
            other => cdc_core::Error::Source {
                name: name.to_string(),
                position: other.position().cloned(),
                source: Box::new(other),
            },
        }
    }

    /// This error as a [`cdc_core::Error::OffsetStore`] of the store `store`.
    ///
    /// A [`Fenced`](Self::Fenced) producer becomes a [`cdc_core::offset::Fenced`] (with this
    /// error as its source), so [`cdc_core::Error::is_fenced`] recognises it as it does for
    /// every other store.
    pub fn into_store_error(self, store: &str) -> cdc_core::Error {
        let source: cdc_core::BoxError = match &self {
            KafkaIoError::Fenced {
                transactional_id, ..
            } => Box::new(cdc_core::offset::Fenced {
                store: store.to_string(),
                detail: format!(
                    "producer {transactional_id} was fenced by a newer instance with the same transactional.id"
                ),
                source: Some(Box::new(self)),
            }),
            _ => Box::new(self),
        };
        cdc_core::Error::OffsetStore {
            store: store.to_string(),
            source,
        }
    }
}

/// Whether librdkafka's error means that this producer was fenced.
pub(crate) fn is_fenced(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::Transaction(e) => e.code(),
        other => match other.rdkafka_error_code() {
            Some(code) => code,
            None => return false,
        },
    };
    is_fenced_code(code)
}

/// Whether `error` means fenced, given the producer's fatal error (`Client::fatal_error`).
///
/// Once a producer is fenced, librdkafka raises a fatal error, purges what it had queued and
/// fails every later call with a generic code (`Fatal`, `PurgeQueue`); the fencing itself is
/// only in `rd_kafka_fatal_error`. A fatal producer can do nothing more, so when its fatal
/// error is a fencing, every failure of it is.
pub(crate) fn is_fenced_given(error: &KafkaError, fatal: Option<RDKafkaErrorCode>) -> bool {
    is_fenced(error) || fatal.is_some_and(is_fenced_code)
}

fn is_fenced_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

/// Whether an error the consumer delivered in place of a message means the consumer cannot go
/// on.
///
/// librdkafka reports most consumer conditions as *informational* errors and recovers from
/// them by itself (`rd_kafka_consumer_poll`: "the error is informational"; see its
/// INTRODUCTION.md, "Error handling"): a subscribed topic that does not exist yet
/// (`UnknownTopicOrPartition`, it keeps refreshing metadata and joins the topic when it
/// appears), a broker connection that dropped (`BrokerTransportFailure`, `AllBrokersDown`, it
/// reconnects), leader and coordinator moves, request timeouts, a poll interval that was
/// exceeded (`MaxPollExceeded`, it rejoins the group on the next poll). The truly fatal ones it
/// marks separately (`rd_kafka_event_error_is_fatal`, surfaced by rdkafka as
/// [`KafkaError::MessageConsumptionFatal`], or the `Fatal` code): then the client instance is
/// unusable.
///
/// Besides those, errors that no amount of waiting heals stop the consumer too, so a
/// misconfiguration fails with its name instead of stalling silently: authentication,
/// authorisation (topic, group, cluster), TLS, an invalid configuration or group id.
///
/// One fatal error does not stop the source: a static member's `FencedInstanceId` after a
/// broker outage longer than its session. The source replaces the consumer instead (and stops
/// with [`KafkaIoError::DuplicateGroupInstanceId`] at a second fencing soon after), see
/// `KafkaSource::read_batch`.
pub(crate) fn is_fatal_consumer_error(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageConsumptionFatal(_) => return true,
        KafkaError::MessageConsumption(code) => *code,
        // Errors of other operations than consuming are not reported by poll as recoverable.
        other => match other.rdkafka_error_code() {
            Some(code) => code,
            None => return true,
        },
    };
    matches!(
        code,
        RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::SSL
            | RDKafkaErrorCode::InvalidArgument
            | RDKafkaErrorCode::InvalidGroupId
            | RDKafkaErrorCode::UnsupportedFeature
            | RDKafkaErrorCode::UnsupportedSASLMechanism
            | RDKafkaErrorCode::IllegalSASLState
    )
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod task_tests {
    use super::*;
    use std::error::Error as _;

    #[tokio::test]
    async fn a_failed_background_task_keeps_tokios_join_error_as_its_source() {
        let handle = tokio::spawn(std::future::pending::<()>());
        handle.abort();
        let join = handle
            .await
            .expect_err("an aborted task ends in a JoinError");
        let error = KafkaIoError::Task(Box::new(join));
        let source = error
            .source()
            .and_then(|s| s.downcast_ref::<tokio::task::JoinError>());
        assert!(source.is_some(), "{error:?}");
    }
}
