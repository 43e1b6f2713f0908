//! From a [`PipelineFile`] to the library's source, sink and offset store, through their
//! public builders only. Every builder error is reported naming the pipeline-file field.//!
//! This module builds the whole ([`build`]: [`Parts`]), the runner's settings and the offset
//! store; each library's builder is fed by its own file:
//! - `mssql`: `[source.mssql]` → cdc-mssql's `MssqlConfig`;
//! - `kafka`: the Kafka client settings, the Kafka sink's codec and the Kafka signal channel;
//! - `s3`: `[sink.s3]` → s3-sink's `S3Sink` and the object store for a URL.

mod kafka;
mod mssql;
mod s3;

pub use kafka::{kafka_config, kafka_sink_codec};
pub use mssql::mssql_config;
pub use s3::{object_store_for, s3_sink, time_partitioner};

use crate::config::{self, ConfigError, PipelineFile};
use crate::metering::{MeteredSink, SinkCounters};
use crate::signals::KafkaSignalChannel;
use cdc_core::{
    ChangeSource, DebeziumJson, EventCodec, FileOffsetStore, MemoryOffsetStore, ObjectOffsetStore,
    OffsetStore, PipelineConfig, Sink,
};
use cdc_mssql::{MssqlSource, SnapshotProgress, SnapshotSignals};
use kafka::kafka_signal_channel;
use kafka_io::{
    DecodeFailurePolicy, DefaultTopicNamer, KafkaOffsetStore, KafkaSink, KafkaSource, TopicSpec,
    TransactionalSink,
};
use s3_sink::S3Sink;
use std::sync::Arc;
use std::time::Duration;

/// The parts of a running pipeline, type-erased so one binary runs every combination.
pub struct Parts {
    /// The runner's settings.
    pub pipeline: PipelineConfig,
    /// The source.
    pub source: Box<dyn ChangeSource>,
    /// The sink, metered.
    pub sink: Box<dyn Sink>,
    /// Where checkpoints go.
    pub offsets: Box<dyn OffsetStore>,
    /// Snapshot progress, for a SQL Server source.
    pub snapshot: Option<SnapshotProgress>,
    /// The handle that sends signals to a SQL Server source.
    pub signals: Option<SnapshotSignals>,
    /// Debezium's Kafka signal channel, when `signal_kafka_topic` is set; not reading yet.
    pub signal_kafka: Option<KafkaSignalChannel>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("pipeline", &self.pipeline)
            .field("source", &self.source.name())
            .field("sink", &self.sink.name())
            .finish_non_exhaustive()
    }
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn field_error(field: &str) -> impl Fn(String) -> ConfigError + '_ {
    move |reason| ConfigError::field(field, reason)
}

/// The runner's settings from `[pipeline]`.
pub fn pipeline_config(file: &PipelineFile) -> Result<PipelineConfig, ConfigError> {
    let p = &file.pipeline;
    let mut config = PipelineConfig::new(p.name.clone());
    if let Some(v) = p.queue_capacity {
        config = config.queue_capacity(v);
    }
    if let Some(v) = p.flush_max_events {
        config = config.flush_max_events(v);
    }
    if let Some(v) = p.flush_max_bytes {
        config = config.flush_max_bytes(v);
    }
    if let Some(v) = p.flush_interval_ms {
        config = config.flush_interval((v > 0).then(|| ms(v)));
    }
    if let Some(v) = p.tick_interval_ms {
        config = config.tick_interval(ms(v));
    }
    config
        .validate()
        .map_err(|e| ConfigError::field("pipeline", e.to_string()))?;
    Ok(config)
}

/// The offset store from `[offsets]`; `None` when none is configured.
pub fn offset_store(file: &PipelineFile) -> Result<Option<Box<dyn OffsetStore>>, ConfigError> {
    let Some(offsets) = &file.offsets else {
        return Ok(None);
    };
    if let Some(path) = &offsets.file {
        return Ok(Some(Box::new(FileOffsetStore::new(path.clone()))));
    }
    if let Some(object) = &offsets.object {
        let url = url::Url::parse(&object.url)
            .map_err(|e| ConfigError::field("offsets.object.url", e.to_string()))?;
        let (store, path) = object_store_for(&url, &object.options)
            .map_err(|e| ConfigError::field("offsets.object", e.to_string()))?;
        return Ok(Some(Box::new(ObjectOffsetStore::new(
            Arc::from(store),
            path,
        ))));
    }
    if let Some(k) = &offsets.kafka {
        let kafka = kafka_config(k.client(), "offsets.kafka")?;
        let key = k.key.clone().unwrap_or_else(|| file.pipeline.name.clone());
        let store = KafkaOffsetStore::new(kafka, &k.topic, key)
            .map_err(|e| ConfigError::field("offsets.kafka", e.to_string()))?;
        return Ok(Some(Box::new(store)));
    }
    Ok(None)
}

/// Runs every check of `file` that [`build`] runs without connecting anywhere: the
/// pipeline's settings, the offset store and the S3 sink (rotation, partitioner, format,
/// store options). `cdc check` calls it so that it refuses what `cdc run` would refuse
/// (say `[sink.s3.rotation] max_records = 0`) instead of reporting a clean bill.
///
/// # Errors
/// The first [`ConfigError`] found, naming its field.
pub fn validate(file: &PipelineFile) -> Result<(), ConfigError> {
    pipeline_config(file)?;
    offset_store(file)?;
    if let Some(section) = &file.sink.s3 {
        s3_sink(section, &file.pipeline.name)?;
    }
    if let Some(k) = &file.sink.kafka {
        kafka_config(k.client(), "sink.kafka")?;
    }
    if let Some(k) = &file.source.kafka {
        kafka_config(k.client(), "source.kafka")?;
    }
    Ok(())
}

/// Builds every part. Async because the transactional Kafka sink reads its last committed
/// checkpoint while it is built.
pub async fn build(file: &PipelineFile, counters: SinkCounters) -> Result<Parts, ConfigError> {
    let pipeline = pipeline_config(file)?;
    let name = file.pipeline.name.clone();
    let mut snapshot = None;
    let mut signals = None;
    let mut signal_kafka = None;
    let mut default_prefix = None;
    let source: Box<dyn ChangeSource> = match (&file.source.mssql, &file.source.kafka) {
        (Some(m), _) => {
            let config = mssql_config(m)?;
            let topic_prefix = config.topic_prefix().to_string();
            default_prefix = Some(topic_prefix.clone());
            let mut source = MssqlSource::new(config);
            if let Some(rows) = m.incremental_chunk_size {
                source = source.incremental_chunk_size(rows);
            }
            if let Some(collection) = &m.signal_data_collection {
                source = source.signal_data_collection(collection).map_err(|e| {
                    ConfigError::field("source.mssql.signal_data_collection", e.to_string())
                })?;
            }
            snapshot = Some(source.snapshot_progress());
            signals = Some(source.signals());
            signal_kafka = kafka_signal_channel(file, m, &topic_prefix)?;
            Box::new(source)
        }
        (None, Some(k)) => {
            let kafka = kafka_config(k.client(), "source.kafka")?;
            // Records are decoded by their embedded Connect schema (connect.rs refuses
            // value.converter.schemas.enable=false).
            let codec: Arc<dyn EventCodec> = Arc::new(DebeziumJson::with_schema());
            let mut b = KafkaSource::builder(kafka, codec, &k.group_id).name(&name);
            for topic in &k.topics {
                b = b.topic(topic);
            }
            if let Some(v) = k.batch_size {
                b = b.batch_size(v);
            }
            if let Some(v) = k.poll_timeout_ms {
                b = b.poll_timeout(ms(v));
            }
            if let Some(v) = k.commit_interval_ms {
                b = b.commit_interval(ms(v));
            }
            b = b.on_decode_failure(match (k.on_decode_failure, &k.dead_letter_topic) {
                (None | Some(config::DecodeFailure::Fail), None) => DecodeFailurePolicy::Fail,
                (Some(config::DecodeFailure::Skip), None) => DecodeFailurePolicy::Skip,
                (Some(config::DecodeFailure::DeadLetter), Some(topic)) => {
                    DecodeFailurePolicy::DeadLetter {
                        topic: topic.clone(),
                    }
                }
                (Some(config::DecodeFailure::DeadLetter), None) => {
                    return Err(ConfigError::field(
                        "source.kafka.dead_letter_topic",
                        "missing: on_decode_failure = \"dead_letter\" needs it",
                    ));
                }
                (_, Some(_)) => {
                    return Err(ConfigError::field(
                        "source.kafka.dead_letter_topic",
                        "only applies with on_decode_failure = \"dead_letter\"",
                    ));
                }
            });
            Box::new(
                b.build()
                    .map_err(|e| ConfigError::field("source.kafka", e.to_string()))?,
            )
        }
        (None, None) => return Err(ConfigError::field("source", "missing")),
    };

    let mut offsets = offset_store(file)?;
    let sink: Box<dyn Sink> = match (&file.sink.kafka, &file.sink.s3) {
        (Some(k), _) => {
            let kafka = kafka_config(k.client(), "sink.kafka")?;
            let namer = match k.topic_prefix.as_ref().or(default_prefix.as_ref()) {
                Some(prefix) => DefaultTopicNamer::with_prefix(prefix.clone()),
                None => DefaultTopicNamer::new(),
            };
            let codec: Arc<dyn EventCodec> = Arc::new(kafka_sink_codec(k));
            if k.exactly_once == Some(true) {
                let transactional_id = k
                    .transactional_id
                    .clone()
                    .unwrap_or_else(|| format!("cdc-{name}"));
                let offsets_topic = k
                    .offsets_topic
                    .clone()
                    .unwrap_or_else(|| "cdc-offsets".to_string());
                let mut b = TransactionalSink::builder(
                    kafka.clone(),
                    codec,
                    &transactional_id,
                    &offsets_topic,
                )
                .name(&name)
                .topic_namer(namer)
                .checkpoint_key(name.clone());
                if let Some(v) = k.tombstones {
                    b = b.tombstones(v);
                }
                if let Some(v) = k.timeout_ms {
                    b = b.timeout(ms(v));
                }
                let (sink, store) = b
                    .build_with_offset_store()
                    .await
                    .map_err(|e| ConfigError::field("sink.kafka", e.to_string()))?;
                offsets = Some(Box::new(store));
                Box::new(MeteredSink::new(sink, counters))
            } else {
                let mut b = KafkaSink::builder(kafka, codec)
                    .name(&name)
                    .topic_namer(namer);
                if let Some(v) = k.tombstones {
                    b = b.tombstones(v);
                }
                if let Some(v) = k.timeout_ms {
                    b = b.flush_timeout(ms(v));
                }
                if let Some(c) = &k.create_topics {
                    let mut spec = TopicSpec::new(c.partitions, c.replication_factor);
                    if let Some(v) = c.compacted {
                        spec = spec.compacted(v);
                    }
                    for (key, value) in &c.config {
                        spec = spec.config(key, value);
                    }
                    b = b.create_topics(spec);
                }
                let sink = b
                    .build()
                    .map_err(|e| ConfigError::field("sink.kafka", e.to_string()))?;
                Box::new(MeteredSink::new(sink, counters))
            }
        }
        (None, Some(s)) => {
            let sink = s3_sink(s, &name)?;
            Box::new(
                MeteredSink::new(sink, counters).with_file_stats(|s: &S3Sink| {
                    let stats = s.stats();
                    (stats.files_written, stats.bytes_written, stats.retries)
                }),
            )
        }
        (None, None) => return Err(ConfigError::field("sink", "missing")),
    };
    let offsets: Box<dyn OffsetStore> = match offsets {
        Some(o) => o,
        // A Kafka source without [offsets]: the consumer group's committed offsets are the
        // checkpoint (stored only after the sink made the records durable).
        None if file.source.kafka.is_some() => Box::new(MemoryOffsetStore::new()),
        None => {
            return Err(ConfigError::field(
                "offsets",
                "missing: give file, [offsets.object] or [offsets.kafka]",
            ));
        }
    };
    Ok(Parts {
        pipeline,
        source,
        sink,
        offsets,
        snapshot,
        signals,
        signal_kafka,
    })
}
