//! Kafka Connect connector configurations → a [`PipelineFile`].
//!
//! Accepts Debezium's SQL Server source (`io.debezium.connector.sqlserver.SqlServerConnector`)
//! and Confluent's S3 sink (`io.confluent.connect.s3.S3SinkConnector`), each in the REST form
//! (`{"name": …, "config": {…}}`) or flat (`{"connector.class": …, …}`), as users have them.
//!
//! - source alone → SQL Server → Kafka (checkpoints in the `cdc-offsets` topic);
//! - sink alone → Kafka → S3, consumer group `connect-<name>` as Kafka Connect names it, so
//!   the committed offsets carry over;
//! - both → SQL Server → S3 directly, the topics the sink reads becoming the tables read,
//!   checkpoints beside the data (`<topics.dir>/_cdc/<name>.offsets.json`).
//!
//! A property with no meaning here (`tasks.max`, schema history, …) is reported once as a
//! [`Warning`]; a property or value this service cannot honour (a `message.key.columns` table regex with no wildcard form,
//! Avro, `Wallclock` timestamps, …) or does not know is an error naming it.

use crate::config::{
    self, ConfigError, KafkaOffsets, KafkaSinkSection, KafkaSourceSection, MssqlSection,
    ObjectOffsets, OffsetsSection, PartitionerKind, PartitionerSection, PipelineFile,
    PipelineSection, RotationSection, S3SinkSection, Secret, SinkSection, SourceSection,
};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;

/// Debezium's SQL Server connector class.
pub const DEBEZIUM_SQLSERVER: &str = "io.debezium.connector.sqlserver.SqlServerConnector";
/// Confluent's S3 sink connector class.
pub const CONFLUENT_S3: &str = "io.confluent.connect.s3.S3SinkConnector";

/// A property that has no meaning here, reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The connector's name.
    pub connector: String,
    /// The property.
    pub property: String,
    /// Why it is ignored or what it became.
    pub note: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.connector, self.property, self.note)
    }
}

/// A connector configuration: its name and flat properties.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// `name`.
    pub name: String,
    /// The properties, every value as text.
    pub properties: BTreeMap<String, String>,
}

impl ConnectorConfig {
    /// Parses the REST form or the flat form; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let json: Json = serde_json::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.into(),
            line: e.line(),
            table: String::new(),
            message: format!("not a connector configuration: {e}"),
        })?;
        let Json::Object(mut top) = json else {
            return Err(ConfigError::field(origin, "expected a JSON object"));
        };
        let (name, config) = match top.remove("config") {
            Some(Json::Object(config)) => {
                let name = top.get("name").and_then(Json::as_str).map(str::to_string);
                (name, config)
            }
            Some(_) => {
                return Err(ConfigError::field(
                    format!("{origin}: config"),
                    "expected an object",
                ));
            }
            None => (None, top),
        };
        let mut properties = BTreeMap::new();
        for (key, value) in config {
            let text = match value {
                Json::String(s) => s,
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                Json::Null => continue,
                other => {
                    return Err(ConfigError::field(
                        format!("{origin}: {key}"),
                        format!("expected a string, number or boolean, got {other}"),
                    ));
                }
            };
            properties.insert(key, text);
        }
        let name = name
            .or_else(|| properties.get("name").cloned())
            .ok_or_else(|| ConfigError::field(format!("{origin}: name"), "missing"))?;
        properties.remove("name");
        Ok(Self { name, properties })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn class(&self) -> &str {
        self.properties
            .get("connector.class")
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Settings Kafka Connect keeps in the worker configuration rather than the connector's.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    /// The worker's `bootstrap.servers`.
    pub brokers: Option<String>,
}

/// The translation: the pipeline and the warnings, each property reported once.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The pipeline.
    pub file: PipelineFile,
    /// Properties ignored or approximated.
    pub warnings: Vec<Warning>,
}

/// One connector's properties being consumed: each property is used, warned about or
/// refused exactly once, and whatever is left at the end is unknown.
struct Props<'a> {
    connector: &'a str,
    left: BTreeMap<String, String>,
    warnings: &'a mut Vec<Warning>,
}

impl Props<'_> {
    fn take(&mut self, key: &str) -> Option<String> {
        self.left.remove(key)
    }

    fn take_any(&mut self, keys: &[&str]) -> Option<String> {
        let mut found = None;
        for key in keys {
            if let Some(v) = self.take(key) {
                found.get_or_insert(v);
            }
        }
        found
    }

    fn parse<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ConfigError::field(
                    format!("{}: {key}", self.connector),
                    format!("cannot read {v:?} as a number or boolean"),
                )
            }),
        }
    }

    fn warn(&mut self, key: &str, note: &str) {
        self.warnings.push(Warning {
            connector: self.connector.to_string(),
            property: key.to_string(),
            note: note.to_string(),
        });
    }

    /// Warns about (and drops) every property starting with `prefix`.
    fn ignore_prefix(&mut self, prefix: &str, note: &str) {
        let keys: Vec<String> = self
            .left
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in keys {
            self.left.remove(&key);
            self.warn(&key, note);
        }
    }

    fn ignore(&mut self, key: &str, note: &str) {
        if self.left.remove(key).is_some() {
            self.warn(key, note);
        }
    }

    fn refuse(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::field(format!("{}: {key}", self.connector), reason)
    }

    /// Fails on the first property nobody consumed, naming the closest known one.
    fn finish(self, known: &[&str]) -> Result<(), ConfigError> {
        if let Some(key) = self.left.keys().next() {
            let candidates: Vec<String> = known.iter().map(|k| k.to_string()).collect();
            let hint = config::closest(key, &candidates)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(ConfigError::field(
                format!("{}: {key}", self.connector),
                format!("unknown property: this service cannot tell what it would change{hint}"),
            ));
        }
        Ok(())
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Debezium's include/exclude lists are regular expressions; the reader takes `*`
/// wildcards. Literal names (dots escaped or not) and `.*` translate; anything else is
/// refused rather than guessed.
fn regex_to_wildcard(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('.') => out.push('.'),
                _ => return None,
            },
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push('*');
            }
            // An unescaped dot between names: users mean the separator.
            '.' => out.push('.'),
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '#' | '@' | ' ') => {
                out.push(c)
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Debezium's `message.key.columns` (`<table regex>:<col>,<col>;…`) with each table part
/// translated to the reader's wildcards, as the include lists are.
fn message_key_columns(p: &mut Props<'_>, value: &str) -> Result<String, ConfigError> {
    let mut entries = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((table, columns)) = entry.split_once(':') else {
            return Err(p.refuse(
                "message.key.columns",
                format!("{entry:?} has no ':' between the table and its key columns"),
            ));
        };
        let table = regex_to_wildcard(table.trim()).ok_or_else(|| {
            p.refuse(
                "message.key.columns",
                format!(
                    "the regular expression {table:?} has no wildcard equivalent: \
                     list names, with `.*` for any text"
                ),
            )
        })?;
        entries.push(format!("{table}:{}", columns.trim()));
    }
    Ok(entries.join(";"))
}

const DEBEZIUM_KNOWN: &[&str] = &[
    "connector.class",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.names",
    "database.dbname",
    "topic.prefix",
    "database.server.name",
    "table.include.list",
    "table.whitelist",
    "table.exclude.list",
    "table.blacklist",
    "column.exclude.list",
    "column.blacklist",
    "snapshot.mode",
    "snapshot.isolation.mode",
    "snapshot.fetch.size",
    "max.iteration.transactions",
    "heartbeat.interval.ms",
    "poll.interval.ms",
    "max.batch.size",
    "database.encrypt",
    "database.trustServerCertificate",
    "database.applicationIntent",
    "time.precision.mode",
    "decimal.handling.mode",
    "binary.handling.mode",
    "unavailable.value.placeholder",
    "message.key.columns",
    "tombstones.on.delete",
    "key.converter",
    "value.converter",
    "key.converter.schemas.enable",
    "value.converter.schemas.enable",
    "tasks.max",
    "include.schema.changes",
    "provide.transaction.metadata",
    "transforms",
    "topic.creation.default.partitions",
    "topic.creation.default.replication.factor",
    "topic.creation.default.cleanup.policy",
    "incremental.snapshot.chunk.size",
    "signal.enabled.channels",
    "signal.data.collection",
    "signal.kafka.topic",
    "signal.kafka.bootstrap.servers",
    "signal.kafka.groupId",
    "signal.kafka.poll.timeout.ms",
    "signal.poll.interval.ms",
];

/// Debezium's signal channels (`signal.enabled.channels`, default `source`): the signal table
/// (`signal.data.collection`) and the Kafka signal topic (`signal.kafka.*`, its consumer's
/// `signal.consumer.*`). Other channels (`jmx`, `file`, custom ones) are reported: signals
/// reach this service by `POST /signals` instead.
fn translate_signals(p: &mut Props<'_>, m: &mut MssqlSection) -> Result<(), ConfigError> {
    let channels = p
        .take("signal.enabled.channels")
        .map(|v| list(&v))
        .unwrap_or_else(|| vec!["source".to_string()]);
    for channel in &channels {
        if !matches!(channel.as_str(), "source" | "kafka") {
            p.warn(
                "signal.enabled.channels",
                &format!(
                    "the {channel:?} channel does not exist here: send signals with POST /signals, \
                     the Kafka signal topic or the signal table"
                ),
            );
        }
    }
    let source = channels.iter().any(|c| c == "source");
    let kafka = channels.iter().any(|c| c == "kafka");
    match p.take("signal.data.collection") {
        Some(v) if source => m.signal_data_collection = Some(v.trim().to_string()),
        Some(_) => p.warn(
            "signal.data.collection",
            "ignored: signal.enabled.channels does not list source",
        ),
        None => {}
    }
    m.incremental_chunk_size = p.parse("incremental.snapshot.chunk.size")?;
    p.ignore(
        "signal.poll.interval.ms",
        "signals are taken at the source's next step; no interval to set",
    );
    p.ignore(
        "signal.kafka.poll.timeout.ms",
        "the signal consumer waits for messages without a poll timeout",
    );
    if !kafka {
        for key in [
            "signal.kafka.topic",
            "signal.kafka.bootstrap.servers",
            "signal.kafka.groupId",
        ] {
            p.ignore(key, "ignored: signal.enabled.channels does not list kafka");
        }
        p.ignore_prefix(
            "signal.consumer.",
            "ignored: signal.enabled.channels does not list kafka",
        );
        return Ok(());
    }
    // Debezium's default topic is `<topic.prefix>-signal`; its brokers are required.
    m.signal_kafka_topic = Some(
        p.take("signal.kafka.topic")
            .unwrap_or_else(|| format!("{}-signal", m.server_name)),
    );
    m.signal_kafka_brokers = Some(p.take("signal.kafka.bootstrap.servers").ok_or_else(|| {
        p.refuse(
            "signal.kafka.bootstrap.servers",
            "missing: the kafka signal channel needs it (as Debezium does)",
        )
    })?);
    m.signal_kafka_group_id = p.take("signal.kafka.groupId");
    let consumer: Vec<String> = p
        .left
        .keys()
        .filter(|k| k.starts_with("signal.consumer."))
        .cloned()
        .collect();
    for key in consumer {
        if let Some(value) = p.take(&key) {
            let property = key.trim_start_matches("signal.consumer.").to_string();
            m.signal_kafka_properties.insert(property, value);
        }
    }
    Ok(())
}

/// Kafka Connect's JsonConverter; returns whether schemas are embedded.
fn json_converter(p: &mut Props<'_>, which: &str) -> Result<Option<bool>, ConfigError> {
    let class_key = format!("{which}.converter");
    let schemas_key = format!("{which}.converter.schemas.enable");
    let class = p.take(&class_key);
    if let Some(class) = &class
        && class != "org.apache.kafka.connect.json.JsonConverter"
    {
        return Err(p.refuse(
                &class_key,
                format!("{class} is not supported: events are Debezium JSON (org.apache.kafka.connect.json.JsonConverter)"),
            ));
    }
    let schemas = p.parse::<bool>(&schemas_key)?;
    Ok(schemas.or(class.map(|_| true)))
}

fn translate_debezium(
    c: &ConnectorConfig,
    warnings: &mut Vec<Warning>,
) -> Result<(MssqlSection, DebeziumKafka), ConfigError> {
    let mut p = Props {
        connector: &c.name,
        left: c.properties.clone(),
        warnings,
    };
    p.take("connector.class");
    let mut m = MssqlSection {
        host: p.take("database.hostname"),
        port: p.parse("database.port")?,
        user: p.take("database.user"),
        password: p.take("database.password").map(Secret::new),
        databases: p
            .take_any(&["database.names", "database.dbname"])
            .map(|v| list(&v))
            .unwrap_or_default(),
        server_name: p
            .take_any(&["topic.prefix", "database.server.name"])
            .ok_or_else(|| p.refuse("topic.prefix", "missing: it names every topic"))?,
        ..MssqlSection::default()
    };
    for (keys, target) in [
        (
            &["table.include.list", "table.whitelist"][..],
            &mut m.include_tables,
        ),
        (
            &["table.exclude.list", "table.blacklist"][..],
            &mut m.exclude_tables,
        ),
        (
            &["column.exclude.list", "column.blacklist"][..],
            &mut m.exclude_columns,
        ),
    ] {
        if let Some(v) = p.take_any(keys) {
            for pattern in list(&v) {
                let wildcard = regex_to_wildcard(&pattern).ok_or_else(|| {
                    p.refuse(
                        keys[0],
                        format!(
                            "the regular expression {pattern:?} has no wildcard equivalent: \
                             list names, with `.*` for any text"
                        ),
                    )
                })?;
                target.push(wildcard);
            }
        }
    }
    if let Some(v) = p.take("snapshot.mode") {
        use config::SnapshotMode as M;
        m.snapshot_mode = Some(match v.as_str() {
            "initial" => M::Initial,
            "initial_only" => M::InitialOnly,
            "no_data" => M::NoData,
            "schema_only" => {
                p.warn(
                    "snapshot.mode",
                    "schema_only is Debezium's old name of no_data",
                );
                M::NoData
            }
            "when_needed" => M::WhenNeeded,
            "always" => M::Always,
            other => {
                return Err(p.refuse(
                    "snapshot.mode",
                    format!("{other:?} is not supported (initial, initial_only, no_data, when_needed, always are)"),
                ));
            }
        });
    }
    if let Some(v) = p.take("snapshot.isolation.mode") {
        use config::SnapshotIsolation as I;
        m.snapshot_isolation = Some(match v.as_str() {
            "snapshot" => I::Snapshot,
            "repeatable_read" => I::RepeatableRead,
            "read_committed" => I::ReadCommitted,
            other => {
                return Err(p.refuse(
                    "snapshot.isolation.mode",
                    format!(
                        "{other:?} is not supported (snapshot, repeatable_read, read_committed are)"
                    ),
                ));
            }
        });
    }
    m.snapshot_chunk_size = p.parse("snapshot.fetch.size")?;
    translate_signals(&mut p, &mut m)?;
    match p.parse::<u32>("max.iteration.transactions")? {
        Some(0) => p.warn(
            "max.iteration.transactions",
            "0 (unbounded) would let a lagging reader hold any number of transactions; the default bound (500) is kept",
        ),
        other => m.max_transactions_per_poll = other,
    }
    m.heartbeat_interval_ms = p.parse("heartbeat.interval.ms")?;
    m.poll_interval_ms = p.parse("poll.interval.ms")?;
    m.max_batch_events = p.parse("max.batch.size")?;
    if let Some(encrypt) = p.parse::<bool>("database.encrypt")? {
        m.encryption = Some(if encrypt {
            config::Encryption::Required
        } else {
            config::Encryption::LoginOnly
        });
    }
    m.trust_server_certificate = p.parse("database.trustServerCertificate")?;
    if let Some(v) = p.take("database.applicationIntent") {
        m.read_only_intent = Some(v.eq_ignore_ascii_case("readonly"));
    }
    // Debezium's value handling modes, under their own names; a value Debezium does not know
    // is refused naming the property and listing the values it takes.
    fn mode<T: std::str::FromStr<Err = cdc_core::codec::ParseModeError>>(
        p: &mut Props<'_>,
        key: &str,
    ) -> Result<Option<T>, ConfigError> {
        match p.take(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e: cdc_core::codec::ParseModeError| p.refuse(key, e.to_string())),
        }
    }
    let time_precision_mode = mode(&mut p, "time.precision.mode")?;
    let decimal_handling_mode = mode(&mut p, "decimal.handling.mode")?;
    let binary_handling_mode = mode(&mut p, "binary.handling.mode")?;
    let unavailable_value_placeholder = p.take("unavailable.value.placeholder");
    if let Some(v) = p.take("message.key.columns")
        && !v.trim().is_empty()
    {
        m.message_key_columns = Some(message_key_columns(&mut p, &v)?);
    }
    if let Some(v) = p.take("provide.transaction.metadata")
        && v == "true"
    {
        return Err(p.refuse(
            "provide.transaction.metadata",
            "transaction metadata topics are not produced",
        ));
    }
    if let Some(v) = p.take("transforms")
        && !v.trim().is_empty()
    {
        return Err(p.refuse(
            "transforms",
            "single message transforms do not run here; for flat rows in S3 use the \
                 flattened layout of [sink.s3] instead of ExtractNewRecordState",
        ));
    }
    let tombstones = p.parse::<bool>("tombstones.on.delete")?;
    let key_schemas = json_converter(&mut p, "key")?;
    let value_schemas = json_converter(&mut p, "value")?;
    if key_schemas.is_some() && value_schemas.is_some() && key_schemas != value_schemas {
        return Err(p.refuse(
            "key.converter.schemas.enable",
            "keys and values must both embed schemas or both not",
        ));
    }
    let partitions = p.parse::<i32>("topic.creation.default.partitions")?;
    let replication = p.parse::<i32>("topic.creation.default.replication.factor")?;
    let cleanup = p.take("topic.creation.default.cleanup.policy");
    let create_topics = partitions.map(|partitions| config::CreateTopics {
        partitions,
        replication_factor: replication.unwrap_or(1),
        compacted: cleanup.as_deref().map(|c| c.contains("compact")),
        config: BTreeMap::new(),
    });
    let brokers = p.take("schema.history.internal.kafka.bootstrap.servers");
    p.ignore("tasks.max", "one task reads every table of the connector");
    p.ignore(
        "include.schema.changes",
        "no schema-change topic: schema changes travel inside the events",
    );
    p.ignore_prefix(
        "schema.history.internal",
        "no schema history topic is needed: schemas come from the capture instances",
    );
    p.ignore_prefix("database.history", "no schema history topic is needed");
    p.ignore_prefix(
        "errors.",
        "failures stop the pipeline with a typed error; nothing is skipped",
    );
    p.ignore_prefix(
        "producer.override.",
        "producer settings go to [sink.kafka.properties]",
    );
    p.finish(DEBEZIUM_KNOWN)?;
    Ok((
        m,
        DebeziumKafka {
            brokers,
            tombstones,
            schemas: value_schemas.or(key_schemas),
            create_topics,
            time_precision_mode,
            decimal_handling_mode,
            binary_handling_mode,
            unavailable_value_placeholder,
        },
    ))
}

/// What the Debezium configuration says about the Kafka side.
#[derive(Debug, Default)]
struct DebeziumKafka {
    brokers: Option<String>,
    tombstones: Option<bool>,
    schemas: Option<bool>,
    create_topics: Option<config::CreateTopics>,
    time_precision_mode: Option<cdc_core::codec::TimePrecisionMode>,
    decimal_handling_mode: Option<cdc_core::codec::DecimalHandlingMode>,
    binary_handling_mode: Option<cdc_core::codec::BinaryHandlingMode>,
    unavailable_value_placeholder: Option<String>,
}

const S3_KNOWN: &[&str] = &[
    "connector.class",
    "topics",
    "topics.regex",
    "topics.dir",
    "s3.bucket.name",
    "s3.region",
    "store.url",
    "flush.size",
    "rotate.interval.ms",
    "rotate.schedule.interval.ms",
    "format.class",
    "parquet.codec",
    "s3.compression.type",
    "partitioner.class",
    "partition.field.name",
    "path.format",
    "partition.duration.ms",
    "locale",
    "timezone",
    "timestamp.extractor",
    "timestamp.field",
    "s3.part.size",
    "storage.class",
    "aws.access.key.id",
    "aws.secret.access.key",
    "key.converter",
    "value.converter",
    "tasks.max",
    "schema.compatibility",
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
    "behavior.on.null.values",
];

struct S3Translation {
    sink: S3SinkSection,
    topics: Vec<String>,
    topics_regex: Option<String>,
    dead_letter: Option<String>,
    skip_errors: bool,
}

fn translate_s3(
    c: &ConnectorConfig,
    warnings: &mut Vec<Warning>,
) -> Result<S3Translation, ConfigError> {
    let mut p = Props {
        connector: &c.name,
        left: c.properties.clone(),
        warnings,
    };
    p.take("connector.class");
    let topics = p.take("topics").map(|v| list(&v)).unwrap_or_default();
    let topics_regex = p.take("topics.regex");
    if topics.is_empty() && topics_regex.is_none() {
        return Err(p.refuse("topics", "missing: give topics or topics.regex"));
    }
    let bucket = p
        .take("s3.bucket.name")
        .ok_or_else(|| p.refuse("s3.bucket.name", "missing"))?;
    let dir = p.take("topics.dir").unwrap_or_else(|| "topics".to_string());
    let mut sink = S3SinkSection {
        url: format!("s3://{bucket}/{}", dir.trim_matches('/')),
        ..S3SinkSection::default()
    };
    if let Some(region) = p.take("s3.region") {
        sink.options.insert("region".into(), region);
    }
    if let Some(endpoint) = p.take("store.url") {
        if endpoint.starts_with("http://") {
            sink.options.insert("allow_http".into(), "true".into());
        }
        sink.options.insert("endpoint".into(), endpoint);
    }
    if let Some(v) = p.take("aws.access.key.id") {
        sink.options.insert("access_key_id".into(), v);
    }
    if let Some(v) = p.take("aws.secret.access.key") {
        sink.options.insert("secret_access_key".into(), v);
    }
    let rotation = RotationSection {
        max_records: p.parse("flush.size")?,
        max_bytes: None,
        max_record_interval_ms: p
            .parse::<i64>("rotate.interval.ms")?
            .filter(|v| *v > 0)
            .map(|v| v as u64),
        schedule_interval_ms: p
            .parse::<i64>("rotate.schedule.interval.ms")?
            .filter(|v| *v > 0)
            .map(|v| v as u64),
    };
    sink.rotation = Some(rotation);
    match p.take("format.class").as_deref() {
        None => return Err(p.refuse("format.class", "missing")),
        Some("io.confluent.connect.s3.format.parquet.ParquetFormat") => {
            sink.format = Some(config::FileFormat::Parquet);
            // Confluent's ParquetFormat writes each record's value, the Debezium envelope
            // (before, after, source, op, ts_ms), as nested columns; so does this layout.
            sink.layout = Some(config::RowLayout::Debezium);
            // Confluent's Parquet default codec is snappy.
            sink.compression = Some(match p.take("parquet.codec").as_deref() {
                None | Some("snappy") => config::Compression::Snappy,
                Some("gzip") => config::Compression::Gzip,
                Some("zstd") => config::Compression::Zstd,
                Some("none" | "uncompressed") => config::Compression::None,
                Some(other) => {
                    return Err(p.refuse(
                        "parquet.codec",
                        format!("{other:?} is not supported (snappy, gzip, zstd, none are)"),
                    ));
                }
            });
        }
        Some("io.confluent.connect.s3.format.json.JsonFormat") => {
            sink.format = Some(config::FileFormat::Ndjson);
            sink.layout = Some(config::RowLayout::Debezium);
            sink.compression = Some(match p.take("s3.compression.type").as_deref() {
                None | Some("none") => config::Compression::None,
                Some("gzip") => config::Compression::Gzip,
                Some(other) => {
                    return Err(p.refuse(
                        "s3.compression.type",
                        format!("{other:?} is not supported (gzip, none are)"),
                    ));
                }
            });
        }
        Some(other) => {
            return Err(p.refuse(
                "format.class",
                format!("{other} is not supported: ParquetFormat and JsonFormat are"),
            ));
        }
    }
    sink.partitioner = partitioner(&mut p)?;
    sink.part_size = p.parse("s3.part.size")?;
    if let Some(class) = p.take("storage.class")
        && class != "io.confluent.connect.s3.storage.S3Storage"
    {
        return Err(p.refuse("storage.class", format!("{class} is not supported")));
    }
    json_converter(&mut p, "key")?;
    if json_converter(&mut p, "value")? == Some(false) {
        // Without the embedded Connect schema a record's values cannot be typed (decimals,
        // timestamps and binaries are bare numbers and strings), so every record would fail
        // to decode and end in the dead-letter topic while the run looks healthy.
        return Err(p.refuse(
            "value.converter.schemas.enable",
            "false is not supported: records must embed their Connect schema \
             (value.converter.schemas.enable=true in the Debezium source and in this sink)",
        ));
    }
    let skip_errors = match p.take("errors.tolerance").as_deref() {
        None | Some("none") => false,
        Some("all") => true,
        Some(other) => {
            return Err(p.refuse("errors.tolerance", format!("{other:?} is not none or all")));
        }
    };
    let dead_letter = p.take("errors.deadletterqueue.topic.name");
    p.ignore(
        "tasks.max",
        "one consumer reads every partition assigned to this process",
    );
    p.ignore(
        "schema.compatibility",
        "a schema change rotates the file; nothing is projected",
    );
    p.ignore("behavior.on.null.values", "tombstones are skipped");
    p.ignore_prefix("errors.", "logging of failures follows [log]");
    p.ignore_prefix(
        "consumer.override.",
        "consumer settings go to [source.kafka.properties]",
    );
    p.finish(S3_KNOWN)?;
    Ok(S3Translation {
        sink,
        topics,
        topics_regex,
        dead_letter,
        skip_errors,
    })
}

fn partitioner(p: &mut Props<'_>) -> Result<Option<PartitionerSection>, ConfigError> {
    const BASE: &str = "io.confluent.connect.storage.partitioner.";
    let class = p.take("partitioner.class");
    let short = class.as_deref().map(|c| c.strip_prefix(BASE).unwrap_or(c));
    let mut section = PartitionerSection {
        kind: PartitionerKind::Time,
        fields: Vec::new(),
        path_format: None,
        partition_duration_ms: None,
        timezone: None,
        time_column: None,
    };
    if matches!(
        short,
        None | Some("DefaultPartitioner" | "FieldPartitioner")
    ) {
        for key in [
            "path.format",
            "partition.duration.ms",
            "locale",
            "timezone",
            "timestamp.extractor",
            "timestamp.field",
        ] {
            p.ignore(key, "no meaning without a time-based partitioner");
        }
    }
    match short {
        None | Some("DefaultPartitioner") => return Ok(None),
        Some("FieldPartitioner") => {
            section.kind = PartitionerKind::Field;
            section.fields = p
                .take("partition.field.name")
                .map(|v| list(&v))
                .unwrap_or_default()
                .into_iter()
                // Debezium envelopes hold the row under `after`.
                .map(|f| f.strip_prefix("after.").map(str::to_string).unwrap_or(f))
                .collect();
            if section.fields.is_empty() {
                return Err(p.refuse("partition.field.name", "missing: FieldPartitioner needs it"));
            }
            return Ok(Some(section));
        }
        Some("HourlyPartitioner") => {
            section.path_format = Some(s3_sink::partitioner::HOURLY_PATH_FORMAT.into());
            section.partition_duration_ms = Some(3_600_000);
        }
        Some("DailyPartitioner") => {
            section.path_format = Some(s3_sink::partitioner::DAILY_PATH_FORMAT.into());
            section.partition_duration_ms = Some(86_400_000);
        }
        Some("TimeBasedPartitioner") => {
            section.path_format = Some(p.take("path.format").ok_or_else(|| {
                p.refuse("path.format", "missing: TimeBasedPartitioner needs it")
            })?);
            section.partition_duration_ms =
                Some(p.parse("partition.duration.ms")?.ok_or_else(|| {
                    p.refuse(
                        "partition.duration.ms",
                        "missing: TimeBasedPartitioner needs it",
                    )
                })?);
        }
        Some(other) => {
            return Err(p.refuse(
                "partitioner.class",
                format!("{other} is not supported (Default, Field, Hourly, Daily and TimeBased partitioners are)"),
            ));
        }
    }
    // Hourly and Daily read path.format and partition.duration.ms too in Kafka Connect only
    // if TimeBased; for them these are fixed.
    p.ignore("path.format", "fixed by the Hourly/Daily partitioner class");
    p.ignore(
        "partition.duration.ms",
        "fixed by the Hourly/Daily partitioner class",
    );
    // Only numeric pattern fields are supported, so the locale never changes a path.
    p.take("locale");
    match p.take("timezone") {
        Some(zone) => section.timezone = Some(zone),
        None => {
            return Err(p.refuse(
                "timezone",
                "missing: time-based partitioners need it (Kafka Connect refuses to start without it)",
            ));
        }
    }
    match p.take("timestamp.extractor").as_deref() {
        None | Some("Wallclock") => {
            return Err(p.refuse(
                "timestamp.extractor",
                "Wallclock is not supported: a replay after a crash must put every event in \
                 the same file; use Record (the commit time) or RecordField",
            ));
        }
        Some("Record") => p.warn(
            "timestamp.extractor",
            "Record: the commit time of the change in SQL Server partitions the files",
        ),
        Some("RecordField") => {
            let field = p
                .take("timestamp.field")
                .ok_or_else(|| p.refuse("timestamp.field", "missing: RecordField needs it"))?;
            match field.as_str() {
                "source.ts_ms" | "ts_ms" => {}
                f => section.time_column = Some(f.strip_prefix("after.").unwrap_or(f).to_string()),
            }
        }
        Some(other) => {
            return Err(p.refuse(
                "timestamp.extractor",
                format!("{other} is not supported (Record and RecordField are)"),
            ));
        }
    }
    Ok(Some(section))
}

/// Translates connector configurations (at most one source and one sink) into a pipeline.
pub fn translate(
    connectors: &[ConnectorConfig],
    worker: &WorkerSettings,
) -> Result<Translation, ConfigError> {
    let mut warnings = Vec::new();
    let mut source = None;
    let mut sink = None;
    for c in connectors {
        match c.class() {
            DEBEZIUM_SQLSERVER if source.is_none() => source = Some(c),
            CONFLUENT_S3 if sink.is_none() => sink = Some(c),
            DEBEZIUM_SQLSERVER | CONFLUENT_S3 => {
                return Err(ConfigError::field(
                    format!("{}: connector.class", c.name),
                    "give at most one source and one sink connector per pipeline",
                ));
            }
            other => {
                return Err(ConfigError::field(
                    format!("{}: connector.class", c.name),
                    format!(
                        "{other:?} is not supported ({DEBEZIUM_SQLSERVER} and {CONFLUENT_S3} are)"
                    ),
                ));
            }
        }
    }
    let brokers = |hint: Option<String>, connector: &str| {
        worker.brokers.clone().or(hint).ok_or_else(|| {
            ConfigError::field(
                format!("{connector}: bootstrap.servers"),
                "missing: it lives in the Kafka Connect worker configuration; pass --kafka-brokers",
            )
        })
    };
    let file = match (source, sink) {
        (Some(src), None) => {
            let (mssql, kafka) = translate_debezium(src, &mut warnings)?;
            let brokers = brokers(kafka.brokers, &src.name)?;
            PipelineFile {
                pipeline: PipelineSection {
                    name: src.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: Some(mssql),
                    kafka: None,
                },
                sink: SinkSection {
                    kafka: Some(KafkaSinkSection {
                        brokers: brokers.clone(),
                        schemas: kafka.schemas,
                        tombstones: kafka.tombstones,
                        create_topics: kafka.create_topics,
                        time_precision_mode: kafka.time_precision_mode,
                        decimal_handling_mode: kafka.decimal_handling_mode,
                        binary_handling_mode: kafka.binary_handling_mode,
                        unavailable_value_placeholder: kafka.unavailable_value_placeholder,
                        ..KafkaSinkSection::default()
                    }),
                    s3: None,
                },
                offsets: Some(OffsetsSection {
                    kafka: Some(KafkaOffsets {
                        brokers,
                        topic: "cdc-offsets".into(),
                        key: Some(src.name.clone()),
                        ..KafkaOffsets::default()
                    }),
                    ..OffsetsSection::default()
                }),
                ..PipelineFile::default()
            }
        }
        (None, Some(snk)) => {
            let s3 = translate_s3(snk, &mut warnings)?;
            let brokers = brokers(None, &snk.name)?;
            let mut topics = s3.topics;
            topics.extend(s3.topics_regex.map(|r| {
                if r.starts_with('^') {
                    r
                } else {
                    format!("^{r}")
                }
            }));
            PipelineFile {
                pipeline: PipelineSection {
                    name: snk.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: None,
                    kafka: Some(KafkaSourceSection {
                        brokers,
                        // Kafka Connect's group for a sink connector, so offsets carry over.
                        group_id: format!("connect-{}", snk.name),
                        topics,
                        on_decode_failure: match (&s3.dead_letter, s3.skip_errors) {
                            (Some(_), _) => Some(config::DecodeFailure::DeadLetter),
                            (None, true) => Some(config::DecodeFailure::Skip),
                            (None, false) => None,
                        },
                        dead_letter_topic: s3.dead_letter,
                        ..KafkaSourceSection::default()
                    }),
                },
                sink: SinkSection {
                    kafka: None,
                    s3: Some(s3.sink),
                },
                offsets: None,
                ..PipelineFile::default()
            }
        }
        (Some(src), Some(snk)) => {
            let (mut mssql, kafka) = translate_debezium(src, &mut warnings)?;
            let s3 = translate_s3(snk, &mut warnings)?;
            for (what, set) in [
                ("tombstones.on.delete", kafka.tombstones.is_some()),
                ("key.converter / value.converter", kafka.schemas.is_some()),
                ("topic.creation.*", kafka.create_topics.is_some()),
                (
                    "time.precision.mode / decimal.handling.mode / binary.handling.mode / \
                     unavailable.value.placeholder",
                    kafka.time_precision_mode.is_some()
                        || kafka.decimal_handling_mode.is_some()
                        || kafka.binary_handling_mode.is_some()
                        || kafka.unavailable_value_placeholder.is_some(),
                ),
                (
                    "schema.history.internal.kafka.bootstrap.servers",
                    kafka.brokers.is_some(),
                ),
            ] {
                if set {
                    warnings.push(Warning {
                        connector: src.name.clone(),
                        property: what.into(),
                        note: "no meaning here: changes go from SQL Server straight to S3".into(),
                    });
                }
            }
            if s3.topics_regex.is_some() {
                return Err(ConfigError::field(
                    format!("{}: topics.regex", snk.name),
                    "with both connectors the sink's topics must be listed by name (topics)",
                ));
            }
            if s3.dead_letter.is_some() {
                return Err(ConfigError::field(
                    format!("{}: errors.deadletterqueue.topic.name", snk.name),
                    "with both connectors changes go from SQL Server straight to S3: there is no \
                     Kafka record to dead-letter",
                ));
            }
            // The sink's topics are `<topic.prefix>.<database>.<schema>.<table>`: those
            // tables are what the pipeline reads.
            let prefix = format!("{}.", mssql.server_name);
            let mut tables = Vec::new();
            for topic in &s3.topics {
                let rest = topic.strip_prefix(&prefix).ok_or_else(|| {
                    ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!("topic {topic:?} is not one the source writes (it must start with {prefix:?})"),
                    )
                })?;
                let parts: Vec<&str> = rest.splitn(3, '.').collect();
                let [database, schema, table] = parts[..] else {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!("topic {topic:?} is not <prefix>.<database>.<schema>.<table>"),
                    ));
                };
                if !mssql.databases.is_empty() && !mssql.databases.iter().any(|d| d == database) {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!(
                            "topic {topic:?} names database {database:?}, which database.names does not list"
                        ),
                    ));
                }
                tables.push(format!("{schema}.{table}"));
            }
            // What lands in S3 is what the sink reads: a table the source captured only for
            // Kafka is not captured here (in Kafka Connect it never reached S3 either), and a
            // table the source did not capture is refused.
            if !mssql.include_tables.is_empty() {
                if let Some(missing) = tables.iter().find(|t| !mssql.include_tables.contains(t)) {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!(
                            "the sink reads {missing}, which the source's table.include.list {:?} \
                             does not capture",
                            mssql.include_tables
                        ),
                    ));
                }
                let not_in_s3: Vec<&String> = mssql
                    .include_tables
                    .iter()
                    .filter(|t| !tables.contains(t))
                    .collect();
                if !not_in_s3.is_empty() {
                    warnings.push(Warning {
                        connector: src.name.clone(),
                        property: "table.include.list".into(),
                        note: format!(
                            "{not_in_s3:?} are not captured: the sink does not read their topics, \
                             and with both connectors changes go straight to S3"
                        ),
                    });
                }
            }
            mssql.include_tables = tables;
            let url = s3.sink.url.clone();
            let offsets_url = format!("{url}/_cdc/{}.offsets.json", src.name);
            let options = s3.sink.options.clone();
            PipelineFile {
                pipeline: PipelineSection {
                    name: src.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: Some(mssql),
                    kafka: None,
                },
                sink: SinkSection {
                    kafka: None,
                    s3: Some(s3.sink),
                },
                offsets: Some(OffsetsSection {
                    object: Some(ObjectOffsets {
                        url: offsets_url,
                        options,
                    }),
                    ..OffsetsSection::default()
                }),
                ..PipelineFile::default()
            }
        }
        (None, None) => {
            return Err(ConfigError::field(
                "--connect-config",
                "give at least one connector configuration",
            ));
        }
    };
    file.validate()?;
    Ok(Translation { file, warnings })
}
