//! How the service runs: `[pipeline]` (the runner's settings), `[offsets]` (where
//! checkpoints go), `[ops]` (metrics and health endpoints) and `[log]`.

use super::KafkaSecurity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// `/ready` answers 503 once events handed to the sink have waited this long, in
    /// milliseconds, without any becoming durable (a Kafka sink whose brokers are down), and
    /// 200 again at the next durable progress. Default 60 000 with a Kafka sink; with an S3
    /// sink, whose events become durable when a file closes, unset means no such check (set it
    /// above the rotation's schedule interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_stall_ms: Option<u64>,
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
