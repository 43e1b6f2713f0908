//! From a [`PipelineFile`] to the library's source, sink and offset store, through their
//! public builders only. Every builder error is reported naming the pipeline-file field.

use crate::config::{self, ConfigError, KafkaClient, PipelineFile};
use crate::metering::{MeteredSink, SinkCounters};
use crate::signals::{DEFAULT_SIGNAL_GROUP_ID, KafkaSignalChannel};
use cdc_core::{
    ChangeSource, DebeziumJson, EventCodec, FileOffsetStore, MemoryOffsetStore, ObjectOffsetStore,
    OffsetStore, PipelineConfig, Sink,
};
use cdc_mssql::{MssqlConfig, MssqlSource, SnapshotProgress, SnapshotSignals};
use kafka_io::{
    DecodeFailurePolicy, DefaultTopicNamer, KafkaConfig, KafkaOffsetStore, KafkaSink, KafkaSource,
    SaslMechanism, Security, Tls, TopicSpec, TransactionalSink,
};
use s3_sink::{
    FieldPartitioner, Format, Layout, NdjsonCompression, NdjsonOptions, ParquetCompression,
    ParquetOptions, RetryPolicy, Rotation, S3Sink, TimePartitioner, TimeSource,
};
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

/// cdc-mssql's configuration from `[source.mssql]`.
pub fn mssql_config(section: &config::MssqlSection) -> Result<MssqlConfig, ConfigError> {
    let err = field_error("source.mssql");
    let mut b = match &section.connection {
        Some(ado) => MssqlConfig::from_ado_string(ado.expose())
            // The message names the connection-string key, never its value.
            .map_err(|e| ConfigError::field("source.mssql.connection", e.to_string()))?,
        None => MssqlConfig::builder(),
    };
    if let Some(v) = &section.host {
        b = b.host(v);
    }
    if let Some(v) = section.port {
        b = b.port(v);
    }
    if let Some(v) = &section.user {
        b = b.user(v);
    }
    if let Some(v) = &section.password {
        b = b.password(v.expose());
    }
    for d in &section.databases {
        b = b.database(d);
    }
    b = b.topic_prefix(&section.topic_prefix);
    if !section.include_tables.is_empty() {
        b = b.include_tables(section.include_tables.clone());
    }
    if !section.exclude_tables.is_empty() {
        b = b.exclude_tables(section.exclude_tables.clone());
    }
    if !section.exclude_columns.is_empty() {
        b = b.exclude_columns(section.exclude_columns.clone());
    }
    if let Some(spec) = &section.message_key_columns {
        b = b.message_key_columns(spec.clone());
    }
    if let Some(v) = section.snapshot_mode {
        use config::SnapshotMode as M;
        b = b.snapshot_mode(match v {
            M::Initial => cdc_mssql::SnapshotMode::Initial,
            M::InitialOnly => cdc_mssql::SnapshotMode::InitialOnly,
            M::NoData => cdc_mssql::SnapshotMode::NoData,
            M::WhenNeeded => cdc_mssql::SnapshotMode::WhenNeeded,
            M::Always => cdc_mssql::SnapshotMode::Always,
        });
    }
    if let Some(v) = section.snapshot_isolation {
        use config::SnapshotIsolation as I;
        b = b.snapshot_isolation(match v {
            I::Snapshot => cdc_mssql::SnapshotIsolation::Snapshot,
            I::RepeatableRead => cdc_mssql::SnapshotIsolation::RepeatableRead,
            I::ReadCommitted => cdc_mssql::SnapshotIsolation::ReadCommitted,
        });
    }
    if let Some(v) = section.stream_from_earliest {
        b = b.stream_from_earliest(v);
    }
    if let Some(v) = section.snapshot_chunk_size {
        b = b.snapshot_chunk_size(v);
    }
    if let Some(v) = section.poll_interval_ms {
        b = b.poll_interval(ms(v));
    }
    if let Some(v) = section.max_iteration_transactions {
        b = b.max_iteration_transactions(v);
    }
    if let Some(v) = section.page_size {
        b = b.page_size(v);
    }
    if let Some(v) = section.max_batch_events {
        b = b.max_batch_events(v);
    }
    if let Some(v) = section.heartbeat_interval_ms {
        b = b.heartbeat_interval((v > 0).then(|| ms(v)));
    }
    if let Some(v) = section.new_table_snapshot {
        b = b.new_table_snapshot(match v {
            config::NewTableSnapshot::Incremental => cdc_mssql::NewTableSnapshot::Incremental,
            config::NewTableSnapshot::Blocking => cdc_mssql::NewTableSnapshot::Blocking,
            config::NewTableSnapshot::None => cdc_mssql::NewTableSnapshot::None,
        });
    }
    if let Some(v) = section.retention_policy {
        b = b.retention_policy(match v {
            config::RetentionPolicy::Fail => cdc_mssql::RetentionPolicy::Fail,
            config::RetentionPolicy::Resnapshot => cdc_mssql::RetentionPolicy::Resnapshot,
        });
    }
    if let Some(v) = section.read_only_intent {
        b = b.read_only_intent(v);
    }
    if let Some(v) = section.command_timeout_ms {
        b = b.command_timeout(ms(v));
    }
    if let Some(v) = section.connect_timeout_ms {
        b = b.connect_timeout(ms(v));
    }
    if let Some(v) = section.encryption {
        use config::Encryption as E;
        b = b.encryption(match v {
            E::Required => cdc_mssql::Encryption::Required,
            E::Strict => cdc_mssql::Encryption::Strict,
            E::LoginOnly => cdc_mssql::Encryption::LoginOnly,
            E::Off => cdc_mssql::Encryption::Off,
        });
    }
    if let Some(v) = section.trust_server_certificate {
        b = b.trust_server_certificate(v);
    }
    if let Some(v) = &section.ca_file {
        b = b.ca_file(v);
    }
    if let Some(v) = section.max_retries {
        b = b.max_retries(v);
    }
    b.build().map_err(|e| err(e.to_string()))
}

/// kafka-io's client configuration; `field` names the section in errors.
pub fn kafka_config(client: KafkaClient<'_>, field: &str) -> Result<KafkaConfig, ConfigError> {
    let mut kafka = KafkaConfig::new(client.brokers);
    if let Some(s) = client.security {
        let tls = Tls {
            ca_file: s.ca_file.clone(),
            certificate_file: s.certificate_file.clone(),
            key_file: s.key_file.clone(),
            key_password: s
                .key_password
                .as_ref()
                .map(|p| kafka_io::Secret::new(p.expose())),
        };
        let security = match s.protocol {
            config::KafkaProtocol::Plaintext => Security::Plaintext,
            config::KafkaProtocol::Ssl => Security::Ssl(tls),
            config::KafkaProtocol::SaslSsl => Security::SaslSsl {
                mechanism: match s.mechanism {
                    Some(config::Mechanism::ScramSha256) => SaslMechanism::ScramSha256,
                    Some(config::Mechanism::Plain) => SaslMechanism::Plain,
                    Some(config::Mechanism::ScramSha512) | None => SaslMechanism::ScramSha512,
                },
                username: s.username.clone().ok_or_else(|| {
                    ConfigError::field(
                        format!("{field}.security.username"),
                        "missing: sasl_ssl needs a username",
                    )
                })?,
                password: kafka_io::Secret::new(
                    s.password
                        .as_ref()
                        .ok_or_else(|| {
                            ConfigError::field(
                                format!("{field}.security.password"),
                                "missing: sasl_ssl needs a password",
                            )
                        })?
                        .expose(),
                ),
                tls,
            },
        };
        kafka = kafka.security(security);
    }
    for (key, value) in client.properties {
        kafka = kafka.set(key, value);
    }
    kafka
        .validate()
        .map_err(|e| ConfigError::field(field, e.to_string()))?;
    Ok(kafka)
}

/// The Kafka sink's codec: `schemas` and Debezium's value handling modes from `[sink.kafka]`.
pub fn kafka_sink_codec(section: &config::KafkaSinkSection) -> DebeziumJson {
    let mut b = DebeziumJson::builder().schemas(section.schemas.unwrap_or(true));
    if let Some(mode) = section.time_precision_mode {
        b = b.time_precision_mode(mode);
    }
    if let Some(mode) = section.decimal_handling_mode {
        b = b.decimal_handling_mode(mode);
    }
    if let Some(mode) = section.binary_handling_mode {
        b = b.binary_handling_mode(mode);
    }
    if let Some(placeholder) = &section.unavailable_value_placeholder {
        b = b.unavailable_value_placeholder(placeholder.clone());
    }
    b.build()
}

/// The S3 sink from `[sink.s3]`.
pub fn s3_sink(section: &config::S3SinkSection, name: &str) -> Result<S3Sink, ConfigError> {
    let err = field_error("sink.s3");
    let mut b = S3Sink::builder().name(name).url(section.url.clone());
    for (k, v) in &section.options {
        b = b.option(k, v);
    }
    let layout = match section.layout {
        Some(config::RowLayout::Debezium) => Layout::Debezium,
        _ => Layout::Flattened,
    };
    let format = match section.format.unwrap_or(config::FileFormat::Parquet) {
        config::FileFormat::Parquet => {
            let mut options = ParquetOptions {
                layout,
                ..ParquetOptions::default()
            };
            if let Some(c) = section.compression {
                options.compression = match c {
                    config::Compression::Zstd => ParquetCompression::Zstd(3),
                    config::Compression::Snappy => ParquetCompression::Snappy,
                    config::Compression::Gzip => ParquetCompression::Gzip(6),
                    config::Compression::None => ParquetCompression::None,
                };
            }
            if let Some(v) = section.row_group_bytes {
                options.row_group_bytes = v;
            }
            if section.ndjson_schemas.is_some() {
                return Err(ConfigError::field(
                    "sink.s3.ndjson_schemas",
                    "only applies to format = \"ndjson\"",
                ));
            }
            Format::Parquet(options)
        }
        config::FileFormat::Ndjson => Format::Ndjson(NdjsonOptions {
            layout,
            compression: match section.compression {
                None | Some(config::Compression::None) => NdjsonCompression::None,
                Some(config::Compression::Gzip) => NdjsonCompression::Gzip,
                Some(config::Compression::Zstd) => NdjsonCompression::Zstd,
                Some(config::Compression::Snappy) => {
                    return Err(ConfigError::field(
                        "sink.s3.compression",
                        "snappy is for Parquet only; NDJSON takes gzip, zstd or none",
                    ));
                }
            },
            debezium_schemas: section.ndjson_schemas.unwrap_or(false),
        }),
    };
    b = b.format(format);
    if let Some(p) = &section.partitioner {
        b = match p.kind {
            config::PartitionerKind::Default => b,
            config::PartitionerKind::Field => {
                if p.fields.is_empty() {
                    return Err(ConfigError::field(
                        "sink.s3.partitioner.fields",
                        "missing: the field partitioner needs at least one column",
                    ));
                }
                b.partitioner(FieldPartitioner::new(p.fields.clone()))
            }
            config::PartitionerKind::Time => b.partitioner(time_partitioner(p)?),
        };
    }
    if let Some(r) = &section.rotation {
        let mut rotation = Rotation::default();
        if let Some(v) = r.max_records {
            rotation.max_records = Some(v);
        }
        if let Some(v) = r.max_bytes {
            rotation.max_bytes = Some(v);
        }
        rotation.max_record_interval = r.max_record_interval_ms.map(ms);
        rotation.schedule_interval = r.schedule_interval_ms.map(ms);
        b = b.rotation(rotation);
    }
    if let Some(v) = section.memory_budget {
        b = b.memory_budget(v);
    }
    if let Some(v) = section.part_size {
        b = b.part_size(v);
    }
    if let Some(v) = section.upload_concurrency {
        b = b.upload_concurrency(v);
    }
    if let Some(r) = &section.retry {
        let mut retry = RetryPolicy::default();
        if let Some(v) = r.max_retries {
            retry.max_retries = v;
        }
        if let Some(v) = r.initial_backoff_ms {
            retry.initial_backoff = ms(v);
        }
        if let Some(v) = r.max_backoff_ms {
            retry.max_backoff = ms(v);
        }
        b = b.retry(retry);
    }
    b.build().map_err(|e| err(e.to_string()))
}

/// The time partitioner from `[sink.s3.partitioner]` with `kind = "time"`.
pub fn time_partitioner(p: &config::PartitionerSection) -> Result<TimePartitioner, ConfigError> {
    let source = match &p.time_column {
        Some(column) => TimeSource::Column(column.clone()),
        None => TimeSource::CommitTime,
    };
    let mut t = TimePartitioner::from_source(source);
    if let Some(format) = &p.path_format {
        t = t
            .with_path_format(format)
            .map_err(|e| ConfigError::field("sink.s3.partitioner.path_format", e.to_string()))?;
    }
    if let Some(zone) = &p.timezone {
        t = if zone.eq_ignore_ascii_case("utc") {
            t.with_offset_hours(0).ok_or_else(|| {
                ConfigError::field("sink.s3.partitioner.timezone", "UTC is always valid")
            })?
        } else {
            t.with_zone(zone)
                .map_err(|e| ConfigError::field("sink.s3.partitioner.timezone", e.to_string()))?
        };
    }
    if let Some(d) = p.partition_duration_ms {
        t = t.with_partition_duration(ms(d)).map_err(|e| {
            ConfigError::field("sink.s3.partitioner.partition_duration_ms", e.to_string())
        })?;
    }
    Ok(t)
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

/// Debezium's Kafka signal channel from `[source.mssql] signal_kafka_*`: its own brokers and
/// properties, else `[sink.kafka]`'s brokers and security with the signal properties.
fn kafka_signal_channel(
    file: &PipelineFile,
    m: &config::MssqlSection,
    topic_prefix: &str,
) -> Result<Option<KafkaSignalChannel>, ConfigError> {
    let Some(topic) = &m.signal_kafka_topic else {
        return Ok(None);
    };
    let field = "source.mssql.signal_kafka_brokers";
    let client = match (&m.signal_kafka_brokers, &file.sink.kafka) {
        (Some(brokers), _) => KafkaClient {
            brokers,
            security: None,
            properties: &m.signal_kafka_properties,
        },
        (None, Some(sink)) => KafkaClient {
            brokers: &sink.brokers,
            security: sink.security.as_ref(),
            properties: &m.signal_kafka_properties,
        },
        (None, None) => {
            return Err(ConfigError::field(
                field,
                "missing: the signal topic needs brokers when the sink is not [sink.kafka]",
            ));
        }
    };
    let kafka = kafka_config(client, "source.mssql.signal_kafka_properties")?;
    let group = m
        .signal_kafka_group_id
        .as_deref()
        .unwrap_or(DEFAULT_SIGNAL_GROUP_ID);
    KafkaSignalChannel::new(&kafka, topic, group, topic_prefix)
        .map(Some)
        .map_err(|e| ConfigError::field("source.mssql.signal_kafka_topic", e))
}

/// The object store for `url` with object_store `options`. `s3://` URLs also read the `AWS_*`
/// environment (credentials, region, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, web identity and
/// container credentials), as the S3 sink does; object_store's `parse_url_opts` alone ignores
/// it and falls back to the EC2 instance metadata service, which fails everywhere else.
///
/// # Errors
/// An unknown option key, or what object_store's builders refuse.
pub fn object_store_for(
    url: &url::Url,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<(Box<dyn object_store::ObjectStore>, object_store::path::Path), object_store::Error> {
    if !matches!(url.scheme(), "s3" | "s3a") {
        return object_store::parse_url_opts(url, options.iter());
    }
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
    for (key, value) in options {
        let key: object_store::aws::AmazonS3ConfigKey = key.parse()?;
        builder = builder.with_config(key, value);
    }
    let path = object_store::path::Path::from_url_path(url.path())?;
    Ok((Box::new(builder.build()?), path))
}
