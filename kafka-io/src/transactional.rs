//! Exactly-once: a transactional producer that commits the events and the source's
//! checkpoint together.

use crate::error::is_fenced_given;
use crate::offsets_topic::read_checkpoint;
use crate::producer::{DeliveryProducer, ProducerCore, QueueFailure, encode_all};
use crate::record::OutRecord;
use crate::{DefaultTopicNamer, KafkaConfig, KafkaIoError, KafkaOffsetStore, TopicNamer};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use cdc_core::{ChangeEvent, Checkpoint, EventCodec, Position, Sink};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The ticket of the checkpoint record; event tickets count up from zero and never reach it.
const CHECKPOINT_TICKET: u64 = u64::MAX >> 1;

/// The transactional producers of this process, by transactional.id.
///
/// Blocking producer calls (`init_transactions`, `commit_transaction`) run on tokio's blocking
/// pool and keep running when the sink that started them is dropped — a cancelled `build`,
/// a pipeline task aborted in the middle of a flush. Such an orphaned `init_transactions`
/// that finishes after a newer instance's bumps the producer epoch again and fences the
/// newer instance. A new sink therefore waits until every orphaned producer with its
/// transactional.id is gone (a live, owned older sink is fenced at once, as across processes).
static PRODUCERS: LazyLock<Mutex<HashMap<String, Lineage>>> = LazyLock::new(Mutex::default);

/// One producer of [`PRODUCERS`]: the producer, and a token only its sink (or the `build`
/// making it) holds, so a producer alive without its token is an orphan.
struct Lineage {
    producer: Weak<DeliveryProducer>,
    owner: Weak<()>,
}

/// Waits (at most `timeout`) until no orphaned producer of `id` is left in this process.
async fn wait_for_orphans(id: &str, timeout: Duration) {
    let started = Instant::now();
    let mut warned = false;
    loop {
        let orphaned = PRODUCERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|l| l.producer.strong_count() > 0 && l.owner.strong_count() == 0);
        if !orphaned {
            return;
        }
        if started.elapsed() >= timeout {
            tracing::warn!(transactional_id = %id, "an orphaned producer of this transactional.id is still busy; starting anyway");
            return;
        }
        if !warned {
            tracing::info!(transactional_id = %id, "waiting for a dropped instance's blocking call to end before fencing it");
            warned = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds a [`TransactionalSink`].
pub struct TransactionalSinkBuilder {
    kafka: KafkaConfig,
    codec: Arc<dyn EventCodec>,
    namer: Arc<dyn TopicNamer>,
    name: String,
    tombstones: bool,
    transactional_id: String,
    offsets_topic: String,
    checkpoint_key: Option<String>,
    timeout: Duration,
    commit_budget: Option<Duration>,
}

impl std::fmt::Debug for TransactionalSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalSinkBuilder")
            .field("kafka", &self.kafka)
            .field("transactional_id", &self.transactional_id)
            .field("offsets_topic", &self.offsets_topic)
            .finish_non_exhaustive()
    }
}

impl TransactionalSinkBuilder {
    /// Name for logs and errors (default `kafka-transactional`).
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

    /// The key of the checkpoint record (default: the transactional id).
    pub fn checkpoint_key(mut self, key: impl Into<String>) -> Self {
        self.checkpoint_key = Some(key.into());
        self
    }

    /// Timeout of each blocking transaction call and of reading the checkpoint (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a transaction commit may go on after retriable errors (a commit that timed out
    /// while the broker was away is called again until it succeeds or this has passed).
    ///
    /// Default: the producer's `transaction.timeout.ms` if set, else 60 s (librdkafka's
    /// default of it): once it has passed, the transaction coordinator aborts the open
    /// transaction, so a later commit could only fail.
    pub fn commit_budget(mut self, budget: Duration) -> Self {
        self.commit_budget = Some(budget);
        self
    }

    /// [`build`](Self::build), and the [`KafkaOffsetStore`] that reads back the checkpoints
    /// this sink commits (same cluster, offsets topic and checkpoint key): the pair an
    /// exactly-once pipeline needs, wired from one set of settings.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use cdc_core::DebeziumJson;
    /// use kafka_io::{KafkaConfig, TransactionalSink};
    /// # async fn f() -> Result<(), kafka_io::KafkaIoError> {
    /// let (sink, offsets) = TransactionalSink::builder(
    ///     KafkaConfig::new("localhost:9092"),
    ///     Arc::new(DebeziumJson::with_schema()),
    ///     "orders-pipeline",
    ///     "cdc.offsets",
    /// )
    /// .build_with_offset_store()
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn build_with_offset_store(
        self,
    ) -> Result<(TransactionalSink, KafkaOffsetStore), KafkaIoError> {
        let kafka = self.kafka.clone();
        let sink = self.build().await?;
        let store = KafkaOffsetStore::written_by_transactions(
            kafka,
            sink.offsets_topic.clone(),
            sink.checkpoint_key.clone(),
        )?;
        Ok((sink, store))
    }

    /// Validates, creates the producer, fences any older instance with the same
    /// `transactional.id` (its open transaction is aborted), then reads the last committed
    /// checkpoint from the offsets topic.
    pub async fn build(self) -> Result<TransactionalSink, KafkaIoError> {
        if self.name.trim().is_empty() {
            return Err(KafkaIoError::config("name", "must not be empty"));
        }
        if self.transactional_id.trim().is_empty() {
            return Err(KafkaIoError::config(
                "transactional_id",
                "must not be empty",
            ));
        }
        if self.offsets_topic.trim().is_empty() {
            return Err(KafkaIoError::config("offsets_topic", "must not be empty"));
        }
        if self.timeout.is_zero() {
            return Err(KafkaIoError::config("timeout", "must be greater than zero"));
        }
        if self.commit_budget.is_some_and(|b| b.is_zero()) {
            return Err(KafkaIoError::config(
                "commit_budget",
                "must be greater than zero",
            ));
        }
        self.kafka.validate()?;
        let commit_budget = match self.commit_budget {
            Some(budget) => budget,
            None => transaction_timeout(&self.kafka)?,
        };
        let key = self
            .checkpoint_key
            .unwrap_or_else(|| self.transactional_id.clone());
        if key.is_empty() {
            return Err(KafkaIoError::config("checkpoint_key", "must not be empty"));
        }
        wait_for_orphans(&self.transactional_id, self.timeout).await;
        let core = ProducerCore::new(&self.kafka, &[("transactional.id", &self.transactional_id)])?;
        let producer = Arc::clone(&core.producer);
        let owner = Arc::new(());
        PRODUCERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                self.transactional_id.clone(),
                Lineage {
                    producer: Arc::downgrade(&producer),
                    owner: Arc::downgrade(&owner),
                },
            );
        let id = self.transactional_id.clone();
        let timeout = self.timeout;
        blocking(&producer, move |p| p.init_transactions(timeout))
            .await?
            .map_err(|source| txn_error(&id, "init", false, source, fatal(&producer)))?;
        let (kafka, topic, k) = (self.kafka.clone(), self.offsets_topic.clone(), key.clone());
        let committed =
            tokio::task::spawn_blocking(move || read_checkpoint(&kafka, &topic, &k, timeout))
                .await
                .map_err(|e| KafkaIoError::Task(Box::new(e)))??
                .unwrap_or_default();
        tracing::info!(transactional_id = %self.transactional_id, ?committed, "transactional sink ready");
        Ok(TransactionalSink {
            name: self.name,
            _owner: owner,
            core,
            codec: self.codec,
            namer: self.namer,
            tombstones: self.tombstones,
            transactional_id: self.transactional_id,
            offsets_topic: self.offsets_topic,
            checkpoint_key: key,
            timeout: self.timeout,
            commit_budget,
            committed,
            in_transaction: Checkpoint::default(),
            replayed: Checkpoint::default(),
            open: false,
            failed: false,
        })
    }
}

/// The producer's `transaction.timeout.ms` (librdkafka's default 60 000 ms when not set).
fn transaction_timeout(kafka: &KafkaConfig) -> Result<Duration, KafkaIoError> {
    const KEY: &str = "transaction.timeout.ms";
    match kafka.client_config().get(KEY) {
        None => Ok(Duration::from_secs(60)),
        Some(ms) => match ms.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(KafkaIoError::config(
                KEY,
                format!("{ms:?} is not a positive number of milliseconds"),
            )),
        },
    }
}

/// Runs a blocking producer call on the blocking pool.
async fn blocking<T: Send + 'static>(
    producer: &Arc<DeliveryProducer>,
    call: impl FnOnce(&DeliveryProducer) -> T + Send + 'static,
) -> Result<T, KafkaIoError> {
    let producer = Arc::clone(producer);
    tokio::task::spawn_blocking(move || call(&producer))
        .await
        .map_err(|e| KafkaIoError::Task(Box::new(e)))
}

/// The producer's fatal error code, if it raised one (see [`is_fenced_given`]).
fn fatal(producer: &DeliveryProducer) -> Option<rdkafka::types::RDKafkaErrorCode> {
    producer.client().fatal_error().map(|(code, _)| code)
}

fn txn_error(
    id: &str,
    operation: &'static str,
    aborted: bool,
    source: KafkaError,
    fatal: Option<rdkafka::types::RDKafkaErrorCode>,
) -> KafkaIoError {
    if is_fenced_given(&source, fatal) {
        KafkaIoError::Fenced {
            transactional_id: id.to_string(),
            source,
        }
    } else {
        KafkaIoError::Transaction {
            operation,
            aborted,
            source,
        }
    }
}

/// A [`Sink`] that writes events and the source checkpoint in one Kafka transaction.
///
/// - the first `write` after a flush begins a transaction; `write` only queues messages and
///   reports nothing durable, because nothing is visible to `read_committed` consumers before
///   the commit;
/// - `flush` adds the checkpoint (every source partition's last position, JSON, keyed by the checkpoint
///   key) to the compacted offsets topic and commits; only then are the positions reported.
///   Events and checkpoint become visible together or not at all;
/// - events the committed checkpoint already covers (a replay after a restart) are skipped,
///   and reported durable at the next flush;
/// - on restart, [`build`](TransactionalSinkBuilder::build) fences the previous instance
///   (aborting its open transaction); the pipeline resumes from the checkpoint that a
///   [`KafkaOffsetStore::written_by_transactions`](crate::KafkaOffsetStore::written_by_transactions)
///   store reads, so each event is committed once;
/// - a commit whose error librdkafka marks retriable (a timeout while the broker is away) is
///   called again within [`commit_budget`](TransactionalSinkBuilder::commit_budget); one that
///   requires abort is aborted and the flush fails with nothing of the transaction visible or
///   reported, so the restarted pipeline replays it from the committed checkpoint;
/// - a fenced producer fails with [`KafkaIoError::Fenced`] and must not be used again;
/// - blocking calls (`init_transactions`, `commit_transaction`, `abort_transaction`) run on
///   tokio's blocking pool.
pub struct TransactionalSink {
    name: String,
    /// This sink's token in [`PRODUCERS`]: while it lives, the producer is not an orphan.
    _owner: Arc<()>,
    core: ProducerCore,
    codec: Arc<dyn EventCodec>,
    namer: Arc<dyn TopicNamer>,
    tombstones: bool,
    transactional_id: String,
    offsets_topic: String,
    checkpoint_key: String,
    timeout: Duration,
    /// How long a commit may go on retrying retriable errors.
    commit_budget: Duration,
    /// Every source partition's last committed position (from the offsets topic, then our commits).
    committed: Checkpoint,
    /// Last position per source partition written in the open transaction.
    in_transaction: Checkpoint,
    /// Replayed events skipped because already committed: durable, reported at the next flush.
    replayed: Checkpoint,
    open: bool,
    failed: bool,
}

impl std::fmt::Debug for TransactionalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalSink")
            .field("name", &self.name)
            .field("transactional_id", &self.transactional_id)
            .field("offsets_topic", &self.offsets_topic)
            .field("committed", &self.committed)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl TransactionalSink {
    /// A builder: events to `kafka` through `codec`, transactions under `transactional_id`,
    /// checkpoints to the compacted `offsets_topic`.
    pub fn builder(
        kafka: KafkaConfig,
        codec: Arc<dyn EventCodec>,
        transactional_id: impl Into<String>,
        offsets_topic: impl Into<String>,
    ) -> TransactionalSinkBuilder {
        TransactionalSinkBuilder {
            kafka,
            codec,
            namer: Arc::new(DefaultTopicNamer::new()),
            name: "kafka-transactional".into(),
            tombstones: true,
            transactional_id: transactional_id.into(),
            offsets_topic: offsets_topic.into(),
            checkpoint_key: None,
            timeout: Duration::from_secs(60),
            commit_budget: None,
        }
    }

    /// The checkpoint of the last committed transaction (as read at start, then as
    /// committed by this sink).
    pub fn committed(&self) -> &Checkpoint {
        &self.committed
    }

    fn check_deliveries(&mut self) -> Result<(), KafkaIoError> {
        // Positions popped here are not durable yet (the transaction is open); this only
        // surfaces failed deliveries early.
        self.core
            .advance()
            .map(drop)
            .map_err(|failure| self.delivery_error(*failure))
    }

    /// A failed delivery, or the fencing it shows.
    fn delivery_error(&self, (position, topic, source): QueueFailure) -> KafkaIoError {
        if is_fenced_given(&source, fatal(&self.core.producer)) {
            KafkaIoError::Fenced {
                transactional_id: self.transactional_id.clone(),
                source,
            }
        } else {
            KafkaIoError::Delivery {
                position: Box::new(position),
                topic,
                source,
            }
        }
    }

    async fn write_events(&mut self, events: &[ChangeEvent]) -> Result<(), KafkaIoError> {
        if self.failed {
            return Err(KafkaIoError::Poisoned);
        }
        if events.iter().all(|e| self.committed.covers(e.position())) {
            events.iter().for_each(|e| {
                self.replayed.advance(e.position().clone());
            });
            return Ok(());
        }
        if !self.open {
            self.core.producer.begin_transaction().map_err(|source| {
                txn_error(
                    &self.transactional_id,
                    "begin",
                    false,
                    source,
                    fatal(&self.core.producer),
                )
            })?;
            self.open = true;
        }
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            if self.committed.covers(event.position()) {
                // Already committed before a restart: writing it again would duplicate it.
                self.replayed.advance(event.position().clone());
            } else {
                fresh.push(event);
            }
        }
        let encoded = encode_all(
            &fresh,
            self.codec.as_ref(),
            self.namer.as_ref(),
            self.tombstones,
        )?;
        let sent = self.core.send_events(&fresh, &encoded).await;
        if let Err(failure) = sent {
            return Err(self.delivery_error(*failure));
        }
        for event in fresh {
            self.in_transaction.advance(event.position().clone());
        }
        self.check_deliveries()
    }

    async fn commit(&mut self) -> Result<Vec<Position>, KafkaIoError> {
        if self.failed {
            return Err(KafkaIoError::Poisoned);
        }
        if !self.open {
            let replayed = std::mem::take(&mut self.replayed);
            return Ok(replayed.positions().cloned().collect());
        }
        let mut checkpoint = self.committed.clone();
        for position in self.in_transaction.positions() {
            checkpoint.advance(position.clone());
        }
        let value =
            serde_json::to_vec(&checkpoint).map_err(|source| KafkaIoError::BadCheckpoint {
                topic: self.offsets_topic.clone(),
                partition: -1,
                offset: -1,
                source,
            })?;
        let record = OutRecord {
            topic: self.offsets_topic.clone(),
            key: Some(self.checkpoint_key.clone().into_bytes()),
            value: Some(value),
            headers: Vec::new(),
        };
        self.core
            .send_record(&record, CHECKPOINT_TICKET)
            .await
            .map_err(|source| {
                txn_error(
                    &self.transactional_id,
                    "commit",
                    false,
                    source,
                    fatal(&self.core.producer),
                )
            })?;
        // commit_transaction flushes every message of the transaction first and fails if any
        // was not delivered, so success means all of them, and the checkpoint, are in.
        let committed = self
            .with_retries("commit", |p, wait| p.commit_transaction(wait))
            .await?;
        if let Err(source) = committed {
            let abortable = matches!(&source, KafkaError::Transaction(e) if e.txn_requires_abort());
            // The abort follows the same contract: a retriable error (the broker still away)
            // means call it again.
            let aborted = abortable
                && self
                    .with_retries("abort", |p, wait| p.abort_transaction(wait))
                    .await?
                    .is_ok();
            return Err(txn_error(
                &self.transactional_id,
                "commit",
                aborted,
                source,
                fatal(&self.core.producer),
            ));
        }
        self.check_deliveries()?;
        self.core.clear_queues();
        self.open = false;
        self.committed = checkpoint;
        let mut reported = std::mem::take(&mut self.replayed);
        for position in std::mem::take(&mut self.in_transaction).positions() {
            reported.advance(position.clone());
        }
        Ok(reported.positions().cloned().collect())
    }
}

impl TransactionalSink {
    /// `call` (`commit_transaction` or `abort_transaction`), called again while its error is
    /// retriable, within [`commit_budget`](TransactionalSinkBuilder::commit_budget).
    ///
    /// librdkafka's contract (rdkafka.h, `rd_kafka_commit_transaction`,
    /// `rd_kafka_abort_transaction`): a retriable error (`rd_kafka_error_is_retriable`, e.g.
    /// `__TIMED_OUT` while the broker is away) leaves the operation going on in the background,
    /// and calling it again resumes it (see [`is_retriable`] for rdkafka's flush before the
    /// commit); an error that requires abort, or a fatal one, is not retried here. Each call
    /// waits at most the sink's `timeout` and never past the budget; between calls, backon's
    /// exponential backoff (100 ms doubling to 2 s).
    async fn with_retries(
        &self,
        what: &'static str,
        call: fn(&DeliveryProducer, Duration) -> rdkafka::error::KafkaResult<()>,
    ) -> Result<rdkafka::error::KafkaResult<()>, KafkaIoError> {
        let deadline = tokio::time::Instant::now() + self.commit_budget;
        let (producer, timeout, id) = (
            Arc::clone(&self.core.producer),
            self.timeout,
            self.transactional_id.clone(),
        );
        let attempt = || {
            let producer = Arc::clone(&producer);
            async move {
                let wait =
                    timeout.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                match blocking(&producer, move |p| call(p, wait)).await {
                    Ok(Ok(())) => Ok(Ok(())),
                    Ok(Err(error)) if is_retriable(&error) => Err(Retry::Retriable(error)),
                    Ok(Err(error)) => Ok(Err(error)),
                    Err(task) => Err(Retry::Task(task)),
                }
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .without_max_times();
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, Retry::Retriable(_)) && tokio::time::Instant::now() < deadline)
            .notify(|e, wait| {
                if let Retry::Retriable(error) = e {
                    tracing::warn!(transactional_id = %id, operation = what, %error, ?wait, "transaction operation not finished; calling it again");
                }
            })
            .await;
        match result {
            Ok(committed) => Ok(committed),
            // The budget ran out: the last retriable error is the operation's error.
            Err(Retry::Retriable(error)) => Ok(Err(error)),
            Err(Retry::Task(task)) => Err(task),
        }
    }
}

/// Why a commit attempt ends: an error librdkafka says to retry, or a failed blocking task.
enum Retry {
    Retriable(KafkaError),
    Task(KafkaIoError),
}

/// Whether a commit's error says to call commit again: librdkafka marks the transactional
/// call's error retriable (`rd_kafka_error_is_retriable`), or rdkafka's own flush before
/// `rd_kafka_commit_transaction` (rdkafka's `commit_transaction` serves the delivery queue
/// that way) timed out, which leaves the transaction as it was, its messages queued.
fn is_retriable(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_retriable(),
        KafkaError::Flush(code) => *code == rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
        _ => false,
    }
}

#[async_trait]
impl Sink for TransactionalSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        let result = self.write_events(events).await;
        result.map(|()| Vec::new()).map_err(|e| {
            self.failed = true;
            e.into_sink_error(&self.name)
        })
    }

    async fn flush(&mut self) -> cdc_core::Result<Vec<Position>> {
        let result = self.commit().await;
        result.map_err(|e| {
            self.failed = true;
            e.into_sink_error(&self.name)
        })
    }
}
