//! `[sink.*]`: the Kafka sink's options and the S3 sink's (format, partitioner, rotation,
//! retries).

use super::KafkaSecurity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Debezium's `time.precision.mode` for NDJSON lines in the Debezium layout (what the
    /// Debezium source's converter decided for files Confluent's sink wrote from its topics;
    /// as `[sink.kafka]`'s). Parquet columns are typed: refused there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_precision_mode: Option<cdc_core::codec::TimePrecisionMode>,
    /// Debezium's `decimal.handling.mode`, as [`Self::time_precision_mode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal_handling_mode: Option<cdc_core::codec::DecimalHandlingMode>,
    /// Debezium's `binary.handling.mode`, as [`Self::time_precision_mode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_handling_mode: Option<cdc_core::codec::BinaryHandlingMode>,
    /// Debezium's `unavailable.value.placeholder`, as [`Self::time_precision_mode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_value_placeholder: Option<String>,
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
