//! The pipeline file: one TOML document describing a source, a sink, where checkpoints go and
//! how the service is operated.
//!
//! ```toml
//! [pipeline]
//! name = "erp-to-lake"
//!
//! [source.mssql]
//! connection = "Server=tcp:db.internal,1433;Database=shop;User Id=cdc;Password=${MSSQL_PASSWORD}"
//! topic_prefix = "erp"
//!
//! [sink.s3]
//! url = "s3://lake/raw"
//! format = "parquet"
//!
//! [offsets]
//! file = "/var/lib/cdc/erp.offsets.json"
//! ```
//!
//! Every key is checked: an unknown key is an error naming it, its table and the closest valid
//! key; `${NAME}` anywhere in the text is replaced by the environment variable `NAME` before
//! parsing (an unset variable is an error naming it); secrets never appear in `Debug` output,
//! in errors or in [`PipelineFile::to_toml`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A password, key or token: cdc-core's, one type for the family (serialised as [`REDACTED`]).
pub use cdc_core::Secret;

/// What a [`Secret`] prints as in a printed configuration.
pub const REDACTED: &str = Secret::REDACTED;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The whole pipeline file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Pipeline settings (`[pipeline]`).
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// Exactly one source (`[source.mssql]` or `[source.kafka]`).
    pub source: SourceSection,
    /// Exactly one sink (`[sink.kafka]` or `[sink.s3]`).
    pub sink: SinkSection,
    /// Where checkpoints go (`[offsets]`); required unless the Kafka source's consumer group
    /// offsets or the transactional Kafka sink hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<OffsetsSection>,
    /// Operations endpoints (`[ops]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub ops: OpsSection,
    /// Logging (`[log]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub log: LogSection,
    /// What [`PipelineFile::parse`] read but warns about: keys under their old names
    /// (`server_name` for `topic_prefix`, …), one sentence each. Not part of the file.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `[source.mssql]` keys still read under an old name, with the name in Debezium's
/// vocabulary that replaced it (serde aliases on [`MssqlSection`]).
const RENAMED_MSSQL_KEYS: &[(&str, &str, &str)] = &[
    ("server_name", "topic_prefix", "topic.prefix"),
    (
        "max_transactions_per_poll",
        "max_iteration_transactions",
        "max.iteration.transactions",
    ),
];

/// One warning per old key name `text` uses (see [`RENAMED_MSSQL_KEYS`]); `text` already
/// parsed as a [`PipelineFile`], so it is valid TOML.
fn renamed_key_warnings(text: &str) -> Vec<String> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let Some(mssql) = table
        .get("source")
        .and_then(|s| s.get("mssql"))
        .and_then(|m| m.as_table())
    else {
        return Vec::new();
    };
    RENAMED_MSSQL_KEYS
        .iter()
        .filter(|(old, _, _)| mssql.contains_key(*old))
        .map(|(old, new, debezium)| {
            format!(
                "source.mssql.{old} is deprecated and will be removed: write {new} \
                 (Debezium's {debezium})"
            )
        })
        .collect()
}

/// `[pipeline]`: the runner's settings (cdc-core's `PipelineConfig`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Name in logs and metrics.
    pub name: String,
    /// Batches waiting between source and sink (back-pressure bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<usize>,
    /// Flush the sink after this many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_max_events: Option<usize>,
    /// Flush the sink after this many bytes of row data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_max_bytes: Option<usize>,
    /// Flush at least this often, in milliseconds; 0 for never by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<u64>,
    /// How often the sink's `tick` runs, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_interval_ms: Option<u64>,
    /// How long a graceful stop (SIGTERM/SIGINT) may take before the process exits anyway,
    /// in milliseconds (default 30 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout_ms: Option<u64>,
}

impl Default for PipelineSection {
    fn default() -> Self {
        Self {
            name: "cdc".into(),
            queue_capacity: None,
            flush_max_events: None,
            flush_max_bytes: None,
            flush_interval_ms: None,
            tick_interval_ms: None,
            shutdown_timeout_ms: None,
        }
    }
}

/// `[source.*]`: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// SQL Server CDC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mssql: Option<MssqlSection>,
    /// A Kafka consumer group reading Debezium JSON topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSourceSection>,
}

/// `[sink.*]`: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// Kafka topics, one per table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSinkSection>,
    /// Files on S3 or any object_store backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3SinkSection>,
}

/// Debezium's `snapshot.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot without a stored position, then stream.
    Initial,
    /// Snapshot without a stored position, then stop.
    InitialOnly,
    /// Stream only (Debezium's `no_data`, formerly `schema_only`).
    NoData,
    /// Snapshot when there is no position or it is no longer available.
    WhenNeeded,
    /// Snapshot at every start.
    Always,
}

/// Debezium's `snapshot.isolation.mode` (those this reader offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotIsolation {
    /// `SNAPSHOT` isolation.
    Snapshot,
    /// `REPEATABLE READ` with shared table locks.
    RepeatableRead,
    /// `READ COMMITTED`.
    ReadCommitted,
}

/// TLS towards SQL Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// Encrypt everything (default).
    Required,
    /// TDS 8.0 strict.
    Strict,
    /// Only the login.
    LoginOnly,
    /// No TLS.
    Off,
}

/// What to do when the stored position fell out of retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionPolicy {
    /// Stop with an error.
    Fail,
    /// Take a new snapshot.
    Resnapshot,
}

/// What to do with a table that becomes captured while the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NewTableSnapshot {
    /// Snapshot it incrementally while the others keep streaming (the default).
    Incremental,
    /// Snapshot it with streaming paused, then resume (Debezium's blocking snapshot).
    Blocking,
    /// Stream only its changes.
    None,
}

/// `[source.mssql]`: every option of cdc-mssql's `MssqlConfigBuilder`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MssqlSection {
    /// An ADO.NET connection string; the keys below override what it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Secret>,
    /// Server host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Server port (1433).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Databases to read (Debezium's `database.names`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// The first part of topic names and the events' `source.name` (Debezium's
    /// `topic.prefix`). The old key `server_name` is still read, with a warning
    /// ([`PipelineFile::warnings`]).
    #[serde(alias = "server_name")]
    pub topic_prefix: String,
    /// `schema.table` patterns to read (`table.include.list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_tables: Vec<String>,
    /// `schema.table` patterns to skip (`table.exclude.list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
    /// `schema.table.column` patterns to drop (`column.exclude.list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_columns: Vec<String>,
    /// Keys for tables by configuration (`message.key.columns`):
    /// `<table>:<column>,<column>;…`, `<table>` being `schema.table` or
    /// `database.schema.table` with `*` wildcards; see cdc-mssql's
    /// `MssqlConfigBuilder::message_key_columns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_key_columns: Option<String>,
    /// `snapshot.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_mode: Option<SnapshotMode>,
    /// `snapshot.isolation.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_isolation: Option<SnapshotIsolation>,
    /// Without a position and without a snapshot, stream from the oldest change row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_from_earliest: Option<bool>,
    /// Rows per snapshot query (`snapshot.fetch.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_chunk_size: Option<u32>,
    /// Pause between empty polls in ms (`poll.interval.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// Transactions per poll window (`max.iteration.transactions`). The old key
    /// `max_transactions_per_poll` is still read, with a warning ([`PipelineFile::warnings`]).
    #[serde(
        default,
        alias = "max_transactions_per_poll",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_iteration_transactions: Option<u32>,
    /// Rows per change-table query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// Events per batch (`max.batch.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_events: Option<usize>,
    /// Heartbeat interval in ms; 0 for none (`heartbeat.interval.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
    /// What to do when the position fell out of retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionPolicy>,
    /// `ApplicationIntent=ReadOnly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_intent: Option<bool>,
    /// Query timeout in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_timeout_ms: Option<u64>,
    /// Connect timeout in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// TLS mode (`database.encrypt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Accept any certificate (`database.trustServerCertificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_server_certificate: Option<bool>,
    /// CA certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Retries of a transient failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// A table that becomes captured while the pipeline runs (its capture instance is created
    /// and the include list selects it): `incremental` (the default) snapshots it in chunks
    /// while the others keep streaming, `none` streams only its changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_table_snapshot: Option<NewTableSnapshot>,
    /// Rows per incremental snapshot chunk (Debezium's `incremental.snapshot.chunk.size`;
    /// 1024 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_chunk_size: Option<u32>,
    /// Debezium's signal table (`signal.data.collection`): `schema.table` or
    /// `database.schema.table`, captured like any table; its inserts are read as signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_data_collection: Option<String>,
    /// Debezium's Kafka signal topic (`signal.kafka.topic`): messages whose key is
    /// `topic_prefix` are signals (partition 0 only, as Debezium reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_kafka_topic: Option<String>,
    /// The signal topic's brokers (`signal.kafka.bootstrap.servers`); when absent, those of
    /// `[sink.kafka]` with its `security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_kafka_brokers: Option<String>,
    /// The signal consumer's group (`signal.kafka.groupId`; Debezium's default `kafka-signal`).
    /// Its committed offset is where reading resumes after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_kafka_group_id: Option<String>,
    /// Further librdkafka properties of the signal consumer (Debezium's `signal.consumer.*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signal_kafka_properties: BTreeMap<String, String>,
}

impl MssqlSection {
    /// The signal-channel keys hang together: the Kafka ones need `signal_kafka_topic`, and
    /// the topic needs brokers (its own or `[sink.kafka]`'s).
    fn validate_signals(&self, sink_is_kafka: bool) -> Result<(), ConfigError> {
        let Some(topic) = &self.signal_kafka_topic else {
            for (key, given) in [
                ("signal_kafka_brokers", self.signal_kafka_brokers.is_some()),
                (
                    "signal_kafka_group_id",
                    self.signal_kafka_group_id.is_some(),
                ),
                (
                    "signal_kafka_properties",
                    !self.signal_kafka_properties.is_empty(),
                ),
            ] {
                if given {
                    return Err(ConfigError::field(
                        format!("source.mssql.{key}"),
                        "only applies with signal_kafka_topic",
                    ));
                }
            }
            return Ok(());
        };
        if topic.trim().is_empty() {
            return Err(ConfigError::field(
                "source.mssql.signal_kafka_topic",
                "empty: name the signal topic",
            ));
        }
        if self.signal_kafka_brokers.is_none() && !sink_is_kafka {
            return Err(ConfigError::field(
                "source.mssql.signal_kafka_brokers",
                "missing: the signal topic needs brokers (Debezium's \
                 signal.kafka.bootstrap.servers) when the sink is not [sink.kafka]",
            ));
        }
        Ok(())
    }
}

/// Kafka client settings shared by the Kafka source, sink and offset store (each section
/// holds `brokers`, `security` and `properties` itself).
#[derive(Debug, Clone, Copy)]
pub struct KafkaClient<'a> {
    /// `bootstrap.servers`.
    pub brokers: &'a str,
    /// Security settings; plaintext when absent.
    pub security: Option<&'a KafkaSecurity>,
    /// Further librdkafka properties.
    pub properties: &'a BTreeMap<String, String>,
}

macro_rules! kafka_client {
    ($($section:ty),*) => {$(
        impl $section {
            /// The Kafka client settings of this section.
            pub fn client(&self) -> KafkaClient<'_> {
                KafkaClient {
                    brokers: &self.brokers,
                    security: self.security.as_ref(),
                    properties: &self.properties,
                }
            }
        }
    )*};
}
kafka_client!(KafkaSourceSection, KafkaSinkSection, KafkaOffsets);

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, optionally mutual.
    Ssl,
    /// SASL over TLS.
    SaslSsl,
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Mechanism {
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `PLAIN`.
    Plain,
}

/// `[….security]` of a Kafka client.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecurity {
    /// The protocol.
    pub protocol: KafkaProtocol,
    /// SASL mechanism (with `sasl_ssl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
    /// SASL user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SASL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// CA file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// Client key (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Client key password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_password: Option<Secret>,
}

/// What the Kafka source does with records it cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeFailure {
    /// Stop with an error (default).
    Fail,
    /// Log and go on.
    Skip,
    /// Copy to `dead_letter_topic` and go on.
    DeadLetter,
}

/// `[source.kafka]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceSection {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Security settings; plaintext when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<KafkaSecurity>,
    /// Further librdkafka properties, passed as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Consumer group.
    pub group_id: String,
    /// Topics (names, or regexes starting with `^`).
    pub topics: Vec<String>,
    /// Records per batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Wait for a first record, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_timeout_ms: Option<u64>,
    /// Offset commit interval, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_interval_ms: Option<u64>,
    /// What to do with undecodable records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_decode_failure: Option<DecodeFailure>,
    /// The dead-letter topic, with `on_decode_failure = "dead_letter"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
}

/// Topic creation by the Kafka sink.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateTopics {
    /// Partitions per topic.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// `cleanup.policy=compact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<bool>,
    /// Further topic configs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// `[sink.kafka]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSection {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Security settings; plaintext when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<KafkaSecurity>,
    /// Further librdkafka properties, passed as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Topic prefix instead of the source's logical server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
    /// Debezium JSON with the embedded Connect schema (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<bool>,
    /// A tombstone after each delete (`tombstones.on.delete`, default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<bool>,
    /// Transactional producer writing the checkpoint in the same transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exactly_once: Option<bool>,
    /// `transactional.id` (exactly-once; default `cdc-<pipeline name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// Compacted topic the transactional sink writes checkpoints to (default `cdc-offsets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets_topic: Option<String>,
    /// Delivery wait on flush / transaction timeout, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Create missing topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_topics: Option<CreateTopics>,
    /// Debezium's `time.precision.mode`: `adaptive` (default), `adaptive_time_microseconds`
    /// or `connect` ([`cdc_core::codec::TimePrecisionMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_precision_mode: Option<cdc_core::codec::TimePrecisionMode>,
    /// Debezium's `decimal.handling.mode`: `precise` (default), `double` or `string`
    /// ([`cdc_core::codec::DecimalHandlingMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal_handling_mode: Option<cdc_core::codec::DecimalHandlingMode>,
    /// Debezium's `binary.handling.mode`: `bytes` (default), `base64`, `base64-url-safe` or
    /// `hex` ([`cdc_core::codec::BinaryHandlingMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_handling_mode: Option<cdc_core::codec::BinaryHandlingMode>,
    /// Debezium's `unavailable.value.placeholder`: what an unchanged large-object value in an
    /// update's before image is written as (default `__debezium_unavailable_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_value_placeholder: Option<String>,
}

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    Ndjson,
}

/// Row layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowLayout {
    /// One column per table column plus metadata columns.
    Flattened,
    /// The Debezium envelope (`before`, `after`, `source`, `op`).
    Debezium,
}

/// Compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// zstd.
    Zstd,
    /// Snappy (Parquet only).
    Snappy,
    /// gzip.
    Gzip,
    /// None.
    None,
}

/// How files are partitioned into directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionerKind {
    /// `partition=<kafka partition>`.
    Default,
    /// `field=value` per column of `fields`.
    Field,
    /// By time, `path_format` and `partition_duration_ms`.
    Time,
}

/// `[sink.s3.partitioner]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionerSection {
    /// Which partitioner.
    pub kind: PartitionerKind,
    /// Columns, for `field`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Joda-Time pattern, for `time` (default hourly, `'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_format: Option<String>,
    /// Window length in ms, for `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_duration_ms: Option<u64>,
    /// IANA zone or `UTC`, for `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Column holding the time, for `time`; the commit time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
}

/// `[sink.s3.rotation]`: when a file closes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RotationSection {
    /// Events per file (`flush.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
    /// Bytes per file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// Record-time span of a file, in ms (`rotate.interval.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_interval_ms: Option<u64>,
    /// Wall-clock age of an open file, in ms (`rotate.schedule.interval.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_interval_ms: Option<u64>,
}

/// `[sink.s3.retry]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// First wait, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff_ms: Option<u64>,
    /// Longest wait, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}

/// `[sink.s3]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3SinkSection {
    /// `s3://bucket/prefix`, `file:///dir`, `memory:///`, … (object_store URL).
    pub url: String,
    /// object_store options (`region`, `endpoint`, `access_key_id`, …). Values whose key
    /// names a secret are redacted in `print-config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// File format (default parquet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// Row layout (default flattened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<RowLayout>,
    /// Compression (Parquet: zstd; NDJSON: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Parquet row-group size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_bytes: Option<usize>,
    /// NDJSON with the embedded Connect schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndjson_schemas: Option<bool>,
    /// Partitioner (default `partition=N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioner: Option<PartitionerSection>,
    /// Rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSection>,
    /// Total bytes buffered across open files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget: Option<usize>,
    /// Multipart part size in bytes (`s3.part.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<usize>,
    /// Concurrent part uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_concurrency: Option<usize>,
    /// Retries of throttling and 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySection>,
}

/// `[offsets]`: exactly one store.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OffsetsSection {
    /// A local JSON file, replaced atomically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// An object in an object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectOffsets>,
    /// A compacted Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaOffsets>,
}

/// `[offsets.object]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObjectOffsets {
    /// The object's URL, e.g. `s3://lake/_cdc/erp.offsets.json`.
    pub url: String,
    /// object_store options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// `[offsets.kafka]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaOffsets {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Security settings; plaintext when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<KafkaSecurity>,
    /// Further librdkafka properties, passed as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// The compacted topic.
    pub topic: String,
    /// The record key (default: the pipeline name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `[ops]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// Address of the `/metrics`, `/health` and `/ready` endpoints, e.g. `0.0.0.0:9464`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// How often the source's lag beside the pipeline (`cdc_source_lsn_distance`,
    /// `cdc_consumer_lag`) is read, in milliseconds (default 5 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_interval_ms: Option<u64>,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable text (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    /// `tracing` filter, e.g. `info,cdc_mssql=debug` (`RUST_LOG` wins when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A configuration problem, with where it is and what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `${NAME}` names an unset variable.
    #[error("{origin}:{line}: environment variable {name} is not set (referenced as ${{{name}}})")]
    MissingEnv {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// Variable.
        name: String,
    },
    /// A key no section knows.
    #[error("{origin}:{line}: unknown key `{key}` in [{table}]{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// The table (`source.mssql`).
        table: String,
        /// The key.
        key: String,
        /// The closest valid key, if one is close.
        suggestion: Option<String>,
    },
    /// Any other parse or type error.
    #[error("{origin}:{line}: {message}{}", if table.is_empty() { String::new() } else { format!(" in [{table}]") })]
    Invalid {
        /// File name.
        origin: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The table.
        table: String,
        /// What is wrong, from the TOML parser, with a suggestion for unknown values.
        message: String,
    },
    /// A value that parses but cannot be used; names the field.
    #[error("{field}: {reason}")]
    Field {
        /// Dotted path of the field (`sink.s3.partitioner.timezone`).
        field: String,
        /// Why.
        reason: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Field`].
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl PipelineFile {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), |name| {
            std::env::var(name).ok()
        })
    }

    /// Parses `text` (named `origin` in errors), with `${NAME}` looked up through `env`.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let substituted = substitute(text, origin, &env)?;
        // Spans index the substituted text; its lines are the original's (substituted values
        // have their line breaks escaped), and it is never quoted in errors.
        let mut file: PipelineFile =
            toml::from_str(&substituted).map_err(|e| toml_error(&e, &substituted, origin))?;
        file.validate()?;
        file.warnings = renamed_key_warnings(&substituted);
        Ok(file)
    }

    /// The checks serde cannot express: exactly one source, one sink, one offset store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.source.mssql, &self.source.kafka) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::field(
                    "source",
                    "give exactly one of [source.mssql] and [source.kafka], not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::field(
                    "source",
                    "missing: give [source.mssql] or [source.kafka]",
                ));
            }
            _ => {}
        }
        match (&self.sink.kafka, &self.sink.s3) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::field(
                    "sink",
                    "give exactly one of [sink.kafka] and [sink.s3], not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::field(
                    "sink",
                    "missing: give [sink.kafka] or [sink.s3]",
                ));
            }
            _ => {}
        }
        if let Some(offsets) = &self.offsets {
            let count = usize::from(offsets.file.is_some())
                + usize::from(offsets.object.is_some())
                + usize::from(offsets.kafka.is_some());
            if count != 1 {
                return Err(ConfigError::field(
                    "offsets",
                    "give exactly one of file, [offsets.object] and [offsets.kafka]",
                ));
            }
        }
        let transactional = self
            .sink
            .kafka
            .as_ref()
            .is_some_and(|k| k.exactly_once == Some(true));
        if self.source.mssql.is_some() && self.offsets.is_none() && !transactional {
            return Err(ConfigError::field(
                "offsets",
                "missing: a SQL Server source needs [offsets] (file, object or kafka) unless \
                 [sink.kafka] has exactly_once = true, which keeps them in its offsets topic",
            ));
        }
        if transactional && self.offsets.is_some() {
            return Err(ConfigError::field(
                "offsets",
                "with [sink.kafka] exactly_once = true the checkpoint is written inside the \
                 producer's transactions to offsets_topic; remove [offsets]",
            ));
        }
        if let Some(m) = &self.source.mssql {
            m.validate_signals(self.sink.kafka.is_some())?;
        }
        if self.source.kafka.is_some() && self.sink.kafka.is_some() {
            return Err(ConfigError::field(
                "sink.kafka",
                "Kafka to Kafka is not a pipeline this service runs; use [sink.s3]",
            ));
        }
        Ok(())
    }

    /// The file as TOML, secrets redacted (`cdc print-config`).
    pub fn to_toml(&self) -> String {
        let mut copy = self.clone();
        redact_options(&mut copy);
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Whether an option key names a secret (object_store's `secret_access_key`,
/// `session_token`, librdkafka's `sasl.password`, …).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "credential", "private"]
        .iter()
        .any(|word| key.contains(word))
}

fn redact_options(file: &mut PipelineFile) {
    let redact = |map: &mut BTreeMap<String, String>| {
        for (key, value) in map.iter_mut() {
            if is_secret_key(key) {
                *value = REDACTED.to_string();
            }
        }
    };
    if let Some(s3) = &mut file.sink.s3 {
        redact(&mut s3.options);
    }
    if let Some(k) = &mut file.sink.kafka {
        redact(&mut k.properties);
    }
    if let Some(k) = &mut file.source.kafka {
        redact(&mut k.properties);
    }
    if let Some(m) = &mut file.source.mssql {
        redact(&mut m.signal_kafka_properties);
    }
    if let Some(o) = &mut file.offsets {
        if let Some(object) = &mut o.object {
            redact(&mut object.options);
        }
        if let Some(k) = &mut o.kafka {
            redact(&mut k.properties);
        }
    }
}

/// The byte ranges of the TOML comments in `text` (`#` to the end of the line, outside
/// strings): text there is left as written.
fn comment_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    // The end of a string opened at `from` by `quote`, after its closing delimiter.
    let close = |from: usize, quote: &[u8], escapes: bool, multi_line: bool| {
        let mut j = from;
        while j < bytes.len() {
            if escapes && bytes[j] == b'\\' {
                j += 2;
            } else if bytes[j..].starts_with(quote) {
                return j + quote.len();
            } else if !multi_line && bytes[j] == b'\n' {
                return j;
            } else {
                j += 1;
            }
        }
        bytes.len()
    };
    while i < bytes.len() {
        i = match bytes[i] {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => close(i + 3, b"\"\"\"", true, true),
            b'\'' if bytes[i..].starts_with(b"'''") => close(i + 3, b"'''", false, true),
            b'"' => close(i + 1, b"\"", true, false),
            b'\'' => close(i + 1, b"'", false, false),
            b'#' => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                ranges.push(i..end);
                end
            }
            _ => i + 1,
        };
    }
    ranges
}

/// Replaces `${NAME}` with the variable's value, escaped for a TOML basic string (the place
/// such references belong: `password = "${MSSQL_PASSWORD}"`). `$${` stands for a literal `${`.
/// Comments are left as written: `# ${NAME} is …` documents, it does not reference.
fn substitute(
    text: &str,
    origin: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let comments = comment_ranges(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let offset = text.len() - rest.len() + at;
        if let Some(comment) = comments.iter().find(|c| c.contains(&offset)) {
            // Copy through the end of the comment unchanged.
            let end = comment.end - (text.len() - rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let line = text.len() - rest.len() + at;
        let line = text[..line].matches('\n').count() + 1;
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Invalid {
                origin: origin.into(),
                line,
                table: String::new(),
                message: "`${` without a closing `}`".into(),
            });
        };
        let name = &after[..end];
        let value = env(name).ok_or_else(|| ConfigError::MissingEnv {
            origin: origin.into(),
            line,
            name: name.into(),
        })?;
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a TOML/serde error into a [`ConfigError`] that names the key, its table and the
/// closest valid key or value, without quoting the (substituted, maybe secret) line.
fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let message = without_string_values(error.message().trim());
    let (line, table) = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            // The table is the header in force on the span's first line (a missing field's
            // span starts at its table's header).
            let line_end = text
                .get(span.start..)
                .and_then(|rest| rest.find('\n'))
                .map_or(text.len(), |at| span.start + at);
            let through_line = text.get(..line_end).unwrap_or(text);
            (before.matches('\n').count() + 1, table_at(through_line))
        }
        None => (0, String::new()),
    };
    let quoted = backquoted(&message);
    if message.starts_with("unknown field")
        && let Some((key, valid)) = quoted.split_first()
    {
        return ConfigError::UnknownKey {
            origin: origin.into(),
            line,
            table,
            key: key.clone(),
            suggestion: closest(key, valid),
        };
    }
    let message = if message.starts_with("unknown variant") {
        match quoted.split_first() {
            Some((value, valid)) => match closest(value, valid) {
                Some(s) => format!("{message}; did you mean `{s}`?"),
                None => message,
            },
            None => message,
        }
    } else {
        message
    };
    ConfigError::Invalid {
        origin: origin.into(),
        line,
        table,
        message,
    }
}

/// serde quotes the offending string (`invalid type: string "…", expected u16`): after
/// `${ENV}` substitution it may be a secret, so it is dropped.
fn without_string_values(message: &str) -> String {
    for kind in ["invalid type: string \"", "invalid value: string \""] {
        if let Some(rest) = message.strip_prefix(kind) {
            let expected = rest
                .rfind("\", expected ")
                .map(|at| &rest[at + 1..])
                .unwrap_or_default();
            return format!("{}{expected}", kind.trim_end_matches(" \""));
        }
    }
    message.to_string()
}

/// The `[table]` or `[[table]]` header in force at the end of `before`.
fn table_at(before: &str) -> String {
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The `` `quoted` `` words of a serde message, in order.
fn backquoted(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}
