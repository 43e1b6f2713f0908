//! Debezium's signals to a running SQL Server source, from outside the process: `POST /signals`
//! on the operations server ([`crate::ops`]) and Debezium's Kafka signal channel
//! (`signal.kafka.topic`). Both hand each signal to the source's
//! [`cdc_mssql::SnapshotSignals`]; the source applies it at its next step.
//!
//! A signal is Debezium's message value `{"type": "execute-snapshot", "data": {...}}`, or a
//! signal-table row as JSON `{"id": ..., "type": ..., "data": "<JSON text>"}` (`data` a JSON
//! object or a string holding one; absent or empty for `pause-snapshot` and `resume-snapshot`).
//! Nothing is written to the source database.

use cdc_mssql::{Signal, SignalError, SnapshotSignals};
use kafka_io::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use kafka_io::rdkafka::message::Message;
use kafka_io::rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// The pause after a failed read of the signal topic, so a lasting failure is not logged in a
/// tight loop.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Debezium's default consumer group of the Kafka signal channel (`signal.kafka.groupId`).
pub const DEFAULT_SIGNAL_GROUP_ID: &str = "kafka-signal";

/// Parses one signal: Debezium's Kafka signal message value or signal-table row shape (see the
/// [module docs](self)), as [`Signal::from_debezium_message`] reads them.
///
/// # Errors
/// Whatever [`Signal::from_debezium_message`] refuses.
///
/// ```
/// use cdc_connect::signals::parse_signal;
/// use cdc_mssql::{ExecuteSnapshot, Signal};
/// let expected = Signal::ExecuteSnapshot(ExecuteSnapshot::incremental(["dbo.items"]));
/// let message = r#"{"type": "execute-snapshot", "data": {"data-collections": ["dbo.items"]}}"#;
/// assert_eq!(parse_signal(message).unwrap(), expected);
/// let row = r#"{"id": "a1", "type": "execute-snapshot", "data": "{\"data-collections\": [\"dbo.items\"]}"}"#;
/// assert_eq!(parse_signal(row).unwrap(), expected);
/// ```
pub fn parse_signal(text: &str) -> Result<Signal, SignalError> {
    Signal::from_debezium_message(text)
}

/// Where `POST /signals` sends signals: set once the pipeline is built, closed when it stops.
#[derive(Debug, Clone, Default)]
pub struct SignalRoute(Arc<Mutex<Route>>);

#[derive(Debug, Clone, Default)]
enum Route {
    /// The pipeline is not built yet, failed to build, or is stopping.
    #[default]
    NotRunning,
    /// The source takes no signals (a Kafka source).
    NoSignals,
    /// The running SQL Server source's handle.
    Source(SnapshotSignals),
}

/// Why a signal was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The body is not a signal this source takes (HTTP 400).
    #[error("{0}")]
    Bad(#[from] SignalError),
    /// The pipeline's source is not SQL Server (HTTP 409).
    #[error(
        "this pipeline's source is not SQL Server: only a [source.mssql] pipeline takes signals"
    )]
    NotSqlServer,
    /// The pipeline is not running: starting or stopping (HTTP 503).
    #[error("the pipeline is not running (starting or stopping); retry once it is ready")]
    NotRunning,
}

impl SignalRoute {
    /// Signals go to `signals` from now on; `None`: the source takes none.
    pub fn set(&self, signals: Option<SnapshotSignals>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = match signals {
            Some(s) => Route::Source(s),
            None => Route::NoSignals,
        };
    }

    /// Signals are refused from now on: the pipeline stops (a signal queued now would not be
    /// applied, so it is not accepted).
    pub fn close(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Route::NotRunning;
    }

    /// Parses `body` ([`parse_signal`]) and queues the signal for the source.
    ///
    /// # Errors
    /// [`Refused`]: a bad body, a source that takes no signals, a pipeline not running.
    pub fn send(&self, body: &str) -> Result<Signal, Refused> {
        let route = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let signals = match route {
            Route::NotRunning => return Err(Refused::NotRunning),
            Route::NoSignals => return Err(Refused::NotSqlServer),
            Route::Source(s) => s,
        };
        let signal = parse_signal(body)?;
        signals.send(signal.clone())?;
        Ok(signal)
    }
}

/// Debezium's name of a signal, for logs (its data may hold row values in filters).
pub fn signal_type(signal: &Signal) -> &'static str {
    match signal {
        Signal::ExecuteSnapshot(_) => "execute-snapshot",
        Signal::StopSnapshot(_) => "stop-snapshot",
        Signal::PauseSnapshot => "pause-snapshot",
        Signal::ResumeSnapshot => "resume-snapshot",
    }
}

/// Debezium's Kafka signal channel, built (not yet reading): partition 0 of `topic`, assigned
/// (not subscribed) with the group's committed offset, else the earliest, as Debezium's
/// `KafkaSignalChannel` does.
pub struct KafkaSignalChannel {
    consumer: Arc<StreamConsumer>,
    topic: String,
    topic_prefix: String,
}

impl std::fmt::Debug for KafkaSignalChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSignalChannel")
            .field("topic", &self.topic)
            .field("topic_prefix", &self.topic_prefix)
            .finish_non_exhaustive()
    }
}

impl KafkaSignalChannel {
    /// A consumer of `topic` in group `group_id` with `kafka`'s client settings; only messages
    /// whose key is `topic_prefix` (Debezium's `topic.prefix`) are signals.
    ///
    /// # Errors
    /// librdkafka refusing the configuration, as text.
    pub fn new(
        kafka: &kafka_io::KafkaConfig,
        topic: &str,
        group_id: &str,
        topic_prefix: &str,
    ) -> Result<Self, String> {
        let mut client = kafka.client_config();
        client
            .set("group.id", group_id)
            // Debezium: auto.offset.reset = earliest; offsets committed as signals are read.
            // Committed here after each message is handed over, so a restart reads on from
            // the first message not yet handed over.
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = client.create().map_err(|e| e.to_string())?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Stored)
            .map_err(|e| e.to_string())?;
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_string(),
            topic_prefix: topic_prefix.to_string(),
        })
    }

    /// Reads signals and sends them to `signals` until `stop` is cancelled. A message with
    /// another key is ignored; one that is not a signal is logged with its offset and skipped.
    /// Neither stops the pipeline.
    pub fn spawn(self, signals: SnapshotSignals, stop: CancellationToken) {
        tokio::spawn(async move {
            tracing::info!(topic = %self.topic, "reading signals from the Kafka signal topic");
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => break,
                    received = self.consumer.recv() => received,
                };
                let message = match received {
                    Ok(m) => m,
                    Err(e) => {
                        // librdkafka retries on its own (a missing topic, a broker down); the
                        // error is reported, at most once per ERROR_PAUSE.
                        tracing::warn!(topic = %self.topic, error = %e, "reading the signal topic failed");
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(ERROR_PAUSE) => continue,
                        }
                    }
                };
                let offset = message.offset();
                let key = message.key().map(String::from_utf8_lossy);
                if key.as_deref() != Some(self.topic_prefix.as_str()) {
                    tracing::info!(topic = %self.topic, offset, key = ?key, topic_prefix = %self.topic_prefix, "signal key does not match the topic prefix; ignored");
                } else {
                    match message.payload() {
                        None | Some([]) => {
                            tracing::warn!(topic = %self.topic, offset, "empty signal message skipped")
                        }
                        Some(value) => {
                            match std::str::from_utf8(value)
                                .map_err(|e| SignalError::Data {
                                    signal: "message".into(),
                                    reason: e.to_string(),
                                })
                                .and_then(parse_signal)
                                .and_then(|signal| {
                                    let kind = signal_type(&signal);
                                    signals.send(signal).map(|()| kind)
                                }) {
                                Ok(kind) => {
                                    tracing::info!(topic = %self.topic, offset, signal = kind, "signal accepted")
                                }
                                Err(e) => {
                                    tracing::warn!(topic = %self.topic, offset, error = %e, "bad signal message skipped")
                                }
                            }
                        }
                    }
                }
                drop(message);
                self.commit(offset + 1).await;
            }
        });
    }

    /// Commits `next` as the group's offset of partition 0; a failure is logged (the message
    /// would be read again after a restart).
    async fn commit(&self, next: i64) {
        let mut offsets = TopicPartitionList::new();
        if let Err(e) = offsets.add_partition_offset(&self.topic, 0, Offset::Offset(next)) {
            tracing::warn!(topic = %self.topic, error = %e, "cannot commit the signal offset");
            return;
        }
        let consumer = Arc::clone(&self.consumer);
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot commit the signal offset")
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot commit the signal offset")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_table_row_with_data_as_text_parses_like_the_kafka_message() {
        let message = parse_signal(
            r#"{"type":"execute-snapshot","data":{"data-collections":["shop.dbo.items"],"type":"incremental"}}"#,
        );
        let row = parse_signal(
            r#"{"id":"x-1","type":"execute-snapshot","data":"{\"data-collections\":[\"shop.dbo.items\"],\"type\":\"incremental\"}"}"#,
        );
        assert!(
            matches!(message, Ok(Signal::ExecuteSnapshot(ref r)) if r.data_collections == ["shop.dbo.items"])
        );
        assert_eq!(message, row);
        assert_eq!(
            parse_signal(r#"{"id":"2","type":"pause-snapshot","data":""}"#),
            Ok(Signal::PauseSnapshot)
        );
        assert_eq!(
            parse_signal(r#"{"type":"resume-snapshot"}"#),
            Ok(Signal::ResumeSnapshot)
        );
    }

    #[test]
    fn a_body_that_is_not_a_signal_is_refused_naming_the_problem() {
        for (body, needle) in [
            ("not json", "expected ident"),
            ("[1]", "expected a JSON object"),
            (r#"{"data":{}}"#, "missing `type`"),
            (r#"{"type":5}"#, "`type` is not a string"),
            (
                r#"{"type":"execute-snapshot","data":[1]}"#,
                "`data` is neither",
            ),
            (
                r#"{"type":"execute-snapshot","data":{}}"#,
                "data-collections",
            ),
            (r#"{"type":"log","data":{}}"#, "unknown signal type \"log\""),
        ] {
            let error = match parse_signal(body) {
                Err(e) => e.to_string(),
                Ok(signal) => panic!("{body} was taken as {signal:?}"),
            };
            assert!(error.contains(needle), "{body}: {error}");
        }
    }

    #[test]
    fn signals_while_the_pipeline_is_not_running_or_to_a_kafka_source_are_refused() {
        let route = SignalRoute::default();
        let body = r#"{"type":"pause-snapshot"}"#;
        assert_eq!(route.send(body), Err(Refused::NotRunning));
        route.set(None);
        assert_eq!(route.send(body), Err(Refused::NotSqlServer));
        route.set(Some(SnapshotSignals::default()));
        assert_eq!(route.send(body), Ok(Signal::PauseSnapshot));
        route.close();
        assert_eq!(route.send(body), Err(Refused::NotRunning));
    }
}
