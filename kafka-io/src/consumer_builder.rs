//! The consumer source's builder: validation (naming the bad field) and the consumer
//! properties that make its delivery guarantee.

use crate::consumer_context::{Assignment, Revocations, SourceContext};
use crate::dlq::DeadLetterWriter;
use crate::{DecodeFailurePolicy, KafkaConfig, KafkaIoError, KafkaSource};
use cdc_core::{Checkpoint, EventCodec};
use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// librdkafka's `topic.metadata.refresh.interval.ms`; this crate's default is 10 000 ms
/// (librdkafka's 300 000).
const METADATA_REFRESH: &str = "topic.metadata.refresh.interval.ms";

/// librdkafka's static membership property.
pub(crate) const GROUP_INSTANCE_ID: &str = "group.instance.id";

/// A consumer of `config` with `context`; `KafkaIoError::Client` if librdkafka refuses it.
pub(crate) fn create_consumer(
    config: &ClientConfig,
    context: SourceContext,
) -> Result<StreamConsumer<SourceContext>, KafkaIoError> {
    config
        .create_with_context(context)
        .map_err(|source| KafkaIoError::Client {
            role: "consumer",
            source,
        })
}

/// What the source needs to replace a consumer librdkafka declared unusable (a static member
/// fenced after an outage): the same configuration and context, and when it last did.
pub(crate) struct Rebuild {
    pub(crate) config: ClientConfig,
    /// Shares the assignment and revocation lists with the source.
    pub(crate) context: SourceContext,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) fence_window: Duration,
    pub(crate) rebuilt_at: Option<std::time::Instant>,
    pub(crate) rebuilt: u64,
}

/// Builds a [`KafkaSource`]; [`build`](Self::build) validates and names the bad field.
///
/// ```no_run
/// use std::sync::Arc;
/// use cdc_core::DebeziumJson;
/// use kafka_io::{DecodeFailurePolicy, KafkaConfig, KafkaSource};
/// # fn main() -> Result<(), kafka_io::KafkaIoError> {
/// let source = KafkaSource::builder(KafkaConfig::new("localhost:9092"), Arc::new(DebeziumJson::with_schema()), "s3-writer")
///     .topic("erp.shop.dbo.orders")
///     .on_decode_failure(DecodeFailurePolicy::DeadLetter { topic: "cdc.dlq".into() })
///     .build()?;
/// # Ok(()) }
/// ```
pub struct KafkaSourceBuilder {
    pub(crate) kafka: KafkaConfig,
    pub(crate) codec: Arc<dyn EventCodec>,
    pub(crate) group_id: String,
    pub(crate) topics: Vec<String>,
    pub(crate) name: String,
    pub(crate) batch_size: usize,
    pub(crate) poll_timeout: Duration,
    pub(crate) commit_interval: Duration,
    pub(crate) policy: DecodeFailurePolicy,
    pub(crate) fence_window: Duration,
}

impl std::fmt::Debug for KafkaSourceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSourceBuilder")
            .field("kafka", &self.kafka)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl KafkaSourceBuilder {
    /// Adds a topic to subscribe to (a name, or a regex starting with `^`).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Name for logs and errors (default `kafka`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// At most this many records per batch (default 1000).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch_size = records;
        self
    }

    /// How long `next_batch` waits for a first record before returning an empty batch
    /// (default 100 ms).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// How often librdkafka commits the offsets stored by `ack` (default 1 s).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Static membership (`group.instance.id`): a second fencing sooner than this after the
    /// consumer was rebuilt is a duplicate `group.instance.id`, not an outage (default 60 s).
    ///
    /// A broker outage longer than `session.timeout.ms` ends the member's session, and
    /// librdkafka raises the fatal `FencedInstanceId` when it is back; the source then drops
    /// the consumer, builds a new one with the same configuration and goes on from the
    /// committed offsets. Two live processes with one `group.instance.id` fence each other
    /// within seconds of every rebuild: the second fencing inside this window stops the source
    /// with [`KafkaIoError::DuplicateGroupInstanceId`]. So does a second outage longer than
    /// the session within the window.
    pub fn fence_window(mut self, window: Duration) -> Self {
        self.fence_window = window;
        self
    }

    /// What to do with records the codec cannot decode (default: fail).
    pub fn on_decode_failure(mut self, policy: DecodeFailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The source; fails naming the first invalid field.
    pub fn build(self) -> Result<KafkaSource, KafkaIoError> {
        if self.name.trim().is_empty() {
            return Err(KafkaIoError::config("name", "must not be empty"));
        }
        if self.group_id.trim().is_empty() {
            return Err(KafkaIoError::config("group_id", "must not be empty"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(KafkaIoError::config(
                "topics",
                "need at least one non-empty topic",
            ));
        }
        if self.batch_size == 0 {
            return Err(KafkaIoError::config(
                "batch_size",
                "must be greater than zero",
            ));
        }
        if self.poll_timeout.is_zero() {
            return Err(KafkaIoError::config(
                "poll_timeout",
                "must be greater than zero",
            ));
        }
        if self.commit_interval.is_zero() {
            return Err(KafkaIoError::config(
                "commit_interval",
                "must be greater than zero",
            ));
        }
        if self.fence_window.is_zero() {
            return Err(KafkaIoError::config(
                "fence_window",
                "must be greater than zero",
            ));
        }
        self.kafka.validate()?;
        let dead_letters = match &self.policy {
            DecodeFailurePolicy::DeadLetter { topic } => {
                Some(DeadLetterWriter::new(&self.kafka, topic.clone())?)
            }
            _ => None,
        };
        let mut config = self.kafka.client_config();
        config.set("auto.offset.reset", "earliest");
        // librdkafka looks again for a subscribed topic that does not exist yet only at its
        // periodic metadata refresh once another subscribed topic exists: a second
        // Debezium topic, created with the table's first change, was first read 5 minutes
        // later (the default interval). Kafka's Java consumer asks for missing topics'
        // metadata at once. A passed-through value still wins.
        if config.get(METADATA_REFRESH).is_none() {
            config.set(METADATA_REFRESH, "10000");
        }
        // Set after the pass-through properties: these make the delivery guarantee.
        // Offsets are stored only by `ack` (durable downstream); librdkafka's auto-commit
        // then commits stored offsets only, periodically and on revoke and close.
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                self.commit_interval.as_millis().to_string(),
            )
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false");
        let assignment = Assignment::default();
        let revocations = Revocations::default();
        let context = SourceContext {
            name: self.name.clone(),
            assignment: assignment.clone(),
            revocations: revocations.clone(),
            auth: self.kafka.auth_context(),
        };
        let consumer = create_consumer(&config, context.clone())?;
        let group_instance_id = config
            .get(GROUP_INSTANCE_ID)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        Ok(KafkaSource {
            name: self.name,
            consumer: Some(Arc::new(consumer)),
            rebuild: Rebuild {
                config,
                context,
                group_instance_id,
                fence_window: self.fence_window,
                rebuilt_at: None,
                rebuilt: 0,
            },
            codec: self.codec,
            topics: self.topics,
            batch_size: self.batch_size,
            poll_timeout: self.poll_timeout,
            policy: self.policy,
            dead_letters,
            assignment,
            revocations,
            resume: Checkpoint::default(),
            acked: HashMap::new(),
            owned: HashMap::new(),
            started: false,
            conditions: Default::default(),
        })
    }
}
