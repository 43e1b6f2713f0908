//! `[source.*]`: the SQL Server source's options (every option of cdc-mssql's
//! `MssqlConfigBuilder`, in Debezium's terms) and the Kafka source's.

use super::{ConfigError, KafkaSecurity, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// ([`PipelineFile::warnings`](super::PipelineFile::warnings)).
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
    /// `max_transactions_per_poll` is still read, with a warning ([`PipelineFile::warnings`](super::PipelineFile::warnings)).
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
    pub(super) fn validate_signals(&self, sink_is_kafka: bool) -> Result<(), ConfigError> {
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
