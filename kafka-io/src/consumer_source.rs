//! The consumer source: a consumer group whose offsets move only with durable acknowledgements.

use crate::consumer_builder::{KafkaSourceBuilder, Rebuild, create_consumer};
use crate::consumer_context::{
    Assignment, Partition, Revocations, SourceContext, source_partitions,
};
use crate::dlq::{DeadLetterWriter, Poison};
use crate::error::is_fatal_consumer_error;
use crate::{DecodeFailurePolicy, KafkaConfig, KafkaIoError};
use async_trait::async_trait;
use cdc_core::{
    ChangeEvent, ChangeSource, Checkpoint, EncodedRecord, EventCodec, KafkaOffset, Position,
    SourceBatch,
};
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A [`ChangeSource`] reading change events from Kafka topics as a consumer group member.
///
/// - records are decoded with the codec; each event's [`transport`](ChangeEvent::transport)
///   is its `Position::Kafka { topic, partition, offset }` (its `source` keeps the origin);
/// - tombstones (null values) are skipped;
/// - `ack(position)` stores `offset + 1` for the partition (the next record to read, as Kafka
///   expects); with `enable.auto.offset.store=false` nothing else is ever stored, and
///   librdkafka's auto-commit commits only stored offsets — so no offset is committed before
///   the pipeline made it durable;
/// - on partition revocation, the partition's in-flight work is **dropped**: the next batch
///   names the partition in [`SourceBatch::revoked_partitions`] (before any record read after
///   the revocation; records of it read before the revocation in the same batch are left out),
///   so the pipeline drops its open, undurable work; acknowledgements from before the
///   revocation are ignored, and the new owner re-reads from the last committed offset;
/// - a batch ending on skipped records (tombstones, dead-lettered records) of several
///   partitions carries one heartbeat per partition; on an idle poll, a partition whose
///   consumer position is past the last record passed downstream (transaction markers,
///   aborted records under `read_committed`) gets a heartbeat at `position - 1`, so the
///   committed offsets reach the end of every partition;
/// - `isolation.level=read_committed`: records of aborted transactions are not read;
/// - `start(checkpoint)` skips records the checkpoint covers, so a pipeline's own offset
///   store wins over older group offsets;
/// - undecodable records follow the [`DecodeFailurePolicy`];
/// - a static member (`group.instance.id`) that librdkafka fenced (`FencedInstanceId`, fatal:
///   after a broker outage longer than `session.timeout.ms`) gets a new consumer with the same
///   configuration: the next batch revokes every partition of the old one, and reading resumes
///   from the committed offsets. A second fencing within
///   [`fence_window`](KafkaSourceBuilder::fence_window) of that is
///   [`KafkaIoError::DuplicateGroupInstanceId`].
pub struct KafkaSource {
    pub(crate) name: String,
    pub(crate) consumer: Option<Arc<StreamConsumer<SourceContext>>>,
    /// How to build the consumer again after a fencing (static membership).
    pub(crate) rebuild: Rebuild,
    pub(crate) codec: Arc<dyn EventCodec>,
    pub(crate) topics: Vec<String>,
    pub(crate) batch_size: usize,
    pub(crate) poll_timeout: Duration,
    pub(crate) policy: DecodeFailurePolicy,
    pub(crate) dead_letters: Option<DeadLetterWriter>,
    pub(crate) assignment: Assignment,
    pub(crate) revocations: Revocations,
    pub(crate) resume: Checkpoint,
    pub(crate) acked: HashMap<Partition, i64>,
    /// Per partition, what this assignment of it passed downstream: `(first, next)`, the
    /// first offset and the offset after the last one (events, skipped records, position
    /// heartbeats). Forgotten on revoke.
    pub(crate) owned: HashMap<Partition, (i64, i64)>,
    pub(crate) started: bool,
    /// Recoverable consumer conditions said so far, throttled.
    pub(crate) conditions: ConditionLog,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// A builder for a member of consumer group `group_id`.
    pub fn builder(
        kafka: KafkaConfig,
        codec: Arc<dyn EventCodec>,
        group_id: impl Into<String>,
    ) -> KafkaSourceBuilder {
        KafkaSourceBuilder {
            kafka,
            codec,
            group_id: group_id.into(),
            topics: Vec::new(),
            name: "kafka".into(),
            batch_size: 1000,
            poll_timeout: Duration::from_millis(100),
            commit_interval: Duration::from_secs(1),
            policy: DecodeFailurePolicy::Fail,
            fence_window: Duration::from_secs(60),
        }
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        let mut partitions: Vec<_> = self.assignment.lock().iter().cloned().collect();
        partitions.sort();
        partitions
    }

    fn consumer(&self) -> Result<&Arc<StreamConsumer<SourceContext>>, KafkaIoError> {
        self.consumer.as_ref().ok_or(KafkaIoError::Consumer {
            operation: "poll after close",
            source: KafkaError::ClientCreation("the source was closed".into()),
        })
    }

    /// How many times the consumer was rebuilt after librdkafka fenced this static member
    /// (`FencedInstanceId` after a broker outage longer than `session.timeout.ms`).
    pub fn consumers_rebuilt(&self) -> u64 {
        self.rebuild.rebuilt
    }

    /// The next batch; a static member fenced after an outage gets a new consumer (see
    /// [`KafkaSourceBuilder::fence_window`]).
    async fn read_batch(&mut self) -> Result<SourceBatch, KafkaIoError> {
        match self.read_consumer_batch().await {
            Err(KafkaIoError::Consumer { operation, source }) if self.fenced(&source) => {
                self.replace_fenced_consumer(operation, source).await
            }
            other => other,
        }
    }

    /// Whether `error` (or the consumer's fatal error behind it) is librdkafka's fatal
    /// `FencedInstanceId` of a static member: the broker gave this member's
    /// `group.instance.id` to a newer join (ours after an outage, or another process's).
    fn fenced(&self, error: &KafkaError) -> bool {
        if self.rebuild.group_instance_id.is_none() {
            return false;
        }
        let code = |e: &KafkaError| e.rdkafka_error_code();
        let fatal = self
            .consumer
            .as_ref()
            .and_then(|c| c.client().fatal_error())
            .map(|(code, _)| code);
        code(error) == Some(RDKafkaErrorCode::FencedInstanceId)
            || fatal == Some(RDKafkaErrorCode::FencedInstanceId)
    }

    /// Replaces a fenced consumer: librdkafka's fatal error made it unusable, so it is
    /// dropped (its threads and context with it) before a new one with the same configuration
    /// subscribes again and resumes from the committed offsets. Offsets only move with
    /// acknowledgements of durable work, so what is read again is what was read but not
    /// committed — the at-least-once replay any restart does. Every partition of the old
    /// consumer is revoked in the returned batch, so the pipeline drops the open work read
    /// through it. A second fencing within the fence window is a duplicate
    /// `group.instance.id` and stops the source.
    async fn replace_fenced_consumer(
        &mut self,
        operation: &'static str,
        source: KafkaError,
    ) -> Result<SourceBatch, KafkaIoError> {
        let Some(instance) = self.rebuild.group_instance_id.clone() else {
            return Err(KafkaIoError::Consumer { operation, source });
        };
        if let Some(at) = self.rebuild.rebuilt_at
            && at.elapsed() < self.rebuild.fence_window
        {
            return Err(KafkaIoError::DuplicateGroupInstanceId {
                group_instance_id: instance,
                window: at.elapsed(),
                source,
            });
        }
        tracing::warn!(source = %self.name, group_instance_id = %instance, error = %source,
            "static member fenced (its session ended during a broker outage, or another process uses its group.instance.id): building a new consumer that resumes from the committed offsets");
        // Closing a consumer blocks (librdkafka joins its threads); a fatal one commits
        // nothing on close. It is the only owner: `read_consumer_batch` dropped its clone.
        if let Some(old) = self.consumer.take() {
            tokio::task::spawn_blocking(move || drop(old))
                .await
                .map_err(|e| KafkaIoError::Task(Box::new(e)))?;
        }
        // After the old consumer's close (whose callbacks may revoke too): every partition it
        // had is given up, with what this source knew of its ownership, so acknowledgements of
        // its records are dropped until the new consumer reads them again.
        for partition in std::mem::take(&mut *self.assignment.lock()) {
            self.revocations.push(partition);
        }
        let mut revoked = Vec::new();
        self.take_revoked(&mut Vec::new(), &mut revoked);
        self.owned.clear();
        self.acked.clear();
        let consumer = create_consumer(&self.rebuild.config, self.rebuild.context.clone())?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaIoError::Consumer {
                operation: "subscribe",
                source,
            })?;
        self.consumer = Some(Arc::new(consumer));
        self.rebuild.rebuilt_at = Some(std::time::Instant::now());
        self.rebuild.rebuilt += 1;
        Ok(SourceBatch {
            revoked_partitions: source_partitions(&revoked),
            ..SourceBatch::default()
        })
    }

    async fn read_consumer_batch(&mut self) -> Result<SourceBatch, KafkaIoError> {
        let consumer = Arc::clone(self.consumer()?);
        let mut messages = Vec::new();
        let mut revoked: Vec<Partition> = Vec::new();
        let mut left_group = false;
        // Recoverable conditions arrive in place of messages; they do not end the poll early.
        let deadline = tokio::time::Instant::now() + self.poll_timeout;
        // The rebalance callbacks run inside `recv`, before the record it returns (which
        // belongs to the assignment in force by then, possibly a new assignment of a
        // partition just revoked): revocations seen by a `recv` apply to the records read
        // before it, never to the one it returned.
        while messages.is_empty() && !left_group {
            let message = tokio::time::timeout_at(deadline, consumer.recv()).await;
            self.take_revoked(&mut messages, &mut revoked);
            match message {
                Err(_) => return Ok(self.idle_batch(&consumer, &mut revoked)),
                Ok(message) => messages.extend(consumed(
                    &self.name,
                    message,
                    &mut left_group,
                    &mut self.conditions,
                )?),
            }
        }
        while messages.len() < self.batch_size && !left_group {
            let message = consumer.recv().now_or_never();
            // A poll that returned nothing may still have run a rebalance callback.
            self.take_revoked(&mut messages, &mut revoked);
            match message {
                Some(message) => messages.extend(consumed(
                    &self.name,
                    message,
                    &mut left_group,
                    &mut self.conditions,
                )?),
                None => break,
            }
        }
        if left_group {
            // The poll interval was exceeded (a slow sink) and librdkafka left the group:
            // records it had fetched for the old membership came out with a gap in tests
            // (Kafka 4.4, librdkafka 2.12: the first record after the error went missing).
            // Start over from the committed offsets, which cover only durable work, by
            // subscribing again; what was read but not acknowledged is read again.
            // Every partition of the old membership is given up now, not when librdkafka
            // later reports the lost assignment: the records read for it are dropped here,
            // so what this source knew of its ownership must go with them (an idle poll
            // would otherwise heartbeat past them).
            for partition in std::mem::take(&mut *self.assignment.lock()) {
                self.revocations.push(partition);
            }
            let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
            consumer.unsubscribe();
            consumer
                .subscribe(&topics)
                .map_err(|source| KafkaIoError::Consumer {
                    operation: "subscribe",
                    source,
                })?;
            let mut none = Vec::new();
            self.take_revoked(&mut none, &mut revoked);
            return Ok(SourceBatch {
                revoked_partitions: source_partitions(&revoked),
                ..SourceBatch::default()
            });
        }
        let mut batch = SourceBatch {
            revoked_partitions: source_partitions(&revoked),
            ..SourceBatch::default()
        };
        // The last skipped record of each partition, if no event of it follows.
        let mut skipped: Vec<Position> = Vec::new();
        for message in messages {
            let position = Position::Kafka(KafkaOffset {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
            });
            let partition = (message.topic().to_string(), message.partition());
            let owned = self
                .owned
                .entry(partition)
                .or_insert((message.offset(), message.offset()));
            owned.1 = owned.1.max(message.offset() + 1);
            if self.resume.covers(&position) {
                continue;
            }
            skipped.retain(|s| !s.same_source_partition(&position));
            match self.decode(&message, &position).await? {
                Some(mut event) => {
                    event.transport = Some(position);
                    batch.events.push(event);
                }
                None => skipped.push(position),
            }
        }
        // A batch that ends on skipped records (tombstones, dead-lettered records) carries
        // the last one of each partition as a heartbeat, so its offset gets committed once
        // what precedes it is: with one heartbeat per batch, all partitions but one kept a
        // lag of 1 forever.
        batch.heartbeat = skipped.pop();
        batch.heartbeats = skipped;
        Ok(batch)
    }

    /// Takes the partitions revoked since the last check: records of them read before the
    /// revocation are left out of the batch (their next owner re-reads them), and what this
    /// source knew about its ownership of them is forgotten.
    fn take_revoked(&mut self, messages: &mut Vec<OwnedMessage>, revoked: &mut Vec<Partition>) {
        for partition in self.revocations.take() {
            messages.retain(|m| m.partition() != partition.1 || m.topic() != partition.0);
            self.owned.remove(&partition);
            self.acked.remove(&partition);
            if !revoked.contains(&partition) {
                revoked.push(partition);
            }
        }
    }

    /// An idle poll's batch: the revocations, and a heartbeat at `position - 1` for every
    /// assigned partition whose consumer position is past what was passed downstream. Under
    /// `read_committed` the position moves past transaction markers and aborted records
    /// that are never delivered; without these heartbeats the committed offset would stay
    /// behind the end of the partition forever.
    fn idle_batch(
        &mut self,
        consumer: &StreamConsumer<SourceContext>,
        revoked: &mut Vec<Partition>,
    ) -> SourceBatch {
        let mut none = Vec::new();
        self.take_revoked(&mut none, revoked);
        let mut batch = SourceBatch {
            revoked_partitions: source_partitions(revoked),
            ..SourceBatch::default()
        };
        let positions = match consumer.position() {
            Ok(positions) => positions,
            Err(error) => {
                tracing::debug!(source = %self.name, %error, "no consumer positions");
                return batch;
            }
        };
        let assigned = self.assignment.lock().clone();
        for e in positions.elements() {
            let Offset::Offset(next) = e.offset() else {
                continue;
            };
            let partition = (e.topic().to_string(), e.partition());
            if next <= 0 || !assigned.contains(&partition) {
                continue;
            }
            let owned = self.owned.entry(partition).or_insert((next - 1, next - 1));
            if owned.1 >= next {
                continue;
            }
            owned.1 = next;
            batch.heartbeats.push(Position::Kafka(KafkaOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: next - 1,
            }));
        }
        batch
    }

    async fn decode(
        &self,
        message: &OwnedMessage,
        position: &Position,
    ) -> Result<Option<ChangeEvent>, KafkaIoError> {
        let Some(value) = message.payload() else {
            return Ok(None); // a tombstone: compaction's business, not an event
        };
        let headers: Vec<(String, Vec<u8>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let record = EncodedRecord {
            key: message.key().map(<[u8]>::to_vec),
            value: Some(value.to_vec()),
            headers,
        };
        match self.codec.decode(&record) {
            Ok(event) => Ok(event),
            Err(error) => match &self.policy {
                DecodeFailurePolicy::Fail => Err(KafkaIoError::Decode {
                    position: Box::new(position.clone()),
                    source: Box::new(error),
                }),
                DecodeFailurePolicy::Skip => {
                    tracing::warn!(source = %self.name, %position, %error, "skipping undecodable record");
                    Ok(None)
                }
                DecodeFailurePolicy::DeadLetter { topic } => {
                    tracing::warn!(source = %self.name, %position, %error, dlq = %topic, "dead-lettering undecodable record");
                    if let Some(writer) = &self.dead_letters {
                        writer
                            .write(Poison {
                                position,
                                topic: message.topic(),
                                partition: message.partition(),
                                offset: message.offset(),
                                key: message.key(),
                                value: Some(value),
                                headers: &record.headers,
                                reason: error_chain(&error),
                                codec: self.codec.name(),
                            })
                            .await?;
                    }
                    Ok(None)
                }
            },
        }
    }

    fn store(&mut self, position: &Position) -> Result<(), KafkaIoError> {
        let Position::Kafka(at) = position else {
            return Err(KafkaIoError::NotKafkaPosition {
                position: Box::new(position.clone()),
            });
        };
        let partition = (at.topic.clone(), at.partition);
        if !self.assignment.lock().contains(&partition) {
            tracing::debug!(source = %self.name, %position, "partition not assigned any more: acknowledgement dropped");
            return Ok(());
        }
        // An acknowledgement from before a revocation of the partition, arriving after it
        // was assigned again, may lie below the offset the other owner committed meanwhile:
        // storing it would move the group's offset backwards.
        let next = at.offset + 1;
        if self
            .owned
            .get(&partition)
            .is_none_or(|&(first, _)| next < first)
        {
            tracing::debug!(source = %self.name, %position, "acknowledgement from an earlier assignment dropped");
            return Ok(());
        }
        if self.acked.get(&partition).is_some_and(|&done| done >= next) {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&at.topic, at.partition, Offset::Offset(next))
            .map_err(|source| KafkaIoError::Consumer {
                operation: "store offset",
                source,
            })?;
        match self.consumer()?.store_offsets(&tpl) {
            Ok(()) => {
                self.acked.insert(partition, next);
                Ok(())
            }
            // A fenced static member can store nothing; the next poll replaces the consumer
            // and the partition is read again from its committed offset.
            Err(source) if self.fenced(&source) => {
                tracing::debug!(source = %self.name, %position, "consumer fenced: acknowledgement dropped");
                Ok(())
            }
            // Revoked between our check and the store: the next owner re-reads it.
            Err(KafkaError::StoreOffset(
                RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
            )) => Ok(()),
            Err(source) => Err(KafkaIoError::Consumer {
                operation: "store offset",
                source,
            }),
        }
    }

    async fn close_consumer(&mut self) -> Result<(), KafkaIoError> {
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        let assigned = self.assignment.lock().clone();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.acked {
            if assigned.contains(&(topic.clone(), *partition)) {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(|source| KafkaIoError::Consumer {
                        operation: "commit",
                        source,
                    })?;
            }
        }
        // Commit what was acknowledged and leave the group, off the runtime: both block.
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            let committed = match tpl.count() {
                0 => Ok(()),
                _ => match consumer.commit(&tpl, CommitMode::Sync) {
                    // Another member joined or left meanwhile (two pipelines stopping at
                    // once): the group refuses commits until it has rebalanced, which this
                    // leaving member will not wait for. The offsets stay stored, so the
                    // close below commits them if it can; else the partitions' next owner
                    // re-reads from the older committed offset, which the sink contract
                    // allows (the S3 sink skips what its stored files hold).
                    Err(KafkaError::ConsumerCommit(
                        code @ (RDKafkaErrorCode::RebalanceInProgress
                        | RDKafkaErrorCode::IllegalGeneration
                        | RDKafkaErrorCode::UnknownMemberId),
                    )) => {
                        tracing::warn!(source = %name, error = %code, "final commit refused by a rebalance; offsets stay stored");
                        Ok(())
                    }
                    other => other,
                },
            };
            drop(consumer);
            committed
        })
        .await
        .map_err(|e| KafkaIoError::Task(Box::new(e)))?
        .map_err(|source| KafkaIoError::Consumer {
            operation: "commit",
            source,
        })
    }
}

/// The message the consumer delivered, `None` for a condition librdkafka recovers from by
/// itself (logged; see [`is_fatal_consumer_error`]), or the error that stops the source.
/// Sets `left_group` when the condition is an exceeded poll interval.
fn consumed(
    source: &str,
    message: KafkaResult<BorrowedMessage<'_>>,
    left_group: &mut bool,
    conditions: &mut ConditionLog,
) -> Result<Option<OwnedMessage>, KafkaIoError> {
    match message {
        Ok(message) => Ok(Some(message.detach())),
        Err(error) if !is_fatal_consumer_error(&error) => {
            if matches!(
                error,
                KafkaError::MessageConsumption(RDKafkaErrorCode::PollExceeded)
            ) {
                *left_group = true;
            }
            conditions.say(source, &error);
            Ok(None)
        }
        Err(error) => Err(KafkaIoError::Consumer {
            operation: "poll",
            source: error,
        }),
    }
}

/// Says a recoverable consumer condition at most once every [`ConditionLog::QUIET`], with how
/// many went unsaid: during a broker outage librdkafka reports one at every poll, and a
/// newcomer's 30 s outage wrote 209 identical warnings.
#[derive(Debug, Default)]
pub(crate) struct ConditionLog {
    last: Option<std::time::Instant>,
    unsaid: u64,
}

impl ConditionLog {
    /// The least time between two warnings.
    const QUIET: Duration = Duration::from_secs(10);

    /// Logs `error` unless one was logged less than [`Self::QUIET`] ago; whether it did.
    fn say(&mut self, source: &str, error: &KafkaError) -> bool {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Self::QUIET)
        {
            self.unsaid += 1;
            return false;
        }
        tracing::warn!(source, %error, unsaid_since_last = self.unsaid, "consumer condition librdkafka recovers from; waiting");
        self.last = Some(now);
        self.unsaid = 0;
        true
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[async_trait]
impl ChangeSource for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, checkpoint: Option<&Checkpoint>) -> cdc_core::Result<()> {
        self.resume = Checkpoint::default();
        for position in checkpoint.into_iter().flat_map(Checkpoint::positions) {
            if matches!(position, Position::Kafka(_)) {
                self.resume.advance(position.clone());
            }
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let subscribed = match self.consumer() {
            Ok(consumer) => consumer
                .subscribe(&topics)
                .map_err(|source| KafkaIoError::Consumer {
                    operation: "subscribe",
                    source,
                }),
            Err(e) => Err(e),
        };
        self.started = subscribed.is_ok();
        subscribed.map_err(|e| e.into_source_error(&self.name))
    }

    async fn next_batch(&mut self) -> cdc_core::Result<Option<SourceBatch>> {
        if !self.started {
            return Err(
                KafkaIoError::config("start", "call start before next_batch")
                    .into_source_error(&self.name),
            );
        }
        let batch = self.read_batch().await;
        batch.map(Some).map_err(|e| e.into_source_error(&self.name))
    }

    async fn ack(&mut self, position: &Position) -> cdc_core::Result<()> {
        let stored = self.store(position);
        stored.map_err(|e| e.into_source_error(&self.name))
    }

    async fn close(&mut self) -> cdc_core::Result<()> {
        let closed = self.close_consumer().await;
        closed.map_err(|e| e.into_source_error(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker outage reports a condition at every poll: one warning says it, the rest are
    /// counted until the quiet time has passed.
    #[test]
    fn a_recoverable_condition_repeated_at_every_poll_is_said_once_per_quiet_time() {
        let mut log = ConditionLog::default();
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
        let said = (0..200).filter(|_| log.say("s", &down)).count();
        assert_eq!(said, 1);
        assert_eq!(log.unsaid, 199);
        log.last = log.last.map(|at| at - ConditionLog::QUIET);
        assert!(log.say("s", &down), "said again once the quiet time passed");
        assert_eq!(log.unsaid, 0);
    }
}
